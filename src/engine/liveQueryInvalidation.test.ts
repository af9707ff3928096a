/**
 * What makes a live query re-run, against brute force: `ReadRangeIndex`'s own invariants after
 * every change, stabbing queries at and around every bound against a plain list of ranges, the
 * edge cases one by one; at the engine level, random mutations under many live queries compared
 * with running every query afresh; the read set of documents taken from a query's iterator by
 * hand (transaction.ts, `scan`); and a commit that lands in a re-run's new ranges only.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { anyApi, type ApiFromModules, defineSchema, defineTable, type Id, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import type { KeyBound, KeyRange, Storage } from "../storage/types.js";
import { withLatency } from "../storage/latency.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import type { Caller, QueryOutcome } from "./engine.js";
import { settle } from "./fixtures/settle.js";
import { ReadRangeIndex } from "./readRangeIndex.js";
import { pointRange, prefixRange, ReadSet, type WriteSet } from "./readSet.js";
import { seededRandom } from "../storage/conformance/history.js";

/** A seeded generator, so that a failure replays from its seed. */
function generator(seed: number) {
  const next = seededRandom(seed);
  const int = (n: number) => Math.floor(next() * n);
  return { next, int };
}

// ---------------------------------------------------------------- brute force, written apart

function cmp(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length && i < b.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Whether `key` is in `range`, from the definition (not `rangeContains`). */
function inRange(range: KeyRange, key: Uint8Array): boolean {
  if (range.lower !== undefined) {
    const c = cmp(key, range.lower.key);
    if (range.lower.inclusive ? c < 0 : c <= 0) return false;
  }
  if (range.upper !== undefined) {
    const c = cmp(key, range.upper.key);
    if (range.upper.inclusive ? c > 0 : c >= 0) return false;
  }
  return true;
}

function bruteTouched<T>(readSets: Map<T, ReadSet>, writes: WriteSet): Set<T> {
  const found = new Set<T>();
  for (const [owner, readSet] of readSets) {
    outer: for (const [indexId, keys] of writes) {
      for (const range of readSet.ranges.get(indexId) ?? []) {
        for (const key of keys) {
          if (inRange(range, key)) {
            found.add(owner);
            break outer;
          }
        }
      }
    }
  }
  return found;
}

function touched<T>(index: ReadRangeIndex<T>, writes: WriteSet): T[] {
  const found: T[] = [];
  index.touched(writes, (owner) => found.push(owner));
  return found;
}

// ---------------------------------------------------------------- the tree's invariants

interface ProbeNode {
  left: ProbeNode | null;
  right: ProbeNode | null;
  max: KeyBound | null;
  indexId: string;
  lower: KeyBound | undefined;
  upper: KeyBound | null;
  owner: unknown;
  seq: number;
  priority: number;
  spanned: readonly KeyRange[] | null;
}

function lowerOrder(a: KeyBound | undefined, b: KeyBound | undefined): number {
  if (a === undefined || b === undefined) return (a === undefined ? 0 : 1) - (b === undefined ? 0 : 1);
  return cmp(a.key, b.key) || (a.inclusive === b.inclusive ? 0 : a.inclusive ? -1 : 1);
}

function upperOrder(a: KeyBound | null, b: KeyBound | null): number {
  if (a === null || b === null) return (a === null ? 1 : 0) - (b === null ? 1 : 0);
  return cmp(a.key, b.key) || (a.inclusive === b.inclusive ? 0 : a.inclusive ? 1 : -1);
}

/**
 * Checks, for every tree: search-tree order by (lower bound, seq), heap order of priorities,
 * each node's `max` the highest upper bound of its subtree, each node on the tree of its own
 * index; and that the nodes in the trees are exactly the registered ones (none lost, none left
 * behind by a delete), with no empty tree kept.
 */
function checkInvariants<T>(index: ReadRangeIndex<T>, where: string): void {
  const internals = index as unknown as { trees: Map<string, ProbeNode | null>; registered: Map<T, ProbeNode | ProbeNode[]> };
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new Error(`${where}: ${what}`);
  };
  const inTrees = new Set<ProbeNode>();
  const order = (a: ProbeNode, b: ProbeNode) => lowerOrder(a.lower, b.lower) || a.seq - b.seq;
  /** Walks a subtree; returns its lowest node, highest node (in tree order) and highest upper bound. */
  const walk = (node: ProbeNode, indexId: string): { first: ProbeNode; last: ProbeNode; max: KeyBound | null } => {
    check(node.indexId === indexId, "a node on another index's tree");
    check(!inTrees.has(node), "a node reached twice");
    inTrees.add(node);
    let first = node;
    let last = node;
    let max = node.upper;
    if (node.left !== null) {
      check(node.left.priority <= node.priority, "heap order (left)");
      const left = walk(node.left, indexId);
      check(order(left.last, node) < 0, "left subtree order");
      first = left.first;
      if (upperOrder(left.max, max) > 0) max = left.max;
    }
    if (node.right !== null) {
      check(node.right.priority <= node.priority, "heap order (right)");
      const right = walk(node.right, indexId);
      check(order(right.first, node) > 0, "right subtree order");
      last = right.last;
      if (upperOrder(right.max, max) > 0) max = right.max;
    }
    check(upperOrder(node.max, max) === 0, "max annotation");
    return { first, last, max };
  };
  for (const [indexId, root] of internals.trees) {
    check(root !== null, `an empty tree kept for ${indexId}`);
    walk(root!, indexId);
  }
  const registered = new Set<ProbeNode>();
  for (const [owner, nodes] of internals.registered) {
    for (const node of Array.isArray(nodes) ? nodes : [nodes]) {
      check(node.owner === owner, "a registered node of another owner");
      registered.add(node);
    }
  }
  check(inTrees.size === registered.size, `${inTrees.size} nodes in trees, ${registered.size} registered`);
  for (const node of inTrees) check(registered.has(node), "a node in a tree that no owner holds");
}

// ---------------------------------------------------------------- the index against brute force

const INDEXES = ["t.by_id", "t.by_a", "u.by_id"];

/** Keys from a tiny alphabet: bounds, writes and prefixes collide often. */
function keys(g: ReturnType<typeof generator>) {
  const key = () => Uint8Array.from({ length: g.int(4) }, () => g.int(3));
  const bound = (): KeyBound => ({ key: key(), inclusive: g.int(2) === 0 });
  const range = (): KeyRange => {
    const shape = g.int(8);
    if (shape === 0) return pointRange(key());
    if (shape === 1) return prefixRange(key());
    if (shape === 2) return {};
    if (shape === 3) {
      // Empty on purpose: equal exclusive bounds, or lower above upper.
      const k = key();
      if (g.int(2) === 0) return { lower: { key: k, inclusive: false }, upper: { key: k, inclusive: g.int(2) === 0 } };
      return { lower: { key: Uint8Array.of(2, 2, 2), inclusive: true }, upper: { key: k, inclusive: true } };
    }
    const lower = g.int(4) === 0 ? undefined : bound();
    const upper = g.int(4) === 0 ? undefined : bound();
    return { ...(lower ? { lower } : {}), ...(upper ? { upper } : {}) };
  };
  return { key, range };
}

/** Every key a probe should try for these ranges: each bound's key, and its neighbours just below and above. */
function boundaryKeys(ranges: Iterable<KeyRange>): Uint8Array[] {
  const out = new Map<string, Uint8Array>();
  const add = (k: Uint8Array) => out.set(k.join(","), k);
  add(new Uint8Array());
  for (const range of ranges) {
    for (const b of [range.lower, range.upper]) {
      if (b === undefined) continue;
      add(b.key);
      add(Uint8Array.of(...b.key, 0)); // the first key above
      if (b.key.length > 0) {
        const last = b.key[b.key.length - 1]!;
        add(b.key.subarray(0, b.key.length - 1)); // a prefix: below
        if (last > 0) add(Uint8Array.of(...b.key.subarray(0, b.key.length - 1), last - 1, 255)); // just below
      }
    }
  }
  return [...out.values()];
}

describe("ReadRangeIndex against brute force", () => {
  it("keeps its tree invariants and answers every probe at and around every bound as brute force does", () => {
    for (let seed = 1; seed <= 12; seed++) {
      const g = generator(seed * 7919);
      const { key, range } = keys(g);
      const index = new ReadRangeIndex<number>();
      const readSets = new Map<number, ReadSet>();
      // A pool of ranges shared between owners: the same range object, and equal copies, in several read sets.
      const pool = Array.from({ length: 12 }, range);
      const owners = 20 + g.int(100);
      for (let step = 0; step < 200; step++) {
        const action = g.int(10);
        const owner = g.int(owners);
        const where = `seed ${seed}, step ${step}`;
        if (action < 5) {
          const readSet = new ReadSet();
          const many = g.int(6) === 0;
          // Around the spanning threshold (32) too: 31, 32, 33 ranges on one index.
          const count = many ? [31, 32, 33, 34, 40 + g.int(40)][g.int(5)]! : g.int(6);
          const oneIndex = INDEXES[g.int(INDEXES.length)]!;
          for (let r = 0; r < count; r++) {
            const indexId = many && g.int(4) !== 0 ? oneIndex : INDEXES[g.int(INDEXES.length)]!;
            const which = g.int(4);
            const chosen = which === 0 ? pool[g.int(pool.length)]! : which === 1 ? structuredClone(pool[g.int(pool.length)]!) : range();
            readSet.add(indexId, chosen);
          }
          index.set(owner, readSet);
          if (readSet.ranges.size > 0) readSets.set(owner, readSet);
          else readSets.delete(owner);
        } else if (action < 7) {
          index.delete(owner);
          readSets.delete(owner);
        } else {
          // Probe every boundary key (and a few random ones) on every index, one key at a time.
          const all = [...readSets.values()].flatMap((readSet) => [...readSet.ranges.values()].flat());
          const boundaries = boundaryKeys(all);
          // The key alphabet is tiny: a sample of the boundaries covers them all over the run.
          const probes = [...Array.from({ length: Math.min(40, boundaries.length) }, () => boundaries[g.int(boundaries.length)]!), key(), key()];
          for (const indexId of INDEXES) {
            for (const probe of probes) {
              const writes: WriteSet = new Map([[indexId, [probe]]]);
              const found = new Set(touched(index, writes));
              expect([...found].sort((a, b) => a - b), `${where}: ${indexId} [${probe.join(",")}]`).toEqual([...bruteTouched(readSets, writes)].sort((a, b) => a - b));
            }
          }
          // And a write set of several keys on several indexes at once.
          const writes: WriteSet = new Map();
          for (let w = 1 + g.int(6); w > 0; w--) {
            const indexId = INDEXES[g.int(INDEXES.length)]!;
            writes.set(indexId, [...(writes.get(indexId) ?? []), probes[g.int(probes.length)]!]);
          }
          expect(new Set(touched(index, writes)), where).toEqual(bruteTouched(readSets, writes));
        }
        checkInvariants(index, where);
        expect(index.size, where).toBe(readSets.size);
      }
      // Dropping every owner leaves nothing behind.
      for (const owner of [...readSets.keys()]) index.delete(owner);
      checkInvariants(index, `seed ${seed}, end`);
      expect(index.size).toBe(0);
      expect((index as unknown as { trees: Map<string, unknown> }).trees.size).toBe(0);
    }
  });

  it("keeps thousands of ranges balanced and exact under churn (rotations on every insert and delete)", () => {
    const g = generator(424242);
    const index = new ReadRangeIndex<number>();
    const readSets = new Map<number, ReadSet>();
    const wideKey = () => Uint8Array.of(g.int(40), g.int(40));
    const wideRange = (): KeyRange => {
      const a = wideKey();
      const b = wideKey();
      const [lo, hi] = cmp(a, b) <= 0 ? [a, b] : [b, a];
      const shape = g.int(10);
      if (shape === 0) return { upper: { key: hi, inclusive: g.int(2) === 0 } };
      if (shape === 1) return { lower: { key: lo, inclusive: g.int(2) === 0 } };
      if (shape === 2) return pointRange(lo);
      return { lower: { key: lo, inclusive: g.int(2) === 0 }, upper: { key: hi, inclusive: g.int(2) === 0 } };
    };
    for (let step = 0; step < 6_000; step++) {
      const owner = g.int(1_500);
      if (g.int(4) === 0) {
        index.delete(owner);
        readSets.delete(owner);
      } else {
        const readSet = new ReadSet();
        for (let r = 1 + g.int(3); r > 0; r--) readSet.add("t.by_a", wideRange());
        index.set(owner, readSet);
        readSets.set(owner, readSet);
      }
      if (step % 500 === 499) {
        checkInvariants(index, `step ${step}`);
        const depth = (node: ProbeNode | null): number => (node === null ? 0 : 1 + Math.max(depth(node.left), depth(node.right)));
        const root = (index as unknown as { trees: Map<string, ProbeNode> }).trees.get("t.by_a")!;
        expect(depth(root)).toBeLessThan(80); // ~3,000 nodes: a treap's depth is a small multiple of log2
        for (let a = 0; a <= 40; a++) {
          for (const probe of [Uint8Array.of(a), Uint8Array.of(a, 0), Uint8Array.of(a, 20), Uint8Array.of(a, 39), Uint8Array.of(a, 39, 1)]) {
            const writes: WriteSet = new Map([["t.by_a", [probe]]]);
            expect(new Set(touched(index, writes)), `step ${step} [${probe.join(",")}]`).toEqual(bruteTouched(readSets, writes));
          }
        }
      }
    }
  });
});

// ---------------------------------------------------------------- edge cases one by one

function readSetOf(...entries: Array<[string, KeyRange]>): ReadSet {
  const readSet = new ReadSet();
  for (const [indexId, range] of entries) readSet.add(indexId, range);
  return readSet;
}

const k = (...bytes: number[]) => Uint8Array.from(bytes);
const at = (indexId: string, ...keys: Uint8Array[]): WriteSet => new Map([[indexId, keys]]);

describe("ReadRangeIndex edge cases", () => {
  it("honours inclusive and exclusive bounds at the exact key, and a prefix of it", () => {
    const index = new ReadRangeIndex<string>();
    index.set("[5,9]", readSetOf(["i", { lower: { key: k(5), inclusive: true }, upper: { key: k(9), inclusive: true } }]));
    index.set("(5,9)", readSetOf(["i", { lower: { key: k(5), inclusive: false }, upper: { key: k(9), inclusive: false } }]));
    index.set("(5,inf)", readSetOf(["i", { lower: { key: k(5), inclusive: false } }]));
    index.set("(-inf,9]", readSetOf(["i", { upper: { key: k(9), inclusive: true } }]));
    const sorted = (key: Uint8Array) => touched(index, at("i", key)).sort();
    expect(sorted(k(5))).toEqual(["(-inf,9]", "[5,9]"]);
    expect(sorted(k(5, 0))).toEqual(["(-inf,9]", "(5,9)", "(5,inf)", "[5,9]"]); // just above 5
    expect(sorted(k(9))).toEqual(["(-inf,9]", "(5,inf)", "[5,9]"]);
    expect(sorted(k(9, 0))).toEqual(["(5,inf)"]); // just above 9
    expect(sorted(k(4, 255))).toEqual(["(-inf,9]"]);
    expect(sorted(k())).toEqual(["(-inf,9]"]); // the empty key sorts first
  });

  it("never reports an empty range, and does report the full range for any key", () => {
    const index = new ReadRangeIndex<string>();
    index.set("(5,5)", readSetOf(["i", { lower: { key: k(5), inclusive: false }, upper: { key: k(5), inclusive: false } }]));
    index.set("[5,5)", readSetOf(["i", { lower: { key: k(5), inclusive: true }, upper: { key: k(5), inclusive: false } }]));
    index.set("(5,5]", readSetOf(["i", { lower: { key: k(5), inclusive: false }, upper: { key: k(5), inclusive: true } }]));
    index.set("[6,4]", readSetOf(["i", { lower: { key: k(6), inclusive: true }, upper: { key: k(4), inclusive: true } }]));
    index.set("all", readSetOf(["i", {}]));
    for (const key of [k(), k(4), k(5), k(5, 0), k(6), k(255, 255)]) expect(touched(index, at("i", key))).toEqual(["all"]);
    checkInvariants(index, "empty ranges");
  });

  it("keeps equal keys on different indexes apart", () => {
    const index = new ReadRangeIndex<string>();
    index.set("a", readSetOf(["t.by_a", pointRange(k(1, 2))]));
    index.set("b", readSetOf(["t.by_b", pointRange(k(1, 2))]));
    expect(touched(index, at("t.by_a", k(1, 2)))).toEqual(["a"]);
    expect(touched(index, at("t.by_b", k(1, 2)))).toEqual(["b"]);
    expect(touched(index, at("t.by_c", k(1, 2)))).toEqual([]);
    index.delete("a");
    expect(touched(index, at("t.by_a", k(1, 2)))).toEqual([]);
    expect(touched(index, at("t.by_b", k(1, 2)))).toEqual(["b"]);
    checkInvariants(index, "indexes");
  });

  it("keeps each owner's copy of a range shared with others, through one owner's delete and replacement", () => {
    const index = new ReadRangeIndex<number>();
    const shared = prefixRange(k(7));
    for (let owner = 0; owner < 50; owner++) index.set(owner, readSetOf(["i", shared], ["i", shared])); // twice each, too
    expect(new Set(touched(index, at("i", k(7, 1))))).toEqual(new Set(Array.from({ length: 50 }, (_, i) => i)));
    for (let owner = 0; owner < 50; owner += 2) index.delete(owner);
    for (let owner = 1; owner < 50; owner += 4) index.set(owner, readSetOf(["i", pointRange(k(8))]));
    checkInvariants(index, "shared");
    const expected = Array.from({ length: 50 }, (_, i) => i).filter((i) => i % 2 === 1 && (i - 1) % 4 !== 0);
    expect([...new Set(touched(index, at("i", k(7, 1))))].sort((a, b) => a - b)).toEqual(expected);
    expect([...new Set(touched(index, at("i", k(8))))].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i).filter((i) => (i - 1) % 4 === 0 && i % 2 === 1));
  });

  it("replaces an owner's ranges on set: the old ones no longer hit, the new ones do", () => {
    const index = new ReadRangeIndex<string>();
    index.set("q", readSetOf(["i", pointRange(k(1))], ["j", pointRange(k(2))]));
    index.set("q", readSetOf(["i", pointRange(k(3))]));
    expect(touched(index, at("i", k(1)))).toEqual([]);
    expect(touched(index, at("j", k(2)))).toEqual([]);
    expect(touched(index, at("i", k(3)))).toEqual(["q"]);
    checkInvariants(index, "replace");
    // From many ranges (a spanning node) to one, and back.
    const many = new ReadSet();
    for (let i = 0; i < 40; i++) many.addPoint("i", k(100 + i));
    index.set("q", many);
    expect(touched(index, at("i", k(3)))).toEqual([]);
    expect(touched(index, at("i", k(139)))).toEqual(["q"]);
    index.set("q", readSetOf(["i", pointRange(k(3))]));
    expect(touched(index, at("i", k(139)))).toEqual([]);
    expect(touched(index, at("i", k(120)))).toEqual([]);
    checkInvariants(index, "replace many");
    index.delete("q");
    expect(index.size).toBe(0);
    checkInvariants(index, "deleted");
  });

  it("spans many ranges with open bounds: an unbounded range among them widens the span to every key", () => {
    const index = new ReadRangeIndex<string>();
    const below = new ReadSet();
    for (let i = 0; i < 40; i++) below.addPoint("i", k(100 + i));
    below.add("i", { upper: { key: k(10), inclusive: false } }); // everything below 10
    index.set("below", below);
    const above = new ReadSet();
    above.add("i", { lower: { key: k(200), inclusive: false } }); // everything above 200, first
    for (let i = 0; i < 40; i++) above.addPoint("i", k(100 + i));
    index.set("above", above);
    expect(touched(index, at("i", k()))).toEqual(["below"]);
    expect(touched(index, at("i", k(9, 255)))).toEqual(["below"]);
    expect(touched(index, at("i", k(10)))).toEqual([]);
    expect(touched(index, at("i", k(200)))).toEqual([]);
    expect(touched(index, at("i", k(200, 0)))).toEqual(["above"]);
    expect(touched(index, at("i", k(255, 255, 255)))).toEqual(["above"]);
    expect(touched(index, at("i", k(120))).sort()).toEqual(["above", "below"]);
    checkInvariants(index, "span");
  });
});

// ---------------------------------------------------------------- live queries against re-running them

const schema = defineSchema({
  items: defineTable({ a: v.number(), b: v.string() }).index("by_a", ["a"]).index("by_a_b", ["a", "b"]),
  others: defineTable({ a: v.number() }).index("by_a", ["a"]),
});

/** A wait `copyFirst` makes once, mid-transaction, if set. */
let pause: (() => Promise<void>) | null = null;

type Bounds = { lo: number | null; hi: number | null; loIncl: boolean; hiIncl: boolean };
const summary = (docs: ReadonlyArray<{ [field: string]: any } | null>) => docs.map((d) => (d === null ? null : `${d._id}:${d.a}:${d.b}`));

const items = {
  /** A range of `a`, each bound inclusive or exclusive or absent: the whole result. */
  range: query({
    args: { lo: v.union(v.number(), v.null()), hi: v.union(v.number(), v.null()), loIncl: v.boolean(), hiIncl: v.boolean(), order: v.string(), take: v.number() },
    handler: async (ctx, { lo, hi, loIncl, hiIncl, order, take }) => {
      const q = ctx.db.query("items").withIndex("by_a", (q) => {
        let r = q as any;
        if (lo !== null) r = loIncl ? r.gte("a", lo) : r.gt("a", lo);
        if (hi !== null) r = hiIncl ? r.lte("a", hi) : r.lt("a", hi);
        return r;
      }).order(order as "asc" | "desc");
      // take > 0: stops early, so the range read ends at the last key seen.
      return summary(take > 0 ? await q.take(take) : await q.collect());
    },
  }),
  /** Equal `a`, then a bound on `b` (the compound index). */
  ab: query({
    args: { a: v.number(), b: v.string() },
    handler: async (ctx, { a, b }) => summary(await ctx.db.query("items").withIndex("by_a_b", (q) => q.eq("a", a).gt("b", b)).collect()),
  }),
  /** Several documents by ID: point ranges on by_id (many of them: one spanning node). */
  byIds: query({
    args: { ids: v.array(v.id("items")) },
    handler: async (ctx, { ids }) => summary(await Promise.all(ids.map((id) => ctx.db.get(id)))),
  }),
  /** Whatever the first document says decides what else is read: the read set changes from run to run. */
  chase: query({
    args: {},
    handler: async (ctx) => {
      const first = await ctx.db.query("items").withIndex("by_a").first();
      if (first === null) return [];
      const next = await ctx.db.query("items").withIndex("by_a", (q) => q.gt("a", first.a * 3)).first();
      return summary([first, next]);
    },
  }),
  /** Equal `a` on the other table, whose index has the same key bytes as `items.by_a`. */
  others: query({
    args: { a: v.number() },
    handler: async (ctx, { a }) => (await ctx.db.query("others").withIndex("by_a", (q) => q.eq("a", a)).collect()).map((d) => d.a),
  }),
  /**
   * Documents with `a` in a range; when the first of them has `b` "a", also who is asking (so
   * the live query splits by identity, and may later stop reading it).
   */
  mine: query({
    args: { lo: v.number() },
    handler: async (ctx, { lo }) => {
      const docs = await ctx.db.query("items").withIndex("by_a", (q) => q.gte("a", lo).lt("a", lo + 2)).collect();
      if (docs[0]?.b !== "a") return { docs: summary(docs) };
      return { docs: summary(docs), who: (await ctx.auth.getUserIdentity())?.subject ?? null };
    },
  }),
  /** The documents with the same `a` as document `id`: which range it reads depends on that document. */
  follow: query({
    args: { id: v.id("items") },
    handler: async (ctx, { id }) => {
      const doc = await ctx.db.get(id);
      if (doc === null) return [];
      return summary(await ctx.db.query("items").withIndex("by_a", (q) => q.eq("a", doc.a)).collect());
    },
  }),
  /** The first document by `a`, with `first()`: the control for `firstByHand`. */
  first: query({ args: {}, handler: async (ctx) => summary([await ctx.db.query("items").withIndex("by_a").first()])[0] }),
  /** The first document by `a`, taken from the query's iterator by hand (a `for await` that stops without closing it). */
  firstByHand: query({
    args: {},
    handler: async (ctx) => {
      const documents = ctx.db.query("items").withIndex("by_a")[Symbol.asyncIterator]();
      const first = await documents.next();
      return first.done ? null : summary([first.value])[0];
    },
  }),
  /**
   * Copies the first document's `a` (read by hand as above, or with `first()`) into `others`. Between the read and
   * the write it waits, once, for the test's `pause` (so that another mutation commits there).
   */
  copyFirst: mutation({
    args: { byHand: v.boolean() },
    handler: async (ctx, { byHand }) => {
      const first = byHand
        ? await (async () => {
          const next = await ctx.db.query("items").withIndex("by_a")[Symbol.asyncIterator]().next();
          return next.done ? null : next.value;
        })()
        : await ctx.db.query("items").withIndex("by_a").first();
      if (first === null) return;
      const wait = pause;
      pause = null;
      if (wait !== null) await wait();
      await ctx.db.insert("others", { a: first.a });
    },
  }),
  /** Sets the first document's `a` to 100 plus the number of `others`. */
  setFirstFromOthers: mutation({
    args: {},
    handler: async (ctx) => {
      const count = (await ctx.db.query("others").collect()).length;
      const first = await ctx.db.query("items").withIndex("by_a").first();
      await ctx.db.patch(first!._id, { a: 100 + count });
    },
  }),
  insert: mutation({ args: { a: v.number(), b: v.string() }, handler: (ctx, args) => ctx.db.insert("items", args) }),
  insertOther: mutation({ args: { a: v.number() }, handler: (ctx, args) => ctx.db.insert("others", args) }),
  patch: mutation({ args: { id: v.id("items"), a: v.number(), b: v.string() }, handler: (ctx, { id, ...rest }) => ctx.db.patch(id, rest) }),
  remove: mutation({ args: { id: v.id("items") }, handler: (ctx, { id }) => ctx.db.delete(id) }),
};

const modules = { items };
const api = anyApi as unknown as ApiFromModules<typeof modules>;

let t: ReturnType<typeof walkinTest<typeof schema>> | undefined;
afterEach(async () => {
  pause = null;
  await t?.close();
  t = undefined;
});

interface DifferentialOptions {
  seed: number;
  storage: () => Promise<Storage>;
  watches: number;
  rounds: number;
  /** Subscribe and unsubscribe while the round's mutations (and the flushes they cause) are under way. */
  overlap: boolean;
}

/**
 * Random mutations under many live queries; after each round settles, every subscription's
 * latest result must be what running its query now returns, and the index must hold exactly
 * the live queries (a query dropped and still in the index is a leak; one live and missing
 * from it never hears of a change again).
 */
async function differential({ seed, storage, watches: watchCount, rounds, overlap }: DifferentialOptions): Promise<void> {
  t = walkinTest(schema, modules, { storage });
  const engine = await t.engine();
  const g = generator(seed * 104729);
  const A = 6; // values of `a` collide often, and bounds fall on them exactly
  const ids: Id<"items">[] = [];
  for (let i = 0; i < 8; i++) ids.push(await t.mutation(api.items.insert, { a: g.int(A), b: "bcd"[g.int(3)]! }));

  type Watch = { path: string; args: Record<string, unknown>; caller: Caller; latest: unknown; unsubscribe: () => void };
  const callers: Caller[] = [{}, ...["ada", "bob"].map((subject) => ({ identity: { subject, issuer: "test", tokenIdentifier: `test|${subject}` } }))];
  const watches: Watch[] = [];
  const randomArgs = (): { path: string; args: Record<string, unknown> } => {
    const shape = g.int(7);
    if (shape === 6) return { path: "items:mine", args: { lo: g.int(A) } };
    if (shape === 0) return { path: "items:ab", args: { a: g.int(A), b: "abcde"[g.int(5)]! } };
    if (shape === 1) {
      const count = g.int(3) === 0 ? 40 : 1 + g.int(4);
      return { path: "items:byIds", args: { ids: Array.from({ length: count }, () => ids[g.int(ids.length)]!) } };
    }
    if (shape === 2) return { path: "items:chase", args: {} };
    if (shape === 3) return { path: "items:others", args: { a: g.int(A) } };
    const bounds: Bounds = { lo: g.int(3) === 0 ? null : g.int(A), hi: g.int(3) === 0 ? null : g.int(A), loIncl: g.int(2) === 0, hiIncl: g.int(2) === 0 };
    return { path: "items:range", args: { ...bounds, order: g.int(2) === 0 ? "asc" : "desc", take: g.int(3) === 0 ? 1 + g.int(3) : 0 } };
  };
  const value = (outcome: QueryOutcome) => (outcome.ok ? outcome.value : `error: ${outcome.error.message}`);
  const subscribe = async () => {
    const { path, args } = randomArgs();
    const caller = callers[g.int(callers.length)]!;
    const watch: Watch = { path, args, caller, latest: undefined, unsubscribe: () => {} };
    const sub = await engine.subscriptions.subscribe(path, args, caller, (outcome) => (watch.latest = value(outcome)));
    watch.latest = value(sub.outcome);
    watch.unsubscribe = () => sub.unsubscribe();
    watches.push(watch);
  };
  for (let i = 0; i < watchCount; i++) await subscribe();

  const readRanges = (engine.subscriptions as unknown as { readRanges: ReadRangeIndex<unknown> }).readRanges;
  for (let round = 0; round < rounds; round++) {
    // A few mutations at once (no settling between them), and subscription churn.
    const pending: Promise<unknown>[] = [];
    const churn = async () => {
      if (g.int(3) !== 0) return;
      const gone = watches.splice(g.int(watches.length), 1)[0]!;
      gone.unsubscribe();
      await subscribe();
    };
    if (overlap) pending.push(churn());
    for (let m = 1 + g.int(3); m > 0; m--) {
      const action = g.int(10);
      const id = ids[g.int(ids.length)]!;
      if (action < 3) pending.push(t.mutation(api.items.insert, { a: g.int(A), b: "abcde"[g.int(5)]! }).then((id) => ids.push(id)));
      else if (action < 7) pending.push(t.mutation(api.items.patch, { id, a: g.int(A), b: "abcde"[g.int(5)]! }).catch(() => null));
      else if (action < 8) pending.push(t.mutation(api.items.insertOther, { a: g.int(A) }));
      else pending.push(t.mutation(api.items.remove, { id }).catch(() => null));
      if (overlap && g.int(2) === 0) pending.push(subscribe());
    }
    await Promise.all(pending);
    if (!overlap) await churn();
    await settle(engine);
    for (const [i, watch] of watches.entries()) {
      const fresh = await engine.runQuery(watch.path, watch.args, watch.caller);
      expect(watch.latest, `seed ${seed}, round ${round}, watch ${i}: ${watch.path} ${JSON.stringify(watch.args)} as ${JSON.stringify(watch.caller)}`).toEqual(fresh);
    }
    expect(readRanges.size, `seed ${seed}, round ${round}`).toBe(engine.subscriptions.size);
    checkInvariants(readRanges, `seed ${seed}, round ${round}`);
  }
  for (const watch of watches.splice(0)) watch.unsubscribe();
  expect(engine.subscriptions.size).toBe(0);
  expect(readRanges.size).toBe(0);
  await t.close();
  t = undefined;
}

const sqlite = () => openSqliteStorage({ filename: ":memory:" });

describe("live queries under random mutations, against running every query afresh", () => {
  it("tells every subscriber every change its query's result goes through, and keeps the index to the live queries", async () => {
    for (let seed = 1; seed <= 3; seed++) await differential({ seed, storage: sqlite, watches: 60, rounds: 60, overlap: false });
  }, 120_000);

  it("does so too when subscriptions come and go during the commits and flushes, on a storage with latency", async () => {
    for (let seed = 11; seed <= 13; seed++) {
      await differential({ seed, storage: async () => withLatency(await sqlite(), { read: [0, 2], commit: [0, 3] }), watches: 30, rounds: 25, overlap: true });
    }
  }, 120_000);
});

describe("read sets of documents taken from a query's iterator by hand", () => {
  for (const [path, how] of [["items:first", "first()"], ["items:firstByHand", "iterator.next()"]] as const) {
    it(`re-runs a live query when the document it took with ${how} changes`, async () => {
      t = walkinTest(schema, modules, { storage: sqlite });
      const engine = await t.engine();
      const id = await t.mutation(api.items.insert, { a: 1, b: "x" });
      const seen: unknown[] = [];
      const sub = await engine.subscriptions.subscribe(path, {}, {}, (outcome) => seen.push(outcome.ok ? outcome.value : outcome.error.message));
      expect(sub.outcome).toEqual({ ok: true, value: `${id}:1:x` });
      await t.mutation(api.items.patch, { id, a: 1, b: "y" });
      await settle(engine);
      expect(await t.query(api.items.firstByHand, {})).toBe(`${id}:1:y`);
      expect(seen).toEqual([`${id}:1:y`]);
      sub.unsubscribe();
    });
  }

  for (const byHand of [false, true]) {
    it(`makes a mutation that read a document with ${byHand ? "iterator.next()" : "first()"} conflict with a write to it committed meanwhile`, async () => {
    // M reads the item by hand (a = 0) and will copy it into `others`; N reads `others` (none)
    // and sets the item's `a` to 100 + that count, committing while M waits. Serially, either
    // N sees M's copy (a = 101, others [0]) or M sees N's write (a = 100, others [100]). Since
    // N committed first, M's read of a = 0 is stale: M must conflict and run again.
      t = walkinTest(schema, modules, { storage: sqlite });
      await t.mutation(api.items.insert, { a: 0, b: "x" });
      let reached!: () => void;
      const atPause = new Promise<void>((resolve) => (reached = resolve));
      let resume!: () => void;
      pause = () => {
        reached();
        return new Promise<void>((resolve) => (resume = resolve));
      };
      const m = t.mutation(api.items.copyFirst, { byHand });
      await atPause;
      await t.mutation(api.items.setFirstFromOthers, {});
      resume();
      await m;
      const item = await t.query(api.items.firstByHand, {});
      const others = await t.query(api.items.others, { a: 0 });
      const copied = await t.query(api.items.others, { a: 100 });
      expect({ item: item?.split(":")[1], others, copied }).toEqual({ item: "100", others: [], copied: [100] });
    });
  }
});

describe("a live query whose read set changes on a re-run", () => {
  it("hears of a commit that lands during the re-run in its new ranges only", async () => {
    // 1. follow(P) reads P (a = 1) and the documents with a = 1.
    // 2. P moves to a = 2; the flush re-runs follow(P), held at that commit's snapshot.
    // 3. Meanwhile Q is inserted with a = 2: in the re-run's new range, not in the old one the
    //    index still holds, so only the check of the new read set against the commits since
    //    the re-run's snapshot can catch it.
    // 4. The re-run ends with [P]; Q must follow.
    t = walkinTest(schema, modules, { storage: sqlite });
    const engine = await t.engine();
    const p = await t.mutation(api.items.insert, { a: 1, b: "p" });
    let latest: unknown;
    const sub = await engine.subscriptions.subscribe("items:follow", { id: p }, {}, (outcome) => (latest = outcome.ok ? outcome.value : outcome.error.message));
    expect(sub.outcome).toEqual({ ok: true, value: [`${p}:1:p`] });
    const run = engine.executeQuery.bind(engine);
    let held: (() => void) | null = null;
    let arrived!: () => void;
    const heldRun = new Promise<void>((resolve) => (arrived = resolve));
    let hold = true;
    vi.spyOn(engine, "executeQuery").mockImplementation(async (...args) => {
      if (hold && args[1] === "items:follow") {
        hold = false;
        await new Promise<void>((resolve) => {
          held = resolve;
          arrived();
        });
      }
      return run(...args);
    });
    await t.mutation(api.items.patch, { id: p, a: 2, b: "p" }); // step 2
    await heldRun;
    const q = await t.mutation(api.items.insert, { a: 2, b: "q" }); // step 3
    held!();
    await settle(engine);
    await settle(engine);
    expect(latest).toEqual([`${p}:2:p`, `${q}:2:q`].sort((x, y) => (x < y ? -1 : 1)));
    expect(latest).toEqual(await engine.runQuery("items:follow", { id: p }));
    sub.unsubscribe();
    const readRanges = (engine.subscriptions as unknown as { readRanges: ReadRangeIndex<unknown> }).readRanges;
    expect(readRanges.size).toBe(0);
  });
});

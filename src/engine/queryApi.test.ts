/**
 * The query API (`ctx.db.query(...)`): index ranges on a compound index over values
 * of every type, order, filters, take/first/unique/collect and paginate, compared with a
 * brute-force filter-and-sort written apart from the engine (its own order of values), plus
 * live pagination (pinned pages, as usePaginatedQuery runs them) under inserts and deletes.
 */
import { afterEach, describe, expect, it } from "vitest";
import { defineSchema, defineTable, query } from "../server/index.js";
import { isWalkinError, v, type Value } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import { settle } from "./fixtures/settle.js";
import { seededRandom } from "../storage/conformance/history.js";

const schema = defineSchema({
  items: defineTable({ a: v.optional(v.any()), b: v.optional(v.any()), tag: v.optional(v.string()) })
    .index("by_a_b", ["a", "b"])
    .index("by_b", ["b"]),
});

let t: ReturnType<typeof walkinTest<typeof schema>>;
afterEach(async () => t?.close());

/** A seeded generator, so that a failure replays from its seed. */
function generator(seed: number) {
  const next = seededRandom(seed);
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  return { next, int, pick };
}

// ---------------------------------------------------------------- the order of values, written apart

function rank(x: unknown): number {
  if (x === undefined) return 0;
  if (x === null) return 1;
  if (typeof x === "bigint") return 2;
  if (typeof x === "number") return 3;
  if (typeof x === "boolean") return 4;
  if (typeof x === "string") return 5;
  if (x instanceof ArrayBuffer) return 6;
  if (Array.isArray(x)) return 7;
  return 8;
}

function codePoints(s: string): number[] {
  return Array.from(s, (c) => c.codePointAt(0)!);
}

function seq(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return Math.sign(a.length - b.length);
}

/** Total order: -0 < 0, NaN above +Infinity; strings by code point. */
function order(x: unknown, y: unknown): number {
  const r = rank(x) - rank(y);
  if (r !== 0) return Math.sign(r);
  switch (rank(x)) {
    case 0:
    case 1:
      return 0;
    case 2:
      return (x as bigint) < (y as bigint) ? -1 : (x as bigint) > (y as bigint) ? 1 : 0;
    case 3: {
      const [p, q] = [x as number, y as number];
      if (Number.isNaN(p) || Number.isNaN(q)) return Number(Number.isNaN(p)) - Number(Number.isNaN(q));
      if (p !== q) return p < q ? -1 : 1;
      if (p !== 0) return 0;
      return Number(!Object.is(p, -0)) - Number(!Object.is(q, -0)); // -0 below 0
    }
    case 4:
      return Number(x) - Number(y);
    case 5:
      return seq(codePoints(x as string), codePoints(y as string));
    case 6:
      return seq([...new Uint8Array(x as ArrayBuffer)], [...new Uint8Array(y as ArrayBuffer)]);
    case 7: {
      const [p, q] = [x as unknown[], y as unknown[]];
      for (let i = 0; i < Math.min(p.length, q.length); i++) {
        const c = order(p[i], q[i]);
        if (c !== 0) return c;
      }
      return Math.sign(p.length - q.length);
    }
    default: {
      const entries = (o: object) =>
        Object.entries(o)
          .filter(([, value]) => value !== undefined)
          .sort(([k1], [k2]) => seq(codePoints(k1), codePoints(k2)));
      const [p, q] = [entries(x as object), entries(y as object)];
      for (let i = 0; i < Math.min(p.length, q.length); i++) {
        const c = seq(codePoints(p[i]![0]), codePoints(q[i]![0])) || order(p[i]![1], q[i]![1]);
        if (c !== 0) return c;
      }
      return Math.sign(p.length - q.length);
    }
  }
}

const bytes = (...b: number[]) => new Uint8Array(b).buffer;

/** Values in ascending order, every one distinct. */
const ASCENDING: readonly unknown[] = [
  undefined,
  null,
  -(2n ** 63n),
  -1n,
  0n,
  5n,
  2n ** 63n - 1n,
  -Infinity,
  -1.5,
  -Number.MIN_VALUE,
  -0,
  0,
  Number.MIN_VALUE,
  1,
  Infinity,
  NaN,
  false,
  true,
  "",
  "\0",
  "a",
  "a\0",
  "a\0b",
  "aa",
  "b",
  "\u00e9",
  "\uD7FF",
  "\uE000",
  "\uFFFF",
  "\u{10000}",
  "\u{1F600}",
  bytes(),
  bytes(0),
  bytes(0, 0),
  bytes(1),
  bytes(255),
  [],
  [null],
  [0n],
  [1],
  [1, 2],
  ["a"],
  [[]],
  {},
  { a: null },
  { a: 1 },
  { a: 1, b: 2 },
  { b: 0 },
];

describe("the brute-force order (self-check)", () => {
  it("ASCENDING is strictly ascending under it, and each value equals itself", () => {
    for (let i = 0; i + 1 < ASCENDING.length; i++) expect(order(ASCENDING[i], ASCENDING[i + 1]), String(i)).toBe(-1);
    for (let i = 0; i < ASCENDING.length; i++) expect(order(ASCENDING[i], ASCENDING[i]), String(i)).toBe(0);
  });
});

// ---------------------------------------------------------------- helpers

type Item = { _id: string; _creationTime: number; a?: unknown; b?: unknown; tag?: string };

async function insertAll(docs: Array<{ a?: unknown; b?: unknown; tag?: string }>): Promise<string[]> {
  return t.run(async (ctx) => {
    const ids: string[] = [];
    for (const doc of docs) ids.push(await ctx.db.insert("items", doc as never));
    return ids;
  });
}

async function caught(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error("expected the call to fail");
}

// ---------------------------------------------------------------- targeted

describe("order of values of every type in an index", () => {
  it("a single-field index returns ASCENDING in order, asc and desc, and each value by eq()", async () => {
    t = walkinTest(schema, {});
    // Inserted in a scrambled order, so creation order does not give the answer away.
    const scrambled = ASCENDING.map((value, i) => ({ value, i })).sort((x, y) => ((x.i * 7919) % 53) - ((y.i * 7919) % 53));
    await insertAll(scrambled.map(({ value, i }) => ({ b: value, tag: String(i) })));
    const result = await t.run(async (ctx) => {
      const asc = (await ctx.db.query("items").withIndex("by_b").collect()).map((d) => Number(d.tag));
      const desc = (await ctx.db.query("items").withIndex("by_b").order("desc").collect()).map((d) => Number(d.tag));
      const eqs: number[][] = [];
      for (const value of ASCENDING) {
        eqs.push((await ctx.db.query("items").withIndex("by_b", (q) => q.eq("b", value as Value)).collect()).map((d) => Number(d.tag)));
      }
      return { asc, desc, eqs };
    });
    const expected = ASCENDING.map((_, i) => i);
    expect(result.asc).toEqual(expected);
    expect(result.desc).toEqual([...expected].reverse());
    expect(result.eqs).toEqual(expected.map((i) => [i]));
  });

  it("gt/gte/lt/lte at every value keep exactly the values on their side", async () => {
    t = walkinTest(schema, {});
    await insertAll(ASCENDING.map((value, i) => ({ b: value, tag: String(i) })));
    const result = await t.run(async (ctx) => {
      const out: Record<string, number[]> = {};
      for (let i = 0; i < ASCENDING.length; i++) {
        const x = ASCENDING[i] as Value;
        const q = () => ctx.db.query("items");
        const tags = (docs: Array<{ tag?: string }>) => docs.map((d) => Number(d.tag));
        out[`gt ${i}`] = tags(await q().withIndex("by_b", (r) => r.gt("b", x)).collect());
        out[`gte ${i}`] = tags(await q().withIndex("by_b", (r) => r.gte("b", x)).collect());
        out[`lt ${i}`] = tags(await q().withIndex("by_b", (r) => r.lt("b", x)).collect());
        out[`lte ${i}`] = tags(await q().withIndex("by_b", (r) => r.lte("b", x)).collect());
      }
      return out;
    });
    const all = ASCENDING.map((_, i) => i);
    for (let i = 0; i < ASCENDING.length; i++) {
      expect(result[`gt ${i}`], `gt ${i}`).toEqual(all.filter((j) => j > i));
      expect(result[`gte ${i}`], `gte ${i}`).toEqual(all.filter((j) => j >= i));
      expect(result[`lt ${i}`], `lt ${i}`).toEqual(all.filter((j) => j < i));
      expect(result[`lte ${i}`], `lte ${i}`).toEqual(all.filter((j) => j <= i));
    }
  });

  it("filters compare with the same order as the index", async () => {
    t = walkinTest(schema, {});
    await insertAll(ASCENDING.map((value, i) => ({ b: value, tag: String(i) })));
    const result = await t.run(async (ctx) => {
      const out: Record<string, number[]> = {};
      for (const i of [0, 1, 9, 10, 15, 19, 27, 29, 32, 38, 44]) {
        const x = ASCENDING[i] as Value;
        const tags = (docs: Array<{ tag?: string }>) => docs.map((d) => Number(d.tag)).sort((p, q) => p - q);
        out[`eq ${i}`] = tags(await ctx.db.query("items").filter((q) => q.eq(q.field("b"), x)).collect());
        out[`lt ${i}`] = tags(await ctx.db.query("items").filter((q) => q.lt(q.field("b"), x)).collect());
        out[`gte ${i}`] = tags(await ctx.db.query("items").filter((q) => q.gte(q.field("b"), x)).collect());
      }
      return out;
    });
    const all = ASCENDING.map((_, i) => i);
    for (const [name, tags] of Object.entries(result)) {
      const [op, i] = [name.split(" ")[0], Number(name.split(" ")[1])];
      const expected = all.filter((j) => (op === "eq" ? j === i : op === "lt" ? j < i : j >= i));
      expect(tags, name).toEqual(expected);
    }
  });
});

describe("compound index with missing fields", () => {
  it("eq on the first field includes documents missing the second; lt/gt on it treat missing as lowest", async () => {
    t = walkinTest(schema, {});
    await insertAll([
      { a: 1, tag: "1-" },
      { a: 1, b: null, tag: "1null" },
      { a: 1, b: 0, tag: "1,0" },
      { a: 1, b: "x", tag: "1x" },
      { a: 2, tag: "2-" },
      { tag: "--" },
      { b: 1, tag: "-1" },
      { a: 1n, b: 0, tag: "1n,0" },
      { a: [1], tag: "[1]-" },
      { a: [1, 2], tag: "[1,2]-" },
    ]);
    const r = await t.run(async (ctx) => {
      const tags = (docs: Array<{ tag?: string }>) => docs.map((d) => d.tag);
      const q = () => ctx.db.query("items");
      return {
        eq1: tags(await q().withIndex("by_a_b", (x) => x.eq("a", 1)).collect()),
        eq1undef: tags(await q().withIndex("by_a_b", (x) => x.eq("a", 1).eq("b", undefined)).collect()),
        eqUndef: tags(await q().withIndex("by_a_b", (x) => x.eq("a", undefined)).collect()),
        lt1_0: tags(await q().withIndex("by_a_b", (x) => x.eq("a", 1).lt("b", 0)).collect()),
        gtUndef: tags(await q().withIndex("by_a_b", (x) => x.eq("a", 1).gt("b", undefined)).collect()),
        lteNull: tags(await q().withIndex("by_a_b", (x) => x.eq("a", 1).lte("b", null)).collect()),
        eqArr: tags(await q().withIndex("by_a_b", (x) => x.eq("a", [1])).collect()),
        desc: tags(await q().withIndex("by_a_b", (x) => x.eq("a", 1).gte("b", null).lte("b", "x")).order("desc").collect()),
      };
    });
    expect(r.eq1).toEqual(["1-", "1null", "1,0", "1x"]);
    expect(r.eq1undef).toEqual(["1-"]);
    expect(r.eqUndef).toEqual(["--", "-1"]);
    expect(r.lt1_0).toEqual(["1-", "1null"]);
    expect(r.gtUndef).toEqual(["1null", "1,0", "1x"]);
    expect(r.lteNull).toEqual(["1-", "1null"]);
    expect(r.eqArr).toEqual(["[1]-"]);
    expect(r.desc).toEqual(["1x", "1,0", "1null"]);
  });
});

describe("bad input is refused with a clear error", () => {
  it("range chains out of order, on fields not in the index, or past its end", async () => {
    t = walkinTest(schema, {});
    const attempts: Array<[string, (q: any) => unknown]> = [
      ["eq on the second field first", (q) => q.eq("b", 1)],
      ["gt before eq", (q) => q.gt("a", 1).eq("b", 2)],
      ["lt then gt", (q) => q.lt("a", 1).gt("a", 0)],
      ["two lower bounds", (q) => q.gt("a", 1).gte("a", 2)],
      ["two upper bounds", (q) => q.lt("a", 1).lte("a", 2)],
      ["bounds on two fields", (q) => q.gt("a", 1).lt("b", 2)],
      ["field not in the index", (q) => q.eq("tag", "x")],
      ["past the last field", (q) => q.eq("a", 1).eq("b", 1).eq("_creationTime", 1).eq("_id", "x").eq("tag", 1)],
      ["callback returns nothing", (q) => void q.eq("a", 1)],
    ];
    for (const [name, range] of attempts) {
      const e = await caught(t.run(async (ctx) => ctx.db.query("items").withIndex("by_a_b", range as never).collect()));
      expect(isWalkinError(e), name).toBe(true);
      expect(e.code, name).toBe("MISUSE");
    }
    const unknownIndex = await caught(t.run(async (ctx) => ctx.db.query("items").withIndex("nope" as never).collect()));
    expect(unknownIndex.code).toBe("MISUSE");
    expect(unknownIndex.message).toContain("by_a_b");
    // A search on a table without that search index says how to declare one.
    const search = await caught(t.run(async (ctx) => (ctx.db.query("items") as any).withSearchIndex("search_tag", (q: any) => q.search("tag", "x")).collect()));
    expect(search.code).toBe("MISUSE");
    expect(search.message).toMatch(/no search index "search_tag" \(its search indexes: none\)\. Declare it with defineTable\(\.\.\.\)\.searchIndex/);
    // An ordinary index is not searched as if it held words.
    const notSearch = await caught(t.run(async (ctx) => (ctx.db.query("items") as any).withSearchIndex("by_b", (q: any) => q.search("b", "x")).collect()));
    expect(notSearch.code).toBe("MISUSE");
    expect(notSearch.message).toMatch(/"by_b" is not a search index/);
  });

  it("unique() throws on two results, also when a filter leaves exactly two", async () => {
    t = walkinTest(schema, {});
    await insertAll([{ a: 1, tag: "x" }, { a: 1, tag: "y" }, { a: 1, tag: "y" }, { a: 2, tag: "y" }]);
    const two = await caught(t.run(async (ctx) => ctx.db.query("items").withIndex("by_a_b", (q) => q.eq("a", 1)).filter((q) => q.eq(q.field("tag"), "y")).unique()));
    expect(two.code).toBe("NOT_UNIQUE");
    const one = await t.run(async (ctx) => ctx.db.query("items").withIndex("by_a_b", (q) => q.eq("a", 2)).unique());
    expect(one?.tag).toBe("y");
    expect(await t.run(async (ctx) => ctx.db.query("items").withIndex("by_a_b", (q) => q.eq("a", 3)).unique())).toBeNull();
  });
});

// ---------------------------------------------------------------- pagination and cursors

describe("cursors belong to their query", () => {
  it("a cursor never widens the query's own range (a cursor from a wider query)", async () => {
    t = walkinTest(schema, {});
    await insertAll([1, 2, 3, 4, 5, 6, 7, 8].map((a) => ({ a, b: 0 })));
    const result = await t.run(async (ctx) => {
      // A cursor after a = 1 from the whole index...
      const wide = await ctx.db.query("items").withIndex("by_a_b").paginate({ numItems: 1, cursor: null });
      // ...given to the query for a >= 5.
      const narrow = await ctx.db.query("items").withIndex("by_a_b", (q) => q.gte("a", 5)).paginate({ numItems: 10, cursor: wide.continueCursor });
      return narrow.page.map((d) => d.a);
    }).catch((e) => e as Error);
    // Either refused with a clear error (as Convex does: "InvalidCursor"), or within the range.
    if (result instanceof Error) {
      expect(isWalkinError(result)).toBe(true);
    } else {
      for (const a of result) expect(a as number).toBeGreaterThanOrEqual(5);
    }
  });

  it("an endCursor never widens the query's own range either", async () => {
    t = walkinTest(schema, {});
    await insertAll([1, 2, 3, 4, 5, 6, 7, 8].map((a) => ({ a, b: 0 })));
    const result = await t.run(async (ctx) => {
      const wide = await ctx.db.query("items").withIndex("by_a_b").paginate({ numItems: 7, cursor: null });
      const narrow = await ctx.db
        .query("items")
        .withIndex("by_a_b", (q) => q.lte("a", 3))
        .paginate({ numItems: 10, cursor: null, endCursor: wide.continueCursor });
      return narrow.page.map((d) => d.a);
    }).catch((e) => e as Error);
    if (result instanceof Error) {
      expect(isWalkinError(result)).toBe(true);
    } else {
      for (const a of result) expect(a as number).toBeLessThanOrEqual(3);
    }
  });

  it("a cursor from another index is refused with a clear error", async () => {
    t = walkinTest(schema, {});
    await insertAll([1, 2, 3, 4].map((a) => ({ a, b: 10 - a })));
    const result = await t.run(async (ctx) => {
      const first = await ctx.db.query("items").withIndex("by_b").paginate({ numItems: 2, cursor: null });
      return ctx.db.query("items").withIndex("by_a_b").paginate({ numItems: 10, cursor: first.continueCursor });
    }).catch((e) => e as Error);
    expect(result).toBeInstanceOf(Error);
    expect(isWalkinError(result)).toBe(true);
  });

  it("a made-up cursor is refused with a clear error", async () => {
    t = walkinTest(schema, {});
    await insertAll([{ a: 1 }]);
    const result = await t.run(async (ctx) => ctx.db.query("items").paginate({ numItems: 10, cursor: "AAAA" })).catch((e) => e as Error);
    expect(result).toBeInstanceOf(Error);
    expect(isWalkinError(result)).toBe(true);
  });
});

// ---------------------------------------------------------------- randomized, against brute force

/** A smaller pool than ASCENDING, so equal values (and ties broken by creation time) are common. */
const POOL: readonly unknown[] = [undefined, null, 0n, 5n, -Infinity, -0, 0, 1, NaN, false, true, "", "a", "a\0", "\uFFFF", "\u{1F600}", bytes(0), [], [1], {}, { a: 1 }];

type Op = "gt" | "gte" | "lt" | "lte";
interface RandomQuery {
  eqs: unknown[];
  lower?: { op: "gt" | "gte"; value: unknown };
  upper?: { op: "lt" | "lte"; value: unknown };
  order: "asc" | "desc";
  filter?: { field: "a" | "b"; op: "eq" | "neq" | Op; value: unknown; negate: boolean };
}

function randomQuery(rand: ReturnType<typeof generator>): RandomQuery {
  const eqCount = rand.int(3);
  const query: RandomQuery = { eqs: Array.from({ length: eqCount }, () => rand.pick(POOL)), order: rand.next() < 0.5 ? "asc" : "desc" };
  if (eqCount < 2) {
    if (rand.next() < 0.6) query.lower = { op: rand.next() < 0.5 ? "gt" : "gte", value: rand.pick(POOL) };
    if (rand.next() < 0.6) query.upper = { op: rand.next() < 0.5 ? "lt" : "lte", value: rand.pick(POOL) };
  }
  if (rand.next() < 0.4) {
    query.filter = { field: rand.next() < 0.5 ? "a" : "b", op: rand.pick(["eq", "neq", "gt", "gte", "lt", "lte"] as const), value: rand.pick(POOL), negate: rand.next() < 0.3 };
  }
  return query;
}

function describeQuery(query: RandomQuery): string {
  const show = (x: unknown) =>
    x === undefined ? "undefined" : typeof x === "bigint" ? `${x}n` : Object.is(x, -0) ? "-0" : x instanceof ArrayBuffer ? `bytes(${[...new Uint8Array(x)]})` : typeof x === "number" && !Number.isFinite(x) ? String(x) : JSON.stringify(x);
  const fields = ["a", "b"];
  let s = query.eqs.map((x, i) => `.eq("${fields[i]}", ${show(x)})`).join("");
  const f = fields[query.eqs.length];
  if (query.lower) s += `.${query.lower.op}("${f}", ${show(query.lower.value)})`;
  if (query.upper) s += `.${query.upper.op}("${f}", ${show(query.upper.value)})`;
  let out = `withIndex("by_a_b", q => q${s}).order("${query.order}")`;
  if (query.filter) {
    const cmp = `q.${query.filter.op}(q.field("${query.filter.field}"), ${show(query.filter.value)})`;
    out += `.filter(q => ${query.filter.negate ? `q.not(${cmp})` : cmp})`;
  }
  return out;
}

function build(ctx: any, query: RandomQuery) {
  const fields = ["a", "b"];
  let q = ctx.db.query("items").withIndex("by_a_b", (r: any) => {
    for (let i = 0; i < query.eqs.length; i++) r = r.eq(fields[i], query.eqs[i]);
    const f = fields[query.eqs.length];
    if (query.lower) r = r[query.lower.op](f, query.lower.value);
    if (query.upper) r = r[query.upper.op](f, query.upper.value);
    return r;
  });
  q = q.order(query.order);
  if (query.filter) {
    const { field, op, value, negate } = query.filter;
    q = q.filter((b: any) => {
      const cmp = b[op](b.field(field), value);
      return negate ? b.not(cmp) : cmp;
    });
  }
  return q;
}

function bruteForce(docs: readonly Item[], query: RandomQuery): string[] {
  const inRange = (doc: Item) => {
    const tuple = [doc.a, doc.b];
    for (let i = 0; i < query.eqs.length; i++) if (order(tuple[i], query.eqs[i]) !== 0) return false;
    const x = tuple[query.eqs.length];
    if (query.lower) {
      const c = order(x, query.lower.value);
      if (query.lower.op === "gt" ? c <= 0 : c < 0) return false;
    }
    if (query.upper) {
      const c = order(x, query.upper.value);
      if (query.upper.op === "lt" ? c >= 0 : c > 0) return false;
    }
    return true;
  };
  const passes = (doc: Item) => {
    if (!query.filter) return true;
    const { field, op, value, negate } = query.filter;
    const c = order(doc[field], value);
    const r = op === "eq" ? c === 0 : op === "neq" ? c !== 0 : op === "gt" ? c > 0 : op === "gte" ? c >= 0 : op === "lt" ? c < 0 : c <= 0;
    return negate ? !r : r;
  };
  const sorted = docs.filter((d) => inRange(d) && passes(d)).sort(
    (x, y) => order(x.a, y.a) || order(x.b, y.b) || order(x._creationTime, y._creationTime) || order(x._id, y._id),
  );
  if (query.order === "desc") sorted.reverse();
  return sorted.map((d) => d._id);
}

function randomDoc(rand: ReturnType<typeof generator>): { a?: unknown; b?: unknown } {
  const doc: { a?: unknown; b?: unknown } = {};
  const a = rand.pick(POOL);
  const b = rand.pick(POOL);
  if (a !== undefined) doc.a = a;
  if (b !== undefined) doc.b = b;
  return doc;
}

describe("random queries against brute force", () => {
  for (const seed of [1, 2, 3]) {
    it(`collect, take, first and paginate agree with filter-and-sort (seed ${seed})`, async () => {
      t = walkinTest(schema, {});
      const rand = generator(seed * 7717);
      await insertAll(Array.from({ length: 60 }, () => randomDoc(rand)));
      const queries = Array.from({ length: 150 }, () => randomQuery(rand));
      const sizes = queries.map(() => 1 + rand.int(5));
      const failures = await t.run(async (ctx) => {
        const docs = (await ctx.db.query("items").collect()) as Item[];
        const out: string[] = [];
        for (let i = 0; i < queries.length; i++) {
          const query = queries[i]!;
          const expected = bruteForce(docs, query);
          const ids = (list: Array<{ _id: string }>) => list.map((d) => d._id);
          const collected = ids(await build(ctx, query).collect());
          if (JSON.stringify(collected) !== JSON.stringify(expected)) out.push(`collect ${describeQuery(query)}: ${collected.length} vs ${expected.length}`);
          const n = sizes[i]!;
          const taken = ids(await build(ctx, query).take(n));
          if (JSON.stringify(taken) !== JSON.stringify(expected.slice(0, n))) out.push(`take(${n}) ${describeQuery(query)}`);
          const first = (await build(ctx, query).first())?._id ?? null;
          if (first !== (expected[0] ?? null)) out.push(`first ${describeQuery(query)}`);
          const iterated: string[] = [];
          for await (const doc of build(ctx, query)) iterated.push(doc._id);
          if (JSON.stringify(iterated) !== JSON.stringify(expected)) out.push(`for await ${describeQuery(query)}`);
          const paged: string[] = [];
          let cursor: string | null = null;
          for (let guard = 0; guard < 100; guard++) {
            const result: any = await build(ctx, query).paginate({ numItems: n, cursor });
            if (result.page.length > n) out.push(`page over numItems ${describeQuery(query)}`);
            paged.push(...ids(result.page));
            if (result.isDone) break;
            cursor = result.continueCursor;
          }
          if (JSON.stringify(paged) !== JSON.stringify(expected)) out.push(`paginate(${n}) ${describeQuery(query)}`);
        }
        return out;
      });
      expect(failures).toEqual([]);
    });
  }
});

describe("live pagination under writes", () => {
  /** What usePaginatedQuery does: every page but the last pinned to its end cursor. */
  interface Page { cursor: string | null; numItems: number; endCursor?: string }

  for (const seed of [11, 12, 13, 14]) {
    it(`pinned pages stay contiguous: no document skipped or repeated (seed ${seed})`, async () => {
      t = walkinTest(schema, {});
      const rand = generator(seed * 104729);
      await insertAll(Array.from({ length: 25 }, () => randomDoc(rand)));
      for (let round = 0; round < 4; round++) {
        const query = randomQuery(rand);
        const pages: Page[] = [{ cursor: null, numItems: 1 + rand.int(4) }];
        const problems: string[] = [];
        for (let step = 0; step < 25; step++) {
          // Run every page, as the subscriptions would after the last write.
          const { docs, results } = await t.run(async (ctx) => {
            const results: Array<{ page: Array<{ _id: string }>; isDone: boolean; continueCursor: string }> = [];
            for (const page of pages) {
              const opts: any = { numItems: page.numItems, cursor: page.cursor };
              if (page.endCursor !== undefined) opts.endCursor = page.endCursor;
              results.push(await build(ctx, query).paginate(opts));
            }
            return { docs: (await ctx.db.query("items").collect()) as Item[], results };
          });
          const expected = bruteForce(docs, query);
          const seen = results.flatMap((r) => r.page.map((d) => d._id));
          if (JSON.stringify(seen) !== JSON.stringify(expected.slice(0, seen.length))) {
            problems.push(`step ${step}, ${pages.length} pages, ${describeQuery(query)}: ${JSON.stringify(seen)} is not a prefix of ${JSON.stringify(expected)}`);
            break;
          }
          const last = results[results.length - 1]!;
          const lastPage = pages[pages.length - 1]!;
          const remaining = expected.length - (seen.length - last.page.length);
          if (last.page.length !== Math.min(lastPage.numItems, remaining)) problems.push(`step ${step}: last page has ${last.page.length}, expected ${Math.min(lastPage.numItems, remaining)}`);
          // Either load more (when the last page is not done) or write.
          if (!last.isDone && rand.next() < 0.4) {
            pages[pages.length - 1] = { ...lastPage, endCursor: last.continueCursor };
            pages.push({ cursor: last.continueCursor, numItems: 1 + rand.int(4) });
          } else {
            await t.run(async (ctx) => {
              for (let w = 0; w < 1 + rand.int(3); w++) {
                const all = (await ctx.db.query("items").collect()) as Item[];
                const choice = rand.next();
                if (choice < 0.4 || all.length < 5) await ctx.db.insert("items", randomDoc(rand) as never);
                else if (choice < 0.7) await ctx.db.delete(rand.pick(all)._id as never);
                else {
                  const target = rand.pick(all);
                  const patch = randomDoc(rand);
                  await ctx.db.patch(target._id as never, { a: patch.a, b: patch.b } as never);
                }
              }
            });
          }
        }
        expect(problems).toEqual([]);
      }
    });
  }
});

describe("live paginated subscriptions under writes", () => {
  // Queries are registered by number: their bounds hold values (bigint, NaN, bytes, undefined)
  // that args could carry only in part.
  const registered: RandomQuery[] = [];
  const probe = {
    page: query({
      args: { q: v.number(), paginationOpts: v.any() },
      handler: async (ctx, { q, paginationOpts }) => {
        const result = await build(ctx, registered[q]!).paginate(paginationOpts);
        return { ids: result.page.map((d: { _id: string }) => d._id), isDone: result.isDone, continueCursor: result.continueCursor };
      },
    }),
  };
  type PageResult = { ids: string[]; isDone: boolean; continueCursor: string };

  for (const seed of [21, 22, 23]) {
    it(`every page's live result is the fresh one, and pages stay contiguous (seed ${seed})`, async () => {
      t = walkinTest(schema, { probe });
      const engine = await t.engine();
      const rand = generator(seed * 15485863);
      await insertAll(Array.from({ length: 25 }, () => randomDoc(rand)));
      for (let round = 0; round < 3; round++) {
        registered.push(randomQuery(rand));
        const q = registered.length - 1;
        type Live = { opts: Record<string, unknown>; latest: PageResult | string; unsubscribe: () => void };
        const subscribe = async (opts: Record<string, unknown>): Promise<Live> => {
          const live: Live = { opts, latest: "none", unsubscribe: () => {} };
          const sub = await engine.subscriptions.subscribe("probe:page", { q, paginationOpts: opts }, {}, (outcome) => {
            live.latest = outcome.ok ? (outcome.value as PageResult) : `error: ${outcome.error.message}`;
          });
          live.latest = sub.outcome.ok ? (sub.outcome.value as PageResult) : `error: ${sub.outcome.error.message}`;
          live.unsubscribe = () => sub.unsubscribe();
          return live;
        };
        const pages: Live[] = [await subscribe({ numItems: 1 + rand.int(4), cursor: null })];
        for (let step = 0; step < 20; step++) {
          const context = `round ${round}, step ${step}, ${describeQuery(registered[q]!)}`;
          for (const [i, page] of pages.entries()) {
            const fresh = await engine.runQuery("probe:page", { q, paginationOpts: page.opts }, {});
            expect(page.latest, `${context}, page ${i} ${JSON.stringify(page.opts)}`).toEqual(fresh);
          }
          const docs = await t.run(async (ctx) => (await ctx.db.query("items").collect()) as Item[]);
          const expected = bruteForce(docs, registered[q]!);
          const seen = pages.flatMap((p) => (p.latest as PageResult).ids);
          expect(seen, context).toEqual(expected.slice(0, seen.length));
          const last = pages[pages.length - 1]!;
          const lastResult = last.latest as PageResult;
          if (!lastResult.isDone && rand.next() < 0.4) {
            // loadMore: pin the last page, append the next.
            const cursor = lastResult.continueCursor;
            pages[pages.length - 1] = await subscribe({ ...last.opts, endCursor: cursor });
            last.unsubscribe();
            pages.push(await subscribe({ numItems: 1 + rand.int(4), cursor }));
            continue;
          }
          // A few commits in a row, some writing several documents, then settle.
          const commits = 1 + rand.int(3);
          const pending: Promise<unknown>[] = [];
          for (let c = 0; c < commits; c++) {
            const writes = 1 + rand.int(3);
            const plan = Array.from({ length: writes }, () => ({ choice: rand.next(), doc: randomDoc(rand), pick: rand.next() }));
            pending.push(t.run(async (ctx) => {
              for (const { choice, doc, pick } of plan) {
                const all = (await ctx.db.query("items").collect()) as Item[];
                const target = all[Math.floor(pick * all.length)];
                if (choice < 0.4 || target === undefined || all.length < 5) await ctx.db.insert("items", doc as never);
                else if (choice < 0.7) await ctx.db.delete(target._id as never);
                else await ctx.db.patch(target._id as never, { a: doc.a, b: doc.b } as never);
              }
            }));
          }
          await Promise.all(pending);
          await settle(engine);
        }
        for (const page of pages) page.unsubscribe();
      }
    });
  }
});

describe("values that are not Convex values", () => {
  it("a Date (or other non-value) as an index bound is refused, not read as {}", async () => {
    t = walkinTest(schema, {});
    await insertAll([{ b: {}, tag: "empty object" }, { b: 1, tag: "one" }]);
    const outcomes: Record<string, unknown> = {};
    for (const [name, value] of [["Date", new Date(0)], ["Map", new Map([["k", 1]])], ["Uint8Array", new Uint8Array([1])]] as const) {
      outcomes[`withIndex ${name}`] = await t
        .run(async (ctx) => (await ctx.db.query("items").withIndex("by_b", (q) => q.eq("b", value as never)).collect()).map((d) => d.tag))
        .catch((e) => (isWalkinError(e) ? "refused" : `other error: ${(e as Error).message}`));
      outcomes[`filter ${name}`] = await t
        .run(async (ctx) => (await ctx.db.query("items").filter((q) => q.eq(q.field("b"), value as never)).collect()).map((d) => d.tag))
        .catch((e) => (isWalkinError(e) ? "refused" : `other error: ${(e as Error).message}`));
    }
    expect(outcomes).toEqual({
      "withIndex Date": "refused",
      "filter Date": "refused",
      "withIndex Map": "refused",
      "filter Map": "refused",
      "withIndex Uint8Array": "refused",
      "filter Uint8Array": "refused",
    });
  });
});

describe("queries over a mutation's own pending writes", () => {
  for (const seed of [31, 32]) {
    it(`collect and paginate see inserts, patches and deletes made earlier in the same mutation (seed ${seed})`, async () => {
      t = walkinTest(schema, {});
      const rand = generator(seed * 7919);
      await insertAll(Array.from({ length: 30 }, () => randomDoc(rand)));
      const failures = await t.run(async (ctx) => {
        const out: string[] = [];
        // The model: committed documents, then this mutation's writes applied by hand.
        const model = new Map<string, Item>();
        for (const doc of (await ctx.db.query("items").collect()) as Item[]) model.set(doc._id, { ...doc });
        for (let round = 0; round < 6; round++) {
          for (let w = 0; w < 6; w++) {
            const ids = [...model.keys()];
            const choice = rand.next();
            const doc = randomDoc(rand);
            if (choice < 0.4 || ids.length < 5) {
              const id = await ctx.db.insert("items", doc as never);
              model.set(id, { ...(await ctx.db.get(id as never))! } as Item);
            } else if (choice < 0.7) {
              const id = rand.pick(ids);
              await ctx.db.delete(id as never);
              model.delete(id);
            } else {
              const id = rand.pick(ids);
              await ctx.db.patch(id as never, { a: doc.a, b: doc.b } as never);
              const next: Item = { ...model.get(id)! };
              if (doc.a === undefined) delete next.a; else next.a = doc.a;
              if (doc.b === undefined) delete next.b; else next.b = doc.b;
              model.set(id, next);
            }
          }
          const docs = [...model.values()];
          for (let i = 0; i < 25; i++) {
            const query = randomQuery(rand);
            const expected = bruteForce(docs, query);
            const collected = (await build(ctx, query).collect()).map((d: Item) => d._id);
            if (JSON.stringify(collected) !== JSON.stringify(expected)) out.push(`round ${round} collect ${describeQuery(query)}: ${collected.length} vs ${expected.length}`);
            const n = 1 + rand.int(4);
            const paged: string[] = [];
            let cursor: string | null = null;
            for (let guard = 0; guard < 100; guard++) {
              const result: any = await build(ctx, query).paginate({ numItems: n, cursor });
              paged.push(...result.page.map((d: Item) => d._id));
              if (result.isDone) break;
              cursor = result.continueCursor;
            }
            if (JSON.stringify(paged) !== JSON.stringify(expected)) out.push(`round ${round} paginate(${n}) ${describeQuery(query)}`);
            // The documents returned are the current versions.
            for (const doc of await build(ctx, query).take(3)) {
              const model = docs.find((d) => d._id === doc._id);
              if (order(doc.a, model?.a) !== 0 || order(doc.b, model?.b) !== 0) out.push(`round ${round} stale document ${doc._id}`);
            }
          }
        }
        return out;
      });
      expect(failures).toEqual([]);
    });
  }
});

describe("a filter callback that does not return an expression", () => {
  it("an async filter (returns a Promise) is refused, not read as false for every document", async () => {
    t = walkinTest(schema, {});
    await insertAll([{ a: 1 }, { a: 2 }]);
    const outcome = await t
      .run(async (ctx) => (await ctx.db.query("items").filter((async (q: any) => q.eq(q.field("a"), 1)) as never).collect()).length)
      .catch((e) => (isWalkinError(e) ? "refused" : `other error: ${(e as Error).message}`));
    expect(outcome).toBe("refused");
  });
});

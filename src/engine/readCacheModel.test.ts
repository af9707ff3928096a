/**
 * The read cache (readCache.ts), at random: engines with a cache must answer exactly like storage
 * at the same snapshot, whatever the interleaving of writes (their own and another engine's on
 * the same file), reads at older snapshots, eviction and admission.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { defineSchema, defineTable, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { withLatency } from "../storage/latency.js";
import { rangeContains } from "../storage/keyRange.js";
import type { DocumentVersion, DocumentWrite, IndexEntry, IndexWrite, KeyBound, ScanRequest, Storage, Timestamp } from "../storage/types.js";
import { compareBytes, encodeIndexKey } from "../values/indexKey.js";
import { idKey } from "./documents.js";
import { Engine } from "./engine.js";
import { decodedCopy } from "./keptVersions.js";
import { ReadCache, type DecodedVersion } from "./readCache.js";
import { seededRandom } from "../storage/conformance/history.js";

const schema = defineSchema({
  items: defineTable({ name: v.string(), n: v.number(), tags: v.optional(v.array(v.string())) })
    .index("by_name", ["name"])
    .index("by_n", ["n"]),
  counters: defineTable({ value: v.number() }),
});

const byName = (name: string) => (q: any) => q.eq("name", name);

const modules = {
  items: {
    insert: mutation({
      args: { name: v.string(), n: v.number(), tags: v.optional(v.array(v.string())) },
      handler: (ctx, args) => ctx.db.insert("items", args),
    }),
    patchByName: mutation({
      args: { name: v.string(), n: v.optional(v.number()), to: v.optional(v.string()) },
      handler: async (ctx, { name, n, to }) => {
        const doc = await ctx.db.query("items").withIndex("by_name", byName(name)).first();
        if (!doc) return null;
        await ctx.db.patch(doc._id, { ...(n !== undefined ? { n } : {}), ...(to !== undefined ? { name: to } : {}) });
        return doc._id;
      },
    }),
    replace: mutation({
      args: { id: v.id("items"), name: v.string(), n: v.number(), tags: v.optional(v.array(v.string())) },
      handler: async (ctx, { id, ...rest }) => {
        if (!(await ctx.db.get(id))) return null;
        await ctx.db.replace(id, rest);
        return id;
      },
    }),
    remove: mutation({
      args: { id: v.id("items") },
      handler: async (ctx, { id }) => {
        if (await ctx.db.get(id)) await ctx.db.delete(id);
      },
    }),
    /** Several writes in one commit: inserts, a delete by name, a patch of every item with n. */
    multi: mutation({
      args: { names: v.array(v.string()), n: v.number(), del: v.string() },
      handler: async (ctx, { names, n, del }) => {
        for (const name of names) await ctx.db.insert("items", { name, n });
        const gone = await ctx.db.query("items").withIndex("by_name", byName(del)).first();
        if (gone) await ctx.db.delete(gone._id);
        for (const doc of await ctx.db.query("items").withIndex("by_n", (q: any) => q.eq("n", n + 1)).collect()) {
          await ctx.db.patch(doc._id, { n: n + 2 });
        }
      },
    }),
  },
  counters: {
    create: mutation({ args: {}, handler: (ctx) => ctx.db.insert("counters", { value: 0 }) }),
    /** Read-modify-write: a stale read of the counter loses an increment. */
    bump: mutation({
      args: { id: v.id("counters") },
      handler: async (ctx, { id }) => {
        const doc = (await ctx.db.get(id))!;
        await ctx.db.patch(id, { value: doc.value + 1 });
        return doc.value + 1;
      },
    }),
    get: query({ args: { id: v.id("counters") }, handler: (ctx, { id }) => ctx.db.get(id) }),
  },
  reads: {
    list: query({
      args: { from: v.string(), to: v.string(), order: v.union(v.literal("asc"), v.literal("desc")), n: v.number() },
      handler: (ctx, { from, to, order, n }) =>
        ctx.db.query("items").withIndex("by_name", (q: any) => q.gte("name", from).lt("name", to)).order(order).take(n),
    }),
    all: query({
      args: { order: v.union(v.literal("asc"), v.literal("desc")) },
      handler: (ctx, { order }) => ctx.db.query("items").withIndex("by_name").order(order).collect(),
    }),
    byN: query({ args: { n: v.number() }, handler: (ctx, { n }) => ctx.db.query("items").withIndex("by_n", (q: any) => q.eq("n", n)).collect() }),
    unique: query({ args: { name: v.string() }, handler: (ctx, { name }) => ctx.db.query("items").withIndex("by_name", byName(name)).first() }),
    filtered: query({
      args: { n: v.number() },
      handler: (ctx, { n }) => ctx.db.query("items").withIndex("by_name").filter((q: any) => q.gte(q.field("n"), n)).take(3),
    }),
    get: query({ args: { ids: v.array(v.id("items")) }, handler: (ctx, { ids }) => Promise.all(ids.map((id) => ctx.db.get(id))) }),
    /** Reads, changes everything it read, reads again: the second reading is returned. */
    mangle: query({
      args: { name: v.string(), ids: v.array(v.id("items")) },
      handler: async (ctx, { name, ids }) => {
        const mess = (doc: any) => {
          if (!doc) return;
          doc.n = -1;
          doc.name = "mangled";
          doc.tags?.push("x");
          doc.extra = true;
        };
        mess(await ctx.db.query("items").withIndex("by_name", byName(name)).first());
        for (const doc of await ctx.db.query("items").withIndex("by_name").take(5)) mess(doc);
        for (const id of ids) mess(await ctx.db.get(id));
        return {
          one: await ctx.db.query("items").withIndex("by_name", byName(name)).first(),
          five: await ctx.db.query("items").withIndex("by_name").take(5),
          byId: await Promise.all(ids.map((id) => ctx.db.get(id))),
        };
      },
    }),
  },
};

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempFile(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-read-cache-model-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, "app.sqlite");
}

async function open(storage: Storage, options: { readCacheBytes?: number } = {}): Promise<Engine> {
  const engine = await Engine.open({ storage, schema, modules, runScheduler: false, ...options });
  cleanups.push(() => engine.close());
  return engine;
}

/** A query's value at `ts` on `engine` (through its cache, if it has one). */
async function queryAt(engine: Engine, path: string, args: unknown, ts: Timestamp): Promise<unknown> {
  const fn = engine.functions.resolve(path, "query", {});
  const run = await engine.executeQuery(fn, path, args, {}, ts);
  if (!run.outcome.ok) throw run.outcome.error;
  return run.outcome.value;
}

function rng(seed: number) {
  const next = seededRandom(seed);
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}

// Deeper runs: READ_CACHE_SEEDS=10 READ_CACHE_STEPS=300 (engines), READ_CACHE_MODEL_SEEDS=40 (the cache against the model).
describe("read cache, differential", () => {
  for (const seed of process.env.READ_CACHE_SEEDS ? Array.from({ length: Number(process.env.READ_CACHE_SEEDS) }, (_, i) => 100 + i) : [1, 2, 3]) {
    it(`answers like storage at every snapshot: two cached engines on one file, concurrent writes and reads, old snapshots, a tiny budget (seed ${seed})`, async () => {
      const filename = await tempFile();
      const r = rng(seed);
      // A: small budget (eviction and the doorkeeper at work) and network-like latency, so that
      // reads are in flight while commits land. B: another engine on the file, default budget.
      // C: no cache, the reference.
      const a = await open(withLatency(await openSqliteStorage({ filename }), { read: [0, 2], commit: 1, random: r.next }), { readCacheBytes: 12_000 });
      const b = await open(await openSqliteStorage({ filename }));
      const c = await open(await openSqliteStorage({ filename }), { readCacheBytes: 0 });
      const counter = (await a.runMutation("counters:create", {})).value as string;
      await b.refreshFromStorage();
      await c.refreshFromStorage();
      const start = a.latestTimestamp;
      for (const engine of [a, b, c]) engine.pinSnapshot(start); // keep history for reads at old snapshots
      const history: Timestamp[] = [start];
      const ids: string[] = [];
      let bumps = 0;
      const name = () => r.pick(["a", "b", "c", "d", "e", "f", "g"]) + r.pick(["", "x", "y"]);
      const readArgs = (): [string, unknown] => {
        switch (r.int(8)) {
          case 0: {
            const [from, to] = [name(), name()].sort();
            return ["reads:list", { from: from!, to: `${to}~`, order: r.pick(["asc", "desc"] as const), n: 1 + r.int(4) }];
          }
          case 1:
            return ["reads:all", { order: r.pick(["asc", "desc"] as const) }];
          case 2:
            return ["reads:byN", { n: r.int(6) }];
          case 3:
            return ["reads:unique", { name: name() }];
          case 4:
            return ["reads:filtered", { n: r.int(6) }];
          case 5:
            return ["reads:mangle", { name: name(), ids: ids.length ? [r.pick(ids), r.pick(ids)] : [] }];
          case 6:
            return ["counters:get", { id: counter }];
          default:
            return ["reads:get", { ids: ids.length ? [r.pick(ids), r.pick(ids), r.pick(ids)] : [] }];
        }
      };
      const write = async (engine: Engine): Promise<void> => {
        const roll = r.int(10);
        try {
          if (roll < 3) ids.push((await engine.runMutation("items:insert", { name: name(), n: r.int(6), ...(r.next() < 0.3 ? { tags: ["t"] } : {}) })).value as string);
          else if (roll < 5) await engine.runMutation("items:patchByName", { name: name(), ...(r.next() < 0.5 ? { n: r.int(6) } : { to: name() }) });
          else if (roll < 6 && ids.length) await engine.runMutation("items:replace", { id: r.pick(ids), name: name(), n: r.int(6), ...(r.next() < 0.5 ? { tags: ["r"] } : {}) });
          else if (roll < 7 && ids.length) await engine.runMutation("items:remove", { id: r.pick(ids) });
          else if (roll < 8) await engine.runMutation("items:multi", { names: [name(), name()], n: r.int(5), del: name() });
          else {
            await engine.runMutation("counters:bump", { id: counter });
            bumps += 1;
          }
        } catch (error) {
          // Conflicts past the retry limit are possible with two writers; nothing else is.
          if (!/conflict|retries|retried/i.test(String(error))) throw error;
        }
      };
      type Seen = { engine: Engine; label: string; path: string; args: unknown; ts: Timestamp; value: unknown };
      for (let step = 0; step < Number(process.env.READ_CACHE_STEPS ?? 120); step++) {
        const seen: Seen[] = [];
        const read = async (engine: Engine, label: string, ts: Timestamp) => {
          const [p, args] = readArgs();
          seen.push({ engine, label, path: p, args, ts, value: await queryAt(engine, p, args, ts) });
        };
        const actions: Array<Promise<void>> = [];
        for (let k = 1 + r.int(4); k > 0; k--) {
          const roll = r.int(10);
          if (roll < 4) actions.push(write(r.next() < 0.7 ? a : b));
          else if (roll < 7) actions.push(read(a, "a latest", a.latestTimestamp));
          else if (roll < 8) actions.push(read(b, "b latest", b.latestTimestamp));
          else {
            const engine = r.next() < 0.7 ? a : b;
            const ts = r.pick(history.filter((t) => t <= engine.latestTimestamp));
            actions.push(read(engine, engine === a ? "a old" : "b old", ts));
          }
        }
        await Promise.all(actions);
        if (r.next() < 0.3) await a.refreshFromStorage();
        if (r.next() < 0.3) await b.refreshFromStorage();
        history.push(Math.max(a.latestTimestamp, b.latestTimestamp));
        for (const s of seen) {
          expect(s.value, `step ${step}, ${s.label} ts ${s.ts}, ${s.path} ${JSON.stringify(s.args)}`).toEqual(await queryAt(c, s.path, s.args, s.ts));
        }
      }
      await a.refreshFromStorage();
      await b.refreshFromStorage();
      for (const engine of [a, b]) {
        expect(await engine.runQuery("reads:all", { order: "asc" })).toEqual(await queryAt(c, "reads:all", { order: "asc" }, engine.latestTimestamp));
      }
      await c.refreshFromStorage();
      expect(((await c.runQuery("counters:get", { id: counter })) as { value: number }).value).toBe(bumps);
      expect(a.reads.stats.bytes).toBeLessThanOrEqual(12_000);
      expect(a.reads.stats.hits + b.reads.stats.hits).toBeGreaterThan(50);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The cache alone against a model storage: exact control over when reads answer and commits land.
// ---------------------------------------------------------------------------------------------

const TABLE = "t";
const BY_ID = "t.by_id";
const BY_V = "t.by_v";

type ModelVersion = { ts: Timestamp; body: string | null };

/** A multi-version store with snapshot reads whose answers arrive only when released. */
class ModelStorage {
  readonly docs = new Map<string, ModelVersion[]>();
  /** Per index, per key (hex): the key and its versions (docId null: removed). */
  readonly index = new Map<string, Map<string, { key: Uint8Array; versions: Array<{ ts: Timestamp; docId: string | null }> }>>();
  readonly waiting: Array<{ release: () => void }> = [];
  failNext = false;
  immediate = false;

  docAt(id: string, readTs: Timestamp): ModelVersion | null {
    let found: ModelVersion | null = null;
    for (const version of this.docs.get(id) ?? []) if (version.ts <= readTs) found = version;
    return found;
  }

  getDocumentNow(id: string, readTs: Timestamp): DocumentVersion | null {
    const version = this.docAt(id, readTs);
    return version === null || version.body === null ? null : { id, table: TABLE, ts: version.ts, body: version.body };
  }

  scanNow(request: ScanRequest): IndexEntry[] {
    const live: IndexEntry[] = [];
    for (const { key, versions } of this.index.get(request.indexId)?.values() ?? []) {
      if (!rangeContains(request.range, key)) continue;
      let docId: string | null = null;
      for (const version of versions) if (version.ts <= request.readTs) docId = version.docId;
      if (docId === null) continue;
      const doc = this.getDocumentNow(docId, request.readTs);
      if (doc === null) continue;
      live.push({ key: new Uint8Array(key), doc: doc as IndexEntry["doc"] });
    }
    live.sort((x, y) => (request.order === "asc" ? 1 : -1) * compareBytes(x.key, y.key));
    return live.slice(0, request.limit);
  }

  private answerLater<T>(compute: () => T): Promise<T> {
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new Error("storage down"));
    }
    const value = compute(); // a snapshot read: the same whenever it is computed
    if (this.immediate) return Promise.resolve(value);
    return new Promise<T>((resolve) => this.waiting.push({ release: () => resolve(value) }));
  }

  getDocument(id: string, readTs: Timestamp): Promise<DocumentVersion | null> {
    return this.answerLater(() => this.getDocumentNow(id, readTs));
  }

  scan(request: ScanRequest): Promise<IndexEntry[]> {
    return this.answerLater(() => this.scanNow(request));
  }

  putIndex(indexId: string, key: Uint8Array, ts: Timestamp, docId: string | null): void {
    let ofIndex = this.index.get(indexId);
    if (ofIndex === undefined) this.index.set(indexId, (ofIndex = new Map()));
    const hex = Buffer.from(key).toString("hex");
    let entry = ofIndex.get(hex);
    if (entry === undefined) ofIndex.set(hex, (entry = { key, versions: [] }));
    entry.versions.push({ ts, docId });
  }
}

/** Checks the cache's books: every filed answer in its slot, the byte and entry counts right, free slots exactly the empty ones. */
function checkBooks(cache: ReadCache, maxBytes: number): void {
  const c = cache as unknown as {
    slots: Array<any>; freeSlots: number[]; documents: Map<string, any>; scans: Map<number, any>; scansByIndex: Map<string, Set<any>>; bytes: number; entries: number;
  };
  const filed = new Set<any>();
  let bytes = 0;
  c.slots.forEach((answer, i) => {
    if (answer === undefined) return;
    expect(answer.slot, "an answer at its own slot").toBe(i);
    expect(filed.has(answer), "an answer in two slots").toBe(false);
    filed.add(answer);
    bytes += answer.bytes;
  });
  expect(c.entries, "entries").toBe(filed.size);
  expect(c.bytes, "bytes").toBe(bytes);
  const free = [...c.freeSlots].sort((x, y) => x - y);
  expect(new Set(free).size, "a free slot listed twice").toBe(free.length);
  expect(free, "free slots").toEqual(c.slots.flatMap((answer, i) => (answer === undefined ? [i] : [])).sort((x, y) => x - y));
  let inMaps = 0;
  for (const answer of c.documents.values()) {
    expect(filed.has(answer), "a document answer not in a slot").toBe(true);
    inMaps += 1;
  }
  for (const head of c.scans.values()) {
    for (let answer = head; answer !== undefined; answer = answer.next) {
      expect(filed.has(answer), "a scan answer not in a slot").toBe(true);
      expect(c.scansByIndex.get(answer.indexId)?.has(answer), "a scan answer missing from its index's set").toBe(true);
      inMaps += 1;
    }
  }
  expect(inMaps, "a slot's answer not filed").toBe(filed.size);
  expect(c.bytes, "over budget").toBeLessThanOrEqual(maxBytes);
}

function plainEntries(entries: readonly IndexEntry[]) {
  return entries.map(({ key, doc }) => ({ key: Buffer.from(key).toString("hex"), id: doc.id, table: doc.table, ts: doc.ts, body: doc.body }));
}

function plainDocument(version: DocumentVersion | null) {
  return version === null || version.body === null ? null : { id: version.id, table: version.table, ts: version.ts, body: version.body };
}

/** What a reader does with a document it was handed: decodes it (as `Transaction` does) and scribbles on the copy. */
function readAndScribble(version: DocumentVersion & { body: string }, label: string): void {
  const handed = (version as Partial<DecodedVersion>).decoded ?? decodedCopy(version) ?? JSON.parse(version.body);
  expect(handed, label).toEqual(JSON.parse(version.body));
  handed.v = -1;
  handed.extra = "scribbled";
  if (Array.isArray(handed.arr)) handed.arr.push(99);
}

describe("read cache, the cache against a model storage", () => {
  const seeds = process.env.READ_CACHE_MODEL_SEEDS ? Array.from({ length: Number(process.env.READ_CACHE_MODEL_SEEDS) }, (_, i) => 1000 + i) : [11, 12];
  for (const seed of seeds) {
    for (const maxBytes of [3_000, 1 << 20]) {
      it(`answers every read like the model at its snapshot, keeps its books, and hands out copies (seed ${seed}, ${maxBytes} bytes)`, async () => {
        const r = rng(seed);
        const storage = new ModelStorage();
        const host = { latest: 0, byIdIndexOf: (id: string) => (id.startsWith("d") ? BY_ID : null) };
        const cache = new ReadCache(storage as unknown as Storage, host, maxBytes);
        const live = new Map<string, number>(); // id -> v, at latest
        let nextId = 0;
        const vKey = (v: number, id: string) => encodeIndexKey([v, id]);
        const bodyOf = (id: string, v: number) => JSON.stringify(r.next() < 0.2 ? { _id: id, v, arr: [v] } : { _id: id, v, s: "x".repeat(r.int(40)) });

        const commit = (own: boolean) => {
          const ts = host.latest + 1;
          const documents: DocumentWrite[] = [];
          const indexes: IndexWrite[] = [];
          const writeSet = new Map<string, Uint8Array[]>();
          const touch = (indexId: string, key: Uint8Array) => {
            const keys = writeSet.get(indexId);
            if (keys) keys.push(key);
            else writeSet.set(indexId, [key]);
          };
          const done = new Set<string>();
          for (let n = 1 + r.int(3); n > 0; n--) {
            const roll = r.int(10);
            const ids = [...live.keys()].filter((id) => !done.has(id));
            let id: string;
            let before: number | undefined;
            let after: number | undefined;
            if (roll < 4 || ids.length === 0) {
              id = `d${nextId++}`;
              after = r.int(8);
            } else {
              id = r.pick(ids);
              before = live.get(id);
              after = roll < 8 ? (r.next() < 0.5 ? before : r.int(8)) : undefined;
            }
            done.add(id);
            const body = after === undefined ? null : bodyOf(id, after);
            documents.push({ id, table: TABLE, body, fresh: before === undefined });
            storage.docs.set(id, [...(storage.docs.get(id) ?? []), { ts, body }]);
            if (after === undefined) live.delete(id);
            else live.set(id, after);
            // by_id: the same key before and after.
            touch(BY_ID, idKey(id));
            if (before === undefined || after === undefined) {
              touch(BY_ID, idKey(id));
              indexes.push({ indexId: BY_ID, key: idKey(id), docId: after === undefined ? null : id, fresh: before === undefined });
              storage.putIndex(BY_ID, idKey(id), ts, after === undefined ? null : id);
            } else {
              touch(BY_ID, idKey(id));
            }
            const oldKey = before === undefined ? undefined : vKey(before, id);
            const newKey = after === undefined ? undefined : vKey(after, id);
            if (oldKey) touch(BY_V, oldKey);
            if (newKey) touch(BY_V, newKey);
            if (oldKey && newKey && compareBytes(oldKey, newKey) === 0) continue;
            if (oldKey) {
              indexes.push({ indexId: BY_V, key: oldKey, docId: null });
              storage.putIndex(BY_V, oldKey, ts, null);
            }
            if (newKey) {
              indexes.push({ indexId: BY_V, key: newKey, docId: id, fresh: before === undefined });
              storage.putIndex(BY_V, newKey, ts, id);
            }
          }
          host.latest = ts;
          cache.applyCommit(ts, writeSet, own ? { documents, indexes } : undefined);
        };

        type Pending = { label: string; promise: Promise<unknown>; check: (value: unknown) => void };
        const inFlight: Pending[] = [];
        // Questions come from a small pool, so that they repeat (and hit).
        const pool: Array<Omit<ScanRequest, "readTs">> = [];
        const requestFor = (readTs: Timestamp): ScanRequest => {
          if (pool.length >= 40 || (pool.length > 0 && r.next() < 0.8)) {
            const shape = r.pick(pool);
            return { ...shape, range: structuredClone(shape.range), readTs };
          }
          const indexId = r.next() < 0.8 ? BY_V : BY_ID;
          const bound = (): KeyBound => ({ key: indexId === BY_V ? encodeIndexKey([r.int(9)]) : idKey(`d${r.int(nextId + 1)}`), inclusive: r.next() < 0.5 });
          const range: ScanRequest["range"] = {};
          if (r.next() < 0.6) range.lower = bound();
          if (r.next() < 0.6) range.upper = bound();
          const shape = { indexId, range, order: r.next() < 0.5 ? "asc" : "desc", limit: 1 + r.int(5) } as const;
          pool.push(shape);
          return { ...shape, range: structuredClone(range), readTs };
        };
        const read = (step: number) => {
          storage.immediate = r.next() < 0.5;
          const readTs = r.next() < 0.7 ? host.latest : r.int(host.latest + 1);
          if (r.next() < 0.4 && nextId > 0) {
            const id = `d${r.int(Math.min(nextId, 12))}`;
            const expected = storage.getDocumentNow(id, readTs);
            const label = `step ${step}: get ${id} at ${readTs} (latest ${host.latest})`;
            const check = (value: unknown) => {
              const version = value as DocumentVersion | null;
              expect(plainDocument(version), label).toEqual(plainDocument(expected));
              if (version !== null && version.body !== null) readAndScribble(version as DocumentVersion & { body: string }, label);
            };
            const peeked = cache.peekDocument(id, readTs);
            if (peeked !== undefined) check(peeked);
            else inFlight.push({ label, promise: cache.getDocument(id, readTs), check });
          } else {
            const request = requestFor(readTs);
            const expected = storage.scanNow(request);
            const label = `step ${step}: scan ${JSON.stringify({ ...request, range: { lower: request.range.lower && [Buffer.from(request.range.lower.key).toString("hex"), request.range.lower.inclusive], upper: request.range.upper && [Buffer.from(request.range.upper.key).toString("hex"), request.range.upper.inclusive] } })} (latest ${host.latest})`;
            const check = (value: unknown) => {
              const entries = value as IndexEntry[];
              expect(plainEntries(entries), label).toEqual(plainEntries(expected));
              for (const entry of entries) readAndScribble(entry.doc, label);
            };
            const peeked = cache.peekScan(request);
            if (peeked !== undefined) check(peeked);
            else inFlight.push({ label, promise: cache.scan(request), check });
          }
        };
        const settleSome = async (all = false) => {
          for (let n = all ? storage.waiting.length : r.int(storage.waiting.length + 1); n > 0 && storage.waiting.length > 0; n--) {
            storage.waiting.splice(r.int(storage.waiting.length), 1)[0]!.release();
            // Sometimes a commit lands between the storage's answer and the cache's continuation.
            if (r.next() < 0.2) commit(r.next() < 0.6);
            for (let i = 0; i < 3; i++) await Promise.resolve();
          }
        };

        for (let step = 0; step < 1500; step++) {
          const roll = r.int(100);
          if (roll < 12) commit(r.next() < 0.6);
          else if (roll < 85) read(step);
          else if (roll < 97) await settleSome();
          else if (roll < 98) cache.clear();
          else storage.failNext = true;
          // Settle finished reads (their checks run as they finish).
          for (let i = inFlight.length - 1; i >= 0; i--) {
            const pending = inFlight[i]!;
            const outcome = await Promise.race([pending.promise.then((v) => ({ v }), (e) => ({ e })), Promise.resolve(undefined)]);
            if (outcome === undefined) continue;
            inFlight.splice(i, 1);
            if ("v" in outcome) pending.check(outcome.v);
            else expect(String(outcome.e), pending.label).toMatch(/storage down/);
          }
          checkBooks(cache, maxBytes);
        }
        await settleSome(true);
        expect(cache.stats.hits).toBeGreaterThan(maxBytes > 10_000 ? 100 : 10);
      });
    }
  }
});

describe("read cache, targeted", () => {
  it("drops everything when the engine loses track of commits (the log trimmed past it), and answers from storage after", async () => {
    const filename = await tempFile();
    const a = await open(await openSqliteStorage({ filename }));
    const first = (await a.runMutation("items:insert", { name: "ada", n: 1 })).value as string;
    const b = await open(await openSqliteStorage({ filename }));
    const reads = async () => [
      await b.runQuery("reads:unique", { name: "ada" }),
      await b.runQuery("reads:get", { ids: [first] }),
      await b.runQuery("reads:all", { order: "asc" }),
    ];
    const before = await reads();
    expect(await reads()).toEqual(before); // now from b's cache
    expect(b.reads.stats.entries).toBeGreaterThan(0);
    await a.runMutation("items:patchByName", { name: "ada", n: 2 });
    await a.runMutation("items:insert", { name: "bob", n: 3 });
    // a sweeps its history: the log is trimmed past b's position. In one process a's pruning
    // stops at b's floor (storage/sqlite/fileFloors.ts), so b's storage here says it reads
    // nothing older, as an engine in another process, whose floor a cannot see, would not.
    b.storage.raiseReadFloor?.(a.latestTimestamp);
    for (let i = 0; i < 5; i++) await a.storage.pruneHistory(a.latestTimestamp);
    expect((await a.storage.commitsSince(0, 1)).trimmedThrough).toBeGreaterThan(b.latestTimestamp);
    await b.refreshFromStorage();
    expect(b.reads.stats.entries).toBe(0);
    const after = await reads();
    expect(after).toEqual([
      await a.runQuery("reads:unique", { name: "ada" }),
      await a.runQuery("reads:get", { ids: [first] }),
      await a.runQuery("reads:all", { order: "asc" }),
    ]);
    expect((after[0] as { n: number }).n).toBe(2);
  });

  it("carries no more than its limit of an index's answers across a commit, and answers each of many lookups right after it", async () => {
    const engine = await open(await openSqliteStorage({ filename: ":memory:" }));
    for (let i = 0; i < 40; i++) await engine.runMutation("items:insert", { name: `n${i}`, n: i % 6 });
    const lookups = async () => Promise.all(Array.from({ length: 40 }, (_, i) => engine.runQuery("reads:unique", { name: `n${i}` })));
    const first = await lookups();
    expect(await lookups()).toEqual(first); // 40 answers of by_name filed: more than are carried
    await engine.runMutation("items:patchByName", { name: "n7", n: 99 });
    await engine.runMutation("items:patchByName", { name: "n8", to: "n7b" });
    const after = (await lookups()) as Array<{ n: number } | null>;
    expect(after[7]!.n).toBe(99);
    expect(after[8]).toBeNull();
    expect(await engine.runQuery("reads:unique", { name: "n7b" })).toMatchObject({ n: 8 % 6 });
  });

  it("answers an old snapshot inside an open mutation from storage, not from what its own engine's commits filed since", async () => {
    const engine = await open(withLatency(await openSqliteStorage({ filename: ":memory:" }), { read: [0, 1], commit: 1 }));
    const id = (await engine.runMutation("items:insert", { name: "ada", n: 1 })).value as string;
    expect(await engine.runQuery("reads:get", { ids: [id] })).toMatchObject([{ n: 1 }]); // its table is read by ID
    const old = engine.latestTimestamp;
    engine.pinSnapshot(old);
    // This engine's commits file the new versions (rule 6) and carry the lookup (rule 5).
    await engine.runMutation("items:patchByName", { name: "ada", n: 2 });
    await engine.runMutation("items:insert", { name: "ada", n: 3 });
    expect(await engine.runQuery("reads:get", { ids: [id] })).toMatchObject([{ n: 2 }]);
    expect(await queryAt(engine, "reads:get", { ids: [id] }, old)).toMatchObject([{ n: 1 }]);
    expect(await queryAt(engine, "reads:byN", { n: 1 }, old)).toMatchObject([{ name: "ada", n: 1 }]);
    expect(await queryAt(engine, "reads:list", { from: "a", to: "b", order: "asc", n: 5 }, old)).toEqual([expect.objectContaining({ n: 1 })]);
    expect(await engine.runQuery("reads:list", { from: "a", to: "b", order: "asc", n: 5 })).toEqual([expect.objectContaining({ n: 2 }), expect.objectContaining({ n: 3 })]);
  });
});

/**
 * The engine side of each case: a small app (schema + functions) run by `Engine` over the
 * SQLite storage, on a fresh file per case so that cases do not feed each other's history or
 * statistics.
 */
import { existsSync, statSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { Engine } from "../../src/engine/engine.js";
import { openSqliteStorage, type SqliteStorage } from "../../src/storage/sqlite/index.js";
import { defineSchema, defineTable, mutation, query } from "../../src/server/index.js";
import { v } from "../../src/values/index.js";
import { asyncLoop, type Subject } from "./measure.js";
import { StorageClock } from "./storageClock.js";
import { keyOf, payloadOf, shuffledKeys, type Durability } from "./workload.js";

const docFields = { key: v.string(), n: v.number(), payload: v.string() };

const schema = defineSchema({
  docs: defineTable(docFields).index("by_key", ["key"]),
  counters: defineTable({ name: v.string(), value: v.number() }).index("by_name", ["name"]),
});

const modules = {
  docs: {
    insert: mutation({ args: docFields, handler: (ctx, doc) => ctx.db.insert("docs", doc) }),
    /** Seeding only: many documents in one mutation. */
    insertMany: mutation({
      args: { docs: v.array(v.object(docFields)) },
      handler: async (ctx, { docs }) => {
        for (const doc of docs) await ctx.db.insert("docs", doc);
      },
    }),
    /** The history case: sets `n` on every document whose key is in `keys`. */
    setMany: mutation({
      args: { keys: v.array(v.string()), n: v.number() },
      handler: async (ctx, { keys, n }) => {
        for (const key of keys) {
          const doc = await ctx.db.query("docs").withIndex("by_key", (q) => q.eq("key", key)).unique();
          await ctx.db.patch(doc!._id, { n });
        }
      },
    }),
    byKey: query({
      args: { key: v.string() },
      handler: (ctx, { key }) => ctx.db.query("docs").withIndex("by_key", (q) => q.eq("key", key)).unique(),
    }),
  },
  counters: {
    create: mutation({ args: { name: v.string() }, handler: (ctx, { name }) => ctx.db.insert("counters", { name, value: 0 }) }),
    increment: mutation({
      args: { name: v.string() },
      handler: async (ctx, { name }) => {
        const counter = await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", name)).unique();
        if (counter === null) throw new Error(`no counter ${name}`);
        await ctx.db.patch(counter._id, { value: counter.value + 1 });
      },
    }),
    total: query({
      args: {},
      handler: async (ctx) => {
        let sum = 0;
        for await (const counter of ctx.db.query("counters")) sum += counter.value;
        return sum;
      },
    }),
  },
};

/** An engine side, plus its final check and statistics where the case has them. */
export interface WalkinSubject extends Subject {
  engine: Engine;
  check?(): Promise<{ ok: boolean; detail: string }>;
  /** The main thread's time inside storage during the measured rounds (cases that report it). */
  storageClock?: StorageClock;
}

/** BENCH_READ_CACHE_BYTES sets the engine's read cache (0: off), to see what it is worth. */
const readCacheBytes = process.env.BENCH_READ_CACHE_BYTES ? Number(process.env.BENCH_READ_CACHE_BYTES) : undefined;

async function openEngine(filename: string, synchronous: Durability, clock?: (storage: SqliteStorage) => void): Promise<Engine> {
  const storage = await openSqliteStorage({ filename, synchronous });
  clock?.(storage);
  return engineOver(storage);
}

/** This benchmark's app run by an engine over `storage` (alone.ts opens the storage itself). */
export function engineOver(storage: SqliteStorage): Promise<Engine> {
  return Engine.open({ storage, schema, modules, runScheduler: false, readCacheBytes });
}

/** One sample of the history case. */
export interface HistorySample {
  updates: number;
  seconds: number;
  fileBytes: number;
  walBytes: number;
  storedVersions: number;
}

/**
 * The history case: `docs` documents, then `updates` updates spread evenly over them, in
 * mutations of `perMutation` updates, each call waiting for an event-loop turn as a served
 * request does (history pruning runs between calls, as on a server). Samples the database's
 * size on disk (the file, and its write-ahead log) and its stored versions `samples` times.
 */
export async function walkinHistory(
  filename: string,
  synchronous: Durability,
  { docs, updates, perMutation, samples }: { docs: number; updates: number; perMutation: number; samples: number },
): Promise<HistorySample[]> {
  const storage = await openSqliteStorage({ filename, synchronous });
  const engine = await Engine.open({ storage, schema, modules, runScheduler: false, readCacheBytes });
  const out: HistorySample[] = [];
  try {
    await seed(engine, docs);
    const started = performance.now();
    const sample = async (done: number) => {
      const versions = await storage.stats();
      const size = (suffix: string) => (existsSync(filename + suffix) ? statSync(filename + suffix).size : 0);
      out.push({ updates: done, seconds: (performance.now() - started) / 1000, fileBytes: size(""), walBytes: size("-wal"), storedVersions: versions.documents + versions.indexEntries });
    };
    await sample(0);
    const every = Math.max(perMutation, Math.floor(updates / samples));
    for (let done = 0, call = 0; done < updates; call++) {
      const keys = [];
      for (let j = 0; j < perMutation && done < updates; j++, done++) keys.push(keyOf((call * perMutation + j) % docs));
      await new Promise((resolve) => setImmediate(resolve));
      await engine.runMutation("docs:setMany", { keys, n: call });
      if (done % every < perMutation || done === updates) await sample(done);
    }
  } finally {
    await engine.close();
  }
  return out;
}

export interface InsertOptions {
  /** Each call first waits for an event-loop turn, as a served request does (see `asyncLoop`). */
  turnPerCall?: boolean;
  /** Documents loaded before measuring (default none). */
  seedDocs?: number;
  /**
   * Live queries subscribed before measuring (default none), each `docs:byKey` of its own
   * seeded key, none of which an insert writes: what they cost a commit that touches none.
   */
  liveQueries?: number;
}

/** (a) `docs:insert`, with `clients` mutations in flight (1 = sequential). */
export async function walkinInsert(
  filename: string,
  synchronous: Durability,
  clients: number,
  { turnPerCall = false, seedDocs = 0, liveQueries = 0 }: InsertOptions = {},
): Promise<WalkinSubject> {
  let storageClock: StorageClock | undefined;
  const engine = await openEngine(filename, synchronous, (storage) => (storageClock = new StorageClock(storage)));
  await seed(engine, seedDocs);
  const subscriptions: Array<{ unsubscribe(): void }> = [];
  for (let i = 0; i < liveQueries; i++) subscriptions.push(await engine.subscriptions.subscribe("docs:byKey", { key: keyOf(i) }, {}, () => {}));
  if (engine.subscriptions.size !== liveQueries) throw new Error(`expected ${liveQueries} live queries, have ${engine.subscriptions.size}`);
  const loop = asyncLoop(
    clients,
    (i) => engine.runMutation("docs:insert", { key: keyOf(seedDocs + i), n: i, payload: payloadOf(i) }),
    turnPerCall,
  );
  return {
    engine,
    storageClock,
    run: async (ms, recorder) => {
      storageClock!.on = recorder !== null;
      try {
        await loop(ms, recorder);
      } finally {
        storageClock!.on = false;
      }
    },
    close: async () => {
      for (const subscription of subscriptions) subscription.unsubscribe();
      await engine.close();
    },
  };
}

/** Loads documents 0..n-1 in mutations of 4,000. */
async function seed(engine: Engine, docs: number): Promise<void> {
  const batch = 4_000;
  for (let first = 0; first < docs; first += batch) {
    const rows = [];
    for (let i = first; i < Math.min(first + batch, docs); i++) rows.push({ key: keyOf(i), n: i, payload: payloadOf(i) });
    await engine.runMutation("docs:insertMany", { docs: rows });
  }
}

/**
 * (d): one engine over a table of `docs` documents, loaded once, measured by lookups of random
 * existing keys and then by sequential inserts into it. Run the lookup row first; closing it
 * leaves the engine to the insert row, whose close shuts it.
 */
export async function walkinSized(filename: string, synchronous: Durability, docs: number): Promise<{ lookup: WalkinSubject; insert: WalkinSubject }> {
  const engine = await openEngine(filename, synchronous);
  await seed(engine, docs);
  return {
    lookup: lookups(engine, shuffledKeys(docs), () => undefined),
    insert: {
      engine,
      run: asyncLoop(1, (i) => engine.runMutation("docs:insert", { key: keyOf(docs + i), n: i, payload: payloadOf(i) })),
      close: () => engine.close(),
    },
  };
}

/** (b) `docs:byKey` on random existing keys of a table of `docs` documents. */
export async function walkinLookup(filename: string, synchronous: Durability, docs: number, nextKey: () => number): Promise<WalkinSubject> {
  const engine = await openEngine(filename, synchronous);
  await seed(engine, docs);
  return lookups(engine, nextKey, () => engine.close());
}

/** `docs:byKey` lookups of the keys `nextKey` gives, each checked to find its document. */
function lookups(engine: Engine, nextKey: () => number, close: () => unknown): WalkinSubject {
  let missing = 0;
  return {
    engine,
    run: asyncLoop(1, async () => {
      const key = keyOf(nextKey());
      const doc = (await engine.runQuery("docs:byKey", { key })) as { key: string } | null;
      if (doc?.key !== key) missing++;
    }),
    check: async () => ({ ok: missing === 0, detail: `${missing} lookups missed` }),
    close,
  };
}

/** (c) `clients` mutations in flight, each incrementing one of `k` counters (index read, then patch). */
export async function walkinIncrement(filename: string, synchronous: Durability, clients: number, k: number): Promise<WalkinSubject> {
  const engine = await openEngine(filename, synchronous);
  for (let c = 0; c < k; c++) await engine.runMutation("counters:create", { name: `counter-${c}` });
  let done = 0;
  return {
    engine,
    run: asyncLoop(clients, async (i) => {
      await engine.runMutation("counters:increment", { name: `counter-${i % k}` });
      done++;
    }),
    check: async () => {
      const total = (await engine.runQuery("counters:total", {})) as number;
      return { ok: total === done, detail: `sum ${total}, increments acknowledged ${done}` };
    },
    close: () => engine.close(),
  };
}

/**
 * The engine side of each case: a small app (schema + functions) run by `Engine` over the
 * SQLite storage, opened on a fresh file per case so that cases do not feed each other's
 * history or statistics.
 */
import { Engine } from "../../src/engine/engine.js";
import { openSqliteStorage } from "../../src/storage/sqlite/index.js";
import { defineSchema, defineTable, mutation, query } from "../../src/server/index.js";
import { v } from "../../src/values/index.js";
import { measureClients, type Measurement, type Timing } from "./measure.js";
import { keyOf, payloadOf, type Durability } from "./workload.js";

const schema = defineSchema({
  docs: defineTable({ key: v.string(), n: v.number(), payload: v.string() }).index("by_key", ["key"]),
  counters: defineTable({ name: v.string(), value: v.number() }).index("by_name", ["name"]),
});

const docFields = { key: v.string(), n: v.number(), payload: v.string() };

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

async function openEngine(filename: string, synchronous: Durability): Promise<Engine> {
  const storage = await openSqliteStorage({ filename, synchronous });
  return Engine.open({ storage, schema, modules, runScheduler: false });
}

/** (a) `docs:insert` from `clients` closed-loop clients (1 = sequential). */
export async function walkinInsert(filename: string, synchronous: Durability, timing: Timing, clients: number): Promise<Measurement> {
  const engine = await openEngine(filename, synchronous);
  try {
    return await measureClients(timing, clients, (i) =>
      engine.runMutation("docs:insert", { key: keyOf(i), n: i, payload: payloadOf(i) }),
    );
  } finally {
    await engine.close();
  }
}

/** (b) `docs:byKey` on random existing keys of a `docs`-document table. */
export async function walkinLookup(
  filename: string,
  synchronous: Durability,
  timing: Timing,
  docs: number,
  nextKey: () => number,
): Promise<Measurement> {
  const engine = await openEngine(filename, synchronous);
  try {
    const batch = 1_000;
    for (let first = 0; first < docs; first += batch) {
      const rows = [];
      for (let i = first; i < Math.min(first + batch, docs); i++) rows.push({ key: keyOf(i), n: i, payload: payloadOf(i) });
      await engine.runMutation("docs:insertMany", { docs: rows });
    }
    return await measureClients(timing, 1, async () => {
      const key = keyOf(nextKey());
      const doc = (await engine.runQuery("docs:byKey", { key })) as { key: string } | null;
      if (doc?.key !== key) throw new Error(`byKey(${key}) returned ${JSON.stringify(doc)}`);
    });
  } finally {
    await engine.close();
  }
}

export interface ContentionMeasurement extends Measurement {
  retriesPerCommit: number;
  sumOk: boolean;
  detail: string;
}

/** (c) `clients` clients incrementing one of `k` counters (read by index, then patch). */
export async function walkinIncrement(
  filename: string,
  synchronous: Durability,
  timing: Timing,
  clients: number,
  k: number,
): Promise<ContentionMeasurement> {
  const engine = await openEngine(filename, synchronous);
  try {
    for (let c = 0; c < k; c++) await engine.runMutation("counters:create", { name: `counter-${c}` });
    let done = 0;
    const before = { ...engine.stats };
    const m = await measureClients(timing, clients, async (i) => {
      await engine.runMutation("counters:increment", { name: `counter-${i % k}` });
      done++;
    });
    const commits = engine.stats.commits - before.commits;
    const retries = engine.stats.conflictRetries - before.conflictRetries;
    const total = (await engine.runQuery("counters:total", {})) as number;
    return {
      ...m,
      retriesPerCommit: retries / Math.max(commits, 1),
      sumOk: total === done,
      detail: `sum ${total} vs ${done} increments acknowledged`,
    };
  } finally {
    await engine.close();
  }
}

/**
 * The app every transport case serves: one table of documents, an insert mutation and a live
 * query listing the newest 10 documents. The documents are those of the engine benchmark
 * (`../engine/workload.ts`: key, n, a ~100-character payload), so a result is about 2 KB of
 * JSON and does not change size from one insert to the next.
 */
import { Engine } from "../../src/engine/engine.js";
import { defineSchema, defineTable, makeFunctionReference, mutation, query } from "../../src/server/index.js";
import { openSqliteStorage } from "../../src/storage/sqlite/index.js";
import { v } from "../../src/values/index.js";
import { keyOf, payloadOf, type Durability } from "../engine/workload.js";

const docFields = { key: v.string(), n: v.number(), payload: v.string() };

export interface Doc {
  key: string;
  n: number;
  payload: string;
}

const schema = defineSchema({ docs: defineTable(docFields).index("by_key", ["key"]) });

const modules = {
  docs: {
    insert: mutation({ args: docFields, handler: (ctx, doc) => ctx.db.insert("docs", doc) }),
    insertMany: mutation({
      args: { docs: v.array(v.object(docFields)) },
      handler: async (ctx, { docs }) => {
        for (const doc of docs) await ctx.db.insert("docs", doc);
      },
    }),
    latest: query({ args: {}, handler: (ctx) => ctx.db.query("docs").order("desc").take(LATEST) }),
  },
};

/** How many documents the live query lists. */
/**
 * Every client of these benchmarks connects from 127.0.0.1, so the per-address caps that
 * protect a real server (500 connections, 10,000 live queries) would refuse most of them.
 */
export const BENCH_LIMITS = { maxConnectionsPerIp: 1_000_000, maxSubscriptionsPerIp: 1_000_000 } as const;

export const LATEST = 10;
/** Documents loaded before measuring, so the live query's result has its full size from the start. */
export const SEED_DOCS = 100;

export const api = {
  insert: makeFunctionReference<"mutation", Doc>("docs:insert"),
  latest: makeFunctionReference<"query", Record<string, never>, Array<Doc & { _id: string }>>("docs:latest"),
};

/** Document number `i` (the seed uses 0 .. SEED_DOCS-1; measured writes count on from there). */
export function docOf(i: number): Doc {
  return { key: keyOf(i), n: i, payload: payloadOf(i) };
}

/** An engine over a new SQLite file (WAL, the given `synchronous`), seeded. No scheduler: nothing here schedules. */
export async function openEngine(filename: string, synchronous: Durability): Promise<Engine> {
  const storage = await openSqliteStorage({ filename, synchronous });
  const engine = await Engine.open({ storage, schema, modules, runScheduler: false });
  const docs = Array.from({ length: SEED_DOCS }, (_, i) => docOf(i));
  await engine.runMutation("docs:insertMany", { docs });
  return engine;
}

/** The protocol messages a subscriber sends (docs/protocol.md): Connect, then one Add of the live query. */
export function subscriberMessages(clientId: string): [string, string] {
  return [
    JSON.stringify({ type: "Connect", clientId, connectionCount: 0 }),
    JSON.stringify({
      type: "ModifyQuerySet",
      baseVersion: 0,
      newVersion: 1,
      modifications: [{ type: "Add", queryId: 1, udfPath: "docs:latest", args: {} }],
    }),
  ];
}

/** A Mutation message inserting document `i` (plain strings and numbers: the JSON encoding is the value itself). */
export function mutationMessage(requestId: number, i: number): string {
  return JSON.stringify({ type: "Mutation", requestId, udfPath: "docs:insert", args: docOf(i) });
}

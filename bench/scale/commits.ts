/**
 * Case 1, commit throughput: single-document insert mutations through `Engine` over
 * `openPostgresStorage`, one client (sequential) and 32 in flight (the engine's group commit
 * batches them into one PostgreSQL transaction), each interleaved with its floor by
 * `compare` (bench/engine/measure.ts) in the same database.
 *
 * Floor: raw `pg` single-row insert transactions, `BEGIN; INSERT ...; COMMIT`, into a table
 * holding the same rows (key, n, ~100-byte payload) with a primary key and an index on `key`.
 * It gets every advantage raw `pg` offers: a prepared statement, and the three statements
 * pipelined on the connection (`pipeline: true`, as the Walk-in storage's pool does), so one
 * transaction costs one round trip where the engine's commit costs two (lock + read the
 * commit log; write + COMMIT). Sequential: one connection. 32 in flight: 32 connections, one
 * transaction each per wave, so PostgreSQL's own WAL flush batching (its group commit) helps it.
 */
import pg from "pg";
import { Engine } from "../../src/engine/engine.js";
import { defineSchema, defineTable, mutation } from "../../src/server/index.js";
import { openPostgresStorage } from "../../src/storage/postgres/index.js";
import { v } from "../../src/values/index.js";
import { asyncLoop, type Subject } from "../engine/measure.js";
import { keyOf, payloadOf } from "../engine/workload.js";

const docFields = { key: v.string(), n: v.number(), payload: v.string() };
const schema = defineSchema({ docs: defineTable(docFields).index("by_key", ["key"]) });
const modules = {
  docs: { insert: mutation({ args: docFields, handler: (ctx, doc) => ctx.db.insert("docs", doc) }) },
};

/** The engine side on a fresh PostgreSQL schema of the bench database. */
export async function walkinInserts(url: string, pgSchema: string, clients: number): Promise<Subject & { engine: Engine }> {
  const storage = await openPostgresStorage({ url, schema: pgSchema, node: `bench-${process.pid}` });
  const engine = await Engine.open({ storage, schema, modules, runScheduler: false });
  return {
    engine,
    run: asyncLoop(clients, (i) => engine.runMutation("docs:insert", { key: keyOf(i), n: i, payload: payloadOf(i) })),
    close: () => engine.close(),
  };
}

/**
 * The floor: raw `pg` transactions on `connections` connections (one per operation in flight).
 * With `pipelined` false, each statement is awaited before the next is sent (three round trips,
 * how such code is usually written): shown for information, not as the floor.
 */
export async function floorInserts(url: string, table: string, connections: number, pipelined = true): Promise<Subject> {
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query(`CREATE TABLE ${table} (id bigserial PRIMARY KEY, key text NOT NULL, n integer NOT NULL, payload text NOT NULL)`);
  await setup.query(`CREATE INDEX ON ${table} (key)`);
  const clients: pg.Client[] = [];
  try {
    for (let c = 0; c < connections; c++) {
      const client = new pg.Client({ connectionString: url, pipeline: pipelined, application_name: "bench_floor" });
      await client.connect();
      clients.push(client);
    }
  } catch (error) {
    await Promise.all([setup, ...clients].map((c) => c.end().catch(() => {})));
    throw error;
  }
  const insert = { name: `insert-${table}`, text: `INSERT INTO ${table} (key, n, payload) VALUES ($1, $2, $3)` };
  return {
    run: asyncLoop(connections, async (i) => {
      const client = clients[i % connections]!;
      const values = [keyOf(i), i, payloadOf(i)];
      if (!pipelined) {
        await client.query("BEGIN");
        await client.query({ ...insert, values });
        await client.query("COMMIT");
        return;
      }
      // Sent back to back, answered in order: one round trip for the whole transaction.
      await Promise.all([client.query("BEGIN"), client.query({ ...insert, values }), client.query("COMMIT")]);
    }),
    close: () => Promise.all([setup, ...clients].map((c) => c.end().catch(() => {}))),
  };
}

/**
 * How many PostgreSQL transactions committed batches in a Walk-in schema: each batch updates
 * the clock row once. Read after the engine is closed: a backend flushes its table statistics
 * when it exits, and the server needs a moment to process that.
 */
export async function clockUpdates(url: string, pgSchema: string): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 500));
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      "SELECT n_tup_upd AS n FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'clock'",
      [pgSchema],
    );
    return Number(rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

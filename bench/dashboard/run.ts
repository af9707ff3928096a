/**
 * The dashboard under load: a table of 10,000 documents (count, first page, a page deep in the
 * table, an index filter) and the run log at 100+ runs a second (overhead per observed run).
 * Prints times; `npm run bench:dashboard`.
 */
import { Engine } from "../../src/engine/engine.js";
import { openSqliteStorage } from "../../src/storage/sqlite/index.js";
import { defineSchema, defineTable, mutation, query } from "../../src/server/index.js";
import { v } from "../../src/values/index.js";
import { startServer } from "../../src/transport/index.js";
import { Dashboard } from "../../src/dashboard/index.js";

const KEY = "bench-admin-key-0123456789abcdefghij";
const schema = defineSchema({ items: defineTable({ n: v.number(), group: v.string() }).index("by_group", ["group"]) });
const modules = {
  items: {
    addMany: mutation({ args: { from: v.number(), count: v.number() }, handler: async (ctx: any, { from, count }: any) => { for (let i = from; i < from + count; i++) await ctx.db.insert("items", { n: i, group: `g${i % 10}` }); } }),
    one: query({ args: {}, handler: async (ctx: any) => { console.log("reading one"); return (await ctx.db.query("items").first())?.n ?? null; } }),
  },
};
const dashboard = new Dashboard({ adminKey: KEY });
const engine = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema, modules, runScheduler: false, observeRun: dashboard.observeRun });
const server = await startServer({ engine, port: 0, log: () => {}, dashboard });
for (let i = 0; i < 10_000; i += 1_000) await engine.runMutation("items:addMany", { from: i, count: 1_000 });

async function timed(label: string, path: string, body?: unknown) {
  const started = performance.now();
  const response = await fetch(`${server.url}/api/admin/${path}`, { method: body ? "POST" : "GET", headers: { Authorization: `Bearer ${KEY}` }, body: body ? JSON.stringify(body) : undefined });
  const json = (await response.json()) as any;
  console.log(`${label.padEnd(44)} ${(performance.now() - started).toFixed(1).padStart(7)} ms`);
  return json;
}
await timed("tables (count 10,000 documents, cold)", "tables");
await timed("tables (cached)", "tables");
let page = await timed("documents/list page 1 (25, newest first)", "documents/list", { table: "items" });
for (let i = 0; i < 38; i++) page = (await (await fetch(`${server.url}/api/admin/documents/list`, { method: "POST", headers: { Authorization: `Bearer ${KEY}` }, body: JSON.stringify({ table: "items", cursor: page.continueCursor }) })).json());
await timed("documents/list page 40", "documents/list", { table: "items", cursor: page.continueCursor });
await timed("documents/list by_group = g3", "documents/list", { table: "items", index: "by_group", indexValues: ["g3"] });
await timed("documents/list filter n > 9990 (full scan)", "documents/list", { table: "items", filters: [{ field: "n", op: "gt", value: 9990 }] });

// Both engines warm up first; then the same query runs with and without the run log.
const plain = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema, modules, runScheduler: false });
for (let i = 0; i < 10_000; i += 1_000) await plain.runMutation("items:addMany", { from: i, count: 1_000 });
const runs = 5_000;
async function perRun(target: Engine): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < runs; i++) await target.runQuery("items:one", {});
  return ((performance.now() - started) / runs) * 1000;
}
const quiet = console.log;
const silence = console.log = (() => {}) as typeof console.log; // the run log still captures the line
void silence;
await perRun(engine);
await perRun(plain);
const observed = await perRun(engine);
const unobserved = await perRun(plain);
console.log = quiet;
console.log(`query run with the run log / without             ${observed.toFixed(0)} µs / ${unobserved.toFixed(0)} µs`);
await plain.close();
dashboard.close();
await server.close();
await engine.close();

/**
 * Two nodes on one database running different code: one declares an index the other does not
 * know. No node ever serves a wrong result from that index, and a restart rebuilds it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { defineSchema, defineTable, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine } from "./engine.js";
import { HookedStorage } from "./fixtures/hookedStorage.js";

/** An SQLite file shared like a networked database: the engine treats it as shared with other nodes. */
class SharedStorage extends HookedStorage {
  watchCommits(): () => void {
    return () => {};
  }
}

const items = {
  add: mutation({ args: { x: v.number() }, handler: (ctx, { x }) => ctx.db.insert("items", { x }) }),
  byX: query({
    args: { x: v.number() },
    handler: async (ctx, { x }) => (await ctx.db.query("items").withIndex("by_x" as never, (q: any) => q.eq("x", x)).collect()).length,
  }),
};
const newSchema = defineSchema({ items: defineTable({ x: v.number() }).index("by_x", ["x"]) });
const oldSchema = defineSchema({ items: defineTable({ x: v.number() }) });

const dir = mkdtempSync(join(tmpdir(), "walkin-mixed-"));
const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.close();
});
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

async function open(filename: string, schema: typeof newSchema | typeof oldSchema, errors: string[] = []) {
  const storage = new SharedStorage(await openSqliteStorage({ filename }));
  const engine = await Engine.open({ storage, schema, modules: { items }, runScheduler: false, pollIntervalMs: 60_000, logError: (m) => errors.push(m) });
  engines.push(engine);
  return engine;
}

it("an index another node does not maintain is refused, never read wrong, and rebuilt at the next start", async () => {
  const filename = join(dir, "mixed.sqlite");
  const errors: string[] = [];
  const upgraded = await open(filename, newSchema, errors);
  await upgraded.runMutation("items:add", { x: 1 });

  // An old node starts: it does not declare by_x, and must not drop it from under the new one.
  const old = await open(filename, oldSchema);
  expect(await upgraded.runQuery("items:byX", { x: 1 })).toBe(1);

  // The old node writes without maintaining by_x; the new node learns of it.
  await old.runMutation("items:add", { x: 5 });
  await upgraded.refreshFromStorage();
  await expect(upgraded.runQuery("items:byX", { x: 5 })).rejects.toThrow(/Index "items.by_x" is incomplete on this node/);
  expect(errors.some((e) => e.includes("skipped index items.by_x"))).toBe(true);

  // Every node runs the new code again and restarts: the index is rebuilt with every document.
  for (const engine of engines.splice(0)) await engine.close();
  const restarted = await open(filename, newSchema);
  expect(await restarted.runQuery("items:byX", { x: 5 })).toBe(1);
  expect(await restarted.runQuery("items:byX", { x: 1 })).toBe(1);
});

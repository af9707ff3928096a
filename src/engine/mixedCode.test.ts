/**
 * Two nodes on one database running different code: one declares an index the other does not
 * know, or declares it with other fields. No node ever serves a wrong result from that index,
 * and a restart rebuilds it.
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
import { items, newSchema, oldSchema } from "./fixtures/rollingDeploy.js";

/** An SQLite file shared like a networked database: the engine treats it as shared with other nodes. */
class SharedStorage extends HookedStorage {
  watchCommits(): () => void {
    return () => {};
  }
}


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

// One index name, two definitions: `by_key` lists `x` on one version of the code and `y` on
// the other. Each version's query asks its own definition's field.
const pairFields = { x: v.number(), y: v.number() };
const onX = defineSchema({ pairs: defineTable(pairFields).index("by_key", ["x"]) });
const onY = defineSchema({ pairs: defineTable(pairFields).index("by_key", ["y"]) });
const pairModules = (field: "x" | "y") => ({
  pairs: {
    add: mutation({ args: pairFields, handler: (ctx, pair) => ctx.db.insert("pairs", pair) }),
    byKey: query({
      args: { key: v.number() },
      handler: async (ctx, { key }) =>
        (await ctx.db.query("pairs").withIndex("by_key" as never, (q: any) => q.eq(field, key)).collect()).map((p: any) => [p.x, p.y]),
    }),
  },
});

async function openPairs(filename: string, field: "x" | "y", errors: string[] = []) {
  const storage = new SharedStorage(await openSqliteStorage({ filename }));
  const engine = await Engine.open({
    storage,
    schema: field === "x" ? onX : onY,
    modules: pairModules(field),
    runScheduler: false,
    pollIntervalMs: 60_000,
    logError: (m) => errors.push(m),
  });
  engines.push(engine);
  return engine;
}

it("an index whose fields differ between two nodes is refused on each once the other writes, never read with the other's keys", async () => {
  const filename = join(dir, "redefined.sqlite");
  const onXErrors: string[] = [];
  const onYErrors: string[] = [];
  const xNode = await openPairs(filename, "x", onXErrors);
  await xNode.runMutation("pairs:add", { x: 1, y: 100 });

  // A node with the new definition starts while the old one runs: it builds its own index and
  // leaves the old one's entries alone.
  const yNode = await openPairs(filename, "y", onYErrors);
  expect(await yNode.runQuery("pairs:byKey", { key: 100 })).toEqual([[1, 100]]);
  expect(await xNode.runQuery("pairs:byKey", { key: 1 })).toEqual([[1, 100]]);

  // The old node writes. With one ID for both definitions, the new node would now find this
  // document under y = 2 (the old node's key) and not under y = 200.
  await xNode.runMutation("pairs:add", { x: 2, y: 200 });
  await yNode.refreshFromStorage();
  await expect(yNode.runQuery("pairs:byKey", { key: 200 })).rejects.toThrow(/Index "pairs.by_key" is incomplete on this node/);
  await expect(yNode.runQuery("pairs:byKey", { key: 2 })).rejects.toThrow(/incomplete/);
  expect(onYErrors.some((e) => e.includes("skipped index pairs.by_key"))).toBe(true);

  // And the other way round.
  await yNode.runMutation("pairs:add", { x: 3, y: 300 });
  await xNode.refreshFromStorage();
  await expect(xNode.runQuery("pairs:byKey", { key: 3 })).rejects.toThrow(/Index "pairs.by_key" is incomplete on this node/);
  expect(onXErrors.some((e) => e.includes("skipped index pairs.by_key"))).toBe(true);

  // The deploy finishes: every node runs the new definition and restarts; the index is whole.
  for (const engine of engines.splice(0)) await engine.close();
  const restarted = await openPairs(filename, "y");
  expect(await restarted.runQuery("pairs:byKey", { key: 100 })).toEqual([[1, 100]]);
  expect(await restarted.runQuery("pairs:byKey", { key: 200 })).toEqual([[2, 200]]);
  expect(await restarted.runQuery("pairs:byKey", { key: 300 })).toEqual([[3, 300]]);
  expect(await restarted.runQuery("pairs:byKey", { key: 2 })).toEqual([]);
});

it("a definition switched back and forth across restarts always reads an index built for it", async () => {
  const filename = join(dir, "switched.sqlite");
  let node = await openPairs(filename, "x");
  await node.runMutation("pairs:add", { x: 1, y: 100 });
  for (const [round, field] of (["y", "x", "y", "x"] as const).entries()) {
    await engines.splice(0)[0]!.close();
    node = await openPairs(filename, field);
    await node.runMutation("pairs:add", { x: 10 + round, y: 200 + round });
    const rows = await node.runQuery("pairs:byKey", { key: field === "x" ? 10 + round : 200 + round });
    expect(rows).toEqual([[10 + round, 200 + round]]);
    expect(await node.runQuery("pairs:byKey", { key: field === "x" ? 1 : 100 })).toEqual([[1, 100]]);
  }
});

// Index IDs on a database from before "Index IDs" (catalog.ts): nodes running the same code
// agree on an index's ID, also after its plain ID left the registry's built list (marked
// unbuilt, or retired by a node that tried another definition), so the way out of a refused
// index (every node on the same code, then restart them) works there too.

async function close(engine: Engine) {
  engines.splice(engines.indexOf(engine), 1);
  await engine.close();
}

/** A database from before the scheme: `items.by_x` built under its plain ID (the table is empty, so it is complete). */
async function databaseFromBefore(filename: string) {
  const storage = await openSqliteStorage({ filename });
  await storage.setMeta("catalog", JSON.stringify({ tables: {}, indexes: { "items.by_x": ["x", "_creationTime", "_id"] } }));
  await storage.close();
}

/**
 * The documented way out of a refused index (mixedCode.ts, scaling.md): every node runs the same
 * code, then restart them; the first to start rebuilds it. A rolling restart of two nodes.
 */
async function refusedThenRollingRestart(filename: string) {
  const first = await open(filename, newSchema);
  const second = await open(filename, newSchema);
  await first.runMutation("items:add", { x: 1 });
  // A node without the index writes (a rollback, or a stray old instance): both refuse by_x.
  const other = await open(filename, oldSchema);
  await other.runMutation("items:add", { x: 2 });
  await first.refreshFromStorage();
  await second.refreshFromStorage();
  await expect(first.runQuery("items:byX", { x: 2 })).rejects.toThrow(/incomplete/);
  await close(other);

  // Every node runs the same code now. Restart them one at a time: the first one back serves
  // while the second, not yet restarted, keeps writing by_x as it always did.
  await close(first);
  const restarted = await open(filename, newSchema);
  await second.runMutation("items:add", { x: 3 });
  await restarted.refreshFromStorage();
  return restarted;
}

it("on a database made under the scheme, a rolling restart of same-code nodes serves the rebuilt index", async () => {
  const restarted = await refusedThenRollingRestart(join(dir, "fresh.sqlite"));
  expect(await restarted.runQuery("items:byX", { x: 3 })).toBe(1);
  expect(await restarted.runQuery("items:byX", { x: 2 })).toBe(1);
});

it("on a database from before, a rolling restart of same-code nodes serves the rebuilt index (the restarted node must not move to another ID)", async () => {
  const filename = join(dir, "before.sqlite");
  await databaseFromBefore(filename);
  const restarted = await refusedThenRollingRestart(filename);
  // markIncomplete took the plain ID off the built list; the restarted node must still take
  // it (Registry.plain), not `items.by_x@<digest>`, which its peer with the very same code
  // does not write: it would refuse the index again.
  expect(await restarted.runQuery("items:byX", { x: 3 })).toBe(1);
  expect(await restarted.runQuery("items:byX", { x: 2 })).toBe(1);
});

it("on a database from before, a node started while another definition was tried keeps sharing the index with its same-code peers", async () => {
  const filename = join(dir, "canary.sqlite");
  await databaseFromBefore(filename);
  const running = await open(filename, newSchema);
  await running.runMutation("items:add", { x: 1 });
  // A canary with other fields for by_x starts (and is stopped, writing nothing): its start
  // drops the plain ID from the registry.
  const onOtherFields = defineSchema({ items: defineTable({ x: v.number(), y: v.optional(v.number()) }).index("by_x", ["x", "y"]) });
  await close(await open(filename, onOtherFields as never));
  // A node with the same code as `running` starts (autoscaling, a crash restart).
  const peer = await open(filename, newSchema);
  await running.runMutation("items:add", { x: 2 });
  await peer.runMutation("items:add", { x: 3 });
  await peer.refreshFromStorage();
  await running.refreshFromStorage();
  // With a digest ID for `peer` and the plain one for `running`, each would refuse its own
  // once the other writes, though both run the same code and nothing wrote without by_x.
  expect(await peer.runQuery("items:byX", { x: 2 })).toBe(1);
  expect(await running.runQuery("items:byX", { x: 3 })).toBe(1);
});

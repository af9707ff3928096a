/**
 * A canary on PostgreSQL: a node builds a new index at start and stops (a canary, a deploy
 * rolled back) while nodes without that index keep writing to its table. A node declaring the
 * index that starts later must not trust the entries the canary left: its queries through the
 * index must see every document written in between, as they are now.
 *
 * Fixed by recording builds and the nodes lacking them in `_index_builds` (engine/indexBuilds.ts):
 * this was the known bug of docs/scaling.md, "A canary that stops is not watched".
 */
import { afterEach, describe, expect, it } from "vitest";
import { Engine } from "../../engine/engine.js";
import type { PostgresStorage } from "./postgresStorage.js";
import { openTestSchema } from "./testDatabase.js";
import { items, newSchema, oldSchema } from "../../engine/fixtures/rollingDeploy.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});


/** One schema on the run's database; `node` opens an engine on a storage of its own (a node). */
async function cluster() {
  const target = await openTestSchema();
  const engines: Engine[] = [];
  const storages: PostgresStorage[] = [];
  cleanups.push(async () => {
    for (const engine of engines.splice(0)) await engine.close().catch(() => {});
    for (const storage of storages) await storage.close().catch(() => {});
    await target.drop();
  });
  const node = async (schema: typeof newSchema | typeof oldSchema) => {
    const storage = engines.length === 0 ? target.storage : await target.open();
    storages.push(storage);
    const engine = await Engine.open({ storage, schema, modules: { items }, runScheduler: false, pollIntervalMs: 60_000, logError: () => {} });
    engines.push(engine);
    return engine;
  };
  return { node };
}

describe("a canary that built an index and stopped", () => {
  it("a node that declares the index and starts later finds the documents an old node inserted after the canary stopped", async () => {
    const { node } = await cluster();
    const old = await node(oldSchema);
    await old.runMutation("items:add", { x: 1 });

    // The canary starts (building by_x with the one document), then is rolled back.
    const canary = await node(newSchema);
    expect(await canary.runQuery("items:byX", { x: 1 })).toBe(1);
    await canary.close();

    // The old node, which has been running all along, keeps writing to items.
    await old.runMutation("items:add", { x: 5 });

    // The real deploy: a node with by_x starts while the old node still runs.
    const deployed = await node(newSchema);
    expect(await deployed.runQuery("items:byX", { x: 5 })).toBe(1);
    expect(await deployed.runQuery("items:byX", { x: 1 })).toBe(1);
  });

  it("a node that declares the index and starts after the old node stopped sees documents the old node changed under their new values", async () => {
    const { node } = await cluster();
    const old = await node(oldSchema);
    await old.runMutation("items:add", { x: 1 });

    const canary = await node(newSchema);
    expect(await canary.runQuery("items:byX", { x: 1 })).toBe(1);
    await canary.close();

    // The old node changes the document, then stops too: no node is left that could tell.
    await old.runMutation("items:move", { from: 1, to: 2 });
    await old.close();

    const deployed = await node(newSchema);
    expect(await deployed.runQuery("items:byX", { x: 2 })).toBe(1);
    expect(await deployed.runQuery("items:byX", { x: 1 })).toBe(0);
  });
});

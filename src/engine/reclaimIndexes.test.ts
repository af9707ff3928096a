/**
 * Entries of indexes no schema declares any more, on a SQLite file (shared: another process,
 * or the other engine of a hot reload, may have it open): kept while another engine may read
 * them, reclaimed once none can (reclaimIndexes.ts), and never taken from an index another
 * engine built again meanwhile.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, expect, it } from "vitest";
import { defineSchema, defineTable, mutation, query } from "../server/index.js";
import type { SchemaDefinition } from "../server/schema.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine } from "./engine.js";

const fields = { x: v.number(), y: v.number() };
const onX = defineSchema({ items: defineTable(fields).index("by_key", ["x"]) });
const onY = defineSchema({ items: defineTable(fields).index("by_key", ["y"]) });
const none = defineSchema({ items: defineTable(fields) });
const modules = (field: "x" | "y") => ({
  items: {
    add: mutation({ args: fields, handler: (ctx, item) => ctx.db.insert("items", item) }),
    count: query({
      args: { key: v.number() },
      handler: async (ctx, { key }) => (await ctx.db.query("items").withIndex("by_key" as never, (q: any) => q.eq(field, key)).collect()).length,
    }),
  },
});

const dir = mkdtempSync(join(tmpdir(), "walkin-reclaim-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const open: Engine[] = [];
afterEach(async () => {
  for (const engine of open.splice(0)) await engine.close();
});

async function start(filename: string, schema: SchemaDefinition<any>, field: "x" | "y" = "x") {
  const storage = await openSqliteStorage({ filename });
  const engine = await Engine.open({ storage, schema, modules: modules(field), runScheduler: false });
  open.push(engine);
  return engine;
}

async function stop(engine: Engine) {
  open.splice(open.indexOf(engine), 1);
  await engine.close();
}

const keyIndexOf = (engine: Engine) => engine.catalog.lookup("items")!.indexes.get("by_key")!.id;

/** How many entries of `indexId` storage holds at the latest snapshot. */
async function entries(engine: Engine, indexId: string) {
  return (await engine.storage.scan({ indexId, range: {}, order: "asc", readTs: await engine.storage.latestTimestamp(), limit: 1_000 })).length;
}

async function retired(engine: Engine): Promise<string[]> {
  return JSON.parse((await engine.storage.getMeta("catalog"))!).retired ?? [];
}

it("keeps a dropped index's entries while another engine has the file open, and reclaims them once it is alone", async () => {
  const file = join(dir, "dropped.sqlite");
  const old = await start(file, onX);
  for (const x of [1, 2, 2]) await old.runMutation("items:add", { x, y: 0 });
  const byKey = keyIndexOf(old);

  // The new version starts while the old one still serves (a hot reload, another process).
  const upgraded = await start(file, none);
  expect(await retired(upgraded)).toEqual([byKey]);
  expect(await entries(upgraded, byKey)).toBe(3);
  expect(await old.runQuery("items:count", { key: 2 })).toBe(2);
  expect(await upgraded.reclaimRetiredIndexes()).toEqual([]);
  expect(await old.runQuery("items:count", { key: 2 })).toBe(2);

  await stop(old);
  expect(await upgraded.reclaimRetiredIndexes()).toEqual([byKey]);
  expect(await entries(upgraded, byKey)).toBe(0);
  expect(await retired(upgraded)).toEqual([]);
});

it("reclaims at start when the engine is alone on the file, including an index whose fields changed", async () => {
  const file = join(dir, "restart.sqlite");
  const first = await start(file, onX);
  for (const [x, y] of [[1, 10], [2, 20]]) await first.runMutation("items:add", { x, y });
  const onXIndex = keyIndexOf(first);
  await stop(first);

  const redefined = await start(file, onY, "y");
  expect(keyIndexOf(redefined)).not.toBe(onXIndex);
  expect(await entries(redefined, onXIndex)).toBe(0);
  expect(await retired(redefined)).toEqual([]);
  expect(await redefined.runQuery("items:count", { key: 20 })).toBe(1);
  expect(await redefined.runQuery("items:count", { key: 2 })).toBe(0);
});

it("never reclaims an index that another engine built again after it retired", async () => {
  const file = join(dir, "rebuilt.sqlite");
  const old = await start(file, onX);
  for (const x of [1, 2]) await old.runMutation("items:add", { x, y: 0 });
  const byKey = keyIndexOf(old);
  const dropping = await start(file, none);
  expect(await retired(dropping)).toEqual([byKey]);
  await stop(old);

  // While `dropping` runs, a version that declares the index again starts, rebuilds it over the
  // kept entries (it is not listed as built any more) and stops.
  const again = await start(file, onX);
  await again.runMutation("items:add", { x: 2, y: 0 });
  await stop(again);

  // `dropping` is alone now, and still has the index on its retired list from its start.
  expect(await dropping.reclaimRetiredIndexes()).toEqual([]);
  expect(await entries(dropping, byKey)).toBe(3);
  await stop(dropping);

  // The index is listed as built, so the next start trusts it: its entries must all be there.
  const next = await start(file, onX);
  expect(await next.runQuery("items:count", { key: 2 })).toBe(2);
  expect(await next.runQuery("items:count", { key: 1 })).toBe(1);
});

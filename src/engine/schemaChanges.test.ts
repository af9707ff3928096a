/**
 * An app's schema changes over a database that already holds documents (tables and
 * indexes added, removed, changed; backfills racing writes; nodes on one file with different
 * schemas). Each test states the invariant it checks.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { defineSchema, defineTable, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine } from "./engine.js";
import { HookedStorage, type StorageHooks } from "./fixtures/hookedStorage.js";

/** An SQLite file shared like a networked database: the engine treats it as shared with other nodes. */
class SharedStorage extends HookedStorage {
  watchCommits(): () => void {
    return () => {};
  }
}

type Row = { _id: string; _creationTime: number; x: number; color: string };
const byKey = (a: Row, b: Row) => a.x - b.x || a._creationTime - b._creationTime || (a._id < b._id ? -1 : a._id > b._id ? 1 : 0);

const items = {
  add: mutation({ args: { x: v.number(), color: v.string() }, handler: (ctx, args) => ctx.db.insert("items", args) }),
  set: mutation({ args: { id: v.string(), x: v.number() }, handler: (ctx, { id, x }) => ctx.db.patch(id as never, { x }) }),
  del: mutation({ args: { id: v.string() }, handler: (ctx, { id }) => ctx.db.delete(id as never) }),
  get: query({ args: { id: v.string() }, handler: (ctx, { id }) => ctx.db.get(id as never) }),
  all: query({ args: {}, handler: (ctx) => ctx.db.query("items").collect() }),
  byX: query({
    args: { x: v.number() },
    handler: async (ctx, { x }) => (await ctx.db.query("items").withIndex("by_x" as never, (q: any) => q.eq("x", x)).collect()).length,
  }),
  byColor: query({
    args: { color: v.union(v.string(), v.number()) },
    handler: async (ctx, { color }) =>
      (await ctx.db.query("items").withIndex("by_color" as never, (q: any) => q.eq("color", color)).collect()).length,
  }),
  /** by_color when it is declared over x. */
  byColorAsX: query({
    args: { x: v.number() },
    handler: async (ctx, { x }) =>
      (await ctx.db.query("items").withIndex("by_color" as never, (q: any) => q.eq("x", x)).collect()).length,
  }),
  /** The whole by_x index, in its order. */
  scanX: query({ args: {}, handler: (ctx) => ctx.db.query("items").withIndex("by_x" as never).collect() }),
};
const others = {
  add: mutation({ args: { n: v.number() }, handler: (ctx, args) => ctx.db.insert("others", args) }),
};
const modules = { items, others };

const itemFields = { x: v.number(), color: v.string() };
const plain = defineSchema({ items: defineTable(itemFields), others: defineTable({ n: v.number() }) });
const withX = defineSchema({ items: defineTable(itemFields).index("by_x", ["x"]), others: defineTable({ n: v.number() }) });

let dir: string;
const engines: Engine[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "walkin-schema-probe-"));
});
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

async function openPlain(file: string, schema: ReturnType<typeof defineSchema>) {
  const engine = await Engine.open({ storage: await openSqliteStorage({ filename: file }), schema, modules, runScheduler: false });
  engines.push(engine);
  return engine;
}

async function openShared(file: string, schema: ReturnType<typeof defineSchema>, hooks: StorageHooks = {}, storage?: SharedStorage) {
  storage ??= new SharedStorage(await openSqliteStorage({ filename: file }), hooks);
  const engine = await Engine.open({ storage, schema, modules, runScheduler: false, pollIntervalMs: 60_000, logError: () => {} });
  engines.push(engine);
  return engine;
}

async function close(engine: Engine) {
  engines.splice(engines.indexOf(engine), 1);
  await engine.close();
}

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random inserts, patches and deletes of `items` through `engine`; `live` tracks the IDs. */
async function randomWrites(engine: Engine, random: () => number, live: string[], count: number) {
  for (let i = 0; i < count; i++) {
    const r = random();
    if (r < 0.45 || live.length === 0) {
      const { value } = await engine.runMutation("items:add", { x: Math.floor(random() * 8), color: "c" });
      live.push(value as string);
    } else if (r < 0.8) {
      const id = live[Math.floor(random() * live.length)]!;
      await engine.runMutation("items:set", { id, x: Math.floor(random() * 8) });
    } else {
      const [id] = live.splice(Math.floor(random() * live.length), 1);
      await engine.runMutation("items:del", { id: id! });
    }
  }
}

/** The by_x index scan equals the table, filtered and sorted by the index's key. */
async function expectIndexMatchesTable(engine: Engine) {
  const table = ((await engine.runQuery("items:all", {})) as Row[]).slice().sort(byKey);
  const index = (await engine.runQuery("items:scanX", {})) as Row[];
  expect(index.map((d) => [d.x, d._id])).toEqual(table.map((d) => [d.x, d._id]));
  for (let x = 0; x < 8; x++) {
    expect(await engine.runQuery("items:byX", { x }), `x=${x}`).toBe(table.filter((d) => d.x === x).length);
  }
}

it("a table removed from the schema and added back keeps its documents (or the removal is refused)", async () => {
  const file = join(dir, "db.sqlite");
  const first = await openPlain(file, plain);
  const { value: id } = await first.runMutation("items:add", { x: 1, color: "red" });
  await first.runMutation("items:add", { x: 2, color: "blue" });
  await close(first);

  // The app drops `items` from its schema for one deploy...
  const removed = await openPlain(file, defineSchema({ others: defineTable({ n: v.number() }) })).then(
    (engine) => ({ engine, error: null as Error | null }),
    (error: Error) => ({ engine: null, error }),
  );
  if (removed.engine) await close(removed.engine);
  else return; // a clear refusal is an acceptable outcome

  // ...and puts it back: get() and a table scan must agree, and nothing may be lost.
  const back = await openPlain(file, plain);
  expect(await back.runQuery("items:get", { id })).not.toBeNull();
  expect(((await back.runQuery("items:all", {})) as Row[]).map((d) => d.x).sort()).toEqual([1, 2]);
});

it("documents written during a backfill (by a node without the index) are in the index once, with their latest key", async () => {
  const file = join(dir, "db.sqlite");
  const random = prng(7);
  const live: string[] = [];
  const writer = await openShared(file, plain);
  await randomWrites(writer, random, live, 60);

  // The new node's backfill scans race the writer's commits on its first attempts.
  let racing = 3;
  let building = true;
  const hooks: StorageHooks = {
    read: async (operation, read) => {
      if (building && operation === "scan" && racing > 0) {
        racing--;
        await randomWrites(writer, random, live, 15);
      }
      return read();
    },
  };
  const builder = await openShared(file, withX, hooks);
  building = false;
  expect(racing).toBe(0);
  await close(writer);
  await builder.refreshFromStorage();
  await expectIndexMatchesTable(builder);
  // And it stays right as this node writes.
  await randomWrites(builder, random, live, 40);
  await expectIndexMatchesTable(builder);
});

it("writes landing between the backfill's scan and its commit are caught and the build redone", async () => {
  const file = join(dir, "db.sqlite");
  for (const seed of [1, 2, 3]) {
    const random = prng(seed);
    const live: string[] = [];
    const f = `${file}.${seed}`;
    const writer = await openShared(f, plain);
    await randomWrites(writer, random, live, 40);
    let racing = 2;
    const builder = await openShared(f, withX, {
      commitBatch: async (commit) => {
        if (racing > 0) {
          racing--;
          await randomWrites(writer, random, live, 10);
        }
        return commit();
      },
    });
    expect(racing).toBe(0);
    await close(writer);
    await builder.refreshFromStorage();
    await expectIndexMatchesTable(builder);
    await close(builder);
  }
});

it("an index removed while documents change, then added back, is rebuilt from the documents (single node)", async () => {
  const file = join(dir, "db.sqlite");
  const random = prng(11);
  const live: string[] = [];
  const a = await openPlain(file, withX);
  await randomWrites(a, random, live, 50);
  await expectIndexMatchesTable(a);
  await close(a);
  const b = await openPlain(file, plain);
  await randomWrites(b, random, live, 50);
  await close(b);
  const c = await openPlain(file, withX);
  await expectIndexMatchesTable(c);
});

it("an index removed by an old node on a shared database (entries kept), then added back, is rebuilt", async () => {
  const file = join(dir, "db.sqlite");
  const random = prng(13);
  const live: string[] = [];
  const a = await openShared(file, withX);
  await randomWrites(a, random, live, 50);
  await close(a);
  const b = await openShared(file, plain); // keeps by_x's entries: they go stale below
  await randomWrites(b, random, live, 50);
  await close(b);
  const c = await openShared(file, withX);
  await expectIndexMatchesTable(c);
});

it("a crash while committing a backfill leaves the index unbuilt, and the next start builds it", async () => {
  const file = join(dir, "db.sqlite");
  const random = prng(17);
  const live: string[] = [];
  const a = await openShared(file, plain);
  await randomWrites(a, random, live, 60);
  await close(a);
  const failing = new SharedStorage(await openSqliteStorage({ filename: file }), {
    commitBatch: () => Promise.reject(new Error("disk on fire")),
  });
  await expect(openShared(file, withX, {}, failing)).rejects.toThrow(/disk on fire/);
  engines.splice(0);
  await failing.close();
  const c = await openShared(file, withX);
  await expectIndexMatchesTable(c);
});

it("two nodes starting the same new code at once: the first never answers from an index the second is rebuilding", async () => {
  const file = join(dir, "db.sqlite");
  const seed = await openShared(file, plain);
  for (let i = 0; i < 5; i++) await seed.runMutation("items:add", { x: i, color: "c" });
  await close(seed);

  // Node B has read the catalog (by_x not built yet) and is about to build it...
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const storageB = new SharedStorage(await openSqliteStorage({ filename: file }), {
    read: async (operation, read) => {
      const result = await read();
      if (operation === "getMeta") await gate; // right after it read the catalog
      return result;
    },
  });
  const openingB = openShared(file, withX, {}, storageB);
  // ...while node A, same code, builds it first and serves it.
  const a = await openShared(file, withX);
  expect(await a.runQuery("items:byX", { x: 1 })).toBe(1);
  // Let A's storage write its deferred versions to their tables (5 ms after a commit).
  await new Promise((resolve) => setTimeout(resolve, 50));

  // B now drops what it considers stale and backfills; A answers a query before B's first commit.
  let seenDuringRebuild: number | Error | undefined;
  storageB.hooks.commitBatch = async (commit) => {
    seenDuringRebuild ??= await a.runQuery("items:byX", { x: 3 }).then((n) => n as number, (e: Error) => e);
    return commit();
  };
  release();
  await openingB;
  // A correct answer (1), or a refusal: never 0 from the emptied index.
  if (typeof seenDuringRebuild === "number") expect(seenDuringRebuild).toBe(1);
  else expect(String(seenDuringRebuild)).toMatch(/index/i);
});

it("hot reload on one SQLite file: the old engine's writes after the new engine built an index are never missing from it", async () => {
  const file = join(dir, "db.sqlite");
  const old = await openPlain(file, plain);
  await old.runMutation("items:add", { x: 1, color: "red" });
  // `walkin dev` opens the new generation's engine while the old one still serves.
  const fresh = await openPlain(file, withX);
  await old.runMutation("items:add", { x: 2, color: "red" });
  await close(old);
  // The new engine learns of the old one's commit with its next commit.
  await fresh.runMutation("items:add", { x: 3, color: "red" });
  const answer = await fresh.runQuery("items:byX", { x: 2 }).then((n) => n as number, (e: Error) => e);
  if (typeof answer === "number") expect(answer).toBe(1);
  else expect(String(answer)).toMatch(/incomplete/);
});

it("a validator tightened over existing documents: they stay readable, and writing one names the field", async () => {
  const file = join(dir, "db.sqlite");
  const a = await openPlain(file, plain);
  const { value: id } = await a.runMutation("items:add", { x: 1, color: "red" });
  await close(a);
  // Documented: each node validates writes against its own schema (docs/scaling.md).
  const tight = defineSchema({ items: defineTable({ x: v.number(), color: v.number() }), others: defineTable({ n: v.number() }) });
  const b = await openPlain(file, tight);
  expect(await b.runQuery("items:get", { id })).toMatchObject({ x: 1, color: "red" });
  await expect(b.runMutation("items:set", { id, x: 2 })).rejects.toThrow(/items\.color: expected number, received string/);
  expect(await b.runQuery("items:get", { id })).toMatchObject({ x: 1 });
});

it("rolling deploy adding a table: an old node restarting, then a new one, leaves the new table's documents in place", async () => {
  const file = join(dir, "db.sqlite");
  const oldCode = defineSchema({ others: defineTable({ n: v.number() }) });
  const newNode = await openShared(file, plain); // plain declares `items`, new in this deploy
  await newNode.runMutation("items:add", { x: 1, color: "red" });
  await newNode.runMutation("items:add", { x: 2, color: "blue" });
  // An old node (re)starts during the deploy, then another new node.
  const oldNode = await openShared(file, oldCode);
  const newNode2 = await openShared(file, plain);
  expect.soft(((await newNode2.runQuery("items:all", {})) as Row[]).length, "the second new node").toBe(2);
  await newNode.refreshFromStorage();
  expect.soft(((await newNode.runQuery("items:all", {})) as Row[]).length, "the first new node").toBe(2);
  await close(oldNode);
});

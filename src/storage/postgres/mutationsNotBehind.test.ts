/**
 * A mutation that starts after another has returned sees it, whichever nodes ran them (strict
 * serializability), also when it throws or writes nothing: such a mutation is never checked at
 * commit, so before the fix a node that had not yet heard of a commit answered from its stale
 * snapshot ("room not found" for a room another client had just created and passed on).
 *
 * Two engines on one PostgreSQL schema. Node B hears nothing from the database on its own: its
 * commit watch is deaf and its polls are a minute apart, so it learns node A's commits only when
 * it commits or looks, and it stays behind for as long as each test likes, with no timing.
 */
import { afterEach, expect, it, vi } from "vitest";
import { Engine } from "../../engine/engine.js";
import { defineSchema, defineTable, mutation } from "../../server/index.js";
import { openSqliteStorage } from "../sqlite/index.js";
import type { Storage } from "../types.js";
import { v } from "../../values/index.js";
import type { PostgresStorage } from "./postgresStorage.js";
import { openTestSchema } from "./testDatabase.js";

const schema = defineSchema({ rooms: defineTable({ name: v.string() }) });

const rooms = {
  create: mutation({ args: { name: v.string() }, handler: (ctx, { name }) => ctx.db.insert("rooms", { name }) }),
  rename: mutation({ args: { id: v.id("rooms"), name: v.string() }, handler: (ctx, { id, name }) => ctx.db.patch(id, { name }) }),
  join: mutation({
    args: { id: v.id("rooms") },
    handler: async (ctx, { id }) => {
      const room = await ctx.db.get(id);
      if (room === null) throw new Error("room not found");
      return room.name;
    },
  }),
  find: mutation({ args: { id: v.id("rooms") }, handler: async (ctx, { id }) => (await ctx.db.get(id))?.name ?? null }),
  refuse: mutation({
    args: { id: v.id("rooms") },
    handler: async (ctx, { id }) => {
      await ctx.db.get(id);
      throw new Error("rooms are closed today");
    },
  }),
};

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** `storage` as a node whose notifications never come: still a shared storage (it has `watchCommits`). */
function deaf<S extends Storage>(storage: S): S {
  return new Proxy(storage, {
    get(target, key) {
      if (key === "watchCommits") return () => () => {};
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

async function open(storage: Storage): Promise<Engine> {
  const engine = await Engine.open({ storage, schema, modules: { rooms }, runScheduler: false, pollIntervalMs: 60_000, logError: () => {} });
  cleanups.push(() => engine.close());
  return engine;
}

/** Node A (hears normally) and node B (deaf), on one fresh schema; `storageB` is B's storage, to spy on. */
async function twoNodes(): Promise<{ a: Engine; b: Engine; storageB: PostgresStorage }> {
  const target = await openTestSchema();
  cleanups.push(() => target.drop());
  const a = await open(target.storage); // an engine closes its storage
  const storageB = await target.open();
  const b = await open(deaf(storageB));
  return { a, b, storageB };
}

it("a patch on node B of a document node A created just before succeeds", async () => {
  const { a, b } = await twoNodes();
  const { value: id } = await a.runMutation("rooms:create", { name: "lobby" });
  await b.runMutation("rooms:rename", { id, name: "hall" });
  expect((await a.runMutation("rooms:find", { id })).value).toBe("hall");
});

it("a mutation on node B that throws its own error when `get` returns null sees the document node A created", async () => {
  const { a, b } = await twoNodes();
  const { value: id } = await a.runMutation("rooms:create", { name: "lobby" });
  expect((await b.runMutation("rooms:join", { id })).value).toBe("lobby");
});

it("a read-only mutation on node B returns the document node A created, not null", async () => {
  const { a, b } = await twoNodes();
  const { value: id } = await a.runMutation("rooms:create", { name: "lobby" });
  expect((await b.runMutation("rooms:find", { id })).value).toBe("lobby");
});

it("a mutation that fails for a reason no newer commit changes fails with its error after one look, not a retry loop", async () => {
  const { a, b, storageB } = await twoNodes();
  const { value: id } = await a.runMutation("rooms:create", { name: "lobby" });
  await b.refreshFromStorage();
  // A commit B has not heard of, over nothing B's mutation reads.
  await a.runMutation("rooms:create", { name: "annex" });
  const looks = vi.spyOn(storageB, "commitsSince");
  const retriesBefore = b.stats.conflictRetries;
  await expect(b.runMutation("rooms:refuse", { id })).rejects.toThrow("rooms are closed today");
  expect(looks).toHaveBeenCalledTimes(1);
  expect(b.stats.conflictRetries).toBe(retriesBefore);
});

it("a single engine on its own storage does not look at the commit log for mutations that throw or write nothing", async () => {
  const storage = await openSqliteStorage({ filename: ":memory:" });
  const engine = await open(storage);
  const looks = vi.spyOn(storage, "commitsSince");
  const { value: id } = await engine.runMutation("rooms:create", { name: "lobby" });
  expect((await engine.runMutation("rooms:find", { id })).value).toBe("lobby");
  await expect(engine.runMutation("rooms:refuse", { id })).rejects.toThrow("rooms are closed today");
  expect(looks).not.toHaveBeenCalled();
});

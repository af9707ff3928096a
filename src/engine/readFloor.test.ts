/**
 * The engine tells storage how far back reads can still come (`Storage.raiseReadFloor`), as
 * commits go by and between sweeps: never past a snapshot that a running function holds.
 */
import { afterEach, expect, it } from "vitest";
import { defineSchema, defineTable, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine } from "./engine.js";

const schema = defineSchema({ counters: defineTable({ n: v.number() }) });

let release: () => void = () => {};
const gate = () => new Promise<void>((resolve) => (release = resolve));

const counters = {
  create: mutation({ args: {}, handler: (ctx) => ctx.db.insert("counters", { n: 0 }) }),
  bump: mutation({
    args: { id: v.id("counters") },
    handler: async (ctx, { id }) => {
      const doc = await ctx.db.get(id);
      await ctx.db.patch(id, { n: doc!.n + 1 });
    },
  }),
  // Reads, then waits for the test: its snapshot stays in use until then.
  slowRead: query({
    args: { id: v.id("counters") },
    handler: async (ctx, { id }) => {
      const before = (await ctx.db.get(id))!.n;
      await gate();
      return { before, after: (await ctx.db.get(id))!.n };
    },
  }),
};

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

it("raises the storage's read floor as commits go by, never past a snapshot in use", async () => {
  const storage = await openSqliteStorage({ filename: ":memory:" });
  const floors: number[] = [];
  const raise = storage.raiseReadFloor.bind(storage);
  storage.raiseReadFloor = (ts) => {
    floors.push(ts);
    raise(ts);
  };
  const engine = await Engine.open({ storage, schema, modules: { counters }, runScheduler: false });
  cleanups.push(() => engine.close());
  const { value: id } = await engine.runMutation("counters:create", {});

  const reading = engine.runQuery("counters:slowRead", { id });
  await new Promise((resolve) => setTimeout(resolve, 20)); // the query has read, and waits
  const held = engine.latestTimestamp;
  for (let i = 0; i < 600; i++) await engine.runMutation("counters:bump", { id });
  expect(Math.max(...floors)).toBeLessThanOrEqual(held);

  release();
  // The held snapshot still reads what it read, 600 commits later.
  expect(await reading).toEqual({ before: 0, after: 0 });
  for (let i = 0; i < 600; i++) await engine.runMutation("counters:bump", { id });
  expect(Math.max(...floors)).toBeGreaterThan(held + 256);
  // Never past the newest commit.
  expect(Math.max(...floors)).toBeLessThanOrEqual(engine.latestTimestamp);
});

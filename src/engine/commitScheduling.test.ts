/**
 * When the committer starts a batch: right away when every running mutation is waiting for it,
 * one event-loop turn later when others are still running (so that they join the batch).
 */
import { afterEach, expect, it } from "vitest";
import { defineSchema, defineTable, mutation } from "../server/index.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine } from "./engine.js";
import { HookedStorage } from "./fixtures/hookedStorage.js";

const schema = defineSchema({ notes: defineTable({ text: v.string() }) });
const modules = {
  notes: {
    add: mutation({ args: { text: v.string() }, handler: (ctx, { text }) => ctx.db.insert("notes", { text }) }),
    /** Inserts after a macrotask: still running when a quicker mutation asks to commit. */
    addLater: mutation({
      args: { text: v.string() },
      handler: async (ctx, { text }) => {
        await new Promise((resolve) => setImmediate(resolve));
        return ctx.db.insert("notes", { text });
      },
    }),
  },
};

let engine: Engine | undefined;
afterEach(async () => {
  await engine?.close();
  engine = undefined;
});

async function open(): Promise<{ engine: Engine; batches: number[] }> {
  const batches: number[] = [];
  const storage = new HookedStorage(await openSqliteStorage({ filename: ":memory:" }), {
    commitBatch: async (commit) => {
      const result = await commit();
      if (result.written.length > 0) batches.push(result.written.length);
      return result;
    },
  });
  engine = await Engine.open({ storage, schema, modules, runScheduler: false });
  batches.length = 0; // what opening wrote and read
  return { engine, batches };
}

it("commits a mutation that runs alone without waiting for the event loop to come round", async () => {
  const { engine, batches } = await open();
  let turned = false;
  setImmediate(() => (turned = true));
  await engine.runMutation("notes:add", { text: "alone" });
  expect(turned).toBe(false);
  expect(batches).toEqual([1]);
});

it("waits a turn for mutations still running, and commits them together", async () => {
  const { engine, batches } = await open();
  await Promise.all([
    engine.runMutation("notes:add", { text: "quick" }),
    engine.runMutation("notes:addLater", { text: "slow" }),
  ]);
  expect(batches).toEqual([2]);
});

import { expect, test } from "vitest";
import { defineSchema, defineTable, mutation, query } from "../server/index.js";
import { Engine, type QueryOutcome } from "../engine/engine.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { convertToJson } from "./json.js";
import { sharedJsonOf, sharedJsonText } from "./sharedJson.js";
import { v } from "./validator.js";

test("one outcome is converted once: the same JSON form every time, equal to convertToJson", () => {
  const outcome = { ok: true, value: { n: 1n, list: [1.5, "a", null], bytes: new Uint8Array([1, 2]).buffer } };
  const json = sharedJsonOf(outcome);
  expect(sharedJsonOf(outcome)).toBe(json);
  expect(json).toEqual(convertToJson(outcome.value));
});

test("the value object of a new outcome is converted afresh, even if an earlier outcome held the same object", () => {
  // A handler returning module state: two runs, one object, different contents.
  const state = { count: 1 };
  const first = { ok: true, value: state };
  expect(sharedJsonOf(first)).toEqual({ count: 1 });
  state.count = 2;
  const second = { ok: true, value: state };
  expect(sharedJsonOf(second)).toEqual({ count: 2 });
});

test("the text of a JSON form is JSON.stringify's, for objects and primitives", () => {
  const json = sharedJsonOf({ value: [{ a: "x\u2028y" }, 3] });
  expect(sharedJsonText(json)).toBe(JSON.stringify(json));
  expect(sharedJsonText(json)).toBe(sharedJsonText(json));
  expect(sharedJsonText("plain")).toBe('"plain"');
  expect(sharedJsonText(null)).toBe("null");
  expect(sharedJsonText(sharedJsonOf({ value: 7n }))).toBe(JSON.stringify(convertToJson(7n)));
});

test("a live query that returns the same object with new contents is reported as changed", async () => {
  const shown = { total: 0 };
  const schema = defineSchema({ notes: defineTable({ n: v.number() }) });
  const modules = {
    notes: {
      add: mutation({ args: { n: v.number() }, handler: (ctx, { n }) => ctx.db.insert("notes", { n }) }),
      // Returns one module-level object from every run, updated in place.
      total: query({
        args: {},
        handler: async (ctx) => {
          shown.total = (await ctx.db.query("notes").collect()).reduce((sum, note) => sum + note.n, 0);
          return shown;
        },
      }),
    },
  };
  const engine = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema, modules, runScheduler: false });
  try {
    const seen: unknown[] = [];
    const subscription = await engine.subscriptions.subscribe("notes:total", {}, {}, (outcome: QueryOutcome) => {
      if (outcome.ok) seen.push(structuredClone(outcome.value));
    });
    await engine.runMutation("notes:add", { n: 5 });
    await engine.runMutation("notes:add", { n: 7 });
    await expect.poll(() => seen.at(-1)).toEqual({ total: 12 });
    subscription.unsubscribe();
  } finally {
    await engine.close();
  }
});

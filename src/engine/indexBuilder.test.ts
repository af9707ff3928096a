import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { defineSchema, defineTable, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { withTestLatency } from "../testing/testStorage.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine } from "./engine.js";

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const fields = { color: v.string(), size: v.number() };
const modules = {
  things: {
    add: mutation({ args: fields, handler: (ctx, args) => ctx.db.insert("things", args) }),
    byColor: query({
      args: { color: v.string() },
      handler: async (ctx, { color }) =>
        (await ctx.db.query("things").withIndex("by_color", (q) => q.eq("color", color)).collect()).map((t) => t.size),
    }),
  },
};

async function open(file: string, schema: ReturnType<typeof defineSchema>) {
  return Engine.open({ storage: withTestLatency(await openSqliteStorage({ filename: file })), schema, modules, runScheduler: false });
}

it("builds an index added to an existing table, and rebuilds one whose fields changed", async () => {
  dir = mkdtempSync(join(tmpdir(), "walkin-index-"));
  const file = join(dir, "db.sqlite");
  const before = await open(file, defineSchema({ things: defineTable(fields) }));
  for (const [color, size] of [["red", 1], ["blue", 2], ["red", 3]] as const) await before.runMutation("things:add", { color, size });
  await before.close();

  const added = await open(file, defineSchema({ things: defineTable(fields).index("by_color", ["color"]) }));
  expect(await added.runQuery("things:byColor", { color: "red" })).toEqual([1, 3]);
  await added.runMutation("things:add", { color: "red", size: 4 });
  expect(await added.runQuery("things:byColor", { color: "red" })).toEqual([1, 3, 4]);
  await added.close();

  // Same name, different fields: the old entries are dropped and the index is rebuilt.
  const changed = await open(file, defineSchema({ things: defineTable(fields).index("by_color", ["color", "size"]) }));
  expect(await changed.runQuery("things:byColor", { color: "red" })).toEqual([1, 3, 4]);
  expect(await changed.runQuery("things:byColor", { color: "blue" })).toEqual([2]);
  await changed.close();
});

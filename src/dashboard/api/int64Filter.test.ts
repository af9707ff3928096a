/**
 * The dashboard API's filters (and index values) on int64 fields, from a caller other than the
 * Data page: a JSON number such as `5` given for an int64 field means the int64 5n (a float64
 * never equals an int64, so it matched nothing); a number that names no int64 exactly (a
 * fraction, or one past 2^53 - 1) is refused with a 400 saying what to send instead. Over HTTP,
 * against a real server on loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../engine/engine.js";
import { openSqliteStorage } from "../../storage/sqlite/index.js";
import { startServer, type WalkinServer } from "../../transport/index.js";
import { defineSchema, defineTable, mutation } from "../../server/index.js";
import { v } from "../../values/index.js";
import { Dashboard } from "./dashboard.js";
import { adminCall } from "./fixtures/adminBackend.js";

const KEY = "int64-filter-admin-key-0123456789abcdef";
const schema = defineSchema({
  scores: defineTable({
    player: v.string(),
    points: v.int64(),
    ratio: v.float64(),
    stats: v.object({ wins: v.optional(v.int64()) }),
    bonus: v.optional(v.union(v.int64(), v.null())),
    either: v.optional(v.union(v.int64(), v.float64())),
    level: v.optional(v.literal(7n)),
    rounds: v.optional(v.array(v.int64())),
    byStage: v.optional(v.record(v.string(), v.int64())),
    mixed: v.optional(v.array(v.any())),
  }).index("by_points", ["points"]),
});
const seed = mutation({
  args: {},
  handler: async (ctx) => {
    await ctx.db.insert("scores", { player: "ann", points: 5n, ratio: 5, stats: { wins: 2n }, bonus: 1n, either: 5, level: 7n });
    await ctx.db.insert("scores", { player: "bob", points: 6n, ratio: 0.5, stats: { wins: 3n }, bonus: null, either: 5n, rounds: [1n, 2n], byStage: { final: 4n }, mixed: [1] });
    await ctx.db.insert("scores", { player: "cy", points: 9007199254740993n, ratio: 1, stats: {}, bonus: -4n });
  },
});

let engine: Engine;
let server: WalkinServer;
beforeAll(async () => {
  const dashboard = new Dashboard({ adminKey: KEY });
  engine = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema, modules: { seed: { default: seed } }, runScheduler: false });
  server = await startServer({ engine, port: 0, log: () => {}, dashboard });
  await engine.runMutation("seed:default", {});
});
afterAll(async () => {
  await server.close();
  await engine.close();
});

/** `POST /api/admin/documents/list` as a script would send it. */
function list(body: Record<string, unknown>) {
  return adminCall(server.url, "documents/list", { table: "scores", ...body }, KEY);
}

async function playersWhere(field: string, op: string, value: unknown): Promise<string[]> {
  const answer = await list({ filters: [{ field, op, value }] });
  expect(answer.status, answer.text).toBe(200);
  return (answer.json.page as Array<{ doc: { player: string } }>).map((view) => view.doc.player).sort();
}

describe("a JSON number given in a filter on an int64 field", () => {
  it("matches the documents holding that int64", async () => {
    expect(await playersWhere("points", "eq", 5)).toEqual(["ann"]);
    expect(await playersWhere("points", "gte", 6)).toEqual(["bob", "cy"]);
    expect(await playersWhere("points", "neq", 6)).toEqual(["ann", "cy"]);
    expect(await playersWhere("points", "lt", -1)).toEqual([]);
  });

  it("does so on a nested field, an optional union with int64 in it, and a bigint literal", async () => {
    expect(await playersWhere("stats.wins", "eq", 3)).toEqual(["bob"]);
    expect(await playersWhere("bonus", "eq", -4)).toEqual(["cy"]);
    expect(await playersWhere("level", "eq", 7)).toEqual(["ann"]);
  });

  it("does so inside an object, an array and a record value, wherever the schema puts an int64", async () => {
    expect(await playersWhere("stats", "eq", { wins: 3 })).toEqual(["bob"]);
    expect(await playersWhere("rounds", "eq", [1, 2])).toEqual(["bob"]);
    expect(await playersWhere("byStage", "eq", { final: 4 })).toEqual(["bob"]);
    // An array of v.any() takes float64s: its numbers stay numbers.
    expect(await playersWhere("mixed", "eq", [1])).toEqual(["bob"]);
    const fraction = await list({ filters: [{ field: "rounds", op: "eq", value: [1, 2.5] }] });
    expect(fraction.status).toBe(400);
    expect(fraction.json.error.message).toBe('filters[0].value: "rounds.1" is an int64 field, which holds whole numbers; 2.5 is not one.');
  });

  it("leaves the number a float64 where the field takes float64s too", async () => {
    expect(await playersWhere("ratio", "eq", 5)).toEqual(["ann"]);
    expect(await playersWhere("either", "eq", 5)).toEqual(["ann"]);
    expect(await playersWhere("either", "eq", { $integer: "BQAAAAAAAAA=" })).toEqual(["bob"]);
  });

  it("is read the same way as an index value", async () => {
    const answer = await list({ index: "by_points", indexValues: [6] });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json.page.map((view: { doc: { player: string } }) => view.doc.player)).toEqual(["bob"]);
  });
});

describe("a JSON number that names no int64 exactly", () => {
  it("is refused when it is not whole, saying which field and why", async () => {
    const answer = await list({ filters: [{ field: "player", op: "eq", value: "ann" }, { field: "points", op: "eq", value: 5.5 }] });
    expect(answer.status).toBe(400);
    expect(answer.json.error.message).toBe('filters[1].value: "points" is an int64 field, which holds whole numbers; 5.5 is not one.');
  });

  it("is refused past 2^53 - 1, where JSON has lost digits, pointing to the exact form", async () => {
    // 9007199254740993 arrives as 9007199254740992: comparing it would match the wrong document.
    const answer = await adminCall(server.url, "documents/list", JSON.parse('{"table":"scores","filters":[{"field":"points","op":"eq","value":9007199254740993}]}'), KEY);
    expect(answer.status).toBe(400);
    expect(answer.json.error.message).toBe(
      'filters[0].value: "points" is an int64 field and 9007199254740992 is past 2^53 - 1, where a JSON number may have lost digits: ' +
        'give it as { "$integer": "<base64 of its 8 bytes, little-endian two\'s complement>" } (what convertToJson makes of a bigint).',
    );
    const index = await list({ index: "by_points", indexValues: [2 ** 60] });
    expect(index.status).toBe(400);
    expect(index.json.error.message).toContain(`indexValues[0] (points): "points" is an int64 field and ${2 ** 60} is past 2^53 - 1`);
  });
});

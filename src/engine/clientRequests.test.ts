import { afterEach, expect, it } from "vitest";
import { defineSchema, defineTable, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { withTestLatency } from "../testing/testStorage.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine } from "./engine.js";
import { CLIENT_REQUEST_RETENTION_MS, pruneClientRequests } from "./clientRequests.js";

const schema = defineSchema({ items: defineTable({ n: v.number() }) });
const modules = {
  items: {
    add: mutation({ args: { n: v.number() }, handler: (ctx, { n }) => ctx.db.insert("items", { n }) }),
    count: query({ args: {}, handler: async (ctx) => (await ctx.db.query("items").collect()).length }),
  },
};

let engine: Engine;
afterEach(async () => engine?.close());

it("applies a client's request once, answers a re-send from the record, and expires records after the retention window", async () => {
  engine = await Engine.open({ storage: withTestLatency(await openSqliteStorage({ filename: ":memory:" })), schema, modules, runScheduler: false });
  const request = { clientId: "client-1", requestId: 7 };
  const first = await engine.runClientMutation("items:add", { n: 1 }, { fromClient: true }, request);
  const again = await engine.runClientMutation("items:add", { n: 1 }, { fromClient: true }, request);
  expect(first.deduplicated).toBe(false);
  expect(again).toMatchObject({ deduplicated: true, value: first.value });
  expect(await engine.runQuery("items:count", {})).toBe(1);

  // Another client's request with the same number is its own.
  await engine.runClientMutation("items:add", { n: 2 }, { fromClient: true }, { clientId: "client-2", requestId: 7 });
  expect(await engine.runQuery("items:count", {})).toBe(2);

  // Records younger than the window stay; older ones go.
  const now = Date.now();
  expect(await engine.runSystemMutation((txn) => pruneClientRequests(engine.catalog, txn, now))).toBe(0);
  const removed = await engine.runSystemMutation((txn) => pruneClientRequests(engine.catalog, txn, now + CLIENT_REQUEST_RETENTION_MS + 1000));
  expect(removed).toBe(2);
});

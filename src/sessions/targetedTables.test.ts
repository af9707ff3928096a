/**
 * Per-session data in targeted tables: a write to one feature's session data re-runs only the
 * queries of that feature. One big session document, by contrast, re-runs every query that
 * reads it, whatever field changed. (A subscriber hears only results that changed, so the
 * cost of the needless re-run shows in `engine.stats.queryRuns`, not in its listener.)
 */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, defineSchema, defineTable, v } from "../server/index.js";
import { walkinTest, type WalkinTest } from "../testing/index.js";
import type { Engine } from "../engine/engine.js";
import { mutationWithSession, queryWithSession, sessionTables } from "./builders.js";
import { vSessionId, type SessionId } from "./sessionId.js";
import { settle } from "../engine/fixtures/settle.js";

const schema = defineSchema({
  ...sessionTables,
  users: defineTable({ name: v.string() }),
  // Targeted: one table per feature, keyed by session.
  carts: defineTable({ sessionId: vSessionId, items: v.array(v.string()) }).index("by_sessionId", ["sessionId"]),
  presence: defineTable({ sessionId: vSessionId, cursor: v.number() }).index("by_sessionId", ["sessionId"]),
  // Sprawling: everything about a session in one document.
  sessionData: defineTable({ sessionId: vSessionId, items: v.array(v.string()), cursor: v.number() }).index("by_sessionId", ["sessionId"]),
});

type Table = "carts" | "presence" | "sessionData";
const find = (ctx: any, table: Table, sessionId: SessionId) =>
  ctx.db.query(table).withIndex("by_sessionId", (q: any) => q.eq("sessionId", sessionId)).first();
async function upsert(ctx: any, table: Table, sessionId: SessionId, fields: Record<string, unknown>, initial: Record<string, unknown>) {
  const row = await find(ctx, table, sessionId);
  if (row) await ctx.db.patch(row._id, fields);
  else await ctx.db.insert(table, { sessionId, ...initial, ...fields });
}

const features = {
  cart: queryWithSession({ args: {}, handler: async (ctx) => (await find(ctx, "carts", ctx.sessionId))?.items ?? [] }),
  cursor: queryWithSession({ args: {}, handler: async (ctx) => (await find(ctx, "presence", ctx.sessionId))?.cursor ?? null }),
  addItem: mutationWithSession({
    args: { item: v.string() },
    handler: async (ctx, { item }) => {
      const cart = await find(ctx, "carts", ctx.sessionId);
      await upsert(ctx, "carts", ctx.sessionId, { items: [...(cart?.items ?? []), item] }, {});
    },
  }),
  move: mutationWithSession({ args: { cursor: v.number() }, handler: (ctx, { cursor }) => upsert(ctx, "presence", ctx.sessionId, { cursor }, {}) }),

  bigCart: queryWithSession({ args: {}, handler: async (ctx) => (await find(ctx, "sessionData", ctx.sessionId))?.items ?? [] }),
  bigCursor: queryWithSession({ args: {}, handler: async (ctx) => (await find(ctx, "sessionData", ctx.sessionId))?.cursor ?? null }),
  bigMove: mutationWithSession({
    args: { cursor: v.number() },
    handler: (ctx, { cursor }) => upsert(ctx, "sessionData", ctx.sessionId, { cursor }, { items: [] }),
  }),
};
const api = anyApi.features!;

let t: WalkinTest<any>;
afterEach(async () => {
  await t?.close();
});


async function watch(engine: Engine, path: string, sessionId: string) {
  const fired: unknown[] = [];
  const sub = await engine.subscriptions.subscribe(path, { sessionId }, { fromClient: true }, (outcome) => fired.push(outcome));
  return { fired, sub };
}

describe("per-session data", () => {
  it("in targeted tables: moving the cursor does not re-run the cart query", async () => {
    t = walkinTest(schema, { features });
    const engine = await t.engine();
    const sessionId = randomUUID();
    await t.mutation(api.addItem!, { sessionId, item: "tea" });
    await t.mutation(api.move!, { sessionId, cursor: 1 });
    const cart = await watch(engine, "features:cart", sessionId);
    const cursor = await watch(engine, "features:cursor", sessionId);

    const runs = engine.stats.queryRuns;
    await t.mutation(api.move!, { sessionId, cursor: 2 });
    await settle(engine);
    expect(cursor.fired).toEqual([{ ok: true, value: 2 }]);
    expect(cart.fired).toEqual([]);
    expect(engine.stats.queryRuns - runs).toBe(1); // only the cursor query re-ran

    await t.mutation(api.addItem!, { sessionId, item: "cake" });
    await settle(engine);
    expect(cart.fired).toEqual([{ ok: true, value: ["tea", "cake"] }]);
    expect(cursor.fired).toHaveLength(1);
    cart.sub.unsubscribe();
    cursor.sub.unsubscribe();
  });

  it("in one big session document: moving the cursor re-runs the cart query too", async () => {
    t = walkinTest(schema, { features });
    const engine = await t.engine();
    const sessionId = randomUUID();
    await t.mutation(api.bigMove!, { sessionId, cursor: 1 });
    const cart = await watch(engine, "features:bigCart", sessionId);
    const cursor = await watch(engine, "features:bigCursor", sessionId);

    const runs = engine.stats.queryRuns;
    await t.mutation(api.bigMove!, { sessionId, cursor: 2 });
    await settle(engine);
    expect(cursor.fired).toEqual([{ ok: true, value: 2 }]);
    expect(engine.stats.queryRuns - runs).toBe(2); // the cart query re-ran for nothing
    expect(cart.fired).toEqual([]); // ...and found the same result
    cart.sub.unsubscribe();
    cursor.sub.unsubscribe();
  });
});

/**
 * Anonymous users via sessions: one user per session under concurrency, moving a session's
 * data on sign-in, and ending a session (with a live query that sees it at once).
 */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, defineSchema, defineTable, v } from "../server/index.js";
import { walkinTest, type WalkinTest } from "../testing/index.js";
import { endSession, getOrCreateSessionUser, transferSession } from "./anonymousUsers.js";
import { mutationWithSession, queryWithSession, sessionTables } from "./builders.js";
import { vSessionId } from "./sessionId.js";
import { settle } from "../engine/fixtures/settle.js";

const schema = defineSchema({
  ...sessionTables,
  users: defineTable({ name: v.string() }),
  carts: defineTable({ sessionId: vSessionId, item: v.string() }).index("by_sessionId", ["sessionId"]),
});
const perSessionTables = { carts: "by_sessionId" };

const session = {
  user: mutationWithSession({
    args: {},
    handler: (ctx) => getOrCreateSessionUser(ctx, ctx.sessionId, (ctx) => ctx.db.insert("users", { name: "Anonymous" })),
  }),
  addToCart: mutationWithSession({
    args: { item: v.string() },
    handler: async (ctx, { item }) => {
      await ctx.db.insert("carts", { sessionId: ctx.sessionId, item });
    },
  }),
  view: queryWithSession({
    args: {},
    handler: async (ctx) => ({
      user: ctx.user?.name ?? null,
      cart: (await ctx.db.query("carts").withIndex("by_sessionId", (q) => q.eq("sessionId", ctx.sessionId)).collect()).map((c) => c.item),
    }),
  }),
  signIn: mutationWithSession({
    args: { newSessionId: vSessionId },
    handler: (ctx, { newSessionId }) => transferSession(ctx, { from: ctx.sessionId, to: newSessionId, tables: perSessionTables }),
  }),
  signOut: mutationWithSession({
    args: {},
    handler: (ctx) => endSession(ctx, ctx.sessionId, { tables: perSessionTables }),
  }),
};
const api = anyApi.session!;

let t: WalkinTest<any>;
afterEach(async () => {
  await t?.close();
});


const counts = () =>
  t.run(async (ctx) => ({ users: (await ctx.db.query("users").collect()).length, logins: (await ctx.db.query("logins").collect()).length }));

describe("getOrCreateSessionUser", () => {
  it("creates exactly one user and one login for 20 concurrent first calls", async () => {
    t = walkinTest(schema, { session });
    const sessionId = randomUUID();
    const engine = await t.engine();
    const retries = engine.stats.conflictRetries;
    const ids = await Promise.all(Array.from({ length: 20 }, () => t.mutation(api.user!, { sessionId })));
    expect(new Set(ids).size).toBe(1);
    expect(engine.stats.conflictRetries - retries).toBeGreaterThan(0); // the calls really raced
    expect(await counts()).toEqual({ users: 1, logins: 1 });
    expect(await t.mutation(api.user!, { sessionId })).toBe(ids[0]);
    await t.mutation(api.user!, { sessionId: randomUUID() });
    expect(await counts()).toEqual({ users: 2, logins: 2 });
  });

  it("replaces a user that was deleted", async () => {
    t = walkinTest(schema, { session });
    const sessionId = randomUUID();
    const first = await t.mutation(api.user!, { sessionId });
    await t.run((ctx) => ctx.db.delete(first));
    const second = await t.mutation(api.user!, { sessionId });
    expect(second).not.toBe(first);
    expect(await counts()).toEqual({ users: 1, logins: 1 });
  });
});

describe("transferSession", () => {
  it("moves the login and the listed per-session rows to the new session", async () => {
    t = walkinTest(schema, { session });
    const [before, after, other] = [randomUUID(), randomUUID(), randomUUID()];
    await t.mutation(api.user!, { sessionId: before });
    await t.mutation(api.addToCart!, { sessionId: before, item: "tea" });
    await t.mutation(api.addToCart!, { sessionId: other, item: "not mine" });
    expect(await t.mutation(api.signIn!, { sessionId: before, newSessionId: after })).toBe(2);
    expect(await t.query(api.view!, { sessionId: after })).toEqual({ user: "Anonymous", cart: ["tea"] });
    expect(await t.query(api.view!, { sessionId: before })).toEqual({ user: null, cart: [] });
    expect(await t.query(api.view!, { sessionId: other })).toEqual({ user: null, cart: ["not mine"] });
    // A retried transfer finds nothing left to move.
    expect(await t.mutation(api.signIn!, { sessionId: before, newSessionId: after })).toBe(0);
  });

  it("refuses to merge into a session that already has a login, changing nothing", async () => {
    t = walkinTest(schema, { session });
    const [a, b] = [randomUUID(), randomUUID()];
    await t.mutation(api.user!, { sessionId: a });
    await t.mutation(api.user!, { sessionId: b });
    await t.mutation(api.addToCart!, { sessionId: a, item: "tea" });
    await expect(t.mutation(api.signIn!, { sessionId: a, newSessionId: b })).rejects.toThrow(/already has a login/);
    expect(await t.query(api.view!, { sessionId: a })).toEqual({ user: "Anonymous", cart: ["tea"] });
  });
});

describe("endSession", () => {
  it("deletes what the session alone can reach, and its live query updates at once", async () => {
    t = walkinTest(schema, { session });
    const engine = await t.engine();
    const [mine, other] = [randomUUID(), randomUUID()];
    for (const sessionId of [mine, other]) {
      await t.mutation(api.user!, { sessionId });
      await t.mutation(api.addToCart!, { sessionId, item: "tea" });
    }
    const updates: unknown[] = [];
    const otherUpdates: unknown[] = [];
    const sub = await engine.subscriptions.subscribe("session:view", { sessionId: mine }, { fromClient: true }, (o) => updates.push(o));
    const otherSub = await engine.subscriptions.subscribe("session:view", { sessionId: other }, { fromClient: true }, (o) => otherUpdates.push(o));
    expect(sub.outcome).toEqual({ ok: true, value: { user: "Anonymous", cart: ["tea"] } });

    expect(await t.mutation(api.signOut!, { sessionId: mine })).toBe(2);
    await settle(engine);
    expect(updates).toEqual([{ ok: true, value: { user: null, cart: [] } }]);
    expect(otherUpdates).toEqual([]);
    // The user document stays (other sessions may log into it); only the session's login went.
    expect(await counts()).toEqual({ users: 2, logins: 1 });
    sub.unsubscribe();
    otherSub.unsubscribe();
  });
});

/**
 * The session invariants: a digest sent by a client is refused on every path
 * (including live queries shared with server code), `returns` validators accept what handlers
 * hold, transfers move each row once and survive racing writes, and builders cannot be widened.
 */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, customQuery, defineSchema, defineTable, query, v } from "../server/index.js";
import { walkinTest, type WalkinTest } from "../testing/index.js";
import { settle } from "../engine/fixtures/settle.js";
import {
  SessionIdArg,
  endSession,
  getOrCreateSessionUser,
  mutationWithSession,
  queryWithSession,
  sessionDigest,
  sessionTables,
  transferSession,
  vSessionId,
} from "./index.js";

const schema = defineSchema({
  ...sessionTables,
  users: defineTable({ name: v.string() }),
  carts: defineTable({ sessionId: vSessionId, item: v.string() }).index("by_sessionId", ["sessionId"]),
  drafts: defineTable({ sessionId: vSessionId, slot: v.number(), text: v.string() }).index("by_session_slot", ["sessionId", "slot"]),
});
const perSession = { carts: "by_sessionId", drafts: "by_session_slot" };

const cartOf = (ctx: { db: any }, sessionId: string) =>
  ctx.db.query("carts").withIndex("by_sessionId", (q: any) => q.eq("sessionId", sessionId)).collect();

const probe = {
  user: mutationWithSession({
    args: {},
    handler: (ctx) => getOrCreateSessionUser(ctx, ctx.sessionId, (ctx) => ctx.db.insert("users", { name: "Anonymous" })),
  }),
  add: mutationWithSession({
    args: { item: v.string() },
    handler: async (ctx, { item }) => ctx.db.insert("carts", { sessionId: ctx.sessionId, item }),
  }),
  draft: mutationWithSession({
    args: { slot: v.number(), text: v.string() },
    handler: async (ctx, { slot, text }) => ctx.db.insert("drafts", { sessionId: ctx.sessionId, slot, text }),
  }),
  // Renames every item of the session's cart (reads the rows, then patches them).
  rename: mutationWithSession({
    args: { suffix: v.string() },
    handler: async (ctx, { suffix }) => {
      for (const row of await cartOf(ctx, ctx.sessionId)) await ctx.db.patch(row._id, { item: row.item + suffix });
    },
  }),
  view: queryWithSession({
    args: {},
    handler: async (ctx) => ({ user: ctx.user?.name ?? null, cart: (await cartOf(ctx, ctx.sessionId)).map((c: { item: string }) => c.item) }),
  }),
  // A `returns` validator naming the session field, as the docs recommend ("make that explicit").
  whoAmI: queryWithSession({
    args: {},
    returns: v.object({ sessionId: vSessionId, name: v.union(v.string(), v.null()) }),
    handler: async (ctx) => ({ sessionId: ctx.sessionId, name: ctx.user?.name ?? null }),
  }),
  signIn: mutationWithSession({
    args: { newSessionId: vSessionId },
    handler: (ctx, { newSessionId }) => transferSession(ctx, { from: ctx.sessionId, to: newSessionId, tables: perSession }),
  }),
  // `logins` listed again by the app: still moved once.
  signInListingLogins: mutationWithSession({
    args: { newSessionId: vSessionId },
    handler: (ctx, { newSessionId }) =>
      transferSession(ctx, { from: ctx.sessionId, to: newSessionId, tables: { logins: "by_sessionId", ...perSession } }),
  }),
  signOut: mutationWithSession({ args: {}, handler: (ctx) => endSession(ctx, ctx.sessionId, { tables: perSession }) }),
};
const api = anyApi.probe!;

let t: WalkinTest<any>;
afterEach(async () => {
  await t?.close();
});

const client = { fromClient: true };

describe("a digest sent by a client is refused on every path", () => {
  it("refuses a client subscription whose digest args match a live query started by server code", async () => {
    t = walkinTest(schema, { probe });
    const engine = await t.engine();
    const raw = randomUUID();
    const digest = sessionDigest(raw);
    await t.mutation(api.user!, { sessionId: raw });
    await t.mutation(api.add!, { sessionId: raw, item: "secret" });

    // Alone, a client's digest is refused.
    const alone = await engine.subscriptions.subscribe("probe:view", { sessionId: digest }, client, () => {});
    expect(alone.outcome.ok).toBe(false);
    alone.unsubscribe();

    // Server code (the dashboard's live function runner, say: its caller is trusted) watches the
    // session with its digest, the only form of the ID it can know.
    const server = await engine.subscriptions.subscribe("probe:view", { sessionId: digest }, { kind: "dashboard" }, () => {});
    expect(server.outcome).toEqual({ ok: true, value: { user: "Anonymous", cart: ["secret"] } });

    // Meanwhile a client replays the leaked digest: it must still be refused.
    const updates: unknown[] = [];
    const replay = await engine.subscriptions.subscribe("probe:view", { sessionId: digest }, client, (o) => updates.push(o));
    expect(replay.outcome.ok).toBe(false);
    await t.mutation(api.add!, { sessionId: raw, item: "more" });
    await settle(engine);
    expect(updates.filter((u) => (u as { ok: boolean }).ok)).toEqual([]);
    replay.unsubscribe();
    server.unsubscribe();
  });

  it("still serves a client subscription with the raw ID next to a server one with the digest", async () => {
    t = walkinTest(schema, { probe });
    const engine = await t.engine();
    const raw = randomUUID();
    await t.mutation(api.add!, { sessionId: raw, item: "tea" });
    const server = await engine.subscriptions.subscribe("probe:view", { sessionId: sessionDigest(raw) }, {}, () => {});
    const mine = await engine.subscriptions.subscribe("probe:view", { sessionId: raw }, client, () => {});
    expect(mine.outcome).toEqual({ ok: true, value: { user: null, cart: ["tea"] } });
    mine.unsubscribe();
    server.unsubscribe();
  });

  it("refuses a digest as a record key or array element from a client", async () => {
    const keyed = {
      byKey: query({ args: { m: v.record(vSessionId, v.number()) }, handler: async (_ctx, { m }) => Object.keys(m) }),
      many: query({ args: { ids: v.array(vSessionId) }, handler: async (_ctx, { ids }) => ids }),
    };
    t = walkinTest(schema, { keyed });
    const engine = await t.engine();
    const raw = randomUUID();
    expect(await engine.runQuery("keyed:byKey", { m: { [raw]: 1 } }, client)).toEqual([sessionDigest(raw)]);
    await expect(engine.runQuery("keyed:byKey", { m: { [sessionDigest(raw)]: 1 } }, client)).rejects.toThrow(/session digest/);
    expect(await engine.runQuery("keyed:many", { ids: [raw] }, client)).toEqual([sessionDigest(raw)]);
    await expect(engine.runQuery("keyed:many", { ids: [raw, sessionDigest(raw)] }, client)).rejects.toThrow(/session digest/);
  });
});

describe("what handlers hold passes their own validators", () => {
  it("accepts the digest a handler returns under a `returns` validator using vSessionId", async () => {
    t = walkinTest(schema, { probe });
    const engine = await t.engine();
    const raw = randomUUID();
    expect(await engine.runQuery("probe:whoAmI", { sessionId: raw }, client)).toEqual({ sessionId: sessionDigest(raw), name: null });
  });

  it("refuses a function that redeclares sessionId wider than vSessionId", () => {
    expect(() => queryWithSession({ args: { sessionId: v.string() }, handler: async () => null } as never)).toThrow(/wider/);
    expect(() => queryWithSession({ args: { sessionId: v.optional(vSessionId) }, handler: async () => null } as never)).toThrow(/wider/);
    expect(() => queryWithSession({ args: { sessionId: v.union(vSessionId, v.string()) }, handler: async () => null } as never)).toThrow(/wider/);
    const custom = customQuery(query, { args: SessionIdArg, input: async (_ctx, { sessionId }) => ({ ctx: { sessionId }, args: {} }) });
    expect(() => custom({ args: { sessionId: v.any() }, handler: async () => null } as never)).toThrow(/wider/);
  });

  it("refuses extra args and never lets a client's extra field reach ctx", async () => {
    t = walkinTest(schema, { probe });
    const engine = await t.engine();
    const raw = randomUUID();
    await expect(engine.runQuery("probe:view", { sessionId: raw, user: { name: "root" } }, client)).rejects.toThrow(/unexpected field/);
  });
});

describe("transferSession", () => {
  const rowsBySession = () =>
    t.run(async (ctx) => {
      const rows = [...(await ctx.db.query("logins").collect()), ...(await ctx.db.query("carts").collect()), ...(await ctx.db.query("drafts").collect())];
      const out: Record<string, number> = {};
      for (const row of rows) out[row.sessionId] = (out[row.sessionId] ?? 0) + 1;
      return out;
    });

  it("moves every row of every listed table exactly once (also with a compound index and logins listed twice)", async () => {
    t = walkinTest(schema, { probe });
    const [from, to, other] = [randomUUID(), randomUUID(), randomUUID()];
    for (const s of [from, other]) {
      await t.mutation(api.user!, { sessionId: s });
      for (let i = 0; i < 3; i++) await t.mutation(api.add!, { sessionId: s, item: `i${i}` });
      for (let i = 0; i < 2; i++) await t.mutation(api.draft!, { sessionId: s, slot: i, text: "d" });
    }
    const moved = await t.mutation(api.signInListingLogins!, { sessionId: from, newSessionId: to });
    expect(await rowsBySession()).toEqual({ [sessionDigest(to)]: 6, [sessionDigest(other)]: 6 });
    expect(moved).toBe(1 + 3 + 2); // "how many documents moved"
    expect(await t.mutation(api.signInListingLogins!, { sessionId: from, newSessionId: to })).toBe(0);
  });

  it("keeps a concurrent write to a row it moves (no lost update either way)", async () => {
    t = walkinTest(schema, { probe });
    const engine = await t.engine();
    const [from, to] = [randomUUID(), randomUUID()];
    await t.mutation(api.user!, { sessionId: from });
    for (let i = 0; i < 5; i++) await t.mutation(api.add!, { sessionId: from, item: `i${i}` });
    const retries = engine.stats.conflictRetries;
    const renames = Array.from({ length: 6 }, () => engine.runMutation("probe:rename", { sessionId: from, suffix: "!" }, client));
    const transfer = engine.runMutation("probe:signIn", { sessionId: from, newSessionId: to }, client);
    await Promise.all([...renames, transfer]);
    expect(engine.stats.conflictRetries - retries).toBeGreaterThan(0); // they really raced
    const moved = (await transfer).value as number;
    const after = (await engine.runQuery("probe:view", { sessionId: to }, client)) as { cart: string[] };
    const before = (await engine.runQuery("probe:view", { sessionId: from }, client)) as { cart: string[] };
    // Every row is in exactly one session; renames that ran before the transfer carried over,
    // those after it found nothing; either way each row carries the same number of "!".
    expect(after.cart.length + before.cart.length).toBe(5);
    expect(moved).toBe(1 + after.cart.length);
    expect(after.cart).toHaveLength(5);
    expect(new Set(after.cart.map((item) => item.length - 2)).size).toBe(1);
  });

  it("refuses to merge a logged-in session into another logged-in one, moving nothing", async () => {
    t = walkinTest(schema, { probe });
    const [a, b] = [randomUUID(), randomUUID()];
    await t.mutation(api.user!, { sessionId: a });
    await t.mutation(api.user!, { sessionId: b });
    await t.mutation(api.add!, { sessionId: a, item: "a's" });
    await t.mutation(api.add!, { sessionId: b, item: "b's" });
    await expect(t.mutation(api.signIn!, { sessionId: a, newSessionId: b })).rejects.toThrow(/already has a login/);
    expect(await rowsBySession()).toEqual({ [sessionDigest(a)]: 2, [sessionDigest(b)]: 2 });
  });
});

describe("endSession", () => {
  it("deletes exactly that session's rows, compound indexes included", async () => {
    t = walkinTest(schema, { probe });
    const [mine, other] = [randomUUID(), randomUUID()];
    for (const s of [mine, other]) {
      await t.mutation(api.user!, { sessionId: s });
      await t.mutation(api.add!, { sessionId: s, item: "x" });
      await t.mutation(api.draft!, { sessionId: s, slot: 1, text: "d" });
      await t.mutation(api.draft!, { sessionId: s, slot: 2, text: "d" });
    }
    expect(await t.mutation(api.signOut!, { sessionId: mine })).toBe(4);
    const left = await t.run(async (ctx) =>
      [...(await ctx.db.query("logins").collect()), ...(await ctx.db.query("carts").collect()), ...(await ctx.db.query("drafts").collect())].map((r) => r.sessionId),
    );
    expect(left).toEqual(Array(4).fill(sessionDigest(other)));
    expect(await t.mutation(api.signOut!, { sessionId: mine })).toBe(0);
  });
});

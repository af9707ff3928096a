/**
 * The session builders on the real engine: ctx.sessionId / ctx.user, runSessionFunctions from
 * actions, and bad input (malformed, missing and replayed IDs; raw IDs never stored).
 */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, defineSchema, defineTable, mutation, query, v } from "../server/index.js";
import { walkinTest, type WalkinTest } from "../testing/index.js";
import { actionWithSession, mutationWithSession, queryWithSession, sessionTables } from "./builders.js";
import { sessionDigest, vSessionId, SessionIdArg } from "./sessionId.js";

const schema = defineSchema({
  ...sessionTables,
  users: defineTable({ name: v.string() }),
  notes: defineTable({ sessionId: vSessionId, text: v.string() }).index("by_sessionId", ["sessionId"]),
});

/** Every sessionId a handler saw (reset per test). */
let seen: string[] = [];

const notes = {
  me: queryWithSession({
    args: {},
    handler: async (ctx) => {
      seen.push(ctx.sessionId);
      return { sessionId: ctx.sessionId, name: ctx.user?.name ?? null };
    },
  }),
  // No `args` at all: the builder still validates and digests the session ID.
  bare: queryWithSession({ handler: async (ctx) => (seen.push(ctx.sessionId), ctx.sessionId) }),
  signUp: mutationWithSession({
    args: { name: v.string() },
    handler: async (ctx, args) => {
      seen.push(ctx.sessionId);
      expect(args).toEqual({ name: args.name });
      const userId = await ctx.db.insert("users", { name: args.name });
      await ctx.db.insert("logins", { sessionId: ctx.sessionId, userId });
    },
  }),
  add: mutationWithSession({
    args: { text: v.string() },
    handler: async (ctx, { text }) => {
      seen.push(ctx.sessionId);
      await ctx.db.insert("notes", { sessionId: ctx.sessionId, text });
    },
  }),
  mine: queryWithSession({
    args: {},
    handler: (ctx) => ctx.db.query("notes").withIndex("by_sessionId", (q) => q.eq("sessionId", ctx.sessionId)).collect(),
  }),
  // Schedules a session mutation for later, as the same session (the scheduler is trusted).
  addLater: mutationWithSession({
    args: { text: v.string() },
    handler: async (ctx, { text }) => {
      await ctx.scheduler.runAfter(0, anyApi.notes!.add!, { sessionId: ctx.sessionId, text });
    },
  }),
  // A plain mutation writing whatever it is given into a vSessionId field.
  storeRaw: mutation({ args: { value: v.string() }, handler: (ctx, { value }) => ctx.db.insert("notes", { sessionId: value, text: "raw" }) }),
  // The article's style: SessionIdArg in a plain query's args.
  plain: query({ args: { ...SessionIdArg, n: v.number() }, handler: async (_ctx, { sessionId, n }) => (seen.push(sessionId), n) }),
  summary: actionWithSession({
    args: { text: v.string() },
    handler: async (ctx, { text }) => {
      seen.push(ctx.sessionId);
      await ctx.runSessionMutation(anyApi.notes!.add!, { text });
      const me = await ctx.runSessionQuery(anyApi.notes!.me!);
      const mine = await ctx.runSessionQuery(anyApi.notes!.mine!, {});
      return { me, count: mine.length };
    },
  }),
};

let t: WalkinTest<any>;
afterEach(async () => {
  seen = [];
  await t?.close();
});

/** Calls as a browser would: arguments are untrusted. */
async function fromClient(kind: "query" | "mutation" | "action", path: string, args: unknown) {
  const engine = await t.engine();
  const caller = { fromClient: true };
  if (kind === "query") return engine.runQuery(path, args, caller);
  if (kind === "mutation") return (await engine.runMutation(path, args, caller)).value;
  return engine.runAction(path, args, caller);
}

describe("session builders", () => {
  it("put the digest and the session's user on ctx", async () => {
    t = walkinTest(schema, { notes });
    const raw = randomUUID();
    expect(await fromClient("query", "notes:me", { sessionId: raw })).toEqual({ sessionId: sessionDigest(raw), name: null });
    await fromClient("mutation", "notes:signUp", { sessionId: raw, name: "Ada" });
    expect(await fromClient("query", "notes:me", { sessionId: raw })).toEqual({ sessionId: sessionDigest(raw), name: "Ada" });
    expect(await fromClient("query", "notes:me", { sessionId: randomUUID() })).toMatchObject({ name: null });
    expect(seen.every((id) => id === sessionDigest(raw) || id.startsWith("sd1_"))).toBe(true);
  });

  it("does not throw when a session has two logins", async () => {
    t = walkinTest(schema, { notes });
    const raw = randomUUID();
    await t.run(async (ctx) => {
      for (const name of ["one", "two"]) {
        const userId = await ctx.db.insert("users", { name });
        await ctx.db.insert("logins", { sessionId: sessionDigest(raw), userId });
      }
    });
    expect(await fromClient("query", "notes:me", { sessionId: raw })).toMatchObject({ name: "one" });
  });

  it("lets actions call session functions as the same session", async () => {
    t = walkinTest(schema, { notes });
    const raw = randomUUID();
    await fromClient("mutation", "notes:signUp", { sessionId: raw, name: "Grace" });
    const result = await fromClient("action", "notes:summary", { sessionId: raw, text: "hello" });
    expect(result).toEqual({ me: { sessionId: sessionDigest(raw), name: "Grace" }, count: 1 });
  });
});

describe("bad input", () => {
  it("refuses malformed session IDs with a clear error that does not echo them", async () => {
    t = walkinTest(schema, { notes });
    for (const sessionId of ["nope", "", "123e4567-e89b-12d3-a456-426614174000", 42, null]) {
      const call = fromClient("query", "notes:me", { sessionId });
      await expect(call).rejects.toThrow(/args\.sessionId/);
      if (typeof sessionId === "string" && sessionId) await expect(call).rejects.not.toThrow(sessionId);
    }
    await expect(fromClient("query", "notes:me", { sessionId: "secret-".repeat(50) })).rejects.toThrow(/received a string of 350 characters/);
    expect(seen).toEqual([]);
  });

  it("refuses a missing session ID", async () => {
    t = walkinTest(schema, { notes });
    await expect(fromClient("query", "notes:me", {})).rejects.toThrow(/sessionId/);
    await expect(fromClient("query", "notes:bare", undefined)).rejects.toThrow(/sessionId/);
    await expect(fromClient("mutation", "notes:add", { text: "x" })).rejects.toThrow(/sessionId/);
    expect(seen).toEqual([]);
  });

  it("refuses a digest sent by a client (a leaked digest cannot be replayed)", async () => {
    t = walkinTest(schema, { notes });
    const raw = randomUUID();
    await fromClient("mutation", "notes:signUp", { sessionId: raw, name: "Ada" });
    const leaked = ((await fromClient("query", "notes:me", { sessionId: raw })) as { sessionId: string }).sessionId;
    for (const path of ["notes:me", "notes:bare", "notes:plain"]) {
      await expect(fromClient("query", path, { sessionId: leaked, n: 1 })).rejects.toThrow(
        "this is a session digest (what functions see), not a session ID; send the ID the client generated",
      );
    }
    await expect(fromClient("action", "notes:summary", { sessionId: leaked, text: "x" })).rejects.toThrow(/session digest/);
  });

  it("accepts a digest passed by server code", async () => {
    t = walkinTest(schema, { notes });
    const raw = randomUUID();
    await t.mutation(anyApi.notes!.signUp!, { sessionId: raw, name: "Ada" });
    // walkinTest calls are trusted server calls, like ctx.runQuery or the scheduler.
    expect(await t.query(anyApi.notes!.me!, { sessionId: sessionDigest(raw) })).toEqual({ sessionId: sessionDigest(raw), name: "Ada" });
    expect(await t.query(anyApi.notes!.bare!, { sessionId: sessionDigest(raw) })).toBe(sessionDigest(raw));
    expect(await t.query(anyApi.notes!.plain!, { sessionId: sessionDigest(raw), n: 7 })).toBe(7);
  });

  it("lets the scheduler run session functions with the digest", async () => {
    t = walkinTest(schema, { notes });
    const raw = randomUUID();
    await fromClient("mutation", "notes:addLater", { sessionId: raw, text: "later" });
    await t.finishScheduledFunctions();
    expect(((await fromClient("query", "notes:mine", { sessionId: raw })) as { text: string }[]).map((n) => n.text)).toEqual(["later"]);
  });

  it("never lets a raw ID reach a handler or a table", async () => {
    t = walkinTest(schema, { notes });
    const raws = [randomUUID(), randomUUID()];
    for (const raw of raws) {
      await fromClient("mutation", "notes:signUp", { sessionId: raw, name: "n" });
      await fromClient("mutation", "notes:add", { sessionId: raw, text: "a" });
      await fromClient("query", "notes:bare", { sessionId: raw });
      await fromClient("query", "notes:plain", { sessionId: raw, n: 1 });
      await fromClient("action", "notes:summary", { sessionId: raw, text: "b" });
      // Even server code that writes a raw ID into a vSessionId field stores its digest.
      await t.mutation(anyApi.notes!.storeRaw!, { value: raw });
    }
    expect(seen.length).toBeGreaterThan(8);
    for (const id of seen) expect(id).toMatch(/^sd1_/);
    const stored = await t.run(async (ctx) => [...(await ctx.db.query("logins").collect()), ...(await ctx.db.query("notes").collect())]);
    expect(stored).toHaveLength(2 * 4); // per session: a login and three notes
    for (const row of stored) expect(row.sessionId).toMatch(/^sd1_[A-Za-z0-9_-]{43}$/);
    const dump = JSON.stringify(stored);
    for (const raw of raws) expect(dump).not.toContain(raw);
  });
});

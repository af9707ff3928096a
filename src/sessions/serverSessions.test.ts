/**
 * Session IDs in server code: a digest that server code holds (read from a stored document,
 * from ctx or from its own args) is accepted wherever a client's raw ID would be, through
 * ctx.runQuery / runMutation / runAction, the scheduler and internal functions, also by
 * functions declared with `args: v.any()` and by builders built on session builders; a raw ID
 * never reaches a handler or a stored job; a forgotten session ID gets an error saying how to
 * send one.
 */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { action, anyApi, customMutation, customQuery, customCtx, defineSchema, defineTable, internalMutation, mutation, query, v } from "../server/index.js";
import { walkinTest, type WalkinTest } from "../testing/index.js";
import { SessionIdArg, getSessionUser, queryWithSession, sessionDigest, sessionTables, vSessionId } from "./index.js";

const schema = defineSchema({
  ...sessionTables,
  users: defineTable({ name: v.string() }),
  // What the session did, kept by its digest (as the articles' tables keep a sessionId).
  visits: defineTable({ sessionId: vSessionId, page: v.string() }).index("by_sessionId", ["sessionId"]),
});

// An app's own builders, as the articles write them: ctx.user found from the session.
const queryWithUser = customQuery(query, {
  args: SessionIdArg,
  input: async (ctx, { sessionId }) => ({ ctx: { ...ctx, sessionId, user: await getSessionUser(ctx.db, sessionId) }, args: {} }),
});
const mutationWithUser = customMutation(mutation, {
  args: SessionIdArg,
  input: async (ctx, { sessionId }) => ({ ctx: { ...ctx, sessionId, user: await getSessionUser(ctx.db, sessionId) }, args: {} }),
});
// A builder on top of a session builder, adding only ctx (customCtx).
const greetingQuery = customQuery(
  queryWithSession,
  customCtx(async (ctx: any) => ({ greeting: `hello ${ctx.user?.name ?? "stranger"}` })),
);

type Ctx = { sessionId: string; user: { name: string } | null; db: any; greeting?: string };
const untyped = (builder: unknown) => builder as (definition: unknown) => any;

const app = {
  signUp: mutationWithUser({
    args: { name: v.string() },
    handler: async (ctx, { name }) => {
      const userId = await ctx.db.insert("users", { name });
      await ctx.db.insert("logins", { sessionId: ctx.sessionId, userId });
    },
  }),
  // Session functions that take any other args (`args: v.any()`).
  whoAny: untyped(queryWithUser)({ args: v.any(), handler: async (ctx: Ctx, args: unknown) => ({ sessionId: ctx.sessionId, name: ctx.user?.name ?? null, args }) }),
  visitAny: untyped(mutationWithUser)({
    args: v.any(),
    handler: async (ctx: Ctx, args: { page: string }) => {
      await ctx.db.insert("visits", { sessionId: ctx.sessionId, page: args.page });
      return ctx.user?.name ?? null;
    },
  }),
  readyAny: untyped(queryWithSession)({ args: v.any(), handler: async (ctx: Ctx) => ctx.user?.name ?? null }),
  greetAny: untyped(greetingQuery)({ args: v.any(), handler: async (ctx: Ctx) => ctx.greeting }),
  // Server code holding only digests: the session's first stored visit, and its own args.
  firstVisitSession: query({ args: {}, handler: async (ctx) => (await ctx.db.query("visits").first())!.sessionId }),
  replay: action({
    args: {},
    handler: async (ctx) => {
      const sessionId = await ctx.runQuery(anyApi.app!.firstVisitSession!, {});
      return {
        who: await ctx.runQuery(anyApi.app!.whoAny!, { sessionId, extra: 1 }),
        visited: await ctx.runMutation(anyApi.app!.visitAny!, { sessionId, page: "/from-action" }),
        ready: await ctx.runQuery(anyApi.app!.readyAny!, { sessionId }),
        greeting: await ctx.runQuery(anyApi.app!.greetAny!, { sessionId }),
        nested: await ctx.runAction(anyApi.app!.relay!, { sessionId }),
      };
    },
  }),
  // A plain action taking the session (SessionIdArg): its args hold the digest, passed on.
  relay: action({ args: { ...SessionIdArg }, handler: async (ctx, { sessionId }) => ctx.runQuery(anyApi.app!.whoAny!, { sessionId }) }),
  // An internal mutation scheduling a session function for the session it read from a table.
  scheduleFromStored: internalMutation({
    args: {},
    handler: async (ctx) => {
      const stored = (await ctx.db.query("visits").first())!.sessionId;
      await ctx.scheduler.runAfter(0, anyApi.app!.visitAny!, { sessionId: stored, page: "/scheduled" });
    },
  }),
  // Server code that holds a raw ID (a server render reading the session cookie, say).
  scheduleWithRaw: internalMutation({
    args: { raw: v.string() },
    handler: async (ctx, { raw }) => {
      await ctx.scheduler.runAfter(0, anyApi.app!.visitAny!, { sessionId: raw, page: "/raw" });
    },
  }),
  plain: query({ args: { ...SessionIdArg }, handler: async (_ctx, { sessionId }) => sessionId }),
};

let t: WalkinTest<any>;
afterEach(async () => {
  await t?.close();
});

const client = { fromClient: true };
const scheduledJobs = (): Promise<{ args: unknown; state: unknown }[]> => t.run((ctx: any) => ctx.db.system.query("_scheduled_functions").collect());
const visitsOf = (raw: string) =>
  t.run(async (ctx) => (await ctx.db.query("visits").collect()).filter((row) => row.sessionId === sessionDigest(raw)).map((row) => row.page));

describe("a digest passed by server code is accepted where the raw ID would be", () => {
  it("by v.any() session functions and builders on session builders, through ctx.runQuery / runMutation / runAction", async () => {
    t = walkinTest(schema, { app });
    const engine = await t.engine();
    const raw = randomUUID();
    await engine.runMutation("app:signUp", { sessionId: raw, name: "Ada" }, client);
    expect((await engine.runMutation("app:visitAny", { sessionId: raw, page: "/" }, client)).value).toBe("Ada");

    const result = await engine.runAction("app:replay", {}, client);
    expect(result).toEqual({
      who: { sessionId: sessionDigest(raw), name: "Ada", args: { extra: 1 } },
      visited: "Ada",
      ready: "Ada",
      greeting: "hello Ada",
      nested: { sessionId: sessionDigest(raw), name: "Ada", args: {} },
    });
    expect(await visitsOf(raw)).toEqual(["/", "/from-action"]);

    // The same digest from a client is still refused (a leaked digest cannot be replayed).
    for (const path of ["app:whoAny", "app:readyAny", "app:greetAny"]) {
      await expect(engine.runQuery(path, { sessionId: sessionDigest(raw) }, client)).rejects.toThrow(/session digest/);
    }
    await expect(engine.runMutation("app:visitAny", { sessionId: sessionDigest(raw), page: "/" }, client)).rejects.toThrow(/session digest/);
    expect(await engine.runQuery("app:greetAny", { sessionId: randomUUID() }, client)).toBe("hello stranger");
  });

  it("runs a v.any() session mutation scheduled with the digest read from a stored document", async () => {
    t = walkinTest(schema, { app });
    const engine = await t.engine();
    const raw = randomUUID();
    await engine.runMutation("app:signUp", { sessionId: raw, name: "Grace" }, client);
    await engine.runMutation("app:visitAny", { sessionId: raw, page: "/" }, client);
    await t.mutation(anyApi.app!.scheduleFromStored!, {});
    await t.finishScheduledFunctions();
    const jobs = await scheduledJobs();
    expect(jobs.map((job) => job.state)).toEqual([{ kind: "success" }]);
    expect(await visitsOf(raw)).toEqual(["/", "/scheduled"]);
  });

  it("never stores a raw ID that server code schedules a v.any() session function with", async () => {
    t = walkinTest(schema, { app });
    const raw = randomUUID();
    await t.mutation(anyApi.app!.scheduleWithRaw!, { raw });
    const jobs = await scheduledJobs();
    expect(JSON.stringify(jobs)).not.toContain(raw);
    await t.finishScheduledFunctions();
    expect(await visitsOf(raw)).toEqual(["/raw"]);
  });
});

describe("a client that forgets the session ID", () => {
  it("is told what is missing and how to send it, whichever way the function takes the session", async () => {
    t = walkinTest(schema, { app });
    const engine = await t.engine();
    const calls = [
      engine.runQuery("app:whoAny", { extra: 1 }, client),
      engine.runQuery("app:readyAny", {}, client),
      engine.runQuery("app:plain", {}, client),
      engine.runMutation("app:signUp", { name: "Ada" }, client),
      engine.runQuery("app:plain", { sessionId: null }, client),
    ];
    for (const call of calls) {
      await expect(call).rejects.toThrow(/^args\.sessionId: (missing required field \(expected a session ID\)|expected a session ID, received null)\. /);
      await expect(call).rejects.toThrow(/useSessionQuery \/ useSessionMutation \/ useSessionAction/);
    }
  });
});

/**
 * The reference articles' server samples, run on Walk-in with only their imports changed:
 * article 000 ("Anonymous Users via Sessions": `getUser`, its `mutationWithSession`,
 * `name.set`, `messages.send`) and article 004 ("Session Tracking Via Parameter Injection": a
 * query spreading `SessionIdArg`, `actionWithSession` with `runSessionFunctions`). The code
 * between the "sample" markers is the articles' own; the rest (schema, list queries, calls)
 * is ours.
 */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { action, anyApi, customAction, customMutation, defineSchema, defineTable, mutation, query, v, type QueryCtx } from "../server/index.js";
import { walkinTest, type WalkinTest } from "../testing/index.js";
import { SessionIdArg, runSessionFunctions, vSessionId, type SessionId } from "./index.js";

// The demo app's schema: users found by session (article 000 keeps sessionId on users).
const schema = defineSchema({
  users: defineTable({ name: v.string(), sessionId: vSessionId }).index("by_sessionId", ["sessionId"]),
  messages: defineTable({ body: v.string(), author: v.id("users") }),
});

// ---- sample: article 000, convex/lib/sessions.ts ----
async function getUser(ctx: QueryCtx, sessionId: SessionId) {
  const user = await ctx.db
    .query("users")
    .withIndex("by_sessionId", (q) => q.eq("sessionId", sessionId))
    .unique();
  return user;
}

export const mutationWithSession = customMutation(mutation, {
  args: SessionIdArg,
  input: async (ctx, { sessionId }) => {
    const user = await getUser(ctx, sessionId);
    return { ctx: { ...ctx, user, sessionId }, args: {} };
  },
});
// ---- end sample ----

// ---- sample: article 000, convex/name.ts ----
export const set = mutationWithSession({
  args: { name: v.string() },
  handler: async (ctx, { name }) => {
    if (ctx.user) {
      await ctx.db.patch(ctx.user._id, { name });
    } else {
      await ctx.db.insert("users", { name, sessionId: ctx.sessionId });
    }
  },
});
// ---- end sample ----

// ---- sample: article 000, convex/messages.ts ----
export const send = mutationWithSession({
  args: { body: v.string() },
  handler: async (ctx, { body }) => {
    let userId = ctx.user?._id;
    if (!userId) {
      const { sessionId } = ctx;
      userId = await ctx.db.insert("users", { name: "Anonymous", sessionId });
    }
    await ctx.db.insert("messages", { body, author: userId });
  },
});
// ---- end sample ----

// ---- sample: article 004, server side ----
const mySessionQuery = query({
  args: {
    ...SessionIdArg, // equivalent to sessionId: vSessionId,
    arg1: v.number(),
  },
  handler: async (ctx, args) => {
    //...
    const user = await getUser(ctx, args.sessionId);
    return { name: user?.name ?? null, arg1: args.arg1 };
  },
});

export const actionWithSession = customAction(action, {
  args: SessionIdArg,
  input: async (ctx, { sessionId }) => {
    const { runSessionQuery, runSessionMutation, runSessionAction } = runSessionFunctions(ctx, sessionId);

    return {
      ctx: {
        ...ctx,
        runSessionQuery,
        runSessionMutation,
        runSessionAction,
      },
      args: { sessionId }, // Note: you can also pass it through as an arg.
    };
  },
});
// ---- end sample ----

// Ours: what the demo's UI reads, and an action using the article's builder.
const list = query({
  args: {},
  handler: async (ctx) =>
    Promise.all(
      (await ctx.db.query("messages").collect()).map(async (m) => ({ body: m.body, author: (await ctx.db.get(m.author))?.name ?? null })),
    ),
});
const renameAndRead = actionWithSession({
  args: { name: v.string() },
  handler: async (ctx, { name, sessionId }) => {
    await ctx.runSessionMutation(anyApi.name!.set!, { name });
    const me = await ctx.runSessionQuery(anyApi.demo!.mySessionQuery!, { arg1: 4 });
    return { me, passedThrough: sessionId };
  },
});

const modules = { name: { set }, messages: { send, list }, demo: { mySessionQuery, renameAndRead } };

let t: WalkinTest<any>;
afterEach(async () => {
  await t?.close();
});

/** Calls as a browser would (untrusted arguments). */
async function client(kind: "query" | "mutation" | "action", path: string, args: unknown) {
  const engine = await t.engine();
  if (kind === "query") return engine.runQuery(path, args, { fromClient: true });
  if (kind === "mutation") return (await engine.runMutation(path, args, { fromClient: true })).value;
  return engine.runAction(path, args, { fromClient: true });
}

describe("article 000: anonymous users via sessions", () => {
  it("keeps each session's name, and renames show on old messages", async () => {
    t = walkinTest(schema, modules);
    const [ada, bob] = [randomUUID(), randomUUID()];
    await client("mutation", "name:set", { sessionId: ada, name: "Ada" });
    await client("mutation", "messages:send", { sessionId: ada, body: "hi" });
    await client("mutation", "messages:send", { sessionId: bob, body: "hello" }); // creates "Anonymous"
    expect(await client("query", "messages:list", {})).toEqual([
      { body: "hi", author: "Ada" },
      { body: "hello", author: "Anonymous" },
    ]);

    await client("mutation", "name:set", { sessionId: bob, name: "Bob" }); // patches, no second user
    await client("mutation", "name:set", { sessionId: ada, name: "Ada L." });
    await client("mutation", "messages:send", { sessionId: ada, body: "again" });
    expect(await client("query", "messages:list", {})).toEqual([
      { body: "hi", author: "Ada L." },
      { body: "hello", author: "Bob" },
      { body: "again", author: "Ada L." },
    ]);
    const users = await t.run((ctx) => ctx.db.query("users").collect());
    expect(users).toHaveLength(2);
    for (const user of users) expect(user.sessionId).toMatch(/^sd1_/); // the digest, not the ID
  });
});

describe("article 004: session tracking via parameter injection", () => {
  it("runs a SessionIdArg query and an actionWithSession using runSessionFunctions", async () => {
    t = walkinTest(schema, modules);
    const sessionId = randomUUID();
    expect(await client("query", "demo:mySessionQuery", { sessionId, arg1: 1 })).toEqual({ name: null, arg1: 1 });
    const result = (await client("action", "demo:renameAndRead", { sessionId, name: "Grace" })) as { me: unknown; passedThrough: string };
    expect(result.me).toEqual({ name: "Grace", arg1: 4 });
    expect(result.passedThrough).toMatch(/^sd1_/);
    expect(await client("query", "demo:mySessionQuery", { sessionId, arg1: 2 })).toEqual({ name: "Grace", arg1: 2 });
  });
});

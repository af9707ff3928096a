import { afterEach, describe, expect, it } from "vitest";
import { walkinTest } from "../testing/index.js";
import { isWalkinError, v, type Id } from "../values/index.js";
import { anyApi, type ApiFromModules } from "./api.js";
import { customAction, customCtx, customMutation, customQuery } from "./customFunctions.js";
import type { DatabaseReader } from "./database.js";
import { action as actionGeneric, mutation as mutationGeneric, query as queryGeneric } from "./functions.js";
import type { ActionBuilder, MutationBuilder, QueryBuilder } from "./registration.js";
import { defineSchema, defineTable, type DataModelFromSchemaDefinition } from "./schema.js";

const schema = defineSchema({
  users: defineTable({ name: v.string(), role: v.union(v.literal("admin"), v.literal("user")) }),
  logins: defineTable({ sessionId: v.string(), userId: v.id("users") }).index("by_sessionId", ["sessionId"]),
  notes: defineTable({ text: v.string(), by: v.optional(v.id("users")) }),
  events: defineTable({ kind: v.string(), detail: v.optional(v.any()) }),
});
type DM = DataModelFromSchemaDefinition<typeof schema>;
const query = queryGeneric as QueryBuilder<DM, "public">;
const mutation = mutationGeneric as MutationBuilder<DM, "public">;
const action = actionGeneric as ActionBuilder<DM, "public">;

async function userOf(db: DatabaseReader<DM>, sessionId: string) {
  const login = await db.query("logins").withIndex("by_sessionId", (q) => q.eq("sessionId", sessionId)).unique();
  return login ? db.get(login.userId) : null;
}

const session = {
  args: { sessionId: v.string() },
  input: async (ctx: { db: DatabaseReader<DM> }, { sessionId }: { sessionId: string }) => ({
    ctx: { user: await userOf(ctx.db, sessionId), sessionId },
    args: {},
  }),
};
const queryWithSession = customQuery(query, session);
const mutationWithSession = customMutation(mutation, session);
const actionWithSession = customAction(action, {
  args: { sessionId: v.string() },
  input: async (_ctx, { sessionId }) => ({ ctx: { sessionId }, args: {} }),
});
const mutationKeepingSession = customMutation(mutation, {
  args: { sessionId: v.string() },
  input: async (_ctx, { sessionId }) => ({ ctx: {}, args: { sessionId } }),
});

/** What onSuccess and handlers saw, in order (reset per test). */
let trace: unknown[] = [];

const mutationWithAudit = customMutation(mutation, {
  args: { sessionId: v.string() },
  input: async (_ctx, { sessionId }) => ({
    ctx: {},
    args: {},
    onSuccess: async ({ ctx, args, result }) => {
      trace.push({ onSuccess: { args, result } });
      await ctx.db.insert("events", { kind: "audit", detail: { sessionId, result: result as string } });
    },
  }),
});

const mutationWithRole = customMutation(mutation, {
  args: { sessionId: v.string() },
  input: async (ctx, { sessionId }, extra: { role: "admin" | "user" }) => {
    const user = await userOf(ctx.db, sessionId);
    if (!user || (extra.role === "admin" && user.role !== "admin")) throw new Error(`needs role ${extra.role}`);
    return { ctx: { user }, args: {} };
  },
});

const failingInput = customMutation(mutation, {
  args: {},
  input: async (ctx) => {
    await ctx.db.insert("events", { kind: "from input" });
    throw new Error("input refused");
  },
});

const withStamp = customQuery(query, customCtx(async () => ({ stamp: "walkin" })));
const withFakeAuth = customQuery(query, {
  args: {},
  input: async () => ({
    ctx: { auth: { getUserIdentity: async () => ({ subject: "fake", issuer: "x", tokenIdentifier: "x|fake" }) } },
    args: {},
  }),
});

const users = {
  signUp: mutation({
    args: { name: v.string(), sessionId: v.string(), admin: v.optional(v.boolean()) },
    handler: async (ctx, { name, sessionId, admin }) => {
      const userId = await ctx.db.insert("users", { name, role: admin ? "admin" : "user" });
      await ctx.db.insert("logins", { sessionId, userId });
      return userId;
    },
  }),
  me: queryWithSession({
    args: {},
    handler: async (ctx, args) => ({ name: ctx.user?.name ?? null, sessionId: ctx.sessionId, argKeys: Object.keys(args) }),
  }),
  echo: queryWithSession({
    args: { word: v.string(), times: v.optional(v.number()) },
    handler: async (_ctx, args) => args,
  }),
  echoObject: queryWithSession({
    args: v.object({ word: v.string() }),
    handler: async (_ctx, args) => args,
  }),
  rename: mutationWithRole({
    role: "admin",
    args: { name: v.string() },
    handler: async (ctx, { name }) => {
      await ctx.db.patch(ctx.user._id, { name });
      return ctx.user._id;
    },
  }),
  stamp: withStamp({ args: {}, handler: async (ctx) => ctx.stamp }),
  fakeSubject: withFakeAuth({ args: {}, handler: async (ctx) => (await ctx.auth.getUserIdentity())?.subject }),
};

const notes = {
  add: mutationWithSession({
    args: { text: v.string() },
    handler: async (ctx, { text }) => ctx.db.insert("notes", { text, ...(ctx.user ? { by: ctx.user._id } : {}) }),
  }),
  count: query({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").collect()).length }),
  touch: mutationKeepingSession({
    args: { at: v.number() },
    handler: async (_ctx, args) => args,
  }),
  audited: mutationWithAudit({
    args: { text: v.string(), fail: v.optional(v.boolean()) },
    handler: async (ctx, { text, fail }) => {
      trace.push("handler");
      await ctx.db.insert("notes", { text });
      if (fail) throw new Error("handler failed");
      return text.toUpperCase();
    },
  }),
  refused: failingInput({ args: {}, handler: async (ctx) => ctx.db.insert("notes", { text: "never" }) }),
  events: query({ args: {}, handler: async (ctx) => ctx.db.query("events").collect() }),
};

// The action's module cannot see the full `api` (its type would depend on itself).
const notesApi = anyApi as unknown as ApiFromModules<{ notes: typeof notes }>;

const remote = {
  countNotes: actionWithSession({
    args: { plus: v.number() },
    handler: async (ctx, { plus }) => ({
      sessionId: ctx.sessionId,
      total: (await ctx.runQuery(notesApi.notes.count)) + plus,
    }),
  }),
};

const modules = { users, notes, remote };
const api = anyApi as unknown as ApiFromModules<typeof modules>;

let t: ReturnType<typeof walkinTest<typeof schema>> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
  trace = [];
});

function open() {
  t = walkinTest(schema, modules);
  return t;
}

async function failure(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (e) {
    expect(isWalkinError(e) || e instanceof Error).toBe(true);
    return e as { code?: string; message: string };
  }
  throw new Error("expected the call to fail");
}

function definitionError(define: () => unknown) {
  try {
    define();
  } catch (e) {
    expect(isWalkinError(e)).toBe(true);
    return e as { code: string; message: string };
  }
  throw new Error("expected the definition to fail");
}

describe("custom args", () => {
  it("are validated with the function's own args", async () => {
    const t = open();
    const bad = await failure(t.query(api.users.me, { sessionId: 5 as never }));
    expect(bad.code).toBe("INVALID_ARGUMENT");
    expect(bad.message).toContain("args.sessionId");
    const missing = await failure(t.query(api.users.me, {} as never));
    expect(missing.code).toBe("INVALID_ARGUMENT");
    expect(missing.message).toContain("sessionId");
    const ownArg = await failure(t.query(api.users.echo, { sessionId: "s", word: 1 as never }));
    expect(ownArg.code).toBe("INVALID_ARGUMENT");
    expect(ownArg.message).toContain("args.word");
    const unknown = await failure(t.query(api.users.echo, { sessionId: "s", word: "w", extra: 1 } as never));
    expect(unknown.code).toBe("INVALID_ARGUMENT");
  });

  it("make a definition without args a misuse, named when it is defined", () => {
    const e = definitionError(() => queryWithSession({ handler: async () => null } as never));
    expect(e.code).toBe("MISUSE");
    expect(e.message).toContain('"sessionId"');
    expect(e.message).toContain("args: {}");
    expect(definitionError(() => queryWithSession((async () => null) as never)).code).toBe("MISUSE");
  });

  it("are removed from the handler's args", async () => {
    const t = open();
    expect(await t.query(api.users.me, { sessionId: "s1" })).toEqual({ name: null, sessionId: "s1", argKeys: [] });
    expect(await t.query(api.users.echo, { sessionId: "s1", word: "hi" })).toEqual({ word: "hi" });
    expect(await t.query(api.users.echo, { sessionId: "s1", word: "hi", times: 2 })).toEqual({ word: "hi", times: 2 });
  });

  it("combine with v.object args", async () => {
    const t = open();
    expect(await t.query(api.users.echoObject, { sessionId: "s1", word: "hi" })).toEqual({ word: "hi" });
    const bad = await failure(t.query(api.users.echoObject, { sessionId: 1 as never, word: "hi" }));
    expect(bad.message).toContain("args.sessionId");
    const badOwn = await failure(t.query(api.users.echoObject, { sessionId: "s1", word: 1 as never }));
    expect(badOwn.message).toContain("args.word");
  });

  it("reach the handler when input returns them", async () => {
    const t = open();
    expect(await t.mutation(api.notes.touch, { sessionId: "s9", at: 3 })).toEqual({ at: 3, sessionId: "s9" });
  });

  it("may be declared again with the same or a narrower validator, and then reach the handler", async () => {
    const same = queryWithSession({ args: { sessionId: v.string() }, handler: async (_ctx, args) => args });
    const narrower = queryWithSession({ args: { sessionId: v.literal("s1") }, handler: async (_ctx, args) => args });
    const t = walkinTest(schema, { same: { same }, narrower: { narrower } });
    expect(await t.query(anyApi.same!.same!, { sessionId: "s1" })).toEqual({ sessionId: "s1" });
    expect(await t.query(anyApi.narrower!.narrower!, { sessionId: "s1" })).toEqual({ sessionId: "s1" });
    const refused = await failure(t.query(anyApi.narrower!.narrower!, { sessionId: "s2" }));
    expect(refused.code).toBe("INVALID_ARGUMENT");
    await t.close();
  });

  it("may not be declared again with a wider validator", () => {
    for (const wider of [v.number(), v.optional(v.string()), v.union(v.string(), v.null())]) {
      const e = definitionError(() => queryWithSession({ args: { sessionId: wider, x: v.number() }, handler: async () => null } as never));
      expect(e.code).toBe("MISUSE");
      expect(e.message).toContain('"sessionId"');
      expect(e.message).toContain("narrower");
    }
  });
});

describe("custom ctx", () => {
  it("adds what input returns, looked up in the same transaction", async () => {
    const t = open();
    await t.mutation(api.users.signUp, { name: "ada", sessionId: "s1" });
    expect(await t.query(api.users.me, { sessionId: "s1" })).toEqual({ name: "ada", sessionId: "s1", argKeys: [] });
    expect((await t.query(api.users.me, { sessionId: "other" })).name).toBeNull();
    const noteId = await t.mutation(api.notes.add, { sessionId: "s1", text: "hello" });
    const stored = await t.run(async (ctx) => ctx.db.get(noteId));
    const ada = await t.run(async (ctx) => ctx.db.query("users").first());
    expect(stored).toMatchObject({ text: "hello", by: ada!._id });
  });

  it("customCtx adds fields without args", async () => {
    const t = open();
    expect(await t.query(api.users.stamp, {})).toBe("walkin");
  });

  it("a field returned by input replaces the base one", async () => {
    const t = open();
    expect(await t.query(api.users.fakeSubject, {})).toBe("fake");
  });

  it("input receives the extra fields of the definition", async () => {
    const t = open();
    await t.mutation(api.users.signUp, { name: "root", sessionId: "admin-s", admin: true });
    await t.mutation(api.users.signUp, { name: "bob", sessionId: "user-s" });
    const id: Id<"users"> = await t.mutation(api.users.rename, { sessionId: "admin-s", name: "boss" });
    expect((await t.run(async (ctx) => ctx.db.get(id)))?.name).toBe("boss");
    const refused = await failure(t.mutation(api.users.rename, { sessionId: "user-s", name: "hacker" }));
    expect(refused.message).toContain("needs role admin");
    expect(await t.query(api.users.me, { sessionId: "user-s" })).toMatchObject({ name: "bob" });
  });
});

describe("onSuccess and failures", () => {
  it("onSuccess runs after the handler, with all args and the result, in the same transaction", async () => {
    const t = open();
    expect(await t.mutation(api.notes.audited, { sessionId: "s1", text: "hi" })).toBe("HI");
    expect(trace).toEqual(["handler", { onSuccess: { args: { sessionId: "s1", text: "hi" }, result: "HI" } }]);
    expect(await t.query(api.notes.events, {})).toMatchObject([{ kind: "audit", detail: { sessionId: "s1", result: "HI" } }]);
  });

  it("onSuccess is not called when the handler throws, and nothing is written", async () => {
    const t = open();
    const e = await failure(t.mutation(api.notes.audited, { sessionId: "s1", text: "hi", fail: true }));
    expect(e.message).toContain("handler failed");
    expect(trace).toEqual(["handler"]);
    expect(await t.query(api.notes.count, {})).toBe(0);
    expect(await t.query(api.notes.events, {})).toEqual([]);
  });

  it("a throwing input aborts the mutation and writes nothing", async () => {
    const t = open();
    const e = await failure(t.mutation(api.notes.refused, {}));
    expect(e.message).toContain("input refused");
    expect(await t.query(api.notes.events, {})).toEqual([]);
    expect(await t.query(api.notes.count, {})).toBe(0);
  });
});

describe("builder kinds", () => {
  it("custom mutations write and custom actions call other functions", async () => {
    const t = open();
    await t.mutation(api.notes.add, { sessionId: "s", text: "a" });
    await t.mutation(api.notes.add, { sessionId: "s", text: "b" });
    expect(await t.action(api.remote.countNotes, { sessionId: "s7", plus: 10 })).toEqual({ sessionId: "s7", total: 12 });
    const bad = await failure(t.action(api.remote.countNotes, { sessionId: null as never, plus: 1 }));
    expect(bad.code).toBe("INVALID_ARGUMENT");
    expect(bad.message).toContain("args.sessionId");
  });

  it("registers functions of the wrapped builder's type and visibility", () => {
    expect(users.me).toMatchObject({ type: "query", visibility: "public" });
    expect(notes.add).toMatchObject({ type: "mutation", visibility: "public" });
    expect(remote.countNotes).toMatchObject({ type: "action", visibility: "public" });
    expect(Object.isFrozen(users.me)).toBe(true);
  });

  it("rejects a definition without a handler, and a customization without input", () => {
    expect(definitionError(() => queryWithSession({ args: {} } as never)).code).toBe("MISUSE");
    const e = definitionError(() => customQuery(query, { args: {} } as never));
    expect(e.code).toBe("MISUSE");
    expect(e.message).toContain("input");
  });
});

describe("custom args when the function's own args are unchecked", () => {
  const withOwner = customQuery(queryGeneric, {
    args: { owner: v.id("users") },
    input: async (_ctx, { owner }) => ({ ctx: { owner }, args: {} }),
  });
  // The types steer apps to object args; untyped JavaScript may still pass these shapes.
  const untyped = withOwner as unknown as (definition: unknown) => ReturnType<typeof withOwner>;
  const loose = {
    anyArgs: untyped({ args: v.any(), handler: async (ctx: { owner: string }, args: Record<string, unknown>) => ({ owner: ctx.owner, other: args.other ?? null }) }),
  };

  it("accepts any other args with v.any() and still validates the custom ones, table included", async () => {
    const t = walkinTest(schema, { loose });
    const userId = await t.run((ctx) => ctx.db.insert("users", { name: "a", role: "user" }));
    const noteId = await t.run((ctx) => ctx.db.insert("notes", { text: "n" }));
    expect(await t.query(anyApi.loose!.anyArgs!, { owner: userId, other: 5 })).toEqual({ owner: userId, other: 5 });
    const fn = anyApi.loose!.anyArgs!;
    await expect(t.query(fn, { owner: "not-an-id" })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(t.query(fn, { owner: noteId })).rejects.toThrow('expected an ID of table "users"');
    await t.close();
  });
});

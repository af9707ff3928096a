/**
 * Type tests of custom builders: what sessions and auth rely on. The handler sees the added
 * ctx and not the custom args; the registered function (and so `api.*`) takes both.
 */
import { describe, expectTypeOf, test } from "vitest";
import { v, type Id } from "../values/index.js";
import type { ApiFromModules, FunctionArgs, FunctionReference, FunctionReturnType, OptionalRestArgs } from "./api.js";
import { customAction, customCtx, customMutation, customQuery, type Overwrite } from "./customFunctions.js";
import type { DatabaseReader, DatabaseWriter } from "./database.js";
import {
  action as actionGeneric,
  internalMutation as internalMutationGeneric,
  mutation as mutationGeneric,
  query as queryGeneric,
} from "./functions.js";
import type { GenericDataModel } from "./dataModel.js";
import type { Doc } from "./index.js";
import type {
  ActionBuilder,
  Auth,
  GenericActionCtx,
  GenericMutationCtx,
  GenericQueryCtx,
  FunctionVisibility,
  MutationBuilder,
  QueryBuilder,
  RegisteredFunction,
  Scheduler,
  UserIdentity,
} from "./registration.js";
import { defineSchema, defineTable, type DataModelFromSchemaDefinition } from "./schema.js";

const schema = defineSchema({
  users: defineTable({ name: v.string(), role: v.union(v.literal("admin"), v.literal("user")) }),
  logins: defineTable({ sessionId: v.string(), userId: v.id("users") }).index("by_sessionId", ["sessionId"]),
  notes: defineTable({ owner: v.id("users"), text: v.string() }),
});
type DM = DataModelFromSchemaDefinition<typeof schema>;
type User = Doc<DM, "users">;

const query = queryGeneric as QueryBuilder<DM, "public">;
const mutation = mutationGeneric as MutationBuilder<DM, "public">;
const internalMutation = internalMutationGeneric as MutationBuilder<DM, "internal">;
const action = actionGeneric as ActionBuilder<DM, "public">;

async function userOfSession(db: DatabaseReader<DM>, sessionId: string): Promise<User | null> {
  const login = await db.query("logins").withIndex("by_sessionId", (q) => q.eq("sessionId", sessionId)).unique();
  return login ? db.get(login.userId) : null;
}

const queryWithSession = customQuery(query, {
  args: { sessionId: v.string() },
  input: async (ctx, { sessionId }) => {
    expectTypeOf(ctx).toEqualTypeOf<GenericQueryCtx<DM>>();
    expectTypeOf(sessionId).toEqualTypeOf<string>();
    return { ctx: { user: await userOfSession(ctx.db, sessionId), sessionId }, args: {} };
  },
});

const mutationWithSession = customMutation(mutation, {
  args: { sessionId: v.string() },
  input: async (ctx, { sessionId }) => {
    expectTypeOf(ctx).toEqualTypeOf<GenericMutationCtx<DM>>();
    return { ctx: { user: await userOfSession(ctx.db, sessionId), sessionId }, args: {} };
  },
});

// Keeps the custom arg in the handler's args by returning it.
const mutationKeepingSession = customMutation(mutation, {
  args: { sessionId: v.string() },
  input: async (_ctx, { sessionId }) => ({ ctx: {}, args: { sessionId } }),
});

const actionWithSession = customAction(action, {
  args: { sessionId: v.string(), trace: v.optional(v.boolean()) },
  input: async (ctx, args) => {
    expectTypeOf(ctx).toEqualTypeOf<GenericActionCtx<DM>>();
    expectTypeOf(args).toEqualTypeOf<{ sessionId: string; trace?: boolean }>();
    return { ctx: { sessionId: args.sessionId }, args: {} };
  },
});

const internalWithSession = customMutation(internalMutation, {
  args: { sessionId: v.string() },
  input: async (_ctx, { sessionId }) => ({ ctx: { sessionId }, args: {} }),
});

const notes = {
  mine: queryWithSession({
    args: { limit: v.optional(v.number()) },
    handler: async (ctx, args) => {
      expectTypeOf(ctx.user).toEqualTypeOf<User | null>();
      expectTypeOf(ctx.sessionId).toEqualTypeOf<string>();
      expectTypeOf(ctx.db).toEqualTypeOf<DatabaseReader<DM>>();
      expectTypeOf(ctx.auth).toEqualTypeOf<Auth>();
      expectTypeOf(args).toEqualTypeOf<{ limit?: number }>();
      expectTypeOf(args).not.toHaveProperty("sessionId");
      if (!ctx.user) return [];
      const userId = ctx.user._id;
      return (await ctx.db.query("notes").collect()).filter((n) => n.owner === userId).slice(0, args.limit);
    },
  }),
  add: mutationWithSession({
    args: { text: v.string() },
    handler: async (ctx, { text }) => {
      expectTypeOf(ctx.db).toEqualTypeOf<DatabaseWriter<DM>>();
      expectTypeOf(ctx.scheduler).toEqualTypeOf<Scheduler>();
      if (!ctx.user) return null;
      return ctx.db.insert("notes", { owner: ctx.user._id, text });
    },
  }),
  whoAmI: queryWithSession({ args: {}, handler: async (ctx, args) => {
    expectTypeOf(args).toEqualTypeOf<{}>();
    return ctx.user?.name ?? null;
  } }),
  touch: mutationKeepingSession({
    args: { at: v.number() },
    handler: async (_ctx, args) => {
      expectTypeOf(args).toEqualTypeOf<{ at: number; sessionId: string }>();
      return args.sessionId;
    },
  }),
  ping: actionWithSession({
    args: {},
    handler: async (ctx, args) => {
      expectTypeOf(ctx.sessionId).toEqualTypeOf<string>();
      expectTypeOf(ctx.runQuery).toEqualTypeOf<GenericActionCtx<DM>["runQuery"]>();
      expectTypeOf(args).toEqualTypeOf<{}>();
      return 1 as const;
    },
  }),
  cleanup: internalWithSession({ args: { before: v.number() }, handler: async () => undefined }),
};

type Api = ApiFromModules<{ notes: typeof notes }>;
declare const api: Api;
declare const internal: ApiFromModules<{ notes: typeof notes }, "internal">;

describe("custom builders: types", () => {
  test("the registered function's args include the custom args", () => {
    expectTypeOf<FunctionArgs<typeof api.notes.mine>>().toEqualTypeOf<{ sessionId: string; limit?: number }>();
    expectTypeOf<FunctionArgs<typeof api.notes.add>>().toEqualTypeOf<{ sessionId: string; text: string }>();
    expectTypeOf<FunctionArgs<typeof api.notes.whoAmI>>().toEqualTypeOf<{ sessionId: string }>();
    expectTypeOf<FunctionArgs<typeof api.notes.touch>>().toEqualTypeOf<{ sessionId: string; at: number }>();
    expectTypeOf<FunctionArgs<typeof api.notes.ping>>().toEqualTypeOf<{ sessionId: string; trace?: boolean }>();
    // Custom args are required, so they cannot be omitted.
    expectTypeOf<OptionalRestArgs<typeof api.notes.whoAmI>>().toEqualTypeOf<[args: { sessionId: string }]>();
  });

  test("return types and function kinds flow through", () => {
    expectTypeOf<FunctionReturnType<typeof api.notes.mine>>().toEqualTypeOf<Doc<DM, "notes">[]>();
    expectTypeOf<FunctionReturnType<typeof api.notes.add>>().toEqualTypeOf<Id<"notes"> | null>();
    expectTypeOf<FunctionReturnType<typeof api.notes.whoAmI>>().toEqualTypeOf<string | null>();
    expectTypeOf(api.notes.ping).toEqualTypeOf<FunctionReference<"action", "public", { sessionId: string; trace?: boolean }, 1>>();
    expectTypeOf(notes.add).toEqualTypeOf<
      RegisteredFunction<"mutation", "public", { sessionId: string; text: string }, Id<"notes"> | null>
    >();
  });

  test("visibility comes from the wrapped builder", () => {
    expectTypeOf(api.notes).not.toHaveProperty("cleanup");
    expectTypeOf(internal.notes.cleanup).toEqualTypeOf<
      // The handler returns undefined; callers receive null.
      FunctionReference<"mutation", "internal", { sessionId: string; before: number }, null>
    >();
  });

  test("handlers see neither undeclared args nor custom args", () => {
    queryWithSession({
      args: { a: v.string() },
      handler: (_ctx, args) => {
        // @ts-expect-error sessionId is consumed by input
        return args.sessionId;
      },
    });
    queryWithSession({
      args: { a: v.string() },
      // @ts-expect-error b is not declared
      handler: (_ctx, args) => args.b,
    });
  });

  test("a returns validator constrains a custom handler", () => {
    const ok = queryWithSession({ args: {}, returns: v.string(), handler: async () => "x" });
    expectTypeOf(ok).toEqualTypeOf<RegisteredFunction<"query", "public", { sessionId: string }, string>>();
    // @ts-expect-error returns a number where the validator says string
    queryWithSession({ args: {}, returns: v.string(), handler: async () => 1 });
  });

  test("a custom query handler cannot write", () => {
    queryWithSession({
      args: {},
      handler: async (ctx) => {
        // @ts-expect-error queries are read-only
        await ctx.db.insert("notes", { owner: ctx.user!._id, text: "x" });
      },
    });
  });

  test("customCtx adds ctx fields and no args", () => {
    const withClock = customQuery(
      query,
      customCtx((ctx) => {
        expectTypeOf(ctx).toEqualTypeOf<GenericQueryCtx<DM>>();
        return { x: 1, now: (): number => Date.now() };
      }),
    );
    const fn = withClock({
      args: { id: v.id("users") },
      handler: async (ctx, { id }) => {
        expectTypeOf(ctx.x).toEqualTypeOf<number>();
        expectTypeOf(ctx.now).toEqualTypeOf<() => number>();
        expectTypeOf(ctx.db).toEqualTypeOf<DatabaseReader<DM>>();
        return ctx.db.get(id);
      },
    });
    expectTypeOf(fn).toEqualTypeOf<RegisteredFunction<"query", "public", { id: Id<"users"> }, User | null>>();

    const asyncCtx = customMutation(mutation, customCtx(async (ctx) => ({ writer: ctx.db })));
    asyncCtx({
      args: {},
      handler: async (ctx) => {
        expectTypeOf(ctx.writer).toEqualTypeOf<DatabaseWriter<DM>>();
      },
    });
  });

  test("extra definition fields are typed", () => {
    const mutationWithRole = customMutation(mutation, {
      args: { sessionId: v.string() },
      input: async (ctx, { sessionId }, extra: { role: "admin" | "user" }) => {
        const user = await userOfSession(ctx.db, sessionId);
        if (!user || (extra.role === "admin" && user.role !== "admin")) throw new Error("forbidden");
        return { ctx: { user }, args: {} };
      },
    });
    const fn = mutationWithRole({
      role: "admin",
      args: { name: v.string() },
      handler: async (ctx, { name }) => {
        expectTypeOf(ctx.user).toEqualTypeOf<User>();
        await ctx.db.patch(ctx.user._id, { name });
      },
    });
    expectTypeOf(fn).toEqualTypeOf<RegisteredFunction<"mutation", "public", { sessionId: string; name: string }, void>>();

    // @ts-expect-error the role must be one input accepts
    mutationWithRole({ role: "owner", args: {}, handler: async () => undefined });
    // @ts-expect-error the role is required when input declares it
    mutationWithRole({ args: {}, handler: async () => undefined });
  });

  test("onSuccess receives the original ctx, the args and the result", () => {
    customMutation(mutation, {
      args: { sessionId: v.string() },
      input: async (_ctx, { sessionId }) => ({
        ctx: { sessionId },
        args: {},
        onSuccess: async ({ ctx, args, result }) => {
          expectTypeOf(ctx).toEqualTypeOf<GenericMutationCtx<DM>>();
          expectTypeOf(args).toEqualTypeOf<Record<string, unknown>>();
          expectTypeOf(result).toBeUnknown();
          await ctx.db.insert("logins", { sessionId: String(args.sessionId), userId: "x" as Id<"users"> });
        },
      }),
    });
  });

  test("ctx fields returned by input override the base ones", () => {
    const withPlainDb = customQuery(query, {
      args: {},
      input: async (ctx) => ({ ctx: { db: { ready: true as const, inner: ctx.db }, auth: null }, args: {} }),
    });
    withPlainDb({
      args: {},
      handler: async (ctx) => {
        expectTypeOf(ctx.db).toEqualTypeOf<{ ready: true; inner: DatabaseReader<DM> }>();
        expectTypeOf(ctx.auth).toEqualTypeOf<null>();
      },
    });
    expectTypeOf<Overwrite<{ a: string; b: number }, { b: string; c: boolean }>>().toEqualTypeOf<{
      a: string;
      b: string;
      c: boolean;
    }>();
  });

  test("args returned by input override declared ones of the same name", () => {
    const withUserId = customQuery(query, {
      args: { sessionId: v.string() },
      input: async (ctx, { sessionId }) => ({ ctx: {}, args: { user: await userOfSession(ctx.db, sessionId) } }),
    });
    withUserId({
      args: { user: v.string(), other: v.number() },
      handler: async (_ctx, args) => {
        expectTypeOf(args).toEqualTypeOf<{ user: User | null; other: number }>();
      },
    });
  });

  test("a customization object shared by a query and a mutation builder", () => {
    const withToken = {
      args: { token: v.string() },
      input: async (_ctx: unknown, { token }: { token: string }) => ({ ctx: { token }, args: {} }),
    };
    const q = customQuery(query, withToken)({ args: {}, handler: async (ctx) => ctx.token });
    const m = customMutation(mutation, withToken)({ args: {}, handler: async (ctx) => ctx.token.length });
    expectTypeOf(q).toEqualTypeOf<RegisteredFunction<"query", "public", { token: string }, string>>();
    expectTypeOf(m).toEqualTypeOf<RegisteredFunction<"mutation", "public", { token: string }, number>>();
  });

  test("input may be synchronous", () => {
    const withConstant = customQuery(query, {
      args: { n: v.number() },
      input: (_ctx, { n }) => ({ ctx: { double: n * 2 }, args: { half: n / 2 } }),
    });
    const fn = withConstant({
      args: {},
      handler: (ctx, args) => {
        expectTypeOf(ctx.double).toEqualTypeOf<number>();
        expectTypeOf(args).toEqualTypeOf<{ half: number }>();
        return args.half + ctx.double;
      },
    });
    expectTypeOf(fn).toEqualTypeOf<RegisteredFunction<"query", "public", { n: number }, number>>();
  });

  test("untyped builders work too", () => {
    const untyped = customQuery(queryGeneric, {
      args: { sessionId: v.string() },
      input: async (_ctx, { sessionId }) => ({ ctx: { sessionId }, args: {} }),
    });
    const fn = untyped({
      args: { n: v.number() },
      handler: async (ctx, { n }) => {
        const doc = await ctx.db.query("anything").first();
        return [ctx.sessionId, n, doc?._id] as const;
      },
    });
    expectTypeOf<typeof fn.__args>().toEqualTypeOf<{ sessionId: string; n: number }>();
  });

  test("builders only wrap builders of their kind", () => {
    // @ts-expect-error a query builder cannot make custom mutations
    customMutation(query, { args: {}, input: async () => ({ ctx: {}, args: {} }) });
    // @ts-expect-error a mutation builder cannot make custom actions
    customAction(mutation, { args: {}, input: async () => ({ ctx: {}, args: {} }) });
  });
});

// How sessions and auth ship ready builders: generic over the app's data model, which must
// include the library's own tables.
const authSchema = defineSchema({
  authSessions: defineTable({ tokenHash: v.string(), userId: v.id("users") }).index("by_tokenHash", ["tokenHash"]),
});
type AuthDM = DataModelFromSchemaDefinition<typeof authSchema>;

function withIdentity<DM extends GenericDataModel, V extends FunctionVisibility>(query: QueryBuilder<DM, V>) {
  return customQuery(query, {
    args: {},
    input: async (ctx) => {
      expectTypeOf(ctx).toEqualTypeOf<GenericQueryCtx<DM>>();
      return { ctx: { identity: await ctx.auth.getUserIdentity() }, args: {} };
    },
  });
}

function withAuthSession<DM extends AuthDM, V extends FunctionVisibility>(mutation: MutationBuilder<DM, V>) {
  return customMutation(mutation, {
    args: { token: v.string() },
    input: async (ctx, { token }) => {
      // A typed db narrows to the tables the library knows about.
      const db: DatabaseWriter<AuthDM> = ctx.db;
      const session = await db.query("authSessions").withIndex("by_tokenHash", (q) => q.eq("tokenHash", token)).unique();
      return { ctx: { userId: session?.userId ?? null }, args: {} };
    },
  });
}

describe("custom builders made generic over the data model", () => {
  test("ctx keeps the app's data model and gains the library's fields", () => {
    const queryWithIdentity = withIdentity(query);
    queryWithIdentity({
      args: {},
      handler: async (ctx) => {
        expectTypeOf(ctx.identity).toEqualTypeOf<UserIdentity | null>();
        expectTypeOf(ctx.db).toEqualTypeOf<DatabaseReader<DM>>();
      },
    });

    const appSchema = defineSchema({ ...authSchema.tables, notes: defineTable({ text: v.string() }) });
    type AppDM = DataModelFromSchemaDefinition<typeof appSchema>;
    const appMutation = mutationGeneric as MutationBuilder<AppDM, "public">;
    const fn = withAuthSession(appMutation)({
      args: { text: v.string() },
      handler: async (ctx, { text }) => {
        expectTypeOf(ctx.userId).toEqualTypeOf<Id<"users"> | null>();
        return ctx.db.insert("notes", { text });
      },
    });
    expectTypeOf(fn).toEqualTypeOf<RegisteredFunction<"mutation", "public", { token: string; text: string }, Id<"notes">>>();
  });

  test("a data model without the library's tables is rejected", () => {
    // @ts-expect-error DM lacks the authSessions table
    withAuthSession(mutation);
  });
});

describe("custom args and function args", () => {
  test("a function may redeclare an arg the customization adds, only with the same or a narrower type", () => {
    queryWithSession({ args: { sessionId: v.string(), limit: v.number() }, handler: async (_ctx, { sessionId }) => sessionId });
    // @ts-expect-error a number is not a string: wider than the custom arg
    queryWithSession({ args: { sessionId: v.number(), limit: v.number() }, handler: async () => null });
    queryWithSession({ args: { session: v.string() }, handler: async (_ctx, { session }) => session });
  });
});

describe("v.object args", () => {
  test("work in custom builders like in plain ones", () => {
    const fn = queryWithSession({
      args: v.object({ a: v.string(), b: v.optional(v.number()) }),
      handler: async (_ctx, args) => {
        expectTypeOf(args).toEqualTypeOf<{ a: string; b?: number }>();
        return args.a;
      },
    });
    expectTypeOf(fn).toEqualTypeOf<RegisteredFunction<"query", "public", { sessionId: string; a: string; b?: number }, string>>();
  });
});

/**
 * Type tests of the session builders: what handlers see (ctx.sessionId, ctx.user, args without
 * sessionId) and what the registered functions take (`sessionId: string`: clients send the raw
 * ID they generated, which the `SessionId` brand, a digest, is not), for the typed factory and
 * the ready untyped builders, plus runSessionFunctions' argument types.
 */
import { describe, expectTypeOf, test } from "vitest";
import type { FunctionArgs, FunctionReference } from "../server/api.js";
import { action, mutation, query } from "../server/functions.js";
import type { ActionBuilder, MutationBuilder, QueryBuilder, RegisteredFunction } from "../server/registration.js";
import { defineSchema, defineTable, type DataModelFromSchemaDefinition } from "../server/schema.js";
import type { Doc, GenericActionCtx } from "../server/index.js";
import { v, type Id } from "../values/index.js";
import { getOrCreateSessionUser } from "./anonymousUsers.js";
import { mutationWithSession, queryWithSession, sessionBuilders, sessionTables } from "./builders.js";
import { runSessionFunctions } from "./runSessionFunctions.js";
import type { SessionId } from "./sessionId.js";

const schema = defineSchema({
  ...sessionTables,
  users: defineTable({ name: v.string() }),
});
type DM = DataModelFromSchemaDefinition<typeof schema>;
type User = Doc<DM, "users">;

// What `_generated/server` exports for this schema.
const typed = sessionBuilders({
  query: query as QueryBuilder<DM, "public">,
  mutation: mutation as MutationBuilder<DM, "public">,
  action: action as ActionBuilder<DM, "public">,
});

describe("sessionBuilders (typed)", () => {
  test("handlers see the digest and the app's user; args exclude sessionId", () => {
    const fn = typed.queryWithSession({
      args: { limit: v.number() },
      handler: async (ctx, args) => {
        expectTypeOf(ctx.sessionId).toEqualTypeOf<SessionId>();
        expectTypeOf(ctx.user).toEqualTypeOf<User | null>();
        expectTypeOf(args).toEqualTypeOf<{ limit: number }>();
        return ctx.user?.name ?? null;
      },
    });
    expectTypeOf(fn).toEqualTypeOf<RegisteredFunction<"query", "public", { limit: number; sessionId: string }, string | null>>();
  });

  test("mutations get a typed db and the user; actions get the runners", () => {
    typed.mutationWithSession({
      args: {},
      handler: async (ctx) => {
        expectTypeOf(ctx.user).toEqualTypeOf<User | null>();
        const id = await getOrCreateSessionUser(ctx, ctx.sessionId, (c) => c.db.insert("users", { name: "Anonymous" }));
        expectTypeOf(id).toEqualTypeOf<Id<"users">>();
        // @ts-expect-error users have no `age`
        await ctx.db.insert("users", { name: "x", age: 1 });
      },
    });
    const act = typed.actionWithSession({
      args: { n: v.number() },
      handler: async (ctx, args) => {
        expectTypeOf(ctx.sessionId).toEqualTypeOf<SessionId>();
        expectTypeOf(args).toEqualTypeOf<{ n: number }>();
        expectTypeOf(ctx.runSessionQuery).toBeFunction();
        return args.n;
      },
    });
    expectTypeOf<typeof act>().toEqualTypeOf<RegisteredFunction<"action", "public", { n: number; sessionId: string }, number>>();
  });

  test("declaring sessionId again with another type is an error", () => {
    // @ts-expect-error the builder already adds sessionId, a string
    typed.queryWithSession({ args: { sessionId: v.number() }, handler: async () => null });
  });
});

describe("ready builders (untyped)", () => {
  test("ctx.sessionId is a SessionId and the registered args include it", () => {
    const fn = mutationWithSession({
      args: { name: v.string() },
      handler: async (ctx, args) => {
        expectTypeOf(ctx.sessionId).toEqualTypeOf<SessionId>();
        expectTypeOf(args).toEqualTypeOf<{ name: string }>();
        if (ctx.user) await ctx.db.patch(ctx.user._id, { name: args.name });
      },
    });
    expectTypeOf<FunctionArgs<FunctionReference<"mutation", "public", (typeof fn)["__args"]>>>().toEqualTypeOf<{ name: string; sessionId: string }>();
    queryWithSession({ args: {}, handler: async (ctx) => expectTypeOf(ctx.user).toBeNullable() });
  });
});

describe("runSessionFunctions", () => {
  type Mine = FunctionReference<"query", "public", { sessionId: SessionId }, string[]>;
  type Find = FunctionReference<"query", "public", { sessionId: SessionId; text: string }, string>;
  type NotSession = FunctionReference<"query", "public", { text: string }, string>;
  type Save = FunctionReference<"mutation", "public", { sessionId: string; n?: number }, null>;

  test("args may be omitted when sessionId is the only required one; types flow", () => {
    const ctx = {} as GenericActionCtx;
    const run = runSessionFunctions(ctx, "sd1_x" as SessionId);
    const mine = {} as Mine;
    const find = {} as Find;
    const save = {} as Save;
    expectTypeOf(run.runSessionQuery(mine)).toEqualTypeOf<Promise<string[]>>();
    expectTypeOf(run.runSessionQuery(find, { text: "a" })).toEqualTypeOf<Promise<string>>();
    expectTypeOf(run.runSessionMutation(save)).toEqualTypeOf<Promise<null>>();
    // @ts-expect-error text is required
    void run.runSessionQuery(find);
    // @ts-expect-error the session ID is filled in, not passed
    void run.runSessionQuery(find, { text: "a", sessionId: "sd1_x" as SessionId });
    // @ts-expect-error a function without a sessionId argument
    void run.runSessionQuery({} as NotSession, { text: "a" });
    // @ts-expect-error a mutation is not a query
    void run.runSessionQuery(save);
  });
});

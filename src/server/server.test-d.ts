/**
 * Type tests of the schema → data model → `ctx.db` → function → `api` chain: what an app gets
 * from `walkin codegen`, which casts the untyped builders to the schema's data model.
 */
import { describe, expectTypeOf, test } from "vitest";
import { v, type Id } from "../values/index.js";
import type {
  ApiFromModules,
  FunctionArgs,
  FunctionReference,
  FunctionReturnType,
  OptionalRestArgs,
} from "./api.js";
import type { DatabaseReader, DatabaseWriter, Expression, PaginationResult } from "./database.js";
import type { AnyDataModel } from "./dataModel.js";
import {
  action as actionGeneric,
  internalAction as internalActionGeneric,
  internalMutation as internalMutationGeneric,
  internalQuery as internalQueryGeneric,
  mutation as mutationGeneric,
  query as queryGeneric,
} from "./functions.js";
import type { Doc } from "./index.js";
import type {
  ActionBuilder,
  GenericMutationCtx,
  GenericQueryCtx,
  MutationBuilder,
  QueryBuilder,
  RegisteredFunction,
} from "./registration.js";
import { defineSchema, defineTable, type DataModelFromSchemaDefinition } from "./schema.js";

const schema = defineSchema({
  users: defineTable({
    name: v.string(),
    email: v.optional(v.string()),
    address: v.optional(v.object({ city: v.string(), zip: v.optional(v.string()) })),
  })
    .index("by_name", ["name"])
    .index("by_city", ["address.city"]),
  messages: defineTable({ author: v.id("users"), channel: v.string(), body: v.string(), likes: v.number() })
    .index("by_channel", ["channel"])
    .index("by_channel_likes", ["channel", "likes"]),
  shapes: defineTable(
    v.union(
      v.object({ kind: v.literal("circle"), r: v.number() }),
      v.object({ kind: v.literal("rect"), w: v.number(), meta: v.object({ tag: v.string() }) }),
    ),
  )
    .index("by_r", ["r"])
    .index("by_kind_w", ["kind", "w"])
    .index("by_tag", ["meta.tag"]),
});
type DM = DataModelFromSchemaDefinition<typeof schema>;

// What codegen writes in _generated/server.ts.
const query = queryGeneric as QueryBuilder<DM, "public">;
const internalQuery = internalQueryGeneric as QueryBuilder<DM, "internal">;
const mutation = mutationGeneric as MutationBuilder<DM, "public">;
const internalMutation = internalMutationGeneric as MutationBuilder<DM, "internal">;
const action = actionGeneric as ActionBuilder<DM, "public">;

declare const db: DatabaseWriter<DM>;
declare const reader: DatabaseReader<DM>;
declare const userId: Id<"users">;
declare const messageId: Id<"messages">;

describe("typed and untyped builders", () => {
  test("the untyped builders cast to the schema's (what codegen writes)", () => {
    expectTypeOf(query).toEqualTypeOf<QueryBuilder<DM, "public">>();
    expectTypeOf(internalQueryGeneric as QueryBuilder<DM, "internal">).toEqualTypeOf<QueryBuilder<DM, "internal">>();
    expectTypeOf(internalActionGeneric as ActionBuilder<DM, "internal">).toEqualTypeOf<ActionBuilder<DM, "internal">>();
  });

  test("a typed ctx can be passed to helpers written for the untyped one", () => {
    expectTypeOf<GenericQueryCtx<DM>>().toExtend<GenericQueryCtx<AnyDataModel>>();
    expectTypeOf<GenericMutationCtx<DM>>().toExtend<GenericMutationCtx<AnyDataModel>>();
    expectTypeOf<DatabaseReader<DM>>().toExtend<DatabaseReader<AnyDataModel>>();
  });

  test("untyped builders accept any table, field and index", () => {
    queryGeneric({
      args: {},
      handler: async (ctx) => {
        const doc = await ctx.db.query("anything").withIndex("by_x", (q) => q.eq("x", 1).eq("y", "z").gt("w", 0)).first();
        expectTypeOf(doc).toEqualTypeOf<{ _id: Id<any>; _creationTime: number; [field: string]: any } | null>();
        return ctx.db.query("other").filter((q) => q.eq(q.field("a.b"), 1)).collect();
      },
    });
  });
});

describe("schema → documents", () => {
  test("documents have system fields, optional fields and typed ids", () => {
    expectTypeOf<Doc<DM, "users">>().toEqualTypeOf<{
      _id: Id<"users">;
      _creationTime: number;
      name: string;
      email?: string;
      address?: { city: string; zip?: string };
    }>();
    expectTypeOf<Doc<DM, "messages">>().toEqualTypeOf<{
      _id: Id<"messages">;
      _creationTime: number;
      author: Id<"users">;
      channel: string;
      body: string;
      likes: number;
    }>();
    expectTypeOf<Doc<DM, "messages">["author"]>().not.toEqualTypeOf<Id<"messages">>();
  });

  test("the data model lists tables, field paths and indexes", () => {
    expectTypeOf<keyof DM>().toEqualTypeOf<"users" | "messages" | "shapes">();
    expectTypeOf<DM["users"]["fieldPaths"]>().toEqualTypeOf<
      "name" | "email" | "address" | "address.city" | "address.zip" | "_id" | "_creationTime"
    >();
    expectTypeOf<keyof DM["messages"]["indexes"]>().toEqualTypeOf<
      "by_channel" | "by_channel_likes" | "by_id" | "by_creation_time"
    >();
    expectTypeOf<DM["messages"]["indexes"]["by_channel_likes"]>().toEqualTypeOf<["channel", "likes", "_creationTime"]>();
  });

  test(".index() accepts only fields the table declares", () => {
    defineTable({ a: v.string(), nested: v.object({ b: v.number() }) }).index("ok", ["a", "nested.b"]);
    // @ts-expect-error "missing" is not a field of the table
    defineTable({ a: v.string() }).index("by_missing", ["missing"]);
    // @ts-expect-error "nested.c" is not a field path of the table
    defineTable({ nested: v.object({ b: v.number() }) }).index("by_c", ["nested.c"]);
    // @ts-expect-error an index needs at least one field
    defineTable({ a: v.string() }).index("empty", []);
  });

  test("a table defined by a union has a union of documents", () => {
    expectTypeOf<Doc<DM, "shapes">>().toEqualTypeOf<
      | { _id: Id<"shapes">; _creationTime: number; kind: "circle"; r: number }
      | { _id: Id<"shapes">; _creationTime: number; kind: "rect"; w: number; meta: { tag: string } }
    >();
    expectTypeOf<DM["shapes"]["fieldPaths"]>().toEqualTypeOf<"kind" | "r" | "w" | "meta" | "meta.tag" | "_id" | "_creationTime">();
  });
});

describe("ctx.db", () => {
  test("get(id) returns the id's table's document or null", async () => {
    expectTypeOf(await reader.get(userId)).toEqualTypeOf<Doc<DM, "users"> | null>();
    expectTypeOf(await reader.get(messageId)).toEqualTypeOf<Doc<DM, "messages"> | null>();
    // @ts-expect-error an id of a table that does not exist
    await reader.get("x" as Id<"ghosts">);
  });

  test("query results are documents of the table", async () => {
    const q = reader.query("messages");
    expectTypeOf(await q.collect()).toEqualTypeOf<Doc<DM, "messages">[]>();
    expectTypeOf(await q.take(3)).toEqualTypeOf<Doc<DM, "messages">[]>();
    expectTypeOf(await q.order("desc").first()).toEqualTypeOf<Doc<DM, "messages"> | null>();
    expectTypeOf(await q.unique()).toEqualTypeOf<Doc<DM, "messages"> | null>();
    expectTypeOf(await q.paginate({ numItems: 10, cursor: null })).toEqualTypeOf<PaginationResult<Doc<DM, "messages">>>();
    for await (const message of q) expectTypeOf(message).toEqualTypeOf<Doc<DM, "messages">>();
    // @ts-expect-error no such table
    reader.query("ghosts");
  });

  test("withIndex accepts declared index names and their fields in order", () => {
    const messages = reader.query("messages");
    messages.withIndex("by_channel", (q) => q.eq("channel", "general"));
    messages.withIndex("by_channel");
    messages.withIndex("by_channel_likes", (q) => q.eq("channel", "general").gt("likes", 3).lte("likes", 10));
    messages.withIndex("by_channel_likes", (q) => q.eq("channel", "general").eq("likes", 3).gte("_creationTime", 0));
    messages.withIndex("by_creation_time", (q) => q.gt("_creationTime", 0));
    messages.withIndex("by_id", (q) => q.eq("_id", messageId));
    reader.query("users").withIndex("by_city", (q) => q.eq("address.city", "Oslo"));

    // @ts-expect-error not a declared index
    messages.withIndex("by_body");
    // @ts-expect-error "body" is not a field of by_channel
    messages.withIndex("by_channel", (q) => q.eq("body", "x"));
    // @ts-expect-error fields must be used in index order: "likes" comes after "channel"
    messages.withIndex("by_channel_likes", (q) => q.eq("likes", 3));
    // @ts-expect-error a range on the first field cannot be followed by eq on the next one
    messages.withIndex("by_channel_likes", (q) => q.gt("channel", "a").eq("likes", 3));
    // @ts-expect-error by_channel has no field after _creationTime
    messages.withIndex("by_channel", (q) => q.eq("channel", "a").eq("_creationTime", 1).eq("channel", "b"));
    // @ts-expect-error the upper bound must be on the same field as the lower bound
    messages.withIndex("by_channel_likes", (q) => q.eq("channel", "a").gt("likes", 1).lt("channel", "b"));
  });

  test("index values have the field's type", () => {
    const messages = reader.query("messages");
    messages.withIndex("by_channel_likes", (q) => q.eq("channel", "general").eq("likes", 1));
    // @ts-expect-error channel is a string
    messages.withIndex("by_channel", (q) => q.eq("channel", 1));
    // @ts-expect-error likes is a number
    messages.withIndex("by_channel_likes", (q) => q.eq("channel", "general").gt("likes", "1"));
    // @ts-expect-error _id of by_id is an Id<"messages">, not of users
    messages.withIndex("by_id", (q) => q.eq("_id", userId));
    // A nested optional field may be compared with undefined (documents where it is absent).
    reader.query("users").withIndex("by_city", (q) => q.eq("address.city", undefined));
  });

  test("fields of some members of a union table are typed, or undefined where absent", () => {
    const shapes = reader.query("shapes");
    shapes.withIndex("by_r", (q) => q.eq("r", 3));
    shapes.withIndex("by_r", (q) => q.eq("r", undefined));
    shapes.withIndex("by_kind_w", (q) => q.eq("kind", "rect").gt("w", 3));
    shapes.withIndex("by_tag", (q) => q.eq("meta.tag", "x"));
    // @ts-expect-error r is a number where present
    shapes.withIndex("by_r", (q) => q.eq("r", "3"));
    // @ts-expect-error kind is "circle" or "rect"
    shapes.withIndex("by_kind_w", (q) => q.eq("kind", "square"));
    shapes.filter((q) => {
      expectTypeOf(q.field("meta.tag")).toEqualTypeOf<Expression<string | undefined>>();
      expectTypeOf(q.field("kind")).toEqualTypeOf<Expression<"circle" | "rect">>();
      return q.eq(q.field("r"), 2);
    });
  });

  test("filter is typed by the table's field paths", () => {
    const messages = reader.query("messages");
    messages.filter((q) => q.and(q.eq(q.field("channel"), "general"), q.gt(q.field("likes"), 2)));
    reader.query("users").filter((q) => q.eq(q.field("address.city"), "Oslo"));
    // @ts-expect-error no such field
    messages.filter((q) => q.eq(q.field("nope"), 1));
    // @ts-expect-error likes is a number
    messages.filter((q) => q.eq(q.field("likes"), "many"));
  });

  test("insert requires required fields and knows the tables", async () => {
    expectTypeOf(await db.insert("users", { name: "ada" })).toEqualTypeOf<Id<"users">>();
    await db.insert("users", { name: "ada", email: "a@b.c", address: { city: "Oslo" } });
    // @ts-expect-error name is required
    await db.insert("users", { email: "a@b.c" });
    // @ts-expect-error unknown field
    await db.insert("users", { name: "ada", age: 3 });
    // @ts-expect-error no such table
    await db.insert("ghosts", { name: "boo" });
    // @ts-expect-error author is an Id<"users">
    await db.insert("messages", { author: messageId, channel: "c", body: "b", likes: 0 });
    // @ts-expect-error _id is assigned by the database
    await db.insert("users", { name: "ada", _id: userId });
  });

  test("patch, replace and delete take ids of the right table", async () => {
    await db.patch(userId, { email: "x@y.z" });
    await db.patch(userId, { email: undefined });
    // @ts-expect-error likes is a field of messages, not of users
    await db.patch(userId, { likes: 3 });
    await db.replace(messageId, { author: userId, channel: "c", body: "b", likes: 1 });
    // @ts-expect-error replace needs every required field
    await db.replace(messageId, { body: "b" });
    await db.delete(userId);
    // @ts-expect-error not an id
    await db.delete("plain string");
  });

  test("query ctx cannot write", () => {
    query({
      args: {},
      handler: async (ctx) => {
        // @ts-expect-error queries are read-only
        await ctx.db.insert("users", { name: "x" });
      },
    });
  });
});

// Modules as an app would write them (the objects stand in for `import * as messages`).
const messagesModule = {
  send: mutation({
    args: { channel: v.string(), body: v.string(), silent: v.optional(v.boolean()) },
    handler: async (ctx, args) => {
      expectTypeOf(args).toEqualTypeOf<{ channel: string; body: string; silent?: boolean }>();
      expectTypeOf(ctx.db).toEqualTypeOf<DatabaseWriter<DM>>();
      return ctx.db.insert("messages", { author: userId, channel: args.channel, body: args.body, likes: 0 });
    },
  }),
  list: query({
    args: { channel: v.string(), limit: v.optional(v.number()) },
    handler: async (ctx, { channel, limit }) =>
      ctx.db.query("messages").withIndex("by_channel", (q) => q.eq("channel", channel)).order("desc").take(limit ?? 50),
  }),
  count: query({
    args: {},
    handler: async (ctx) => (await ctx.db.query("messages").collect()).length,
  }),
  latest: query(async (ctx) => ctx.db.query("messages").order("desc").first()),
  bodies: query({
    args: {},
    returns: v.array(v.string()),
    handler: async (ctx) => (await ctx.db.query("messages").collect()).map((m) => m.body),
  }),
  purge: internalMutation({ args: { channel: v.string() }, handler: async () => 0 }),
  peek: internalQuery({ args: {}, handler: async () => "secret" }),
  notAFunction: 42,
};
const usersModule = {
  get: query({ args: { id: v.id("users") }, handler: (ctx, { id }) => ctx.db.get(id) }),
  lookup: action({
    args: { name: v.string() },
    handler: async (ctx, { name }): Promise<string | null> => {
      expectTypeOf(ctx).not.toHaveProperty("db");
      const user = await ctx.runQuery(api.lib.users.get, { id: userId });
      expectTypeOf(user).toEqualTypeOf<Doc<DM, "users"> | null>();
      return user?.name === name ? name : null;
    },
  }),
};
type Modules = { messages: typeof messagesModule; "lib/users": typeof usersModule };
declare const api: ApiFromModules<Modules, "public">;
declare const internal: ApiFromModules<Modules, "internal">;

describe("functions and api", () => {
  test("args come from validators and return types flow to references", () => {
    expectTypeOf(api.messages.send).toEqualTypeOf<
      FunctionReference<"mutation", "public", { channel: string; body: string; silent?: boolean }, Id<"messages">>
    >();
    expectTypeOf<FunctionArgs<typeof api.messages.list>>().toEqualTypeOf<{ channel: string; limit?: number }>();
    expectTypeOf<FunctionReturnType<typeof api.messages.list>>().toEqualTypeOf<Doc<DM, "messages">[]>();
    expectTypeOf<FunctionReturnType<typeof api.messages.count>>().toEqualTypeOf<number>();
    expectTypeOf<FunctionReturnType<typeof api.messages.latest>>().toEqualTypeOf<Doc<DM, "messages"> | null>();
    expectTypeOf<FunctionReturnType<typeof api.messages.bodies>>().toEqualTypeOf<string[]>();
    expectTypeOf<FunctionReturnType<typeof api.lib.users.lookup>>().toEqualTypeOf<string | null>();
    expectTypeOf<FunctionArgs<typeof api.lib.users.get>>().toEqualTypeOf<{ id: Id<"users"> }>();
  });

  test("a registered function carries its type, visibility, args and result", () => {
    expectTypeOf(messagesModule.purge).toEqualTypeOf<RegisteredFunction<"mutation", "internal", { channel: string }, number>>();
    expectTypeOf(usersModule.lookup).toEqualTypeOf<RegisteredFunction<"action", "public", { name: string }, string | null>>();
  });

  test("the returns validator constrains the handler", () => {
    query({ args: {}, returns: v.number(), handler: () => 1 });
    query({ args: {}, returns: v.number(), handler: async () => 1 });
    // @ts-expect-error the handler returns a string where the validator says number
    query({ args: {}, returns: v.number(), handler: () => "one" });
    // @ts-expect-error a missing required field of the returned object
    query({ args: {}, returns: v.object({ a: v.string(), b: v.number() }), handler: async () => ({ a: "x" }) });
    const typed = query({ args: {}, returns: v.union(v.literal("a"), v.literal("b")), handler: () => "a" as const });
    expectTypeOf(typed).toEqualTypeOf<RegisteredFunction<"query", "public", {}, "a" | "b">>();
  });

  test("a handler must not use args it did not declare", () => {
    query({
      args: { a: v.string() },
      // @ts-expect-error b is not declared
      handler: (_ctx, args) => args.b,
    });
  });

  test("v.object args work like a record of validators", () => {
    const fn = mutation({
      args: v.object({ n: v.number(), tag: v.optional(v.string()) }),
      handler: (_ctx, args) => {
        expectTypeOf(args).toEqualTypeOf<{ n: number; tag?: string }>();
        return args.n;
      },
    });
    expectTypeOf(fn).toEqualTypeOf<RegisteredFunction<"mutation", "public", { n: number; tag?: string }, number>>();
  });

  test("internal functions are only in the internal api", () => {
    expectTypeOf(api.messages).not.toHaveProperty("purge");
    expectTypeOf(api.messages).not.toHaveProperty("peek");
    expectTypeOf(api.messages).not.toHaveProperty("notAFunction");
    expectTypeOf(internal.messages).toHaveProperty("purge");
    expectTypeOf(internal.messages.purge).toEqualTypeOf<FunctionReference<"mutation", "internal", { channel: string }, number>>();
    expectTypeOf(internal.messages.peek).toEqualTypeOf<FunctionReference<"query", "internal", {}, string>>();
    expectTypeOf(internal.messages).not.toHaveProperty("send");
    expectTypeOf<keyof typeof api.messages>().toEqualTypeOf<"send" | "list" | "count" | "latest" | "bodies">();
  });

  test("nested module paths become nested objects", () => {
    expectTypeOf<keyof typeof api>().toEqualTypeOf<"messages" | "lib">();
    expectTypeOf<keyof typeof api.lib>().toEqualTypeOf<"users">();
    expectTypeOf(api.lib.users.get).toEqualTypeOf<FunctionReference<"query", "public", { id: Id<"users"> }, Doc<DM, "users"> | null>>();
    type Deep = ApiFromModules<{ "a/b/c": typeof usersModule; "a/d": typeof usersModule; a: typeof usersModule }>;
    expectTypeOf<Deep["a"]["b"]["c"]["get"]>().toEqualTypeOf<typeof api.lib.users.get>();
    expectTypeOf<Deep["a"]["d"]["lookup"]>().toEqualTypeOf<typeof api.lib.users.lookup>();
    expectTypeOf<Deep["a"]["get"]>().toEqualTypeOf<typeof api.lib.users.get>();
  });

  test("OptionalRestArgs lets args be omitted only when none are required", () => {
    expectTypeOf<OptionalRestArgs<typeof api.messages.count>>().toEqualTypeOf<[args?: {}]>();
    expectTypeOf<OptionalRestArgs<typeof api.messages.send>>().toEqualTypeOf<
      [args: { channel: string; body: string; silent?: boolean }]
    >();
    const call = <F extends FunctionReference<"query">>(_fn: F, ..._args: OptionalRestArgs<F>) => undefined;
    call(api.messages.count);
    call(api.messages.count, {});
    call(api.messages.list, { channel: "general" });
    // @ts-expect-error channel is required
    call(api.messages.list);
    // @ts-expect-error channel is required
    call(api.messages.list, {});
    // @ts-expect-error wrong type
    call(api.messages.list, { channel: 1 });
  });
});

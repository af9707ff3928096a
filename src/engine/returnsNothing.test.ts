/**
 * A function that returns nothing answers null, and its `returns` validator checks that null,
 * as Convex checks the value it sends: `returns: v.null()` (how Convex's guidelines declare a
 * function with no result) accepts a handler that returns nothing, `v.optional(...)` accepts
 * it as it always did, and any other validator refuses it, its writes undone.
 */
import { afterEach, describe, expect, it } from "vitest";
import { action, customCtx, customMutation, defineSchema, defineTable, makeFunctionReference, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";

const schema = defineSchema({ notes: defineTable({ body: v.string() }) });

const modules = {
  nothing: {
    query: query({ args: {}, returns: v.null(), handler: async () => {} }),
    mutation: mutation({
      args: { body: v.string() },
      returns: v.null(),
      handler: async (ctx, { body }) => {
        await ctx.db.insert("notes", { body });
      },
    }),
    action: action({ args: {}, returns: v.null(), handler: async () => {} }),
    optional: query({ args: {}, returns: v.optional(v.string()), handler: async () => undefined }),
    orNull: query({ args: {}, returns: v.union(v.string(), v.null()), handler: async () => undefined }),
    wantsString: mutation({
      args: { body: v.string() },
      returns: v.string(),
      handler: async (ctx, { body }) => {
        await ctx.db.insert("notes", { body });
        return undefined as never;
      },
    }),
    count: query({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").collect()).length }),
  },
};

const api = {
  query: makeFunctionReference<"query", Record<string, never>, null>("nothing:query"),
  mutation: makeFunctionReference<"mutation", { body: string }, null>("nothing:mutation"),
  action: makeFunctionReference<"action", Record<string, never>, null>("nothing:action"),
  optional: makeFunctionReference<"query", Record<string, never>, string | null>("nothing:optional"),
  orNull: makeFunctionReference<"query", Record<string, never>, string | null>("nothing:orNull"),
  wantsString: makeFunctionReference<"mutation", { body: string }, string>("nothing:wantsString"),
  count: makeFunctionReference<"query", Record<string, never>, number>("nothing:count"),
};

let t: ReturnType<typeof walkinTest> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe("a handler that returns nothing", () => {
  it("passes `returns: v.null()` in a query, a mutation and an action, and answers null", async () => {
    t = walkinTest(schema, modules);
    expect(await t.query(api.query, {})).toBeNull();
    expect(await t.mutation(api.mutation, { body: "kept" })).toBeNull();
    expect(await t.action(api.action, {})).toBeNull();
    expect(await t.query(api.count, {})).toBe(1);
  });

  it("passes a validator that takes undefined or null", async () => {
    t = walkinTest(schema, modules);
    expect(await t.query(api.optional, {})).toBeNull();
    expect(await t.query(api.orNull, {})).toBeNull();
  });

  it("fails any other validator, naming the null it answered, and its writes are undone", async () => {
    t = walkinTest(schema, modules);
    await expect(t.mutation(api.wantsString, { body: "undone" })).rejects.toMatchObject({
      code: "MISUSE",
      message: expect.stringContaining("nothing:wantsString returned a value that does not match its returns validator"),
    });
    expect(await t.query(api.count, {})).toBe(0);
  });
});

describe("through a custom builder", () => {
  it("takes `returns: v.null()` with a handler that returns nothing, as the plain builders do", async () => {
    const withTag = customMutation(mutation, customCtx(() => ({ tag: "custom" })));
    const custom = {
      nothing: { ...modules.nothing, custom: withTag({ args: {}, returns: v.null(), handler: async () => {} }) },
    };
    t = walkinTest(schema, custom);
    expect(await t.mutation(makeFunctionReference<"mutation", Record<string, never>, null>("nothing:custom"), {})).toBeNull();
  });
});

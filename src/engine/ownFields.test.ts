/**
 * Field paths read a document's own fields only: a field named like a member of
 * Object.prototype (`constructor`, `toString`, `valueOf`) that a document lacks is missing,
 * in index keys and in `filter`, as any other missing field is.
 */
import { afterEach, describe, expect, it } from "vitest";
import { defineSchema, defineTable, makeFunctionReference, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";

const schema = defineSchema({
  things: defineTable({ name: v.string(), constructor: v.optional(v.string()), meta: v.optional(v.object({ toString: v.optional(v.string()) })) })
    .index("by_constructor", ["constructor"])
    .index("by_meta_toString", ["meta.toString"]),
});

const modules = {
  things: {
    add: mutation({
      args: { name: v.string(), constructor: v.optional(v.string()), meta: v.optional(v.object({ toString: v.optional(v.string()) })) },
      handler: (ctx, thing) => ctx.db.insert("things", thing),
    }),
    byConstructor: query({
      args: { value: v.optional(v.string()) },
      handler: async (ctx, { value }) => (await ctx.db.query("things").withIndex("by_constructor", (q) => q.eq("constructor", value)).collect()).map((t) => t.name),
    }),
    byMetaToString: query({
      args: { value: v.optional(v.string()) },
      handler: async (ctx, { value }) => (await ctx.db.query("things").withIndex("by_meta_toString", (q) => q.eq("meta.toString", value)).collect()).map((t) => t.name),
    }),
    withoutConstructor: query({
      args: {},
      handler: async (ctx) => (await ctx.db.query("things").filter((q) => q.eq(q.field("constructor"), undefined)).collect()).map((t) => t.name),
    }),
  },
};

const api = {
  // Loose args: TypeScript reads `constructor` and `toString` on any object literal as Object.prototype's.
  add: makeFunctionReference<"mutation", Record<string, unknown>, string>("things:add"),
  byConstructor: makeFunctionReference<"query", { value?: string }, string[]>("things:byConstructor"),
  byMetaToString: makeFunctionReference<"query", { value?: string }, string[]>("things:byMetaToString"),
  withoutConstructor: makeFunctionReference<"query", Record<string, never>, string[]>("things:withoutConstructor"),
};

let t: ReturnType<typeof walkinTest> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe("a field named like a member of Object.prototype", () => {
  it("is missing where a document lacks it: inserts index it as undefined, and queries find it so", async () => {
    t = walkinTest(schema, modules);
    await t.mutation(api.add, { name: "plain" });
    await t.mutation(api.add, { name: "empty meta", meta: {} });
    await t.mutation(api.add, { name: "built", constructor: "Ada", meta: { toString: "shown" } });
    expect(await t.query(api.byConstructor, {})).toEqual(["plain", "empty meta"]);
    expect(await t.query(api.byConstructor, { value: "Ada" })).toEqual(["built"]);
    expect(await t.query(api.byMetaToString, {})).toEqual(["plain", "empty meta"]);
    expect(await t.query(api.byMetaToString, { value: "shown" })).toEqual(["built"]);
    expect(await t.query(api.withoutConstructor, {})).toEqual(["plain", "empty meta"]);
  });
});

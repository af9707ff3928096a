/** Type tests of full-text search: index, field and filter names are checked as Convex checks them. */
import { describe, expectTypeOf, test } from "vitest";
import { v } from "../values/index.js";
import type { Id } from "../values/index.js";
import type { GenericQueryCtx } from "./registration.js";
import type { AnyDataModel } from "./dataModel.js";
import { defineSchema, defineTable, type DataModelFromSchemaDefinition } from "./schema.js";

const schema = defineSchema({
  messages: defineTable({ body: v.string(), channel: v.string(), pinned: v.boolean() })
    .index("by_channel", ["channel"])
    .searchIndex("search_body", { searchField: "body", filterFields: ["channel", "pinned"] })
    .searchIndex("search_channel", { searchField: "channel" }),
});
type DataModel = DataModelFromSchemaDefinition<typeof schema>;
declare const ctx: GenericQueryCtx<DataModel>;
declare const untyped: GenericQueryCtx<AnyDataModel>;

describe("withSearchIndex", () => {
  test("the data model lists each search index with its fields", () => {
    expectTypeOf<DataModel["messages"]["searchIndexes"]>().toEqualTypeOf<{
      search_body: { searchField: "body"; filterFields: "channel" | "pinned" };
      search_channel: { searchField: "channel"; filterFields: never };
    }>();
  });

  test("a search returns the table's documents", () => {
    const found = ctx.db.query("messages").withSearchIndex("search_body", (q) => q.search("body", "hi").eq("channel", "#general").eq("pinned", true)).take(10);
    expectTypeOf(found).toEqualTypeOf<Promise<Array<{ _id: Id<"messages">; _creationTime: number; body: string; channel: string; pinned: boolean }>>>();
  });

  test("names and values are checked", () => {
    // @ts-expect-error not a search index
    ctx.db.query("messages").withSearchIndex("by_channel", (q) => q.search("body", "hi"));
    // @ts-expect-error the index searches "body"
    ctx.db.query("messages").withSearchIndex("search_body", (q) => q.search("channel", "hi"));
    // @ts-expect-error "body" is not a filter field
    ctx.db.query("messages").withSearchIndex("search_body", (q) => q.search("body", "hi").eq("body", "x"));
    // @ts-expect-error a filter value of the field's type
    ctx.db.query("messages").withSearchIndex("search_body", (q) => q.search("body", "hi").eq("pinned", "yes"));
    // @ts-expect-error an index without filter fields takes no eq
    ctx.db.query("messages").withSearchIndex("search_channel", (q) => q.search("channel", "hi").eq("channel", "x"));
    // @ts-expect-error the callback must return the chain
    ctx.db.query("messages").withSearchIndex("search_body", () => undefined);
  });

  test("a search query is ordered by relevance: no order(), no second index", () => {
    const search = ctx.db.query("messages").withSearchIndex("search_body", (q) => q.search("body", "hi"));
    // @ts-expect-error relevance is the order
    void search.order;
    // @ts-expect-error one index per query
    void search.withIndex;
    expectTypeOf(search.filter((q) => q.eq(q.field("pinned"), true)).first()).toEqualTypeOf<Promise<{ _id: Id<"messages">; _creationTime: number; body: string; channel: string; pinned: boolean } | null>>();
  });

  test("untyped code may search any index", () => {
    void untyped.db.query("anything").withSearchIndex("whatever", (q) => q.search("field", "text").eq("other", 1));
  });

  test("the schema checks its fields", () => {
    // @ts-expect-error not a field of the table
    defineTable({ body: v.string() }).searchIndex("s", { searchField: "nope" });
    // @ts-expect-error filter fields are fields of the table
    defineTable({ body: v.string() }).searchIndex("s", { searchField: "body", filterFields: ["nope"] });
  });
});

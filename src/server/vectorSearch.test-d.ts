/** Type tests of vector search: the schema's vector indexes in the data model, and ctx.vectorSearch's answer. */
import { describe, expectTypeOf, test } from "vitest";
import { v } from "../values/index.js";
import type { Id } from "../values/index.js";
import type { GenericActionCtx } from "./registration.js";
import { defineSchema, defineTable, type DataModelFromSchemaDefinition } from "./schema.js";

const schema = defineSchema({
  movies: defineTable({ title: v.string(), genre: v.string(), year: v.number(), embedding: v.array(v.float64()) })
    .vectorIndex("by_embedding", { vectorField: "embedding", dimensions: 1536, filterFields: ["genre", "year"] })
    .vectorIndex("by_embedding_only", { vectorField: "embedding", dimensions: 1536 }),
});
type DataModel = DataModelFromSchemaDefinition<typeof schema>;
declare const ctx: GenericActionCtx<DataModel>;

describe("vectorIndex and ctx.vectorSearch", () => {
  test("the data model lists each vector index with its fields", () => {
    expectTypeOf<DataModel["movies"]["vectorIndexes"]>().toEqualTypeOf<{
      by_embedding: { vectorField: "embedding"; dimensions: number; filterFields: "genre" | "year" };
      by_embedding_only: { vectorField: "embedding"; dimensions: number; filterFields: never };
    }>();
  });

  test("a search answers the table's IDs with scores", () => {
    const found = ctx.vectorSearch("movies", "by_embedding", { vector: [0.1, 0.2], limit: 5, filter: (q) => q.or(q.eq("genre", "noir"), q.eq("year", 1950)) });
    expectTypeOf(found).toEqualTypeOf<Promise<Array<{ _id: Id<"movies">; _score: number }>>>();
  });

  test("the declaration's names are checked", () => {
    // @ts-expect-error not a field of the table
    defineTable({ embedding: v.array(v.float64()) }).vectorIndex("by_e", { vectorField: "embeding", dimensions: 3 });
    // @ts-expect-error not a field of the table
    defineTable({ embedding: v.array(v.float64()), genre: v.string() }).vectorIndex("by_e", { vectorField: "embedding", dimensions: 3, filterFields: ["genr"] });
    // @ts-expect-error dimensions is a number
    defineTable({ embedding: v.array(v.float64()) }).vectorIndex("by_e", { vectorField: "embedding", dimensions: "3" });
    // @ts-expect-error the query vector is an array of numbers
    void ctx.vectorSearch("movies", "by_embedding", { vector: "0.1,0.2" });
  });
});

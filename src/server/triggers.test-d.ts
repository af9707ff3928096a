/**
 * Type tests of triggers: a change narrows on its operation (no `oldDoc` for an insert, no
 * `newDoc` for a delete), its documents are the table's, and `wrapDB` keeps the ctx's type.
 */
import { describe, expectTypeOf, test } from "vitest";
import { v, type GenericId } from "../values/index.js";
import { customCtx, customMutation } from "./customFunctions.js";
import { mutation as mutationGeneric } from "./functions.js";
import { defineSchema, defineTable } from "./schema.js";
import type { DataModelFromSchemaDefinition } from "./index.js";
import type { GenericMutationCtx, MutationBuilder } from "./registration.js";
import { Triggers } from "./triggers.js";

const schema = defineSchema({ notes: defineTable({ text: v.string(), pinned: v.boolean() }), tags: defineTable({ name: v.string() }) });
type DM = DataModelFromSchemaDefinition<typeof schema>;
const mutation = mutationGeneric as MutationBuilder<DM, "public">;

describe("Triggers", () => {
  test("a change narrows on its operation, with the table's documents", () => {
    const triggers = new Triggers<DM>();
    triggers.register("notes", async (_ctx, change) => {
      expectTypeOf(change.id).toEqualTypeOf<GenericId<"notes">>();
      if (change.operation === "insert") {
        expectTypeOf(change.oldDoc).toEqualTypeOf<null>();
        expectTypeOf(change.newDoc.text).toEqualTypeOf<string>();
      } else if (change.operation === "delete") {
        expectTypeOf(change.newDoc).toEqualTypeOf<null>();
        expectTypeOf(change.oldDoc.pinned).toEqualTypeOf<boolean>();
      } else {
        expectTypeOf(change.newDoc._id).toEqualTypeOf<GenericId<"notes">>();
      }
    });
    // @ts-expect-error not a table of the schema
    triggers.register("nope", async () => {});
  });

  test("wrapDB keeps the mutation ctx's type for customCtx", () => {
    const triggers = new Triggers<DM>();
    const wrapped = customMutation(mutation, customCtx(triggers.wrapDB));
    wrapped({
      args: {},
      handler: async (ctx) => {
        expectTypeOf(ctx.db.insert).parameter(0).toEqualTypeOf<"notes" | "tags">();
        expectTypeOf(triggers.wrapDB<GenericMutationCtx<DM>>).returns.toEqualTypeOf<GenericMutationCtx<DM>>();
      },
    });
  });
});

/**
 * Type tests of row-level security: rules are typed by table (the document for read and
 * modify, the fields without system fields for insert), and the wrapped db keeps its type.
 */
import { describe, expectTypeOf, test } from "vitest";
import { v } from "../values/index.js";
import { defineSchema, defineTable } from "./schema.js";
import type { DataModelFromSchemaDefinition } from "./index.js";
import type { DatabaseReader, DatabaseWriter } from "./database.js";
import { wrapDatabaseReader, wrapDatabaseWriter, type Rules } from "./rowLevelSecurity.js";

const schema = defineSchema({ notes: defineTable({ owner: v.string(), text: v.string() }) });
type DM = DataModelFromSchemaDefinition<typeof schema>;
type Ctx = { me: string };

describe("Rules and the wrapped db", () => {
  test("each table's rules see its documents", () => {
    const rules = {
      notes: {
        read: async (ctx, note) => {
          expectTypeOf(note.text).toEqualTypeOf<string>();
          expectTypeOf(note._creationTime).toEqualTypeOf<number>();
          return note.owner === ctx.me;
        },
        insert: async (_ctx, note) => {
          expectTypeOf(note).toEqualTypeOf<{ owner: string; text: string }>();
          return true;
        },
      },
    } satisfies Rules<Ctx, DM>;
    // @ts-expect-error not a table of the schema
    const wrong: Rules<Ctx, DM> = { nope: {} };
    void rules;
    void wrong;
  });

  test("the wrapped reader and writer keep the db's type", () => {
    const reader = {} as DatabaseReader<DM>;
    const writer = {} as DatabaseWriter<DM>;
    expectTypeOf(wrapDatabaseReader({ me: "a" }, reader, {})).toEqualTypeOf<DatabaseReader<DM>>();
    expectTypeOf(wrapDatabaseWriter({ me: "a" }, writer, {}, { defaultPolicy: "deny" })).toEqualTypeOf<DatabaseWriter<DM>>();
  });
});

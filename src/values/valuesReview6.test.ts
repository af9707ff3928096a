/**
 * Review 6 of the values layer and the schema's validator walk. Each defect's cases failed
 * before its fix: Walk-in's validators lacked Convex's `isConvexValidator` mark, and a table
 * whose own field starts with "_" was accepted at definition, though no document could ever be
 * written with it. The cases marked "still" guard what the fixes must keep.
 */
import { describe, expect, test } from "vitest";
import { defineSchema, defineTable } from "../server/index.js";
import { SYSTEM_TABLES } from "../engine/systemTables.js";
import { isValidator, isWalkinError, v, type GenericValidator, type PropertyValidators } from "./index.js";

function misuseMessage(define: () => unknown): string {
  try {
    define();
  } catch (error) {
    expect(isWalkinError(error) && error.code).toBe("MISUSE");
    return (error as Error).message;
  }
  throw new Error("expected a MISUSE error, but the definition was accepted");
}

describe("isConvexValidator, Convex's public mark of a validator", () => {
  // Code written for Convex tells a validator from a record of validators this way
  // (Convex's own `isValidator` is not exported from convex/values).
  const asValidator = (input: GenericValidator | PropertyValidators): GenericValidator =>
    (input as { isConvexValidator?: unknown }).isConvexValidator === true ? (input as GenericValidator) : v.object(input as PropertyValidators);

  test("is true on every kind of validator, optional and derived ones included", () => {
    const object = v.object({ a: v.string() });
    const all = [
      v.string(), v.number(), v.int64(), v.boolean(), v.null(), v.bytes(), v.any(), v.id("users"), v.literal("x"),
      v.array(v.string()), object, v.record(v.string(), v.number()), v.union(v.string(), v.null()), v.nullable(v.string()),
      v.optional(v.string()), object.pick("a"), object.partial(), object.extend({ b: v.number() }), object.omit("a"),
    ];
    for (const validator of all) expect(validator.isConvexValidator).toBe(true);
  });

  test("lets such code take a validator or a record of validators", () => {
    const record = { body: v.string() };
    expect(asValidator(record).kind).toBe("object");
    const union = v.union(v.object({ a: v.string() }), v.object({ b: v.string() }));
    expect(asValidator(union)).toBe(union);
  });

  test("a record of validators does not have it", () => {
    expect((({ body: v.string() }) as { isConvexValidator?: unknown }).isConvexValidator).toBeUndefined();
  });

  test("still: it stays out of the validator's own keys, JSON and equality", () => {
    const validator = v.object({ a: v.string() });
    expect(Object.keys(validator)).not.toContain("isConvexValidator");
    expect(JSON.stringify(validator)).not.toContain("isConvexValidator");
    expect(v.string()).toEqual({ kind: "string", isOptional: "required" });
    expect(isValidator(validator)).toBe(true);
    expect(isValidator({ isConvexValidator: true, kind: "string" })).toBe(false);
  });
});

describe('a table field whose name starts with "_"', () => {
  test("is refused by defineTable, saying what to rename it to", () => {
    const message = misuseMessage(() => defineTable({ _secret: v.string(), name: v.string() }));
    expect(message).toContain('field "_secret" starts with "_", which is reserved for system fields');
    expect(message).toContain('Rename the field, e.g. to "secret"');
  });

  test("is refused in an object validator, and in any member of a union of objects", () => {
    expect(misuseMessage(() => defineTable(v.object({ __internal: v.optional(v.number()) })))).toContain('e.g. to "internal"');
    const union = v.union(v.object({ kind: v.literal("a") }), v.object({ kind: v.literal("b"), _cache: v.any() }));
    expect(misuseMessage(() => defineTable(union))).toContain('field "_cache"');
  });

  test("suggests no name that the table already uses, nor one that is not a name", () => {
    expect(misuseMessage(() => defineTable({ _name: v.string(), name: v.string() }))).toContain("Rename the field to start with a letter");
    expect(misuseMessage(() => defineTable({ _: v.string() }))).toContain("Rename the field to start with a letter");
  });

  test("_id and _creationTime: every document has them already", () => {
    expect(misuseMessage(() => defineTable({ _id: v.id("users"), name: v.string() }))).toContain(
      '"_id" is a system field every document already has; remove it from defineTable({...})',
    );
    expect(misuseMessage(() => defineTable(v.object({ _creationTime: v.number() })))).toContain('"_creationTime" is a system field');
  });

  test("still: nested objects may have such fields, and other names are untouched", () => {
    const table = defineTable({ meta: v.object({ _source: v.string() }), list: v.array(v.object({ _k: v.number() })), a_b: v.string() });
    expect(defineSchema({ things: table }).tables.things).toBe(table);
    expect(defineTable(v.any()).validator.kind).toBe("any");
  });

  test("still: Walk-in's own system tables are defined", () => {
    expect(Object.keys(SYSTEM_TABLES)).toContain("_scheduled_functions");
  });
});

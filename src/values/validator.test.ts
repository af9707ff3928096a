import { describe, expect, test } from "vitest";
import { isWalkinError } from "./errors.js";
import { asObjectValidator, isValidator, v, type GenericValidator } from "./validator.js";

function misuseOf(build: () => unknown): string {
  try {
    build();
  } catch (error) {
    if (!isWalkinError(error) || error.code !== "MISUSE") throw error;
    return error.message;
  }
  throw new Error("no misuse reported");
}

describe("v builds inspectable validators", () => {
  test.each([
    ["string", v.string()],
    ["float64", v.number()],
    ["float64", v.float64()],
    ["int64", v.int64()],
    ["int64", v.bigint()],
    ["boolean", v.boolean()],
    ["null", v.null()],
    ["bytes", v.bytes()],
    ["any", v.any()],
  ] as const)("%s", (kind, validator) => {
    expect(validator).toEqual({ kind, isOptional: "required" });
    expect(Object.keys(validator)).toEqual(["kind", "isOptional"]);
  });

  test("kind-specific fields", () => {
    expect(v.id("users")).toEqual({ kind: "id", tableName: "users", isOptional: "required" });
    expect(v.literal(4n)).toEqual({ kind: "literal", value: 4n, isOptional: "required" });
    const element = v.string();
    expect(v.array(element).element).toBe(element);
    const fields = { a: v.string(), b: v.optional(v.null()) };
    expect(v.object(fields).fields).toEqual(fields);
    const record = v.record(v.string(), v.boolean());
    expect([record.kind, record.key.kind, record.value.kind]).toEqual(["record", "string", "boolean"]);
    const union = v.union(v.string(), v.number());
    expect(union.members.map((m) => m.kind)).toEqual(["string", "float64"]);
  });

  test("the phantom fields exist only in types", () => {
    expect(v.string().type).toBeUndefined();
    expect(v.object({}).fieldPaths).toBeUndefined();
  });

  test("validators serialize to plain JSON", () => {
    expect(JSON.parse(JSON.stringify(v.object({ a: v.optional(v.array(v.id("t"))) })))).toEqual({
      kind: "object",
      isOptional: "required",
      fields: { a: { kind: "array", isOptional: "optional", element: { kind: "id", tableName: "t", isOptional: "required" } } },
    });
  });
});

describe("v.nullable (Convex's name)", () => {
  test("is a union with null, and refuses an optional validator", () => {
    expect(v.nullable(v.string())).toEqual(v.union(v.string(), v.null()));
    expect(misuseOf(() => v.nullable(v.optional(v.string()) as never))).toContain("v.optional(v.nullable(...))");
  });
});

describe("validators are immutable", () => {
  test("v.optional returns a new validator and leaves the original required", () => {
    const name = v.string();
    const maybe = v.optional(name);
    expect(maybe).not.toBe(name);
    expect(name.isOptional).toBe("required");
    expect(maybe).toEqual({ kind: "string", isOptional: "optional" });
    expect(v.optional(maybe)).toBe(maybe);
  });

  test("validators, their fields and their members are frozen", () => {
    const fields: Record<string, GenericValidator> = { a: v.string() };
    const object = v.object(fields);
    fields.b = v.number(); // the caller's object may change later; the validator does not
    expect(Object.keys(object.fields)).toEqual(["a"]);
    expect(Object.isFrozen(object)).toBe(true);
    expect(Object.isFrozen(object.fields)).toBe(true);
    expect(Object.isFrozen(v.union(v.null()).members)).toBe(true);
    expect(() => {
      (object as { kind: string }).kind = "string";
    }).toThrow(TypeError);
  });
});

describe("isValidator", () => {
  test("recognises only what v built", () => {
    expect(isValidator(v.optional(v.any()))).toBe(true);
    expect(isValidator({ kind: "string", isOptional: "required" })).toBe(false);
    expect(isValidator({ kind: v.string() })).toBe(false);
    expect(isValidator(null)).toBe(false);
  });
});

describe("misuse is reported at definition", () => {
  test("v.optional inside an array", () => {
    expect(misuseOf(() => v.array(v.optional(v.string()) as never))).toBe(
      "An array element cannot be v.optional(...): v.optional only marks an object field as possibly absent. For elements that may be missing, use v.array(v.union(x, v.null())).",
    );
  });

  test("v.optional as a union member or record key or value", () => {
    expect(misuseOf(() => v.union(v.string(), v.optional(v.number()) as never))).toMatch(
      /^A union member cannot be v\.optional\(\.\.\.\).*Make the whole union optional: v\.optional\(v\.union\(\.\.\.\)\)\.$/,
    );
    expect(misuseOf(() => v.record(v.string(), v.optional(v.number()) as never))).toMatch(/^A record value cannot be v\.optional/);
    expect(misuseOf(() => v.record(v.optional(v.string()) as never, v.number()))).toMatch(/^A record key cannot be v\.optional/);
  });

  test("record keys that are not strings", () => {
    expect(misuseOf(() => v.record(v.number() as never, v.number()))).toBe(
      'v.record keys are strings: use v.string(), v.id("table"), v.literal("...") or a union of those, not v.float64()',
    );
    expect(misuseOf(() => v.record(v.union(v.literal("a"), v.literal(1)) as never, v.null()))).toMatch(/^v\.record keys are strings/);
    expect(() => v.record(v.union(v.literal("a"), v.id("t"), v.string()), v.null())).not.toThrow();
  });

  test("things that are not validators", () => {
    expect(misuseOf(() => v.array("string" as never))).toBe(
      "v.array(element) expects a validator such as v.string(), received string",
    );
    expect(misuseOf(() => v.object({ a: { kind: "string" } } as never))).toBe(
      'v.object: field "a" expects a validator such as v.string(), received an object',
    );
    expect(misuseOf(() => v.object(v.string() as never))).toMatch(/^v\.object\(fields\) expects an object of validators/);
    expect(misuseOf(() => v.union(v.string(), undefined as never))).toMatch(/received undefined$/);
  });

  test("bad field names, table names and literals", () => {
    expect(misuseOf(() => v.object({ $kind: v.string() }))).toBe(
      'v.object: field "$kind": field names must not start with "$" (it marks special values in the wire encoding): rename the field',
    );
    expect(misuseOf(() => v.id(""))).toBe('v.id(tableName) needs the name of a table, e.g. v.id("users"), received string');
    expect(misuseOf(() => v.literal(null as never))).toBe(
      "v.literal(value) takes a string, number, bigint or boolean, received null",
    );
  });
});

describe("asObjectValidator", () => {
  test("wraps a record of validators in v.object", () => {
    const validator = asObjectValidator({ body: v.string() });
    expect(validator).toEqual(v.object({ body: v.string() }));
    expect(isValidator(validator)).toBe(true);
  });

  test("a record whose fields are named like validator properties is still a record", () => {
    const validator = asObjectValidator({ kind: v.string(), isOptional: v.boolean() });
    expect(validator.kind).toBe("object");
    expect(Object.keys(validator.fields)).toEqual(["kind", "isOptional"]);
  });

  test("returns object validators and v.any() as they are", () => {
    const object = v.object({ n: v.int64() });
    expect(asObjectValidator(object)).toBe(object);
    const any = v.any();
    expect(asObjectValidator(any)).toBe(any);
  });

  test("refuses other validators", () => {
    expect(misuseOf(() => asObjectValidator(v.string()))).toBe(
      "Expected an object of validators like { name: v.string() } or v.object({...}), received v.string()",
    );
    expect(misuseOf(() => asObjectValidator(v.optional(v.object({})) as never))).toMatch(/received an optional validator$/);
  });
});

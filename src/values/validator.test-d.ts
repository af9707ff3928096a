import { describe, expectTypeOf, test } from "vitest";
import type { GenericId, Id } from "./id.js";
import type { Value } from "./value.js";
import {
  asObjectValidator,
  v,
  type FieldPaths,
  type Infer,
  type ObjectType,
  type PropertyValidators,
  type VObject,
  type VString,
  type Validator,
} from "./validator.js";

describe("Infer", () => {
  test("scalars", () => {
    expectTypeOf<Infer<ReturnType<typeof v.string>>>().toEqualTypeOf<string>();
    expectTypeOf<Infer<ReturnType<typeof v.number>>>().toEqualTypeOf<number>();
    expectTypeOf<Infer<ReturnType<typeof v.float64>>>().toEqualTypeOf<number>();
    expectTypeOf<Infer<ReturnType<typeof v.int64>>>().toEqualTypeOf<bigint>();
    expectTypeOf<Infer<ReturnType<typeof v.boolean>>>().toEqualTypeOf<boolean>();
    expectTypeOf<Infer<ReturnType<typeof v.null>>>().toEqualTypeOf<null>();
    expectTypeOf<Infer<ReturnType<typeof v.bytes>>>().toEqualTypeOf<ArrayBuffer>();
    expectTypeOf<Infer<ReturnType<typeof v.any>>>().toBeAny();
  });

  test("ids carry their table", () => {
    const userId = v.id("users");
    expectTypeOf<Infer<typeof userId>>().toEqualTypeOf<Id<"users">>();
    expectTypeOf(userId.tableName).toEqualTypeOf<"users">();
    expectTypeOf<Id<"users">>().not.toEqualTypeOf<Id<"messages">>();
    expectTypeOf<Id<"users">>().toMatchTypeOf<string>();
    expectTypeOf<Id<"users">>().toEqualTypeOf<GenericId<"users">>();
  });

  test("literals and unions", () => {
    const kind = v.union(v.literal("text"), v.literal("image"), v.literal(3), v.literal(4n), v.literal(true));
    expectTypeOf<Infer<typeof kind>>().toEqualTypeOf<"text" | "image" | 3 | 4n | true>();
    expectTypeOf(v.literal("a").value).toEqualTypeOf<"a">();
    const nullable = v.union(v.string(), v.null());
    expectTypeOf<Infer<typeof nullable>>().toEqualTypeOf<string | null>();
  });

  test("objects with optional fields become `?:`", () => {
    const user = v.object({
      name: v.string(),
      age: v.optional(v.number()),
      friend: v.optional(v.id("users")),
    });
    expectTypeOf<Infer<typeof user>>().toEqualTypeOf<{ name: string; age?: number; friend?: Id<"users"> }>();
    expectTypeOf<Infer<typeof user>>().not.toEqualTypeOf<{ name: string; age: number | undefined; friend?: Id<"users"> }>();
  });

  test("nested arrays, objects and records", () => {
    const order = v.object({
      items: v.array(v.object({ sku: v.string(), qty: v.int64() })),
      address: v.optional(v.object({ city: v.string(), zip: v.optional(v.string()) })),
      tags: v.record(v.string(), v.array(v.string())),
      byUser: v.record(v.id("users"), v.boolean()),
      limits: v.record(v.union(v.literal("min"), v.literal("max")), v.number()),
    });
    expectTypeOf<Infer<typeof order>>().toEqualTypeOf<{
      items: { sku: string; qty: bigint }[];
      address?: { city: string; zip?: string };
      tags: Record<string, string[]>;
      byUser: Partial<Record<Id<"users">, boolean>>;
      limits: { min?: number; max?: number };
    }>();
  });

  test("inferred types are values", () => {
    const doc = v.object({ a: v.optional(v.array(v.union(v.bytes(), v.int64()))), b: v.record(v.string(), v.null()) });
    expectTypeOf<Infer<typeof doc>>().toMatchTypeOf<Value>();
  });
});

describe("v.optional", () => {
  test("marks the validator optional and admits undefined", () => {
    const maybe = v.optional(v.string());
    expectTypeOf(maybe.isOptional).toEqualTypeOf<"optional">();
    expectTypeOf(maybe.kind).toEqualTypeOf<"string">();
    expectTypeOf<Infer<typeof maybe>>().toEqualTypeOf<string | undefined>();
    expectTypeOf(v.string().isOptional).toEqualTypeOf<"required">();
  });

  test("keeps kind-specific fields", () => {
    const maybe = v.optional(v.object({ a: v.id("t") }));
    expectTypeOf(maybe.fields.a.tableName).toEqualTypeOf<"t">();
    expectTypeOf(v.optional(v.id("t")).tableName).toEqualTypeOf<"t">();
  });

  test("is refused where it has no meaning", () => {
    // @ts-expect-error an array element cannot be optional
    v.array(v.optional(v.string()));
    // @ts-expect-error a union member cannot be optional
    v.union(v.string(), v.optional(v.number()));
    // @ts-expect-error record values cannot be optional
    v.record(v.string(), v.optional(v.number()));
  });
});

describe("v.record keys", () => {
  test("must be string-like", () => {
    v.record(v.id("users"), v.number());
    v.record(v.literal("a"), v.number());
    // @ts-expect-error numbers cannot be keys
    v.record(v.number(), v.number());
  });
});

describe("FieldPaths", () => {
  test("an object's field names and nested dotted paths", () => {
    const person = v.object({
      name: v.string(),
      address: v.object({ city: v.string(), geo: v.optional(v.object({ lat: v.number() })) }),
      tags: v.array(v.string()),
    });
    expectTypeOf<FieldPaths<typeof person>>().toEqualTypeOf<
      "name" | "address" | "address.city" | "address.geo" | "address.geo.lat" | "tags"
    >();
  });

  test("records and any open every path below them; unions join their members'", () => {
    const doc = v.object({ meta: v.record(v.string(), v.string()), data: v.any() });
    expectTypeOf<FieldPaths<typeof doc>>().toEqualTypeOf<"meta" | `meta.${string}` | "data" | `data.${string}`>();
    const either = v.union(v.object({ a: v.string() }), v.object({ b: v.object({ c: v.null() }) }));
    expectTypeOf<FieldPaths<typeof either>>().toEqualTypeOf<"a" | "b" | "b.c">();
    expectTypeOf<FieldPaths<ReturnType<typeof v.string>>>().toBeNever();
  });
});

describe("generic types", () => {
  test("ObjectType and PropertyValidators", () => {
    type Fields = { body: VString; to: ReturnType<typeof v.optional<ReturnType<typeof v.id<"users">>>> };
    expectTypeOf<Fields>().toMatchTypeOf<PropertyValidators>();
    expectTypeOf<ObjectType<Fields>>().toEqualTypeOf<{ body: string; to?: Id<"users"> }>();
  });

  test("every validator is a Validator", () => {
    expectTypeOf(v.string()).toMatchTypeOf<Validator<string>>();
    expectTypeOf(v.object({ a: v.string() })).toMatchTypeOf<Validator<{ a: string }, "required", string>>();
    expectTypeOf(v.optional(v.number())).toMatchTypeOf<Validator<number | undefined, "optional">>();
    expectTypeOf(v.number()).not.toMatchTypeOf<Validator<string>>();
  });

  test("asObjectValidator takes fields or an object validator", () => {
    const fromFields = asObjectValidator({ body: v.string() });
    expectTypeOf<Infer<typeof fromFields>>().toEqualTypeOf<{ body: string }>();
    expectTypeOf(fromFields).toMatchTypeOf<VObject>();
    const given = v.object({ n: v.optional(v.int64()) });
    expectTypeOf(asObjectValidator(given)).toEqualTypeOf(given);
  });
});

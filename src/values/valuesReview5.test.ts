/**
 * Review 5 of the values layer. Each defect's cases failed before its fix: a validator field
 * named "__proto__" became the fields' prototype, a union's one member of a scalar's type did
 * not explain its refusal, and literals that no value can equal were accepted. The cases marked
 * "still" guard what the fixes must keep.
 */
import { describe, expect, test } from "vitest";
import { normalizeValue, v, validateResult, type Value } from "./index.js";

// A field named "__proto__" is a valid field name (Convex allows it, and JSON.parse makes it an
// own field); validators must keep it a field instead of setting a prototype with it.
describe('a validator field named "__proto__"', () => {
  const withProto = () => v.object({ ["__proto__"]: v.string(), other: v.number() });
  const parsed = (text: string) => JSON.parse(text) as Value;

  test("is one of the object's fields", () => {
    expect(Object.keys(withProto().fields).sort()).toEqual(["__proto__", "other"]);
    expect(Object.getPrototypeOf(withProto().fields)).toBe(Object.prototype);
  });

  test("is checked like any other field", () => {
    expect(validateResult(withProto(), parsed('{"__proto__": "a", "other": 1}'))).toEqual({ ok: true });
    expect(validateResult(withProto(), parsed('{"other": 1}'), { path: "args" })).toMatchObject({
      ok: false,
      message: "args.__proto__: missing required field (expected string)",
    });
    expect(validateResult(withProto(), parsed('{"__proto__": 5, "other": 1}'), { path: "args" })).toMatchObject({
      ok: false,
      message: "args.__proto__: expected string, received number",
    });
  });

  test("survives pick, partial, extend and omit", () => {
    const object = withProto();
    expect(Object.keys(object.pick("__proto__").fields)).toEqual(["__proto__"]);
    const partial = object.partial();
    expect(Object.keys(partial.fields).sort()).toEqual(["__proto__", "other"]);
    expect(partial.fields["__proto__"].isOptional).toBe("optional");
    expect(Object.keys(object.extend({ more: v.null() }).fields).sort()).toEqual(["__proto__", "more", "other"]);
    expect(Object.keys(object.omit("other").fields)).toEqual(["__proto__"]);
  });

  test("is normalized as a field, not set as the result's prototype", () => {
    const upper = v.formattedString({ name: "a code", check: () => null, normalize: (s) => s.toUpperCase() });
    const object = v.object({ ["__proto__"]: upper });
    const out = normalizeValue(object, parsed('{"__proto__": "abc"}')) as Record<string, Value>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out, "__proto__")?.value).toBe("ABC");
  });
});

// `v.nullable(v.id("users"))` (or any union with one member of the received value's type) given
// a string that is not such an ID said "expected Id<"users"> | null, received string": the
// caller did send a string, and learned neither that it was the ID of another table nor which
// value it was. The one member that takes strings explains its own failure, as it does alone.
describe("a union whose only member of the value's type rejects it", () => {
  const notAnId = { path: "args", isIdOfTable: () => false };

  test("v.nullable(v.id(...)) says the string is not an ID of the table", () => {
    expect(validateResult(v.object({ owner: v.nullable(v.id("users")) }), { owner: "k57abc" }, notAnId)).toMatchObject({
      ok: false,
      message: 'args.owner: expected an ID of table "users", received "k57abc"',
    });
    expect(validateResult(v.union(v.id("users"), v.number()), "k57abc", notAnId)).toMatchObject({
      message: 'args: expected an ID of table "users", received "k57abc"',
    });
  });

  test("a formatted string in a union gives the format's own problem", () => {
    const lowercase = v.formattedString({ name: "a lowercase word", check: (s) => (/^[a-z]+$/.test(s) ? null : "use a-z only") });
    expect(validateResult(v.nullable(lowercase), "Hello", { path: "args.word" })).toMatchObject({
      message: "args.word: expected a lowercase word: use a-z only",
    });
  });

  test("an int64 out of range in a union says so, not 'expected bigint, received bigint'", () => {
    expect(validateResult(v.nullable(v.int64()), 2n ** 64n, { path: "args.n" })).toMatchObject({
      message: "args.n: bigint is outside the signed 64-bit range of int64 (-2^63 to 2^63-1)",
    });
  });

  test("unions of literals, or of several members of that type, still list what they accept", () => {
    expect(validateResult(v.union(v.literal("a"), v.null()), "b")).toMatchObject({ message: 'value: expected "a" | null, received "b"' });
    expect(validateResult(v.union(v.id("users"), v.literal("none")), "x", notAnId)).toMatchObject({
      message: 'args: expected Id<"users"> | "none", received "x"',
    });
    expect(validateResult(v.union(v.id("users"), v.id("teams")), "x", notAnId)).toMatchObject({
      message: 'args: expected Id<"users"> | Id<"teams">, received string',
    });
  });
});

// "Misuse is reported when the validator is built": a literal that is not itself a value (a
// bigint outside int64, a string with an unpaired surrogate) can never be sent or stored, so a
// function taking it could never be called and a field holding it never written. Convex refuses
// such a literal when the functions are pushed (its JSON form cannot be made).
describe("a literal that is not a value", () => {
  const misuseOf = (build: () => unknown): string => {
    try {
      build();
    } catch (error) {
      expect((error as { code?: string }).code).toBe("MISUSE");
      return (error as Error).message;
    }
    throw new Error("expected a MISUSE error");
  };

  test("is refused when the validator is built, saying why", () => {
    expect(misuseOf(() => v.literal(2n ** 63n))).toMatch(/^v\.literal\(value\): bigint is outside the signed 64-bit range of int64/);
    expect(misuseOf(() => v.literal("\uD83D"))).toMatch(/^v\.literal\(value\): strings must be valid Unicode, found an unpaired surrogate U\+D83D/);
  });

  test("the limits themselves, and special numbers, are literals", () => {
    expect(() => v.literal(2n ** 63n - 1n)).not.toThrow();
    expect(() => v.literal(-(2n ** 63n))).not.toThrow();
    expect(() => v.literal(NaN)).not.toThrow();
    expect(() => v.literal(-0)).not.toThrow();
    expect(() => v.literal("\uD83D\uDE00")).not.toThrow();
  });
});

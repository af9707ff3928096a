import { hasNormalizer, normalizeValue } from "./normalize.js";
import { describe, expect, test } from "vitest";
import { isWalkinError } from "./errors.js";
import { validate, validateResult, type ValidateOptions } from "./validate.js";
import { v, type GenericValidator } from "./validator.js";

/** The message validate throws, with the root path "args". */
function messageOf(validator: GenericValidator, value: unknown, options: ValidateOptions = {}): string {
  try {
    validate(validator, value, { path: "args", ...options });
  } catch (error) {
    if (!isWalkinError(error) || error.code !== "INVALID_ARGUMENT") throw error;
    return error.message;
  }
  throw new Error("validate accepted the value");
}

function accepts(validator: GenericValidator, value: unknown, options?: ValidateOptions): boolean {
  return validateResult(validator, value, options).ok;
}

describe("scalars", () => {
  test.each<[string, GenericValidator, unknown[], [unknown, string][]]>([
    ["string", v.string(), ["", "x"], [[1, "number"], [null, "null"], [undefined, "undefined"]]],
    ["number", v.number(), [0, -0, 1.5, NaN, -Infinity], [[1n, "bigint"], ["1", "string"]]],
    ["number", v.float64(), [Infinity], [[true, "boolean"]]],
    ["bigint", v.int64(), [0n, -(2n ** 63n), 2n ** 63n - 1n], [[1, "number"], ["1", "string"]]],
    ["boolean", v.boolean(), [true, false], [[0, "number"], ["true", "string"]]],
    ["null", v.null(), [null], [[undefined, "undefined"], [0, "number"], [{}, "object"]]],
    ["ArrayBuffer", v.bytes(), [new ArrayBuffer(0)], [[new Uint8Array(1), "Uint8Array"], [[1], "array"], ["AQ==", "string"]]],
  ])("%s", (expected, validator, good, bad) => {
    for (const value of good) expect(accepts(validator, value)).toBe(true);
    for (const [value, received] of bad) {
      expect(messageOf(validator, value)).toBe(`args: expected ${expected}, received ${received}`);
    }
  });

  test("int64 outside the signed 64-bit range", () => {
    expect(messageOf(v.int64(), 2n ** 63n)).toBe(
      "args: bigint is outside the signed 64-bit range of int64 (-2^63 to 2^63-1)",
    );
  });

  test("any accepts every value but not an absent one", () => {
    for (const value of [null, 1, "x", [], {}, new ArrayBuffer(1), 3n]) expect(accepts(v.any(), value)).toBe(true);
    expect(messageOf(v.any(), undefined)).toBe("args: expected any, received undefined");
  });
});

describe("literals", () => {
  test("match exactly and print what they received", () => {
    expect(accepts(v.literal("a"), "a")).toBe(true);
    expect(accepts(v.literal(3n), 3n)).toBe(true);
    expect(accepts(v.literal(false), false)).toBe(true);
    expect(messageOf(v.literal("a"), "b")).toBe('args: expected "a", received "b"');
    expect(messageOf(v.literal(3n), 3)).toBe("args: expected 3n, received 3");
    // Literals match as values are equal everywhere else (index keys, compareValues, Convex's
    // check): -0 is not 0, so a document that passed v.literal(0) is found by eq(field, 0).
    expect(accepts(v.literal(0), -0)).toBe(false);
    expect(accepts(v.literal(NaN), NaN)).toBe(true);
    expect(messageOf(v.literal(-0), 1)).toBe("args: expected -0, received 1");
    expect(messageOf(v.literal(true), { x: 1 })).toBe("args: expected true, received object");
  });

  test("a union of literals lists them", () => {
    const kind = v.object({ kind: v.union(v.literal("a"), v.literal("b")) });
    expect(messageOf(kind, { kind: "c" })).toBe('args.kind: expected "a" | "b", received "c"');
  });
});

describe("ids", () => {
  const isIdOfTable = (table: string, id: string) => id.startsWith(`${table}:`);

  test("any string passes without isIdOfTable", () => {
    expect(accepts(v.id("users"), "whatever")).toBe(true);
    expect(messageOf(v.id("users"), 12)).toBe('args: expected an ID of table "users", received number');
  });

  test("isIdOfTable decides, and long IDs are cut", () => {
    const userId = v.object({ userId: v.id("users") });
    expect(accepts(userId, { userId: "users:1" }, { isIdOfTable })).toBe(true);
    expect(messageOf(userId, { userId: "abc" }, { isIdOfTable })).toBe(
      'args.userId: expected an ID of table "users", received "abc"',
    );
    expect(messageOf(userId, { userId: "x".repeat(10_000) }, { isIdOfTable })).toBe(
      `args.userId: expected an ID of table "users", received "${"x".repeat(40)}..."`,
    );
  });
});

describe("arrays", () => {
  test("check every element and name its index", () => {
    const items = v.object({ items: v.array(v.object({ qty: v.number() })) });
    expect(accepts(items, { items: [] })).toBe(true);
    expect(messageOf(items, { items: [{ qty: 1 }, { qty: 2 }, { qty: "3" }] })).toBe(
      "args.items[2].qty: expected number, received string",
    );
    expect(messageOf(items, { items: { 0: { qty: 1 } } })).toBe("args.items: expected array, received object");
    expect(messageOf(v.array(v.null()), [null, , null])).toBe("args[1]: expected null, received undefined");
  });
});

describe("objects", () => {
  const user = v.object({ name: v.string(), nickname: v.optional(v.string()) });

  test("optional fields may be absent or undefined", () => {
    expect(accepts(user, { name: "Ada" })).toBe(true);
    expect(accepts(user, { name: "Ada", nickname: undefined })).toBe(true);
    expect(accepts(user, { name: "Ada", nickname: "A" })).toBe(true);
    expect(messageOf(user, { name: "Ada", nickname: null })).toBe("args.nickname: expected string, received null");
  });

  test("a missing required field", () => {
    expect(messageOf(v.object({ user }), { user: {} })).toBe("args.user.name: missing required field (expected string)");
    expect(messageOf(user, { name: undefined })).toBe("args.name: missing required field (expected string)");
  });

  test("an unexpected field, unless it is absent", () => {
    const ab = v.object({ a: v.number(), b: v.optional(v.number()) });
    expect(messageOf(ab, { a: 1, extra: true })).toBe("args.extra: unexpected field (the validator allows: a, b)");
    expect(accepts(ab, { a: 1, extra: undefined })).toBe(true);
    expect(messageOf(v.object({}), { x: 1 })).toBe("args.x: unexpected field (the validator allows no fields)");
  });

  test("fields are never found on the prototype", () => {
    expect(messageOf(v.object({ toString: v.string() }), {})).toBe(
      "args.toString: missing required field (expected string)",
    );
  });

  test("only plain objects are objects", () => {
    expect(messageOf(user, new Date())).toBe("args: expected object, received Date");
    expect(messageOf(user, ["Ada"])).toBe("args: expected object, received array");
    expect(messageOf(user, null)).toBe("args: expected object, received null");
    expect(accepts(v.object({ a: v.null() }), Object.assign(Object.create(null) as object, { a: null }))).toBe(true);
  });

  test("odd keys are quoted in the path", () => {
    expect(messageOf(v.object({ "first name": v.string() }), { "first name": 1 })).toBe(
      'args["first name"]: expected string, received number',
    );
  });
});

describe("records", () => {
  const scores = v.record(v.string(), v.number());

  test("check every key and value", () => {
    expect(accepts(scores, {})).toBe(true);
    expect(accepts(scores, { ada: 1, bob: 2, gone: undefined })).toBe(true);
    expect(messageOf(scores, { ada: 1, bob: "2" })).toBe("args.bob: expected number, received string");
    expect(messageOf(scores, [1])).toBe("args: expected object, received array");
  });

  test("keys failing the key validator", () => {
    const limits = v.record(v.union(v.literal("min"), v.literal("max")), v.number());
    expect(accepts(limits, { min: 1 })).toBe(true);
    expect(messageOf(limits, { min: 1, avg: 2 })).toBe('args.avg: invalid key: expected "min" | "max", received "avg"');
    const byUser = v.record(v.id("users"), v.boolean());
    expect(messageOf(byUser, { "users:1": true, "posts:1": true }, { isIdOfTable: (t, id) => id.startsWith(t) })).toBe(
      'args["posts:1"]: invalid key: expected an ID of table "users", received "posts:1"',
    );
  });
});

describe("unions", () => {
  test("accept any member", () => {
    const either = v.union(v.string(), v.number(), v.null());
    for (const value of ["", 1, null]) expect(accepts(either, value)).toBe(true);
    expect(messageOf(v.object({ x: v.union(v.string(), v.number()) }), { x: true })).toBe(
      "args.x: expected string | number, received boolean",
    );
  });

  test("nested unions are flattened in messages", () => {
    const nested = v.union(v.union(v.string(), v.id("users")), v.union(v.null(), v.string()));
    expect(messageOf(nested, 1)).toBe('args: expected string | Id<"users"> | null, received number');
  });

  test("descend into the one member with the value's shape", () => {
    const shape = v.union(v.string(), v.object({ a: v.number() }), v.array(v.string()));
    expect(messageOf(shape, { a: "1" })).toBe("args.a: expected number, received string");
    expect(messageOf(shape, ["a", 2])).toBe("args[1]: expected string, received number");
  });

  test("a discriminating literal field picks the member", () => {
    const shape = v.union(
      v.object({ kind: v.literal("circle"), radius: v.number() }),
      v.object({ kind: v.literal("square"), side: v.number() }),
    );
    expect(accepts(shape, { kind: "square", side: 2 })).toBe(true);
    expect(messageOf(shape, { kind: "square", radius: 2 })).toBe("args.side: missing required field (expected number)");
    expect(messageOf(shape, { kind: "star" })).toBe('args.kind: expected "circle" | "square", received "star"');
    expect(messageOf(shape, { side: 1 })).toBe('args.kind: missing required field (expected "circle" | "square")');
  });

  test("without a discriminant, several object members each say what they found wrong", () => {
    const shape = v.union(v.object({ a: v.number() }), v.object({ b: v.number() }));
    expect(messageOf(shape, { c: 1 })).toBe(
      "args: matches none of the union's 2 object members (member 1 at .a: missing required field (expected number); member 2 at .b: missing required field (expected number))",
    );
    const sized = v.union(v.object({ radius: v.number() }), v.object({ width: v.number(), height: v.number() }));
    expect(messageOf(sized, { radius: "5" })).toBe(
      "args: matches none of the union's 2 object members (member 1 at .radius: expected number, received string; member 2 at .width: missing required field (expected number))",
    );
  });

  test("an empty union accepts nothing", () => {
    expect(messageOf(v.union(), null)).toBe("args: expected never (an empty union), received null");
  });
});

describe("optional at the top", () => {
  test("v.optional accepts an absent value", () => {
    expect(accepts(v.optional(v.string()), undefined)).toBe(true);
    expect(messageOf(v.optional(v.string()), 1)).toBe("args: expected string, received number");
  });
});

describe("validateResult", () => {
  test("returns the path and the message without throwing", () => {
    expect(validateResult(v.object({ a: v.array(v.string()) }), { a: ["x", 1] }, { path: "doc" })).toEqual({
      ok: false,
      path: "doc.a[1]",
      message: "doc.a[1]: expected string, received number",
    });
    expect(validateResult(v.string(), "x")).toEqual({ ok: true });
  });

  test('the root path defaults to "value"', () => {
    expect(validateResult(v.string(), 1)).toMatchObject({ path: "value", message: "value: expected string, received number" });
  });

  // Speed is measured in bench/, never asserted in tests (shared machines are noisy).
  test("validates the same value repeatedly without carrying state between calls", () => {
    const doc = v.object({
      name: v.string(),
      tags: v.array(v.string()),
      kind: v.union(v.literal("a"), v.literal("b")),
      meta: v.optional(v.record(v.string(), v.number())),
    });
    const value = { name: "x", tags: ["a", "b", "c"], kind: "b", meta: { a: 1, b: 2 } };
    for (let i = 0; i < 1000; i++) expect(validateResult(doc, value).ok).toBe(true);
    expect(validateResult(doc, { ...value, kind: "c" })).toMatchObject({ ok: false });
    expect(validateResult(doc, value).ok).toBe(true);
  });
});

describe("string formats", () => {
  const upper = v.formattedString<string>({
    name: "an upper-case word",
    check: (s, { trusted }) => (/^[A-Z]+$/.test(s) || (trusted && s.startsWith("n:")) ? null : "use A-Z only"),
    normalize: (s) => (s.startsWith("n:") ? s : `n:${s.toLowerCase()}`),
  });

  test("check the shape after the type, naming the format, and accept more from trusted callers", () => {
    expect(validateResult(upper, "ABC").ok).toBe(true);
    expect(validateResult(upper, "abc", { path: "args.word" })).toMatchObject({
      ok: false,
      message: "args.word: expected an upper-case word: use A-Z only",
    });
    expect(validateResult(upper, 5)).toMatchObject({ ok: false });
    expect(validateResult(upper, "n:abc").ok).toBe(false);
    expect(validateResult(upper, "n:abc", { trusted: true }).ok).toBe(true);
  });

  test("normalize nested values without touching the input, idempotently", () => {
    const args = v.object({ word: upper, list: v.array(upper), maybe: v.optional(upper), other: v.string() });
    const input = { word: "AB", list: ["X", "Y"], other: "AB" };
    expect(hasNormalizer(args)).toBe(true);
    expect(hasNormalizer(v.object({ s: v.string() }))).toBe(false);
    const normalized = normalizeValue(args, input);
    expect(normalized).toEqual({ word: "n:ab", list: ["n:x", "n:y"], other: "AB" });
    expect(input.word).toBe("AB");
    expect(normalizeValue(args, normalized, true)).toEqual(normalized);
  });
});

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { compareValues } from "./compare.js";
import { isWalkinError } from "./errors.js";
import { convertFromJson, convertToJson, decodeValueFromString, encodeValueToString } from "./json.js";
import type { JSONValue, Value } from "./value.js";

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function roundTrip(value: Value): Value {
  return convertFromJson(JSON.parse(JSON.stringify(convertToJson(value))) as JSONValue);
}

function invalid(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (!isWalkinError(error) || error.code !== "INVALID_VALUE") throw error;
    return error.message;
  }
  throw new Error("accepted");
}

describe("the JSON form", () => {
  test.each<[string, Value, JSONValue]>([
    ["int64 1", 1n, { $integer: "AQAAAAAAAAA=" }],
    ["int64 -1", -1n, { $integer: "//////////8=" }],
    ["int64 min", INT64_MIN, { $integer: "AAAAAAAAAIA=" }],
    ["int64 max", INT64_MAX, { $integer: "/////////38=" }],
    ["-0", -0, { $float: "AAAAAAAAAIA=" }],
    ["NaN", NaN, { $float: "AAAAAAAA+H8=" }],
    ["Infinity", Infinity, { $float: "AAAAAAAA8H8=" }],
    ["-Infinity", -Infinity, { $float: "AAAAAAAA8P8=" }],
    ["bytes", new Uint8Array([1, 2, 3]).buffer, { $bytes: "AQID" }],
    ["empty bytes", new ArrayBuffer(0), { $bytes: "" }],
    ["plain numbers stay numbers", [0, 1.5, -2, 1e300], [0, 1.5, -2, 1e300]],
    ["absent fields are left out", { a: undefined, b: { c: undefined, d: null } }, { b: { d: null } }],
  ])("%s", (_, value, json) => {
    expect(convertToJson(value)).toEqual(json);
  });
});

describe("round trips are exact", () => {
  test.each<[string, Value]>([
    ["int64 bounds", [INT64_MIN, INT64_MAX, 0n, -1n]],
    ["special floats", [-0, 0, NaN, Infinity, -Infinity, Number.MIN_VALUE, -Number.MAX_VALUE]],
    ["bytes with every byte value", new Uint8Array(Array.from({ length: 256 }, (_, i) => i)).buffer],
    ["strings", ["", "\0", "\u{1F600}", "\uD800", '"quoted" \\ back']],
    ["nested absent fields", { a: { b: undefined, c: [{ d: undefined, e: 1n }] } }],
  ])("%s", (_, value) => {
    const back = roundTrip(value);
    expect(compareValues(back, value)).toBe(0);
    expect(back).toEqual(value);
  });

  test("-0 stays -0 and absent fields stay absent", () => {
    const back = roundTrip({ z: -0, gone: undefined }) as Record<string, unknown>;
    expect(Object.is(back.z, -0)).toBe(true);
    expect("gone" in back).toBe(false);
  });

  test("a field named __proto__ stays a field", () => {
    const value = JSON.parse('{"__proto__": {"n": {"$integer": "AQAAAAAAAAA="}}}') as JSONValue;
    for (const decoded of [convertFromJson(value), decodeValueFromString(JSON.stringify(value))]) {
      expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
      expect(Object.keys(decoded as object)).toEqual(["__proto__"]);
      expect((decoded as Record<string, unknown>)["__proto__"]).toEqual({ n: 1n });
    }
    const json = convertToJson(JSON.parse('{"__proto__": 1}') as Value);
    expect(Object.keys(json as object)).toEqual(["__proto__"]);
  });

  test("arbitrary values (property)", () => {
    const fieldName = fc.constantFrom("a", "b", "_id", "with space", "x".repeat(50));
    const scalar = fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.bigInt({ min: INT64_MIN, max: INT64_MAX }),
      fc.double(),
      fc.string({ unit: "binary" }),
      fc.uint8Array({ maxLength: 20 }).map((bytes) => bytes.slice().buffer),
    );
    const { value } = fc.letrec<{ value: Value }>((tie) => ({
      value: fc.oneof(
        { depthSize: "small" },
        scalar,
        fc.array(tie("value"), { maxLength: 4 }),
        fc.dictionary(fieldName, fc.option(tie("value"), { nil: undefined }), { maxKeys: 4 }) as fc.Arbitrary<Value>,
      ),
    }));
    fc.assert(
      fc.property(value, (v) => {
        expect(compareValues(roundTrip(v), v)).toBe(0);
        expect(compareValues(decodeValueFromString(encodeValueToString(v)), v)).toBe(0);
      }),
      { numRuns: 1000 },
    );
  });
});

describe("convertToJson refuses what is not a value", () => {
  test.each<[string, unknown, string]>([
    ["a function", { f: () => 1 }, "value.f: functions are not values"],
    ["a Date", { at: new Date() }, "value.at: Date is not a value: store date.getTime() (a number) instead"],
    ["a Map", [new Map()], "value[0]: Map is not a value"],
    ["a class instance", { p: new (class Point {})() }, "value.p: an instance of class Point is not a value"],
    ["a $ field", { ok: { $x: 1 } }, 'value.ok.$x: field names must not start with "$"'],
    ["undefined in an array", [1, undefined], "value[1]: undefined is not allowed in arrays"],
    ["a bigint outside int64", { n: INT64_MAX + 1n }, "value.n: bigint is outside the signed 64-bit range"],
    ["undefined", undefined, "value: undefined is not a value"],
  ])("%s", (_, value, message) => {
    expect(invalid(() => convertToJson(value as Value))).toContain(message);
  });

  test("a cycle", () => {
    const node: Record<string, unknown> = { name: "n" };
    node.next = { back: node };
    expect(invalid(() => convertToJson(node as Value))).toBe(
      "value.next.back: cycle: this is the same object as value, and a value cannot contain itself",
    );
  });

  test("nesting deeper than 64 levels", () => {
    let deep: Value = 1;
    for (let i = 0; i < 65; i++) deep = [deep];
    expect(invalid(() => convertToJson(deep))).toMatch(/^value(\[0\]){64}: nesting is deeper than 64 levels$/);
  });

  test("with the path it is given", () => {
    expect(invalid(() => convertToJson({ a: Symbol() } as never, "args"))).toMatch(/^args\.a: symbols/);
  });
});

describe("convertFromJson refuses malformed input", () => {
  test.each<[string, unknown, string]>([
    ["a short $integer", { $integer: "AQAAAA==" }, 'value: malformed {"$integer": ...}: expected the base64 of 8 bytes'],
    ["a $integer that is not base64", { n: { $integer: "!!!!!!!!!!!=" } }, 'value.n: malformed {"$integer": ...}'],
    ["a $float that is a number", { $float: 1 }, 'value: malformed {"$float": ...}: expected the base64 of 8 bytes'],
    ["$bytes without padding", [{ $bytes: "AQI" }], 'value[0]: malformed {"$bytes": ...}: expected a base64 string'],
    ["an unknown $ key", { $date: "2020" }, 'value: unknown special object key "$date": only $integer, $float and $bytes exist'],
    ["a $ key beside others", { $integer: "AQAAAAAAAAA=", x: 1 }, 'value.$integer: field names must not start with "$"'],
    ["a bad field name", { a: { "": 1 } }, 'value.a[""]: field names must not be empty'],
    ["something that is not JSON", { f: () => 1 }, "value.f: function is not JSON"],
  ])("%s", (_, json, message) => {
    expect(invalid(() => convertFromJson(json as JSONValue))).toContain(message);
  });

  test("the input is not modified", () => {
    const json = { a: [{ $integer: "AQAAAAAAAAA=" }] };
    convertFromJson(json);
    expect(json).toEqual({ a: [{ $integer: "AQAAAAAAAAA=" }] });
  });
});

describe("encodeValueToString / decodeValueFromString", () => {
  test("store a document as a JSON string", () => {
    const doc: Value = { name: "Ada", visits: 3n, avatar: new Uint8Array([255]).buffer, score: -0 };
    const text = encodeValueToString(doc);
    expect(text).toBe('{"name":"Ada","visits":{"$integer":"AwAAAAAAAAA="},"avatar":{"$bytes":"/w=="},"score":{"$float":"AAAAAAAAAIA="}}');
    expect(compareValues(decodeValueFromString(text), doc)).toBe(0);
  });

  test("decoding refuses text that is not JSON, keeping the cause", () => {
    try {
      decodeValueFromString("{nope");
      expect.unreachable();
    } catch (error) {
      expect(isWalkinError(error) && error.code).toBe("INVALID_VALUE");
      expect((error as Error).message).toMatch(/^value: not valid JSON \(/);
      expect((error as Error).cause).toBeInstanceOf(SyntaxError);
    }
  });

  // Speed is measured in bench/, never asserted in tests (shared machines are noisy).
  test("round-trips a typical document through its string form", () => {
    const doc: Value = {
      author: "users:abc",
      body: "hello world ".repeat(10),
      tags: ["a", "b", "c"],
      count: 12n,
      meta: { edited: false, score: 1.5, nested: { deeper: [1, 2, 3] } },
    };
    const text = encodeValueToString(doc);
    expect(compareValues(decodeValueFromString(text), doc)).toBe(0);
  });
});

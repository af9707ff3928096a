import { describe, expect, test } from "vitest";
import { isWalkinError } from "./errors.js";
import { checkValue, fieldNameProblem, MAX_VALUE_DEPTH } from "./value.js";

function problemOf(value: unknown, path?: string): string {
  try {
    checkValue(value, path);
  } catch (error) {
    if (!isWalkinError(error) || error.code !== "INVALID_VALUE") throw error;
    return error.message;
  }
  throw new Error("checkValue accepted the value");
}

function nest(depth: number): unknown {
  let value: unknown = "leaf";
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { a: value };
  return value;
}

describe("checkValue accepts", () => {
  test.each([
    ["null", null],
    ["numbers, including NaN, ±Infinity and -0", [0, -0, 1.5, NaN, Infinity, -Infinity]],
    ["int64 bounds", [-(2n ** 63n), 2n ** 63n - 1n, 0n]],
    ["booleans and strings", [true, false, "", "héllo \u{1F600} \0"]],
    ["bytes", new ArrayBuffer(4)],
    ["nested containers", { a: [1, { b: null }], c: { d: [] } }],
    ["absent (undefined) fields", { a: undefined, b: 1 }],
    ["null-prototype objects", Object.assign(Object.create(null) as object, { a: 1 })],
    ["field names with _ and printable ASCII", { _id: 1, "a b-c.d~": 2, ["x".repeat(1024)]: 3 }],
    ["shared (non-cyclic) references", (() => { const shared = { x: 1 }; return { a: shared, b: [shared, shared] }; })()],
  ])("%s", (_, value) => {
    expect(() => checkValue(value)).not.toThrow();
  });

  test(`nesting of exactly ${MAX_VALUE_DEPTH} levels`, () => {
    expect(() => checkValue(nest(MAX_VALUE_DEPTH))).not.toThrow();
  });
});

describe("checkValue rejects, naming the path", () => {
  test.each([
    [undefined, "value: undefined is not a value: use null, or leave the field out"],
    [{ f: () => 1 }, "value.f: functions are not values: call it and store its result, or leave it out"],
    [{ s: Symbol("x") }, "value.s: symbols are not values: use a string instead"],
    [[1, undefined], "value[1]: undefined is not allowed in arrays (nor are holes): use null"],
    [[1, , 3], "value[1]: undefined is not allowed in arrays (nor are holes): use null"],
    [{ when: new Date(0) }, "value.when: Date is not a value: store date.getTime() (a number) instead"],
    [{ m: new Map() }, "value.m: Map is not a value: store Object.fromEntries(map) or [...map.entries()] instead"],
    [{ s: new Set() }, "value.s: Set is not a value: store [...set] instead"],
    [{ p: Promise.resolve(1) }, "value.p: Promise is not a value: did you forget to await it?"],
    [{ u: new Uint8Array(2) }, "value.u: Uint8Array is not a value: only ArrayBuffer holds bytes; copy the ones it views with view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength)"],
    [{ n: 2n ** 63n }, "value.n: bigint is outside the signed 64-bit range of int64 (-2^63 to 2^63-1)"],
    [{ n: -(2n ** 63n) - 1n }, "value.n: bigint is outside the signed 64-bit range of int64 (-2^63 to 2^63-1)"],
    [{ a: { $x: 1 } }, 'value.a.$x: field names must not start with "$" (it marks special values in the wire encoding): rename the field'],
    [{ "": 1 }, 'value[""]: field names must not be empty'],
  ])("%o", (value, message) => {
    expect(problemOf(value)).toBe(message);
  });

  test("class instances, with the class name and a fix", () => {
    class Point {
      constructor(readonly x: number) {}
    }
    expect(problemOf({ items: [{ at: new Point(1) }] }, "args")).toBe(
      "args.items[0].at: an instance of class Point is not a value: only plain objects, arrays and ArrayBuffer are; copy the fields you need into a plain object",
    );
  });

  test("non-ASCII and overlong field names", () => {
    expect(problemOf({ "café": 1 })).toBe(
      'value["café"]: field names may only hold printable ASCII characters, found U+00E9 at position 3: to key by arbitrary text, store an array of { key, value } objects',
    );
    expect(problemOf({ ["x".repeat(1025)]: 1 })).toMatch(/field names are at most 1024 characters long \(this one has 1025\)$/);
  });

  test("cycles, naming where the value contains itself", () => {
    const root: Record<string, unknown> = { list: [] };
    (root.list as unknown[]).push({ back: root });
    expect(problemOf(root)).toBe(
      "value.list[0].back: cycle: this is the same object as value, and a value cannot contain itself",
    );
    const inner: Record<string, unknown> = {};
    inner.self = inner;
    expect(problemOf({ a: { b: inner } })).toBe(
      "value.a.b.self: cycle: this is the same object as value.a.b, and a value cannot contain itself",
    );
  });

  test(`nesting deeper than ${MAX_VALUE_DEPTH} levels`, () => {
    expect(problemOf(nest(MAX_VALUE_DEPTH + 1))).toMatch(/: nesting is deeper than 64 levels$/);
  });

  test("the root path is configurable", () => {
    expect(problemOf({ x: new Date() }, "doc")).toMatch(/^doc\.x: Date/);
  });
});

describe("fieldNameProblem", () => {
  test("accepts ordinary names and rejects the reserved ones", () => {
    expect(fieldNameProblem("name")).toBeUndefined();
    expect(fieldNameProblem("_creationTime")).toBeUndefined();
    expect(fieldNameProblem("a$")).toBeUndefined();
    expect(fieldNameProblem("$a")).toMatch(/must not start with "\$"/);
    expect(fieldNameProblem("a\nb")).toMatch(/U\+000A at position 1/);
  });
});

/**
 * Values against their own definitions, at random (fast-check): JSON round trips, index keys
 * ordered and equal exactly as compareValues says, depth limits, literals compared as values
 * (-0 is not 0, NaN is NaN), record entries kept through normalization, validators.
 */
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { compareValues } from "./compare.js";
import { isWalkinError } from "./errors.js";
import { compareBytes, encodeIndexKey } from "./indexKey.js";
import { convertFromJson, convertToJson, decodeValueFromString, encodeValueToString } from "./json.js";
import { normalizeValue } from "./normalize.js";
import { validateResult } from "./validate.js";
import { v } from "./validator.js";
import { checkValue, type JSONValue, type Value } from "./value.js";

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

// Wide generators: every type, the float and int64 edges, strings with NULs and surrogates (lone
// ones in `text`, which compare and index as strings; replaced in values, which refuse them),
// field names that look special to JavaScript (__proto__, constructor) or to Convex (_id).
const float = fc.oneof(
  fc.constantFrom(0, -0, NaN, Infinity, -Infinity, Number.MIN_VALUE, -Number.MIN_VALUE, Number.MAX_VALUE, 2 ** 53, 1e21),
  fc.double(),
  fc.integer().map((n) => n / 7),
);
const int64 = fc.oneof(
  fc.constantFrom(INT64_MIN, INT64_MIN + 1n, -1n, 0n, 1n, 2n ** 53n + 1n, INT64_MAX - 1n, INT64_MAX),
  fc.bigInt({ min: INT64_MIN, max: INT64_MAX }),
);
const text = fc.oneof(
  fc.string({ unit: "binary", maxLength: 6 }),
  fc
    .array(fc.constantFrom("a", "\0", "\x7f", "\u0080", "\u07FF", "\u0800", "\uD7FF", "\uD800", "\uDBFF", "\uDC00", "\uDFFF", "\uE000", "\uFFFF", "\u{10000}", "\u{10FFFF}"), { maxLength: 5 })
    .map((units) => units.join("")),
);
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 10 }).map((b) => b.slice().buffer),
  fc.array(fc.constantFrom(0, 1, 0xfe, 0xff), { maxLength: 4 }).map((b) => new Uint8Array(b).buffer),
);
const wellFormedText = text.map((s) => s.replace(/\p{Cs}/gu, "\uFFFD"));
const scalar: fc.Arbitrary<Value> = fc.oneof(fc.constant(null), fc.boolean(), int64, float, wellFormedText, bytes);
const fieldName = fc.constantFrom("a", "b", "aa", "A", "_id", "_", "__proto__", "constructor", "toString", "0", "10", "9", "~", " x", "a.b", "x".repeat(1024));
const { value } = fc.letrec<{ value: Value }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    fc.array(tie("value"), { maxLength: 4 }),
    fc
      .array(fc.tuple(fieldName, fc.option(tie("value"), { nil: undefined, freq: 6 })), { maxLength: 4 })
      .map((entries) => {
        // Built with defineProperty so "__proto__" is an own field, as JSON.parse makes it.
        const out: Record<string, Value | undefined> = {};
        for (const [k, item] of entries) Object.defineProperty(out, k, { value: item, enumerable: true, writable: true, configurable: true });
        return out as Value;
      }),
  ),
}));

function sameValue(a: Value | undefined, b: Value | undefined): boolean {
  return compareValues(a, b) === 0;
}

function code(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (!isWalkinError(error)) throw error;
    return `${error.code}: ${error.message}`;
  }
  return "accepted";
}

function nest(depth: number, leaf: Value, kind: "array" | "object"): Value {
  let out = leaf;
  for (let i = 0; i < depth; i++) out = kind === "array" ? [out] : { a: out };
  return out;
}

describe("JSON round trips", () => {
  test("every value round-trips exactly through convertToJson/JSON text/convertFromJson and the string form (property)", () => {
    fc.assert(
      fc.property(value, (x) => {
        checkValue(x);
        const viaJson = convertFromJson(JSON.parse(JSON.stringify(convertToJson(x))) as JSONValue);
        const viaString = decodeValueFromString(encodeValueToString(x));
        const direct = convertFromJson(convertToJson(x));
        for (const back of [viaJson, viaString, direct]) {
          expect(sameValue(back, x)).toBe(true);
          // Same bytes in the index too: nothing lost that compareValues might ignore.
          expect(compareBytes(encodeIndexKey([back]), encodeIndexKey([x]))).toBe(0);
          // And encoding it again gives the same text (canonical form).
          expect(encodeValueToString(back)).toBe(encodeValueToString(x));
        }
      }),
      { numRuns: 2000 },
    );
  });

  test("-0, NaN and the int64 bounds survive, typed as before", () => {
    const back = decodeValueFromString(encodeValueToString({ z: -0, n: NaN, lo: INT64_MIN, hi: INT64_MAX, one: 1n })) as Record<string, Value>;
    expect(Object.is(back.z, -0)).toBe(true);
    expect(Number.isNaN(back.n)).toBe(true);
    expect(back.lo).toBe(INT64_MIN);
    expect(back.hi).toBe(INT64_MAX);
    expect(typeof back.one).toBe("bigint");
  });
});

describe("the index key encoding and compareValues", () => {
  test("byte order of keys is compareValues order, and equal keys iff equal values (property)", () => {
    fc.assert(
      fc.property(value, value, (a, b) => {
        const order = Math.sign(compareValues(a, b));
        expect(Math.sign(compareBytes(encodeIndexKey([a]), encodeIndexKey([b])))).toBe(order);
        expect(Math.sign(compareValues(b, a))).toBe(-order || 0);
      }),
      { numRuns: 4000 },
    );
  });

  // A small domain, so that shared prefixes and near misses (a string then a NUL, a shorter
  // array then more elements) are common, in tuples and nested containers.
  const small: fc.Arbitrary<Value> = fc.letrec<{ v: Value }>((tie) => ({
    v: fc.oneof(
      { depthSize: "small" },
      fc.constantFrom<Value>(null, false, true, 0, -0, NaN, 0n, -1n, "", "a", "\0", "a\0", "\uD800", "\u{10000}", new ArrayBuffer(0), new Uint8Array([0]).buffer, new Uint8Array([0, 0xff]).buffer),
      fc.array(tie("v"), { maxLength: 3 }),
      fc.dictionary(fc.constantFrom("a", "b", "_"), tie("v"), { maxKeys: 2 }) as fc.Arbitrary<Value>,
    ),
  })).v;
  const smallTuple = fc.array(fc.option(small, { nil: undefined, freq: 6 }), { maxLength: 3 });

  test("tuples over a small domain: key order is element-by-element order (property)", () => {
    const compareTuples = (a: (Value | undefined)[], b: (Value | undefined)[]) => {
      for (let i = 0; i < Math.min(a.length, b.length); i++) {
        const order = compareValues(a[i], b[i]);
        if (order !== 0) return Math.sign(order);
      }
      return Math.sign(a.length - b.length);
    };
    fc.assert(
      fc.property(smallTuple, smallTuple, (a, b) => {
        expect(Math.sign(compareBytes(encodeIndexKey(a), encodeIndexKey(b)))).toBe(compareTuples(a, b));
      }),
      { numRuns: 4000 },
    );
  });

  test("compareValues is transitive (property)", () => {
    fc.assert(
      fc.property(value, value, value, (a, b, c) => {
        const [x, y, z] = [a, b, c].sort(compareValues);
        expect(compareValues(x, z)).toBeLessThanOrEqual(0);
        if (compareValues(x, y) === 0 && compareValues(y, z) === 0) expect(compareValues(x, z)).toBe(0);
      }),
      { numRuns: 2000 },
    );
  });

  test("strings with surrogates: key order is code point order (property)", () => {
    const toPoints = (s: string) => {
      // Code points, with lone surrogates as themselves.
      const out: number[] = [];
      for (let i = 0; i < s.length; i++) {
        const p = s.codePointAt(i)!;
        out.push(p);
        if (p > 0xffff) i++;
      }
      return out;
    };
    fc.assert(
      fc.property(text, text, (a, b) => {
        const pa = toPoints(a);
        const pb = toPoints(b);
        let expected = Math.sign(pa.length - pb.length);
        for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
          if (pa[i] !== pb[i]) {
            expected = pa[i]! < pb[i]! ? -1 : 1;
            break;
          }
        }
        expect(Math.sign(compareValues(a, b))).toBe(expected);
        expect(Math.sign(compareBytes(encodeIndexKey([a]), encodeIndexKey([b])))).toBe(expected);
      }),
      { numRuns: 3000 },
    );
  });
});

describe("depth limits refuse cleanly", () => {
  test("64 nested containers are a value everywhere; 65 are refused with INVALID_VALUE", () => {
    for (const kind of ["array", "object"] as const) {
      const ok = nest(64, 1n, kind);
      expect(code(() => checkValue(ok))).toBe("accepted");
      expect(code(() => convertToJson(ok))).toBe("accepted");
      expect(code(() => decodeValueFromString(encodeValueToString(ok)))).toBe("accepted");
      expect(code(() => encodeIndexKey([ok]))).toBe("accepted");
      const tooDeep = nest(65, 1n, kind);
      expect(code(() => checkValue(tooDeep))).toMatch(/^INVALID_VALUE: .*nesting is deeper than 64 levels$/);
      expect(code(() => convertToJson(tooDeep))).toMatch(/^INVALID_VALUE: .*nesting is deeper than 64 levels$/);
      expect(code(() => encodeIndexKey([tooDeep]))).toMatch(/^INVALID_VALUE: /);
    }
  });

  test("a very deep value or JSON text fails with INVALID_VALUE, not a RangeError", () => {
    const deep = nest(200_000, null, "array");
    expect(code(() => checkValue(deep))).toMatch(/^INVALID_VALUE: /);
    expect(code(() => convertToJson(deep))).toMatch(/^INVALID_VALUE: /);
    expect(code(() => encodeIndexKey([deep]))).toMatch(/^INVALID_VALUE: /);
    const deepJson = "[".repeat(200_000) + "]".repeat(200_000);
    expect(code(() => decodeValueFromString(deepJson))).toMatch(/^INVALID_VALUE: /);
    const deepObjectJson = '{"a":'.repeat(200_000) + "1" + "}".repeat(200_000);
    expect(code(() => decodeValueFromString(deepObjectJson))).toMatch(/^INVALID_VALUE: /);
  });
});

describe("literals compare as Convex values (total order), not with ===", () => {
  // Convex checks a literal with ConvexValue equality, which compares float64s with
  // f64::total_cmp: -0 and 0 are different values, and NaN equals NaN. compareValues (and so
  // every index) agrees: a document validated as v.literal(0) holding -0 is not found by
  // q.eq("kind", 0).
  test("v.literal(0) refuses -0 and v.literal(-0) refuses 0", () => {
    expect(validateResult(v.literal(0), -0).ok).toBe(false);
    expect(validateResult(v.literal(-0), 0).ok).toBe(false);
    expect(validateResult(v.literal(-0), -0).ok).toBe(true);
    expect(validateResult(v.union(v.literal(0), v.literal(1)), -0).ok).toBe(false);
  });

  test("v.literal(NaN) accepts NaN", () => {
    expect(validateResult(v.literal(NaN), NaN).ok).toBe(true);
  });

  test("a literal accepts exactly the values compareValues calls equal to it (property)", () => {
    // Literals are values: v.literal refuses a string with an unpaired surrogate.
    const literal = fc.oneof(float, int64, fc.boolean(), wellFormedText) as fc.Arbitrary<number | bigint | boolean | string>;
    fc.assert(
      fc.property(literal, scalar, (lit, x) => {
        expect(validateResult(v.literal(lit), x).ok).toBe(compareValues(lit, x) === 0);
        expect(validateResult(v.literal(lit), lit).ok).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("normalizing formats keep every record entry", () => {
  const upper = v.formattedString({ name: "a code", check: () => null, normalize: (s) => s.toUpperCase() });

  test('a record key named "__proto__" survives normalization', () => {
    const record = v.record(v.string(), upper);
    const input = JSON.parse('{"__proto__": "abc", "x": "def"}') as Value;
    checkValue(input);
    expect(validateResult(record, input).ok).toBe(true);
    const out = normalizeValue(record, input) as Record<string, Value>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out).sort()).toEqual(["__proto__", "x"]);
    expect(out["x"]).toBe("DEF");
    expect(Object.getOwnPropertyDescriptor(out, "__proto__")?.value).toBe("ABC");
  });

  test('an object-valued record entry under "__proto__" does not become the prototype', () => {
    const record = v.record(v.string(), v.object({ code: upper }));
    const input = JSON.parse('{"__proto__": {"code": "abc"}}') as Value;
    const out = normalizeValue(record, input) as Record<string, Value>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(["__proto__"]);
  });
});

describe("validators", () => {
  test("v.optional is refused outside objects, at definition", () => {
    expect(code(() => v.array(v.optional(v.string()) as never))).toMatch(/^MISUSE: /);
    expect(code(() => v.union(v.string(), v.optional(v.number()) as never))).toMatch(/^MISUSE: /);
    expect(code(() => v.record(v.string(), v.optional(v.number()) as never))).toMatch(/^MISUSE: /);
    expect(code(() => v.nullable(v.optional(v.number()) as never))).toMatch(/^MISUSE: /);
  });

  test("v.int64 takes exactly the int64 range and names the path", () => {
    const x = v.object({ n: v.array(v.int64()) });
    expect(validateResult(x, { n: [INT64_MIN, INT64_MAX] }).ok).toBe(true);
    const out = validateResult(x, { n: [0n, INT64_MAX + 1n] }, { path: "args" });
    expect(out.ok).toBe(false);
    expect(!out.ok && out.message).toMatch(/^args\.n\[1\]: bigint is outside/);
    expect(validateResult(v.int64(), 1).ok).toBe(false);
    expect(validateResult(v.float64(), 1n).ok).toBe(false);
  });

  test("v.bytes takes an ArrayBuffer only, not a view", () => {
    expect(validateResult(v.bytes(), new ArrayBuffer(2)).ok).toBe(true);
    expect(validateResult(v.bytes(), new Uint8Array(2)).ok).toBe(false);
  });

  test("v.id checks the table when told how, and names the path", () => {
    const isIdOfTable = (table: string, id: string) => id.startsWith(`${table}:`);
    const x = v.object({ ids: v.record(v.id("users"), v.id("users")) });
    expect(validateResult(x, { ids: { "users:1": "users:2" } }, { isIdOfTable }).ok).toBe(true);
    const bad = validateResult(x, { ids: { "users:1": "posts:2" } }, { isIdOfTable, path: "args" });
    expect(!bad.ok && bad.message).toBe('args.ids["users:1"]: expected an ID of table "users", received "posts:2"');
    expect(validateResult(x, { ids: { "posts:1": "users:2" } }, { isIdOfTable }).ok).toBe(false);
  });

  test("objects: optional fields may be absent or undefined, extra fields are refused", () => {
    const x = v.object({ a: v.string(), b: v.optional(v.number()) });
    expect(validateResult(x, { a: "" }).ok).toBe(true);
    expect(validateResult(x, { a: "", b: undefined }).ok).toBe(true);
    expect(validateResult(x, { a: "", c: 1 }).ok).toBe(false);
    expect(validateResult(x, { a: "", c: undefined }).ok).toBe(true);
    expect(validateResult(x, { b: 1 }).ok).toBe(false);
    expect(validateResult(x, Object.assign(Object.create({ a: "inherited" }) as object, {})).ok).toBe(false);
  });
});

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { compareValues } from "./compare.js";
import { compareBytes, encodeIndexKey, hasPrefix, prefixSuccessor } from "./indexKey.js";
import type { Value } from "./value.js";

// Values drawn from small domains, so that equal values, shared prefixes and near misses are
// common; plus the edge cases the encoding has to get right.
const scalar: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.constantFrom(-(2n ** 63n), -1n, 0n, 1n, 255n, 256n, 2n ** 63n - 1n),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 1, -1, 0.5, Number.MIN_VALUE, -Number.MAX_VALUE),
  fc.double(),
  fc
    .array(fc.constantFrom("a", "b", "\0", "\u00FF", "\uD7FF", "\uD83D", "\uDE00", "\uE000", "\uFFFF", "\u{1F600}"), { maxLength: 4 })
    .map((units) => units.join("")),
  fc.string({ unit: "binary", maxLength: 4 }),
  fc.array(fc.constantFrom(0, 1, 0xfe, 0xff), { maxLength: 4 }).map((b) => new Uint8Array(b).buffer),
);
const key = fc.constantFrom("a", "b", "aa", "_id", "Z");
const { value } = fc.letrec<{ value: Value }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(key, fc.option(tie("value"), { nil: undefined }), { maxKeys: 3 }) as fc.Arbitrary<Value>,
  ),
}));
const tuple = fc.array(fc.option(value, { nil: undefined, freq: 8 }), { maxLength: 3 });

// Strings and bytes over a two-letter alphabet with NUL, followed by more values: the cases
// where a missing NUL escape or terminator would let "a" + next value outsort "a\0".
const nulHeavy: fc.Arbitrary<Value> = fc.oneof(
  fc.array(fc.constantFrom("\0", "a"), { maxLength: 3 }).map((units) => units.join("")),
  fc.array(fc.constantFrom(0, 1, 0xff), { maxLength: 3 }).map((b) => new Uint8Array(b).buffer),
  fc.constantFrom(null, 0, false),
);
const nulHeavyTuple = fc.array(fc.oneof(nulHeavy, fc.array(nulHeavy, { maxLength: 2 })), { maxLength: 3 });

function compareTuples(a: (Value | undefined)[], b: (Value | undefined)[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const order = compareValues(a[i], b[i]);
    if (order !== 0) return order;
  }
  return Math.sign(a.length - b.length);
}

const runs = { numRuns: 3000 };

describe("encodeIndexKey preserves the order of values", () => {
  test("for single values (property)", () => {
    fc.assert(
      fc.property(value, value, (a, b) => {
        expect(Math.sign(compareBytes(encodeIndexKey([a]), encodeIndexKey([b])))).toBe(Math.sign(compareValues(a, b)));
      }),
      runs,
    );
  });

  test("for tuples, compared element by element (property)", () => {
    fc.assert(
      fc.property(tuple, tuple, (a, b) => {
        expect(Math.sign(compareBytes(encodeIndexKey(a), encodeIndexKey(b)))).toBe(compareTuples(a, b));
      }),
      runs,
    );
  });

  test("for strings and bytes with embedded NULs (property)", () => {
    fc.assert(
      fc.property(nulHeavyTuple, nulHeavyTuple, (a, b) => {
        expect(Math.sign(compareBytes(encodeIndexKey(a), encodeIndexKey(b)))).toBe(compareTuples(a, b));
        if (a.length > 0 && b.length > 0 && compareValues(a[0], b[0]) !== 0) {
          expect(hasPrefix(encodeIndexKey(b), encodeIndexKey(a.slice(0, 1)))).toBe(false);
        }
      }),
      runs,
    );
  });

  test("for values that differ only deep inside (property)", () => {
    fc.assert(
      fc.property(value, value, value, (shared, a, b) => {
        const left = [shared, { x: [a] }];
        const right = [shared, { x: [b] }];
        expect(Math.sign(compareBytes(encodeIndexKey(left), encodeIndexKey(right)))).toBe(Math.sign(compareValues(a, b)));
      }),
      runs,
    );
  });

  test("equal values encode to equal keys (property)", () => {
    fc.assert(
      fc.property(value, value, (a, b) => {
        const equalKeys = compareBytes(encodeIndexKey([a]), encodeIndexKey([b])) === 0;
        expect(equalKeys).toBe(compareValues(a, b) === 0);
      }),
      runs,
    );
  });

  test("sorting keys sorts the values (property)", () => {
    fc.assert(
      fc.property(fc.array(value, { maxLength: 12 }), (values) => {
        const byValue = [...values].sort(compareValues);
        const byKey = values
          .map((v) => ({ v, key: encodeIndexKey([v]) }))
          .sort((x, y) => compareBytes(x.key, y.key))
          .map(({ v }) => v);
        expect(byKey.every((v, i) => compareValues(v, byValue[i]) === 0)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  test("edge cases of the type order", () => {
    const ordered: (Value | undefined)[] = [
      undefined, null, -(2n ** 63n), 2n ** 63n - 1n, -Infinity, -0, 0, Infinity, NaN, false, true,
      "", "\0", "\0\0", "\x01", "\uFFFF", "\u{10000}", new ArrayBuffer(0), new Uint8Array([0]).buffer,
      [], [null], [[]], {}, { a: null }, { a: null, b: null }, { b: null },
    ];
    const keys = ordered.map((v) => encodeIndexKey([v]));
    for (let i = 1; i < keys.length; i++) expect(compareBytes(keys[i - 1]!, keys[i]!), `at ${i}`).toBe(-1);
  });

  test("NaNs with any payload or sign encode the same", () => {
    const view = new DataView(new ArrayBuffer(8));
    view.setUint32(0, 0xfff00000);
    view.setUint32(4, 1);
    const oddNaN = view.getFloat64(0);
    expect(Number.isNaN(oddNaN)).toBe(true);
    expect(encodeIndexKey([oddNaN])).toEqual(encodeIndexKey([NaN]));
  });
});

describe("prefixes", () => {
  test("the key of a tuple is a byte prefix of the key of any longer tuple (property)", () => {
    fc.assert(
      fc.property(tuple, tuple, (a, b) => {
        expect(hasPrefix(encodeIndexKey([...a, ...b]), encodeIndexKey(a))).toBe(true);
      }),
      runs,
    );
  });

  test("keys with a different first value never share the first value's key as a prefix (property)", () => {
    fc.assert(
      fc.property(value, value, tuple, (a, b, rest) => {
        fc.pre(compareValues(a, b) !== 0);
        expect(hasPrefix(encodeIndexKey([b, ...rest]), encodeIndexKey([a]))).toBe(false);
      }),
      runs,
    );
  });

  test("prefixSuccessor bounds exactly the keys with that prefix (property)", () => {
    fc.assert(
      fc.property(tuple.filter((t) => t.length > 0), tuple, tuple, (prefix, rest, other) => {
        const start = encodeIndexKey(prefix);
        const end = prefixSuccessor(start)!;
        const inside = encodeIndexKey([...prefix, ...rest]);
        expect(compareBytes(start, inside)).toBeLessThanOrEqual(0);
        expect(compareBytes(inside, end)).toBe(-1);
        const candidate = encodeIndexKey(other);
        const inRange = compareBytes(start, candidate) <= 0 && compareBytes(candidate, end) < 0;
        expect(inRange).toBe(hasPrefix(candidate, start));
      }),
      runs,
    );
  });

  test("prefixSuccessor increments the last byte below 0xFF and truncates", () => {
    expect(prefixSuccessor(new Uint8Array([1, 2, 3]))).toEqual(new Uint8Array([1, 2, 4]));
    expect(prefixSuccessor(new Uint8Array([1, 0xff, 0xff]))).toEqual(new Uint8Array([2]));
    expect(prefixSuccessor(new Uint8Array([0xff]))).toBeNull();
    expect(prefixSuccessor(new Uint8Array([]))).toBeNull();
    const key = new Uint8Array([5, 0xff]);
    prefixSuccessor(key);
    expect(key).toEqual(new Uint8Array([5, 0xff])); // the input is not modified
  });
});

describe("encodeIndexKey", () => {
  test("the empty tuple is the empty key", () => {
    expect(encodeIndexKey([])).toEqual(new Uint8Array([]));
  });

  test("returns a fresh copy each time", () => {
    const first = encodeIndexKey(["a"]);
    const second = encodeIndexKey(["b"]);
    expect(first).not.toEqual(second);
    expect(first.buffer).not.toBe(second.buffer);
    expect(first.byteLength).toBe(first.buffer.byteLength);
  });

  test("long values grow the buffer", () => {
    const long = "x".repeat(100_000);
    expect(encodeIndexKey([long, long]).length).toBe(2 * (1 + 100_000 + 2));
  });

  test("refuses what is not a value", () => {
    expect(() => encodeIndexKey([2n ** 64n])).toThrow(/outside int64/);
    expect(() => encodeIndexKey([(() => 1) as never])).toThrow(/cannot index a function/);
    const cycle: unknown[] = [];
    cycle.push(cycle);
    expect(() => encodeIndexKey([cycle as Value])).toThrow(/deeper than 64/);
  });
});

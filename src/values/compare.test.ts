import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { compareBytes, compareStrings, compareValues } from "./compare.js";
import type { Value } from "./value.js";

const bytes = (...values: number[]) => new Uint8Array(values).buffer;

// One representative per type, in the documented type order.
const ascending: (Value | undefined)[][] = [
  [undefined],
  [null],
  [-(2n ** 63n), -1n, 0n, 1n, 2n ** 63n - 1n],
  [-Infinity, -1e308, -1, -Number.MIN_VALUE, -0, 0, Number.MIN_VALUE, 1, 1e308, Infinity, NaN],
  [false, true],
  ["", "\0", "A", "a", "aa", "b", "\uE000", "\uFFFF", "\u{10000}", "\u{1F600}"],
  [bytes(), bytes(0), bytes(0, 0), bytes(1), bytes(255)],
  [[], [null], [1n], [1], [1, 2], [2], ["a"], [[]]],
  [{}, { a: null }, { a: 1 }, { a: 1, b: 1 }, { a: 2 }, { b: null }],
];

describe("compareValues", () => {
  test("orders a list of every kind of value exactly as documented", () => {
    const flat = ascending.flat();
    for (let i = 0; i < flat.length; i++) {
      for (let j = 0; j < flat.length; j++) {
        expect(Math.sign(compareValues(flat[i], flat[j])), `${i} vs ${j}`).toBe(Math.sign(i - j));
      }
    }
  });

  test("-0 and 0 are distinct; NaN equals itself and sorts last", () => {
    expect(compareValues(-0, 0)).toBe(-1);
    expect(compareValues(0, -0)).toBe(1);
    expect(compareValues(-0, -0)).toBe(0);
    expect(compareValues(NaN, NaN)).toBe(0);
    expect(compareValues(NaN, Infinity)).toBe(1);
    expect(compareValues(-Infinity, NaN)).toBe(-1);
  });

  test("bigints compare by value, across the whole int64 range", () => {
    expect(compareValues(2n ** 62n, 2n ** 62n + 1n)).toBe(-1);
    expect(compareValues(-(2n ** 63n), 2n ** 63n - 1n)).toBe(-1);
    expect(compareValues(5n, 5n)).toBe(0);
  });

  test("int64 sorts before float64 whatever the magnitude", () => {
    expect(compareValues(2n ** 62n, -Infinity)).toBe(-1);
  });

  test("absent object fields do not count", () => {
    expect(compareValues({ a: 1, b: undefined }, { a: 1 })).toBe(0);
    expect(compareValues({ b: undefined }, {})).toBe(0);
  });

  test("objects compare by sorted keys, not insertion order", () => {
    expect(compareValues({ b: 1, a: 2 }, { a: 2, b: 1 })).toBe(0);
    expect(compareValues({ b: 1 }, { a: 2, c: 0 })).toBe(1);
  });

  test("bytes compare bytewise, not by length", () => {
    expect(compareValues(bytes(1, 0, 0), bytes(2))).toBe(-1);
  });

  test("equal structures compare equal", () => {
    const value: Value = { x: [1n, "s", bytes(1), { y: null }], z: NaN };
    const copy: Value = { z: NaN, x: [1n, "s", bytes(1), { y: null }] };
    expect(compareValues(value, copy)).toBe(0);
  });
});

describe("compareStrings", () => {
  test("orders astral characters after U+E000..U+FFFF, unlike JavaScript's <", () => {
    const astral = "\u{1F600}"; // stored as the surrogates D83D DE00
    const privateUse = "\uE000";
    expect(astral < privateUse).toBe(true); // UTF-16 order
    expect(compareStrings(astral, privateUse)).toBe(1); // code point order
    expect(compareStrings("a\u{10000}", "a\uFFFF")).toBe(1);
    expect(compareStrings("\uFFFF", "\u{10000}")).toBe(-1);
  });

  test("lone surrogates count as their own code point", () => {
    expect(compareStrings("\uD800", "\uE000")).toBe(-1);
    expect(compareStrings("\uD800", "\uD7FF")).toBe(1);
    expect(compareStrings("\uD83D", "\u{1F600}")).toBe(-1);
    expect(compareStrings("\uD83Dx", "\u{1F600}")).toBe(-1);
    expect(compareStrings("\uD83D\uE000", "\uD83Dx")).toBe(1);
    expect(compareStrings("\uDE00", "\u{1F600}")).toBe(-1);
  });

  test("a prefix sorts first", () => {
    expect(compareStrings("ab", "abc")).toBe(-1);
    expect(compareStrings("abc", "ab")).toBe(1);
    expect(compareStrings("", "")).toBe(0);
  });

  test("agrees with comparing arrays of code points (property)", () => {
    // Small alphabet of the interesting code units, so strings share prefixes and pairs split.
    const unit = fc.constantFrom("a", "\0", "\uD7FF", "\uD83D", "\uDE00", "\uDBFF", "\uDFFF", "\uE000", "\uFFFF", "\u{1F600}", "\u{10FFFF}");
    const text = fc.array(unit, { maxLength: 6 }).map((units) => units.join(""));
    const codePoints = (s: string) => Array.from(s, (c) => c.codePointAt(0)!);
    const reference = (a: string, b: string) => {
      const [x, y] = [codePoints(a), codePoints(b)];
      for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return Math.sign(x[i]! - y[i]!);
      return Math.sign(x.length - y.length);
    };
    fc.assert(
      fc.property(text, text, (a, b) => {
        expect(compareStrings(a, b)).toBe(reference(a, b));
      }),
      { numRuns: 2000 },
    );
  });

  test("agrees with UTF-8 byte order for well-formed strings (property)", () => {
    const encoder = new TextEncoder();
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fc.string({ unit: "binary" }), (a, b) => {
        expect(compareStrings(a, b)).toBe(compareBytes(encoder.encode(a), encoder.encode(b)));
      }),
      { numRuns: 500 },
    );
  });
});

describe("compareBytes", () => {
  test("memcmp order with a shorter prefix first", () => {
    const u = (...values: number[]) => new Uint8Array(values);
    expect(compareBytes(u(), u())).toBe(0);
    expect(compareBytes(u(1), u(1, 0))).toBe(-1);
    expect(compareBytes(u(2), u(1, 255))).toBe(1);
    expect(compareBytes(u(0, 255), u(1))).toBe(-1);
  });
});

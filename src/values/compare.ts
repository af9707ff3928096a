/**
 * The total order of values, used by indexes and `.order(...)`.
 *
 * Types first: undefined < null < int64 < float64 < boolean < string < bytes < array < object.
 * Within a type: numbers -Infinity … -0 < 0 … +Infinity < NaN (-0 and 0 are distinct, NaN
 * equals itself and sorts last); strings by Unicode code point (the same as UTF-8 byte order,
 * which is what `indexKey.ts` writes); bytes bytewise; arrays element by element; objects by
 * their entries sorted by key. Shorter sorts first when one is a prefix of the other.
 * `indexKey.ts` must keep exactly this order; its property tests hold the two together.
 */
import type { Value } from "./value.js";

/** The rank of each type in the order. */
export const TypeRank = {
  Undefined: 0,
  Null: 1,
  Int64: 2,
  Float64: 3,
  Boolean: 4,
  String: 5,
  Bytes: 6,
  Array: 7,
  Object: 8,
} as const;
export type TypeRank = (typeof TypeRank)[keyof typeof TypeRank];

/**
 * The rank of a value's type in the order.
 *
 * @example
 * typeRank(1n) < typeRank(0); // true: every int64 sorts before every float64
 */
export function typeRank(value: Value | undefined): TypeRank {
  switch (typeof value) {
    case "undefined":
      return TypeRank.Undefined;
    case "bigint":
      return TypeRank.Int64;
    case "number":
      return TypeRank.Float64;
    case "boolean":
      return TypeRank.Boolean;
    case "string":
      return TypeRank.String;
    default:
      if (value === null) return TypeRank.Null;
      if (value instanceof ArrayBuffer) return TypeRank.Bytes;
      return Array.isArray(value) ? TypeRank.Array : TypeRank.Object;
  }
}

/**
 * Compares two values in the total order: negative if `a` sorts first, 0 if equal, positive
 * if `b` does.
 *
 * @example
 * [3, null, "a", 1n].sort(compareValues); // [null, 1n, 3, "a"]
 * compareValues(-0, 0); // -1
 */
export function compareValues(a: Value | undefined, b: Value | undefined): number {
  const rankA = typeRank(a);
  const rankB = typeRank(b);
  if (rankA !== rankB) return rankA < rankB ? -1 : 1;
  switch (rankA) {
    case TypeRank.Undefined:
    case TypeRank.Null:
      return 0;
    case TypeRank.Int64:
      return (a as bigint) < (b as bigint) ? -1 : (a as bigint) > (b as bigint) ? 1 : 0;
    case TypeRank.Float64:
      return compareFloat64(a as number, b as number);
    case TypeRank.Boolean:
      return a === b ? 0 : a ? 1 : -1;
    case TypeRank.String:
      return compareStrings(a as string, b as string);
    case TypeRank.Bytes:
      return compareBytes(new Uint8Array(a as ArrayBuffer), new Uint8Array(b as ArrayBuffer));
    case TypeRank.Array:
      return compareArrays(a as Value[], b as Value[]);
    case TypeRank.Object:
      return compareObjects(a as Record<string, Value | undefined>, b as Record<string, Value | undefined>);
  }
}

function compareFloat64(a: number, b: number): number {
  if (a < b) return -1;
  if (a > b) return 1;
  if (a === b) {
    // Equal numerically; only 0 and -0 still differ.
    if (a !== 0) return 0;
    const negA = 1 / a < 0;
    return negA === 1 / b < 0 ? 0 : negA ? -1 : 1;
  }
  // At least one is NaN, and NaN sorts after every other number.
  const nanA = Number.isNaN(a);
  return nanA === Number.isNaN(b) ? 0 : nanA ? 1 : -1;
}

/**
 * Compares strings by Unicode code point, which is also UTF-8 byte order. JavaScript's `<`
 * compares UTF-16 code units instead, which puts U+10000 and above (stored as surrogates,
 * 0xD800–0xDFFF) before U+E000–U+FFFF. Lone surrogates count as their own code point.
 *
 * @example
 * compareStrings("\u{1F600}", "\uFFFF"); // 1, whereas "\u{1F600}" < "\uFFFF" is true
 */
export function compareStrings(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  let i = 0;
  while (i < length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === length) return a.length - b.length < 0 ? -1 : a.length === b.length ? 0 : 1;
  const unitA = a.charCodeAt(i);
  const unitB = b.charCodeAt(i);
  // Below the surrogates, code units are code points.
  if (unitA < 0xd800 && unitB < 0xd800) return unitA < unitB ? -1 : 1;
  // The strings may differ in the low half of a pair whose high half they share: compare the
  // code points that start at that high half.
  let start = i;
  if (i > 0 && isHighSurrogate(a.charCodeAt(i - 1)) && (isLowSurrogate(unitA) || isLowSurrogate(unitB))) start = i - 1;
  const pointA = a.codePointAt(start)!;
  const pointB = b.codePointAt(start)!;
  return pointA < pointB ? -1 : pointA > pointB ? 1 : 0;
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

/** Compares bytes like `memcmp`, a prefix sorting first. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

function compareArrays(a: Value[], b: Value[]): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const order = compareValues(a[i], b[i]);
    if (order !== 0) return order;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

function compareObjects(a: Record<string, Value | undefined>, b: Record<string, Value | undefined>): number {
  const keysA = presentKeys(a);
  const keysB = presentKeys(b);
  const length = Math.min(keysA.length, keysB.length);
  for (let i = 0; i < length; i++) {
    const byKey = compareStrings(keysA[i]!, keysB[i]!);
    if (byKey !== 0) return byKey;
    const byValue = compareValues(a[keysA[i]!], b[keysB[i]!]);
    if (byValue !== 0) return byValue;
  }
  return keysA.length < keysB.length ? -1 : keysA.length > keysB.length ? 1 : 0;
}

/**
 * The keys of an object's present (not `undefined`) fields, in code point order.
 *
 * @example
 * presentKeys({ b: 1, a: 2, gone: undefined }); // ["a", "b"]
 */
export function presentKeys(object: Record<string, Value | undefined>): string[] {
  return Object.keys(object)
    .filter((key) => object[key] !== undefined)
    .sort(compareStrings);
}

/**
 * Turns `withIndex(name, q => q.eq(...).gt(...).lt(...))` into a key range.
 *
 * Index keys are tuples of field values encoded so that byte order is value order and the
 * encoding of a tuple prefix is a byte prefix of the full key. So:
 *   eq(a).eq(b)        → all keys starting with enc(a, b)
 *   ... .gte(c, x)     → from enc(a, b, x)                        (inclusive)
 *   ... .gt(c, x)      → from the first key after every enc(a, b, x, ...)
 *   ... .lt(c, y)      → up to enc(a, b, y)                       (exclusive)
 *   ... .lte(c, y)     → up to the first key after every enc(a, b, y, ...)
 * The builder checks field order as it goes, so misuse fails with the index's field list.
 */
import { checkValue, walkinError } from "../values/index.js";
import type { Value } from "../values/index.js";
import { encodeIndexKey, prefixSuccessor } from "../values/indexKey.js";
import type { KeyBound, KeyRange } from "../storage/types.js";
import type { IndexInfo } from "./catalog.js";
import { prefixRange } from "./readSet.js";

type Step = "eq" | "lower" | "upper";

const exclusive = (bound: KeyBound | undefined): KeyBound | undefined => bound && { key: bound.key, inclusive: false };

export class IndexRangeBuilderImpl {
  private readonly equalities: (Value | undefined)[] = [];
  private lower: { op: "gt" | "gte"; value: Value | undefined } | null = null;
  private upper: { op: "lt" | "lte"; value: Value | undefined } | null = null;
  private boundField: string | null = null;
  private step: Step = "eq";
  readonly __isIndexRange = true;

  constructor(private readonly index: IndexInfo) {}

  eq(field: string, value: Value | undefined) {
    if (this.step !== "eq") this.fail(`eq("${field}") must come before gt/gte/lt/lte`);
    this.expectField(field, this.equalities.length);
    this.checkBound("eq", field, value);
    this.equalities.push(value);
    return this;
  }
  gt(field: string, value: Value | undefined) { return this.setLower("gt", field, value); }
  gte(field: string, value: Value | undefined) { return this.setLower("gte", field, value); }
  lt(field: string, value: Value | undefined) { return this.setUpper("lt", field, value); }
  lte(field: string, value: Value | undefined) { return this.setUpper("lte", field, value); }

  private setLower(op: "gt" | "gte", field: string, value: Value | undefined) {
    if (this.step !== "eq") this.fail(`${op}("${field}") must come right after the eq() calls, before lt/lte`);
    this.expectField(field, this.equalities.length);
    this.checkBound(op, field, value);
    this.lower = { op, value };
    this.boundField = field;
    this.step = "lower";
    return this;
  }

  private setUpper(op: "lt" | "lte", field: string, value: Value | undefined) {
    if (this.step === "upper") this.fail(`only one upper bound (lt/lte) is allowed`);
    if (this.boundField !== null && field !== this.boundField) {
      this.fail(`${op}("${field}") must bound the same field as the lower bound ("${this.boundField}")`);
    }
    if (this.boundField === null) this.expectField(field, this.equalities.length);
    this.checkBound(op, field, value);
    this.upper = { op, value };
    this.boundField = field;
    this.step = "upper";
    return this;
  }

  /** A bound is a value, or undefined for a missing field: a Date or a Map is refused, not encoded as {}. */
  private checkBound(op: string, field: string, value: unknown) {
    // Strings, numbers, booleans and null are values as they are; only the rest needs the walk
    // (and its description, built only then: this runs for every lookup).
    const type = typeof value;
    if (value === undefined || value === null || type === "string" || type === "number" || type === "boolean") return;
    checkValue(value, `withIndex("${this.index.name}", (q) => q.${op}("${field}", …))`);
  }

  private expectField(field: string, position: number) {
    const expected = this.index.fields[position];
    if (field !== expected) {
      this.fail(expected === undefined
        ? `"${field}" is past the last field of the index`
        : `expected field "${expected}" at position ${position}, got "${field}"`);
    }
  }

  private fail(problem: string): never {
    throw walkinError("MISUSE", `withIndex("${this.index.name}"): ${problem}. ` +
      `The index's fields are [${this.index.fields.join(", ")}]; use eq() on a prefix of them in order, then bound the next one.`);
  }

  toKeyRange(): KeyRange {
    if (this.lower === null && this.upper === null) return prefixRange(encodeIndexKey(this.equalities));
    const prefix = encodeIndexKey(this.equalities);
    const withValue = (value: Value | undefined) => encodeIndexKey([...this.equalities, value]);
    // The first key after every key that starts with `key` (null only for an all-0xFF key,
    // which the encoding never produces because type tags are below 0xFF).
    const after = (key: Uint8Array): KeyBound | undefined => {
      const next = prefixSuccessor(key);
      return next === null ? undefined : { key: next, inclusive: true };
    };
    const whole = prefixRange(prefix);
    let lower: KeyBound | undefined = whole.lower;
    let upper: KeyBound | undefined = whole.upper;
    if (this.lower) {
      const key = withValue(this.lower.value);
      lower = this.lower.op === "gte" ? { key, inclusive: true } : after(key);
    }
    if (this.upper) {
      const key = withValue(this.upper.value);
      upper = this.upper.op === "lt" ? { key, inclusive: false } : exclusive(after(key)) ?? whole.upper;
    }
    return { lower, upper };
  }
}

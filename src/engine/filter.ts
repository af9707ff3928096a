/**
 * `.filter(q => ...)` expressions. Each builder call returns a small closure over the document;
 * comparisons use the same total order as indexes, so `q.lt(q.field("n"), 5)` agrees with
 * `withIndex(...).lt("n", 5)` for every value, including mixed types.
 */
import { checkValue, compareValues, walkinError } from "../values/index.js";
import type { Value } from "../values/index.js";
import type { Doc } from "./documents.js";
import { getFieldPath } from "./documents.js";

const EXPRESSION = Symbol("walkin.expression");

interface ExpressionImpl {
  [EXPRESSION]: true;
  evaluate(doc: Doc): Value | undefined;
}

function expr(evaluate: (doc: Doc) => Value | undefined): ExpressionImpl {
  return { [EXPRESSION]: true, evaluate };
}

function lift(value: unknown): ExpressionImpl {
  if (typeof value === "object" && value !== null && (value as ExpressionImpl)[EXPRESSION]) return value as ExpressionImpl;
  // Anything else must be a value: a Date or a Map would compare as {}, and a Promise (an
  // async callback's answer) would match no document, all without a word.
  if (value !== undefined) checkValue(value, "filter() operand");
  return expr(() => value as Value);
}

function arithmetic(name: string, op: (a: any, b: any) => any) {
  return (left: unknown, right: unknown) => {
    const l = lift(left);
    const r = lift(right);
    return expr((doc) => {
      const a = l.evaluate(doc);
      const b = r.evaluate(doc);
      if (typeof a !== typeof b || (typeof a !== "number" && typeof a !== "bigint")) {
        throw walkinError("INVALID_ARGUMENT", `filter: q.${name}() needs two numbers or two int64s; got ${typeof a} and ${typeof b}.`);
      }
      return op(a, b);
    });
  };
}

/**
 * The boolean an operand of `q.and`/`q.or`/`q.not` (or the whole predicate) evaluated to. As in
 * Convex, anything else fails: read as false, `.filter((q) => q.field("published"))` would
 * silently drop documents missing the field, and `q.not()` of it silently keep them.
 */
function asBoolean(value: Value | undefined, where: string): boolean {
  if (typeof value === "boolean") return value;
  const what = value === undefined ? "undefined (a missing field)" : value === null ? "null" : Array.isArray(value) ? "an array" : typeof value === "bigint" ? "an int64" : typeof value;
  throw walkinError("INVALID_ARGUMENT", `filter: ${where} needs a boolean, but got ${what}, which cannot be used as a boolean. ` +
    `Compare instead, e.g. q.eq(q.field("done"), true).`);
}

function comparison(test: (order: number) => boolean) {
  return (left: unknown, right: unknown) => {
    const l = lift(left);
    const r = lift(right);
    return expr((doc) => test(compareValues(l.evaluate(doc), r.evaluate(doc))));
  };
}

export const filterBuilder = {
  field: (path: string) => expr((doc) => getFieldPath(doc, path)),
  eq: comparison((c) => c === 0),
  neq: comparison((c) => c !== 0),
  lt: comparison((c) => c < 0),
  lte: comparison((c) => c <= 0),
  gt: comparison((c) => c > 0),
  gte: comparison((c) => c >= 0),
  and: (...items: unknown[]) => {
    const parts = items.map(lift);
    return expr((doc) => parts.every((part) => asBoolean(part.evaluate(doc), "q.and()")));
  },
  or: (...items: unknown[]) => {
    const parts = items.map(lift);
    return expr((doc) => parts.some((part) => asBoolean(part.evaluate(doc), "q.or()")));
  },
  not: (item: unknown) => {
    const part = lift(item);
    return expr((doc) => !asBoolean(part.evaluate(doc), "q.not()"));
  },
  add: arithmetic("add", (a, b) => a + b),
  sub: arithmetic("sub", (a, b) => a - b),
  mul: arithmetic("mul", (a, b) => a * b),
  div: arithmetic("div", (a, b) => a / b),
  mod: arithmetic("mod", (a, b) => a % b),
  neg: (value: unknown) => {
    const v = lift(value);
    return expr((doc) => {
      const x = v.evaluate(doc);
      if (typeof x !== "number" && typeof x !== "bigint") {
        throw walkinError("INVALID_ARGUMENT", `filter: q.neg() needs a number or int64; got ${typeof x}.`);
      }
      return -x;
    });
  },
};

/** Compiles a `.filter` callback into a document predicate. */
export function compileFilter(predicate: (q: typeof filterBuilder) => unknown): (doc: Doc) => boolean {
  const compiled = lift(predicate(filterBuilder));
  return (doc) => asBoolean(compiled.evaluate(doc), "the filter() predicate");
}

/**
 * Checking values against validators, with messages that name the path of the first mismatch:
 * `args.items[2].qty: expected number, received string`.
 *
 * `validateResult` returns a result and is what the engine uses; `validate` throws
 * `INVALID_ARGUMENT` and is for API boundaries. This runs on every function call and every
 * document write, so the success path allocates nothing: a failure records its path as bare
 * keys while the recursion unwinds, and the path string is built only then.
 */
import { walkinError } from "./errors.js";
import { formatPath, truncate, type PathKey } from "./path.js";
import { INT64_MAX, INT64_MIN, INT64_RANGE_PROBLEM, isPlainObject } from "./value.js";
import type { GenericValidator, VObject, VUnion } from "./validatorTypes.js";

export interface ValidateOptions {
  /** The name of the value in messages; "value" when omitted. */
  path?: string;
  /** Decides whether `id` is an ID of `tableName`; without it any string passes `v.id(...)`. */
  isIdOfTable?: (tableName: string, id: string) => boolean;
  /** The value comes from server code, not a client (formats may accept more from it). */
  trusted?: boolean;
}

export type ValidateResult = { ok: true } | { ok: false; path: string; message: string };

// A mismatch found deep inside: `keys` is the path innermost-first (pushed while unwinding) and
// `problem` the message without its path.
interface Failure {
  keys: PathKey[];
  problem: string;
}

const OK: ValidateResult = Object.freeze({ ok: true });
const MAX_SHOWN_CHARS = 40;
const MAX_LISTED_FIELDS = 20;
/** A union failure explains this many of its members at most. */
const MAX_UNION_MEMBERS_EXPLAINED = 4;

/**
 * Checks `value` against `validator` and returns the first mismatch, without throwing.
 * `message` is complete, starting with `path`.
 *
 * @example
 * validateResult(v.object({ qty: v.number() }), { qty: "2" }, { path: "args" });
 * // { ok: false, path: "args.qty", message: "args.qty: expected number, received string" }
 */
export function validateResult(validator: GenericValidator, value: unknown, options?: ValidateOptions): ValidateResult {
  // `v.optional` at the top means the whole value may be absent (an optional return value).
  if (value === undefined && validator.isOptional === "optional") return OK;
  const failure = check(validator, value, options);
  if (failure === undefined) return OK;
  const path = formatPath(options?.path ?? "value", failure.keys.reverse());
  return { ok: false, path, message: `${path}: ${failure.problem}` };
}

/**
 * Throws `INVALID_ARGUMENT` naming the first mismatch between `value` and `validator`.
 *
 * @example
 * validate(v.object({ name: v.string() }), {}, { path: "args" });
 * // WalkinError: args.name: missing required field (expected string)
 */
export function validate(validator: GenericValidator, value: unknown, options?: ValidateOptions): void {
  const result = validateResult(validator, value, options);
  if (!result.ok) throw walkinError("INVALID_ARGUMENT", result.message);
}

function check(validator: GenericValidator, value: unknown, options: ValidateOptions | undefined): Failure | undefined {
  switch (validator.kind) {
    case "string": {
      if (typeof value !== "string") return mismatch(validator, value);
      const problem = validator.format?.check(value, { trusted: options?.trusted ?? false }) ?? null;
      return problem === null ? undefined : { keys: [], problem: `expected ${validator.format!.name}: ${problem}` };
    }
    case "float64":
      return typeof value === "number" ? undefined : mismatch(validator, value);
    case "int64":
      if (typeof value !== "bigint") return mismatch(validator, value);
      return value >= INT64_MIN && value <= INT64_MAX ? undefined : { keys: [], problem: INT64_RANGE_PROBLEM };
    case "boolean":
      return typeof value === "boolean" ? undefined : mismatch(validator, value);
    case "null":
      return value === null ? undefined : mismatch(validator, value);
    case "bytes":
      return value instanceof ArrayBuffer ? undefined : mismatch(validator, value);
    case "any":
      return value !== undefined ? undefined : mismatch(validator, value);
    case "literal":
      // Object.is, not ===: literals match as values are equal everywhere else (index keys,
      // compareValues, Convex's own check): -0 is not 0, and NaN is NaN.
      return Object.is(value, validator.value) ? undefined : mismatch(validator, value);
    case "id":
      if (typeof value !== "string") return mismatch(validator, value);
      if (options?.isIdOfTable === undefined || options.isIdOfTable(validator.tableName, value)) return undefined;
      return { keys: [], problem: `expected an ID of table "${validator.tableName}", received ${show(value)}` };
    case "array": {
      if (!Array.isArray(value)) return mismatch(validator, value);
      for (let i = 0; i < value.length; i++) {
        const failure = check(validator.element, value[i], options);
        if (failure !== undefined) return at(failure, i);
      }
      return undefined;
    }
    case "object":
      return checkObject(validator, value, options);
    case "record": {
      if (!isObjectValue(value)) return mismatch(validator, value);
      for (const key in value) {
        const item = value[key];
        if (item === undefined || !Object.hasOwn(value, key)) continue;
        const keyFailure = check(validator.key, key, options);
        if (keyFailure !== undefined) return { keys: [shownKey(validator.key, key)], problem: `invalid key: ${keyFailure.problem}` };
        const failure = check(validator.value, item, options);
        if (failure !== undefined) return at(failure, shownKey(validator.key, key));
      }
      return undefined;
    }
    case "union":
      for (const member of validator.members) {
        // The cheap shape test first keeps failed attempts (which allocate) off the common path.
        if (couldMatch(member, value) && check(member, value, options) === undefined) return undefined;
      }
      return explainUnionFailure(validator, value, options);
    default:
      return validator satisfies never;
  }
}

// A record key of a formatted string (a session ID, say) may be a credential: error messages
// end up in logs, so the path names the key's format instead of echoing the key.
function shownKey(keyValidator: GenericValidator, key: string): PathKey {
  const format = formatName(keyValidator);
  return format === null ? key : `<${format}>`;
}

function formatName(validator: GenericValidator): string | null {
  if (validator.kind === "string") return validator.format?.name ?? null;
  if (validator.kind === "union") {
    for (const member of validator.members) {
      const name = formatName(member);
      if (name !== null) return name;
    }
  }
  return null;
}

// Prefixes a failure's path with the key it was found under, as the recursion unwinds.
function at(failure: Failure, key: PathKey): Failure {
  failure.keys.push(key);
  return failure;
}

function checkObject(validator: VObject, value: unknown, options: ValidateOptions | undefined): Failure | undefined {
  if (!isObjectValue(value)) return mismatch(validator, value);
  const fields = validator.fields;
  for (const name in fields) {
    const fieldValidator = fields[name]!;
    // Own properties only, so a missing field named like `toString` is not found on the prototype.
    const field = Object.hasOwn(value, name) ? value[name] : undefined;
    if (field === undefined) {
      if (fieldValidator.isOptional === "optional") continue;
      return { keys: [name], problem: `missing required field (expected ${describe(fieldValidator)})${hintOf(fieldValidator)}` };
    }
    const failure = check(fieldValidator, field, options);
    if (failure !== undefined) return at(failure, name);
  }
  for (const key in value) {
    if (value[key] === undefined || Object.hasOwn(fields, key) || !Object.hasOwn(value, key)) continue;
    return { keys: [key], problem: `unexpected field (${describeAllowed(Object.keys(fields))})` };
  }
  return undefined;
}

function describeAllowed(names: string[]): string {
  if (names.length === 0) return "the validator allows no fields";
  const listed = names.slice(0, MAX_LISTED_FIELDS).join(", ");
  return `the validator allows: ${listed}${names.length > MAX_LISTED_FIELDS ? ", ..." : ""}`;
}

/**
 * Every member failed. Report the most useful mismatch: when exactly one member has the
 * value's container shape (or a discriminating literal field picks one), or is the one member
 * taking the value's type of scalar, descend into it; otherwise list what the union accepts.
 */
function explainUnionFailure(union: VUnion, value: unknown, options: ValidateOptions | undefined): Failure {
  if (Array.isArray(value) || isObjectValue(value)) {
    let candidates = flatMembers(union).filter((member) => couldMatch(member, value));
    if (candidates.length > 1 && isObjectValue(value)) {
      const narrowed = narrowByDiscriminant(candidates, value);
      if (!Array.isArray(narrowed)) return narrowed;
      candidates = narrowed;
    }
    if (candidates.length === 1) return check(candidates[0]!, value, options)!;
    // Several members have the value's shape and no literal field picks one: say what each
    // of them found wrong. Naming the shapes alone read "expected object, received object",
    // and guessing which member was meant would point at the wrong field as often as not.
    if (candidates.length > 1) {
      const problems = candidates.slice(0, MAX_UNION_MEMBERS_EXPLAINED).map((candidate, i) => {
        const failure = check(candidate, value, options)!;
        return failure.keys.length === 0 ? `member ${i + 1}: ${failure.problem}` : `member ${i + 1} at ${formatPath("", failure.keys)}: ${failure.problem}`;
      });
      const more = candidates.length > MAX_UNION_MEMBERS_EXPLAINED ? "; ..." : "";
      return { keys: [], problem: `matches none of the union's ${candidates.length} ${Array.isArray(value) ? "array" : "object"} members (${problems.join("; ")}${more})` };
    }
    return mismatch(union, value);
  }
  // A scalar refused by the union's one member of its type (a string for `v.nullable(v.id("users"))`
  // given another table's ID, a bigint beyond int64 for `v.nullable(v.int64())`): that member's
  // own explanation says what was wrong, where the list of the union's types ("expected
  // Id<"users"> | null, received string") names the very type received. Literals are left to
  // the list, which shows the value next to them.
  const sameType = flatMembers(union).filter((member) => takesTypeOf(member, value));
  if (sameType.length === 1 && sameType[0]!.kind !== "literal") return check(sameType[0]!, value, options)!;
  return mismatch(union, value);
}

/** Whether `member` accepts some scalar of `value`'s type (a literal: of its own value's type). */
function takesTypeOf(member: GenericValidator, value: unknown): boolean {
  return member.kind === "literal" ? typeof member.value === typeof value : couldMatch(member, value);
}

// Finds a field that is a literal in every candidate (`kind: v.literal("text")`) and keeps the
// candidates whose literal the value carries; a value matching none fails at that field.
function narrowByDiscriminant(candidates: GenericValidator[], value: Record<string, unknown>): GenericValidator[] | Failure {
  const objects = candidates.filter((c): c is VObject => c.kind === "object");
  if (objects.length !== candidates.length) return candidates;
  for (const name of Object.keys(objects[0]!.fields)) {
    const literals = objects.map((o) => o.fields[name]);
    if (!literals.every((l) => l !== undefined && l.kind === "literal" && l.isOptional === "required")) continue;
    const discriminant = Object.hasOwn(value, name) ? value[name] : undefined;
    const expected = [...new Set(literals.map((l) => describe(l!)))].join(" | ");
    if (discriminant === undefined) return { keys: [name], problem: `missing required field (expected ${expected})` };
    const matching = objects.filter((o) => Object.is((o.fields[name] as { value: unknown }).value, discriminant));
    if (matching.length === 0) return { keys: [name], problem: `expected ${expected}, received ${show(discriminant)}` };
    return matching;
  }
  return candidates;
}

function flatMembers(validator: GenericValidator): GenericValidator[] {
  return validator.kind === "union" ? validator.members.flatMap(flatMembers) : [validator];
}

/** A cheap test of the value's outer shape: false means `check` would certainly fail. */
function couldMatch(validator: GenericValidator, value: unknown): boolean {
  switch (validator.kind) {
    case "string":
    case "id":
      return typeof value === "string";
    case "float64":
      return typeof value === "number";
    case "int64":
      return typeof value === "bigint";
    case "boolean":
      return typeof value === "boolean";
    case "null":
      return value === null;
    case "bytes":
      return value instanceof ArrayBuffer;
    case "literal":
      return Object.is(value, validator.value);
    case "array":
      return Array.isArray(value);
    case "object":
    case "record":
      return isObjectValue(value);
    case "union":
      return validator.members.some((member) => couldMatch(member, value));
    case "any":
      return value !== undefined;
    default:
      return validator satisfies never;
  }
}

function isObjectValue(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && isPlainObject(value);
}

function mismatch(validator: GenericValidator, value: unknown): Failure {
  if (validator.kind === "id") {
    return { keys: [], problem: `expected an ID of table "${validator.tableName}", received ${received(value, false)}` };
  }
  return { keys: [], problem: `expected ${describe(validator)}, received ${received(value, mentionsLiteral(validator))}${hintOf(validator)}` };
}

/** A formatted string's advice on supplying it (a session ID: how clients send one), or "". */
function hintOf(validator: GenericValidator): string {
  return validator.kind === "string" && validator.format?.hint ? `. ${validator.format.hint}` : "";
}

/**
 * What a validator accepts, in words, as used in messages.
 *
 * @example
 * describe(v.union(v.string(), v.literal(3), v.id("users"))); // 'string | 3 | Id<"users">'
 */
export function describe(validator: GenericValidator): string {
  switch (validator.kind) {
    case "float64":
      return "number";
    case "int64":
      return "bigint";
    case "bytes":
      return "ArrayBuffer";
    case "id":
      return `Id<"${validator.tableName}">`;
    case "literal":
      return show(validator.value);
    case "record":
      return "object";
    case "string":
      return validator.format ? validator.format.name : "string";
    case "union": {
      const names = [...new Set(flatMembers(validator).map(describe))];
      return names.length === 0 ? "never (an empty union)" : names.join(" | ");
    }
    default:
      return validator.kind;
  }
}

function mentionsLiteral(validator: GenericValidator): boolean {
  return validator.kind === "literal" || (validator.kind === "union" && validator.members.some(mentionsLiteral));
}

// Next to literals, the received value itself is the useful part ("c"); otherwise its type.
function received(value: unknown, showValue: boolean): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
    case "number":
    case "bigint":
    case "boolean":
      return showValue ? show(value) : typeof value;
    case "object":
      if (Array.isArray(value)) return "array";
      if (value instanceof ArrayBuffer) return "ArrayBuffer";
      if (isPlainObject(value)) return "object";
      return (value as { constructor?: { name?: string } }).constructor?.name || "object";
    default:
      return typeof value;
  }
}

/** A scalar as it would be written in code, long strings cut: `"abc..."`, `-0`, `5n`. */
function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(truncate(value, MAX_SHOWN_CHARS));
  if (typeof value === "bigint") return `${value}n`;
  if (Object.is(value, -0)) return "-0";
  return String(value);
}

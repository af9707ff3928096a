/**
 * What a Walk-in value is, and the check that a JavaScript value is one.
 *
 * Values are what functions take and return and what documents hold: null, int64 (bigint),
 * float64 (number, including NaN, ±Infinity and -0), boolean, string, bytes (ArrayBuffer),
 * arrays and plain objects. `undefined` exists only as "this field is absent". Everything else
 * (functions, class instances, cycles, odd field names) is refused here with the path of the
 * offending part, so a bad value fails where it was made rather than deep inside the engine.
 *
 * The rules live in small exported helpers (`fieldNameProblem`, `nonValueProblem`, `ValueWalk`)
 * because `json.ts` applies the same rules while it encodes, in a single pass. The limits
 * Convex sets on values (elements per array, fields per object, valid Unicode in strings) are
 * `checkValue`'s alone: it runs wherever values reach the server (args, return values,
 * documents written), so the encoder does not repeat them.
 */
import { walkinError } from "./errors.js";
import { formatPath, type PathKey } from "./path.js";

/**
 * A value Walk-in can store and send. In objects, `undefined` means "field absent".
 *
 * @example
 * const doc: Value = { name: "Ada", visits: 3n, avatar: new ArrayBuffer(8), tags: ["x"] };
 */
export type Value =
  | null
  | bigint
  | number
  | boolean
  | string
  | ArrayBuffer
  | Value[]
  | { [key: string]: Value | undefined };

/**
 * The JSON form of a value on the wire and at rest (see `convertToJson`).
 *
 * @example
 * const json: JSONValue = { count: { $integer: "AQAAAAAAAAA=" } };
 */
export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

/** Containers may nest this deep; deeper is refused (and is how cycles are caught cheaply). */
export const MAX_VALUE_DEPTH = 64;
/**
 * How deep a stored document may nest, the document itself counted as the first level:
 * Convex's "field nesting depth" (https://docs.convex.dev/production/state/limits).
 */
export const MAX_DOCUMENT_DEPTH = 16;
/** Elements one array may hold (Convex's limit, for every value). */
export const MAX_ARRAY_ELEMENTS = 8192;
/** Fields one object may hold (Convex's limit, for every value; a document's system fields count). */
export const MAX_OBJECT_FIELDS = 1024;
/** Longest allowed field name, in UTF-16 code units. */
export const MAX_FIELD_NAME_LENGTH = 1024;
export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

/**
 * Throws `INVALID_VALUE` unless `value` is a `Value` within Convex's limits (arrays of at most
 * 8192 elements, objects of at most 1024 fields, strings of valid Unicode, nesting at most
 * `maxDepth` levels: 64 for any value, `MAX_DOCUMENT_DEPTH` for a document); the message
 * names the offending path and the limit.
 *
 * @example
 * checkValue({ when: new Date() }, "args");
 * // WalkinError: args.when: Date is not a value: store date.getTime() (a number) instead
 */
export function checkValue(value: unknown, path = "value", maxDepth = MAX_VALUE_DEPTH): asserts value is Value {
  if (value === undefined) new ValueWalk(path).fail(UNDEFINED_PROBLEM);
  if (isFlatObject(value)) return;
  checkInner(value, new ValueWalk(path, maxDepth));
}

/**
 * True for a plain object of at most `MAX_OBJECT_FIELDS` own fields, all well-formed strings,
 * finite-or-not numbers, booleans, null or absent, under valid names: most function arguments
 * (`{ id }`, `{ body, author }`) and documents. Such a value is a `Value` with no walk to set
 * up. Anything else (nesting, bigints, a field `checkInner` would refuse) returns false and
 * gets the full walk, which also words the error.
 */
function isFlatObject(value: unknown): boolean {
  if (typeof value !== "object" || value === null || Object.getPrototypeOf(value) !== Object.prototype) return false;
  let fields = 0;
  for (const key in value) {
    if (!Object.hasOwn(value, key) || fieldNameProblem(key) !== undefined) return false;
    const field: unknown = (value as Record<string, unknown>)[key];
    const type = typeof field;
    if (type === "string") {
      if (!isWellFormed(field as string)) return false;
    } else if (type !== "number" && type !== "boolean" && type !== "undefined" && field !== null) {
      return false;
    }
    if (++fields > MAX_OBJECT_FIELDS) return false;
  }
  return true;
}

/**
 * True when `text` has no unpaired surrogate, so it is valid Unicode (and UTF-8 can hold it):
 * Convex refuses other strings. `String.prototype.isWellFormed` answers at once for the
 * strings V8 keeps one byte per character (they hold no surrogates); the regular expression
 * is for the browsers that lack it (before 2023).
 */
const isWellFormed: (text: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === "function"
    ? (text) => (text as string & { isWellFormed(): boolean }).isWellFormed()
    : (text) => !LONE_SURROGATE.test(text);

// With the `u` flag, a surrogate pair is one code point; only a lone surrogate is in \p{Cs}.
const LONE_SURROGATE = /\p{Cs}/u;

/** Why `text` is not valid Unicode: where its first unpaired surrogate is. */
function loneSurrogateProblem(text: string): string {
  const at = text.search(LONE_SURROGATE);
  const hex = text.charCodeAt(at).toString(16).toUpperCase();
  return (
    `strings must be valid Unicode, found an unpaired surrogate U+${hex} at position ${at} ` +
    "(half of a character such as an emoji, often from cutting text with slice or substring): " +
    "cut at whole characters, e.g. with Array.from(text), or clean it with text.toWellFormed()"
  );
}

function checkInner(value: unknown, walk: ValueWalk): void {
  switch (typeof value) {
    case "string":
      if (!isWellFormed(value)) walk.fail(loneSurrogateProblem(value));
      return;
    case "number":
    case "boolean":
      return;
    case "bigint":
      if (value < INT64_MIN || value > INT64_MAX) walk.fail(INT64_RANGE_PROBLEM);
      return;
    case "object": {
      if (value === null || value instanceof ArrayBuffer) return;
      if (Array.isArray(value)) {
        if (value.length > MAX_ARRAY_ELEMENTS) {
          walk.fail(`arrays hold at most ${MAX_ARRAY_ELEMENTS} elements (this one has ${value.length}): ` +
            "keep the items as documents of a table of their own, or split the array");
        }
        walk.enter(value);
        for (let i = 0; i < value.length; i++) {
          const element: unknown = value[i];
          walk.keys.push(i);
          if (element === undefined) walk.fail(UNDEFINED_IN_ARRAY_PROBLEM);
          checkInner(element, walk);
          walk.keys.pop();
        }
        walk.leave();
        return;
      }
      if (!isPlainObject(value)) return walk.fail(nonValueProblem(value));
      const keys = Object.keys(value);
      if (keys.length > MAX_OBJECT_FIELDS) {
        // Fields set to undefined are absent: only the others count.
        const present = keys.filter((key) => (value as Record<string, unknown>)[key] !== undefined).length;
        if (present > MAX_OBJECT_FIELDS) walk.fail(tooManyFieldsProblem(present));
      }
      walk.enter(value);
      for (const key of keys) {
        const field: unknown = (value as Record<string, unknown>)[key];
        if (field === undefined) continue; // absent field
        walk.keys.push(key);
        const problem = fieldNameProblem(key);
        if (problem !== undefined) walk.fail(problem);
        checkInner(field, walk);
        walk.keys.pop();
      }
      walk.leave();
      return;
    }
    default:
      walk.fail(nonValueProblem(value));
  }
}

/** Why an object of `count` fields is refused (`MAX_OBJECT_FIELDS`). */
function tooManyFieldsProblem(count: number): string {
  return `objects hold at most ${MAX_OBJECT_FIELDS} fields (this one has ${count}): ` +
    "to key by arbitrary text, store an array of { key, value } objects, or documents of a table of their own";
}

export const UNDEFINED_PROBLEM = "undefined is not a value: use null, or leave the field out";
export const UNDEFINED_IN_ARRAY_PROBLEM = "undefined is not allowed in arrays (nor are holes): use null";
export const INT64_RANGE_PROBLEM = "bigint is outside the signed 64-bit range of int64 (-2^63 to 2^63-1)";

/** True for `{}`-style objects: those whose prototype is `Object.prototype` or `null`. */
export function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Why `name` cannot be a field name, or `undefined` when it can.
 * Names starting with "$" are reserved because the wire encoding marks special values with them.
 */
export function fieldNameProblem(name: string): string | undefined {
  if (name.length === 0) return "field names must not be empty";
  if (name.length > MAX_FIELD_NAME_LENGTH) {
    return `field names are at most ${MAX_FIELD_NAME_LENGTH} characters long (this one has ${name.length})`;
  }
  if (name.charCodeAt(0) === 0x24) {
    const encoded = WIRE_ENCODED[name];
    // Most likely a value already in its wire form (copied from a message, or from docs/protocol.md):
    // renaming would be the wrong fix.
    if (encoded !== undefined) {
      return `field names must not start with "$": {"${name}": ...} is the wire encoding of ${encoded.what}, which Walk-in writes itself; pass ${encoded.pass} instead`;
    }
    return 'field names must not start with "$" (it marks special values in the wire encoding): rename the field';
  }
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code < 0x20 || code > 0x7e) {
      const hex = code.toString(16).toUpperCase().padStart(4, "0");
      return (
        `field names may only hold printable ASCII characters, found U+${hex} at position ${i}: ` +
        "to key by arbitrary text, store an array of { key, value } objects"
      );
    }
  }
  return undefined;
}

/**
 * `out[key] = value`, except that a field named "__proto__" (a valid field name, which JSON.parse
 * makes an own field) stays a field: assigning it would set `out`'s prototype instead.
 */
export function setField(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    out[key] = value;
  }
}

/** The one-key objects of the wire encoding (see `json.ts`): what each stands for, and what to pass instead. */
const WIRE_ENCODED: Record<string, { what: string; pass: string }> = {
  $integer: { what: "an int64 (v.int64())", pass: "the bigint itself, such as 5n or BigInt(n)" },
  $bytes: { what: "bytes (v.bytes())", pass: "the ArrayBuffer itself" },
  $float: { what: "a special number (NaN, ±Infinity, -0)", pass: "the number itself" },
};

/** Explains why `value` (a function, symbol, class instance, ...) is not a value, with a fix. */
export function nonValueProblem(value: unknown): string {
  switch (typeof value) {
    case "undefined":
      return UNDEFINED_PROBLEM;
    case "function":
      return "functions are not values: call it and store its result, or leave it out";
    case "symbol":
      return "symbols are not values: use a string instead";
    case "bigint":
      return INT64_RANGE_PROBLEM;
    case "object":
      break;
    default:
      return `${typeof value} is not a value`;
  }
  if (value instanceof Date) return "Date is not a value: store date.getTime() (a number) instead";
  if (value instanceof Map) return "Map is not a value: store Object.fromEntries(map) or [...map.entries()] instead";
  if (value instanceof Set) return "Set is not a value: store [...set] instead";
  if (value instanceof Promise) return "Promise is not a value: did you forget to await it?";
  if (ArrayBuffer.isView(value)) {
    const name = value.constructor?.name ?? "typed array";
    // Not `view.slice().buffer`: a Node.js Buffer's slice shares memory, and its buffer is a
    // whole pool of other data (8 KiB for a small Buffer).
    return `${name} is not a value: only ArrayBuffer holds bytes; copy the ones it views with view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength)`;
  }
  if (typeof SharedArrayBuffer !== "undefined" && value instanceof SharedArrayBuffer) {
    return "SharedArrayBuffer is not a value: copy it into an ArrayBuffer";
  }
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  const what = typeof name === "string" && name !== "" ? `an instance of class ${name}` : "this object";
  return `${what} is not a value: only plain objects, arrays and ArrayBuffer are; copy the fields you need into a plain object`;
}

/**
 * The state of one walk over a value: the path so far (as bare keys, formatted only on failure)
 * and the stack of containers being visited (for the depth limit and cycle reports).
 *
 * Cycles cost nothing on the success path: a cycle always exceeds the depth limit, and only
 * then is the container stack searched for the repeated object, to report the cycle by name.
 */
export class ValueWalk {
  readonly keys: PathKey[] = [];
  private readonly containers: object[] = [];

  constructor(
    private readonly root: string,
    private readonly maxDepth = MAX_VALUE_DEPTH,
  ) {}

  /** Enters an array or object; throws when it is nested too deep or contains itself. */
  enter(container: object): void {
    this.containers.push(container);
    if (this.containers.length > this.maxDepth) this.failTooDeep();
  }

  leave(): void {
    this.containers.pop();
  }

  /** Throws `INVALID_VALUE` for the current path. */
  fail(problem: string): never {
    throw walkinError("INVALID_VALUE", `${formatPath(this.root, this.keys)}: ${problem}`);
  }

  private failTooDeep(): never {
    // containers[k] was entered when the path was keys[0..k): find the first object that
    // is its own ancestor and name both places.
    const stack = this.containers;
    for (let k = 1; k < stack.length; k++) {
      const first = stack.indexOf(stack[k]!);
      if (first < k) {
        const here = formatPath(this.root, this.keys.slice(0, k));
        const ancestor = formatPath(this.root, this.keys.slice(0, first));
        throw walkinError(
          "INVALID_VALUE",
          `${here}: cycle: this is the same object as ${ancestor}, and a value cannot contain itself`,
        );
      }
    }
    if (this.maxDepth === MAX_DOCUMENT_DEPTH) {
      this.fail(`nesting is deeper than ${MAX_DOCUMENT_DEPTH} levels, the limit for documents (the document itself ` +
        "counts as one): flatten the data, or keep the inner part in a table of its own");
    }
    this.fail(`nesting is deeper than ${this.maxDepth} levels`);
  }
}

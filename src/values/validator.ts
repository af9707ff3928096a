/**
 * The `v` builder: validators for function arguments, return values and table documents.
 *
 * A validator is a frozen data-only object (`{ kind, isOptional, ... }`) that code can inspect,
 * serialize and share; building one never mutates another. Misuse is reported when the
 * validator is built (a `MISUSE` error saying how to fix it) rather than when data first
 * fails to match. The types live in `validatorTypes.ts` and are re-exported here.
 */
import { walkinError } from "./errors.js";
import type { Id } from "./id.js";
import { checkValue, fieldNameProblem, setField } from "./value.js";
import type {
  GenericValidator,
  Infer,
  LiteralValue,
  ObjectType,
  OptionalProperty,
  PropertyValidators,
  VAny,
  VArray,
  VBoolean,
  VBytes,
  VFloat64,
  VId,
  VInt64,
  VLiteral,
  VNull,
  VObject,
  VOptional,
  VRecord,
  VString,
  VUnion,
  Validator,
} from "./validatorTypes.js";

export type * from "./validatorTypes.js";
import type { StringFormat } from "./validatorTypes.js";
export type { GenericId, Id } from "./id.js";

// Recognises validators even from another copy of the package; inherited, so it never shows
// up in `Object.keys`, JSON or equality checks of the validator's own fields. `isConvexValidator`
// is Convex's public mark of a validator (code written for Convex tells a validator from a
// record of validators by it), inherited for the same reason.
const VALIDATOR_BRAND = Symbol.for("walkin.validator");
const validatorPrototype: object = Object.freeze(
  Object.defineProperties({}, { [VALIDATOR_BRAND]: { value: true }, isConvexValidator: { value: true } }),
);

// Object validators also derive new ones, as Convex's VObject does (`omit`, `pick`, `partial`,
// `extend`): methods on their prototype, so they stay out of `Object.keys` and JSON as the brand does.
type ObjectLike = { fields: Record<string, GenericValidator>; isOptional: OptionalProperty };
const objectValidatorPrototype: object = Object.freeze(
  Object.create(validatorPrototype, {
    omit: { value(this: ObjectLike, ...names: string[]) {
      const fields = { ...this.fields };
      for (const name of names) delete fields[name];
      return derived(this, fields);
    } },
    pick: { value(this: ObjectLike, ...names: string[]) {
      const fields: Record<string, GenericValidator> = {};
      for (const name of names) if (Object.hasOwn(this.fields, name)) setField(fields, name, this.fields[name]);
      return derived(this, fields);
    } },
    partial: { value(this: ObjectLike) {
      const fields: Record<string, GenericValidator> = {};
      for (const name of Object.keys(this.fields)) setField(fields, name, v.optional(this.fields[name]! as Validator<any, OptionalProperty, any>));
      return derived(this, fields);
    } },
    extend: { value(this: ObjectLike, more: PropertyValidators) {
      return derived(this, { ...this.fields, ...more });
    } },
  }) as object,
);

function derived(from: ObjectLike, fields: Record<string, GenericValidator>): GenericValidator {
  const object = v.object(fields as PropertyValidators);
  return from.isOptional === "optional" ? v.optional(object) : object;
}

function make<T>(fields: object): T {
  const prototype = (fields as { kind?: unknown }).kind === "object" ? objectValidatorPrototype : validatorPrototype;
  return Object.freeze(Object.assign(Object.create(prototype) as object, fields)) as T;
}

/**
 * True for anything built by `v`.
 *
 * @example
 * isValidator(v.string()); // true
 * isValidator({ name: v.string() }); // false: that is a record of validators
 */
export function isValidator(value: unknown): value is GenericValidator {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[VALIDATOR_BRAND] === true;
}

function misuse(message: string): never {
  throw walkinError("MISUSE", message);
}

function describeArgument(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : typeof value;
}

function requireValidator(value: unknown, where: string): asserts value is GenericValidator {
  if (!isValidator(value)) {
    misuse(`${where} expects a validator such as v.string(), received ${describeArgument(value)}`);
  }
}

// `v.optional` only means "this object field may be absent"; anywhere else it has no meaning,
// so say so at definition instead of letting it silently accept `undefined`.
function requireNotOptional(validator: GenericValidator, where: string, fix: string): void {
  if (validator.isOptional === "optional") {
    misuse(`${where} cannot be v.optional(...): v.optional only marks an object field as possibly absent. ${fix}`);
  }
}

// A literal that is not a value (a bigint beyond int64, a string with an unpaired surrogate)
// can never be sent or stored, so nothing could ever match it: say so now, as Convex does
// when the functions are pushed.
function requireLiteralIsValue(value: LiteralValue): void {
  try {
    checkValue(value, "v.literal(value)");
  } catch (error) {
    misuse(`${(error as Error).message} (no value could ever match this literal)`);
  }
}

function isStringKeyValidator(validator: GenericValidator): boolean {
  switch (validator.kind) {
    case "string":
    case "id":
      return true;
    case "literal":
      return typeof validator.value === "string";
    case "union":
      return validator.members.every(isStringKeyValidator);
    default:
      return false;
  }
}

function required<T>(fields: object): T {
  return make<T>({ ...fields, isOptional: "required" });
}

type RequiredValidator = Validator<any, "required", any>;

/** The type of a record whose keys match `Key`: partial when the keys are a finite set. */
export type RecordType<Key extends Validator<string, "required", any>, Value extends RequiredValidator> =
  string extends Infer<Key> ? Record<string, Infer<Value>> : Partial<Record<Infer<Key>, Infer<Value>>>;

/**
 * The validator builder.
 *
 * @example
 * const message = v.object({
 *   author: v.id("users"),
 *   body: v.string(),
 *   kind: v.union(v.literal("text"), v.literal("image")),
 *   editedAt: v.optional(v.number()),
 * });
 * type Message = Infer<typeof message>;
 */
export const v = {
  /** A string. */
  string: (): VString => required({ kind: "string" }),
  /**
   * A string of a named format, checked (and optionally normalized) beyond `typeof`.
   * @example
   * const vSlug = v.formattedString<Slug>({ name: "a slug", check: (s) => (/^[a-z-]+$/.test(s) ? null : "use a-z and -") });
   */
  formattedString: <T extends string = string>(format: StringFormat): VString<T> => {
    if (typeof format?.name !== "string" || typeof format.check !== "function") {
      misuse("v.formattedString takes { name, check(value), normalize? }");
    }
    return required({ kind: "string", format });
  },
  /** A JavaScript number (float64), including NaN, ±Infinity and -0. Same as `v.float64()`. */
  number: (): VFloat64 => required({ kind: "float64" }),
  /** A JavaScript number (float64). Same as `v.number()`. */
  float64: (): VFloat64 => required({ kind: "float64" }),
  /** A signed 64-bit integer, held as a `bigint`. */
  int64: (): VInt64 => required({ kind: "int64" }),
  /** The same as `v.int64()` (Convex's older name for it). */
  bigint: (): VInt64 => required({ kind: "int64" }),
  boolean: (): VBoolean => required({ kind: "boolean" }),
  null: (): VNull => required({ kind: "null" }),
  /** Binary data, held as an `ArrayBuffer`. */
  bytes: (): VBytes => required({ kind: "bytes" }),
  /** Any value at all; types as `any`. */
  any: (): VAny => required({ kind: "any" }),

  /** The ID of a document in `tableName`, e.g. `v.id("users")` typed `Id<"users">`. */
  id: <TableName extends string>(tableName: TableName): VId<Id<TableName>> => {
    if (typeof tableName !== "string" || tableName === "") {
      misuse(`v.id(tableName) needs the name of a table, e.g. v.id("users"), received ${describeArgument(tableName)}`);
    }
    return required({ kind: "id", tableName });
  },

  /** Exactly `value`; `v.literal("a")` is typed `"a"`. */
  literal: <T extends LiteralValue>(value: T): VLiteral<T> => {
    const type = typeof value;
    if (type !== "string" && type !== "number" && type !== "bigint" && type !== "boolean") {
      misuse(`v.literal(value) takes a string, number, bigint or boolean, received ${describeArgument(value)}`);
    }
    requireLiteralIsValue(value);
    return required({ kind: "literal", value });
  },

  /** An array whose elements all match `element`. */
  array: <Element extends RequiredValidator>(element: Element): VArray<Infer<Element>[], Element> => {
    requireValidator(element, "v.array(element)");
    requireNotOptional(
      element,
      "An array element",
      "For elements that may be missing, use v.array(v.union(x, v.null())).",
    );
    return required({ kind: "array", element });
  },

  /** An object with exactly these fields; `v.optional(...)` fields may be absent. */
  object: <Fields extends PropertyValidators>(fields: Fields): VObject<ObjectType<Fields>, Fields> => {
    if (typeof fields !== "object" || fields === null || isValidator(fields) || Array.isArray(fields)) {
      misuse(`v.object(fields) expects an object of validators like { name: v.string() }, received ${describeArgument(fields)}`);
    }
    const copy: Record<string, GenericValidator> = {};
    for (const name of Object.keys(fields)) {
      const problem = fieldNameProblem(name);
      if (problem !== undefined) misuse(`v.object: field ${JSON.stringify(name)}: ${problem}`);
      const field = fields[name];
      requireValidator(field, `v.object: field ${JSON.stringify(name)}`);
      // A field named "__proto__" (written `["__proto__"]: v.string()`) must stay a field.
      setField(copy, name, field);
    }
    return required({ kind: "object", fields: Object.freeze(copy) });
  },

  /** An object used as a map: every key matches `key`, every value matches `value`. */
  record: <Key extends Validator<string, "required", any>, Value extends RequiredValidator>(
    key: Key,
    value: Value,
  ): VRecord<RecordType<Key, Value>, Key, Value> => {
    requireValidator(key, "v.record(key, value): key");
    requireValidator(value, "v.record(key, value): value");
    requireNotOptional(key, "A record key", "Use v.record(v.string(), value).");
    requireNotOptional(value, "A record value", "A key that is not there is already absent: use v.record(key, x).");
    if (!isStringKeyValidator(key)) {
      misuse(`v.record keys are strings: use v.string(), v.id("table"), v.literal("...") or a union of those, not v.${key.kind}()`);
    }
    return required({ kind: "record", key, value });
  },

  /** A value matching any of `members`. */
  union: <Members extends RequiredValidator[]>(...members: Members): VUnion<Members[number]["type"], Members> => {
    for (const member of members) {
      requireValidator(member, "v.union(...members)");
      requireNotOptional(member, "A union member", "Make the whole union optional: v.optional(v.union(...)).");
    }
    return required({ kind: "union", members: Object.freeze([...members]) });
  },

  /** `value` or `null`: the same as `v.union(value, v.null())` (Convex's `v.nullable`). */
  nullable: <T extends RequiredValidator>(value: T): VUnion<T["type"] | null, [T, VNull]> => {
    requireValidator(value, "v.nullable(validator)");
    requireNotOptional(value, "v.nullable's validator", "Write v.optional(v.nullable(...)) for a field that may also be absent.");
    return required({ kind: "union", members: Object.freeze([value, required<VNull>({ kind: "null" })]) });
  },

  /**
   * Marks an object field as possibly absent: `{ nickname: v.optional(v.string()) }`.
   * Only meaningful as an object field (or a function's argument field).
   */
  optional: <T extends Validator<any, OptionalProperty, any>>(validator: T): VOptional<T> => {
    requireValidator(validator, "v.optional(validator)");
    if (validator.isOptional === "optional") return validator as unknown as VOptional<T>;
    return make({ ...validator, isOptional: "optional" });
  },
} as const;

/** Function `args`: a record of validators, `v.object(...)`, or `v.any()` for unchecked args. */
export type ObjectValidatorInput = PropertyValidators | Validator<any, "required", any>;

/** The validator `asObjectValidator` returns for `T`: a validator as is, a record as `v.object`. */
export type AsObjectValidator<T extends ObjectValidatorInput> =
  T extends Validator<any, OptionalProperty, any> ? T : T extends PropertyValidators ? VObject<ObjectType<T>, T> : never;

/**
 * Function `args` may be written `{ body: v.string() }` or `v.object({ body: v.string() })`;
 * this returns the object validator either way. `v.any()` passes through (args left
 * unchecked); any other validator is a `MISUSE`, since args are always an object.
 *
 * @example
 * asObjectValidator({ body: v.string() }).fields.body.kind; // "string"
 */
export function asObjectValidator<T extends ObjectValidatorInput>(fieldsOrValidator: T): AsObjectValidator<T> {
  if (!isValidator(fieldsOrValidator)) return v.object(fieldsOrValidator as PropertyValidators) as AsObjectValidator<T>;
  // Checked at runtime too: untyped callers may pass anything.
  const { kind, isOptional } = fieldsOrValidator as GenericValidator;
  if ((kind !== "object" && kind !== "any") || isOptional === "optional") {
    const what = isOptional === "optional" ? "an optional validator" : `v.${kind}()`;
    misuse(`Expected an object of validators like { name: v.string() } or v.object({...}), received ${what}`);
  }
  return fieldsOrValidator as AsObjectValidator<T>;
}

/**
 * The types of validators: one interface per kind, the `Validator` union over them, and the
 * type-level functions that turn validators into TypeScript types (`Infer`, `ObjectType`) and
 * into the field paths an index may name (`FieldPaths`).
 *
 * Runtime validators are frozen plain objects built by `v` (see `validator.ts`). The `type` and
 * `fieldPaths` properties are phantoms: they exist only for inference and are `undefined` at
 * runtime.
 */
import type { GenericId } from "./id.js";

/** Whether an object field may be absent. Only meaningful for validators of object fields. */
export type OptionalProperty = "required" | "optional";

/** The values `v.literal` accepts. */
export type LiteralValue = string | number | bigint | boolean;

interface BaseValidator<Type, IsOptional extends OptionalProperty, FieldPaths extends string> {
  /** Phantom (always `undefined` at runtime): the TypeScript type this validator accepts. */
  readonly type: Type;
  /** Phantom (always `undefined` at runtime): the dotted paths an index may name inside it. */
  readonly fieldPaths: FieldPaths;
  /** "optional" for `v.optional(...)`: the object field may be absent. */
  readonly isOptional: IsOptional;
  /**
   * Always `true` (inherited, so not among the validator's own keys): Convex's mark of a
   * validator, which code written for Convex checks to tell one from a record of validators.
   */
  readonly isConvexValidator: true;
}

export interface VString<Type = string, IsOptional extends OptionalProperty = "required">
  extends BaseValidator<Type, IsOptional, never> {
  readonly kind: "string";
  /** A stricter shape the string must have (see `v.formattedString`); absent for `v.string()`. */
  readonly format?: StringFormat;
}

/**
 * A named shape for strings, checked after `typeof`: session IDs, for instance. `normalize`,
 * when given, replaces the string with what handlers receive (a one-way digest, say): the
 * engine applies it to function arguments after validation.
 */
export interface StringFormat {
  /** Names the format in errors: `args.sessionId: expected a session ID: ...`. */
  readonly name: string;
  /**
   * What is wrong with `value`, or null when it is well-formed. `trusted` is true when the
   * caller is server code (another function, the scheduler) rather than a client.
   */
  check(value: string, context: { trusted: boolean }): string | null;
  /** What handlers receive instead of `value`; must return its own outputs unchanged. */
  normalize?(value: string): string;
  /** How to supply a value, added to the error when one is missing or not a string. */
  readonly hint?: string;
}
export interface VFloat64<Type = number, IsOptional extends OptionalProperty = "required">
  extends BaseValidator<Type, IsOptional, never> {
  readonly kind: "float64";
}
export interface VInt64<Type = bigint, IsOptional extends OptionalProperty = "required">
  extends BaseValidator<Type, IsOptional, never> {
  readonly kind: "int64";
}
export interface VBoolean<Type = boolean, IsOptional extends OptionalProperty = "required">
  extends BaseValidator<Type, IsOptional, never> {
  readonly kind: "boolean";
}
export interface VNull<Type = null, IsOptional extends OptionalProperty = "required">
  extends BaseValidator<Type, IsOptional, never> {
  readonly kind: "null";
}
export interface VBytes<Type = ArrayBuffer, IsOptional extends OptionalProperty = "required">
  extends BaseValidator<Type, IsOptional, never> {
  readonly kind: "bytes";
}
export interface VAny<Type = any, IsOptional extends OptionalProperty = "required", FieldPaths extends string = string>
  extends BaseValidator<Type, IsOptional, FieldPaths> {
  readonly kind: "any";
}
export interface VId<Type = GenericId<string>, IsOptional extends OptionalProperty = "required">
  extends BaseValidator<Type, IsOptional, never> {
  readonly kind: "id";
  readonly tableName: TableNameOf<Type>;
}
export interface VLiteral<Type = LiteralValue, IsOptional extends OptionalProperty = "required">
  extends BaseValidator<Type, IsOptional, never> {
  readonly kind: "literal";
  readonly value: Exclude<Type, undefined>;
}
export interface VArray<
  Type = any[],
  Element extends Validator<any, "required", any> = Validator<any, "required", any>,
  IsOptional extends OptionalProperty = "required",
> extends BaseValidator<Type, IsOptional, never> {
  readonly kind: "array";
  readonly element: Element;
}
export interface VObject<
  Type = Record<string, any>,
  Fields extends PropertyValidators = PropertyValidators,
  IsOptional extends OptionalProperty = "required",
  FieldPaths extends string = ObjectFieldPaths<Fields>,
> extends BaseValidator<Type, IsOptional, FieldPaths> {
  readonly kind: "object";
  readonly fields: Fields;
  /** A new object validator without these fields (Convex's `VObject.omit`). */
  omit<K extends keyof Fields & string>(...fields: K[]): VObject<ObjectType<Omit<Fields, K>>, Omit<Fields, K>, IsOptional>;
  /** A new object validator with only these fields. */
  pick<K extends keyof Fields & string>(...fields: K[]): VObject<ObjectType<Pick<Fields, K>>, Pick<Fields, K>, IsOptional>;
  /** A new object validator whose fields are all optional. */
  partial(): VObject<ObjectType<{ [K in keyof Fields]: VOptional<Fields[K]> }>, { [K in keyof Fields]: VOptional<Fields[K]> }, IsOptional>;
  /** A new object validator with these fields added (or replaced). */
  extend<NewFields extends PropertyValidators>(
    fields: NewFields,
  ): VObject<ObjectType<Omit<Fields, keyof NewFields> & NewFields>, Omit<Fields, keyof NewFields> & NewFields, IsOptional>;
}
export interface VRecord<
  Type = Record<string, any>,
  Key extends Validator<string, "required", any> = Validator<string, "required", any>,
  Value extends Validator<any, "required", any> = Validator<any, "required", any>,
  IsOptional extends OptionalProperty = "required",
  FieldPaths extends string = string,
> extends BaseValidator<Type, IsOptional, FieldPaths> {
  readonly kind: "record";
  readonly key: Key;
  readonly value: Value;
}
export interface VUnion<
  Type = any,
  Members extends Validator<any, "required", any>[] = Validator<any, "required", any>[],
  IsOptional extends OptionalProperty = "required",
  FieldPaths extends string = Members[number]["fieldPaths"],
> extends BaseValidator<Type, IsOptional, FieldPaths> {
  readonly kind: "union";
  readonly members: Members;
}

/**
 * Any validator accepting `Type`. `IsOptional` says whether, as an object field, it may be
 * absent; `FieldPaths` are the dotted paths inside it an index may name.
 *
 * @example
 * function describe(validator: Validator<string>) { return validator.kind; }
 */
export type Validator<Type, IsOptional extends OptionalProperty = "required", FieldPaths extends string = string> =
  | VString<Type, IsOptional>
  | VFloat64<Type, IsOptional>
  | VInt64<Type, IsOptional>
  | VBoolean<Type, IsOptional>
  | VNull<Type, IsOptional>
  | VBytes<Type, IsOptional>
  | VId<Type, IsOptional>
  | VLiteral<Type, IsOptional>
  | VArray<Type, Validator<any, "required", any>, IsOptional>
  | VObject<Type, FieldValidators, IsOptional, FieldPaths>
  | VRecord<Type, Validator<string, "required", any>, Validator<any, "required", any>, IsOptional, FieldPaths>
  | VUnion<Type, Validator<any, "required", any>[], IsOptional, FieldPaths>
  | VAny<Type, IsOptional, FieldPaths>;

/** Any validator at all. */
export type GenericValidator = Validator<any, any, any>;

/** The kinds of validators, as found in their `kind` field. */
export type ValidatorKind = GenericValidator["kind"];

/** The validators of an object's fields, as given to `v.object` or as function `args`. */
export type PropertyValidators = Record<string, Validator<any, any, any>>;

// The same shape as an interface: `Validator` refers to it, and an interface (unlike the
// `Record` alias above) may take part in a recursive type.
interface FieldValidators {
  [key: string]: Validator<any, any, any>;
}

/**
 * The TypeScript type a validator accepts.
 *
 * @example
 * const user = v.object({ name: v.string(), age: v.optional(v.number()) });
 * type User = Infer<typeof user>; // { name: string; age?: number }
 */
export type Infer<T extends Validator<any, OptionalProperty, any>> = T["type"];

/**
 * The object type described by field validators: `v.optional` fields become `key?: T`.
 *
 * @example
 * type Args = ObjectType<{ body: VString; to: VId<Id<"users">, "optional"> }>;
 * // { body: string; to?: Id<"users"> }
 */
export type ObjectType<Fields extends PropertyValidators> = Expand<
  { [K in OptionalKeys<Fields>]?: Exclude<Infer<Fields[K]>, undefined> } & {
    [K in RequiredKeys<Fields>]: Infer<Fields[K]>;
  }
>;

type OptionalKeys<Fields extends PropertyValidators> = {
  [K in keyof Fields]: Fields[K]["isOptional"] extends "optional" ? K : never;
}[keyof Fields];
type RequiredKeys<Fields extends PropertyValidators> = Exclude<keyof Fields, OptionalKeys<Fields>>;

// Flattens an intersection into one object type, so hovers show `{ a: string; b?: number }`.
type Expand<T> = T extends object ? { [K in keyof T]: T[K] } : never;

/**
 * The field paths of an object validator: its field names plus the dotted paths inside
 * nested objects ("address.city"). The schema uses them to type-check index fields.
 */
export type ObjectFieldPaths<Fields extends PropertyValidators> = {
  [K in keyof Fields & string]: K | `${K}.${Fields[K]["fieldPaths"]}`;
}[keyof Fields & string];

/** The field paths of any validator (`never` for scalars). */
export type FieldPaths<T extends Validator<any, OptionalProperty, any>> = T["fieldPaths"];

type TableNameOf<Type> = [Exclude<Type, undefined>] extends [GenericId<infer TableName extends string>]
  ? TableName
  : string;

/** The type of `v.optional(T)`: the same validator, marked optional, accepting `undefined`. */
export type VOptional<T extends Validator<any, OptionalProperty, any>> =
  T extends VString<infer Type, OptionalProperty> ? VString<Type | undefined, "optional">
  : T extends VFloat64<infer Type, OptionalProperty> ? VFloat64<Type | undefined, "optional">
  : T extends VInt64<infer Type, OptionalProperty> ? VInt64<Type | undefined, "optional">
  : T extends VBoolean<infer Type, OptionalProperty> ? VBoolean<Type | undefined, "optional">
  : T extends VNull<infer Type, OptionalProperty> ? VNull<Type | undefined, "optional">
  : T extends VBytes<infer Type, OptionalProperty> ? VBytes<Type | undefined, "optional">
  : T extends VId<infer Type, OptionalProperty> ? VId<Type | undefined, "optional">
  : T extends VLiteral<infer Type, OptionalProperty> ? VLiteral<Type | undefined, "optional">
  : T extends VArray<infer Type, infer Element, OptionalProperty> ? VArray<Type | undefined, Element, "optional">
  : T extends VObject<infer Type, infer Fields, OptionalProperty, infer Paths>
    ? VObject<Type | undefined, Fields, "optional", Paths>
  : T extends VRecord<infer Type, infer Key, infer Value, OptionalProperty, infer Paths>
    ? VRecord<Type | undefined, Key, Value, "optional", Paths>
  : T extends VUnion<infer Type, infer Members, OptionalProperty, infer Paths>
    ? VUnion<Type | undefined, Members, "optional", Paths>
  : T extends VAny<infer Type, OptionalProperty, infer Paths> ? VAny<Type | undefined, "optional", Paths>
  : never;

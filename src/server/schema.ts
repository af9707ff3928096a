/**
 * `defineSchema` / `defineTable`: the shape of every table and its indexes.
 *
 * The schema is checked when it is defined (bad table names, reserved or duplicate index names,
 * indexes on fields the table does not have), so a mistake fails at startup with a message that
 * says what to change, never later on some request. At run time the engine validates every
 * written document against its table's validator.
 *
 * Every table implicitly has two indexes: `by_id` (`["_id"]`) and `by_creation_time`
 * (`["_creationTime"]`). Every user index gets `_creationTime` and `_id` appended, so documents
 * with equal indexed fields come back in creation order and every index key is unique.
 */
import { walkinError, asObjectValidator, isValidator } from "../values/index.js";
import type { GenericId, Infer, ObjectType, PropertyValidators, Validator, VObject } from "../values/index.js";
import type { AnyDataModel, Expand, GenericDataModel, GenericTableIndexes, GenericTableSearchIndexes, GenericTableVectorIndexes } from "./dataModel.js";

type AnyValidator = Validator<any, any, any>;

/** The field paths a document validator declares (`"a"`, `"a.b"`). */
export type FieldPathsOf<V> = V extends { fieldPaths: infer FP extends string } ? FP : string;

const RESERVED_INDEXES = new Set(["by_id", "by_creation_time"]);
const NAME = /^[a-zA-Z][a-zA-Z0-9_]{0,63}$/;

export interface IndexDefinition {
  name: string;
  fields: string[];
  /** Present on a full-text search index (`searchIndex`): `fields` are then its search field, then its filter fields. */
  search?: { searchField: string; filterFields: string[] };
  /** Present on a vector index (`vectorIndex`): `fields` are then its vector field, then its filter fields. */
  vector?: { vectorField: string; dimensions: number; filterFields: string[] };
}

/** What `vectorIndex` takes, as in Convex. */
export interface VectorIndexConfig<VectorField extends string = string, FilterFields extends string = string> {
  /** The field holding each document's vector: an array of `dimensions` numbers (`v.array(v.float64())`). */
  vectorField: VectorField;
  /** The length of the vectors, your embedding model's (1536 for OpenAI's text-embedding-3-small): from 2 to 4096. */
  dimensions: number;
  /** Fields a search can require values of with `filter: (q) => q.eq(field, value)`. */
  filterFields?: FilterFields[];
  /** Convex's option to build the index after a deploy; Walk-in builds every index before it serves, so it is ignored. */
  staged?: boolean;
}

/** What `searchIndex` takes, as in Convex. */
export interface SearchIndexConfig<SearchField extends string = string, FilterFields extends string = string> {
  /** The string field whose words are indexed. */
  searchField: SearchField;
  /** Fields a search can require equal values of with `.eq(field, value)`. */
  filterFields?: FilterFields[];
  /** Convex's option to build the index after a deploy; Walk-in builds every index before it serves, so it is ignored. */
  staged?: boolean;
}

/** The most filter fields a search or vector index may have (Convex's limit). */
const MAX_FILTER_FIELDS = 16;

/**
 * A vector index's dimensions: Convex's lower bound; its upper one was 2,048, and 4,096 covers
 * the larger embedding models. (Declared here, not in engine/vector.ts: walkin/server is
 * imported by apps' client code, and must not pull in the engine.)
 */
const VECTOR_DIMENSIONS = { min: 2, max: 4_096 } as const;

export class TableDefinition<
  DocValidator extends AnyValidator = AnyValidator,
  TableIndexes extends GenericTableIndexes = {},
  SearchIndexes extends GenericTableSearchIndexes = {},
  VectorIndexes extends GenericTableVectorIndexes = {},
> {
  /** Type-only marker of the declared indexes. */
  declare readonly __indexes: TableIndexes;
  /** Type-only marker of the declared search indexes. */
  declare readonly __searchIndexes: SearchIndexes;
  /** Type-only marker of the declared vector indexes. */
  declare readonly __vectorIndexes: VectorIndexes;

  constructor(
    readonly validator: DocValidator,
    readonly indexes: readonly IndexDefinition[] = [],
  ) {}

  /**
   * Declares an index over one or more fields, in order. Queries use it with
   * `.withIndex(name, (q) => q.eq(field0, x).gt(field1, y))`.
   *
   * @example
   * defineTable({ channel: v.string(), body: v.string() }).index("by_channel", ["channel"])
   */
  index<Name extends string, Fields extends [FieldPathsOf<DocValidator>, ...FieldPathsOf<DocValidator>[]]>(
    name: Name,
    fields: Fields,
  ): TableDefinition<DocValidator, Expand<TableIndexes & Record<Name, [...Fields, "_creationTime"]>>, SearchIndexes, VectorIndexes> {
    const where = `index "${name}"`;
    this.checkNewName(name, where);
    if (!Array.isArray(fields) || fields.length === 0) {
      throw misuse(`${where} has no fields. List at least one field, e.g. .index("${name}", ["field"]).`);
    }
    for (const field of fields) {
      if (field === "_id" || field === "_creationTime") {
        throw misuse(`${where}: "${field}" is added to every index automatically; remove it from the list.`);
      }
      if (!hasFieldPath(this.validator, field)) {
        throw misuse(`${where} names "${field}", which the table's validator does not declare. ` +
          `Add the field to defineTable({...}) or fix the name.`);
      }
    }
    if (new Set(fields).size !== fields.length) {
      throw misuse(`${where} lists a field twice.`);
    }
    return new TableDefinition(this.validator, [...this.indexes, { name, fields: [...fields] }]) as never;
  }

  /**
   * Declares a full-text search index over a string field, with optional filter fields.
   * Queries use it with `.withSearchIndex(name, (q) => q.search(field, "words").eq(filterField, x))`
   * and get the documents whose field has those words, most relevant first (docs/search.md).
   *
   * @example
   * defineTable({ channel: v.string(), body: v.string() })
   *   .searchIndex("search_body", { searchField: "body", filterFields: ["channel"] })
   */
  searchIndex<
    Name extends string,
    SearchField extends FieldPathsOf<DocValidator>,
    FilterFields extends FieldPathsOf<DocValidator> = never,
  >(
    name: Name,
    config: SearchIndexConfig<SearchField, FilterFields>,
  ): TableDefinition<DocValidator, TableIndexes, Expand<SearchIndexes & Record<Name, { searchField: SearchField; filterFields: FilterFields }>>, VectorIndexes> {
    const where = `searchIndex "${name}"`;
    this.checkNewName(name, where);
    if (typeof config !== "object" || config === null) {
      throw misuse(`${where} needs its fields: .searchIndex("${name}", { searchField: "body", filterFields: ["channel"] }).`);
    }
    const { searchField, filterFields = [] } = config;
    if (typeof searchField !== "string") {
      throw misuse(`${where} needs a searchField: the name of the string field whose words are indexed.`);
    }
    if (!Array.isArray(filterFields) || filterFields.some((field) => typeof field !== "string")) {
      throw misuse(`${where}: filterFields must be an array of field names, e.g. ["channel"].`);
    }
    if (filterFields.length > MAX_FILTER_FIELDS) {
      throw misuse(`${where} has ${filterFields.length} filter fields; a search index may have at most ${MAX_FILTER_FIELDS}.`);
    }
    for (const field of [searchField, ...filterFields] as string[]) {
      if (field.startsWith("_")) {
        throw misuse(`${where} names the system field "${field}"; a search index covers fields of your own. ` +
          `Search, then narrow further with .filter().`);
      }
      if (!hasFieldPath(this.validator, field)) {
        throw misuse(`${where} names "${field}", which the table's validator does not declare. ` +
          `Add the field to defineTable({...}) or fix the name.`);
      }
    }
    if (!fieldMayBeString(this.validator, searchField)) {
      throw misuse(`${where}: "${searchField}" cannot hold a string, and a search index indexes the words of a string field. ` +
        `Search a v.string() field (optional, or in a union, is fine).`);
    }
    if (new Set([searchField, ...filterFields]).size !== filterFields.length + 1) {
      throw misuse(`${where} lists a field twice (the search field is not also a filter field).`);
    }
    const search = { searchField, filterFields: [...filterFields] };
    return new TableDefinition(this.validator, [...this.indexes, { name, fields: [searchField, ...filterFields], search }]) as never;
  }

  /** Refuses an index name that is malformed, built in, or already taken on this table (by an index or a search index). */
  private checkNewName(name: string, where: string): void {
    if (typeof name !== "string" || !NAME.test(name)) {
      throw misuse(`${where}: index names must start with a letter and use only letters, digits and _.`);
    }
    if (RESERVED_INDEXES.has(name)) {
      throw misuse(`${where}: "${name}" is built in; every table already has it. Pick another name.`);
    }
    if (this.indexes.some((index) => index.name === name)) {
      throw misuse(`${where} is declared twice on the same table. Index names must be unique per table.`);
    }
  }

  /**
   * Declares a vector index over a field of vectors (embeddings), with optional filter fields.
   * Actions search it with `ctx.vectorSearch(table, name, { vector, limit, filter })` and get
   * the IDs of the documents whose vectors are most similar, best first (docs/vector-search.md).
   *
   * @example
   * defineTable({ text: v.string(), genre: v.string(), embedding: v.array(v.float64()) })
   *   .vectorIndex("by_embedding", { vectorField: "embedding", dimensions: 1536, filterFields: ["genre"] })
   */
  vectorIndex<
    Name extends string,
    VectorField extends FieldPathsOf<DocValidator>,
    FilterFields extends FieldPathsOf<DocValidator> = never,
  >(
    name: Name,
    config: VectorIndexConfig<VectorField, FilterFields>,
  ): TableDefinition<
    DocValidator,
    TableIndexes,
    SearchIndexes,
    Expand<VectorIndexes & Record<Name, { vectorField: VectorField; dimensions: number; filterFields: FilterFields }>>
  > {
    const where = `vectorIndex "${name}"`;
    this.checkNewName(name, where);
    if (typeof config !== "object" || config === null) {
      throw misuse(`${where} needs its fields: .vectorIndex("${name}", { vectorField: "embedding", dimensions: 1536, filterFields: ["genre"] }).`);
    }
    const { vectorField, dimensions, filterFields = [] } = config;
    if (typeof vectorField !== "string") {
      throw misuse(`${where} needs a vectorField: the name of the field holding each document's vector.`);
    }
    const { min: minDimensions, max: maxDimensions } = VECTOR_DIMENSIONS;
    if (typeof dimensions !== "number" || !Number.isInteger(dimensions) || dimensions < minDimensions || dimensions > maxDimensions) {
      throw misuse(`${where}: dimensions must be a whole number from ${minDimensions} to ${maxDimensions}, the length of your ` +
        `embedding model's vectors (e.g. 1536); got ${JSON.stringify(dimensions) ?? typeof dimensions}.`);
    }
    if (!Array.isArray(filterFields) || filterFields.some((field) => typeof field !== "string")) {
      throw misuse(`${where}: filterFields must be an array of field names, e.g. ["genre"].`);
    }
    if (filterFields.length > MAX_FILTER_FIELDS) {
      throw misuse(`${where} has ${filterFields.length} filter fields; a vector index may have at most ${MAX_FILTER_FIELDS}.`);
    }
    for (const field of [vectorField, ...filterFields] as string[]) {
      if (field.startsWith("_")) {
        throw misuse(`${where} names the system field "${field}"; a vector index covers fields of your own.`);
      }
      if (!hasFieldPath(this.validator, field)) {
        throw misuse(`${where} names "${field}", which the table's validator does not declare. ` +
          `Add the field to defineTable({...}) or fix the name.`);
      }
    }
    if (!someFieldAt(this.validator, vectorField, mayBeArray)) {
      throw misuse(`${where}: "${vectorField}" cannot hold an array, and a vector index indexes arrays of numbers. ` +
        `Declare it v.array(v.float64()) (optional, or in a union, is fine).`);
    }
    if (new Set([vectorField, ...filterFields]).size !== filterFields.length + 1) {
      throw misuse(`${where} lists a field twice (the vector field is not also a filter field).`);
    }
    // Every write of the field is checked against each vector index on it: two lengths would
    // refuse every vector.
    const other = this.indexes.find((index) => index.vector?.vectorField === vectorField && index.vector.dimensions !== dimensions);
    if (other !== undefined) {
      throw misuse(`${where}: "${vectorField}" is already indexed as vectors of ${other.vector!.dimensions} by "${other.name}", and a field holds ` +
        `vectors of one length. Use one length, or keep the other model's vectors in a field of their own.`);
    }
    const vector = { vectorField, dimensions, filterFields: [...filterFields] };
    return new TableDefinition(this.validator, [...this.indexes, { name, fields: [vectorField, ...filterFields], vector }]) as never;
  }
}

/**
 * Defines a table from its fields (or an object/union validator).
 * @example
 * const messages = defineTable({ author: v.id("users"), body: v.string() });
 */
export function defineTable<Fields extends PropertyValidators>(
  fields: Fields,
): TableDefinition<VObject<ObjectType<Fields>, Fields>>;
export function defineTable<V extends AnyValidator>(validator: V): TableDefinition<V>;
export function defineTable(fieldsOrValidator: PropertyValidators | AnyValidator): TableDefinition {
  if (typeof fieldsOrValidator !== "object" || fieldsOrValidator === null) {
    throw misuse("defineTable takes an object of validators, e.g. defineTable({ name: v.string() }).");
  }
  const validator = isValidator(fieldsOrValidator) ? fieldsOrValidator : asObjectValidator(fieldsOrValidator);
  if (validator.kind !== "object" && validator.kind !== "union" && validator.kind !== "any") {
    throw misuse(`defineTable needs an object validator (or a union of them), not v.${validator.kind}().`);
  }
  refuseSystemFieldNames(validator);
  return new TableDefinition(validator);
}

const SYSTEM_FIELD_NAMES = new Set(["_id", "_creationTime"]);

/**
 * Refuses a document field whose name starts with "_". Such names are reserved for system
 * fields, and a write that sets one is refused, so a table that requires one could never
 * hold a document (and one that allows it could never fill it): say so where the table is
 * defined, not on the first insert. Convex drops such fields from the schema it pushes and
 * then refuses the writes, which is the same dead end found later. Only the document's own
 * fields are checked: nested objects may use such names, as the engine stores them.
 */
function refuseSystemFieldNames(validator: AnyValidator): void {
  const owned = topLevelFieldNames(validator);
  for (const name of owned) {
    if (!name.startsWith("_")) continue;
    if (SYSTEM_FIELD_NAMES.has(name)) {
      throw misuse(`defineTable: "${name}" is a system field every document already has; remove it from ` +
        `defineTable({...}) (ctx.db still returns it on every document).`);
    }
    const plain = name.replace(/^_+/, "");
    const suggestion = /^[a-zA-Z]/.test(plain) && !owned.has(plain) ? `, e.g. to "${plain}"` : " to start with a letter";
    throw misuse(`defineTable: field "${name}" starts with "_", which is reserved for system fields: ` +
      `no document could be written with it. Rename the field${suggestion}.`);
  }
}

/** The names of a document's own fields, across every member of a union of objects. */
function topLevelFieldNames(validator: AnyValidator, names = new Set<string>()): Set<string> {
  const v0 = validator as AnyValidator & { kind: string; fields?: Record<string, AnyValidator>; members?: AnyValidator[] };
  if (v0.kind === "object") for (const name of Object.keys(v0.fields ?? {})) names.add(name);
  if (v0.kind === "union") for (const member of v0.members ?? []) topLevelFieldNames(member, names);
  return names;
}

export interface SchemaOptions<StrictTableNameTypes extends boolean = boolean> {
  /**
   * Validate written documents against the schema (default true). With `false`, a write the
   * schema refuses is stored as written, as in Convex; types still follow the schema.
   */
  schemaValidation?: boolean;
  /**
   * Only the schema's tables exist (default true). With `false`, as in Convex, other tables can
   * be written and read too, unvalidated and typed as any (a table is created by its first
   * insert, as without a schema): for prototyping.
   */
  strictTableNameTypes?: StrictTableNameTypes;
}

export class SchemaDefinition<
  Tables extends Record<string, TableDefinition<any, any>> = Record<string, TableDefinition<any, any>>,
  StrictTableNameTypes extends boolean = boolean,
> {
  constructor(
    readonly tables: Tables,
    readonly schemaValidation: boolean,
    readonly strictTableNameTypes: StrictTableNameTypes = true as StrictTableNameTypes,
  ) {}
}

/**
 * Declares every table of the app.
 * @example
 * export default defineSchema({
 *   users: defineTable({ name: v.string() }),
 *   messages: defineTable({ author: v.id("users"), body: v.string() }).index("by_author", ["author"]),
 * });
 */
export function defineSchema<Tables extends Record<string, TableDefinition<any, any>>, StrictTableNameTypes extends boolean = true>(
  tables: Tables,
  options: SchemaOptions<StrictTableNameTypes> = {},
): SchemaDefinition<Tables, StrictTableNameTypes> {
  if (typeof tables !== "object" || tables === null) {
    throw misuse("defineSchema takes an object mapping table names to defineTable(...).");
  }
  for (const [name, table] of Object.entries(tables)) {
    if (!NAME.test(name)) {
      throw misuse(`table "${name}": table names must start with a letter (names starting with _ are ` +
        `reserved for system tables) and use only letters, digits and _.`);
    }
    if (!(table instanceof TableDefinition)) {
      throw misuse(`table "${name}" is not a table definition. Wrap its fields in defineTable({...}).`);
    }
  }
  return new SchemaDefinition(tables, options.schemaValidation ?? true, (options.strictTableNameTypes ?? true) as StrictTableNameTypes);
}

/** The type-level data model of a schema, used to type `ctx.db`. */
export type DataModelFromSchemaDefinition<S extends SchemaDefinition<any, boolean>> = S["strictTableNameTypes"] extends true
  ? TablesDataModel<S>
  : Expand<TablesDataModel<S> & AnyDataModel>;

type TablesDataModel<S extends SchemaDefinition<any, boolean>> = {
  [T in keyof S["tables"] & string]: S["tables"][T] extends TableDefinition<infer V, infer Idx, infer Search, infer Vector>
    ? {
        document: Expand<Infer<V> & { _id: GenericId<T>; _creationTime: number }>;
        fieldPaths: FieldPathsOf<V> | "_id" | "_creationTime";
        indexes: Expand<Idx & { by_id: ["_id"]; by_creation_time: ["_creationTime"] }>;
        searchIndexes: Search;
        vectorIndexes: Vector;
      }
    : never;
};


/** Whether a document validator declares `path` (a dotted path), in any union member. */
export function hasFieldPath(validator: AnyValidator, path: string): boolean {
  return someFieldAt(validator, path, () => true);
}

/** Whether the field at `path` may hold a string, in any union member (a search field must). */
function fieldMayBeString(validator: AnyValidator, path: string): boolean {
  return someFieldAt(validator, path, mayBeString);
}

/**
 * Whether some validator of the field at `path` (a dotted path; in any union member) passes
 * `test`. A `v.any()` on the way may hold any field, so it passes whatever `test` says.
 */
function someFieldAt(validator: AnyValidator, path: string, test: (field: AnyValidator) => boolean): boolean {
  const [head, ...rest] = path.split(".");
  const v0 = validator as AnyValidator & { kind: string; fields?: Record<string, AnyValidator>; members?: AnyValidator[] };
  switch (v0.kind) {
    case "any":
      return true;
    case "union":
      return (v0.members ?? []).some((member) => someFieldAt(member, path, test));
    case "object": {
      const field = v0.fields?.[head!];
      if (field === undefined) return false;
      return rest.length === 0 ? test(field) : someFieldAt(field, rest.join("."), test);
    }
    default:
      return false;
  }
}

/** Whether a value this validator accepts may be a string (`v.optional(v.string())`, `v.id`, a string literal, a union with one). */
function mayBeString(validator: AnyValidator): boolean {
  const v0 = validator as AnyValidator & { kind: string; value?: unknown; members?: AnyValidator[] };
  switch (v0.kind) {
    case "string":
    case "id":
    case "any":
      return true;
    case "literal":
      return typeof v0.value === "string";
    case "union":
      return (v0.members ?? []).some(mayBeString);
    default:
      return false;
  }
}

/** Whether a value this validator accepts may be an array (`v.array(v.float64())`, optional or in a union). */
function mayBeArray(validator: AnyValidator): boolean {
  const v0 = validator as AnyValidator & { kind: string; members?: AnyValidator[] };
  if (v0.kind === "union") return (v0.members ?? []).some(mayBeArray);
  return v0.kind === "array" || v0.kind === "any";
}

function misuse(message: string) {
  return walkinError("MISUSE", message);
}

/** A schema's data model, or the untyped one. */
export type DataModelOf<S> = S extends SchemaDefinition<any, boolean> ? DataModelFromSchemaDefinition<S> : GenericDataModel;

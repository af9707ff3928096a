/**
 * Type-level description of a database: which tables exist, what their documents look like,
 * which field paths they have and which indexes they declare. `defineSchema` produces one
 * (`DataModelFromSchemaDefinition`), and every `ctx.db` type is parameterised by it, so a typo in
 * a table, field or index name is a compile error in the app.
 *
 * `GenericDataModel` is the untyped fallback: any table, any document.
 */
import type { GenericId } from "../values/index.js";

/** A document as stored: any object of values. */
export type GenericDocument = Record<string, any>;

/** Field paths of a document, like `"author"` or `"address.city"`. */
export type GenericFieldPaths = string;

/** Index name → the fields it covers, in order (system fields appended by the engine). */
export type GenericTableIndexes = Record<string, string[]>;

/** A search index's fields, by type: the field searched, and the union of its filter fields (`never` for none). */
export interface GenericSearchIndexConfig {
  searchField: string;
  filterFields: string;
}

/** Search index name → its fields (`defineTable(...).searchIndex`). */
export type GenericTableSearchIndexes = Record<string, GenericSearchIndexConfig>;

/** A vector index's fields, by type: the vector field, its dimensions, and the union of its filter fields (`never` for none). */
export interface GenericVectorIndexConfig {
  vectorField: string;
  dimensions: number;
  filterFields: string;
}

/** Vector index name → its fields (`defineTable(...).vectorIndex`). */
export type GenericTableVectorIndexes = Record<string, GenericVectorIndexConfig>;

export interface GenericTableInfo {
  document: GenericDocument;
  fieldPaths: GenericFieldPaths;
  indexes: GenericTableIndexes;
  searchIndexes: GenericTableSearchIndexes;
  vectorIndexes: GenericTableVectorIndexes;
}

export type GenericDataModel = Record<string, GenericTableInfo>;

/** The data model used when no schema types are available: any table, any document. */
export type AnyDataModel = {
  [tableName: string]: {
    document: { _id: GenericId<any>; _creationTime: number; [field: string]: any };
    fieldPaths: GenericFieldPaths;
    indexes: GenericTableIndexes;
    searchIndexes: GenericTableSearchIndexes;
    vectorIndexes: GenericTableVectorIndexes;
  };
};

export type TableNamesInDataModel<DM extends GenericDataModel> = keyof DM & string;

export type NamedTableInfo<DM extends GenericDataModel, T extends TableNamesInDataModel<DM>> = DM[T];

export type DocumentByName<DM extends GenericDataModel, T extends TableNamesInDataModel<DM>> = DM[T]["document"];

export type DocumentByInfo<Info extends GenericTableInfo> = Info["document"];
export type FieldPaths<Info extends GenericTableInfo> = Info["fieldPaths"];
export type Indexes<Info extends GenericTableInfo> = Info["indexes"];
export type IndexNames<Info extends GenericTableInfo> = keyof Info["indexes"] & string;
export type SearchIndexes<Info extends GenericTableInfo> = Info["searchIndexes"];
export type SearchIndexNames<Info extends GenericTableInfo> = keyof Info["searchIndexes"] & string;
export type VectorIndexes<Info extends GenericTableInfo> = Info["vectorIndexes"];
export type VectorIndexNames<Info extends GenericTableInfo> = keyof Info["vectorIndexes"] & string;
export type NamedVectorIndex<Info extends GenericTableInfo, Name extends VectorIndexNames<Info>> = Info["vectorIndexes"][Name];

/** The fields every document has. */
export interface SystemFields<T extends string = string> {
  _id: GenericId<T>;
  _creationTime: number;
}

export type WithSystemFields<T extends string, Doc> = Expand<Doc & SystemFields<T>>;

/** A document without its system fields: what `insert` takes. */
export type WithoutSystemFields<Doc> = Expand<Omit<Doc, "_id" | "_creationTime">>;

/**
 * The value type at a dotted field path of a document (`undefined` when absent). Distributes
 * over a union of document shapes (a table defined with `v.union`): a path that only some
 * members have is that field's type or `undefined`, not just `undefined`.
 */
export type FieldTypeFromFieldPath<Doc, Path extends string> = Doc extends unknown ? FieldTypeInDocument<Doc, Path> : never;

type FieldTypeInDocument<Doc, Path extends string> = Path extends `${infer Head}.${infer Rest}`
  ? Head extends keyof Doc
    ? FieldTypeFromFieldPath<NonNullable<Doc[Head]>, Rest> | (undefined extends Doc[Head] ? undefined : never)
    : undefined
  : Path extends keyof Doc
    ? Doc[Path]
    : undefined;

/** Flattens an intersection for readable hover types. */
export type Expand<T> = T extends Record<any, any> ? { [K in keyof T]: T[K] } : T;

/** Keys of `T` whose value may be `undefined` become optional. */
export type OptionalUndefined<T> = Expand<
  { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
    [K in keyof T as undefined extends T[K] ? K : never]?: T[K];
  }
>;

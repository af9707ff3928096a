/**
 * The types of `ctx.db`: readers for queries, writers for mutations, and the query builder.
 * The engine implements them (src/engine/query.ts, src/engine/database.ts); this file is only
 * the contract, typed by a data model so table, index and field names are checked.
 */
import type { GenericId, Value } from "../values/index.js";
import type {
  DocumentByInfo,
  DocumentByName,
  FieldPaths,
  FieldTypeFromFieldPath,
  GenericDataModel,
  GenericTableInfo,
  IndexNames,
  Indexes,
  NamedTableInfo,
  SearchIndexes,
  SearchIndexNames,
  TableNamesInDataModel,
  WithoutSystemFields,
} from "./dataModel.js";

/** The system tables `ctx.db.system` can read. */
export type SystemDataModel = {
  _scheduled_functions: {
    document: {
      _id: GenericId<"_scheduled_functions">;
      _creationTime: number;
      /** The scheduled function's path, e.g. "messages:send". */
      name: string;
      /** The arguments it was scheduled with, as a one-element array (Convex's shape). */
      args: Value[];
      scheduledTime: number;
      state:
        | { kind: "pending" }
        | { kind: "inProgress" }
        | { kind: "success" }
        | { kind: "failed"; error: string }
        | { kind: "canceled" };
      completedTime?: number;
    };
    fieldPaths: "_id" | "_creationTime" | "name" | "args" | "scheduledTime" | "state" | "state.kind" | "state.error" | "completedTime";
    indexes: {
      by_id: ["_id"];
      by_creation_time: ["_creationTime"];
      by_state_time: ["state", "scheduledTime", "_creationTime"];
    };
    searchIndexes: {};
    vectorIndexes: {};
  };
  /** Stored files (`ctx.storage`). */
  _storage: {
    document: {
      _id: GenericId<"_storage">;
      _creationTime: number;
      /** base64 SHA-256 of the bytes. */
      sha256: string;
      size: number;
      contentType?: string;
    };
    fieldPaths: "_id" | "_creationTime" | "sha256" | "size" | "contentType";
    indexes: {
      by_id: ["_id"];
      by_creation_time: ["_creationTime"];
    };
    searchIndexes: {};
    vectorIndexes: {};
  };
};

/** Reads of one data model's tables (what `ctx.db.system` is, for the system tables). */
export interface BaseDatabaseReader<DM extends GenericDataModel> {
  /**
   * The document with this ID, or `null`. The table name may come first (`get("users", id)`);
   * an ID of another table than the one named is an error (`NoInfer`: `T` comes from the name,
   * so passing another table's ID is a type error too).
   */
  get<T extends TableNamesInDataModel<DM>>(table: T, id: GenericId<NoInfer<T>>): Promise<DocumentByName<DM, T> | null>;
  get<T extends TableNamesInDataModel<DM>>(id: GenericId<T>): Promise<DocumentByName<DM, T> | null>;
  /** Starts a query over a table. */
  query<T extends TableNamesInDataModel<DM>>(table: T): QueryInitializer<NamedTableInfo<DM, T>>;
  /** The table an ID belongs to, or `null` if `id` is not an ID of any of `tables`. */
  normalizeId<T extends TableNamesInDataModel<DM>>(table: T, id: string): GenericId<T> | null;
}

export interface DatabaseReader<DM extends GenericDataModel> extends BaseDatabaseReader<DM> {
  /** Reads system tables: `ctx.db.system.query("_scheduled_functions")`. */
  system: BaseDatabaseReader<SystemDataModel>;
}

export interface DatabaseWriter<DM extends GenericDataModel> extends DatabaseReader<DM> {
  /** Inserts a document and returns its new ID. */
  insert<T extends TableNamesInDataModel<DM>>(
    table: T,
    value: WithoutSystemFields<DocumentByName<DM, T>>,
  ): Promise<GenericId<T>>;
  /** Shallow-merges fields into a document; a field set to `undefined` is removed. */
  patch<T extends TableNamesInDataModel<DM>>(
    table: T,
    id: GenericId<NoInfer<T>>,
    value: Partial<WithoutSystemFields<DocumentByName<DM, T>>>,
  ): Promise<void>;
  patch<T extends TableNamesInDataModel<DM>>(
    id: GenericId<T>,
    value: Partial<WithoutSystemFields<DocumentByName<DM, T>>>,
  ): Promise<void>;
  /** Replaces a document's fields, keeping `_id` and `_creationTime`. */
  replace<T extends TableNamesInDataModel<DM>>(
    table: T,
    id: GenericId<NoInfer<T>>,
    value: WithoutSystemFields<DocumentByName<DM, T>>,
  ): Promise<void>;
  replace<T extends TableNamesInDataModel<DM>>(
    id: GenericId<T>,
    value: WithoutSystemFields<DocumentByName<DM, T>>,
  ): Promise<void>;
  /** Deletes a document; `delete("users", id)` also checks the ID is one of `users`. */
  delete<T extends TableNamesInDataModel<DM>>(table: T, id: GenericId<NoInfer<T>>): Promise<void>;
  delete(id: GenericId<TableNamesInDataModel<DM>>): Promise<void>;
}

export interface PaginationOptions {
  numItems: number;
  /** `null` for the first page, then the previous page's `continueCursor`. */
  cursor: string | null;
  /**
   * Ends the page exactly at this cursor instead of after `numItems`. Live paginated queries
   * use it to keep page boundaries fixed while documents are inserted and removed.
   */
  endCursor?: string | null;
  /**
   * The most index entries the page may read, counting those a `filter` rejects: a page of a
   * filter that matches rarely stops after this many, short of `numItems`, with `pageStatus`
   * "SplitRequired" and a `continueCursor` where it stopped. Not applied with an `endCursor`
   * (a page with fixed bounds must read all of them).
   */
  maximumRowsRead?: number;
  /**
   * The most bytes of documents the page may read (as the transaction's own read limit counts
   * them); like `maximumRowsRead`, the page stops once it has read that much (always after at
   * least one document). Not applied with an `endCursor`.
   */
  maximumBytesRead?: number;
}

export interface PaginationResult<T> {
  page: T[];
  isDone: boolean;
  continueCursor: string;
  /**
   * Where to split this page in two, present with `pageStatus`: the pages
   * `{ cursor, endCursor: splitCursor }` and `{ cursor: splitCursor, endCursor: continueCursor }`
   * hold the same documents. `null` when the page read too few entries to split.
   */
  splitCursor?: string | null;
  /**
   * Present only when the page read a lot: "SplitRequired" when it stopped at its
   * `maximumRowsRead`/`maximumBytesRead` before `numItems` (the documents after
   * `continueCursor` are on the next page), "SplitRecommended" when it read more than three
   * quarters of its budget (or of the transaction's read limits) or returned more than three
   * quarters of the largest page.
   */
  pageStatus?: "SplitRecommended" | "SplitRequired" | null;
}

export interface OrderedQuery<Info extends GenericTableInfo> extends AsyncIterable<DocumentByInfo<Info>> {
  /** Keeps only documents for which the expression is true. Reads every document it skips. */
  filter(predicate: (q: FilterBuilder<FieldValues<Info>>) => ExpressionOrValue<boolean>): this;
  /** All matching documents. */
  collect(): Promise<DocumentByInfo<Info>[]>;
  /** At most `n` documents. */
  take(n: number): Promise<DocumentByInfo<Info>[]>;
  /** The first document, or `null`. */
  first(): Promise<DocumentByInfo<Info> | null>;
  /** The only document, or `null`; throws if there is more than one. */
  unique(): Promise<DocumentByInfo<Info> | null>;
  /** One page, plus a cursor for the next. */
  paginate(options: PaginationOptions): Promise<PaginationResult<DocumentByInfo<Info>>>;
}

export interface Query<Info extends GenericTableInfo> extends OrderedQuery<Info> {
  /** Sorts by the index in use (`by_creation_time` unless `withIndex` chose one). */
  order(order: "asc" | "desc"): OrderedQuery<Info>;
}

export interface QueryInitializer<Info extends GenericTableInfo> extends Query<Info> {
  /** Reads a range of an index: `q.eq(...)` on a prefix of its fields, then optional bounds. */
  withIndex<Name extends IndexNames<Info>>(
    indexName: Name,
    range?: (q: IndexRangeBuilder<FieldValues<Info>, Indexes<Info>[Name]>) => IndexRange,
  ): Query<Info>;
  /** Reads the whole table in creation order (the same as not calling it; says so explicitly). */
  fullTableScan(): Query<Info>;
  /**
   * Full-text search: the documents whose search field has the words of `q.search(field, text)`
   * (the last one also as a prefix), most relevant first, at most 1,024; `.eq(filterField, x)`
   * keeps those with that value (docs/search.md).
   */
  withSearchIndex<Name extends SearchIndexNames<Info>>(
    indexName: Name,
    searchFilter: (q: SearchFilterBuilder<FieldValues<Info>, SearchIndexes<Info>[Name]>) => SearchFilter,
  ): OrderedQuery<Info>;
}

/** Marker type returned by search filter builders. */
export interface SearchFilter {
  readonly __isSearchFilter: true;
}

/** `q.search(searchField, text)`: first, and once. */
export interface SearchFilterBuilder<Values extends Record<string, any>, Config extends { searchField: string; filterFields: string }> {
  search(field: Config["searchField"], text: string): SearchFilterFinalizer<Values, Config>;
}

/** Then any number of `.eq(filterField, value)`. */
export interface SearchFilterFinalizer<Values extends Record<string, any>, Config extends { searchField: string; filterFields: string }> extends SearchFilter {
  eq<Field extends Config["filterFields"]>(field: Field, value: Values[Field]): SearchFilterFinalizer<Values, Config>;
}

/** Marker type returned by index range builders. */
export interface IndexRange {
  readonly __isIndexRange: true;
}

/**
 * Field path → the value type at that path: `{ channel: string; "address.city": string | undefined }`.
 *
 * The builders below index this map (`Values[Field]`) instead of evaluating a conditional type
 * over the document. That keeps them covariant in the table, so a builder typed by a schema is
 * still comparable to the untyped one, and `queryGeneric as QueryBuilder<DataModel, "public">`
 * (what codegen writes) type-checks. An untyped table maps every path to `any`.
 */
export type FieldValues<Info extends GenericTableInfo> = {
  [Path in FieldPaths<Info>]: FieldTypeFromFieldPath<DocumentByInfo<Info>, Path>;
};

// A declared index is a tuple (["channel", "_creationTime"]) and `At` counts the fields eq()
// has consumed, so the next field is `Fields[At]`: indexed access again, for the same reason as
// FieldValues. Once every field is consumed it is `never`: no more eq() or bounds.
// An untyped index is a plain string[]: any field, any number of times.
type Next = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, ...number[]];
type FieldAt<Fields extends string[], At extends number> = Extract<Fields[At], string>;

/** `q.eq(f0, x).eq(f1, y).gt(f2, a).lt(f2, b)` in index field order. */
export interface IndexRangeBuilder<Values extends Record<string, any>, Fields extends string[], At extends number = 0>
  extends LowerBoundBuilder<Values, FieldAt<Fields, At>>, IndexRange {
  eq(field: FieldAt<Fields, At>, value: Values[FieldAt<Fields, At>]): IndexRangeBuilder<Values, Fields, Next[At]>;
}

export interface LowerBoundBuilder<Values extends Record<string, any>, Field extends string>
  extends UpperBoundBuilder<Values, Field>, IndexRange {
  gt(field: Field, value: Values[Field]): UpperBoundBuilder<Values, Field>;
  gte(field: Field, value: Values[Field]): UpperBoundBuilder<Values, Field>;
}

export interface UpperBoundBuilder<Values extends Record<string, any>, Field extends string> extends IndexRange {
  lt(field: Field, value: Values[Field]): IndexRange;
  lte(field: Field, value: Values[Field]): IndexRange;
}

/** An expression evaluated against each document by `.filter`. */
export interface Expression<T> {
  readonly __expressionType: T;
}
export type ExpressionOrValue<T> = Expression<T> | T;

export interface FilterBuilder<Values extends Record<string, any>> {
  field<P extends keyof Values & string>(path: P): Expression<Values[P]>;
  eq<T>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<boolean>;
  neq<T>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<boolean>;
  lt<T>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<boolean>;
  lte<T>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<boolean>;
  gt<T>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<boolean>;
  gte<T>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<boolean>;
  and(...exprs: ExpressionOrValue<boolean>[]): Expression<boolean>;
  or(...exprs: ExpressionOrValue<boolean>[]): Expression<boolean>;
  not(expr: ExpressionOrValue<boolean>): Expression<boolean>;
  add<T extends number | bigint>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<T>;
  sub<T extends number | bigint>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<T>;
  mul<T extends number | bigint>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<T>;
  div<T extends number | bigint>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<T>;
  mod<T extends number | bigint>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<T>;
  neg<T extends number | bigint>(value: ExpressionOrValue<T>): Expression<T>;
}

/** A document value as seen by untyped code. */
export type AnyDocument = Record<string, Value | undefined>;

/**
 * The types of `ctx.vectorSearch` (an action's), as Convex has them: the query (`vector`,
 * `limit`, `filter`), the filter builder (`q.eq`, `q.or` over the index's filter fields), and
 * the answer (IDs and scores). The search itself is the engine's (engine/vectorSearch.ts).
 */
import type { GenericId } from "../values/index.js";
import type {
  DocumentByInfo,
  FieldTypeFromFieldPath,
  GenericDataModel,
  GenericDocument,
  GenericTableInfo,
  GenericVectorIndexConfig,
  NamedTableInfo,
  NamedVectorIndex,
  TableNamesInDataModel,
  VectorIndexNames,
} from "./dataModel.js";

/** What `filter` returns: made with `q.eq` and `q.or` only. */
export interface FilterExpression<T> {
  readonly __filterExpressionType: T;
}

/** The builder a vector search's `filter` gets: equalities on the index's filter fields, and their union. */
export interface VectorFilterBuilder<Document extends GenericDocument, VectorIndexConfig extends GenericVectorIndexConfig> {
  /** Documents whose `fieldName` is `value`. */
  eq<FieldName extends VectorIndexConfig["filterFields"]>(fieldName: FieldName, value: FieldTypeFromFieldPath<Document, FieldName>): FilterExpression<boolean>;
  /** Documents any of `exprs` matches. */
  or(...exprs: FilterExpression<boolean>[]): FilterExpression<boolean>;
}

/** A vector search's query. */
export interface VectorSearchQuery<TableInfo extends GenericTableInfo, IndexName extends VectorIndexNames<TableInfo>> {
  /** The vector to find the nearest of: as long as the index's `dimensions`. */
  vector: number[];
  /** How many results, from 1 to 256; 10 by default. */
  limit?: number;
  /** Only documents it matches: `(q) => q.or(q.eq("genre", "comedy"), q.eq("genre", "drama"))`. */
  filter?: (q: VectorFilterBuilder<DocumentByInfo<TableInfo>, NamedVectorIndex<TableInfo, IndexName>>) => FilterExpression<boolean>;
}

/** `ctx.vectorSearch`: the IDs of the documents nearest `query.vector`, best first, with their cosine similarity (-1 to 1). */
export type VectorSearch<
  DataModel extends GenericDataModel,
  TableName extends TableNamesInDataModel<DataModel>,
  IndexName extends VectorIndexNames<NamedTableInfo<DataModel, TableName>>,
> = (
  tableName: TableName,
  indexName: IndexName,
  query: VectorSearchQuery<NamedTableInfo<DataModel, TableName>, IndexName>,
) => Promise<Array<{ _id: GenericId<TableName>; _score: number }>>;

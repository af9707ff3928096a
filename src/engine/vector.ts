/**
 * Vector indexes: Convex's `vectorIndex`, kept in the engine's own versioned index entries, as
 * search indexes are (search.ts), so that every storage serves them with nothing else to run.
 *
 * The entries. A document whose vector field holds a vector (an array of `dimensions` finite
 * numbers) has one entry keyed `[0, document ID]`, for a search without a filter, and one per
 * filter field keyed `[n, value, document ID]`, n being the field's place in `filterFields`
 * counted from 1, for a search with `q.eq(field, value)`: each equality of a filter is one key
 * range, and `q.or(...)` of several is their union. A document without a vector in the field
 * (missing, or not an array of numbers) has no entries; an array of numbers of another length,
 * or holding NaN or an infinity, is refused when it is written (`checkVectorFields`), as a
 * mistake the app would want to hear of (an embedding model changed), never later in a search.
 *
 * The search (vectorSearch.ts) reads the entries of its ranges with their documents, scores
 * each document's vector against the query by cosine similarity, and keeps the best `limit`.
 * It is exact: every matching document is scored, so its cost grows with the documents its
 * filter matches (docs/vector-search.md gives figures), where Convex's index is approximate.
 */
import { walkinError, type Value } from "../values/index.js";
import { encodeIndexKey } from "../values/indexKey.js";
import type { IndexInfo, TableInfo } from "./catalog.js";
import { getFieldPath, type Doc } from "./documents.js";

/** A vector index's definition (schema.ts, `vectorIndex`). */
export interface VectorSpec {
  vectorField: string;
  dimensions: number;
  filterFields: string[];
}

/** What a search takes (the bounds of an index's dimensions and filter fields are checked where it is declared: server/schema.ts). */
export const VECTOR_LIMITS = {
  /** Results a search returns by default, and at most (Convex's). */
  defaultResults: 10,
  maxResults: 256,
  /** Equalities a search's filter may combine with `q.or` (Convex's limit). */
  filterEqualities: 64,
} as const;

/** The first byte of every key: 0 for the entry of every document, n for the n-th filter field. */
const EVERY_DOCUMENT = 0;

/** The vector `value` holds for `spec`, or null if it holds none (not an array of numbers of the index's length). */
function vectorIn(spec: VectorSpec, value: Value | undefined): number[] | null {
  if (!Array.isArray(value) || value.length !== spec.dimensions) return null;
  for (const element of value) if (typeof element !== "number" || !Number.isFinite(element)) return null;
  return value as number[];
}

/** A document's vector in `index`, or null if it has none (and so no entries). */
export function vectorOf(index: IndexInfo, doc: Doc): number[] | null {
  return vectorIn(index.vector!, getFieldPath(doc, index.vector!.vectorField));
}

/** A document's entries in a vector index (see the top of this file): none without a vector. */
export function vectorKeysOf(index: IndexInfo, doc: Doc): Uint8Array[] {
  const spec = index.vector!;
  if (vectorOf(index, doc) === null) return [];
  const id = doc._id as string;
  const keys = [encodeIndexKey([EVERY_DOCUMENT, id])];
  spec.filterFields.forEach((field, i) => keys.push(encodeIndexKey([i + 1, getFieldPath(doc, field), id])));
  return keys;
}

/** The prefix of the keys of the documents `q.eq(filterFields[n - 1], value)` matches; n = 0 for every document. */
export function vectorRangePrefix(fieldNumber: number, value?: Value): Uint8Array {
  return fieldNumber === EVERY_DOCUMENT ? encodeIndexKey([EVERY_DOCUMENT]) : encodeIndexKey([fieldNumber, value]);
}

/**
 * Refuses a document about to be written whose vector field, in any vector index of its
 * table, holds an array of numbers that is not a vector of the index's dimensions: one of
 * another length, or with NaN or an infinity. Nothing is written: this runs before the
 * write is staged (transaction.ts, `stage`).
 */
export function checkVectorFields(table: TableInfo, doc: Doc): void {
  for (const index of table.indexes.values()) {
    const spec = index.vector;
    if (spec === undefined) continue;
    const value = getFieldPath(doc, spec.vectorField);
    if (!Array.isArray(value) || value.length === 0 || !value.every((element) => typeof element === "number")) continue;
    if (vectorIn(spec, value) !== null) continue;
    const problem = value.length !== spec.dimensions
      ? `holds ${value.length} numbers, and the vector index "${index.name}" takes vectors of ${spec.dimensions}`
      : `holds ${value.some(Number.isNaN) ? "NaN" : "an infinity"}, and a vector index takes finite numbers only`;
    throw walkinError("INVALID_ARGUMENT",
      `Document in "${table.name}": the field "${spec.vectorField}" ${problem}. Write a vector of ${spec.dimensions} finite numbers ` +
      `(the length of your embedding model's vectors), or leave the field out to keep the document out of the index.`);
  }
}

/** `withIndex` or `withSearchIndex` given a vector index: what to call instead. */
export function vectorIndexReadAsQuery(table: string, index: string, used: "withIndex" | "withSearchIndex"): Error {
  return walkinError("MISUSE",
    `db.query("${table}").${used}("${index}"): "${index}" is a vector index, which a query cannot read. ` +
    `Search it from an action with ctx.vectorSearch("${table}", "${index}", { vector, limit, filter }), ` +
    `then load the documents it returns with ctx.runQuery.`);
}

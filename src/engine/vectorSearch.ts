/**
 * `ctx.vectorSearch(table, index, { vector, limit, filter })` of an action: the IDs of the
 * documents whose vectors are most similar to `vector`, best first, with their cosine
 * similarity as `_score` (from -1 to 1), as Convex's vector search answers.
 *
 * It reads the latest snapshot, like the action's ctx.runQuery (so a vector written by a
 * mutation the action ran is found), through the index's entries (vector.ts): the entry of
 * every document without a filter, else the entries of each `q.eq(field, value)` of the filter,
 * a key range each, a page at a time, each entry with its document. Every document read is
 * scored and the best `limit` kept, so the search is exact, and costs what reading and scoring
 * the documents its filter matches costs: each vector is decoded from its document once and
 * then kept by version (vectorCache.ts), so a later search scores it without reading or
 * parsing the document again (a page is read without bodies first, `scanVersions`, and with
 * them only if a vector on it is not kept; after a page that needed them, the next is read with
 * them at once). It is not a transaction: its reads land in no read
 * set, as an action's are not tracked, and a write after its snapshot is not in its answer.
 */
import { walkinError, checkValue, type Value } from "../values/index.js";
import type { DocumentVersion, IndexEntry, IndexVersion, KeyRange, ScanRequest, Timestamp } from "../storage/types.js";
import type { Engine } from "./engine.js";
import type { IndexInfo } from "./catalog.js";
import { decodeDocument } from "./documents.js";
import { incompleteIndexMessage } from "./mixedCode.js";
import { prefixRange } from "./readSet.js";
import { VECTOR_LIMITS, vectorOf, vectorRangePrefix } from "./vector.js";
import type { StoredVector } from "./vectorCache.js";

/** One result: the document's ID and its vector's cosine similarity to the query's. */
export interface VectorSearchResult {
  _id: string;
  _score: number;
}

/** Entries (with their documents) read in one storage call. */
const PAGE = 256;

/** What the caller's filter built: `q.eq` is one equality, `q.or` a union of them. */
class FilterExpression {
  constructor(readonly equalities: readonly { field: string; value: Value | undefined }[]) {}
}

/** The builder `filter`'s callback gets. Mistakes fail here, with what to write. */
class VectorFilterBuilder {
  constructor(
    private readonly index: IndexInfo,
    private readonly where: string,
  ) {}

  eq(field: unknown, value: unknown): FilterExpression {
    const { filterFields } = this.index.vector!;
    if (typeof field !== "string" || !filterFields.includes(field)) {
      throw misuse(`${this.where}: q.eq(${JSON.stringify(field)}, ...) names no filter field of the index ` +
        `(its filter fields: ${filterFields.join(", ") || "none"}). Add the field to the index's filterFields in functions/schema.ts.`);
    }
    if (value !== undefined) {
      try {
        checkValue(value);
      } catch (error) {
        throw misuse(`${this.where}: q.eq("${field}", value) takes a Convex value; ${(error as Error).message}`);
      }
    }
    return new FilterExpression([{ field, value: value as Value | undefined }]);
  }

  or(...expressions: unknown[]): FilterExpression {
    if (expressions.length === 0) throw misuse(`${this.where}: q.or() needs at least one expression, e.g. q.or(q.eq("genre", "comedy"), q.eq("genre", "drama")).`);
    const equalities = [];
    for (const expression of expressions) {
      if (!(expression instanceof FilterExpression)) throw misuse(`${this.where}: q.or(...) takes expressions made with q.eq or q.or.`);
      equalities.push(...expression.equalities);
    }
    return new FilterExpression(equalities);
  }
}

/** The search, checked: the index, the query vector and its length, how many, and the key prefixes to read. */
interface VectorRequest {
  index: IndexInfo;
  vector: Float64Array;
  norm: number;
  limit: number;
  prefixes: Uint8Array[];
}

/** Runs one `ctx.vectorSearch` (see the top of this file). Bad arguments fail before anything is read. */
export function vectorSearch(engine: Engine, table: unknown, indexName: unknown, query: unknown): Promise<VectorSearchResult[]> {
  let request: VectorRequest;
  try {
    request = checkRequest(engine, table, indexName, query);
  } catch (error) {
    return Promise.reject(error);
  }
  return engine.readLatest((readTs) => search(engine, request, readTs));
}

function checkRequest(engine: Engine, table: unknown, indexName: unknown, query: unknown): VectorRequest {
  if (typeof table !== "string") throw misuse(`ctx.vectorSearch(table, index, query): the table is a table name, got ${typeof table}.`);
  const where = `ctx.vectorSearch("${table}", ${JSON.stringify(indexName)})`;
  const info = engine.catalog.lookup(table);
  const index = typeof indexName === "string" ? info?.indexes.get(indexName) : undefined;
  if (index?.vector === undefined) {
    const names = info ? [...info.indexes.values()].filter((i) => i.vector).map((i) => i.name) : [];
    throw misuse(`${where}: table "${table}" has no vector index ${JSON.stringify(indexName)} (its vector indexes: ${names.join(", ") || "none"}). ` +
      `Declare one with defineTable(...).vectorIndex("by_embedding", { vectorField: "embedding", dimensions: 1536 }) in functions/schema.ts.`);
  }
  if (engine.catalog.isIncomplete(index.id)) throw walkinError("INTERNAL", incompleteIndexMessage(index.id));
  if (typeof query !== "object" || query === null) throw misuse(`${where} takes a query: { vector: [...], limit?: 10, filter?: (q) => q.eq(field, value) }.`);
  const { vector, limit = VECTOR_LIMITS.defaultResults, filter } = query as { vector?: unknown; limit?: unknown; filter?: unknown };
  const { dimensions } = index.vector;
  const problem = queryVectorProblem(vector, dimensions);
  if (problem !== null) {
    throw misuse(`${where}: vector must be an array of ${dimensions} finite numbers, the index's dimensions; got ${problem}. ` +
      `Embed the query with the model the stored vectors came from.`);
  }
  const largest = largestMagnitude(vector as number[]);
  if (largest === 0) throw misuse(`${where}: the query vector is all zeros, which is no more similar to one vector than to another. Search with a vector that has a direction.`);
  // Cosine similarity ignores length, so a query of extreme numbers is searched as the same
  // direction at length about 1: its products with stored numbers then neither overflow nor
  // vanish (see `cosine`). One of usual numbers is left as it is, so its scores are unchanged.
  const searched = largest >= SAFE_QUERY.min && largest <= SAFE_QUERY.max ? (vector as number[]) : (vector as number[]).map((x) => x / largest);
  const norm = Math.hypot(...searched);
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > VECTOR_LIMITS.maxResults) {
    throw misuse(`${where}: limit must be a whole number from 1 to ${VECTOR_LIMITS.maxResults}; got ${JSON.stringify(limit) ?? typeof limit}.`);
  }
  return { index, vector: Float64Array.from(searched), norm, limit, prefixes: prefixesOf(index, filter, where) };
}

/**
 * What is wrong with a query vector, or null: not an array, of another length, or with an
 * element that is not a finite number (an index loop, where `every` would skip the holes of a
 * sparse array such as `new Array(1536)`).
 */
function queryVectorProblem(vector: unknown, dimensions: number): string | null {
  if (!Array.isArray(vector)) return vector === null ? "null" : typeof vector;
  const numbers = vector.every((x) => typeof x === "number") ? " numbers" : "";
  if (vector.length !== dimensions) return `an array of ${vector.length}${numbers}`;
  for (let i = 0; i < vector.length; i++) {
    const x: unknown = vector[i];
    if (typeof x === "number" && Number.isFinite(x)) continue;
    const what = typeof x === "number" ? String(x) : !(i in vector) ? "a hole" : x === null || x === undefined ? String(x) : `a ${typeof x}`;
    return `an array of ${vector.length}${numbers} with ${what} at [${i}]`;
  }
  return null;
}

function largestMagnitude(vector: ArrayLike<number>): number {
  let largest = 0;
  for (let i = 0; i < vector.length; i++) largest = Math.max(largest, Math.abs(vector[i]!));
  return largest;
}

/** The key prefixes a search reads: every document's entry without a filter, else one per distinct equality. */
function prefixesOf(index: IndexInfo, filter: unknown, where: string): Uint8Array[] {
  if (filter === undefined) return [vectorRangePrefix(0)];
  if (typeof filter !== "function") throw misuse(`${where}: filter must be a function, e.g. filter: (q) => q.eq("${index.vector!.filterFields[0] ?? "field"}", value).`);
  const expression = filter(new VectorFilterBuilder(index, where));
  if (!(expression instanceof FilterExpression)) throw misuse(`${where}: the filter function must return an expression made with q.eq or q.or.`);
  if (expression.equalities.length > VECTOR_LIMITS.filterEqualities) {
    throw misuse(`${where}: the filter has ${expression.equalities.length} equalities; a vector search takes at most ${VECTOR_LIMITS.filterEqualities}. ` +
      `Narrow it, or search without a filter and check the documents found.`);
  }
  const { filterFields } = index.vector!;
  const byHex = new Map<string, Uint8Array>();
  for (const { field, value } of expression.equalities) {
    const prefix = vectorRangePrefix(filterFields.indexOf(field) + 1, value);
    byHex.set(Buffer.from(prefix).toString("hex"), prefix);
  }
  return [...byHex.values()];
}

async function search(engine: Engine, request: VectorRequest, readTs: Timestamp): Promise<VectorSearchResult[]> {
  const best = new BestResults(request.limit);
  const field = request.index.vector!.vectorField;
  // A document may be in the ranges of two equalities on different fields: scored once.
  const seen = request.prefixes.length > 1 ? new Set<string>() : null;
  // Read a page with its bodies at once when the page before needed some: the search is a
  // first one, or reads more vectors than the cache keeps, and reading the page's versions
  // first would only add a read.
  let bodiesFirst = false;
  for (const prefix of request.prefixes) {
    let range: KeyRange = prefixRange(prefix);
    for (;;) {
      const page: ScanRequest = { indexId: request.index.id, range, order: "asc", readTs, limit: PAGE };
      // The page's entries with their documents' versions (and, read at once, their bodies): a
      // vector kept for its version is scored from memory, and a body is read only for one that is not.
      const read = await readPage(engine, page, bodiesFirst);
      let bodies = read.bodies;
      bodiesFirst = false;
      for (const { id, ts } of read.versions) {
        if (seen !== null) {
          if (seen.has(id)) continue;
          seen.add(id);
        }
        let stored: StoredVector | null | undefined = engine.vectors.kept(field, id, ts);
        if (stored === undefined) {
          bodiesFirst = true;
          // The same request at the same snapshot: the same entries, now with their bodies. The
          // vector is filed under the version its body came with, whatever the first read said.
          bodies ??= (await readPage(engine, page, true)).bodies!;
          const doc = bodies.get(id);
          stored = doc === undefined ? null : engine.vectors.decoded(field, id, doc.ts, vectorOf(request.index, decodeDocument(doc.body)));
        }
        // Every entry's document has a vector (vectorKeysOf); none is a defect, not a result.
        if (stored === null || stored === undefined) continue;
        best.offer(id, cosine(request.vector, request.norm, stored));
      }
      if (read.versions.length < PAGE) break;
      range = { lower: { key: read.versions[read.versions.length - 1]!.key, inclusive: false }, upper: range.upper };
    }
  }
  return best.sorted();
}

type StoredDocument = DocumentVersion & { body: string };

/**
 * One page of a search: its entries' versions without bodies (`scanVersions`), or, `withBodies`,
 * with them (`scan`), then also by document ID.
 */
async function readPage(engine: Engine, page: ScanRequest, withBodies: boolean): Promise<{ versions: IndexVersion[]; bodies: Map<string, StoredDocument> | null }> {
  if (!withBodies) return { versions: await engine.storage.scanVersions(page), bodies: null };
  const entries: IndexEntry[] = await engine.storage.scan(page);
  return {
    versions: entries.map(({ key, doc }) => ({ key, id: doc.id, table: doc.table, ts: doc.ts })),
    bodies: new Map(entries.map(({ doc }) => [doc.id, doc])),
  };
}

/**
 * Query vectors whose largest number lies in this range are scored as given (others are scaled
 * into it, `checkRequest`): with such a query, a product with a stored number overflows only if
 * that number's square does, and one that underflows is too small to change a score.
 */
const SAFE_QUERY = { min: 2 ** -400, max: 2 ** 400 } as const;

/**
 * Cosine similarity of `query` (whose norm is `queryNorm`) and a stored vector; 0 for a zero
 * vector, which has no direction. The vector's length was summed from its squares as they are
 * (`storedVector`), exact enough for the numbers embedding models make; a vector with numbers
 * past about 1e154 (whose squares overflow to Infinity, and the score to NaN) or below about
 * 1e-135 (whose squares vanish, and the score to 0) has no length there and is scored scaled
 * to length about 1 instead, as its direction says.
 */
function cosine(query: Float64Array, queryNorm: number, stored: StoredVector): number {
  const numbers = stored.numbers;
  if (Number.isNaN(stored.length)) return scaledCosine(query, queryNorm, numbers);
  let dot = 0;
  for (let i = 0; i < query.length; i++) dot += query[i]! * numbers[i]!;
  // Rounding can take it a hair past ±1 for parallel vectors.
  return Math.max(-1, Math.min(1, dot / (queryNorm * stored.length)));
}

/** `cosine` of a vector of extreme numbers, each divided by the largest first (which keeps its direction). */
function scaledCosine(query: Float64Array, queryNorm: number, vector: Float64Array): number {
  const largest = largestMagnitude(vector);
  if (largest === 0) return 0;
  let dot = 0;
  let squares = 0;
  for (let i = 0; i < query.length; i++) {
    const x = vector[i]! / largest;
    dot += query[i]! * x;
    squares += x * x;
  }
  return Math.max(-1, Math.min(1, dot / (queryNorm * Math.sqrt(squares))));
}

/**
 * The best `limit` results offered, kept sorted best first (at most 256: an insertion into a
 * short sorted array beats a heap's bookkeeping here). Equal scores go to the newer document
 * (the greater ID: IDs grow with time), so that the answer does not depend on reading order.
 */
class BestResults {
  private readonly results: VectorSearchResult[] = [];

  constructor(private readonly limit: number) {}

  offer(id: string, score: number): void {
    const results = this.results;
    if (results.length === this.limit && !better(score, id, results[results.length - 1]!)) return;
    let at = results.length;
    while (at > 0 && better(score, id, results[at - 1]!)) at--;
    results.splice(at, 0, { _id: id, _score: score });
    if (results.length > this.limit) results.pop();
  }

  sorted(): VectorSearchResult[] {
    return this.results;
  }
}

function better(score: number, id: string, than: VectorSearchResult): boolean {
  return score > than._score || (score === than._score && id > than._id);
}

function misuse(message: string): Error {
  return walkinError("INVALID_ARGUMENT", message);
}

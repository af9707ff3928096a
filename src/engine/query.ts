/**
 * The runtime of `ctx.db.query(table)`: index choice, range, order, filters, and the ways to
 * consume the results. Every builder call returns a new query object; nothing is read until a
 * consuming method (`collect`, `take`, `first`, `unique`, `paginate`, `for await`) runs.
 */
import { walkinError } from "../values/index.js";
import { compareBytes } from "../values/indexKey.js";
import type { KeyBound, KeyRange } from "../storage/types.js";
import { hashSeed } from "./determinism.js";
import { isPlainIndex, type IndexInfo, type TableInfo } from "./catalog.js";
import type { Doc } from "./documents.js";
import { compileFilter } from "./filter.js";
import { IndexRangeBuilderImpl } from "./indexRange.js";
import { LIMITS } from "./limits.js";
import { SearchFilterBuilderImpl, wrongKindOfIndex } from "./search.js";
import { SearchQueryImpl } from "./searchQuery.js";
import { vectorIndexReadAsQuery } from "./vector.js";
import type { Transaction } from "./transaction.js";
import type { PaginationOptions, PaginationResult } from "../server/database.js";

interface QueryState {
  index: IndexInfo;
  range: KeyRange;
  order: "asc" | "desc";
  filters: Array<(doc: Doc) => boolean>;
  stage: "initial" | "indexed" | "ordered";
  /** How documents reach app code, if not as stored (`ctx.db.system`'s tables): filters see this form too. */
  present?: (doc: Doc) => Doc;
}

export class QueryImpl implements AsyncIterable<Doc> {
  constructor(
    private readonly txn: Transaction,
    private readonly table: TableInfo,
    private readonly state: QueryState = {
      index: table.indexes.get("by_creation_time")!,
      range: {},
      order: "asc",
      filters: [],
      stage: "initial",
    },
  ) {}

  private with(changes: Partial<QueryState>): QueryImpl {
    return new QueryImpl(this.txn, this.table, { ...this.state, ...changes });
  }

  /** This query, handing out each document as `present` makes it (see `QueryState.present`). */
  presentedAs(present: (doc: Doc) => Doc): QueryImpl {
    return this.with({ present });
  }

  /** Full-text search over a search index (search.ts, searchQuery.ts). */
  withSearchIndex(indexName: string, searchFn: (q: SearchFilterBuilderImpl) => unknown): SearchQueryImpl {
    if (this.state.stage !== "initial") this.misuse("withSearchIndex() must come first, before order() and filter()");
    const index = this.table.indexes.get(indexName);
    if (!index) {
      const names = [...this.table.indexes.values()].filter((i) => i.search).map((i) => i.name).join(", ");
      this.misuse(`table "${this.table.name}" has no search index "${indexName}" (its search indexes: ${names || "none"}). ` +
        `Declare it with defineTable(...).searchIndex("${indexName}", { searchField: "field" }) in functions/schema.ts`);
    }
    if (index.vector) throw vectorIndexReadAsQuery(this.table.name, index.name, "withSearchIndex");
    if (!index.search) throw wrongKindOfIndex(this.table.name, index, "withSearchIndex");
    if (typeof searchFn !== "function") this.misuse(`withSearchIndex("${indexName}") needs a callback: (q) => q.search("${index.search.searchField}", text)`);
    const builder = new SearchFilterBuilderImpl(index, (problem) => this.misuse(problem));
    return new SearchQueryImpl(this.txn, this.table, index, builder.build(searchFn(builder)));
  }

  withIndex(indexName: string, rangeFn?: (q: IndexRangeBuilderImpl) => unknown): QueryImpl {
    if (this.state.stage !== "initial") this.misuse("withIndex() must come first, before order() and filter()");
    const index = this.table.indexes.get(indexName);
    if (!index) {
      const names = [...this.table.indexes.values()].filter(isPlainIndex).map((i) => i.name).join(", ");
      this.misuse(`table "${this.table.name}" has no index "${indexName}" (its indexes: ${names}). ` +
        `Declare it with defineTable(...).index("${indexName}", [fields]) in functions/schema.ts`);
    }
    if (index.vector) throw vectorIndexReadAsQuery(this.table.name, index.name, "withIndex");
    if (index.search) throw wrongKindOfIndex(this.table.name, index, "withIndex");
    const builder = new IndexRangeBuilderImpl(index);
    const result = rangeFn ? rangeFn(builder) : builder;
    if (result !== builder) this.misuse(`the withIndex range callback must return the builder chain (q => q.eq(...))`);
    return this.with({ index, range: builder.toKeyRange(), stage: "indexed" });
  }

  fullTableScan(): QueryImpl {
    if (this.state.stage !== "initial") this.misuse("fullTableScan() must come first");
    return this.with({ stage: "indexed" });
  }

  order(order: "asc" | "desc"): QueryImpl {
    if (order !== "asc" && order !== "desc") this.misuse(`order() takes "asc" or "desc", not ${JSON.stringify(order)}`);
    if (this.state.stage === "ordered") this.misuse("order() may be called once");
    return this.with({ order, stage: "ordered" });
  }

  filter(predicate: (q: any) => unknown): QueryImpl {
    if (typeof predicate !== "function") this.misuse("filter() takes a function: .filter((q) => q.eq(q.field(\"x\"), 1))");
    return this.with({ filters: [...this.state.filters, compileFilter(predicate)] });
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Doc> {
    const { present } = this.state;
    for await (const { doc } of this.entries(this.state.range)) yield present ? present(doc) : doc;
  }

  async collect(): Promise<Doc[]> {
    return this.read(Infinity);
  }

  /** Up to `limit` matching documents (no generator: see `Transaction.take`). */
  private read(limit: number): Promise<Doc[]> {
    const { index, range, order, filters, present } = this.state;
    if (present) {
      const accept = filters.length === 0 ? undefined : (doc: Doc) => filters.every((test) => test(present(doc)));
      return this.txn.take(index, range, order, limit, accept).then((docs) => docs.map(present));
    }
    const accept = filters.length === 0 ? undefined : (doc: Doc) => filters.every((test) => test(doc));
    return this.txn.take(index, range, order, limit, accept);
  }

  /** Not `async`: `first` and `unique` go through here, and each async layer is a promise more per read. */
  take(n: number): Promise<Doc[]> {
    const problem = takeCountProblem(n);
    if (problem !== null) return Promise.reject(this.misuseError(problem));
    return n === 0 ? Promise.resolve([]) : this.read(n);
  }

  // `first` and `unique` chain on `take` instead of awaiting it: an async function that awaits
  // costs a frame and, with the determinism sandbox's async hooks on, one more promise per read.
  first(): Promise<Doc | null> {
    return this.take(1).then(firstOf);
  }

  unique(): Promise<Doc | null> {
    return this.take(2).then((docs) => {
      if (docs.length > 1) {
        throw walkinError("NOT_UNIQUE", `unique() found more than one document in "${this.table.name}" ` +
          `(${docs[0]!._id} and ${docs[1]!._id}). Use first() if any match will do, or query by a field that is unique.`);
      }
      return docs[0] ?? null;
    });
  }

  async paginate(options: PaginationOptions): Promise<PaginationResult<Doc>> {
    const problem = pageOptionsProblem(options);
    if (problem !== null) this.misuse(problem);
    const { numItems, cursor, endCursor } = options;
    const maximumRowsRead = this.readBudget(options.maximumRowsRead, "maximumRowsRead");
    const maximumBytesRead = this.readBudget(options.maximumBytesRead, "maximumBytesRead");
    const asc = this.state.order === "asc";
    const { index } = this.state;
    let range: KeyRange = { ...this.state.range };
    // A page's cursors narrow the query's own range, never widen it: a cursor made when the
    // range was wider (a live page pinned before the bound it reads from a document moved)
    // must not bring back documents outside the range as it is now.
    if (cursor) {
      const key = decodeCursor(cursor, index.id);
      range = asc ? { ...range, lower: tighterLower(range.lower, { key, inclusive: false }) } : { ...range, upper: tighterUpper(range.upper, { key, inclusive: false }) };
    }
    if (endCursor) {
      const key = decodeCursor(endCursor, index.id);
      range = asc ? { ...range, upper: tighterUpper(range.upper, { key, inclusive: true }) } : { ...range, lower: tighterLower(range.lower, { key, inclusive: true }) };
    }
    const page: Doc[] = [];
    // Every entry read, matching or not: the middle one is the page's split point.
    const keysRead: Uint8Array[] = [];
    let bytesRead = 0;
    let isDone = true;
    let pageStatus: "SplitRecommended" | "SplitRequired" | null = null;
    for await (const { key, doc, bytes, matches } of this.entries(range, true)) {
      keysRead.push(key);
      bytesRead += bytes;
      if (matches) page.push(this.state.present ? this.state.present(doc) : doc);
      if (endCursor) continue;
      if (page.length >= numItems) {
        isDone = false;
        break;
      }
      // The budgets end a page early, never one with an endCursor: its bounds are fixed, and
      // stopping short would drop the documents between where it stopped and its end. Stopping
      // here leaves the read set covering exactly the entries read (the scan records its range
      // up to the last key it handed out), so a live page that stopped early re-runs when a
      // write lands before that key, and then stops wherever the new data makes it stop.
      if (keysRead.length >= maximumRowsRead || bytesRead >= maximumBytesRead) {
        isDone = false;
        pageStatus = "SplitRequired";
        break;
      }
    }
    const lastKey = keysRead.length > 0 ? keysRead[keysRead.length - 1]! : null;
    const continueCursor = endCursor ?? (lastKey ? encodeCursor(lastKey, index.id) : cursor ?? "");
    const result: PaginationResult<Doc> = { page, isDone: endCursor ? false : isDone, continueCursor };
    // Past three quarters of a budget (the page's own, or the transaction's read limits), or of
    // the largest page, the page had better be split before it grows into an error (Convex's
    // threshold for "SplitRecommended").
    const nearLimit = (read: number, budget: number, limit: number) => read > (Math.min(budget, limit) * 3) / 4;
    if (
      pageStatus === null &&
      (nearLimit(keysRead.length, maximumRowsRead, LIMITS.maxDocumentsRead) ||
        nearLimit(bytesRead, maximumBytesRead, LIMITS.maxBytesRead) ||
        nearLimit(page.length, Infinity, LIMITS.maxPageSize))
    ) {
      pageStatus = "SplitRecommended";
    }
    if (pageStatus !== null) {
      // Splitting needs an entry strictly inside the page: none with two entries or fewer.
      result.splitCursor = keysRead.length > 2 ? encodeCursor(keysRead[keysRead.length >> 1]!, index.id) : null;
      result.pageStatus = pageStatus;
    }
    return result;
  }

  /** A `maximumRowsRead`/`maximumBytesRead` of `paginate`: a whole number from 1, or none (Infinity). */
  private readBudget(value: unknown, name: string): number {
    if (value === undefined || value === null) return Infinity;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
      this.misuse(`paginate() needs ${name} to be a whole number of at least 1; received ${typeof value === "string" ? JSON.stringify(value) : String(value)}. Leave it out to read without that budget`);
    }
    return value;
  }

  /** Scans the range; with `all`, also yields documents the filters reject (for cursors). */
  private async *entries(range: KeyRange, all = false): AsyncGenerator<{ key: Uint8Array; doc: Doc; bytes: number; matches: boolean }> {
    const { index, order, filters, present } = this.state;
    for await (const { key, doc, bytes } of this.txn.scan(index, range, order)) {
      const seen = present ? present(doc) : doc;
      const matches = filters.every((test) => test(seen));
      if (matches || all) yield { key, doc, bytes, matches };
    }
  }

  private misuse(problem: string): never {
    throw this.misuseError(problem);
  }

  private misuseError(problem: string): Error {
    return walkinError("MISUSE", `db.query("${this.table.name}"): ${problem}.`);
  }
}

/** Why `take(n)` refuses `n`, or null: index and search queries take the same counts. */
export function takeCountProblem(n: number): string | null {
  return Number.isInteger(n) && n >= 0 && n <= LIMITS.maxPageSize ? null : `take() needs a whole number from 0 to ${LIMITS.maxPageSize}; received ${n}`;
}

/** Why `paginate(options)` refuses its options' shape or page size, or null (index and search queries alike). */
export function pageOptionsProblem(options: PaginationOptions): string | null {
  if (typeof options !== "object" || options === null) return "paginate() takes { numItems, cursor }";
  const { numItems } = options;
  return Number.isInteger(numItems) && numItems >= 1 && numItems <= LIMITS.maxPageSize ? null : `paginate() needs numItems from 1 to ${LIMITS.maxPageSize}; received ${numItems}`;
}

/**
 * A page cursor: a 4-byte tag of the index it walks (FNV-1a of the index's ID), then the index
 * key of the page's last entry, in base64url. The tag lets `paginate` refuse a cursor of
 * another index, or one that was never a cursor, instead of reading its bytes as a position.
 */
export function encodeCursor(key: Uint8Array, indexId: string): string {
  const bytes = Buffer.allocUnsafe(CURSOR_TAG_BYTES + key.length);
  bytes.writeUInt32BE(hashSeed(indexId), 0);
  bytes.set(key, CURSOR_TAG_BYTES);
  return bytes.toString("base64url");
}

const CURSOR_TAG_BYTES = 4;

export function decodeCursor(cursor: string, indexId: string): Uint8Array {
  const bytes = typeof cursor === "string" && /^[A-Za-z0-9_-]*$/.test(cursor) ? Buffer.from(cursor, "base64url") : null;
  if (bytes === null || bytes.length < CURSOR_TAG_BYTES || bytes.readUInt32BE(0) !== hashSeed(indexId)) {
    throw walkinError(
      "INVALID_ARGUMENT",
      `paginate(): the cursor is not one this query's paginate() returned (it is another index's, or not a cursor). Pass null for the first page.`,
    );
  }
  return new Uint8Array(bytes.subarray(CURSOR_TAG_BYTES));
}

/** Of two lower bounds, the one that lets fewer keys in. */
function tighterLower(a: KeyBound | undefined, b: KeyBound): KeyBound {
  if (a === undefined) return b;
  const order = compareBytes(a.key, b.key);
  return order > 0 || (order === 0 && !a.inclusive) ? a : b;
}

/** Of two upper bounds, the one that lets fewer keys in. */
function tighterUpper(a: KeyBound | undefined, b: KeyBound): KeyBound {
  if (a === undefined) return b;
  const order = compareBytes(a.key, b.key);
  return order < 0 || (order === 0 && !a.inclusive) ? a : b;
}

function firstOf(docs: Doc[]): Doc | null {
  return docs[0] ?? null;
}

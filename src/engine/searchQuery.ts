/**
 * The runtime of `ctx.db.query(table).withSearchIndex(...)`: reads the words' entries, ranks
 * the documents found (search.ts says how), then applies `.filter()` and the consuming method.
 * Convex's search query is an `OrderedQuery`: it has no `.order()` (relevance is the order) and
 * paginates over its ranked results.
 */
import { walkinError } from "../values/index.js";
import type { PaginationOptions, PaginationResult } from "../server/database.js";
import type { IndexInfo, TableInfo } from "./catalog.js";
import type { Doc } from "./documents.js";
import { compileFilter } from "./filter.js";
import { LIMITS } from "./limits.js";
import { decodeCursor, encodeCursor } from "./query.js";
import { SEARCH_LIMITS, matchesEqualities, queryWords, rank, type SearchFilterSpec } from "./search.js";
import type { Transaction } from "./transaction.js";

export class SearchQueryImpl implements AsyncIterable<Doc> {
  constructor(
    private readonly txn: Transaction,
    private readonly table: TableInfo,
    private readonly index: IndexInfo,
    private readonly search: SearchFilterSpec,
    private readonly filters: ReadonlyArray<(doc: Doc) => boolean> = [],
  ) {}

  filter(predicate: (q: any) => unknown): SearchQueryImpl {
    if (typeof predicate !== "function") this.misuse("filter() takes a function: .filter((q) => q.eq(q.field(\"x\"), 1))");
    return new SearchQueryImpl(this.txn, this.table, this.index, this.search, [...this.filters, compileFilter(predicate)]);
  }

  order(_order: unknown): never {
    this.misuse(`a search query comes back most relevant first and has no order(); sort the results yourself if you need another order`);
  }

  withIndex(): never {
    this.misuse("withSearchIndex() replaces withIndex(): a query reads one index");
  }

  withSearchIndex(): never {
    this.misuse("withSearchIndex() may be called once");
  }

  /**
   * The matching documents, most relevant first: every word's range read newest first, within
   * its share of `SEARCH_LIMITS.entriesRead`, the documents without the filter's values
   * skipped, the rest ranked and then passed through `.filter()`.
   */
  private async ranked(): Promise<Doc[]> {
    const words = queryWords(this.index, this.search);
    if (words.length === 0) return [];
    const share = Math.max(1, Math.floor(SEARCH_LIMITS.entriesRead / words.length));
    const found = new Map<string, Doc>();
    for (const { range } of words) {
      let read = 0;
      for await (const { doc } of this.txn.scan(this.index, range, "desc")) {
        if (!found.has(doc._id as string) && matchesEqualities(doc, this.search.equalities)) found.set(doc._id as string, doc);
        if (++read >= share) break;
      }
    }
    const ranked = rank([...found.values()], this.index.search!, words);
    return this.filters.length === 0 ? ranked : ranked.filter((doc) => this.filters.every((test) => test(doc)));
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Doc> {
    yield* await this.ranked();
  }

  collect(): Promise<Doc[]> {
    return this.ranked();
  }

  async take(n: number): Promise<Doc[]> {
    if (!Number.isInteger(n) || n < 0 || n > LIMITS.maxPageSize) {
      this.misuse(`take() needs a whole number from 0 to ${LIMITS.maxPageSize}; received ${n}`);
    }
    return n === 0 ? [] : (await this.ranked()).slice(0, n);
  }

  async first(): Promise<Doc | null> {
    return (await this.ranked())[0] ?? null;
  }

  async unique(): Promise<Doc | null> {
    const docs = await this.ranked();
    if (docs.length > 1) {
      throw walkinError("NOT_UNIQUE", `unique() found more than one document in "${this.table.name}" ` +
        `(${docs[0]!._id} and ${docs[1]!._id}). Use first() for the most relevant one.`);
    }
    return docs[0] ?? null;
  }

  /**
   * A page of the ranked results. A cursor is a position in them (tagged with the index, as
   * `paginate`'s cursors are): every page runs the search again at its own snapshot, so a page
   * of a live list re-runs when a matching document is written, and its neighbours are where
   * the ranking puts them then.
   */
  async paginate(options: PaginationOptions): Promise<PaginationResult<Doc>> {
    if (typeof options !== "object" || options === null) this.misuse("paginate() takes { numItems, cursor }");
    const { numItems, cursor, endCursor } = options;
    if (!Number.isInteger(numItems) || numItems < 1 || numItems > LIMITS.maxPageSize) {
      this.misuse(`paginate() needs numItems from 1 to ${LIMITS.maxPageSize}; received ${numItems}`);
    }
    const start = cursor ? this.positionOf(cursor) : 0;
    const docs = await this.ranked();
    const end = endCursor ? Math.max(start, this.positionOf(endCursor)) : Math.min(docs.length, start + numItems);
    return {
      page: docs.slice(start, end),
      isDone: endCursor ? false : end >= docs.length,
      continueCursor: this.cursorAt(end),
    };
  }

  private cursorAt(position: number): string {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, position);
    return encodeCursor(bytes, this.cursorTag());
  }

  private positionOf(cursor: string): number {
    const bytes = decodeCursor(cursor, this.cursorTag());
    if (bytes.length !== 4) {
      throw walkinError("INVALID_ARGUMENT", "paginate(): the cursor is not one this search query's paginate() returned. Pass null for the first page.");
    }
    return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
  }

  /** Search cursors are tagged apart from the index's own, which hold keys. */
  private cursorTag(): string {
    return `${this.index.id} search`;
  }

  private misuse(problem: string): never {
    throw walkinError("MISUSE", `db.query("${this.table.name}").withSearchIndex("${this.index.name}"): ${problem}.`);
  }
}

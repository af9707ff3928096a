/**
 * The runtime of `ctx.db.query(table).withSearchIndex(...)`: reads the words' entries, ranks
 * the documents found (search.ts says how), then applies `.filter()` and the consuming method.
 * Convex's search query is an `OrderedQuery`: it has no `.order()` (relevance is the order) and
 * paginates over its ranked results (`paginate` says how cursors relate to `.filter()`).
 */
import { walkinError } from "../values/index.js";
import type { PaginationOptions, PaginationResult } from "../server/database.js";
import type { IndexInfo, TableInfo } from "./catalog.js";
import type { Doc } from "./documents.js";
import { compileFilter } from "./filter.js";
import { decodeCursor, encodeCursor, pageOptionsProblem, takeCountProblem } from "./query.js";
import type { KeyRange } from "../storage/types.js";
import { encodeIndexKey } from "../values/indexKey.js";
import { prefixRange } from "./readSet.js";
import { SEARCH_LIMITS, matchesEqualities, queryWords, rank, searchBinding, wordRangeAt, type QueryWord, type SearchFilterSpec } from "./search.js";
import type { Transaction } from "./transaction.js";

/** What a search does with each document it reads; false once it has read its bytes. */
type Keep = (doc: Doc, bytes: number) => boolean;

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

  /** The ranked documents that pass every `.filter()`: what `collect`, `take` and the rest return. */
  private async matching(): Promise<Doc[]> {
    const ranked = await this.ranked();
    return this.filters.length === 0 ? ranked : ranked.filter((doc) => this.passes(doc));
  }

  private passes(doc: Doc): boolean {
    return this.filters.every((test) => test(doc));
  }

  /**
   * The documents found, most relevant first, before `.filter()`: every word's entries read
   * within its share of `SEARCH_LIMITS.entriesRead` (`readWord`, `readPrefix`), the documents
   * without the filter's values skipped, the rest ranked.
   */
  private async ranked(): Promise<Doc[]> {
    const words = queryWords(this.index, this.search);
    if (words.length === 0) return [];
    const share = Math.max(1, Math.floor(SEARCH_LIMITS.entriesRead / words.length));
    const found = new Map<string, Doc>();
    let bytes = 0;
    /** Keeps a document read if it has the filter's values; answers whether the search may read on. */
    const keep = (doc: Doc, size: number): boolean => {
      if (!found.has(doc._id as string) && matchesEqualities(doc, this.search.equalities)) found.set(doc._id as string, doc);
      bytes += size;
      return bytes < SEARCH_LIMITS.bytesRead;
    };
    for (const word of words) {
      const more = word.prefix ? await this.readPrefix(word, share, keep) : (await this.readWord(word.range, share, keep)).more;
      if (!more) break;
    }
    return rank([...found.values()], this.index.search!, words);
  }

  /**
   * Up to `limit` entries of one word's range, newest first (IDs grow with time); answers how
   * many it read, and whether the search may read on (`keep`: under its bytes).
   */
  private async readWord(range: KeyRange, limit: number, keep: Keep): Promise<{ read: number; more: boolean }> {
    let read = 0;
    if (limit <= 0) return { read, more: true };
    for await (const { doc, bytes } of this.txn.scan(this.index, range, "desc")) {
      read++;
      if (!keep(doc, bytes)) return { read, more: false };
      if (read >= limit) break;
    }
    return { read, more: true };
  }

  /**
   * The last word's entries: the words it begins, in key order (the word itself first), each
   * word's entries read newest first, in the search's filter group if it has one, until the
   * share is used. Reading the prefix's range as one would take other groups' entries for this
   * group's share: a search of one channel could find nothing while other channels hold a few
   * thousand newer documents with the word.
   *
   * Each next word is the first entry past the last one's words: one entry read, which counts
   * against the share. What lands in the read set, step by step:
   *   1. from where the previous word's entries end up to the next word's first entry (the scan
   *      stops there), so a document that gains a word in between re-runs a live search;
   *   2. that word's range in the group, or up to the last entry read if the share ran out;
   *   3. after the last word, the rest of the prefix's range (the scan ran to its end).
   * Left out: the entries of a word in other groups, whose documents the search would skip.
   */
  private async readPrefix(word: QueryWord, share: number, keep: Keep): Promise<boolean> {
    if (word.group === undefined) return this.readWholePrefix(word, share, keep);
    let left = share;
    let lower = word.range.lower;
    while (left > 0) {
      let first: { key: Uint8Array; doc: Doc; bytes: number } | undefined;
      for await (const entry of this.txn.scan(this.index, { lower, upper: word.range.upper }, "asc")) {
        first = entry;
        break;
      }
      if (first === undefined) return true;
      if (!keep(first.doc, first.bytes)) return false;
      left--;
      const { range, next } = wordRangeAt(first.key, word.group);
      const { read, more } = await this.readWord(range, left, keep);
      if (!more) return false;
      left -= read;
      if (next === null) return true;
      lower = { key: next, inclusive: true };
    }
    return true;
  }

  /**
   * The last word's entries when the search reads no single group: every entry of a word is
   * the search's to read, so no word needs a scan of its own (two scans a word cost a
   * three-letter prefix twice the time of reading its range). The word itself first, newest
   * first; then the longer words it begins, as one range from its end. The word's own entries
   * come first in the prefix's range (its key ends 0x00 0x00, below any letter), so the two
   * ranges are the prefix's range cut at the end of the word's: together they cover it, and
   * the read set holds what each scan read (`scan` records up to where it stopped).
   */
  private async readWholePrefix(word: QueryWord, share: number, keep: Keep): Promise<boolean> {
    const own = prefixRange(encodeIndexKey([word.word]));
    const { read, more } = await this.readWord(own, share, keep);
    if (!more || own.upper === undefined) return more;
    return (await this.readWord({ lower: { key: own.upper.key, inclusive: true }, upper: word.range.upper }, share - read, keep)).more;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Doc> {
    yield* await this.matching();
  }

  collect(): Promise<Doc[]> {
    return this.matching();
  }

  async take(n: number): Promise<Doc[]> {
    const problem = takeCountProblem(n);
    if (problem !== null) this.misuse(problem);
    return n === 0 ? [] : (await this.matching()).slice(0, n);
  }

  async first(): Promise<Doc | null> {
    return (await this.matching())[0] ?? null;
  }

  async unique(): Promise<Doc | null> {
    const docs = await this.matching();
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
   *
   * The position counts the ranked results before `.filter()`, as an index query's cursor is
   * a key of its index whether `.filter()` kept that entry or not (query.ts, `entries(range,
   * true)`): a page walks the ranked results from its cursor, keeps those that pass
   * `.filter()`, and stops after the one that fills it. Counting after `.filter()` instead
   * would make a cursor a position in a list that changes with data the search does not rank
   * by, step by step:
   *   1. page 1 shows d1 and d2, the first two of d1..d6 that pass; its cursor says "2";
   *   2. d1 is edited so that it no longer passes (its text, and so the ranking, unchanged);
   *   3. page 2 starts at position 2 of d2..d6, at d4: d3 is on no page.
   * Counted before `.filter()`, page 2 starts at d3 whatever d1 became. For the same reason a
   * cursor is not bound to `.filter()` (an index query's is not either; `cursorTag`): reused
   * under another `.filter()`, as after a deploy that changed it, it continues after the same
   * place in the ranked results rather than at a position in another list.
   */
  async paginate(options: PaginationOptions): Promise<PaginationResult<Doc>> {
    const problem = pageOptionsProblem(options);
    if (problem !== null) this.misuse(problem);
    const { numItems, cursor, endCursor } = options;
    const start = cursor ? this.positionOf(cursor) : 0;
    const ranked = await this.ranked();
    const page: Doc[] = [];
    let end = start;
    if (endCursor) {
      // Never before `start`: when documents were deleted since the cursor was made, the results
      // may now end before it, and a continue cursor behind the page would hand the documents of
      // earlier pages out again.
      end = Math.max(start, this.positionOf(endCursor));
      for (let i = start; i < Math.min(end, ranked.length); i++) if (this.passes(ranked[i]!)) page.push(ranked[i]!);
    } else {
      for (; end < ranked.length && page.length < numItems; end++) if (this.passes(ranked[end]!)) page.push(ranked[end]!);
      // A full page after which no result passes is the last one, not one before an empty page.
      if (this.filters.length > 0 && !ranked.slice(end).some((doc) => this.passes(doc))) end = Math.max(end, ranked.length);
    }
    return {
      page,
      isDone: endCursor ? false : end >= ranked.length,
      continueCursor: this.cursorAt(end),
    };
  }

  private cursorAt(position: number): string {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, position);
    return encodeCursor(bytes, this.cursorTag());
  }

  private positionOf(cursor: string): number {
    let bytes: Uint8Array | undefined;
    try {
      bytes = decodeCursor(cursor, this.cursorTag());
    } catch {
      // decodeCursor's own message speaks of another index; here it is as often another search.
    }
    if (bytes?.length !== 4) {
      throw walkinError("INVALID_ARGUMENT", "paginate(): the cursor is not one this search query's paginate() returned (it is of a search " +
        "with other words or filter values, of another query, or not a cursor). Pass null for the first page.");
    }
    return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
  }

  /**
   * Search cursors are tagged apart from the index's own, which hold keys, and bound to the
   * search's words and filter values (`searchBinding`): a cursor is a position in one ranked
   * list, and another search's list puts other documents there. The same search's cursor
   * works on every page and at every snapshot (usePaginatedQuery re-runs its pages). Not
   * bound to `.filter()`, which does not change the ranked list (`paginate`).
   */
  private cursorTag(): string {
    return `${this.index.id} search ${searchBinding(this.search)}`;
  }

  private misuse(problem: string): never {
    throw walkinError("MISUSE", `db.query("${this.table.name}").withSearchIndex("${this.index.name}"): ${problem}.`);
  }
}

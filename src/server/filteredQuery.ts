/**
 * A query whose results are only the documents an async predicate keeps: what row-level
 * security (rowLevelSecurity.ts) and convex-helpers' `filter` helper (`filter(query, predicate)`)
 * return. The index range, order and built-in `.filter()` stay the query's; the predicate runs
 * in JavaScript on each document the query yields, so it may read the database or call
 * anything a function may, which `.filter()` cannot.
 *
 * - `collect()` keeps what passes; `take(n)`, `first()` and `unique()` read on past documents
 *   that do not, until they have enough or the range ends (each document read is in the
 *   function's read set, as with any query);
 * - `paginate` filters the page the query reads: a page may come back shorter, even empty with
 *   `isDone: false`, and its cursors are the query's, so the next page starts where the
 *   unfiltered one ended.
 */
import { walkinError } from "../values/index.js";
import type { PaginationOptions } from "./database.js";

type AnyDoc = Record<string, unknown>;

/** The documents a query yields (`any` for an untyped query, whose documents are untyped too). */
type DocumentOf<Q> = 0 extends 1 & Q ? any : Q extends AsyncIterable<infer D> ? D : never;

/**
 * convex-helpers' `filter`: `query` with only the documents `predicate` keeps, where the
 * predicate is any async function (it may read the database), unlike the query's own `.filter()`.
 * Chain on, or end with `collect`, `take`, `first`, `unique`, `paginate` or `for await`.
 * @example
 * // the first 10 messages of a channel whose authors the caller has not muted
 * const visible = await filter(ctx.db.query("messages").withIndex("by_channel", (q) => q.eq("channel", channel)),
 *   async (message) => !(await ctx.db.query("mutes").withIndex("by_pair", (q) => q.eq("by", me).eq("muted", message.author)).first())).take(10);
 */
export function filter<Q extends AsyncIterable<any>>(query: Q, predicate: (doc: DocumentOf<Q>) => Promise<boolean> | boolean): Q {
  if (typeof (query as { collect?: unknown })?.collect !== "function" || typeof predicate !== "function") {
    throw walkinError("MISUSE", "filter(query, predicate) needs a query (ctx.db.query(...), with its index and order) and a function of a document: filter(ctx.db.query(\"messages\"), async (m) => …).");
  }
  return new FilteredQuery(query, predicate as (doc: AnyDoc) => Promise<boolean> | boolean) as unknown as Q;
}

export class FilteredQuery {
  constructor(
    private readonly inner: any,
    private readonly keep: (doc: AnyDoc) => Promise<boolean> | boolean,
    /** For messages: what the query reads. */
    private readonly table?: string,
  ) {}

  withIndex(...args: unknown[]) {
    return this.wrap(this.inner.withIndex(...args));
  }

  withSearchIndex(...args: unknown[]) {
    return this.wrap(this.inner.withSearchIndex(...args));
  }

  fullTableScan() {
    return this.wrap(this.inner.fullTableScan());
  }

  order(order: "asc" | "desc") {
    return this.wrap(this.inner.order(order));
  }

  filter(predicate: unknown) {
    return this.wrap(this.inner.filter(predicate));
  }

  async collect() {
    return this.kept(await this.inner.collect());
  }

  take(n: number) {
    // A count the engine refuses is refused as it words it.
    if (!Number.isInteger(n) || n < 0) return this.inner.take(n);
    return this.firstKept(n);
  }

  async first() {
    return (await this.firstKept(1))[0] ?? null;
  }

  async unique() {
    const found = await this.firstKept(2);
    if (found.length > 1) {
      throw walkinError("NOT_UNIQUE", `unique() found more than one document${this.table ? ` of "${this.table}"` : ""} that passes the filter. Use first(), or narrow the query.`);
    }
    return found[0] ?? null;
  }

  async paginate(options: PaginationOptions) {
    const result = await this.inner.paginate(options);
    return { ...result, page: await this.kept(result.page) };
  }

  async *[Symbol.asyncIterator]() {
    for await (const doc of this.inner) if (await this.keep(doc)) yield doc;
  }

  private async kept(docs: AnyDoc[]): Promise<AnyDoc[]> {
    const kept: AnyDoc[] = [];
    for (const doc of docs) if (await this.keep(doc)) kept.push(doc);
    return kept;
  }

  /** Up to `n` documents that pass, reading on past the ones that do not. */
  private async firstKept(n: number): Promise<AnyDoc[]> {
    const found: AnyDoc[] = [];
    if (n === 0) return found;
    for await (const doc of this) {
      found.push(doc);
      if (found.length >= n) break;
    }
    return found;
  }

  private wrap(inner: unknown) {
    return new FilteredQuery(inner, this.keep, this.table);
  }
}

/**
 * `usePaginatedQuery`: a live, growing list read page by page.
 *
 * Server side, the query takes `paginationOpts` in its args and returns
 * `ctx.db.query(...).paginate(paginationOpts)` → `{ page, isDone, continueCursor }`.
 *
 * Design: one watched query per page, each a plain `useQuery`-style subscription, and the
 * results are the pages' items concatenated.
 *
 * - Page 0 is `{ cursor: null, numItems: initialNumItems }`.
 * - `loadMore(n)` is allowed when the last page has a result that is not done. It reads that
 *   page's current `continueCursor` c, then in one state update
 *     1. pins the last page: its args gain `endCursor: c`, so from now on it ends exactly at c
 *        however many documents are inserted into or removed from its range, and
 *     2. appends `{ cursor: c, numItems: n }`, which starts exactly after c.
 *   Every page but the last is therefore pinned, and consecutive pages share their boundary
 *   cursor: no document can fall between two pages or show up in both while data changes. A
 *   pinned page grows and shrinks in place (an insert at the top of a newest-first list
 *   lands in page 0); only the last page is bounded by its `numItems`.
 * - Pinning changes a page's args, so it becomes a new query whose result arrives a round
 *   trip later. Until it does, the page shows its unpinned query's live result (kept
 *   subscribed meanwhile, so an optimistic update made or rolled back in between shows), so
 *   loading more never blanks the list.
 * - Status comes from the last page: no result for page 0 → "LoadingFirstPage"; no result
 *   for a later page → "LoadingMore" (the items of the pages before it are shown); last page
 *   `isDone` → "Exhausted"; otherwise "CanLoadMore". A live insert after the end can turn
 *   "Exhausted" back into "CanLoadMore", since the last page is never pinned.
 * - New args (by value) or a new `initialNumItems` start over from page 0.
 * - So does a page whose cursor stopped being valid (the query now reads another index), and a
 *   page that read more than a function may (a pinned page that grew past the read limits: its
 *   bounds are fixed, so it cannot stop early), as Convex documents for its hook. Only once more
 *   than the first page is loaded: a first page that fails again would start over forever.
 * - A last page that stopped at the query's `maximumRowsRead`/`maximumBytesRead` (`pageStatus`
 *   "SplitRequired") needs nothing special: all it holds ends at its `continueCursor`, and
 *   `loadMore` pins it there, where budgets no longer apply.
 *
 * Re-subscribing: each `loadMore` builds a new store over mostly the same page observers.
 * React unsubscribes the old store and subscribes the new one back to back; the old store's
 * unsubscribes are deferred by a microtask so that pages present in both are never dropped
 * from the client's query set in between (which would refetch them).
 *
 * The query's `paginationOpts` validator must accept `endCursor` (an optional string or null).
 * Known limit: a pinned page is never split (Convex's hook splits at `splitCursor`), so one that
 * receives many inserts grows past its `numItems` until it hits the engine's read limits, and
 * then the list starts over (above).
 */
import { useMemo, useState, useSyncExternalStore } from "react";
import type { WalkinClient } from "../browser/index.js";
import { getFunctionName, type FunctionArgs, type FunctionReference, type FunctionReturnType } from "../server/api.js";
import type { PaginationOptions, PaginationResult } from "../server/database.js";
import { isWalkinError, walkinError } from "../values/errors.js";
import type { Value } from "../values/value.js";
import { useWalkin } from "./context.js";
import { QueryObserver, argsKey, type QuerySnapshot } from "./queryObserver.js";

/** A query usable with `usePaginatedQuery`. */
export type PaginatedQueryReference = FunctionReference<
  "query",
  "public",
  { paginationOpts: PaginationOptions },
  PaginationResult<any>
>;
/** The query's args without `paginationOpts`, which the hook supplies. */
export type PaginatedQueryArgs<Query extends PaginatedQueryReference> = Omit<FunctionArgs<Query>, "paginationOpts">;
/** The type of one item of the query's pages. */
export type PaginatedQueryItem<Query extends PaginatedQueryReference> = FunctionReturnType<Query>["page"][number];

export type PaginationStatus = "LoadingFirstPage" | "CanLoadMore" | "LoadingMore" | "Exhausted";

export interface UsePaginatedQueryResult<Item> {
  /** The items of every loaded page, in the query's order. */
  results: Item[];
  status: PaginationStatus;
  /** True while the first page or the next page is loading. */
  isLoading: boolean;
  /** Loads `numItems` more items; does nothing unless `status` is "CanLoadMore". */
  loadMore: (numItems: number) => void;
}

/**
 * A live list of the query's results, loaded a page at a time.
 *
 * @example
 * const { results, status, loadMore } = usePaginatedQuery(api.messages.page, { channel }, { initialNumItems: 20 });
 * {status === "CanLoadMore" && <button onClick={() => loadMore(20)}>More</button>}
 */
export function usePaginatedQuery<Query extends PaginatedQueryReference>(
  query: Query,
  args: PaginatedQueryArgs<Query> | "skip",
  options: { initialNumItems: number },
): UsePaginatedQueryResult<PaginatedQueryItem<Query>> {
  const client = useWalkin();
  const name = getFunctionName(query);
  const { initialNumItems } = options;
  checkNumItems(name, initialNumItems, "initialNumItems");
  const userArgs = args === "skip" ? undefined : (args as Record<string, Value>);
  const key = userArgs === undefined ? undefined : `${name}\n${initialNumItems}\n${argsKey(userArgs)}`;

  const [loaded, setLoaded] = useState<{ firstPage: readonly PageSpec[]; pages: readonly PageSpec[] } | undefined>(undefined);
  // Bumped to start over when the loaded pages' cursors stop being valid.
  const [generation, setGeneration] = useState(0);
  // A new list (new args, a new client, or back from "skip") starts from a new first page.
  const firstPage = useMemo<readonly PageSpec[]>(() => [{ id: 0, cursor: null, numItems: initialNumItems }], [key, client, generation]);
  // Pages loaded for other args are forgotten at once, so returning to those args starts over.
  if (loaded !== undefined && loaded.firstPage !== firstPage) setLoaded(undefined);
  const pages = loaded !== undefined && loaded.firstPage === firstPage ? loaded.pages : firstPage;

  // One cache per list, never shared with another list's store (not even one whose render was discarded).
  const cache = useMemo(() => new PageCache(), [firstPage]);
  const store = useMemo(
    () => (key === undefined || userArgs === undefined ? undefined : new PageStore(client, name, userArgs, pages, cache)),
    [client, key, pages],
  );

  const snapshot = useSyncExternalStore(store?.subscribe ?? subscribeToNothing, store?.getSnapshot ?? firstPageLoading, firstPageLoading);
  if (snapshot.error !== undefined) {
    // As in Convex: a page whose cursor is no longer valid (the query now reads another index),
    // or that read too much data, starts the list over from its first page (no cursor, bounded
    // by its numItems) instead of failing.
    if (pages !== firstPage && (isInvalidCursor(snapshot.error) || readTooMuch(snapshot.error))) setGeneration((g) => g + 1);
    else throw snapshot.error;
  }

  const loadMore = useMemo(
    () => (numItems: number) => {
      checkNumItems(name, numItems, "loadMore(numItems)");
      if (store === undefined || key === undefined) return;
      const cursor = store.continueCursor();
      if (cursor === undefined) return;
      setLoaded((current) => {
        const currentPages = current !== undefined && current.firstPage === firstPage ? current.pages : firstPage;
        // Another loadMore already ran since this store was built: this call is stale.
        if (currentPages !== store.pages) return current;
        const last = currentPages[currentPages.length - 1]!;
        const pinned: PageSpec = { ...last, endCursor: cursor };
        const next: PageSpec = { id: last.id + 1, cursor, numItems };
        return { firstPage, pages: [...currentPages.slice(0, -1), pinned, next] };
      });
    },
    [name, key, store, firstPage],
  );

  return useMemo(
    () => ({
      results: snapshot.results as PaginatedQueryItem<Query>[],
      status: snapshot.status,
      isLoading: snapshot.status === "LoadingFirstPage" || snapshot.status === "LoadingMore",
      loadMore,
    }),
    [snapshot, loadMore],
  );
}

interface PageSpec {
  /** Survives pinning, so a pinned page can show its unpinned result while it loads. */
  readonly id: number;
  readonly cursor: string | null;
  readonly numItems: number;
  readonly endCursor?: string;
}

interface PagesSnapshot {
  readonly results: unknown[];
  readonly status: PaginationStatus;
  readonly error?: unknown;
}

const FIRST_PAGE_LOADING: PagesSnapshot = Object.freeze({ results: [], status: "LoadingFirstPage" });

/**
 * What one list of pages (one query, args, first page size and client) carries from one set of
 * pages to the next as pages are loaded: the page observers, so a page present in both keeps its
 * subscription and snapshot, and each page's latest result by page id, shown while that page's
 * new args load. A new list gets a new cache, never one cleared in place: a render for other
 * args that React discarded (a transition that suspended) must not re-key the cache the
 * committed list's store still writes into.
 */
class PageCache {
  readonly observers = new Map<string, QueryObserver>();
  readonly lastResults = new Map<number, PaginationResult<unknown>>();
}

/** The page observers of one list of pages, combined into one external store. */
class PageStore {
  private readonly observers: QueryObserver[];
  /**
   * For a page just pinned: the observer of its unpinned query, kept subscribed so that, until the
   * pinned query's first result arrives, the page shows the live unpinned result (which an
   * optimistic update's rollback or a new optimistic update still changes), not a frozen copy.
   * Dropped once the pinned query has a result.
   */
  private fallbacks: (QueryObserver | undefined)[];
  private pageSnapshots: QuerySnapshot[] = [];
  private snapshot: PagesSnapshot = FIRST_PAGE_LOADING;
  private lastPageResult: PaginationResult<unknown> | undefined;

  constructor(
    client: WalkinClient,
    private readonly name: string,
    args: Record<string, Value>,
    readonly pages: readonly PageSpec[],
    private readonly cache: PageCache,
  ) {
    const observers = new Map<string, QueryObserver>();
    this.observers = pages.map((page) => {
      const paginationOpts: Record<string, Value> = { numItems: page.numItems, cursor: page.cursor };
      if (page.endCursor !== undefined) paginationOpts.endCursor = page.endCursor;
      const pageArgs = { ...args, paginationOpts };
      const pageKey = argsKey(pageArgs);
      const observer = cache.observers.get(pageKey) ?? new QueryObserver(client, name, pageArgs);
      observers.set(pageKey, observer);
      return observer;
    });
    this.fallbacks = pages.map((page) =>
      page.endCursor === undefined
        ? undefined
        : cache.observers.get(argsKey({ ...args, paginationOpts: { numItems: page.numItems, cursor: page.cursor } })),
    );
    // Observers of replaced pages are dropped (their subscriptions end with the old store).
    cache.observers.clear();
    for (const [pageKey, observer] of observers) cache.observers.set(pageKey, observer);
  }

  readonly subscribe = (onChange: () => void): (() => void) => {
    const fallbackUnsubscribes = this.fallbacks.map((fallback) => fallback?.subscribe(onChange));
    const dropLoadedFallbacks = () =>
      this.observers.forEach((observer, i) => {
        const unsubscribe = fallbackUnsubscribes[i];
        if (unsubscribe === undefined || observer.getSnapshot().status === "loading") return;
        fallbackUnsubscribes[i] = undefined;
        this.fallbacks = this.fallbacks.map((fallback, j) => (j === i ? undefined : fallback));
        queueMicrotask(unsubscribe);
      });
    const unsubscribes = this.observers.map((observer) =>
      observer.subscribe(() => {
        dropLoadedFallbacks();
        onChange();
      }),
    );
    dropLoadedFallbacks();
    return () => queueMicrotask(() => [...unsubscribes, ...fallbackUnsubscribes].forEach((unsubscribe) => unsubscribe?.()));
  };

  readonly getSnapshot = (): PagesSnapshot => {
    const snapshots = this.observers.map((observer, i) => {
      const snapshot = observer.getSnapshot();
      const fallback = snapshot.status === "loading" ? this.fallbacks[i]?.getSnapshot() : undefined;
      return fallback?.status === "success" ? fallback : snapshot;
    });
    if (snapshots.length === this.pageSnapshots.length && snapshots.every((s, i) => s === this.pageSnapshots[i])) {
      return this.snapshot;
    }
    this.pageSnapshots = snapshots;
    try {
      this.snapshot = this.combine(snapshots);
    } catch (error) {
      this.snapshot = { results: [], status: "LoadingFirstPage", error };
    }
    return this.snapshot;
  };

  /** Where the next page starts, or undefined if no page can be loaded now. */
  continueCursor(): string | undefined {
    const snapshot = this.getSnapshot();
    return snapshot.status === "CanLoadMore" ? this.lastPageResult?.continueCursor : undefined;
  }

  private combine(snapshots: QuerySnapshot[]): PagesSnapshot {
    const results: unknown[] = [];
    this.lastPageResult = undefined;
    for (let i = 0; i < snapshots.length; i++) {
      const snapshot = snapshots[i]!;
      const id = this.pages[i]!.id;
      if (snapshot.status === "error") return { results, status: "LoadingMore", error: snapshot.error };
      if (snapshot.status === "success") this.cache.lastResults.set(id, this.checkResult(snapshot.value));
      const result = this.cache.lastResults.get(id);
      if (result === undefined) return { results, status: i === 0 ? "LoadingFirstPage" : "LoadingMore" };
      results.push(...result.page);
      this.lastPageResult = result;
    }
    return { results, status: this.lastPageResult?.isDone ? "Exhausted" : "CanLoadMore" };
  }

  private checkResult(value: unknown): PaginationResult<unknown> {
    const result = value as Partial<PaginationResult<unknown>> | null;
    if (typeof result !== "object" || result === null || !Array.isArray(result.page) || typeof result.continueCursor !== "string") {
      throw walkinError(
        "MISUSE",
        `usePaginatedQuery: ${this.name} did not return a page. A paginated query must return ` +
          "ctx.db.query(...).paginate(args.paginationOpts).",
      );
    }
    return result as PaginationResult<unknown>;
  }
}

/** The error `paginate()` throws for a cursor made by another index (or not a cursor at all). */
function isInvalidCursor(error: unknown): boolean {
  return isWalkinError(error) && error.code === "INVALID_ARGUMENT" && error.message.startsWith("paginate(): the cursor");
}

/** The error of a function that read more documents or bytes than a transaction may (`LIMITS`). */
function readTooMuch(error: unknown): boolean {
  if (!isWalkinError(error) || error.code !== "LIMIT_EXCEEDED") return false;
  const limit = (error.data as { limit?: unknown } | undefined)?.limit;
  return limit === "maxDocumentsRead" || limit === "maxBytesRead";
}

function checkNumItems(name: string, numItems: number, what: string): void {
  if (!Number.isInteger(numItems) || numItems < 1) {
    throw walkinError("MISUSE", `usePaginatedQuery(${name}): ${what} must be a positive integer; received ${numItems}.`);
  }
}

function subscribeToNothing(): () => void {
  return () => {};
}

function firstPageLoading(): PagesSnapshot {
  return FIRST_PAGE_LOADING;
}

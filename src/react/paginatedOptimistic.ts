/**
 * Optimistic updates for `usePaginatedQuery` lists, under Convex's names
 * (`optimisticallyUpdateValueInPaginatedQuery`, `insertAtTop`, `insertAtBottomIfLoaded`,
 * `insertAtPosition`), for use inside `withOptimisticUpdate`.
 *
 * A list is every subscribed query of the function whose args, without `paginationOpts`, equal
 * `argsToMatch` (all of them when it is omitted). Pages still loading have no value and are left
 * alone; a page pinned by `loadMore` (its `paginationOpts` has an `endCursor`) is a page like any
 * other.
 *
 * @example
 * const send = useMutation(api.messages.send).withOptimisticUpdate((localQueryStore, { channel, body }) =>
 *   insertAtTop({ paginatedQuery: api.messages.page, argsToMatch: { channel }, localQueryStore, item: { body } }),
 * );
 */
import type { OptimisticLocalStore } from "../browser/index.js";
import type { PaginationResult } from "../server/database.js";
import { compareValues } from "../values/compare.js";
import { convertToJson } from "../values/json.js";
import type { Value } from "../values/value.js";
import type { PaginatedQueryArgs, PaginatedQueryItem, PaginatedQueryReference } from "./usePaginatedQuery.js";

interface LoadedPage {
  args: Record<string, Value> & { paginationOpts: { cursor: string | null; endCursor?: string | null } };
  value: PaginationResult<Value>;
}

/**
 * The loaded pages of each list of `query` whose args (without `paginationOpts`) hold
 * `argsToMatch` (`exact`: are `argsToMatch`), each list in page order.
 */
function loadedLists(
  store: OptimisticLocalStore,
  query: PaginatedQueryReference,
  argsToMatch: Record<string, Value> | undefined,
  exact = false,
): LoadedPage[][] {
  const lists = new Map<string, LoadedPage[]>();
  for (const { args, value } of store.getAllQueries(query)) {
    if (value === undefined) continue;
    const { paginationOpts: _, ...rest } = args as unknown as Record<string, Value>;
    if (argsToMatch !== undefined) {
      if (exact && compareValues(rest, argsToMatch) !== 0) continue;
      if (!exact && Object.entries(argsToMatch).some(([name, wanted]) => compareValues(rest[name], wanted) !== 0)) continue;
    }
    const key = JSON.stringify(convertToJson(rest, "args"));
    let pages = lists.get(key);
    if (!pages) lists.set(key, (pages = []));
    pages.push({ args: args as unknown as LoadedPage["args"], value: value as PaginationResult<Value> });
  }
  // Page order: the first page starts at null, each next one where the one before it ends.
  return [...lists.values()].map((pages) => {
    const ordered: LoadedPage[] = [];
    let cursor: string | null = null;
    // Where a page was just pinned, its unpinned query may still be loaded too: the pinned one is the page.
    const next = (start: string | null) => {
      const candidates = pages.filter((p) => p.args.paginationOpts.cursor === start && !ordered.includes(p));
      return candidates.find((p) => p.args.paginationOpts.endCursor) ?? candidates[0];
    };
    for (let page = next(null); page; page = next(cursor)) {
      ordered.push(page);
      cursor = page.value.continueCursor;
    }
    return ordered;
  });
}

function setPage(store: OptimisticLocalStore, query: PaginatedQueryReference, page: LoadedPage, items: Value[]) {
  store.setQuery(query, page.args as never, { ...page.value, page: items } as never);
}

/** Replaces every loaded item of the matching lists by `updateValue(item)`. */
export function optimisticallyUpdateValueInPaginatedQuery<Query extends PaginatedQueryReference>(
  localStore: OptimisticLocalStore,
  query: Query,
  args: PaginatedQueryArgs<Query>,
  updateValue: (currentValue: PaginatedQueryItem<Query>) => PaginatedQueryItem<Query>,
): void {
  for (const pages of loadedLists(localStore, query, args as Record<string, Value>, true)) {
    for (const page of pages) setPage(localStore, query, page, page.value.page.map((item) => updateValue(item as never) as Value));
  }
}

interface InsertOptions<Query extends PaginatedQueryReference> {
  paginatedQuery: Query;
  argsToMatch?: Partial<PaginatedQueryArgs<Query>>;
  localQueryStore: OptimisticLocalStore;
  item: PaginatedQueryItem<Query>;
}

/** Adds `item` at the top of the first page of each matching list that has loaded it. */
export function insertAtTop<Query extends PaginatedQueryReference>(options: InsertOptions<Query>): void {
  const { paginatedQuery, argsToMatch, localQueryStore, item } = options;
  for (const pages of loadedLists(localQueryStore, paginatedQuery, argsToMatch as Record<string, Value> | undefined)) {
    // Every loaded query of the first page: the pinned one and, while it loads, the unpinned one.
    for (const first of pages.filter((page) => page.args.paginationOpts.cursor === null)) {
      setPage(localQueryStore, paginatedQuery, first, [item as Value, ...first.value.page]);
    }
  }
}

/** Adds `item` at the bottom of each matching list that is loaded to its end. */
export function insertAtBottomIfLoaded<Query extends PaginatedQueryReference>(options: InsertOptions<Query>): void {
  const { paginatedQuery, argsToMatch, localQueryStore, item } = options;
  for (const pages of loadedLists(localQueryStore, paginatedQuery, argsToMatch as Record<string, Value> | undefined)) {
    const last = pages[pages.length - 1];
    if (last?.value.isDone) setPage(localQueryStore, paginatedQuery, last, [...last.value.page, item as Value]);
  }
}

/**
 * Adds `item` where it sorts (by `sortKeyFromItem`, in `sortOrder`) in each matching list: before
 * the first loaded item that does not sort before it, so ahead of the items whose key equals its
 * own, as Convex's `insertAtPosition` places it. Not at all when it sorts after the loaded items
 * of a list that is not loaded to its end.
 */
export function insertAtPosition<Query extends PaginatedQueryReference>(
  options: InsertOptions<Query> & { sortOrder: "asc" | "desc"; sortKeyFromItem: (item: PaginatedQueryItem<Query>) => Value | Value[] },
): void {
  const { paginatedQuery, argsToMatch, localQueryStore, item, sortOrder, sortKeyFromItem } = options;
  const key = sortKeyFromItem(item);
  // Whether `item` goes ahead of `other`: also when their keys are equal (a tie goes first).
  const goesBefore = (other: Value) => {
    const order = compareValues(key as Value, sortKeyFromItem(other as never) as Value);
    return sortOrder === "asc" ? order <= 0 : order >= 0;
  };
  for (const pages of loadedLists(localQueryStore, paginatedQuery, argsToMatch as Record<string, Value> | undefined)) {
    const target = pages.find((page) => page.value.page.some(goesBefore));
    if (target) {
      const items = [...target.value.page];
      items.splice(items.findIndex(goesBefore), 0, item as Value);
      setPage(localQueryStore, paginatedQuery, target, items);
    } else {
      const last = pages[pages.length - 1];
      if (last?.value.isDone) setPage(localQueryStore, paginatedQuery, last, [...last.value.page, item as Value]);
    }
  }
}

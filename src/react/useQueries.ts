/**
 * `useQueries`: a variable number of live queries in one hook, as in Convex.
 *
 * Each entry is a `QueryObserver` (see `queryObserver.ts`); the hook's store combines them and
 * hands React a new object only when one of their snapshots changed. A new set of queries (a key
 * added or removed, new args by value) builds a new store over new observers. React unsubscribes
 * the old store and subscribes the new one back to back; the old store's unsubscribes are
 * deferred by a microtask so that a query present in both is never dropped from the client's
 * query set in between (which would blank its result and refetch it).
 */
import { useMemo, useSyncExternalStore } from "react";
import type { WalkinClient } from "../browser/index.js";
import { getFunctionName, type FunctionReference } from "../server/api.js";
import type { Value } from "../values/value.js";
import { useWalkin } from "./context.js";
import { QueryObserver, argsKey, type QuerySnapshot } from "./queryObserver.js";

/** What `useQueries` takes: for each key, a query and its args. */
export type RequestForQueries = Record<string, { query: FunctionReference<"query">; args: Record<string, Value> }>;

/**
 * The results of several queries, by key: each is its result, `undefined` while it loads, or
 * the `Error` it failed with (returned, not thrown). Re-renders when any of them changes; args
 * are compared by value.
 *
 * @example
 * const results = useQueries(Object.fromEntries(ids.map((id) => [id, { query: api.users.get, args: { id } }])));
 * const user = results[id]; // undefined | Error | the user
 */
export function useQueries(queries: RequestForQueries): Record<string, any> {
  const client = useWalkin();
  const entries = Object.entries(queries).map(([key, { query, args }]) => ({ key, name: getFunctionName(query), args }));
  const storeKey = JSON.stringify(entries.map(({ key, name, args }) => [key, name, argsKey(args)]));
  // `entries` is deliberately not a dependency: `storeKey` is its value.
  const store = useMemo(() => new QueriesStore(client, entries), [client, storeKey]);
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getServerSnapshot);
}

class QueriesStore {
  private readonly observers: { key: string; observer: QueryObserver }[];
  private readonly loading: Record<string, undefined>;
  private snapshots: QuerySnapshot[] = [];
  private snapshot: Record<string, unknown>;

  constructor(client: WalkinClient, entries: { key: string; name: string; args: Record<string, Value> }[]) {
    this.observers = entries.map(({ key, name, args }) => ({ key, observer: new QueryObserver(client, name, args) }));
    this.loading = Object.fromEntries(entries.map(({ key }) => [key, undefined]));
    this.snapshot = this.loading;
  }

  readonly subscribe = (onChange: () => void): (() => void) => {
    const unsubscribes = this.observers.map(({ observer }) => observer.subscribe(onChange));
    return () => queueMicrotask(() => unsubscribes.forEach((unsubscribe) => unsubscribe()));
  };

  readonly getSnapshot = (): Record<string, unknown> => {
    const snapshots = this.observers.map(({ observer }) => observer.getSnapshot());
    if (snapshots.length === this.snapshots.length && snapshots.every((s, i) => s === this.snapshots[i])) return this.snapshot;
    this.snapshots = snapshots;
    this.snapshot = Object.fromEntries(
      this.observers.map(({ key }, i) => {
        const snapshot = snapshots[i]!;
        return [key, snapshot.status === "success" ? snapshot.value : snapshot.status === "error" ? snapshot.error : undefined];
      }),
    );
    return this.snapshot;
  };

  /** On the server every query is loading (nothing subscribes there). */
  readonly getServerSnapshot = (): Record<string, unknown> => this.loading;
}

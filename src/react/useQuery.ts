/**
 * `useQuery`: a live query result in a component.
 *
 * Lifecycle: render reads the client's local result (no I/O, see `QueryObserver`); React
 * subscribes after commit, which is when the client adds the query to its set and the server
 * starts sending results; changing the function or the args (compared by value, so an inline
 * `{ channel }` literal is fine) creates a new observer, and React unsubscribes the old one.
 * On the server `getServerSnapshot` answers "loading", so server HTML and the first client
 * render agree and nothing subscribes until hydration has finished.
 */
import { useMemo, useSyncExternalStore } from "react";
import {
  getFunctionName,
  type AnyFunctionReference,
  type FunctionArgs,
  type FunctionReference,
  type FunctionReturnType,
} from "../server/api.js";
import type { Value } from "../values/value.js";
import { useWalkin } from "./context.js";
import { LOADING, QueryObserver, argsKey, type QuerySnapshot } from "./queryObserver.js";

/** Like `OptionalRestArgs`, but `"skip"` may stand in for the args. */
export type OptionalRestArgsOrSkip<F extends AnyFunctionReference> = {} extends FunctionArgs<F>
  ? [args?: FunctionArgs<F> | "skip"]
  : [args: FunctionArgs<F> | "skip"];

/**
 * The current result of a query, kept up to date: `undefined` while it loads, then the
 * result, re-rendering the component whenever it changes. If the query fails, the error is
 * thrown during render, for the nearest error boundary. Pass `"skip"` instead of the args to
 * not run the query (it then returns `undefined`).
 *
 * @example
 * const messages = useQuery(api.messages.list, { channel });
 * const me = useQuery(api.users.me, signedIn ? {} : "skip");
 * if (messages === undefined) return <Spinner />;
 */
export function useQuery<Query extends FunctionReference<"query">>(
  query: Query,
  ...args: OptionalRestArgsOrSkip<Query>
): FunctionReturnType<Query> | undefined {
  const name = getFunctionName(query);
  const snapshot = useQuerySnapshot(name, args[0]);
  if (snapshot.status === "error") throw snapshot.error;
  return snapshot.status === "success" ? (snapshot.value as FunctionReturnType<Query>) : undefined;
}

/** The snapshot of the query `name` with `args`, or "loading" forever when skipped. */
export function useQuerySnapshot(name: string, args: Record<string, Value> | "skip" | undefined): QuerySnapshot {
  const client = useWalkin();
  const key = args === "skip" ? undefined : argsKey(args ?? {});
  // `args` is deliberately not a dependency: `key` is its value, and a new object with the
  // same value must not resubscribe.
  const observer = useMemo(
    () => (key === undefined ? undefined : new QueryObserver(client, name, args === "skip" ? {} : (args ?? {}))),
    [client, name, key],
  );
  return useSyncExternalStore(
    observer?.subscribe ?? subscribeToNothing,
    observer?.getSnapshot ?? loading,
    loading,
  );
}

function subscribeToNothing(): () => void {
  return () => {};
}

function loading(): QuerySnapshot {
  return LOADING;
}

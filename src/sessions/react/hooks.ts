/**
 * Session versions of the Walk-in hooks: each adds `sessionId` to the function's args.
 *
 * Queries take the ID from render (so they re-subscribe when it changes, and skip while it is
 * undefined during SSR hydration); mutations and actions read it when called, through
 * `useSessionIdGetter`, so a function created before a refresh uses the new ID after it.
 */
import { useMemo } from "react";
import type { OptimisticUpdate, WalkinClient } from "../../browser/index.js";
import {
  getFunctionName,
  makeFunctionReference,
  type FunctionArgs,
  type FunctionReference,
  type FunctionReturnType,
} from "../../server/api.js";
import type { PaginationOptions, PaginationResult } from "../../server/database.js";
import { walkinError } from "../../values/errors.js";
import { useWalkin } from "../../react/context.js";
import { useQuery } from "../../react/useQuery.js";
import { usePaginatedQuery, type PaginatedQueryItem, type UsePaginatedQueryResult } from "../../react/usePaginatedQuery.js";
import type { SessionArgs, SessionArgsRest, SessionFunction } from "../browser/index.js";
import { useSessionId, useSessionIdGetter } from "./provider.js";

/** Like `SessionArgsRest`, but `"skip"` may stand in for the args. */
export type SessionArgsOrSkip<F extends FunctionReference<any>> = {} extends SessionArgs<F>
  ? [args?: SessionArgs<F> | "skip"]
  : [args: SessionArgs<F> | "skip"];

/** What `useSessionMutation` returns: call it without `sessionId`. */
export interface ReactSessionMutation<Mutation extends FunctionReference<"mutation">> {
  (...args: SessionArgsRest<Mutation>): Promise<FunctionReturnType<Mutation>>;
  /** A new function that also applies `update` (which sees the args with `sessionId`) locally at once. */
  withOptimisticUpdate(update: OptimisticUpdate<FunctionArgs<Mutation>>): ReactSessionMutation<Mutation>;
}

/** What `useSessionAction` returns. */
export type ReactSessionAction<Action extends FunctionReference<"action">> = (
  ...args: SessionArgsRest<Action>
) => Promise<FunctionReturnType<Action>>;

/**
 * `args` plus the session ID, or "skip" when `args` is "skip" or there is no ID yet (SSR).
 *
 * @example
 * const cart = useQuery(api.cart.get, useSessionIdArg({ shop }));
 */
export function useSessionIdArg<Args extends object>(args: Args | "skip"): (Args & { sessionId: string }) | "skip" {
  const [sessionId] = useSessionId();
  return args === "skip" || sessionId === undefined ? "skip" : { ...args, sessionId };
}

/**
 * `useQuery` with the session ID added; skipped while there is no ID (server rendering).
 *
 * @example
 * const cart = useSessionQuery(api.cart.get); // the query takes { sessionId } only
 */
export function useSessionQuery<Query extends SessionFunction<"query">>(
  query: Query,
  ...args: SessionArgsOrSkip<Query>
): FunctionReturnType<Query> | undefined {
  const withId = useSessionIdArg(args[0] === "skip" ? "skip" : (args[0] ?? {}));
  return useQuery(query as FunctionReference<"query">, withId as never);
}

/** A session query usable with `useSessionPaginatedQuery`. */
export type SessionPaginatedQueryReference = FunctionReference<
  "query",
  "public",
  { sessionId: string; paginationOpts: PaginationOptions },
  PaginationResult<any>
>;

/**
 * `usePaginatedQuery` with the session ID added.
 *
 * @example
 * const { results, loadMore } = useSessionPaginatedQuery(api.orders.mine, {}, { initialNumItems: 10 });
 */
export function useSessionPaginatedQuery<Query extends SessionPaginatedQueryReference>(
  query: Query,
  args: Omit<FunctionArgs<Query>, "paginationOpts" | "sessionId"> | "skip",
  options: { initialNumItems: number },
): UsePaginatedQueryResult<PaginatedQueryItem<Query>> {
  const withId = useSessionIdArg(args);
  return usePaginatedQuery(query, withId as never, options);
}

/**
 * A stable function that runs the mutation with the session ID current when it is called.
 *
 * @example
 * const add = useSessionMutation(api.cart.add);
 * await add({ item: "apple" });
 */
export function useSessionMutation<Mutation extends SessionFunction<"mutation">>(
  mutation: Mutation,
): ReactSessionMutation<Mutation> {
  const client = useWalkin();
  const getId = useSessionIdGetter();
  const name = getFunctionName(mutation);
  return useMemo(() => createSessionMutation<Mutation>(client, getId, name, undefined), [client, getId, name]);
}

/**
 * A stable function that runs the action with the session ID current when it is called.
 *
 * @example
 * const checkout = useSessionAction(api.cart.checkout);
 */
export function useSessionAction<Action extends SessionFunction<"action">>(action: Action): ReactSessionAction<Action> {
  const client = useWalkin();
  const getId = useSessionIdGetter();
  const name = getFunctionName(action);
  return useMemo(() => {
    const reference = makeFunctionReference<"action">(name);
    return ((args?: object) =>
      withId(getId, (sessionId) => client.action(reference, { ...args, sessionId }))) as ReactSessionAction<Action>;
  }, [client, getId, name]);
}

function createSessionMutation<Mutation extends FunctionReference<"mutation">>(
  client: WalkinClient,
  getId: () => string | Promise<string>,
  name: string,
  update: OptimisticUpdate<FunctionArgs<Mutation>> | undefined,
): ReactSessionMutation<Mutation> {
  const reference = makeFunctionReference<"mutation">(name);
  const options = update === undefined ? undefined : { optimisticUpdate: update as OptimisticUpdate<any> };
  const mutate = (args?: object) => withId(getId, (sessionId) => client.mutation(reference, { ...args, sessionId }, options));
  const withOptimisticUpdate = (next: OptimisticUpdate<FunctionArgs<Mutation>>) => {
    if (update !== undefined) {
      throw walkinError(
        "MISUSE",
        `The mutation ${name} already has an optimistic update. Did you call withOptimisticUpdate twice? ` +
          "Apply both changes in one update function.",
      );
    }
    return createSessionMutation<Mutation>(client, getId, name, next);
  };
  return Object.assign(mutate, { withOptimisticUpdate }) as unknown as ReactSessionMutation<Mutation>;
}

function withId<T>(getId: () => string | Promise<string>, call: (sessionId: string) => Promise<T>): Promise<T> {
  let id: string | Promise<string>;
  try {
    id = getId();
  } catch (error) {
    return Promise.reject(error);
  }
  return typeof id === "string" ? call(id) : id.then(call);
}

/**
 * `useMutation` and `useAction`: stable functions that call the server through the client.
 *
 * The returned function keeps its identity for as long as the client and the function path
 * do, so it can go into dependency arrays and memoized children without re-running anything.
 * `withOptimisticUpdate` never changes the function it is called on: it returns a new one
 * (builders never mutate themselves), so one `useMutation` result can be specialised twice.
 */
import { useMemo } from "react";
import type { OptimisticUpdate, WalkinClient } from "../browser/index.js";
import {
  getFunctionName,
  makeFunctionReference,
  type FunctionArgs,
  type FunctionReference,
  type FunctionReturnType,
  type OptionalRestArgs,
} from "../server/api.js";
import { walkinError } from "../values/errors.js";
import { useWalkin } from "./context.js";

/** What `useMutation` returns: call it like the mutation, or derive an optimistic variant. */
export interface ReactMutation<Mutation extends FunctionReference<"mutation">> {
  (...args: OptionalRestArgs<Mutation>): Promise<FunctionReturnType<Mutation>>;
  /**
   * A new mutation function that also applies `update` to the local query results at once;
   * the client rolls it back when the server's results (or an error) arrive.
   *
   * @example
   * const send = useMutation(api.messages.send).withOptimisticUpdate((store, { body }) => {
   *   const list = store.getQuery(api.messages.list, {});
   *   if (list) store.setQuery(api.messages.list, {}, [{ _id: "pending", body }, ...list]);
   * });
   */
  withOptimisticUpdate(update: OptimisticUpdate<FunctionArgs<Mutation>>): ReactMutation<Mutation>;
}

/** What `useAction` returns. */
export type ReactAction<Action extends FunctionReference<"action">> = (
  ...args: OptionalRestArgs<Action>
) => Promise<FunctionReturnType<Action>>;

/**
 * A function that runs the mutation; its promise resolves with the mutation's return value
 * once the client's query results include the mutation's writes (rejects with its error).
 *
 * @example
 * const send = useMutation(api.messages.send);
 * <form onSubmit={() => void send({ body })}>…</form>
 */
export function useMutation<Mutation extends FunctionReference<"mutation">>(mutation: Mutation): ReactMutation<Mutation> {
  const client = useWalkin();
  const name = getFunctionName(mutation);
  return useMemo(() => createMutation<Mutation>(client, name, undefined), [client, name]);
}

/**
 * A function that runs the action and resolves with its return value.
 *
 * @example
 * const summarize = useAction(api.ai.summarize);
 * const summary = await summarize({ threadId });
 */
export function useAction<Action extends FunctionReference<"action">>(action: Action): ReactAction<Action> {
  const client = useWalkin();
  const name = getFunctionName(action);
  return useMemo(() => {
    const reference = makeFunctionReference<"action">(name);
    return ((...args: [Record<string, unknown>?]) => client.action(reference, args[0] ?? {})) as ReactAction<Action>;
  }, [client, name]);
}

function createMutation<Mutation extends FunctionReference<"mutation">>(
  client: WalkinClient,
  name: string,
  update: OptimisticUpdate<FunctionArgs<Mutation>> | undefined,
): ReactMutation<Mutation> {
  const reference = makeFunctionReference<"mutation">(name);
  const mutate = (...args: [Record<string, unknown>?]) =>
    client.mutation(reference, args[0] ?? {}, update === undefined ? undefined : { optimisticUpdate: update });
  const withOptimisticUpdate = (next: OptimisticUpdate<FunctionArgs<Mutation>>) => {
    if (update !== undefined) {
      throw walkinError(
        "MISUSE",
        `The mutation ${name} already has an optimistic update. Did you call withOptimisticUpdate twice? ` +
          "Apply both changes in one update function.",
      );
    }
    return createMutation<Mutation>(client, name, next);
  };
  return Object.assign(mutate, { withOptimisticUpdate }) as unknown as ReactMutation<Mutation>;
}

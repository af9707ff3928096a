/**
 * `walkin/nextjs`: run functions from Next.js server code, as Convex's `convex/nextjs` does:
 * `preloadQuery` in a Server Component (its result goes to `usePreloadedQuery` from
 * `walkin/react` in a client component), `fetchQuery`, `fetchMutation` and `fetchAction` in
 * Server Components, Server Actions and Route Handlers.
 *
 * The server's address is `options.url`, else the environment variable
 * `NEXT_PUBLIC_WALKIN_URL`, else `NEXT_PUBLIC_CONVEX_URL`. Nothing here imports React, so it
 * loads where Server Components run. The calls are react/ssr.ts's, each given a time limit
 * (deadline.ts), because a page render waits for them.
 *
 * @example
 * // app/tasks/page.tsx (a Server Component)
 * const preloaded = await preloadQuery(api.tasks.list, { list: "default" }, { token });
 * return <Tasks preloaded={preloaded} />;
 */
import * as ssr from "../react/ssr.js";
import type { ArgsAndOptions, FunctionArgs, FunctionReference, FunctionReturnType } from "../server/api.js";
import { withDeadline, type NextjsOptions } from "./deadline.js";

export { preloadedQueryResult, type Preloaded } from "../react/ssr.js";
export type { NextjsOptions } from "./deadline.js";

type Kind = "query" | "mutation" | "action";
/** The args and options as react/ssr.ts's functions take them, with the options' fetch replaced. */
type Forwarded<F extends FunctionReference<Kind>> = ArgsAndOptions<F, ssr.FetchQueryOptions>;

/**
 * Runs a query once over HTTP and returns its result; throws a `WalkinError` if it fails
 * (`DISCONNECTED` after `timeoutMs`, 30 seconds by default, without an answer).
 *
 * @example
 * const messages = await fetchQuery(api.messages.list, { channel: "general" }, { token });
 */
export function fetchQuery<Query extends FunctionReference<"query">>(
  query: Query,
  ...argsAndOptions: ArgsAndOptions<Query, NextjsOptions>
): Promise<FunctionReturnType<Query>> {
  const [args, options] = argsAndOptions as [FunctionArgs<Query> | undefined, NextjsOptions | undefined];
  return withDeadline("fetchQuery", query, options, (bounded) => ssr.fetchQuery(query, ...([args, bounded] as Forwarded<Query>)));
}

/**
 * Runs a mutation over HTTP (from a Server Action or a Route Handler, say) and returns its
 * result; throws a `WalkinError` if it fails (`DISCONNECTED` after `timeoutMs`, 30 seconds by
 * default, without an answer: the mutation may then still have run).
 *
 * @example
 * await fetchMutation(api.messages.send, { channel, body }, { token });
 */
export function fetchMutation<Mutation extends FunctionReference<"mutation">>(
  mutation: Mutation,
  ...argsAndOptions: ArgsAndOptions<Mutation, NextjsOptions>
): Promise<FunctionReturnType<Mutation>> {
  const [args, options] = argsAndOptions as [FunctionArgs<Mutation> | undefined, NextjsOptions | undefined];
  return withDeadline("fetchMutation", mutation, options, (bounded) => ssr.fetchMutation(mutation, ...([args, bounded] as Forwarded<Mutation>)));
}

/**
 * Runs an action over HTTP and returns its result; throws a `WalkinError` if it fails
 * (`DISCONNECTED` after `timeoutMs`, 11 minutes by default, without an answer).
 *
 * @example
 * const summary = await fetchAction(api.ai.summarize, { channel }, { token });
 */
export function fetchAction<Action extends FunctionReference<"action">>(
  action: Action,
  ...argsAndOptions: ArgsAndOptions<Action, NextjsOptions>
): Promise<FunctionReturnType<Action>> {
  const [args, options] = argsAndOptions as [FunctionArgs<Action> | undefined, NextjsOptions | undefined];
  return withDeadline("fetchAction", action, options, (bounded) => ssr.fetchAction(action, ...([args, bounded] as Forwarded<Action>)));
}

/**
 * Fetches a query's result for `usePreloadedQuery` (from `walkin/react`, in a client
 * component); waits at most `timeoutMs` (30 seconds by default) for it.
 *
 * @example
 * // app/tasks/page.tsx (a Server Component)
 * const preloaded = await preloadQuery(api.tasks.list, { list: "default" }, { token });
 * return <Tasks preloaded={preloaded} />;
 */
export function preloadQuery<Query extends FunctionReference<"query">>(
  query: Query,
  ...argsAndOptions: ArgsAndOptions<Query, NextjsOptions>
): Promise<ssr.Preloaded<Query>> {
  const [args, options] = argsAndOptions as [FunctionArgs<Query> | undefined, NextjsOptions | undefined];
  return withDeadline("preloadQuery", query, options, (bounded) => ssr.preloadQuery(query, ...([args, bounded] as Forwarded<Query>)));
}

/**
 * `runSessionFunctions`: for actions, `ctx.runQuery` / `runMutation` / `runAction` with the
 * session ID filled in. The ID passed is the digest the action received (`ctx.sessionId`);
 * calls from server code are trusted, so the called function accepts it as is.
 */
import type { FunctionArgs, FunctionReference, FunctionReturnType } from "../server/api.js";
import type { Expand } from "../server/dataModel.js";
import type { FunctionVisibility, GenericActionCtx } from "../server/registration.js";
import type { SessionId } from "./sessionId.js";

/**
 * A reference to a function of `Type` that takes a `sessionId` (typed `string` by the session
 * builders, `SessionId` by functions spreading `SessionIdArg`: both fit).
 */
export type SessionFunctionReference<Type extends "query" | "mutation" | "action"> = FunctionReference<
  Type,
  FunctionVisibility,
  { sessionId: string }
>;

/** The args of a session function without `sessionId`: optional when nothing else is required. */
export type SessionArgsRest<F extends SessionFunctionReference<any>> =
  {} extends Omit<FunctionArgs<F>, "sessionId">
    ? [args?: Expand<Omit<FunctionArgs<F>, "sessionId">>]
    : [args: Expand<Omit<FunctionArgs<F>, "sessionId">>];

/** What `runSessionFunctions` returns. */
export interface SessionFunctionRunners {
  runSessionQuery<F extends SessionFunctionReference<"query">>(fn: F, ...args: SessionArgsRest<F>): Promise<FunctionReturnType<F>>;
  runSessionMutation<F extends SessionFunctionReference<"mutation">>(fn: F, ...args: SessionArgsRest<F>): Promise<FunctionReturnType<F>>;
  runSessionAction<F extends SessionFunctionReference<"action">>(fn: F, ...args: SessionArgsRest<F>): Promise<FunctionReturnType<F>>;
}

type Runners = Pick<GenericActionCtx<any>, "runQuery" | "runMutation" | "runAction">;

/**
 * Runs session functions from an action as the same session.
 * @example
 * export const checkout = actionWithSession({
 *   args: {},
 *   handler: async (ctx) => {
 *     const { runSessionQuery } = runSessionFunctions(ctx, ctx.sessionId);
 *     const cart = await runSessionQuery(api.carts.mine); // { sessionId } added
 *   },
 * });
 */
export function runSessionFunctions(ctx: Runners, sessionId: SessionId): SessionFunctionRunners {
  // The engine's runners are typed per reference; here the args are assembled generically.
  const call = (run: (fn: any, args: any) => Promise<any>) => (fn: any, args?: Record<string, unknown>) =>
    run(fn, { ...(args ?? {}), sessionId });
  return {
    runSessionQuery: call((fn, args) => ctx.runQuery(fn, args)),
    runSessionMutation: call((fn, args) => ctx.runMutation(fn, args)),
    runSessionAction: call((fn, args) => ctx.runAction(fn, args)),
  };
}

/**
 * `walkin/sessions`: server-side sessions. Client-generated session IDs arrive as a
 * `sessionId` argument validated by `vSessionId`; handlers and tables only ever hold its
 * one-way digest. Builders put `ctx.sessionId` and `ctx.user` on the context; helpers give
 * sessions anonymous users, move them on sign-in and end them on sign-out.
 *
 * @example
 * import { mutationWithSession, sessionTables } from "walkin/sessions";
 * export const rename = mutationWithSession({
 *   args: { name: v.string() },
 *   handler: async (ctx, { name }) => { if (ctx.user) await ctx.db.patch(ctx.user._id, { name }); },
 * });
 */
export { SessionIdArg, isRawSessionId, isSessionDigest, sessionDigest, vSessionId, type SessionId } from "./sessionId.js";
export {
  runSessionFunctions,
  type SessionArgsRest,
  type SessionFunctionReference,
  type SessionFunctionRunners,
} from "./runSessionFunctions.js";
export {
  actionWithSession,
  getSessionUser,
  mutationWithSession,
  queryWithSession,
  sessionBuilders,
  sessionTables,
  type ActionWithSession,
  type MutationWithSession,
  type QueryWithSession,
  type SessionActionCtx,
  type SessionCtx,
  type SessionUser,
} from "./builders.js";
export { endSession, getOrCreateSessionUser, transferSession, type SessionTables } from "./anonymousUsers.js";
export { readSessionIdCookie } from "./cookie.js";

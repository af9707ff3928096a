/**
 * `walkin/sessions/react`: the page's session ID in React, and hooks that pass it as the
 * `sessionId` argument. Put `<SessionProvider>` inside `<WalkinProvider>`.
 *
 * @example
 * import { SessionProvider, useSessionQuery, useSessionMutation } from "walkin/sessions/react";
 * <WalkinProvider client={client}><SessionProvider><Cart /></SessionProvider></WalkinProvider>
 * // in Cart:
 * const items = useSessionQuery(api.cart.list);
 * const add = useSessionMutation(api.cart.add);
 */
export { SessionProvider, useSessionId, type SessionProviderProps } from "./provider.js";
export {
  useSessionAction,
  useSessionIdArg,
  useSessionMutation,
  useSessionPaginatedQuery,
  useSessionQuery,
  type ReactSessionAction,
  type ReactSessionMutation,
  type SessionArgsOrSkip,
  type SessionPaginatedQueryReference,
} from "./hooks.js";
export { useCookieStorage, useLocalStorage, useMemoryStorage, useSessionStorage, type UseStorage } from "./storage.js";
export {
  SessionClient,
  createSessionIdSource,
  type SessionArgs,
  type SessionArgsArray,
  type SessionIdSource,
  type SessionQueryArgsArray,
} from "../browser/index.js";
export type { SessionId } from "../sessionIdType.js";
export { ConvexReactSessionClient, type ConvexReactSessionClientOptions, type SessionStorageLike } from "./convexSessionClient.js";

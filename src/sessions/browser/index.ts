/**
 * `walkin/sessions/browser`: the client half of sessions, with no React and nothing
 * Node-only. The page's session ID lives in a `SessionIdSource` (over a `SessionIdStore`);
 * `SessionClient` adds it to calls. `walkin/sessions/react` builds on the same source.
 *
 * @example
 * import { createSessionIdSource, sessionStorageStore, SessionClient } from "walkin/sessions/browser";
 * const source = createSessionIdSource({ store: sessionStorageStore("walkin-session-id"), scope: "tab" });
 * const sessions = new SessionClient(client, source);
 * const cart = await sessions.query(api.cart.get);
 */
export { generateSessionId, isUuidV4 } from "./id.js";
export {
  cookieStore,
  localStorageStore,
  memoryStore,
  sessionStorageStore,
  type CookieStoreOptions,
  type SessionIdStore,
} from "./stores.js";
export { createSessionIdSource, type ChannelLike, type SessionIdSource, type SessionIdSourceOptions } from "./source.js";
export {
  SessionClient,
  type SessionArgs,
  type SessionArgsArray,
  type SessionArgsRest,
  type SessionFunction,
  type SessionQueryArgsArray,
} from "./client.js";
export type { SessionId } from "../sessionIdType.js";

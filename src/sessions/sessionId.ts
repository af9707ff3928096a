/**
 * What a session ID is on the server: the `SessionId` brand, its validator `vSessionId`, and
 * the one-way digest handlers and tables hold instead of the raw ID.
 *
 * A session ID is a credential: whoever sends it acts as the session. So the raw ID (a UUID v4
 * the client generated) only ever travels from the client to argument validation. There
 * `vSessionId` replaces it with `sd1_` + base64url(sha256("walkin-session-id:" + id)), and
 * that digest is all a handler, a table or a query result can hold. A client that sends a
 * digest back is refused, so a digest that leaks (a database dump, a careless query result)
 * cannot be replayed to impersonate the session. Server code (actions calling session
 * functions with `ctx.sessionId`, the scheduler) is trusted and may pass digests.
 *
 * The rule, for every way a call arrives:
 * 1. A raw ID is never stored and never handed to a handler (nor to a custom builder's
 *    `input`): argument validation replaces it with its digest before either runs, and a
 *    document field validated by `vSessionId` is stored digested whoever writes it.
 * 2. From a client (WebSocket, HTTP), only the raw ID is a session ID; a digest is refused.
 * 3. From server code (ctx.runQuery / runMutation / runAction, the scheduler, crons, tests), a
 *    digest is accepted wherever the raw ID would be: the digest is all that server code can
 *    hold (from ctx.sessionId, its own args or a stored document), and server code is the
 *    app's own, acting for a session it already serves. A raw ID from server code is accepted
 *    and digested too.
 * So trust is decided where the caller is known, in the engine's argument check, never inside a
 * handler or a builder's wrapper (which cannot tell callers apart): for that, a custom builder
 * hands the engine the args it adds even when the function's own args are `v.any()`.
 *
 * Nothing here logs or echoes an ID: error messages describe what was received, never print it.
 */
import { createHash } from "node:crypto";
import { v } from "../values/index.js";

import type { SessionId } from "./sessionIdType.js";

export type { SessionId };

const DIGEST_PREFIX = "sd1_";
/** sha256 is 32 bytes: 43 base64url characters without padding. */
const DIGEST_PATTERN = /^sd1_[A-Za-z0-9_-]{43}$/;
const UUID_V4_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * Whether `value` is a raw session ID as clients generate it: a lowercase UUID v4.
 * @example
 * isRawSessionId(crypto.randomUUID()); // true
 */
export function isRawSessionId(value: unknown): value is string {
  return typeof value === "string" && UUID_V4_PATTERN.test(value);
}

/**
 * Whether `value` is a session digest (what handlers and tables hold).
 * @example
 * isSessionDigest(sessionDigest(crypto.randomUUID())); // true
 */
export function isSessionDigest(value: unknown): value is SessionId {
  return typeof value === "string" && DIGEST_PATTERN.test(value);
}

/**
 * The digest functions see for a raw session ID; a digest is returned unchanged. Use it where
 * server code holds a raw ID (a server render reading the session cookie, a test) and needs
 * the value stored in tables.
 * @example
 * const sessionId = sessionDigest(crypto.randomUUID()); // "sd1_…"
 * sessionDigest(sessionId) === sessionId; // true
 */
export function sessionDigest(raw: string): SessionId {
  if (isSessionDigest(raw)) return raw;
  const hash = createHash("sha256").update("walkin-session-id:" + raw).digest("base64url");
  return (DIGEST_PREFIX + hash) as SessionId;
}

/** A short description of a wrong value that never echoes it (it may be someone's secret). */
function describeReceived(value: string): string {
  if (value === "") return "an empty string";
  if (/^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/i.test(value)) {
    return "a UUID with uppercase letters (session IDs are lowercase)";
  }
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) {
    return value[14] === "4" ? "a UUID v4 with an invalid variant (expected 8, 9, a or b after the third dash)" : "a UUID that is not version 4";
  }
  return `a string of ${value.length} character${value.length === 1 ? "" : "s"}`;
}

function checkSessionId(value: string, { trusted }: { trusted: boolean }): string | null {
  if (isRawSessionId(value)) return null;
  if (isSessionDigest(value)) {
    return trusted ? null : "this is a session digest (what functions see), not a session ID; send the ID the client generated";
  }
  return `expected the UUID the client generated (e.g. from crypto.randomUUID()), received ${describeReceived(value)}`;
}

/**
 * The validator of session IDs. Clients must send the raw UUID v4 they generated; handlers
 * receive its digest (a `SessionId`). Server code may also pass a digest.
 * @example
 * export const myCart = query({
 *   args: { sessionId: vSessionId },
 *   handler: (ctx, { sessionId }) => ctx.db.query("carts").withIndex("by_sessionId", (q) => q.eq("sessionId", sessionId)).first(),
 * });
 */
export const vSessionId = v.formattedString<SessionId>({
  name: "a session ID",
  check: checkSessionId,
  normalize: sessionDigest,
  hint:
    "Session functions need the session ID the client generated: call them with useSessionQuery / useSessionMutation / " +
    "useSessionAction (which add it) inside a SessionProvider, or pass { sessionId } from useSessionId(); server code passes ctx.sessionId",
});

/**
 * The session argument, to spread into a function's `args`.
 * @example
 * export const list = query({ args: { ...SessionIdArg, limit: v.number() }, handler: async (ctx, { sessionId, limit }) => [] });
 */
export const SessionIdArg = { sessionId: vSessionId };

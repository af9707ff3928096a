/**
 * Reading the session cookie during a server render. The client's cookie storage (see
 * `walkin/sessions/browser`) writes the raw session ID to a client-readable cookie named after
 * its storage key; a server render reads it here to query the session's own data, so the
 * client hydrates with the same ID and the same results.
 */
import { isRawSessionId } from "./sessionId.js";

/**
 * The raw session ID in a `Cookie` header, or null if absent or malformed (never throws).
 * @example
 * const sessionId = readSessionIdCookie(request.headers.get("cookie"));
 * const cart = sessionId ? await client.query(api.carts.mine, { sessionId }) : null;
 */
export function readSessionIdCookie(cookieHeader: string | null | undefined, storageKey = "walkin-session-id"): string | null {
  if (typeof cookieHeader !== "string" || cookieHeader.length > 16_384) return null;
  // The client's cookie store names the cookie `encodeURIComponent(storageKey)` (a cookie name
  // cannot hold ":", "/", "@", spaces…): look for that name, as well as the key as given.
  const encodedKey = encodeURIComponent(storageKey);
  for (const part of cookieHeader.split(";")) {
    const eq = part.indexOf("=");
    const name = eq < 0 ? "" : part.slice(0, eq).trim();
    if (eq < 0 || (name !== storageKey && name !== encodedKey)) continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    try {
      value = decodeURIComponent(value);
    } catch {
      return null;
    }
    return isRawSessionId(value) ? value : null;
  }
  return null;
}

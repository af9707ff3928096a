/**
 * The admin key: the one secret that opens the dashboard's admin API.
 *
 * `walkin dev` makes a fresh one each start; `walkin start` takes `WALKIN_ADMIN_KEY`. The key
 * travels only in the `Authorization` header (the page keeps it in sessionStorage, the URL
 * printed by `walkin dev` carries it in the fragment, which browsers never send), and is
 * compared in constant time: both sides are hashed to the same length first, so neither the
 * length nor the first differing byte shows in the time an answer takes.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

/** The shortest key `walkin start` accepts: a short key could be guessed. */
export const MIN_ADMIN_KEY_LENGTH = 24;

/** A fresh random key (256 bits, base64url). */
export function generateAdminKey(): string {
  return randomBytes(32).toString("base64url");
}

/** Why `key` cannot be an admin key, or null when it can; `name` is where the key came from. */
export function adminKeyProblem(key: string, name = "WALKIN_ADMIN_KEY"): string | null {
  if (typeof key !== "string") return `${name} must be a string (received ${key === null ? "null" : typeof key}), e.g. generateAdminKey() or the output of \`openssl rand -base64 32\`.`;
  if (key.length < MIN_ADMIN_KEY_LENGTH) {
    return `${name} is too short (${key.length} characters): use at least ${MIN_ADMIN_KEY_LENGTH}, e.g. the output of \`openssl rand -base64 32\`.`;
  }
  if (/\s/.test(key)) return `${name} contains whitespace; use a key without spaces or line breaks, e.g. the output of \`openssl rand -base64 32\`.`;
  return null;
}

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest();

/** True when the request carries `Authorization: Bearer <key>` with exactly this key. */
export function requestHasKey(request: IncomingMessage, key: string): boolean {
  const header = request.headers.authorization;
  const match = typeof header === "string" ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  // Compare something even without a header, so a missing key costs the same as a wrong one.
  return timingSafeEqual(digest(match?.[1] ?? ""), digest(key)) && match !== null;
}

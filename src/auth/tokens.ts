/**
 * Auth session tokens: `wk2.<sessionId>.<secret>`, the session row's ID and 256 random bits of
 * secret in base64url. The ID finds the row with a point read; the secret is checked against
 * the stored sha256 of it in constant time. The secret is never stored as is, so a leaked
 * database holds nothing a client could present. A string of any other shape is simply not a
 * token.
 *
 * Why the ID and not a random key found through an index (`wk1.<key>.<secret>`, the first
 * format): the key's only job was to find the row, which a document ID does with a point read
 * (itself 120 random bits), while a key cost an index entry on a random page of every new
 * session and an index scan on every call. The secret, the part that is checked, is unchanged.
 * `wk1` tokens issued before still work (`parseSessionToken`), through the `by_keyHash` index.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { takeRandomBytes } from "../engine/randomPool.js";

/** Document IDs are lowercase Crockford base32, 28 to 40 characters (engine/ids.ts). */
const TOKEN_PATTERN = /^wk2\.([0-9a-z]{28,40})\.([A-Za-z0-9_-]{43})$/;
const LEGACY_TOKEN_PATTERN = /^wk1\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;
const MAX_TOKEN_LENGTH = 4 + 40 + 1 + 43;

/** Any token, as found in logs and errors: what redaction replaces. */
export const ANY_TOKEN = /(wk[12])\.[0-9A-Za-z_-]{22,40}\.[A-Za-z0-9_-]{43}/g;

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("base64url");
}

/** A fresh secret for a new session, and the hash of it to store. */
export function newSessionSecret(): { secret: string; secretHash: string } {
  const secret = takeRandomBytes(32).toString("base64url");
  return { secret, secretHash: sha256(secret) };
}

/** The token of a session, once its row exists. */
export function sessionToken(sessionId: string, secret: string): string {
  return `wk2.${sessionId}.${secret}`;
}

/**
 * What a well-formed token points at: a session ID (`wk2`), or the hash of a `wk1` token's key;
 * with the hash of its secret. Null for anything else (never throws).
 */
export type ParsedToken = { secretHash: string } & ({ sessionId: string } | { keyHash: string });

export function parseSessionToken(token: unknown): ParsedToken | null {
  if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) return null;
  const match = TOKEN_PATTERN.exec(token);
  if (match) return { sessionId: match[1]!, secretHash: sha256(match[2]!) };
  const legacy = LEGACY_TOKEN_PATTERN.exec(token);
  return legacy ? { keyHash: sha256(legacy[1]!), secretHash: sha256(legacy[2]!) } : null;
}

/** Constant-time equality of two base64url hashes. */
export function hashesEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** A random string for one-time secrets (OAuth state, verifiers, one-time codes). */
export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

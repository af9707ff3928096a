/**
 * Auth session tokens: `wk1.<key>.<secret>`, 128 random bits of key and 256 of secret, in
 * base64url. The key finds the session row (by its sha256); the secret is checked against the
 * stored sha256 of it in constant time. Neither part is stored as is, so a leaked database
 * holds nothing a client could present. A string of any other shape is simply not a token.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

const TOKEN_PATTERN = /^wk1\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

export interface TokenHashes {
  keyHash: string;
  secretHash: string;
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("base64url");
}

/** A fresh token and the hashes to store for it. */
export function newSessionToken(): { token: string } & TokenHashes {
  const key = randomBytes(16).toString("base64url");
  const secret = randomBytes(32).toString("base64url");
  return { token: `wk1.${key}.${secret}`, keyHash: sha256(key), secretHash: sha256(secret) };
}

/** The hashes of a well-formed token; null for anything else (never throws). */
export function hashSessionToken(token: unknown): TokenHashes | null {
  if (typeof token !== "string" || token.length > 80) return null;
  const match = TOKEN_PATTERN.exec(token);
  return match ? { keyHash: sha256(match[1]!), secretHash: sha256(match[2]!) } : null;
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

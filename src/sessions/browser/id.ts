/**
 * Session ID generation and validation. Browser-safe: only the Web Crypto API, never
 * `Math.random` (a session ID is a credential, so it must be unguessable).
 */
import { walkinError } from "../../values/errors.js";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** True when `value` is a UUID v4 string, the shape `generateSessionId` produces. */
export function isUuidV4(value: unknown): value is string {
  return typeof value === "string" && UUID_V4.test(value);
}

/**
 * True when `value` is a session ID the server accepts: a UUID v4 in lowercase, as
 * `generateSessionId` makes them (the server refuses uppercase ones, see `isRawSessionId`).
 */
export function isSessionIdV4(value: unknown): value is string {
  return isUuidV4(value) && value === value.toLowerCase();
}

/**
 * A new random session ID (UUID v4). Uses `crypto.randomUUID` where it exists; plain-http
 * pages (not a "secure context", e.g. a LAN address) lack it but still have
 * `crypto.getRandomValues`, so the UUID is built from 16 random bytes there.
 *
 * @example
 * const id = generateSessionId(); // "3b241101-e2bb-4255-8caf-4136c566a962"
 */
export function generateSessionId(crypto: Partial<Crypto> | undefined = globalThis.crypto): string {
  if (typeof crypto?.randomUUID === "function") return crypto.randomUUID();
  if (typeof crypto?.getRandomValues === "function") {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6]! & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8]! & 0x3f) | 0x80; // RFC 4122 variant
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  throw walkinError(
    "MISUSE",
    "Cannot generate a session ID: this runtime has neither crypto.randomUUID nor crypto.getRandomValues. " +
      "Pass an `idGenerator` backed by a secure random source (never Math.random).",
  );
}

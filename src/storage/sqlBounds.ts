/**
 * Key ranges for SQL storages (SQLite, PostgreSQL): both compare BLOB / bytea keys with memcmp,
 * so both turn a range into the same two bounds and bind keys as Node Buffers.
 */
import type { KeyRange } from "./types.js";

/**
 * Turns any range into `key >= lower [AND key < upper]`, so a few statements cover every case.
 * In memcmp order the smallest key greater than k is k followed by a 0x00 byte, so "> k" is
 * ">= k+00" and "<= k" is "< k+00". An unbounded lower end is the empty key, the smallest of all.
 */
export function sqlBounds(range: KeyRange): { lower: Buffer; upper: Buffer | undefined } {
  const { lower, upper } = range;
  return {
    lower: lower === undefined ? Buffer.alloc(0) : lower.inclusive ? toBuffer(lower.key) : successor(lower.key),
    upper: upper === undefined ? undefined : upper.inclusive ? successor(upper.key) : toBuffer(upper.key),
  };
}

function successor(key: Uint8Array): Buffer {
  const next = Buffer.alloc(key.byteLength + 1);
  next.set(key);
  return next;
}

/** A Buffer over the same bytes (no copy): drivers bind Buffers as BLOB / bytea. */
export function toBuffer(key: Uint8Array): Buffer {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength);
}

/**
 * Key ranges for SQL storages (SQLite, PostgreSQL): both compare BLOB / bytea keys with memcmp,
 * so both turn a range into the same two bounds. Both drivers bind any Uint8Array as a BLOB /
 * bytea (better-sqlite3 takes every ArrayBufferView, `pg` wraps views itself), so the bounds
 * stay plain byte arrays: wrapping each key in a Buffer first cost about 130 ns a key.
 */
import type { KeyRange } from "./types.js";

/**
 * Turns any range into `key >= lower [AND key < upper]`, so a few statements cover every case.
 * In memcmp order the smallest key greater than k is k followed by a 0x00 byte, so "> k" is
 * ">= k+00" and "<= k" is "< k+00". An unbounded lower end is the empty key, the smallest of all.
 */
export function sqlBounds(range: KeyRange): { lower: Uint8Array; upper: Uint8Array | undefined } {
  const { lower, upper } = range;
  return {
    lower: lower === undefined ? EMPTY_KEY : lower.inclusive ? lower.key : successor(lower.key),
    upper: upper === undefined ? undefined : upper.inclusive ? successor(upper.key) : upper.key,
  };
}

const EMPTY_KEY = new Uint8Array(0);

function successor(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.byteLength + 1);
  next.set(key);
  return next;
}

/** A Buffer over the same bytes (no copy), where a Buffer itself is wanted (its `toString`, the arrays handed to `pg`). */
export function toBuffer(key: Uint8Array): Buffer {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength);
}

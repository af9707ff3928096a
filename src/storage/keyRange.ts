/**
 * Key ranges, as storage defines them: bytewise (memcmp) order, a shorter prefix first, each
 * bound inclusive or exclusive, a missing bound unbounded. Shared by the engine (read sets,
 * its overlay of a transaction's own writes) and the storage reference model.
 */
import { compareBytes } from "../values/indexKey.js";
import type { KeyRange } from "./types.js";

export function rangeContains(range: KeyRange, key: Uint8Array): boolean {
  if (range.lower) {
    const c = compareBytes(key, range.lower.key);
    if (c < 0 || (c === 0 && !range.lower.inclusive)) return false;
  }
  if (range.upper) {
    const c = compareBytes(key, range.upper.key);
    if (c > 0 || (c === 0 && !range.upper.inclusive)) return false;
  }
  return true;
}

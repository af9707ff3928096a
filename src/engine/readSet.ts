/**
 * Read sets and write sets: the currency of both concurrency control and reactivity.
 *
 * A transaction's read set is the list of index key ranges it observed (a `get` is a point
 * range on `by_id`). A commit's write set is every index key its documents had before and
 * after the write, on every index of their table (even unchanged keys: a reader of that range
 * saw the old body). A commit invalidates a reader exactly when one of its written keys falls
 * in one of the reader's ranges. The same test decides "retry this mutation" (OCC) and
 * "re-run this subscription".
 */
import { prefixSuccessor } from "../values/indexKey.js";
import { rangeContains } from "../storage/keyRange.js";
import type { KeyRange } from "../storage/types.js";

/** indexId → keys written. */
export type WriteSet = Map<string, Uint8Array[]>;

export class ReadSet {
  /** indexId → ranges read. */
  readonly ranges = new Map<string, KeyRange[]>();

  add(indexId: string, range: KeyRange): void {
    const list = this.ranges.get(indexId);
    if (list) list.push(range);
    else this.ranges.set(indexId, [range]);
  }

  addPoint(indexId: string, key: Uint8Array): void {
    this.add(indexId, pointRange(key));
  }

  /** The first written key that falls in one of our ranges, with its index, or `null`. */
  firstOverlap(writes: WriteSet): { indexId: string; key: Uint8Array } | null {
    // Runs for every pair of a transaction and a commit after its snapshot: no destructured
    // entries or array iterators, which here allocated about a tenth of all the bytes a sign-in
    // benchmark allocated.
    for (const indexId of writes.keys()) {
      const ranges = this.ranges.get(indexId);
      if (ranges === undefined) continue;
      const keys = writes.get(indexId)!;
      for (let k = 0; k < keys.length; k++) {
        const key = keys[k]!;
        for (let r = 0; r < ranges.length; r++) if (rangeContains(ranges[r]!, key)) return { indexId, key };
      }
    }
    return null;
  }
}

export function pointRange(key: Uint8Array): KeyRange {
  return { lower: { key, inclusive: true }, upper: { key, inclusive: true } };
}

/** All keys starting with `prefix`. */
export function prefixRange(prefix: Uint8Array): KeyRange {
  const successor = prefixSuccessor(prefix);
  return {
    lower: prefix.length === 0 ? undefined : { key: prefix, inclusive: true },
    upper: successor === null ? undefined : { key: successor, inclusive: false },
  };
}

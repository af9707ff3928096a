/**
 * The in-memory log of recent commits' write sets, in timestamp order.
 *
 * Optimistic concurrency control asks "did anything committed after my snapshot touch what I
 * read?", and a query that finished running asks the same before it is published. Both scan
 * the entries after their snapshot timestamp. Entries older than every running transaction's
 * snapshot can never be asked about again and are trimmed.
 */
import type { Timestamp } from "../storage/types.js";
import type { ReadSet, WriteSet } from "./readSet.js";

export interface CommitRecord {
  ts: Timestamp;
  writes: WriteSet;
}

export class CommitLog {
  private entries: CommitRecord[] = [];

  append(record: CommitRecord): void {
    this.entries.push(record);
  }

  /** The first commit after `since` (exclusive) that overlaps `readSet`: its contended index. */
  firstConflict(readSet: ReadSet, since: Timestamp): { ts: Timestamp; indexId: string } | null {
    for (let i = this.firstIndexAfter(since); i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      const indexId = readSet.overlaps(entry.writes);
      if (indexId !== null) return { ts: entry.ts, indexId };
    }
    return null;
  }

  /** Drops entries at or before `ts`. */
  trim(ts: Timestamp): void {
    const cut = this.firstIndexAfter(ts);
    if (cut > 0) this.entries = this.entries.slice(cut);
  }

  get size(): number {
    return this.entries.length;
  }

  /** Index of the first entry with `entry.ts > ts` (binary search; entries are sorted). */
  private firstIndexAfter(ts: Timestamp): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]!.ts <= ts) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

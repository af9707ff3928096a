/**
 * The in-memory log of recent commits' write sets, in timestamp order: this engine's own
 * commits and those it learned of from other engines sharing the database.
 *
 * Optimistic concurrency control asks "did anything committed after my snapshot touch what I
 * read?", and a query that finished running asks the same before it is published. Both scan
 * the entries after their snapshot timestamp.
 *
 * The log is trimmed (entries no running transaction can ask about are dropped), and it
 * remembers how far: a question about a snapshot before `trimmedThrough` cannot be
 * answered from the entries left, so the answer is "conflict", never "no conflict". Answering
 * "no conflict" there is how updates get lost:
 *   1. mutation M reads counter C at snapshot 10 and waits for its commit;
 *   2. mutation N commits a write to C at 11;
 *   3. the log is trimmed through 11 (say M's snapshot pin was dropped too early);
 *   4. M is checked against the entries after 10: there are none left, so M commits its
 *      stale increment at 12 and N's is lost.
 * The engine keeps M's snapshot pinned until its commit is decided, so step 3 cannot trim past
 * 10; the trim mark makes any other path that gets there fail safe.
 */
import type { Timestamp } from "../storage/types.js";
import type { ReadSet, WriteSet } from "./readSet.js";

export interface CommitRecord {
  ts: Timestamp;
  writes: WriteSet;
}

/**
 * Why a read set conflicts: the index and key a later commit wrote, or `indexId: null` when
 * the history needed to decide is gone.
 */
export type Conflict = { ts: Timestamp; indexId: string | null; key?: Uint8Array };

export class CommitLog {
  private entries: CommitRecord[] = [];
  private trimmed: Timestamp;

  /** `start`: the log knows nothing of commits at or before it (the latest commit at open). */
  constructor(start: Timestamp = 0) {
    this.trimmed = start;
  }

  /** Adds a commit newer than every entry (commits arrive in timestamp order). */
  append(record: CommitRecord): void {
    const last = this.entries[this.entries.length - 1];
    if (last !== undefined && record.ts <= last.ts) {
      throw new Error(`commit log: commit ${record.ts} arrived after ${last.ts}; commits must arrive in timestamp order`);
    }
    this.entries.push(record);
  }

  /**
   * The first commit after `since` (exclusive) that overlaps `readSet`; a conflict with
   * `indexId: null` when entries after `since` may have been trimmed.
   */
  firstConflict(readSet: ReadSet, since: Timestamp): Conflict | null {
    if (since < this.trimmed) return { ts: this.trimmed, indexId: null };
    for (let i = this.firstIndexAfter(since); i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      const overlap = readSet.firstOverlap(entry.writes);
      if (overlap !== null) return { ts: entry.ts, ...overlap };
    }
    return null;
  }

  /** Whether a commit after `since` (exclusive) still in the log has a write set that passes `test`. */
  someAfter(since: Timestamp, test: (writes: WriteSet) => boolean): boolean {
    for (let i = this.firstIndexAfter(since); i < this.entries.length; i++) if (test(this.entries[i]!.writes)) return true;
    return false;
  }

  /** Drops entries at or before `ts`; questions about snapshots before `ts` now answer "conflict". */
  trim(ts: Timestamp): void {
    if (ts <= this.trimmed) return;
    this.trimmed = ts;
    const cut = this.firstIndexAfter(ts);
    if (cut > 0) this.entries = this.entries.slice(cut);
  }

  get trimmedThrough(): Timestamp {
    return this.trimmed;
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

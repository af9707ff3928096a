/**
 * The storage calls in flight, for the storage guard's watchdog (`storageGuard.ts`): a list
 * threaded through the calls' own records (`prev`, `next`), not a `Set`.
 *
 * Why not a Set: the guard lives as long as its engine, so its Set sits in V8's old generation,
 * and every storage call (every read that misses the read cache, every commit) added a new,
 * young record to it and deleted it a moment later. On an old Set that pair cost 700–770 ns
 * (node 20, measured 2026-12-05 with a scratch loop; 5–8 ns for linking and unlinking here), and
 * as the Set emptied V8 shrank its table, allocating a new one each time: the largest share of
 * what a loop of mutations and live-query re-runs moved into the old generation
 * (`bench/promoted.ts`: 24% of it, at the `delete` in the guard), which only full collections
 * free. Linking writes three fields and allocates nothing.
 */

/** A record that can be on a `CallList`: the list owns these fields. */
export interface Listed {
  prev: Listed | null;
  next: Listed | null;
  /** On a list now: a record is removed once, by whichever of the call's end and its deadline comes first. */
  listed: boolean;
}

export class CallList<T extends Listed> {
  private head: T | null = null;
  private tail: T | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Appends `record`, which must not be on a list. */
  add(record: T): void {
    record.prev = this.tail;
    record.next = null;
    if (this.tail === null) this.head = record;
    else this.tail.next = record;
    this.tail = record;
    record.listed = true;
    this.count += 1;
  }

  /** Takes `record` off the list; nothing if it is not on it (taken off already). */
  remove(record: T): void {
    if (!record.listed) return;
    const { prev, next } = record;
    if (prev === null) this.head = next as T | null;
    else prev.next = next;
    if (next === null) this.tail = prev as T | null;
    else next.prev = prev;
    record.prev = record.next = null;
    record.listed = false;
    this.count -= 1;
  }

  /** Takes off, oldest first, every record `expired` says has expired, and returns them. */
  removeWhere(expired: (record: T) => boolean): T[] {
    const removed: T[] = [];
    for (let record = this.head; record !== null; ) {
      // Read before `remove` clears it.
      const next = record.next as T | null;
      if (expired(record)) {
        this.remove(record);
        removed.push(record);
      }
      record = next;
    }
    return removed;
  }
}

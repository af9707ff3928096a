/**
 * Which snapshot timestamps are still being read. History older than the oldest one can be
 * garbage-collected from storage, and commit-log entries at or before it can be dropped.
 */
import type { Timestamp } from "../storage/types.js";

export class ActiveSnapshots {
  private readonly counts = new Map<Timestamp, number>();

  pin(ts: Timestamp): () => void {
    this.counts.set(ts, (this.counts.get(ts) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.counts.get(ts) ?? 1) - 1;
      if (left === 0) this.counts.delete(ts);
      else this.counts.set(ts, left);
    };
  }

  /** The oldest pinned timestamp, or `fallback` when nothing is pinned. */
  oldest(fallback: Timestamp): Timestamp {
    let oldest = fallback;
    for (const ts of this.counts.keys()) if (ts < oldest) oldest = ts;
    return oldest;
  }
}

/**
 * Which snapshot timestamps are still being read. History older than the oldest one can be
 * garbage-collected from storage, and commit-log entries at or before it can be dropped.
 */
import type { Timestamp } from "../storage/types.js";

export class ActiveSnapshots {
  /**
   * Readers per timestamp. A count that drops to 0 stays until `oldest` sweeps it: queries
   * come and go at the same `latest` thousands of times a second, and deleting and re-adding
   * its entry each time was most of what pinning cost.
   */
  private readonly counts = new Map<Timestamp, number>();

  /** Pins `ts` until the returned function is called (once; later calls do nothing). */
  pin(ts: Timestamp): () => void {
    this.hold(ts);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.letGo(ts);
    };
  }

  /** Pins `ts` for a caller that pairs it with exactly one `letGo(ts)` (no closure to make). */
  hold(ts: Timestamp): void {
    this.counts.set(ts, (this.counts.get(ts) ?? 0) + 1);
  }

  letGo(ts: Timestamp): void {
    const count = this.counts.get(ts);
    if (count !== undefined && count > 0) this.counts.set(ts, count - 1);
  }

  /** The oldest pinned timestamp, or `fallback` when nothing is pinned. */
  oldest(fallback: Timestamp): Timestamp {
    let oldest = fallback;
    for (const [ts, count] of this.counts) {
      if (count === 0) this.counts.delete(ts);
      else if (ts < oldest) oldest = ts;
    }
    return oldest;
  }
}

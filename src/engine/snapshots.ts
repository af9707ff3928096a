/**
 * Which snapshot timestamps are still being read. History older than the oldest one can be
 * garbage-collected from storage, and commit-log entries at or before it can be dropped.
 */
import type { Timestamp } from "../storage/types.js";

export class ActiveSnapshots {
  /**
   * The newest timestamp ever pinned and its readers, kept out of `counts`. Nearly every pin is
   * at the engine's `latest`, which only moves forward: with a commit between every two calls
   * (sequential mutations), each call pinned a timestamp the map had never held, and adding,
   * then sweeping, one map entry per call was most of what pinning cost. Here a newer
   * timestamp takes the slot, and the one it replaces moves to `counts` only if still read.
   * Every key of `counts` is older than `newestTs` (an older pin goes to the map, and a newer
   * one moves the slot's older value there), so the two never hold the same timestamp.
   */
  private newestTs = -1;
  private newestCount = 0;
  /**
   * Readers per older timestamp. A count that drops to 0 stays until `oldest` sweeps it:
   * deleting and re-adding an entry each time a reader comes and goes would cost more.
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
    if (ts === this.newestTs) {
      this.newestCount += 1;
    } else if (ts > this.newestTs) {
      if (this.newestCount > 0) this.counts.set(this.newestTs, this.newestCount);
      this.newestTs = ts;
      this.newestCount = 1;
    } else {
      this.counts.set(ts, (this.counts.get(ts) ?? 0) + 1);
    }
  }

  letGo(ts: Timestamp): void {
    if (ts === this.newestTs) {
      if (this.newestCount > 0) this.newestCount -= 1;
      return;
    }
    const count = this.counts.get(ts);
    if (count !== undefined && count > 0) this.counts.set(ts, count - 1);
  }

  /** The oldest pinned timestamp, or `fallback` when nothing is pinned. */
  oldest(fallback: Timestamp): Timestamp {
    let oldest = this.newestCount > 0 && this.newestTs < fallback ? this.newestTs : fallback;
    for (const [ts, count] of this.counts) {
      if (count === 0) this.counts.delete(ts);
      else if (ts < oldest) oldest = ts;
    }
    return oldest;
  }
}

/**
 * Retry lanes: how a hot spot makes progress instead of retrying until it gives up.
 *
 * Optimistic concurrency lets one writer of a contended key through per commit batch; the
 * others re-run. When a hundred mutations increment one counter they keep colliding: each
 * re-run meets the same crowd, and on a networked database (commits take milliseconds) the
 * unlucky ones exhaust their retries. So a mutation that lost on a key re-runs in that key's
 * lane: lane members run one at a time, so they never collide with each other, and each gets
 * through in about one round trip. Fresh mutations still run optimistically beside the lane
 * (the uncontended path pays nothing).
 *
 * Measured (bench/engine, 32 mutations at once on one counter): joining the lane at the first
 * conflict re-runs each mutation about once (31 re-runs per 32 commits, the least optimistic
 * concurrency can do when all 32 read the same snapshot); joining after two conflicts, with a
 * random backoff in between, re-ran each about twice. A lone conflict finds its lane empty and
 * re-runs at once.
 *
 * Lanes are per key that conflicted (an index and the key written there): hot spots on
 * different data do not queue behind each other. A lane is forgotten once it is empty.
 */
import type { Conflict } from "./commitLog.js";

/** The retry lane of a conflict: the key it lost on (a hot counter's own document or range). */
export function laneOf(conflict: Conflict): string {
  if (conflict.indexId === null) return "(history)";
  return conflict.key ? `${conflict.indexId}:${Buffer.from(conflict.key).toString("hex")}` : conflict.indexId;
}

export class RetryLanes {
  private readonly lanes = new Map<string, { tail: Promise<void>; waiting: number }>();

  /** Runs `work` after every earlier member of lane `key` has finished. */
  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = { tail: Promise.resolve(), waiting: 0 }));
    lane.waiting += 1;
    const turn = lane.tail.then(work);
    lane.tail = turn.then(
      () => undefined,
      () => undefined,
    );
    try {
      return await turn;
    } finally {
      if (--lane.waiting === 0 && this.lanes.get(key) === lane) this.lanes.delete(key);
    }
  }

  /** Lanes with mutations in them (for stats and tests). */
  get size(): number {
    return this.lanes.size;
  }
}

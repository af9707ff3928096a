/**
 * Riding out a storage outage: a call that storage failed with nothing written (a dropped
 * connection, a database restarting) waits and tries again, with exponential backoff, until
 * a time budget from its first attempt runs out. Only failures marked by the storage guard as
 * "nothing written" come here; an unknown commit outcome never does (running it again could
 * apply it twice).
 */
import { performance } from "node:perf_hooks";

export class StorageRetry {
  constructor(
    /** How long after its first attempt a call may keep trying. */
    private readonly budgetMs: number,
    private readonly closed: () => boolean,
  ) {}

  /**
   * Waits before the next attempt (half the time spent so far, between 50 ms and 1 s, with
   * jitter so callers do not retry in lockstep); false once the budget is spent or the engine
   * closed.
   */
  async wait(startedAt: number): Promise<boolean> {
    const elapsed = performance.now() - startedAt;
    if (this.closed() || elapsed >= this.budgetMs) return false;
    const delay = Math.min(Math.max(50, elapsed / 2), 1_000, this.budgetMs - elapsed);
    await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random() / 2)));
    return !this.closed();
  }
}

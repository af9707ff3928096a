/**
 * Catching up with the commits of other engines sharing this engine's storage (other
 * processes, other nodes, the engine a hot reload handed over to): one look at the log
 * (`refreshOnce`), the same ridden out through a storage outage (`refreshRetrying`), past a
 * snapshot fence (`learnPastFence`), and the read-your-writes waits of one-shot calls
 * (`catchUpWithOthers`, `catchUpTo`), with the storage's commit mark as last seen by a
 * completed look (`markAtRefresh`). Apart from engine.ts because it only ever learns commits:
 * the committer applies what a look finds, and the engine decides when to look.
 */
import { performance } from "node:perf_hooks";
import { isSnapshotFenced, type Storage, type Timestamp } from "../storage/types.js";
import { isStorageFailure } from "./storageGuard.js";
import type { StorageRetry } from "./storageRetry.js";

/** What catching up needs of its engine. */
export interface CatchUpHost {
  readonly storage: Storage;
  /** The newest commit the engine knows of. */
  readonly latest: Timestamp;
  readonly closed: boolean;
  /** Paces calls that storage failed with nothing written. */
  readonly storageRetry: StorageRetry;
  /** One look at the log for others' commits, applied as the engine's own are (the committer's `refresh`). */
  lookAtLog(): Promise<void>;
  /** Resolves once the live queries are published at `ts` (`Subscriptions.waitPublished`). */
  waitPublished(ts: Timestamp): Promise<void>;
}

export class CatchUp {
  /** `storage.othersCommitMark()` as read before the last completed look at the log (see `catchUpWithOthers`). */
  private markAtRefresh: number | undefined;
  /** The refresh `learnPastFence` started, while it runs: one for every read refused meanwhile. */
  private pastFence: Promise<void> | null = null;

  constructor(private readonly host: CatchUpHost) {}

  /**
   * Whether the storage's commit mark, read now, is the one read before the last completed
   * look at the log: then no commit of another engine can be missing (see `catchUpWithOthers`).
   * False where the storage keeps no mark.
   */
  markUnchanged(): boolean {
    const mark = this.readCommitMark();
    return mark !== undefined && mark === this.markAtRefresh;
  }

  /**
   * `refreshFromStorage`, riding out a storage outage as a function run does: a refresh reads
   * and writes nothing, so it is tried again for up to storageRetryMs. Not trying again failed
   * a client's re-sent request at once on a dropped connection, though it had been applied
   * (its receipt was found; only catching up to it failed), and a read-your-writes catch-up.
   */
  async refreshRetrying(): Promise<void> {
    const startedAt = performance.now();
    for (;;) {
      try {
        return await this.refreshOnce();
      } catch (error) {
        if (!isStorageFailure(error) || !(await this.host.storageRetry.wait(startedAt))) throw error;
      }
    }
  }

  /**
   * After a read that storage refused because other nodes may have pruned what its snapshot
   * sees (`SnapshotFencedError`: this node was cut off from a shared database for longer than
   * its snapshot floor counts, postgres/snapshotFloors.ts, "Fencing"): learns the commits since
   * `latest`, so that the next attempt, at `latest`, reads at or past the storage's fence.
   * Without it every attempt at the old `latest` was refused again until a poll happened to
   * catch up (every 10 s on a node with no live query), and a call could run out of
   * storageRetryMs first. One refresh for every read refused while it runs; a failed one
   * leaves the next attempt to fail and wait like any storage failure. Nothing for any other
   * error.
   */
  learnPastFence(error: unknown): Promise<void> {
    if (!isSnapshotFenced(error) || this.host.closed) return Promise.resolve();
    return (this.pastFence ??= this.refreshRetrying().catch(() => {}).finally(() => (this.pastFence = null)));
  }

  /**
   * One look at the log, noting the storage's commit mark read before it: every commit that
   * moved the mark up to that answer was in the log when the look read it.
   */
  async refreshOnce(): Promise<void> {
    const mark = this.readCommitMark();
    await this.host.lookAtLog();
    if (mark !== undefined) this.markAtRefresh = mark;
  }

  /** `storage.othersCommitMark()`, or undefined (look at the log) where it has none or failed. */
  private readCommitMark(): number | undefined {
    try {
      return this.host.storage.othersCommitMark?.();
    } catch {
      return undefined;
    }
  }

  /**
   * Read-your-writes across processes for a one-shot call (over HTTP: transport/http.ts): a client
   * that wrote through another process, or another node, and then asks this one, sees its
   * write. The storage's notification of that commit may still be on its way (SQLite's watch
   * looks every 20 ms, or every second with no live query), so the call does not wait for it: where
   * the storage keeps a commit mark, a mark unchanged since the last look means no commit of
   * another engine can be missing, and the call goes on at once; a changed one (or none
   * known) costs one look at the log first. Step by step, for a commit C of another process
   * that landed before the call came:
   *  1. C moved the mark before the call read it here;
   *  2. if the mark read equals `markAtRefresh`, a look that read the mark after C (the same
   *     value) completed, and that look read the log after C: the engine knows C;
   *  3. otherwise the look started here reads the log after C.
   * A storage without a mark (PostgreSQL) answers nothing here: its notifications carry the
   * order, and a client that moves node carries the timestamp it saw (`catchUpTo`).
   */
  async catchUpWithOthers(): Promise<void> {
    if (!this.host.storage.othersCommitMark) return;
    const mark = this.readCommitMark();
    if (mark !== undefined && mark === this.markAtRefresh) return;
    await this.refreshRetrying();
  }

  /**
   * Read-your-writes across nodes: resolves once this engine has learned of every commit up to
   * `ts` (a timestamp a client saw on another node) and its live queries are published at it.
   * If storage itself is behind `ts` (the client saw another database), it stops waiting there.
   */
  async catchUpTo(ts: Timestamp): Promise<void> {
    if (this.host.latest < ts) await this.refreshRetrying();
    await this.host.waitPublished(Math.min(ts, this.host.latest));
  }
}

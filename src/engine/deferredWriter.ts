/**
 * The engine's side of deferred writes (deferredWrites.ts has the protocol and why it holds):
 * running the writes the authenticate hook asks for (`writeLater`) in system transactions of
 * their own that give way to claims, and the claims a mutation that lost to one makes and
 * releases. Apart from engine.ts because it is bookkeeping beside the function runs: the
 * mutation retry loop asks it three questions (`wroteSince`, `claim`, `releasing`) and the
 * commit path hands it every commit (`claims.noteCommit`).
 */
// The real timers, not the globals: a test that turns on fake timers (vi.useFakeTimers, as
// suites written for convex-test do) would otherwise stall commits and flushes for good.
import { setImmediate, setTimeout } from "node:timers";
import type { Timestamp } from "../storage/types.js";
import type { DatabaseWriter } from "../server/database.js";
import type { AnyDataModel } from "../server/dataModel.js";
import type { Catalog } from "./catalog.js";
import type { CommitLog } from "./commitLog.js";
import type { CommitResult } from "./committer.js";
import { conflictError } from "./conflictError.js";
import { createDatabaseWriter } from "./database.js";
import { CLAIM_INDEX, DEFERRED_MARK, DeferredWriteClaims, MARK_KEY, RELEASE_INDEX, laneBytes, lanesWritten } from "./deferredWrites.js";
import { LIMITS } from "./limits.js";
import type { ReadCache } from "./readCache.js";
import type { ActiveSnapshots } from "./snapshots.js";
import { Transaction, type CreationClock } from "./transaction.js";

/** What deferred writes need of their engine. */
export interface DeferredWriterHost {
  readonly reads: ReadCache;
  readonly catalog: Catalog;
  readonly commitLog: CommitLog;
  readonly snapshots: ActiveSnapshots;
  readonly creationClock: CreationClock;
  /** The newest commit the engine knows of. */
  readonly latest: Timestamp;
  readonly closed: boolean;
  readonly stats: { conflictRetries: number };
  commit(txn: Transaction): Promise<CommitResult>;
  logError(message: string, error: unknown): void;
}

export class DeferredWriter {
  /** Lanes that deferred writes must keep off (deferredWrites.ts). */
  readonly claims = new DeferredWriteClaims();
  /** Writes requested by the authenticate hook, by key, not yet run (see `writeLater`). */
  private readonly laterWrites = new Map<string, (db: DatabaseWriter<AnyDataModel>) => Promise<void>>();

  constructor(private readonly host: DeferredWriterHost) {}

  /**
   * Runs `work` soon in its own system transaction; a second request under a pending key is
   * dropped. Queries cannot write, so the auth hook uses this to record that a session was
   * used; failures are logged, never surfaced to the call that asked.
   */
  writeLater(key: string, work: (db: DatabaseWriter<AnyDataModel>) => Promise<void>): void {
    if (this.host.closed || this.laterWrites.has(key)) return;
    this.laterWrites.set(key, work);
    setImmediate(() => {
      if (this.host.closed) return;
      void this.runDeferredWrite(work)
        .catch((error) => this.host.logError("A deferred write failed", error))
        .finally(() => this.laterWrites.delete(key));
    });
  }

  /**
   * One deferred write: as a system mutation, but it gives way to mutations that lost to
   * deferred writes (deferredWrites.ts, step 1): it commits nothing while its engine knows a
   * claim on a key it writes, and a claim committed after its snapshot makes it conflict.
   */
  private async runDeferredWrite(work: (db: DatabaseWriter<AnyDataModel>) => Promise<void>): Promise<void> {
    const { host } = this;
    for (let attempt = 0; ; attempt++) {
      const txn = new Transaction(host.reads, host.catalog, host.latest, Date.now(), host.creationClock);
      const release = host.snapshots.pin(txn.readTs);
      let committed: CommitResult;
      try {
        await work(createDatabaseWriter(txn, host.catalog) as never);
        if (!txn.hasWrites) return;
        for (const lane of lanesWritten(txn.buildWrites().writeSet)) {
          if (this.claims.isClaimed(lane)) return;
          txn.readSet.addPoint(CLAIM_INDEX, laneBytes(lane));
        }
        txn.markWrite(DEFERRED_MARK, MARK_KEY);
        committed = await host.commit(txn);
      } finally {
        release();
      }
      if (committed.ok) return;
      if (attempt >= LIMITS.maxMutationRetries) throw conflictError("A deferred write", committed.conflict.indexId, attempt + 1);
      host.stats.conflictRetries += 1;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 2 ** Math.min(attempt, 7)));
    }
  }

  /** Whether a deferred write committed after `since` wrote a key of `lane`. */
  wroteSince(since: Timestamp, lane: string): boolean {
    return this.host.commitLog.someAfter(since, (writes) => writes.has(DEFERRED_MARK) && lanesWritten(writes).has(lane));
  }

  /**
   * Claims `lane` against deferred writes (deferredWrites.ts, step 2): a commit that reads
   * nothing, so it cannot conflict. False if it failed (storage): the call goes on unclaimed.
   */
  async claim(lane: string): Promise<boolean> {
    const { host } = this;
    const txn = new Transaction(host.reads, host.catalog, host.latest, Date.now(), host.creationClock);
    txn.markWrite(CLAIM_INDEX, laneBytes(lane));
    const release = host.snapshots.pin(txn.readTs); // until the commit is decided, as in executeMutation
    try {
      return (await host.commit(txn)).ok;
    } catch (error) {
      host.logError("Claiming a key against deferred writes failed", error);
      return false;
    } finally {
      release();
    }
  }

  /** Releases the claims of a mutation that fails with `error` (deferredWrites.ts, step 4; they would lapse anyway); returns `error`. */
  releasing(lanes: string[], error: unknown): unknown {
    if (lanes.length === 0) return error;
    const { host } = this;
    const txn = new Transaction(host.reads, host.catalog, host.latest, Date.now(), host.creationClock);
    for (const lane of lanes) txn.markWrite(RELEASE_INDEX, laneBytes(lane));
    const release = host.snapshots.pin(txn.readTs);
    void host.commit(txn)
      .catch((failure) => host.logError("Releasing claims against deferred writes failed (they lapse)", failure))
      .finally(release);
    return error;
  }
}

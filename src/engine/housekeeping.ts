/**
 * The engine's housekeeping: trimming the commit log and sweeping storage history as commits
 * flow (`maybePrune`), and the periodic maintenance no request triggers (expiring
 * request-deduplication records). Apart from engine.ts because none of it decides what a
 * function reads or commits: it only frees what no snapshot in use can still need, paced so
 * that it never costs the commit path more than a clock check. The engine calls `maybePrune`
 * after every commit and waits for `sweeping` when it closes.
 */
import { performance } from "node:perf_hooks";
import type { Storage, Timestamp } from "../storage/types.js";
import type { Catalog } from "./catalog.js";
import type { CommitLog } from "./commitLog.js";
import type { ActiveSnapshots } from "./snapshots.js";
import type { Subscriptions } from "./subscriptions.js";
import type { SchedulerCtx } from "./scheduler.js";
import type { Transaction } from "./transaction.js";
import { PRUNE_BATCH, pruneReceipts, type LegacyRequests } from "./clientRequests.js";

/** How often expired request-deduplication records (receipts) are removed. */
const MAINTENANCE_INTERVAL_MS = 5 * 60_000;

/**
 * History sweeps (see `maybePrune`) take at most this share of the time: after a sweep that
 * took d ms, the next starts no sooner than d / PRUNE_DUTY_CYCLE ms after it began.
 */
const PRUNE_DUTY_CYCLE = 0.05;
/** ...and never more often than this, nor less often than the maximum below while commits flow. */
const PRUNE_MIN_INTERVAL_MS = 1_000;
const PRUNE_MAX_INTERVAL_MS = 30_000;

/**
 * Past this many entries, the commit log is trimmed up to the oldest pinned snapshot even where
 * that passes the published one (see `maybePrune`).
 */
const COMMIT_LOG_SOFT_CAP = 4_096;

/** What housekeeping needs of its engine. */
export interface HousekeepingHost {
  readonly storage: Storage;
  readonly catalog: Catalog;
  readonly commitLog: CommitLog;
  readonly snapshots: ActiveSnapshots;
  readonly subscriptions: Subscriptions;
  /** The newest commit the engine knows of. */
  readonly latest: Timestamp;
  readonly closed: boolean;
  /** Whether `_client_requests` may still hold records (set by `Engine.open`). */
  readonly legacyRequests: LegacyRequests;
  runSystemMutation<T>(work: (txn: Transaction, ctx: SchedulerCtx) => Promise<T>): Promise<T>;
  logError(message: string, error: unknown): void;
}

export class Housekeeping {
  private commitsSincePrune = 0;
  private pruning: Promise<void> | null = null;
  private lastPruneStart = 0;
  /** How long after `lastPruneStart` the next sweep may start (see PRUNE_DUTY_CYCLE). */
  private pruneInterval = PRUNE_MIN_INTERVAL_MS;
  private maintenance: NodeJS.Timeout | undefined;

  constructor(private readonly host: HousekeepingHost) {}

  /** The history sweep running now, if any (the engine waits for it when it closes). */
  get sweeping(): Promise<void> | null {
    return this.pruning;
  }

  /**
   * Trims the commit log and, now and then, storage history. A history sweep may walk many
   * stored versions (PostgreSQL's walks them all; SQLite's mostly the keys written since the
   * last, plus a slice of a full pass now and then), so at most one runs at a time, and sweeps
   * are spaced by their own cost:
   * after one that took d ms (its busy time, when the storage reports it: see `PruneReport`)
   * the next waits until d / PRUNE_DUTY_CYCLE ms after its start
   * (within [PRUNE_MIN_INTERVAL_MS, PRUNE_MAX_INTERVAL_MS]). A small database is swept every
   * second or so, which keeps its file from filling with versions nobody can read (measured by
   * `bench/engine`, case h); a large one is swept less often, and sweeping never takes more
   * than about 5% of the time, however fast commits come.
   */
  maybePrune(): void {
    // Finding the oldest snapshot in use walks the subscriptions: done every 256 commits, or
    // when a sweep is due (a cheap clock check on every commit).
    const now = performance.now();
    const sweepDue = this.pruning === null && now - this.lastPruneStart >= this.pruneInterval;
    if (++this.commitsSincePrune < 256 && !sweepDue) return;
    this.commitsSincePrune = 0;
    const { host } = this;
    const oldest = host.snapshots.oldest(host.subscriptions.oldestPublished(host.latest));
    host.commitLog.trim(oldest);
    // No read comes below the oldest snapshot in use (a sweep at it is safe now), so storage
    // may drop what only such reads could see between sweeps (Storage.raiseReadFloor).
    host.storage.raiseReadFloor?.(oldest);
    // The log is kept from the published snapshot on only so that a query subscribed now (it
    // runs at that snapshot) can be checked against the commits since without a re-run. Only
    // flushes move that snapshot, and they need an event-loop turn: a loop that awaits mutation
    // after mutation, with queries live, would grow the log (about 1 KB a commit) for as long as
    // it runs. Past the cap the log is kept only for the pinned snapshots, which running
    // transactions and flushes need to decide conflicts; a query subscribed at an older
    // published snapshot then finds its history trimmed, counts that as a conflict
    // (`CommitLog.firstConflict`) and runs again at the next flush.
    if (host.commitLog.size > COMMIT_LOG_SOFT_CAP) host.commitLog.trim(host.snapshots.oldest(host.latest));
    if (!sweepDue) return;
    this.lastPruneStart = now;
    this.pruning = host.storage
      .pruneHistory(oldest)
      .then(
        // A storage that yields between steps reports its own busy time: the wall time of such
        // a sweep is mostly other work, and spacing sweeps by it let history pile up (bench/engine
        // case h: 200k versions between sweeps instead of about a second's worth).
        (report) => report?.busyMs ?? performance.now() - now,
        (error) => {
          host.logError("History pruning failed", error);
          return performance.now() - now;
        },
      )
      .then((took) => {
        this.pruneInterval = Math.min(PRUNE_MAX_INTERVAL_MS, Math.max(PRUNE_MIN_INTERVAL_MS, took / PRUNE_DUTY_CYCLE));
        this.pruning = null;
      });
  }

  /** Periodic housekeeping that no request triggers: expiring request-deduplication records. */
  startMaintenance(): void {
    const run = async () => {
      await this.pruneClientRequests(Date.now());
    };
    this.maintenance = setInterval(() => void run().catch((error) => this.host.logError("Maintenance failed", error)), MAINTENANCE_INTERVAL_MS);
    this.maintenance.unref?.();
  }

  /** Stops the periodic maintenance (`startMaintenance`); a run under way goes on. */
  stopMaintenance(): void {
    clearInterval(this.maintenance);
  }

  /**
   * Removes client request records older than the retention window as of `now`: receipts, and
   * the legacy table's records while it has any. Resolves with how many of each went.
   */
  async pruneClientRequests(now: number): Promise<{ receipts: number; legacy: number }> {
    const { host } = this;
    const receipts = await pruneReceipts(host.storage, now, () => host.closed);
    let legacy = 0;
    while (host.legacyRequests.mayHaveRecords && !host.closed) {
      const result = await host.runSystemMutation((txn) => host.legacyRequests.prune(host.catalog, txn, now));
      host.legacyRequests.afterPrune(result);
      legacy += result.removed;
      if (result.removed < PRUNE_BATCH) break;
    }
    return { receipts, legacy };
  }
}

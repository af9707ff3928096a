/**
 * History garbage collection for the SQLite storage (`pruneHistory`). What is garbage at a
 * prune timestamp P is in `garbage.ts`. A sweep at P has three parts, each a series of short
 * write transactions with a turn of the event loop between them, so scans and commits are never
 * held up for long:
 *
 * 1. The commit log is trimmed through P (one transaction).
 * 2. Steps of the full pass (`fullPass.ts`), when one is under way: at most
 *    `fullPassRowsPerCall` rows per call, the cursor kept for the next call, so a pass over a
 *    big table is spread over many sweeps, which the engine spaces by their busy time (5%).
 * 3. The write-set sweep (`dirtyGroups.ts`): the garbage of every group this storage's own
 *    commits wrote since it was last swept, one primary-key seek per group. This is what keeps
 *    up with the writes, at a cost that follows them rather than the size of the tables.
 *
 * The full pass is there for the garbage the write sets do not know of: versions written before
 * the storage was opened (before a restart, or by the old engine of a hot reload), groups the
 * write-set map forgot when it overflowed, and versions written by other connections to the
 * same file. So a pass starts when one of these may hold garbage that no finished pass covered
 * (on the first sweep after opening, after an overflow; a pass covers the versions up to the
 * lowest prune timestamp it swept at, so one held back by an old snapshot is followed by
 * another once the prune timestamp moves on), and otherwise every `fullPassIntervalMs` after
 * the last one finished.
 */
import type Database from "better-sqlite3";
import { performance } from "node:perf_hooks";
import type { Commit, PruneReport, Timestamp } from "../types.js";
import { DirtyGroups } from "./dirtyGroups.js";
import { FullPass } from "./fullPass.js";
import type { IndexTables } from "./indexTables.js";

export const DEFAULT_PRUNE_BATCH_SIZE = 1_000;

/** How the SQLite history sweep spreads its work (see the file header). */
export interface HistorySweepOptions {
  /** Rows the full pass examines per `pruneHistory` call, at most (about; whole batches). Default 100,000. */
  fullPassRowsPerCall: number;
  /** A full pass starts this long after the last one finished, to find other connections' garbage. Default 10 minutes. */
  fullPassIntervalMs: number;
  /** Groups (document ids, index keys) remembered for the write-set sweep; past it, a full pass. Default 100,000. */
  maxDirtyGroups: number;
}

export const DEFAULT_HISTORY_SWEEP: HistorySweepOptions = {
  fullPassRowsPerCall: 100_000,
  fullPassIntervalMs: 10 * 60_000,
  maxDirtyGroups: 100_000,
};

/** What one `pruneHistory` call of the SQLite storage did. */
export interface SqlitePruneReport extends PruneReport {
  /** Groups the write-set sweep visited. */
  groupsSwept: number;
  /** Batches of the full pass this call ran. */
  fullPassBatches: number;
  /** A full pass is under way: the next calls continue it. */
  fullPassPending: boolean;
}

export class Pruner {
  private readonly fullPass: FullPass;
  private readonly dirty: DirtyGroups;
  private readonly fullPassBatchesPerCall: number;
  private readonly trimLog: Database.Transaction<(pruneTs: number) => void>;
  /**
   * Versions at or before this timestamp may hold garbage that the write-set map does not know
   * of: those written before the storage was opened, and the groups forgotten on an overflow.
   */
  private untrackedThrough: Timestamp;
  /** ...and the finished full passes removed the garbage of every version at or before this one. */
  private coveredThrough: Timestamp = -1;
  /** The lowest prune timestamp the running full pass has swept at: what it will have covered. */
  private passCovers: Timestamp = Infinity;
  private lastPassEnd = performance.now();

  constructor(
    private readonly db: Database.Database,
    indexTables: IndexTables,
    batchSize: number,
    private readonly options: HistorySweepOptions,
    latestAtOpen: Timestamp,
  ) {
    checkSweepOptions(batchSize, options);
    this.fullPass = new FullPass(db, indexTables, batchSize);
    this.dirty = new DirtyGroups(db, indexTables, batchSize, options.maxDirtyGroups);
    this.fullPassBatchesPerCall = Math.max(1, Math.ceil(options.fullPassRowsPerCall / batchSize));
    this.untrackedThrough = latestAtOpen;
    // The log's rows are what say the newest timestamp (sqliteStorage.ts, "The newest
    // timestamp"): before deleting any, carry the newest one into the clock, in the same
    // transaction, so that deleting the whole log can never move the newest timestamp back.
    const carryLatest = db.prepare(
      `UPDATE clock SET log_carried_ts = max(log_carried_ts, coalesce((SELECT max(ts) FROM commit_log), 0))
       WHERE singleton = 1`,
    );
    // Never a row whose versions are not in their tables yet: it is all there is of them.
    const deleteLog = db.prepare(
      "DELETE FROM commit_log WHERE ts <= min(?, (SELECT materialized_through FROM clock WHERE singleton = 1))",
    );
    // After the carry, log_carried_ts is the newest timestamp: the log is never marked trimmed
    // past a commit that has not happened yet.
    const markTrimmed = db.prepare(
      "UPDATE clock SET log_trimmed_through = max(log_trimmed_through, min(?, log_carried_ts, materialized_through)) WHERE singleton = 1",
    );
    this.trimLog = db.transaction((pruneTs: number) => {
      carryLatest.run();
      deleteLog.run(pruneTs);
      markTrimmed.run(pruneTs);
    });
  }

  /**
   * Remembers the groups of commits that just landed: call in the same synchronous step as
   * their transaction's commit (see `dirtyGroups.ts`, "Why no garbage is forgotten").
   */
  recordWritten(commits: readonly Commit[]): void {
    this.dirty.record(commits);
    this.untrackedThrough = Math.max(this.untrackedThrough, this.dirty.forgottenThrough);
  }

  /** Sweeps history through `pruneTs`; reports the time spent in its own steps (not in the yields between them). */
  async prune(pruneTs: number): Promise<SqlitePruneReport> {
    let busyMs = 0;
    let stepStart = performance.now();
    const yieldToEventLoop = async () => {
      busyMs += performance.now() - stepStart;
      await new Promise((resolve) => setImmediate(resolve));
      stepStart = performance.now();
    };
    // The log first, in one transaction with its trim mark: a writer reading the log sees either
    // the rows or the mark that says they are gone, never neither.
    this.trimLog.immediate(pruneTs);

    if (!this.fullPass.running && this.fullPassDue(pruneTs)) {
      this.fullPass.start();
      this.passCovers = pruneTs;
    }
    let fullPassBatches = 0;
    while (this.fullPass.running && fullPassBatches < this.fullPassBatchesPerCall && this.db.open) {
      this.passCovers = Math.min(this.passCovers, pruneTs);
      this.fullPass.step(pruneTs);
      fullPassBatches++;
      if (!this.fullPass.running) {
        this.coveredThrough = Math.max(this.coveredThrough, this.passCovers);
        this.lastPassEnd = performance.now();
      }
      await yieldToEventLoop();
    }

    // The write-set sweep after the full pass's steps: each deletion is exact at pruneTs on its
    // own (garbage.ts), so their order does not matter.
    let groupsSwept = 0;
    const sweep = this.dirty.sweep(pruneTs);
    while (!sweep.done && this.db.open) {
      groupsSwept += sweep.step();
      await yieldToEventLoop();
    }
    // If the storage was closed mid-way the loops stop: pruning is only ever an optimisation,
    // and whatever was deleted so far was garbage.
    busyMs += performance.now() - stepStart;
    return { busyMs, groupsSwept, fullPassBatches, fullPassPending: this.fullPass.running };
  }

  /**
   * Whether to start a full pass at `pruneTs`: untracked versions may hold garbage no finished
   * pass covered, and this one would cover more than they did (a prune timestamp held back by
   * an old snapshot does not start pass after pass); or the interval since the last one is up.
   */
  private fullPassDue(pruneTs: Timestamp): boolean {
    if (this.coveredThrough < this.untrackedThrough && pruneTs > this.coveredThrough) return true;
    return performance.now() - this.lastPassEnd >= this.options.fullPassIntervalMs;
  }
}

function checkSweepOptions(batchSize: number, options: HistorySweepOptions): void {
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`Walk-in storage: pruneBatchSize must be a positive integer, got ${batchSize}.`);
  }
  for (const name of ["fullPassRowsPerCall", "maxDirtyGroups"] as const) {
    const value = options[name];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`Walk-in storage: historySweep.${name} must be a positive integer, got ${value}.`);
    }
  }
  const interval = options.fullPassIntervalMs;
  if (typeof interval !== "number" || Number.isNaN(interval) || interval < 0) {
    throw new RangeError(`Walk-in storage: historySweep.fullPassIntervalMs must be a number of milliseconds >= 0, got ${interval}.`);
  }
}

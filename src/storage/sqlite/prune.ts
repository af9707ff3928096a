/**
 * History garbage collection for the SQLite storage (`pruneHistory`). What is garbage at a
 * prune timestamp P is in `garbage.ts`. A sweep at P has three parts, each a series of short
 * write transactions with a turn of the event loop between them, so scans and commits are never
 * held up for long:
 *
 * 1. The commit log is trimmed through P, oldest rows first, at most a batch of rows per
 *    transaction (see `Pruner.trimLog`).
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
  /** `trimLogWithin` in a write transaction of its own. */
  private readonly trimLogStep: Database.Transaction<(pruneTs: number) => boolean>;
  /** The statements of a trim step (see `trimLogWithin`). */
  private readonly trimStatements: {
    carryLatest: Database.Statement<[]>;
    selectBound: Database.Statement<[number], number>;
    selectOldest: Database.Statement<[], number | null>;
    deleteLog: Database.Statement<[number]>;
    markTrimmed: Database.Statement<[number]>;
  };
  private readonly batchSize: number;
  /**
   * Versions at or before this timestamp may hold garbage that the write-set map does not know
   * of: those written before the storage was opened, and the groups forgotten on an overflow.
   */
  private untrackedThrough: Timestamp;
  /**
   * ...and the finished full passes removed the garbage of every version at or before this one.
   * It starts at 0, which no version has (timestamps start at 1: `plannedCommits.ts`), so a file
   * that was new when opened (`latestAtOpen` 0) has nothing for a pass to cover: its first
   * sweep is the write-set sweep alone, where it was a pass over every row written since the
   * open (a thousand rows a step, each step a DELETE and a boundary SELECT of about 0.8 ms on
   * the auth benchmark's sign-ins, two hundred steps in its first seconds, deleting nothing).
   */
  private coveredThrough: Timestamp = 0;
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
    this.batchSize = batchSize;
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
    // How far the log may be trimmed: never past a row whose versions are not in their tables
    // yet (it is all there is of them), and, after the carry, never past the newest commit.
    const selectBound = db
      .prepare<[number], number>("SELECT min(?, log_carried_ts, materialized_through) FROM clock WHERE singleton = 1")
      .pluck();
    // The oldest row: a step deletes the timestamps from it to a batch after it, which are at
    // most a batch of rows (one commit per timestamp) and found with one seek, where counting
    // off a batch of rows read each of them (wide rows: 4 ms for 1,000 of them).
    const selectOldest = db.prepare<[], number | null>("SELECT min(ts) FROM commit_log").pluck();
    const deleteLog = db.prepare<[number]>("DELETE FROM commit_log WHERE ts <= ?");
    const markTrimmed = db.prepare<[number]>("UPDATE clock SET log_trimmed_through = max(log_trimmed_through, ?) WHERE singleton = 1");
    this.trimStatements = { carryLatest, selectBound, selectOldest, deleteLog, markTrimmed };
    this.trimLogStep = db.transaction((pruneTs: number) => this.trimLogWithin(pruneTs).done);
  }

  /**
   * One step of the log's trim through `pruneTs`, in the caller's write transaction: deletes the
   * oldest rows up to the bound, a batch of rows at most, and marks the log trimmed as far
   * (see `trimLog` for why the log stays consistent). `done`: nothing is left to trim there.
   */
  trimLogWithin(pruneTs: Timestamp): { done: boolean; deleted: number } {
    const { carryLatest, selectBound, selectOldest, deleteLog, markTrimmed } = this.trimStatements;
    carryLatest.run();
    const bound = selectBound.get(pruneTs)!;
    const oldest = selectOldest.get();
    const end = oldest === null || oldest === undefined ? bound : Math.min(bound, oldest + this.batchSize - 1);
    const deleted = deleteLog.run(end).changes;
    markTrimmed.run(end);
    return { done: end === bound, deleted };
  }

  /**
   * Remembers the groups of commits that just landed: call in the same synchronous step as
   * their transaction's commit (see `dirtyGroups.ts`, "Why no garbage is forgotten").
   */
  recordWritten(commits: readonly Commit[]): void {
    this.dirty.record(commits);
    this.untrackedThrough = Math.max(this.untrackedThrough, this.dirty.forgottenThrough);
  }

  /**
   * Sweeps history through `pruneTs`; reports the time spent in its own steps (not in the yields
   * between them). `logTrimmed` is called after each step of the log's trim (the storage's own
   * view of the log is out of date then).
   */
  async prune(pruneTs: number, logTrimmed: () => void = () => {}): Promise<SqlitePruneReport> {
    let busyMs = 0;
    let stepStart = performance.now();
    const yieldToEventLoop = async () => {
      busyMs += performance.now() - stepStart;
      await new Promise((resolve) => setImmediate(resolve));
      stepStart = performance.now();
    };
    await this.trimLog(pruneTs, logTrimmed, yieldToEventLoop);

    // The trim returns early if the storage closed while it yielded: start nothing then.
    if (this.db.open && !this.fullPass.running && this.fullPassDue(pruneTs)) {
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
   * Trims the commit log through `pruneTs` (or as far as it may be trimmed, see the
   * constructor), oldest rows first, a batch of rows per transaction with a turn of the event
   * loop between them. In one transaction, the log of one sweep interval under the auth
   * benchmark's load (about 10,000 commits a second) took 151 ms to delete (45,984 rows), and
   * every commit and read waited for it; in steps of 1,000 rows the longest took 1.7 ms
   * (bench/README.md, 2026-12-04).
   *
   * Why the log stays consistent at every step: each step deletes the rows at or before some
   * timestamp E and raises `log_trimmed_through` to E in the same transaction. So a writer
   * reading the log (in a transaction of its own, `readLog`) sees, for any timestamp, either
   * the row or a mark at or above it that says it is gone, never neither, whether it reads
   * before, between or after the steps. E never passes the bound (`materialized_through`, the
   * newest commit carried into the clock, `pruneTs`), as the single trim never did, and the
   * bound is read again in each step: it only grows, and rows newer than a step's E stay.
   */
  private async trimLog(pruneTs: number, logTrimmed: () => void, yieldToEventLoop: () => Promise<void>): Promise<void> {
    for (;;) {
      const done = this.trimLogStep.immediate(pruneTs);
      logTrimmed();
      if (done || !this.db.open) return;
      await yieldToEventLoop();
      if (!this.db.open) return;
    }
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

/**
 * Durability under `synchronous: "full"` without the main thread waiting for the disk.
 *
 * SQLite's own FULL mode syncs the write-ahead log inside each COMMIT: better-sqlite3 is
 * synchronous, so the whole process sits idle for that fsync, and everything the engine does
 * after a commit (re-running live queries, building their Transitions, answering) waits
 * behind it. Instead, the connection runs at NORMAL (a COMMIT appends to the log and returns)
 * and this class syncs the log file: right after the COMMIT on the main thread (`syncNow`,
 * the default: the caller has nothing else to do), or from libuv's thread pool while the
 * engine re-runs live queries (`whenDurable`, asked for with `CommitOptions.durableLater`).
 * What a power loss may take back is then a commit that is in the log but not yet synced, and
 * the engine shows no such commit to anyone outside it before `whenDurable` says it is synced
 * (the engine's gates are listed in docs/storage.md, "Syncing the log under FULL").
 *
 * Why syncing this file descriptor covers SQLite's writes, step by step:
 *  1. SQLite appends every commit's frames to the `-wal` file with write(2), in commit order
 *     (the write lock orders commits, from this connection and any other).
 *  2. fsync(2) on Linux writes back every dirty page of the file (its inode), whichever
 *     descriptor or process wrote it, and the metadata needed to read it back.
 *  3. So once an fsync that started after commit N's COMMIT returned has finished, commit N and
 *     every commit before it are on disk; one sync covers every commit made while it waited
 *     (a group commit for free).
 *  4. A checkpoint copies the log into the database file only after syncing the log, and
 *     syncs the database file before the log starts over (SQLite does this under NORMAL as
 *     under FULL), so the log file this descriptor names is never reused before its frames
 *     are safe elsewhere; the file is truncated in place, never replaced, while a connection
 *     is open on the database.
 *  5. A new log file's directory entry is synced once, when this opens it (SQLite does that
 *     on the log's first sync, which under NORMAL would come only at the first checkpoint).
 * Commits learned from another connection are covered the same way: the engine asks for their
 * timestamp, and the next sync starts after they were read, hence after they were written.
 *
 * A failed fsync is final (as in PostgreSQL since 2018): the kernel may have dropped the
 * pages it could not write and report success next time, so nothing after it can be promised
 * durable. Every waiter and every later call rejects with the error, and the storage refuses
 * commits from then on; the process must be restarted, and SQLite's recovery at the next open
 * keeps exactly what reached the disk.
 */
import { closeSync, fdatasync, fdatasyncSync, fsyncSync, openSync, realpathSync } from "node:fs";
// The real timer: a test with fake timers (vi.useFakeTimers) must not stall commits' syncs.
import { clearTimeout, setTimeout } from "node:timers";
import { dirname } from "node:path";
import { StorageStoppedError, type Timestamp } from "../types.js";

/** How long a sync may wait for the thread pool before the main thread does it (`startSync`). */
const POOL_FALLBACK_MS = 2;

export class WalSync {
  /** Every commit at or below this is on disk. */
  private durable: Timestamp;
  /** The newest commit written (or read) so far: what the next sync covers. */
  private written: Timestamp;
  /** Syncs running on the thread pool: the descriptor is closed only once none is. */
  private inFlight = 0;
  /** A sync for waiters is running on the pool (`startSync`): at most one at a time. */
  private askedInFlight = false;
  private failure: Error | null = null;
  private closed = false;
  private waiters: Array<{ ts: Timestamp; resolve: () => void; reject: (error: Error) => void }> = [];

  private constructor(
    private readonly fd: number,
    private readonly name: string,
    latest: Timestamp,
    private readonly poolFallbackMs: number,
  ) {
    this.durable = latest;
    this.written = latest;
  }

  /**
   * Opens the log of the database at `filename` (in WAL mode, so the `-wal` file exists once a
   * connection has it open) and syncs its directory entry. `latest`: the newest commit, which
   * is on disk (it was there when the file was opened). `poolFallbackMs`: how long a waiters'
   * sync waits for the thread pool before the main thread does it (`startSync`); a test that
   * holds the pool's syncs to choose their order lengthens it, so that a slow machine's pause
   * between two of its steps does not sync on the main thread in the middle.
   */
  static open(filename: string, name: string, latest: Timestamp, poolFallbackMs = POOL_FALLBACK_MS): WalSync {
    // SQLite names the log after the file a symlink (or a relative path) leads to.
    const file = realpathSync(filename);
    const fd = openSync(`${file}-wal`, "r");
    try {
      fsyncSync(fd);
      const directory = openSync(dirname(file), "r");
      try {
        fsyncSync(directory);
      } finally {
        closeSync(directory);
      }
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    return new WalSync(fd, name, latest, poolFallbackMs);
  }

  /** A commit through `ts` was just written to the log (not yet synced). */
  committed(ts: Timestamp): void {
    if (ts > this.written) this.written = ts;
  }

  /** Throws the sync's failure, if one happened: no commit may be made after it. */
  checkUsable(): void {
    if (this.failure !== null) throw this.failure;
  }

  /**
   * Syncs everything written so far on this thread, before returning: for a caller with
   * nothing else to do meanwhile (a sync handed to the thread pool and waited for would cost
   * it more). Also while a sync runs on the pool: two syncs of one file at once are allowed,
   * and this one covers more. Throws the failure if it fails (and from then on).
   */
  syncNow(): void {
    if (this.failure !== null) throw this.failure;
    if (this.closed) throw new Error(`Walk-in storage ${this.name} is closed.`);
    const through = this.written;
    if (through <= this.durable) return;
    try {
      fdatasyncSync(this.fd);
    } catch (error) {
      this.settle(through, this.failed(error));
      throw this.failure;
    }
    this.settle(through, null);
  }

  /** `null` when every commit through `ts` is on disk; else a promise that resolves once it is. */
  whenDurable(ts: Timestamp): Promise<void> | null {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (ts <= this.durable) return null;
    if (this.closed) return Promise.reject(new Error(`Walk-in storage ${this.name} is closed: commit ${ts} was not synced by it.`));
    // A commit another connection made, learned after it was written: the next sync covers it.
    if (ts > this.written) this.written = ts;
    const promise = new Promise<void>((resolve, reject) => this.waiters.push({ ts, resolve, reject }));
    this.startSync();
    return promise;
  }

  /**
   * Syncs what is still waiting, at once (a storage closing: its last commits must not depend
   * on a callback that comes after its file is closed), then closes the descriptor, or leaves
   * that to a sync still running on the thread pool.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.failure === null && this.written > this.durable) {
      try {
        fdatasyncSync(this.fd);
        this.settle(this.written, null);
      } catch (error) {
        this.settle(this.written, this.failed(error));
      }
    }
    if (this.inFlight === 0) closeSync(this.fd);
  }

  /**
   * Syncs in the background what was appended that is not a commit (the versions written
   * later, from their timer, in the pause after a commit), so that the next commit's own sync
   * does not also write those pages while its caller waits.
   */
  syncInBackground(): void {
    this.startSync(true);
  }

  /**
   * Starts a sync on the thread pool: for the waiters (`unasked` false), or for versions just
   * appended (`syncInBackground`, `unasked` true). Which may run at once, and why:
   *  1. A sync covers only what was written before it started (step 3 above).
   *  2. So a waiter whose commit came after the running sync started needs a sync of its own.
   *     Waiters' syncs run one at a time: whatever commits while one runs is covered by the
   *     next, started from its callback (a group commit), so a busy engine syncs once per
   *     sync's duration, not once per commit.
   *  3. A background sync is started only when no sync runs (a running one covers the pause's
   *     versions, or the next commit's sync will).
   *  4. But a waiters' sync does not queue behind a background one. The background sync
   *     started before the waiter's commit (2), so waiting for it would make the commit wait
   *     for two syncs in a row. Under calls a few milliseconds apart this was most of them:
   *     each call's versions are written 5 ms after its commit, their sync is still running
   *     when the next call commits (60% of the round-trip benchmark's calls under FULL), and
   *     those waited 750–990 µs for durability instead of about 450. Two syncs of one file at
   *     once are allowed: each returns once every page that was dirty when it started is on
   *     disk, waiting for the pages the other one is writing rather than skipping them.
   * So at most two syncs run at once: one for waiters, one in the background.
   */
  private startSync(unasked = false): void {
    if (this.closed || this.failure !== null) return;
    if (unasked ? this.inFlight > 0 : this.askedInFlight || this.waiters.length === 0) return;
    this.inFlight += 1;
    if (!unasked) this.askedInFlight = true;
    // Everything written before this line is covered (step 3 above).
    const through = this.written;
    // The thread pool is shared: four password hashes (scrypt, about 100 ms each) occupy all of
    // it, and a sync queued behind them would hold every answer that long. If the pool has not
    // answered soon, the waiters' sync is done here instead (a second sync of the file at once is
    // allowed), which costs no more than SQLite's own FULL did.
    const fallback = unasked ? null : setTimeout(() => this.syncWaitersNow(), this.poolFallbackMs);
    fallback?.unref();
    fdatasync(this.fd, (error) => {
      if (fallback !== null) clearTimeout(fallback);
      this.inFlight -= 1;
      if (!unasked) this.askedInFlight = false;
      if (this.closed) {
        if (this.inFlight === 0) closeSync(this.fd);
        if (error === null && this.failure === null && through > this.durable) this.settle(through, null);
        return;
      }
      // A failure is final, also for a sync that ran beside the one that failed.
      this.settle(through, error === null ? this.failure : this.failed(error));
      this.startSync();
    });
  }

  /** The pool's sync is late: syncs here for whoever still waits (see `startSync`). */
  private syncWaitersNow(): void {
    if (this.closed || this.waiters.length === 0) return;
    try {
      this.syncNow();
    } catch {
      // syncNow rejected every waiter with the failure.
    }
  }

  private failed(error: unknown): Error {
    this.failure ??= new StorageStoppedError(
      `Walk-in storage ${this.name}: syncing the write-ahead log to disk failed (${(error as Error).message}); ` +
        "commits since the last successful sync may not survive a power loss, and this storage accepts no more commits. " +
        "Restart the server once the disk is healthy: SQLite keeps what reached it.",
      { cause: error },
    );
    return this.failure;
  }

  /** Answers the waiters at or below `through` (all of them on a failure). */
  private settle(through: Timestamp, failure: Error | null): void {
    if (failure === null && through > this.durable) this.durable = through;
    const waiting = this.waiters;
    this.waiters = [];
    for (const waiter of waiting) {
      if (failure !== null) waiter.reject(failure);
      else if (waiter.ts <= through) waiter.resolve();
      else this.waiters.push(waiter);
    }
  }
}

/**
 * Checkpoints off the commit path: a worker thread with its own connection folds the
 * write-ahead log back into the database file, so that commits on the main connection do not.
 *
 * Why: SQLite's automatic checkpoint runs inside the commit that pushes the log past 1,000 pages.
 * That commit then copies every page changed since the last checkpoint into the database file
 * and fsyncs both files: measured at about a third of the mean commit time of a one-document
 * insert under synchronous=NORMAL, and the whole of its p99 (a 2-4 ms stall every ~130 commits).
 * A PASSIVE checkpoint never takes the write lock, so another connection can run it while
 * commits go on.
 *
 * Why the main connection still takes part, rarely: the log only starts over from its beginning
 * (instead of growing) when a writer begins a transaction at a moment when every frame in it has
 * been copied back. Under a steady stream of commits the worker never sees that moment, since
 * frames are appended while it copies. So when the worker finds the log longer than
 * `restartPages`, it asks the main connection for such a moment. Step by step:
 *  1. The worker fsyncs the database file and the log (see "Why the worker syncs first"), then
 *     sets RESTART to ASKED and waits on it.
 *  2. The main connection, about to begin its next write transaction (`commitBatch`, or the
 *     timed writing of pending versions), swaps ASKED for PAUSED and waits on it
 *     asynchronously: its event loop goes on (handlers run, commits queue up for the next
 *     batch), but it begins no commit, and any other of those writes waits on the same pause.
 *  3. The worker wakes on PAUSED and runs one PASSIVE checkpoint: the frames appended since
 *     its last pass, then the fsyncs, on its own thread. With the only writer paused, nothing is
 *     appended meanwhile, so it copies the whole log. It sets RESTART back to NONE.
 *  4. The main connection wakes and begins its transaction, and SQLite starts the log over.
 * The swaps in 2 and 3 are compare-and-exchange, so a worker that gave up waiting (no commit
 * came within `idleMs`: nothing is being appended, so a pass copies everything and the next
 * commit restarts the log anyway) and a main connection pausing at that moment cannot both act;
 * a main connection waits at most `idleMs` (a stuck or failed worker), and a worker that stops
 * releases it. The main thread used to run that checkpoint itself, fsyncs included: 2.6-4.2% of
 * its time under the auth benchmark (32 clients signing in, synchronous=NORMAL).
 * The log stays under about `restartPages` plus two worker passes (measured: 3,000-8,000
 * pages, 12-33 MB, with the defaults under a steady stream of one-document inserts, against
 * SQLite's ~1,000). And should the worker stop (it failed, or never started), SQLite's own
 * automatic checkpoint is left on at `backstopPages` pages, so the log is bounded whatever
 * happens.
 *
 * Why the worker syncs first: SQLite fsyncs the database file only at the end of a pass that
 * copied the log up to its end (in wal.c the sync sits under `mxSafeFrame == mxFrame`). A pass
 * that commits overtook leaves the pages it copied unsynced, and under a steady stream of
 * commits that is every pass but the one in the pause (step 3), which then synced everything
 * copied since the log last started over: 4.4-8.1 ms a pause with 1-75 pages left to copy,
 * while sequential inserts under NORMAL waited 3.5-9.9 µs an insert for pauses. Synced by the
 * worker before it asks (its own time, commits going on), the pause's pass only syncs what came
 * after: 2.2-3.9 ms a pause, 2.0-3.9 µs an insert. An extra fsync takes nothing from what SQLite
 * relies on: a copied page is also in the log until the log starts over, which happens only
 * after the pause's pass has synced the file. The database file's descriptor for this is one
 * the process never closes (`heldDatabaseFds.ts` says why closing it would be unsafe); the
 * log's is the worker's own, closed when it exits (SQLite takes no locks on the log file).
 * Where there is no descriptor to be had (Windows), the pause's pass syncs everything, as before.
 *
 * Only under synchronous=NORMAL by default (`openSqliteStorage`). Under FULL every commit
 * fsyncs the log, and an fsync after appending past the log file's old end also has to write
 * the file's new size through the filesystem's journal. Measured with raw better-sqlite3 on
 * ext4, fresh files: a one-row commit that grew the log took 370 µs at the median, one that
 * overwrote a log that had started over 182 µs. The worker lets the log reach 12-16 MB before
 * it starts over (`restartPages` plus its passes), where SQLite's own checkpoint keeps it near
 * 4 MB, so under FULL the first few thousand commits of every run pay that (the log file is
 * deleted when the last connection closes). Once the log has reached its high-water mark both
 * ways cost the same (158 and 157 µs mean): the worker saves a FULL commit nothing, since its
 * fsync outweighs the checkpoint's share. Sequential inserts through the engine under FULL,
 * alternating runs: 1,659 / 2,230 / 2,326 ops/s with inline checkpoints, 1,688 / 1,018 / 1,672
 * with the worker. Under NORMAL no commit fsyncs, and the worker takes the copying and the
 * fsyncs off the commits (above).
 *
 * Durability is unchanged: the worker's connection uses the same `synchronous` setting, and a
 * checkpoint fsyncs the log before it copies and the database after (SQLite's order), so a
 * kill or a power loss in the middle of one leaves the log to replay. Checkpoints by two
 * connections (another engine's worker during a hot reload) exclude each other with SQLite's
 * checkpointer lock: the loser gets SQLITE_BUSY and tries again on its next turn.
 */
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { Worker } from "node:worker_threads";
import type Database from "better-sqlite3";
import type { SqliteSynchronous } from "./schema.js";
import { heldDatabaseFd } from "./heldDatabaseFds.js";

/** Slots of the shared Int32Array between the main thread and the worker. */
const PENDING = 0; // pages written (estimated by the main thread) since the worker's last pass
const STOP = 1; // 1: the storage is closing; the worker closes its connection and exits
const RESTART = 2; // the restart handshake (module comment): NONE, ASKED or PAUSED
const EARLY_SYNCS = 3; // how often the worker synced the database file before asking (for tests)
const SLOTS = 4;
/** Values of RESTART. */
const NONE = 0;
const ASKED = 1; // the worker asks the main connection to pause before its next write
const PAUSED = 2; // the main connection waits for the worker's checkpoint

export interface CheckpointerOptions {
  /** Pages written before the worker checkpoints (SQLite's own default is 1000). */
  passPages: number;
  /** Log length (pages) at which the main connection is asked for the restarting checkpoint. */
  restartPages: number;
  /** SQLite's automatic checkpoint on the main connection, in case the worker is not running. */
  backstopPages: number;
  /** The worker checkpoints whatever is pending after this long without reaching `passPages`. */
  idleMs: number;
}

export const DEFAULT_CHECKPOINTER: CheckpointerOptions = {
  passPages: 1_000,
  restartPages: 2_000,
  backstopPages: 10_000,
  idleMs: 500,
};

/** `Atomics.waitAsync` (Node 16 and later), which TypeScript's ES2022 library does not declare. */
const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number):
    | { async: false; value: "not-equal" | "timed-out" }
    | { async: true; value: Promise<"ok" | "timed-out"> };
}).waitAsync;

/** SQLite's default `wal_autocheckpoint`, restored if the worker stops. */
const SQLITE_DEFAULT_AUTOCHECKPOINT = 1_000;

/**
 * The worker, as CommonJS source run with `eval` (so it needs no build step and works the same
 * from the TypeScript sources and from `dist/`). It receives the driver's resolved path.
 */
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const { shared, filename, synchronous, passPages, restartPages, idleMs, databaseFd } = workerData;
const fs = require("node:fs");
const tailPages = Math.max(1, passPages >> 3);
const [PENDING, STOP, RESTART, EARLY_SYNCS] = [${PENDING}, ${STOP}, ${RESTART}, ${EARLY_SYNCS}];
const [NONE, ASKED, PAUSED] = [${NONE}, ${ASKED}, ${PAUSED}];
const db = new Database(filename, { fileMustExist: true, timeout: 0 });
// The log exists: this worker starts after the main connection has written to it, and the
// main connection keeps it until after this worker has exited. Not on Windows, where flushing
// needs write access (heldDatabaseFds.ts).
let logFd = -1;
try {
  if (process.platform !== "win32") logFd = fs.openSync(filename + "-wal", "r");
} catch {
  // Then the pause's pass syncs the log on its own, as before.
}
try {
  db.pragma("synchronous = " + synchronous);
  // Only ever checkpoints explicitly: closing this connection must not checkpoint either, as the
  // main connection may still be writing.
  db.pragma("wal_autocheckpoint = 0");
  const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
  // Before asking for a pause: what the passes so far copied to the database file, and what
  // commits appended to the log, reach the disk now, not in the pause (module comment, "Why
  // the worker syncs first"). A failed fsync here only leaves the work to the pause's pass.
  const syncEarly = () => {
    for (const fd of [databaseFd, logFd]) {
      if (fd === null || fd < 0) continue;
      try {
        fs.fsyncSync(fd);
        if (fd === databaseFd) Atomics.add(shared, EARLY_SYNCS, 1);
      } catch {}
    }
  };
  // The log's length at the end of the last pass: how much was appended since tells whether
  // the copying keeps up.
  let lastLog = 0;
  const pass = (askRestart) => {
    try {
      let { log } = checkpoint.get();
      const appended = log >= lastLog ? log - lastLog : log;
      lastLog = log;
      if (!askRestart || log < restartPages) return;
      // The pause (step 3) copies whatever was appended since the last pass, and commits wait
      // meanwhile. Passes back to back first, each copying what was appended during the one
      // before, while that keeps shrinking (starting from what was appended before this pass):
      // once it is short the pause will be too. When it stops shrinking, commits outpace the
      // copying and every further pass is longer than the last, so ask now. Retrying regardless
      // (up to 8 times) took passes of 15-260 ms while the log grew from 1,600 to 30,800 pages
      // under back-to-back commits of 150 KB: the burst of 400 ended before any restart.
      for (let tries = 0, grew = appended; tries < 8; tries++) {
        const before = log;
        ({ log } = checkpoint.get());
        lastLog = log;
        if (log - before <= tailPages || log - before >= grew) break;
        grew = log - before;
      }
      syncEarly();
      Atomics.store(shared, RESTART, ASKED);
    } catch {
      // SQLITE_BUSY (another connection is checkpointing) and the like: the next pass retries,
      // and the main connection's automatic checkpoint bounds the log meanwhile.
    }
  };
  while (Atomics.load(shared, STOP) === 0) {
    const restart = Atomics.load(shared, RESTART);
    if (restart === ASKED) {
      // Step 1: wait for the main connection to pause. If no commit comes, nothing is being
      // appended, so a pass here copies everything and the next commit restarts the log anyway:
      // do it, and stop asking (unless the main connection paused in the meantime).
      if (Atomics.wait(shared, RESTART, ASKED, idleMs) === "timed-out" && Atomics.compareExchange(shared, RESTART, ASKED, NONE) === ASKED) {
        pass(false);
      }
      continue;
    }
    if (restart === PAUSED) {
      // Step 3: the only writer waits, so this pass copies the whole log.
      pass(false);
      Atomics.compareExchange(shared, RESTART, PAUSED, NONE);
      Atomics.notify(shared, RESTART);
      continue;
    }
    const pending = Atomics.load(shared, PENDING);
    if (pending >= passPages) {
      Atomics.sub(shared, PENDING, pending);
      pass(true);
    } else if (pending === 0) {
      // Nothing to copy: sleep until a commit adds pages (afterCommit wakes us when the count
      // leaves 0), not waking every idleMs to find nothing, as an idle server's worker did.
      Atomics.wait(shared, PENDING, 0);
    } else if (Atomics.wait(shared, PENDING, pending, idleMs) === "timed-out") {
      Atomics.sub(shared, PENDING, pending);
      pass(true);
    }
  }
} finally {
  db.close();
  if (logFd >= 0) fs.closeSync(logFd);
}
`;

/** The background checkpointer of one main connection. The worker starts at the first pass due. */
export class Checkpointer {
  private readonly shared = new Int32Array(new SharedArrayBuffer(SLOTS * Int32Array.BYTES_PER_ELEMENT));
  private worker: Worker | null = null;
  /** The pause in progress (module comment, step 2), which every write waits out. */
  private pause: Promise<void> | null = null;
  private exited: Promise<void> | null = null;
  /** The worker failed or exited on its own: SQLite's inline checkpoints are back on. */
  private stopped = false;
  /** Resolved now: the worker starts later, possibly after the process changed directory. */
  private readonly filename: string;

  constructor(
    private readonly db: Database.Database,
    private readonly synchronous: SqliteSynchronous,
    private readonly options: CheckpointerOptions = DEFAULT_CHECKPOINTER,
  ) {
    this.filename = resolve(db.name);
    db.pragma(`wal_autocheckpoint = ${options.backstopPages}`);
  }

  /**
   * Called on the main connection after each write transaction committed, outside any
   * transaction, with about how many pages it wrote.
   */
  afterCommit(pages: number): void {
    if (this.stopped) return;
    const pending = Atomics.add(this.shared, PENDING, pages) + pages;
    // Wake the worker when the count crosses the threshold, and when it leaves 0 (the worker
    // then sleeps with no deadline, and waits idleMs from here). The count changes before the
    // notify, so a worker about to wait on the old count does not sleep through it.
    if (pending >= this.options.passPages && pending - pages < this.options.passPages) {
      if (this.worker === null) this.start();
      Atomics.notify(this.shared, PENDING);
    } else if (pending - pages === 0 && pages > 0) {
      Atomics.notify(this.shared, PENDING);
    }
  }

  /** Stops the worker and waits for it to close its connection. Idempotent. */
  async close(): Promise<void> {
    this.stopped = true;
    Atomics.store(this.shared, STOP, 1);
    // Moves the count too: a worker about to sleep on a count of 0 (no deadline) finds it
    // changed and sees STOP, instead of sleeping through the notify below.
    Atomics.add(this.shared, PENDING, 1);
    Atomics.notify(this.shared, PENDING);
    Atomics.notify(this.shared, RESTART);
    this.release();
    // Referenced again while we wait: an unreferenced worker's exit does not keep Node running,
    // so a program whose last task is this close would exit before the worker closed its file.
    this.worker?.ref();
    await this.exited;
  }

  /** How many times the worker synced the database file before asking for a pause (for tests). */
  get earlySyncs(): number {
    return Atomics.load(this.shared, EARLY_SYNCS);
  }

  /** Whether a worker thread is running (for tests). */
  get running(): boolean {
    return this.worker !== null && !this.stopped;
  }

  /**
   * Whether a write on the main connection should wait for `pauseForRestart` first: the worker
   * asks for a pause (module comment, step 1), or one is in progress (step 2).
   */
  get writeShouldWait(): boolean {
    return this.pause !== null || (!this.stopped && Atomics.load(this.shared, RESTART) === ASKED);
  }

  /**
   * Step 2 of the module comment: called by the main connection before it begins a write
   * transaction, when `writeShouldWait`. Resolves once the worker has copied the whole log (the
   * transaction then starts it over), or after `idleMs` if the worker does not answer.
   *
   * Every write on the main connection waits out the same pause: a commit, and the writing of
   * pending versions when its timer fires (its 5 ms is shorter than a pause can be). A write in
   * the middle of the pause would append frames the worker's pass does not copy, and the log
   * would not start over: with the timer writing during pauses, a burst of 400 large commits
   * ended with a log of 30,800 pages where 4,000 were expected. Rarer writes (a history
   * sweep, metadata) do not wait: at worst one costs a restart, and the worker asks again.
   */
  pauseForRestart(): Promise<void> {
    if (this.pause === null) {
      this.pause = this.pauseOnce().finally(() => {
        this.pause = null;
      });
    }
    return this.pause;
  }

  private async pauseOnce(): Promise<void> {
    if (Atomics.compareExchange(this.shared, RESTART, ASKED, PAUSED) !== ASKED) return;
    Atomics.notify(this.shared, RESTART);
    const wait = waitAsync(this.shared, RESTART, PAUSED, this.options.idleMs);
    let outcome: "ok" | "not-equal" | "timed-out";
    if (!wait.async) outcome = wait.value;
    else {
      // A pending waitAsync does not keep Node's event loop running: without this timer, a
      // program whose only work left is this commit would exit in the middle of it.
      const keepAlive = setTimeout(() => {}, this.options.idleMs + 1_000);
      try {
        outcome = await wait.value;
      } finally {
        clearTimeout(keepAlive);
      }
    }
    // No answer: go on writing. A pass the worker still runs only copies less than all of the log.
    if (outcome === "timed-out") this.release();
  }

  /** Ends a pause no worker will end (it stopped, or did not answer). */
  private release(): void {
    if (Atomics.compareExchange(this.shared, RESTART, PAUSED, NONE) === PAUSED) Atomics.notify(this.shared, RESTART);
  }

  private start(): void {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        driver: createRequire(import.meta.url).resolve("better-sqlite3"),
        shared: this.shared,
        filename: this.filename,
        synchronous: this.synchronous === "full" ? "FULL" : "NORMAL",
        passPages: this.options.passPages,
        restartPages: this.options.restartPages,
        idleMs: this.options.idleMs,
        databaseFd: heldDatabaseFd(this.filename),
      },
    });
    // A storage that is never closed must not keep the process alive.
    worker.unref();
    this.worker = worker;
    this.exited = new Promise((resolve) => {
      worker.once("exit", () => {
        this.fallBack();
        resolve();
      });
    });
    // An error also ends the thread ("exit" follows); the inline checkpoints take over.
    worker.on("error", () => this.fallBack());
  }

  /** From now on the main connection checkpoints inline, as SQLite does by default. */
  private fallBack(): void {
    if (!this.stopped) {
      this.stopped = true;
      if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT}`);
    }
    this.release();
  }
}

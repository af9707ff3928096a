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
 * Why the main thread still checkpoints, rarely: the log only starts over from its beginning
 * (instead of growing) when a writer begins a transaction at a moment when every frame in it has
 * been copied back. Under a steady stream of commits the worker never sees that moment, since
 * frames are appended while it copies. So when the worker finds the log longer than
 * `restartPages`, it asks the main connection to run one PASSIVE checkpoint right after its next
 * commit (the frames appended since the worker's pass, then two fsyncs): that one finishes
 * between two commits of the only writer, so the next commit restarts the log. The log stays
 * under about `restartPages` plus two worker passes (measured: 3,000-8,000 pages, 12-33 MB, with
 * the defaults under a steady stream of one-document inserts, against SQLite's ~1,000). And should the worker stop (it failed, or
 * never started), SQLite's own automatic checkpoint is left on at `backstopPages` pages, so the
 * log is bounded whatever happens.
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

/** Slots of the shared Int32Array between the main thread and the worker. */
const PENDING = 0; // pages written (estimated by the main thread) since the worker's last pass
const STOP = 1; // 1: the storage is closing; the worker closes its connection and exits
const RESTART = 2; // 1: the worker asks the main connection for the checkpoint that restarts the log
const SLOTS = 3;

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

/** SQLite's default `wal_autocheckpoint`, restored if the worker stops. */
const SQLITE_DEFAULT_AUTOCHECKPOINT = 1_000;

/**
 * The worker, as CommonJS source run with `eval` (so it needs no build step and works the same
 * from the TypeScript sources and from `dist/`). It receives the driver's resolved path.
 */
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const { shared, filename, synchronous, passPages, restartPages, idleMs } = workerData;
const tailPages = Math.max(1, passPages >> 3);
const [PENDING, STOP, RESTART] = [${PENDING}, ${STOP}, ${RESTART}];
const db = new Database(filename, { fileMustExist: true, timeout: 0 });
try {
  db.pragma("synchronous = " + synchronous);
  // Only ever checkpoints explicitly: closing this connection must not checkpoint either, as the
  // main connection may still be writing.
  db.pragma("wal_autocheckpoint = 0");
  const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
  const pass = (askRestart) => {
    try {
      let { log } = checkpoint.get();
      if (!askRestart || log < restartPages) return;
      // The main connection will copy whatever is appended until it gets to it, inside a commit's
      // turn. Passes back to back first, each copying what was appended during the one before,
      // until that is short (or after a few tries, if commits outpace the copying).
      for (let tries = 0; tries < 8; tries++) {
        const before = log;
        ({ log } = checkpoint.get());
        if (log - before <= tailPages) break;
      }
      Atomics.store(shared, RESTART, 1);
    } catch {
      // SQLITE_BUSY (another connection is checkpointing) and the like: the next pass retries,
      // and the main connection's automatic checkpoint bounds the log meanwhile.
    }
  };
  while (Atomics.load(shared, STOP) === 0) {
    if (Atomics.load(shared, RESTART) === 1) {
      // The main connection finishes this round after its next commit; checkpointing now would
      // only contend with it. If no commit comes, nothing is being appended, so a pass here
      // copies everything and the next commit restarts the log anyway: do it, and stop asking.
      if (Atomics.wait(shared, RESTART, 1, idleMs) === "timed-out") {
        Atomics.store(shared, RESTART, 0);
        pass(false);
      }
      continue;
    }
    const pending = Atomics.load(shared, PENDING);
    if (pending >= passPages) {
      Atomics.sub(shared, PENDING, pending);
      pass(true);
    } else if (Atomics.wait(shared, PENDING, pending, idleMs) === "timed-out" && pending > 0) {
      Atomics.sub(shared, PENDING, pending);
      pass(true);
    }
  }
} finally {
  db.close();
}
`;

/** The background checkpointer of one main connection. The worker starts at the first pass due. */
export class Checkpointer {
  private readonly shared = new Int32Array(new SharedArrayBuffer(SLOTS * Int32Array.BYTES_PER_ELEMENT));
  private worker: Worker | null = null;
  private exited: Promise<void> | null = null;
  /** The worker failed or exited on its own: SQLite's inline checkpoints are back on. */
  private stopped = false;
  private readonly restartCheckpoint: Database.Statement<[], { busy: number; log: number; checkpointed: number }>;
  /** Resolved now: the worker starts later, possibly after the process changed directory. */
  private readonly filename: string;

  constructor(
    private readonly db: Database.Database,
    private readonly synchronous: SqliteSynchronous,
    private readonly options: CheckpointerOptions = DEFAULT_CHECKPOINTER,
  ) {
    this.filename = resolve(db.name);
    this.restartCheckpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
    db.pragma(`wal_autocheckpoint = ${options.backstopPages}`);
  }

  /**
   * Called on the main connection after each write transaction committed, outside any
   * transaction, with about how many pages it wrote.
   */
  afterCommit(pages: number): void {
    if (this.stopped) return;
    if (Atomics.load(this.shared, RESTART) === 1) this.restartLog();
    const pending = Atomics.add(this.shared, PENDING, pages) + pages;
    // Wake the worker once, when the count crosses the threshold (it rechecks before waiting).
    if (pending >= this.options.passPages && pending - pages < this.options.passPages) {
      if (this.worker === null) this.start();
      Atomics.notify(this.shared, PENDING);
    }
  }

  /** Stops the worker and waits for it to close its connection. Idempotent. */
  async close(): Promise<void> {
    this.stopped = true;
    Atomics.store(this.shared, STOP, 1);
    Atomics.notify(this.shared, PENDING);
    Atomics.notify(this.shared, RESTART);
    // Referenced again while we wait: an unreferenced worker's exit does not keep Node running,
    // so a program whose last task is this close would exit before the worker closed its file.
    this.worker?.ref();
    await this.exited;
  }

  /** Whether a worker thread is running (for tests). */
  get running(): boolean {
    return this.worker !== null && !this.stopped;
  }

  private restartLog(): void {
    let busy = 1;
    try {
      busy = this.restartCheckpoint.get()!.busy;
    } catch {
      // Another connection holds the checkpointer lock: try again after the next commit.
    }
    if (busy !== 0) return;
    Atomics.store(this.shared, RESTART, 0);
    Atomics.notify(this.shared, RESTART);
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
  }
}

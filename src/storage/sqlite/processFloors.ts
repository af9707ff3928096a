/**
 * Pruning on a file that several processes have open: each process keeps a row in the file's
 * `read_floors` table, and a connection prunes only below the floors of the other processes'
 * rows as well as those of its own process (`fileFloors.ts`). This is how PostgreSQL's nodes
 * share theirs (`postgres/snapshotFloors.ts`), with one row per process and file instead of one
 * per storage, since the connections of one process already agree in memory.
 *
 * Step by step, for process B opening a file that process A is writing and pruning:
 *
 *  1. B's first connection registers `floor = latest` in one statement that reads the clock
 *     (`register`), and only then reads the latest commit it will start from. Every snapshot B
 *     reads is at or after that commit, so at or after its row's floor.
 *  2. A prunes at a floor it computed from the rows it saw. If it read them before B's row
 *     existed, that floor was at most the latest commit at that moment, which B's row and every
 *     read of B are at or after: pruning at F removes only versions that a newer version at or
 *     before F replaced, which no read at F or later needs. If it read them after, B's row bounds
 *     it. Either way nothing B reads goes.
 *  3. A timer refreshes B's row every HEARTBEAT_MS with the lowest floor of B's connections
 *     (each a lower bound of everything it reads from then on, and rising only). Every later
 *     connection of B on the file refreshes it as it opens, before it reads (the timer may
 *     have stopped meanwhile: it writes nothing while no connection of B is open). Closing
 *     B's last connection on the file deletes the row.
 *  4. Whether a row counts depends on where its process runs. A row names its process by PID
 *     and by `host`: the machine, its boot and its PID namespace, where that PID means one
 *     process. A row of this `host` counts exactly while its process runs, however long it has
 *     not beaten (a process stopped at a breakpoint or by Ctrl-Z resumes at its snapshot), and
 *     not at all once it is gone (a `kill -9` leaves its row behind). A row of another `host`
 *     (another container on a shared volume, or from before a reboot) counts until it is
 *     FLOOR_STALE_MS old. A row of this process's own PID counts while it is one of the rows
 *     this process keeps (`liveInstances`, shared by every copy of this module in the thread),
 *     or while it is fresh (a storage in a worker thread keeps its own); one left behind (a
 *     close that could not delete it, or an earlier process that had this PID, as a restarted
 *     container's PID 1 may) stops counting FLOOR_STALE_MS after its last beat.
 *
 * The window left open, as on PostgreSQL: a process of another `host` frozen for longer than
 * FLOOR_STALE_MS while it holds an old snapshot. (A reused PID errs the other way: a row of
 * this `host` whose process is gone counts while another process has its PID, holding pruning
 * back, never taking what anyone reads.)
 *
 * Writing the row must not stall the event loop: a beat takes the write lock only if it is
 * free (no busy wait), and skips otherwise; a row has FLOOR_STALE_MS, or its live process, to
 * keep counting.
 *
 * Reading the other rows costs a statement, so a connection keeps the lowest floor it read
 * until the file changes (`PRAGMA data_version`: every write of another connection, including
 * a registration or a heartbeat) or OTHERS_RECHECK_MS pass. A kept floor is never too high: a
 * row can only rise, appear (covered by step 2) or stop counting, and each of those either
 * changes the file or only makes the right floor higher.
 */
import { randomUUID } from "node:crypto";
import { readFileSync, readlinkSync } from "node:fs";
import os from "node:os";
import type Database from "better-sqlite3";

export const HEARTBEAT_MS = 10_000;
export const FLOOR_STALE_MS = 120_000;
const FLOOR_FORGET_MS = 3_600_000;
const OTHERS_RECHECK_MS = 1_000;

/** The clock's newest timestamp, as `sqliteStorage.ts` ("The newest timestamp") defines it. */
const LATEST = "max(log_carried_ts, coalesce((SELECT max(ts) FROM commit_log), 0))";

/** Where a PID names one process (step 4): this machine, since its last boot, in this PID namespace. */
export const PROCESS_HOST = [os.hostname(), linuxId("/proc/sys/kernel/random/boot_id", readFileSync), linuxId("/proc/self/ns/pid", readlinkSync)]
  .filter((part) => part !== "")
  .join(" ");

function linuxId(path: string, read: (path: string, encoding: "utf8") => string): string {
  try {
    return read(path, "utf8").trim();
  } catch {
    return ""; // not Linux, or no /proc: the hostname alone
  }
}

/**
 * The rows this process keeps, by instance: one per file with a connection open. On
 * `globalThis`, so that two copies of this module in one thread (a bundle and a dependency)
 * know each other's.
 */
const liveInstances: Set<string> = ((globalThis as Record<symbol, Set<string> | undefined>)[Symbol.for("walkin.sqlite.readFloorInstances")] ??= new Set());

/** A connection that the process's row can be written through. */
export interface RowWriter {
  readonly db: Database.Database;
  /** False while a write would wait (the background checkpointer's restart): skip this beat. */
  readonly mayWriteNow: boolean;
}

/** This process's row in `read_floors` for one file. */
export class ProcessFloorRow {
  readonly instance = randomUUID();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    /** The lowest floor among this process's connections on the file (Infinity: none open). */
    private readonly floor: () => number,
    /** Any connection of this process on the file that is open, or null. */
    private readonly writer: () => RowWriter | null,
  ) {}

  /**
   * Steps 1 and 3, through a connection that is opening, before it reads: writes the row at
   * the latest commit, or, if it is there, refreshes it without raising its floor (the
   * process's other connections may read below the latest commit). Starts the heartbeat.
   */
  register(db: Database.Database): void {
    db.prepare(
      `INSERT INTO read_floors (instance, floor, seen_at, host, pid) SELECT ?, ${LATEST}, ?, ?, ? FROM clock WHERE singleton = 1
       ON CONFLICT (instance) DO UPDATE SET floor = min(floor, excluded.floor), seen_at = excluded.seen_at`,
    ).run(this.instance, Date.now(), PROCESS_HOST, process.pid);
    liveInstances.add(this.instance);
    if (this.heartbeat !== undefined) return;
    this.heartbeat = setInterval(() => this.touch(), HEARTBEAT_MS);
    this.heartbeat.unref?.();
  }

  /**
   * Step 3: records the process's floor (re-creating the row if another process forgot it) and
   * deletes the rows that no longer count and never will again: of this `host` with their
   * process gone, or of another not heard from in FLOOR_FORGET_MS. A beat that cannot write
   * at once is skipped.
   */
  touch(): void {
    const floor = this.floor();
    const writer = this.writer();
    if (floor === Infinity || writer === null || !writer.mayWriteNow) return;
    withoutWaiting(writer.db, () => {
      const now = Date.now();
      writer.db
        .prepare(
          `INSERT INTO read_floors (instance, floor, seen_at, host, pid) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (instance) DO UPDATE SET floor = max(floor, excluded.floor), seen_at = excluded.seen_at`,
        )
        .run(this.instance, floor, now, PROCESS_HOST, process.pid);
      const forget = writer.db.prepare<[string]>("DELETE FROM read_floors WHERE instance = ?");
      for (const row of writer.db.prepare<[string], FloorRow>(SELECT_ROWS).all(this.instance)) {
        const gone = row.host === PROCESS_HOST && row.pid !== process.pid ? !running(row.pid) : !liveInstances.has(row.instance) && row.seenAt < now - FLOOR_FORGET_MS;
        if (gone) forget.run(row.instance);
      }
    });
  }

  /** Step 3's end, through the last connection to close (still open). */
  remove(db: Database.Database): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    liveInstances.delete(this.instance);
    if (!db.open) return;
    const forget = () => void db.prepare("DELETE FROM read_floors WHERE instance = ?").run(this.instance);
    // Once per process and file, at its last close: worth waiting for another process's write
    // (the busy timeout), unlike a beat. A row left behind stops counting FLOOR_STALE_MS after
    // its last beat (step 4).
    if (withoutWaiting(db, forget)) return;
    try {
      forget();
    } catch {
      // Busy past the timeout, or closing: left behind.
    }
  }
}

/** Whether a row of another process counts now (step 4), read under the caller's write lock, uncached. */
export function anotherProcessCounts(db: Database.Database, instance: string): boolean {
  const now = Date.now();
  return db.prepare<[string], FloorRow>(SELECT_ROWS).all(instance).some((row) => counts(row, now));
}

/** One connection's view of the other processes' floors on its file. */
export class OtherProcessFloors {
  private readonly dataVersion: Database.Statement<[], number>;
  private readonly selectRows: Database.Statement<[string], FloorRow>;
  private lowestSeen = Infinity;
  private seenVersion = -1;
  private readAt = -Infinity;

  constructor(
    db: Database.Database,
    private readonly instance: string,
  ) {
    this.dataVersion = db.prepare<[], number>("PRAGMA data_version").pluck();
    this.selectRows = db.prepare(SELECT_ROWS);
  }

  /** The lowest floor of another process's row that counts (step 4), or Infinity if there is none. */
  lowest(): number {
    const version = this.dataVersion.get()!;
    const now = Date.now();
    if (version !== this.seenVersion || now - this.readAt >= OTHERS_RECHECK_MS) {
      let lowest = Infinity;
      for (const row of this.selectRows.all(this.instance)) {
        if (row.floor < lowest && counts(row, now)) lowest = row.floor;
      }
      this.lowestSeen = lowest;
      this.seenVersion = version;
      this.readAt = now;
    }
    return this.lowestSeen;
  }
}

interface FloorRow {
  instance: string;
  floor: number;
  seenAt: number;
  host: string;
  pid: number;
}

/** The rows of the other processes (instance <> ?): a handful, one per process on the file. */
const SELECT_ROWS = "SELECT instance, floor, seen_at AS seenAt, host, pid FROM read_floors WHERE instance <> ?";

/** Step 4. */
function counts(row: FloorRow, now: number): boolean {
  const fresh = row.seenAt > now - FLOOR_STALE_MS;
  if (row.host !== PROCESS_HOST) return fresh;
  return row.pid === process.pid ? liveInstances.has(row.instance) || fresh : running(row.pid);
}

/** Whether another process of this `host` runs (a stopped one does); true when unsure. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/**
 * Runs `write` in a transaction that takes the write lock only if it is free: with the
 * connection's busy timeout at 0 for that moment, another connection's write makes it fail at
 * once (SQLITE_BUSY), where the usual timeout would block the event loop for up to seconds.
 * Answers whether it ran. Nothing else runs on the connection meanwhile (all of it is synchronous).
 */
function withoutWaiting(db: Database.Database, write: () => void): boolean {
  const timeout = db.pragma("busy_timeout", { simple: true }) as number;
  db.pragma("busy_timeout = 0");
  try {
    db.transaction(write).immediate();
    return true;
  } catch {
    return false; // busy, or closing: the next beat tries again
  } finally {
    if (db.open) db.pragma(`busy_timeout = ${timeout}`);
  }
}

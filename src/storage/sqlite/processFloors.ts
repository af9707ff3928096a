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
 *     (each a lower bound of everything it reads from then on, and rising only). A row stops
 *     counting once it is FLOOR_STALE_MS old, or at once if it names a process of this host
 *     that is gone (a `kill -9` leaves its row behind), and is deleted after FLOOR_FORGET_MS.
 *     Closing the process's last connection on the file deletes the row.
 *
 * The window left open, as on PostgreSQL: a process of another host (another container on a
 * shared volume) frozen for longer than FLOOR_STALE_MS while it holds an old snapshot.
 *
 * Reading the other rows costs a statement, so a connection keeps the lowest floor it read
 * until the file changes (`PRAGMA data_version`: every write of another connection, including
 * a registration or a heartbeat) or OTHERS_RECHECK_MS pass. A kept floor is never too high: a
 * row can only rise, appear (covered by step 2) or stop counting, and each of those either
 * changes the file or only makes the right floor higher.
 */
import { randomUUID } from "node:crypto";
import os from "node:os";
import type Database from "better-sqlite3";

export const HEARTBEAT_MS = 10_000;
export const FLOOR_STALE_MS = 120_000;
const FLOOR_FORGET_MS = 3_600_000;
const OTHERS_RECHECK_MS = 1_000;

/** The clock's newest timestamp, as `sqliteStorage.ts` ("The newest timestamp") defines it. */
const LATEST = "max(log_carried_ts, coalesce((SELECT max(ts) FROM commit_log), 0))";

const host = os.hostname();

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

  /** Step 1, through the connection that is opening; then keeps the row fresh (step 3). */
  register(db: Database.Database): void {
    db.prepare(
      `INSERT INTO read_floors (instance, floor, seen_at, host, pid) SELECT ?, ${LATEST}, ?, ?, ? FROM clock WHERE singleton = 1`,
    ).run(this.instance, Date.now(), host, process.pid);
    this.heartbeat = setInterval(() => this.touch(), HEARTBEAT_MS);
    this.heartbeat.unref?.();
  }

  /**
   * Step 3: records the process's floor (re-creating the row if another process forgot it) and
   * deletes the rows of processes that are long gone. A beat that cannot write is skipped: the
   * row has FLOOR_STALE_MS before it stops counting.
   */
  touch(): void {
    const floor = this.floor();
    const writer = this.writer();
    if (floor === Infinity || writer === null || !writer.mayWriteNow) return;
    try {
      const now = Date.now();
      writer.db.transaction(() => {
        writer.db
          .prepare(
            `INSERT INTO read_floors (instance, floor, seen_at, host, pid) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (instance) DO UPDATE SET floor = max(floor, excluded.floor), seen_at = excluded.seen_at`,
          )
          .run(this.instance, floor, now, host, process.pid);
        writer.db.prepare("DELETE FROM read_floors WHERE seen_at < ?").run(now - FLOOR_FORGET_MS);
        for (const row of writer.db.prepare<[string, number], FloorRow>(SELECT_ROWS).all(this.instance, 0)) {
          if (!alive(row)) writer.db.prepare("DELETE FROM read_floors WHERE instance = ?").run(row.instance);
        }
      })();
    } catch {
      // Busy or closing: the next beat tries again.
    }
  }

  /** Step 3's end, through the last connection to close (still open). */
  remove(db: Database.Database): void {
    clearInterval(this.heartbeat);
    try {
      if (db.open) db.prepare("DELETE FROM read_floors WHERE instance = ?").run(this.instance);
    } catch {
      // The row goes stale and stops counting.
    }
  }
}

/** One connection's view of the other processes' floors on its file. */
export class OtherProcessFloors {
  private readonly dataVersion: Database.Statement<[], number>;
  private readonly selectRows: Database.Statement<[string, number], FloorRow>;
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

  /** The lowest floor of another live process's row, or Infinity if there is none. */
  lowest(): number {
    const version = this.dataVersion.get()!;
    const now = Date.now();
    if (version !== this.seenVersion || now - this.readAt >= OTHERS_RECHECK_MS) {
      let lowest = Infinity;
      for (const row of this.selectRows.all(this.instance, now - FLOOR_STALE_MS)) {
        if (row.floor < lowest && alive(row)) lowest = row.floor;
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
  host: string;
  pid: number;
}

/** The rows of the other processes (instance <> ?) seen after a time. */
const SELECT_ROWS = "SELECT instance, floor, host, pid FROM read_floors WHERE instance <> ? AND seen_at > ?";

/**
 * False only for a process of this host that no longer runs. Another host's process (or one
 * whose PID was reused here) counts until its row goes stale: erring that way holds pruning
 * back, never the other.
 */
function alive(row: FloorRow): boolean {
  if (row.host !== host || row.pid === process.pid) return true;
  try {
    process.kill(row.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

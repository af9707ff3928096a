/**
 * `watchCommits` for SQLite: another process, or another engine of this one (a hot reload), can
 * commit to the file, and an engine learns of it only when it reads the commit log. SQLite has
 * no notifications between connections, but `PRAGMA data_version` changes on a connection
 * whenever any other connection has committed to the file, and reading it costs about a
 * microsecond. So the watch reads it every POLL_MS while someone is listening, and calls the
 * listeners when it changed; the engine then reads the log (`otherEngines.ts`). A change may be
 * a write that is not a commit (another process's heartbeat in `read_floors`): the engine's
 * read then finds nothing new, which is all it costs.
 */
import type Database from "better-sqlite3";
import type { Timestamp } from "../types.js";

/** How often the file is looked at: a commit of another process shows in live queries within this. */
const POLL_MS = 20;

export class CommitWatch {
  private readonly listeners = new Set<(latest?: Timestamp) => void>();
  private readonly dataVersion: Database.Statement<[], number>;
  private seen = -1;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly db: Database.Database) {
    this.dataVersion = db.prepare<[], number>("PRAGMA data_version").pluck();
  }

  /** Calls `listener` soon after another connection commits; returns the function that stops it. */
  add(listener: (latest?: Timestamp) => void): () => void {
    if (!this.db.open) throw new Error("Walk-in storage: watchCommits was called on a closed storage.");
    this.listeners.add(listener);
    if (this.timer === null) {
      this.seen = this.dataVersion.get()!;
      this.timer = setInterval(() => this.poll(), POLL_MS);
      this.timer.unref?.();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private poll(): void {
    if (!this.db.open) return this.stop();
    let version: number;
    try {
      version = this.dataVersion.get()!;
    } catch {
      return; // busy or closing: the next poll looks again (and the engine polls the log too)
    }
    if (version === this.seen) return;
    this.seen = version;
    for (const listener of [...this.listeners]) listener();
  }
}

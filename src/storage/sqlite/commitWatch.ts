/**
 * `watchCommits` for SQLite: another process, or another engine of this one (a hot reload), can
 * commit to the file, and an engine learns of it only when it reads the commit log. SQLite has
 * no notifications between connections, but `PRAGMA data_version` changes on a connection
 * whenever any other connection has committed to the file, and reading it costs about a
 * microsecond. So the watch reads it on a timer while someone is listening, and calls the
 * listeners when it changed; the engine then reads the log (`otherEngines.ts`). A change may be
 * a write that is not a commit (another process's heartbeat in `read_floors`): the engine's
 * read then finds nothing new, which is all it costs.
 *
 * How often. Every POLL_MS while any listener is in a hurry (an engine with a live query: a
 * commit of another process shows in it within that), every IDLE_POLL_MS when all of them can
 * wait (`idle`: an engine nobody watches, which woke 50 times a second here to find nothing).
 * An idle engine still learns of every commit, a little later: a job another process
 * scheduled starts within IDLE_POLL_MS, and a one-shot call looks for itself before it reads
 * (`othersCommitMark`). Watching the file for changes instead (inotify) was tried: the event
 * that each of this process's own commits raises cost about 10 µs an insert.
 *
 * A listener changes pace by adding its new subscription before removing the old one, so the
 * watch runs on without a gap: the version it last saw stays its baseline, and a commit made
 * while the pace changed is still announced.
 */
import type Database from "better-sqlite3";
import type { Timestamp } from "../types.js";

/** How often the file is looked at while a listener is in a hurry. */
const POLL_MS = 20;
/** How often it is looked at while every listener can wait. */
const IDLE_POLL_MS = 1_000;

export class CommitWatch {
  /** Each listener, and whether it can wait. */
  private readonly listeners = new Map<(latest?: Timestamp) => void, boolean>();
  private readonly dataVersion: Database.Statement<[], number>;
  private seen = -1;
  private timer: NodeJS.Timeout | null = null;
  private intervalMs = 0;

  constructor(private readonly db: Database.Database) {
    this.dataVersion = db.prepare<[], number>("PRAGMA data_version").pluck();
  }

  /** Calls `listener` soon after another connection commits; returns the function that stops it. */
  add(listener: (latest?: Timestamp) => void, idle = false): () => void {
    if (!this.db.open) throw new Error("Walk-in storage: watchCommits was called on a closed storage.");
    this.listeners.set(listener, idle);
    if (this.timer === null) this.seen = this.dataVersion.get()!;
    this.arm();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
      else this.arm();
    };
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Sets the timer to the pace the listeners need (left as it is if that did not change). */
  private arm(): void {
    const intervalMs = [...this.listeners.values()].every((idle) => idle) ? IDLE_POLL_MS : POLL_MS;
    if (this.timer !== null && intervalMs === this.intervalMs) return;
    if (this.timer !== null) clearInterval(this.timer);
    this.intervalMs = intervalMs;
    this.timer = setInterval(() => this.poll(), intervalMs);
    this.timer.unref?.();
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
    for (const listener of [...this.listeners.keys()]) listener();
  }
}

/**
 * Descriptors of database files that this process opens outside SQLite and never closes: the
 * background checkpointer's worker fsyncs the database file through one (checkpointer.ts, "Why
 * the worker syncs first"), and SQLite's own descriptors are out of JavaScript's reach.
 *
 * Why never closed: on POSIX systems, closing any descriptor of a file releases every fcntl lock
 * the process holds on that file, including the ones SQLite took through its own descriptors
 * (SQLite defers closing its own descriptors for this reason, but cannot know about ours).
 * Step by step, what closing one would risk while a connection of this process uses the file:
 *  1. Our connection holds a shared lock on the database file, which tells any other
 *     connection that it is not the last one.
 *  2. We close our extra descriptor: the kernel drops that lock with it, silently.
 *  3. A connection in another process (a CLI, a backup script) closes. It takes an exclusive
 *     lock on the database file, gets it, concludes that it is the last connection, and
 *     checkpoints and deletes the write-ahead log that our connection is still appending to.
 * So each file (device and inode) gets one descriptor, opened on first use and kept until the
 * process exits: one per database file that ever started a checkpoint worker. Holding it also
 * keeps a deleted file's blocks until then, which only matters for short-lived files of tests.
 */
import { fstatSync, openSync, statSync } from "node:fs";

/** One descriptor per file, by `device:inode`: a descriptor held pins its inode, so keys never repeat. */
const held = new Map<string, number>();

/**
 * A read-only descriptor of `filename` that lives as long as the process, or null where there is
 * none to have (the file is gone, or the platform is Windows, where an open handle would keep
 * the file from being deleted and flushing needs write access).
 */
export function heldDatabaseFd(filename: string): number | null {
  if (process.platform === "win32") return null;
  try {
    const { dev, ino } = statSync(filename);
    const known = held.get(`${dev}:${ino}`);
    if (known !== undefined) return known;
    const fd = openSync(filename, "r");
    // Filed under what was opened, in case the path was replaced since the stat. Should that
    // file have a descriptor already, this second one is kept too: closing it is what must not
    // happen, and the race is rare enough that one more descriptor does not matter.
    const opened = fstatSync(fd);
    const key = `${opened.dev}:${opened.ino}`;
    if (!held.has(key)) held.set(key, fd);
    return fd;
  } catch {
    return null;
  }
}

/** How many descriptors are held (for tests). */
export function heldDatabaseFdCount(): number {
  return held.size;
}

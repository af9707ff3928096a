/**
 * Which syncs of the log run at once under synchronous=FULL (walSync.ts, `startSync`): a
 * commit's sync does not queue behind a background one, waiters' syncs run one at a time
 * (a group commit), a failure of either of two syncs running at once fails both, and the
 * descriptor outlives every sync still running.
 *
 * The thread pool's `fdatasync` is replaced by one that holds each call until the test lets it
 * go (then it syncs for real, on this thread), so the order in which syncs finish is the
 * test's to choose. The main thread's `fdatasyncSync`, SQLite's own I/O and every other file
 * call are real. The log's fallback to a sync on the main thread, when the pool has not
 * answered in 2 ms, is put off for an hour: on a loaded machine a pause that long between two
 * steps of a test would otherwise sync every waiter before the test released anything.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Commit, CommitOptions, Timestamp } from "../types.js";
import { openSqliteStorage, type SqliteStorage } from "./sqliteStorage.js";

type Held = { fd: number; release(error?: NodeJS.ErrnoException): void };
const pool = vi.hoisted(() => ({ held: [] as Held[], closes: new Map<number, number>() }));

vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  const fdatasync = (fd: number, callback: (error: NodeJS.ErrnoException | null) => void): void => {
    pool.held.push({
      fd,
      release: (reported) => {
        let failure: NodeJS.ErrnoException | null = reported ?? null;
        try {
          if (failure === null) fs.fdatasyncSync(fd);
        } catch (error) {
          failure = error as NodeJS.ErrnoException;
        }
        callback(failure);
      },
    });
  };
  const closeSync = (fd: number): void => {
    pool.closes.set(fd, (pool.closes.get(fd) ?? 0) + 1);
    fs.closeSync(fd);
  };
  return { ...fs, default: { ...fs, fdatasync, closeSync }, fdatasync, closeSync };
});

vi.mock("./walSync.js", async (importOriginal) => {
  const { WalSync } = await importOriginal<typeof import("./walSync.js")>();
  const open: typeof WalSync.open = (filename, name, latest) => WalSync.open(filename, name, latest, 3_600_000);
  return { WalSync: { open } };
});

const dirs: string[] = [];
const storages: SqliteStorage[] = [];
afterEach(async () => {
  // A released sync may start the next one (for waiters left): release until none is held.
  while (pool.held.length > 0) pool.held.shift()!.release();
  for (const storage of storages.splice(0)) await storage.close();
  pool.closes.clear();
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function fullStorage(): Promise<SqliteStorage> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-walsync-overlap-"));
  dirs.push(dir);
  // Versions are written to their tables only when a test asks (`writePendingVersions`): the
  // default timer, 5 ms after a commit, starts a background sync of its own, which a loaded
  // machine lets fire in the middle of a test and which then adds to the syncs a test counts.
  const storage = await openSqliteStorage({ filename: path.join(dir, "app.sqlite"), synchronous: "full", deferredVersions: { delayMs: 3_600_000 } });
  storages.push(storage);
  return storage;
}

let ids = 0;
/** Commits one document, to be synced on the (held) thread pool; returns the commit's timestamp. */
async function commitLater(storage: SqliteStorage): Promise<Timestamp> {
  const options: CommitOptions = { durableLater: true };
  const { written } = await storage.commitBatch(await storage.latestTimestamp(), (view): Commit[] => [
    { ts: view.latest + 1, id: `c${++ids}`, documents: [{ id: `d${ids}`, table: "notes", body: "{}" }], indexes: [], log: new Uint8Array() },
  ], options);
  return written[0]!.ts;
}

/** Whether `promise` has settled once pending callbacks have run. */
async function settled(promise: Promise<void>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true), () => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

/** The pool's syncs still held, oldest first. */
const held = (): Held[] => pool.held;

/**
 * A paced call under FULL, then the next: the first commit is synced, its versions are written
 * with a background sync that is still running, and the second commit is made meanwhile.
 * Returns the second commit and its wait for durability (two syncs held: background, then its own).
 */
async function commitBesideBackgroundSync(storage: SqliteStorage): Promise<{ ts: Timestamp; durable: Promise<void> }> {
  const earlier = await commitLater(storage);
  held().shift()!.release();
  expect(storage.whenDurable!(earlier)).toBeNull();
  storage.writePendingVersions(true);
  expect(held()).toHaveLength(1); // the background sync, still running
  const ts = await commitLater(storage);
  expect(held()).toHaveLength(2); // the commit's sync started now, not after the background one
  const durable = storage.whenDurable!(ts);
  expect(durable).not.toBeNull();
  return { ts, durable: durable! };
}

describe("syncs of the log that run at once under synchronous=FULL", () => {
  it("a commit's sync starts at once beside a background sync, and its caller need not wait for the background one", async () => {
    const storage = await fullStorage();
    const { ts, durable } = await commitBesideBackgroundSync(storage);
    held().pop()!.release(); // the commit's own sync finishes first
    expect(await settled(durable)).toBe(true);
    expect(storage.whenDurable!(ts)).toBeNull();

    // The background sync ends afterwards: what is durable does not go back.
    held().pop()!.release();
    expect(storage.whenDurable!(ts)).toBeNull();
  });

  it("waiters' syncs run one at a time: commits made while one runs share the next", async () => {
    const storage = await fullStorage();
    const first = await commitLater(storage);
    expect(held()).toHaveLength(1);
    const second = await commitLater(storage);
    const third = await commitLater(storage);
    expect(held()).toHaveLength(1); // no sync per commit while one is running
    const waiting = [storage.whenDurable!(second)!, storage.whenDurable!(third)!];

    held().shift()!.release(); // covers the first only: it started before the others were written
    expect(storage.whenDurable!(first)).toBeNull();
    expect(await settled(waiting[0]!)).toBe(false);
    expect(held()).toHaveLength(1); // one sync, started from the first's callback, for both
    held().shift()!.release();
    expect(await settled(Promise.all(waiting).then(() => {}))).toBe(true);
    expect(held()).toHaveLength(0);
  });

  it("a background sync is not started while another sync runs", async () => {
    const storage = await fullStorage();
    const ts = await commitLater(storage);
    expect(held()).toHaveLength(1);
    storage.writePendingVersions(true);
    expect(held()).toHaveLength(1);
    held().shift()!.release();
    expect(storage.whenDurable!(ts)).toBeNull();
  });

  it("a background sync that fails fails the commit synced beside it, even if the commit's own sync succeeds", async () => {
    const storage = await fullStorage();
    const { ts, durable } = await commitBesideBackgroundSync(storage);

    // The kernel may have dropped the pages it could not write: nothing after that is durable.
    held().shift()!.release(Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" }));
    await expect(durable).rejects.toThrow(/syncing the write-ahead log to disk failed/);
    held().shift()!.release();
    await expect(storage.whenDurable!(ts)!).rejects.toThrow(/accepts no more commits/);
    await expect(commitLater(storage)).rejects.toThrow(/accepts no more commits/);
  });

  it("closing while two syncs run closes the log's descriptor once, after the last of them", async () => {
    const storage = await fullStorage();
    const { durable } = await commitBesideBackgroundSync(storage);
    const fd = held()[0]!.fd;

    storages.splice(storages.indexOf(storage), 1);
    await storage.close(); // syncs the waiting commit on this thread
    await expect(durable).resolves.toBeUndefined();
    expect(pool.closes.get(fd) ?? 0).toBe(0); // both syncs still use it

    held().shift()!.release();
    expect(pool.closes.get(fd) ?? 0).toBe(0);
    held().shift()!.release(); // syncs the descriptor for real: it is still open
    expect(pool.closes.get(fd)).toBe(1);
  });
});

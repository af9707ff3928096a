/**
 * A failed sync of the write-ahead log under synchronous=FULL is final (walSync.ts): nothing
 * that depends on the failed sync is reported as durable, and the storage takes no commit after
 * it, even once the disk answers again.
 *
 * A disk that fails cannot be had here, so `node:fs`'s two sync calls are replaced by ones
 * that report EIO (what Linux's fdatasync returns after a write-back error) while `disk.failing`
 * is set. Every other file call, and SQLite's own I/O, is real.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Engine } from "../../engine/engine.js";
import { sleep, waitFor } from "../../engine/fixtures/schedulerEngines.js";
import { cronJobs, defineSchema, defineTable, makeFunctionReference, mutation, query } from "../../server/index.js";
import { v } from "../../values/index.js";
import { CommitOutcomeUnknownError, storageStoppedBy, type Commit, type CommitOptions, type Timestamp } from "../types.js";
import { openSqliteStorage, type SqliteStorage } from "./sqliteStorage.js";

const disk = vi.hoisted(() => ({ failing: false, failedSyncs: 0 }));

vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  const ioError = () => {
    disk.failedSyncs += 1;
    return Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO", errno: -5, syscall: "fdatasync" });
  };
  const fdatasyncSync = (fd: number): void => {
    if (disk.failing) throw ioError();
    fs.fdatasyncSync(fd);
  };
  const fdatasync = (fd: number, callback: (error: NodeJS.ErrnoException | null) => void): void => {
    if (disk.failing) process.nextTick(callback, ioError());
    else fs.fdatasync(fd, callback);
  };
  return { ...fs, default: { ...fs, fdatasync, fdatasyncSync }, fdatasync, fdatasyncSync };
});

const dirs: string[] = [];
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  disk.failing = false;
  disk.failedSyncs = 0;
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function newFile(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-walsync-failure-"));
  dirs.push(dir);
  return path.join(dir, "app.sqlite");
}

async function fullStorage(filename: string): Promise<SqliteStorage> {
  const storage = await openSqliteStorage({ filename, synchronous: "full" });
  closers.push(() => storage.close());
  return storage;
}

let ids = 0;
/** Commits one `notes` document; returns the commit's timestamp. */
async function commitOne(storage: SqliteStorage, options?: CommitOptions): Promise<Timestamp> {
  const { written } = await storage.commitBatch(
    await storage.latestTimestamp(),
    (view): Commit[] => [
      { ts: view.latest + 1, id: `c${++ids}`, documents: [{ id: `d${ids}`, table: "notes", body: "{}" }], indexes: [], log: new Uint8Array() },
    ],
    options,
  );
  return written[0]!.ts;
}

const RESTART_ADVICE = /syncing the write-ahead log to disk failed \(EIO: i\/o error, fdatasync\).*accepts no more commits.*Restart the server once the disk is healthy/;

describe("a failed sync of the log under synchronous=FULL", () => {
  it("syncing in the commit: the batch's outcome is unknown, and the storage refuses commits and lookups from then on", async () => {
    const storage = await fullStorage(await newFile());
    const before = await commitOne(storage);
    disk.failing = true;
    const failed = commitOne(storage);
    await expect(failed).rejects.toBeInstanceOf(CommitOutcomeUnknownError);
    await expect(failed).rejects.toThrow(/reached the log, but syncing the log failed/);
    expect(((await failed.catch((error: Error) => error)) as Error).cause).toBeInstanceOf(Error);
    expect(disk.failedSyncs).toBe(1);

    // The disk answers again: the kernel may have dropped the pages it could not write and
    // report the next sync as a success, so nothing after the failure can be promised.
    disk.failing = false;
    await expect(commitOne(storage)).rejects.toThrow(RESTART_ADVICE);
    // "Not landed" could be wrong about a batch that is in the log: no answer at all.
    await expect(storage.findCommits([`c${ids - 1}`])).rejects.toThrow(RESTART_ADVICE);
    // Nor does it say anything is durable, not even what was before the failure.
    expect(before).toBeGreaterThan(0);
    await expect(storage.whenDurable!(before)!).rejects.toThrow(RESTART_ADVICE);
    await expect(storage.whenDurable!(before + 1)!).rejects.toThrow(RESTART_ADVICE);
  });

  it("syncing on the thread pool: whoever waits for the batch hears of the failure, and later commits are refused", async () => {
    const storage = await fullStorage(await newFile());
    disk.failing = true;
    // The COMMIT itself succeeds: only the sync that follows it fails.
    const ts = await commitOne(storage, { durableLater: true });
    await expect(storage.whenDurable!(ts)!).rejects.toThrow(RESTART_ADVICE);
    disk.failing = false;
    await expect(commitOne(storage, { durableLater: true })).rejects.toThrow(RESTART_ADVICE);
    await expect(commitOne(storage)).rejects.toThrow(RESTART_ADVICE);
  });

  it("through the engine, with a live query (synced on the thread pool): the mutation fails at once, its write is never shown, and a new subscriber hears why", async () => {
    const { engine, calls } = await openEngine(await newFile());
    await engine.runMutation("notes:add", { text: "kept" });
    const heard: unknown[] = [];
    const subscription = await engine.subscriptions.subscribe("notes:list", {}, {}, (outcome) => {
      heard.push(outcome.ok ? outcome.value : outcome.error.message);
    });
    expect(subscription.outcome).toEqual({ ok: true, value: ["kept"] });

    disk.failing = true;
    await expect(engine.runMutation("notes:add", { text: "unsynced" })).rejects.toThrow(RESTART_ADVICE);
    disk.failing = false;
    // Refused before anything is written, and not tried again: waiting does not mend a disk.
    calls.commitBatch = 0;
    await expect(engine.runMutation("notes:add", { text: "after" })).rejects.toThrow(RESTART_ADVICE);
    expect(calls.commitBatch).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Subscribers keep the last result that was durable: nothing after the failure is published.
    expect(heard).toEqual([]);
    expect(engine.subscriptions.publishedTimestamp).toBeLessThan(engine.latestTimestamp);
    // A new subscriber (a client connecting now) hears why instead of waiting for a snapshot
    // that can never be published.
    await expect(engine.subscriptions.subscribe("notes:count", {}, {}, () => {})).rejects.toThrow(RESTART_ADVICE);
    subscription.unsubscribe();
  });

  it("through the engine, syncing in the commit: the mutation fails at once, without asking the stopped storage what landed again and again", async () => {
    const filename = await newFile();
    const { engine, calls } = await openEngine(filename);
    await engine.runMutation("notes:add", { text: "kept" });
    disk.failing = true;
    const failed = engine.runMutation("notes:add", { text: "unsynced" });
    // The batch reached the log, so its outcome is unknown; the storage cannot tell (it answers
    // nothing now), and asking it again and again would hold the caller for the whole backoff.
    await expect(failed).rejects.toThrow(RESTART_ADVICE);
    expect(calls.findCommits).toBeLessThanOrEqual(1);
    disk.failing = false;
    await expect(engine.runMutation("notes:add", { text: "after" })).rejects.toThrow(RESTART_ADVICE);
    await engine.close();

    // The operator restarts once the disk is healthy: SQLite's recovery keeps what reached the
    // file (here the page cache held it, so "unsynced" is there), and commits work again.
    const { engine: reopened } = await openEngine(filename);
    await reopened.runMutation("notes:add", { text: "after restart" });
    expect(await reopened.runQuery("notes:list", {})).toEqual(["kept", "unsynced", "after restart"]);
  });

  it("through the engine, with the scheduler running: background work reports the stop once, instead of once a second", async () => {
    const reported: Array<{ message: string; error: unknown }> = [];
    const { engine, calls } = await openEngine(await newFile(), { runScheduler: true, logError: (message, error) => reported.push({ message, error }) });
    await waitFor(async () => ((await engine.runQuery("notes:count", {})) as number) >= 1, 5_000, "the cron never ran");
    disk.failing = true;
    await expect(engine.runMutation("notes:add", { text: "unsynced" })).rejects.toThrow(RESTART_ADVICE);
    disk.failing = false;
    // The cron comes due every second. The scheduler's pass fails on the stopped storage once
    // and does not try again: a stopped storage stays stopped until the process restarts.
    await sleep(1_200);
    const callsMade = calls.all;
    await sleep(2_500);
    expect(calls.all).toBe(callsMade);
    const aboutTheStop = reported.filter(({ error }) => storageStoppedBy(error) !== undefined);
    expect(aboutTheStop).toHaveLength(1);
    expect(aboutTheStop[0]!.message).toMatch(/the storage has stopped: background work fails the same way until the process restarts, and is not reported again/);
    expect(reported).toEqual(aboutTheStop);
    // Callers still get the error with each call.
    await expect(engine.runMutation("notes:add", { text: "after" })).rejects.toThrow(RESTART_ADVICE);
  });
});

const crons = cronJobs();
crons.interval("note every second", { seconds: 1 }, makeFunctionReference<"mutation">("notes:add"), { text: "tick" });

const schema = defineSchema({ notes: defineTable({ text: v.string() }) });
const modules = {
  notes: {
    add: mutation({ args: { text: v.string() }, handler: (ctx, { text }) => ctx.db.insert("notes", { text }) }),
    list: query({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").collect()).map((note) => note.text) }),
    count: query({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").collect()).length }),
  },
};

/**
 * An engine on a FULL file, counting the engine's calls of the storage: all of them, and of its
 * commit and lookup. With `runScheduler`, its scheduler runs `crons` (a note every second).
 */
async function openEngine(filename: string, options: { runScheduler?: boolean; logError?: (message: string, error: unknown) => void } = {}) {
  const calls = { commitBatch: 0, findCommits: 0, all: 0 };
  const storage = await fullStorage(filename);
  const counted = new Proxy(storage, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== "function") return value;
      const bound = (value as (...args: unknown[]) => unknown).bind(target);
      return (...args: unknown[]) => {
        calls.all += 1;
        if (property === "commitBatch" || property === "findCommits") calls[property] += 1;
        return bound(...args);
      };
    },
  });
  const { runScheduler = false, logError } = options;
  const engine = await Engine.open({ storage: counted, schema, modules: runScheduler ? { ...modules, crons: { default: crons } } : modules, runScheduler, logError });
  closers.push(() => engine.close());
  return { engine, calls };
}

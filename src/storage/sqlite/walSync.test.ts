/**
 * The log's sync under synchronous=FULL (walSync.ts): the connection appends, the storage
 * syncs when asked, at once or in the background, and says when a commit is durable.
 */
import { scrypt } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Commit, CommitOptions, Timestamp } from "../types.js";
import { openSqliteStorage, type SqliteStorage } from "./sqliteStorage.js";

const dirs: string[] = [];
const storages: SqliteStorage[] = [];
afterEach(async () => {
  for (const storage of storages.splice(0)) await storage.close();
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function fileStorage(synchronous: "full" | "normal"): Promise<{ storage: SqliteStorage; filename: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-walsync-"));
  dirs.push(dir);
  const filename = path.join(dir, "app.sqlite");
  const storage = await openSqliteStorage({ filename, synchronous });
  storages.push(storage);
  return { storage, filename };
}

let ids = 0;
/** Commits one document; returns the commit's timestamp. */
async function commitOne(storage: SqliteStorage, options?: CommitOptions): Promise<Timestamp> {
  const { written } = await storage.commitBatch(await storage.latestTimestamp(), (view): Commit[] => [
    { ts: view.latest + 1, id: `c${++ids}`, documents: [{ id: `d${ids}`, table: "notes", body: "{}" }], indexes: [], log: new Uint8Array() },
  ], options);
  return written[0]!.ts;
}

describe("syncing the write-ahead log under synchronous=FULL", () => {
  it("the connection only appends (NORMAL); a batch is durable when commitBatch resolves unless the caller asked for later", async () => {
    const { storage } = await fileStorage("full");
    expect(storage.db.pragma("synchronous", { simple: true })).toBe(1);
    expect(storage.whenDurable).toBeTypeOf("function");
    // The default, and what a wrapper that passes on only (since, plan) gets: synced before it resolves.
    const synced = await commitOne(storage);
    expect(storage.whenDurable!(synced)).toBeNull();
    // The engine, with live queries to re-run meanwhile: synced on the thread pool.
    const later = await commitOne(storage, { durableLater: true });
    await storage.whenDurable!(later);
    expect(storage.whenDurable!(later)).toBeNull();
  });

  it("a batch written while a background sync runs waits for it, then is synced too", async () => {
    const { storage } = await fileStorage("full");
    const first = await commitOne(storage, { durableLater: true });
    const second = await commitOne(storage, { durableLater: true });
    const third = await commitOne(storage);
    expect(storage.whenDurable!(third)).toBeNull();
    expect(storage.whenDurable!(first)).toBeNull();
    expect(storage.whenDurable!(second)).toBeNull();
  });

  it("a sync the thread pool cannot start (every thread hashing a password) is done on the main thread instead", async () => {
    const { storage } = await fileStorage("full");
    // Four scrypt runs at OWASP's cost take the whole default pool for a good while.
    let hashesDone = 0;
    const hashes = Array.from({ length: 4 }, () =>
      new Promise<void>((resolve, reject) =>
        scrypt("password", "salt", 64, { N: 2 ** 17, r: 8, p: 1, maxmem: 256 * 2 ** 20 }, (error) => {
          hashesDone += 1;
          if (error) reject(error);
          else resolve();
        }),
      ),
    );
    const ts = await commitOne(storage, { durableLater: true });
    await storage.whenDurable!(ts);
    expect(hashesDone).toBe(0);
    await Promise.all(hashes);
  });

  it("a commit another connection made is made durable too once this one has read it", async () => {
    const { storage, filename } = await fileStorage("full");
    const other = await openSqliteStorage({ filename, synchronous: "full" });
    storages.push(other);
    const ts = await commitOne(other);
    const view = await storage.commitsSince(0, 100);
    expect(view.latest).toBe(ts);
    await storage.whenDurable!(ts);
    expect(storage.whenDurable!(ts)).toBeNull();
  });

  it("close syncs what is still waiting, and a sync still running finishes without error", async () => {
    const { storage } = await fileStorage("full");
    const ts = await commitOne(storage, { durableLater: true });
    const pending = storage.whenDurable!(ts);
    storages.splice(storages.indexOf(storage), 1);
    await storage.close();
    await expect(pending).resolves.toBeUndefined();
  });

  it("is not used where SQLite's own setting already answers: NORMAL, and a private in-memory database", async () => {
    const { storage } = await fileStorage("normal");
    expect(storage.whenDurable).toBeUndefined();
    const memory = await openSqliteStorage({ filename: ":memory:", synchronous: "full" });
    storages.push(memory);
    expect(memory.whenDurable).toBeUndefined();
  });
});

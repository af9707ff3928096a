/**
 * Deferred versions (sqliteStorage.ts): a commit of one or a few commits writes only its log
 * row, and the versions reach their tables later. The conformance suite runs over every
 * setting (sqlite.test.ts); these tests check what only this layout has: what is in the tables
 * when, other connections, recovery after a crash, and a storage that cannot write its tables.
 */
import { statSync } from "node:fs";
import { access, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { commit, commitAll, entry, keysOf, put } from "../conformance/context.js";
import type { Storage } from "../types.js";
import { MIGRATIONS, applyMigration } from "./schema.js";
import { openSqliteStorage, type SqliteStorageOptions, VERSIONS_KEPT_IN_LOG } from "./sqliteStorage.js";
import { WalSync } from "./walSync.js";

const scanAll = async (storage: Storage, indexId: string, readTs: number) =>
  (await storage.scan({ indexId, range: {}, order: "asc", readTs, limit: 100 })).map((e) => [Array.from(e.key), e.doc.body]);

describe("deferred versions", () => {
  let dir: string;
  let filename: string;
  const open = (options: Partial<SqliteStorageOptions> = {}) => openSqliteStorage({ filename, deferredVersions: VERSIONS_KEPT_IN_LOG, ...options });
  const rows = (db: Database.Database, sql: string) => db.prepare<[], number>(sql).pluck().get();

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "walkin-deferred-"));
    filename = path.join(dir, "deferred.sqlite");
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes only the log row at commit, answers reads from it, and moves the versions to the tables later", async () => {
    const storage = await open();
    await commit(storage, { ts: 1, documents: [put("a", "a1")], indexes: [entry("i", [1], "a")], receipts: [{ key: "r", body: "done" }] });
    expect(rows(storage.db, "SELECT count(*) FROM documents")).toBe(0);
    expect(rows(storage.db, "SELECT count(*) FROM receipts")).toBe(0);
    expect(rows(storage.db, "SELECT count(*) FROM commit_log WHERE writes IS NOT NULL")).toBe(1);
    expect(await storage.getDocument("a", 1)).toEqual({ id: "a", table: "things", ts: 1, body: "a1" });
    expect(await scanAll(storage, "i", 1)).toEqual([[[1], "a1"]]);
    expect(await storage.getReceipt("r")).toEqual({ ts: 1, body: "done" });
    // A receipt key is unique whether its receipt is in the log or in the table.
    await expect(commit(storage, { ts: 2, documents: [], indexes: [], receipts: [{ key: "r", body: "again" }] }, 1)).rejects.toThrow(/receipt/);

    storage.writePendingVersions();
    expect(rows(storage.db, "SELECT count(*) FROM documents")).toBe(1);
    expect(rows(storage.db, "SELECT count(*) FROM receipts")).toBe(1);
    expect(rows(storage.db, "SELECT materialized_through FROM clock")).toBe(1);
    expect(await storage.getDocument("a", 1)).toEqual({ id: "a", table: "things", ts: 1, body: "a1" });
    expect(await scanAll(storage, "i", 1)).toEqual([[[1], "a1"]]);
    await expect(commit(storage, { ts: 2, documents: [], indexes: [], receipts: [{ key: "r", body: "again" }] }, 1)).rejects.toThrow(/receipt/);
    await storage.close();
  });

  it("writes the versions on its own shortly after a commit, and at once past its limits", async () => {
    const storage = await open({ deferredVersions: { ...VERSIONS_KEPT_IN_LOG, delayMs: 1 } });
    await commit(storage, { ts: 1, documents: [put("a", "a1")], indexes: [] });
    expect(rows(storage.db, "SELECT count(*) FROM documents")).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(rows(storage.db, "SELECT count(*) FROM documents")).toBe(1);
    await storage.close();
    const limited = await open({ deferredVersions: { ...VERSIONS_KEPT_IN_LOG, maxCommits: 2 } });
    await commit(limited, { ts: 2, documents: [put("b", "b2")], indexes: [] }, 1);
    expect(rows(limited.db, "SELECT count(*) FROM documents")).toBe(1);
    await commit(limited, { ts: 3, documents: [put("c", "c3")], indexes: [] }, 2);
    expect(rows(limited.db, "SELECT count(*) FROM documents")).toBe(3);
    await limited.close();
  });

  it("refuses a document or index key written twice in one commit before logging anything", async () => {
    const storage = await open();
    await expect(commit(storage, { ts: 1, documents: [put("a", "a1"), put("a", "a2")], indexes: [] })).rejects.toThrow(/twice/);
    await expect(commit(storage, { ts: 1, documents: [put("a", "a1")], indexes: [entry("i", [1], "a"), entry("i", [1], null)] })).rejects.toThrow(/twice/);
    expect(await storage.latestTimestamp()).toBe(0);
    expect(rows(storage.db, "SELECT count(*) FROM commit_log")).toBe(0);
    await storage.close();
  });

  it("writes a batch of several commits or many rows, and everything logged before it, in the batch's own transaction", async () => {
    const storage = await open({ deferredVersions: { ...VERSIONS_KEPT_IN_LOG, inlineBatchCommits: 2, inlineBatchRows: 3 } });
    await commit(storage, { ts: 1, documents: [put("a", "a1")], indexes: [] });
    expect(rows(storage.db, "SELECT count(*) FROM documents")).toBe(0);
    await commitAll(storage, [
      { ts: 2, documents: [put("b", "b2")], indexes: [] },
      { ts: 3, documents: [put("c", "c3")], indexes: [] },
    ], 1);
    expect(rows(storage.db, "SELECT count(*) FROM documents")).toBe(3);
    expect(rows(storage.db, "SELECT count(*) FROM commit_log WHERE writes IS NOT NULL")).toBe(1);
    expect(rows(storage.db, "SELECT materialized_through FROM clock")).toBe(3);
    // So does one commit of many rows.
    await commit(storage, { ts: 4, documents: [put("d", "d4")], indexes: [entry("i", [4], "d"), entry("j", [4], "d")] }, 3);
    expect(rows(storage.db, "SELECT count(*) FROM documents")).toBe(4);
    expect(rows(storage.db, "SELECT count(*) FROM commit_log WHERE writes IS NOT NULL")).toBe(1);
    await storage.close();
  });

  it("after a batch written straight to its tables, reads at its timestamp skip the check for other connections' commits, and later ones still make it", async () => {
    const first = await open({ deferredVersions: { ...VERSIONS_KEPT_IN_LOG, inlineBatchCommits: 1 } });
    const second = await open({ deferredVersions: { ...VERSIONS_KEPT_IN_LOG, inlineBatchCommits: 1 } });
    // Counts the `PRAGMA data_version` checks (sqliteStorage.ts, header, 3): a read transaction each.
    let checks = 0;
    const statement = (first as unknown as { selectDataVersion: { get(): number } }).selectDataVersion;
    const get = statement.get.bind(statement);
    statement.get = () => {
      checks++;
      return get();
    };
    await commit(first, { ts: 1, documents: [put("a", "a1")], indexes: [entry("i", [1], "a")] });
    expect(rows(first.db, "SELECT count(*) FROM documents")).toBe(1);
    checks = 0;
    expect(await first.getDocument("a", 1)).toMatchObject({ body: "a1" });
    expect(await scanAll(first, "i", 1)).toEqual([[[1], "a1"]]);
    expect(checks).toBe(0);
    // Another connection's commit is newer than anything the first has seen: reads at it check, and see it.
    await commit(second, { ts: 2, documents: [put("a", "a2")], indexes: [entry("i", [1], "a")] }, 1);
    expect(await first.getDocument("a", 2)).toMatchObject({ body: "a2" });
    expect(await scanAll(first, "i", 2)).toEqual([[[1], "a2"]]);
    expect(checks).toBeGreaterThan(0);
    await first.close();
    await second.close();
  });

  it("shows one connection's logged versions to another, which can write them to the tables", async () => {
    const first = await open();
    const second = await open();
    await commit(first, { ts: 1, documents: [put("a", "a1")], indexes: [entry("i", [1], "a")] });
    expect(await second.getDocument("a", 1)).toMatchObject({ body: "a1" });
    expect(await scanAll(second, "i", 1)).toEqual([[[1], "a1"]]);
    // The second connection writes the first one's versions; the first then reads them from the tables.
    second.writePendingVersions();
    expect(rows(first.db, "SELECT count(*) FROM documents")).toBe(1);
    await commit(first, { ts: 2, documents: [put("a", "a2")], indexes: [] }, 1);
    expect(await scanAll(first, "i", 2)).toEqual([[[1], "a2"]]);
    expect(await scanAll(second, "i", 2)).toEqual([[[1], "a2"]]);
    expect(await scanAll(second, "i", 1)).toEqual([[[1], "a1"]]);
    await commit(second, { ts: 3, documents: [put("b", "b3")], indexes: [entry("i", [0], "b"), entry("i", [1], null)] }, 2);
    expect(keysOf(await first.scan({ indexId: "i", range: {}, order: "desc", readTs: 3, limit: 10 }))).toEqual([[0]]);
    await first.close();
    await second.close();
  });

  it("serves and then writes the versions a crashed process logged but never wrote", async () => {
    const crashed = await open({ backgroundCheckpoints: false });
    await commit(crashed, { ts: 1, documents: [put("a", "a1")], indexes: [entry("i", [1], "a")] });
    await commit(crashed, { ts: 2, documents: [put("a", "a2")], indexes: [] }, 1);
    // The connection goes away without the storage's close, which would have written them.
    crashed.db.close();
    const reopened = await open({ deferredVersions: { ...VERSIONS_KEPT_IN_LOG, delayMs: 0 } });
    expect(await scanAll(reopened, "i", 2)).toEqual([[[1], "a2"]]);
    expect(await reopened.getDocument("a", 1)).toMatchObject({ body: "a1" });
    // Opening schedules the write of what it found pending.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(rows(reopened.db, "SELECT count(*) FROM documents")).toBe(2);
    expect(rows(reopened.db, "SELECT materialized_through FROM clock")).toBe(2);
    await reopened.close();
  });

  it("serves and writes what another connection left pending even with deferredVersions false", async () => {
    const crashed = await open({ backgroundCheckpoints: false });
    await commit(crashed, { ts: 1, documents: [put("a", "a1")], indexes: [entry("i", [1], "a")] });
    crashed.db.close();
    const inline = await open({ deferredVersions: false });
    expect(await scanAll(inline, "i", 1)).toEqual([[[1], "a1"]]);
    expect(rows(inline.db, "SELECT count(*) FROM documents")).toBe(0);
    inline.writePendingVersions();
    expect(rows(inline.db, "SELECT count(*) FROM documents")).toBe(1);
    expect(rows(inline.db, "SELECT materialized_through FROM clock")).toBe(1);
    await inline.close();
  });

  it("refuses new commits once it is far behind and cannot write its tables, and catches up when it can", async () => {
    const storage = await open({ deferredVersions: { maxCommits: 2, maxBytes: 1e12, delayMs: 1e9 } });
    // A table that refuses every insert stands in for a full disk.
    storage.db.exec("CREATE TRIGGER full_disk BEFORE INSERT ON documents BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END");
    let ts = 0;
    // Up to 16 times the limit is logged (every read sees it) while the writes keep failing.
    for (; ts < 32; ts++) await commit(storage, { ts: ts + 1, documents: [put(`d${ts}`, "{}")], indexes: [] }, ts);
    await expect(commit(storage, { ts: 33, documents: [put("late", "{}")], indexes: [] }, 32)).rejects.toThrow(
      /cannot be written to their tables \(database or disk is full\).*Nothing was written/,
    );
    expect(await storage.latestTimestamp()).toBe(32);
    expect(await storage.getDocument("d31", 32)).toMatchObject({ body: "{}" });
    storage.db.exec("DROP TRIGGER full_disk");
    await commit(storage, { ts: 33, documents: [put("late", "{}")], indexes: [] }, 32);
    expect(rows(storage.db, "SELECT count(*) FROM documents")).toBeGreaterThanOrEqual(32);
    await storage.close();
  });

  it("migrates a schema-5 database: what it holds is in the tables, and new commits are logged", async () => {
    const raw = new Database(filename);
    for (const migration of MIGRATIONS.slice(0, 5)) applyMigration(raw, migration);
    raw.pragma("user_version = 5");
    raw.exec(`INSERT INTO documents (id, ts, table_name, body) VALUES ('x', 1, 't', 'x1');
              INSERT INTO commit_log (ts, id, log) VALUES (1, 'c1', x'01');`);
    raw.close();
    const storage = await open();
    expect(rows(storage.db, "SELECT materialized_through FROM clock")).toBe(1);
    expect(await storage.getDocument("x", 1)).toMatchObject({ body: "x1" });
    await commit(storage, { ts: 2, documents: [put("x", "x2", "t")], indexes: [] }, 1);
    expect(await storage.getDocument("x", 2)).toMatchObject({ body: "x2" });
    expect(await storage.getDocument("x", 1)).toMatchObject({ body: "x1" });
    await storage.close();
  });

  it("opens a schema-6 file whose log still holds versions as JSON text, serves them, and logs new commits as bytes", async () => {
    const raw = new Database(filename);
    for (const migration of MIGRATIONS.slice(0, 6)) applyMigration(raw, migration);
    raw.pragma("user_version = 6");
    // A commit that schema 6 logged and did not write to its tables before the process stopped.
    const writes = JSON.stringify([5, [["x", "t", "x1", 1]], [["t.k", String.fromCharCode(0, 200), "x", 1]], [["r1", "done"]]]);
    raw.prepare("INSERT INTO commit_log (ts, id, log, writes) VALUES (1, 'c1', x'01', ?)").run(writes);
    raw.close();

    const storage = await open();
    expect(await storage.getDocument("x", 1)).toMatchObject({ body: "x1" });
    expect(await scanAll(storage, "t.k", 1)).toEqual([[[0, 200], "x1"]]);
    expect(await storage.getReceipt("r1")).toEqual({ ts: 1, body: "done" });
    await commit(storage, { ts: 2, documents: [put("y", "y2", "t")], indexes: [entry("t.k", [1], "y")] }, 1);
    expect(rows(storage.db, "SELECT group_concat(typeof(writes), ',') FROM (SELECT writes FROM commit_log ORDER BY ts)")).toBe("text,blob");
    storage.writePendingVersions();
    expect(rows(storage.db, "SELECT count(*) FROM documents")).toBe(2);
    expect(await scanAll(storage, "t.k", 2)).toEqual([[[0, 200], "x1"], [[1], "y2"]]);
    await storage.close();
  });

  it("under FULL, appends at NORMAL throughout and makes commits durable through whenDurable, also after writing pending versions failed", async () => {
    const storage = await open();
    const synchronous = () => storage.db.pragma("synchronous", { simple: true });
    // The log is synced by the storage itself (walSync.ts), never inside a COMMIT.
    expect(synchronous()).toBe(1);
    await commit(storage, { ts: 1, documents: [put("a", "a1")], indexes: [] });
    await storage.whenDurable!(1);
    expect(storage.whenDurable!(1)).toBeNull();
    storage.writePendingVersions();
    expect(rows(storage.db, "SELECT count(*) FROM documents")).toBe(1);
    storage.db.exec("CREATE TRIGGER full_disk BEFORE INSERT ON documents BEGIN SELECT RAISE(ABORT, 'disk full'); END");
    await commit(storage, { ts: 2, documents: [put("b", "b2")], indexes: [] }, 1);
    expect(() => storage.writePendingVersions()).toThrow(/disk full/);
    expect(synchronous()).toBe(1);
    await storage.whenDurable!(2);
    expect(storage.whenDurable!(2)).toBeNull();
    storage.db.exec("DROP TRIGGER full_disk");
    await storage.close();
  });

  it("under FULL, syncs the versions its timer writes on their own (in the background), but not the ones written on a commit's path", async () => {
    // The timer's write comes in the pause after a commit; syncing it then spares the next
    // commit's sync those pages (scheduleMaterialize says why).
    const original = WalSync.prototype.syncInBackground;
    let synced = 0;
    WalSync.prototype.syncInBackground = function (this: WalSync) {
      synced += 1;
      return original.call(this);
    };
    try {
      const storage = await open({ deferredVersions: { ...VERSIONS_KEPT_IN_LOG, delayMs: 1, maxCommits: 2 } });
      await commit(storage, { ts: 1, documents: [put("a", "a1")], indexes: [] });
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(rows(storage.db, "SELECT count(*) FROM documents")).toBe(1); // written by the timer
      expect(synced).toBe(1);
      await commit(storage, { ts: 2, documents: [put("b", "b2")], indexes: [] }, 1);
      await commit(storage, { ts: 3, documents: [put("c", "c3")], indexes: [] }, 2);
      expect(rows(storage.db, "SELECT count(*) FROM documents")).toBe(3); // at once past maxCommits
      expect(synced).toBe(1);
      await storage.close();
    } finally {
      WalSync.prototype.syncInBackground = original;
    }
  });

  it.each([
    ["logged one by one, their versions written later", 1, undefined],
    ["each written in its own transaction", 1, false],
    ["written in batches of 32 (group commit)", 32, undefined],
  ] as const)("tells the checkpointer about as many pages as commits %s add to the log", async (_, perBatch, deferredVersions) => {
    // Nothing checkpoints here, so the log's growth is every frame written. The checkpointer's
    // passes go by this estimate: counting a page and a half per row, they ran up to nine
    // times as often as SQLite's own cadence.
    const never = { passPages: 1e9, restartPages: 1e9, backstopPages: 1e9, idleMs: 1e9 };
    const storage = await openSqliteStorage({ filename, synchronous: "normal", backgroundCheckpoints: never, ...(deferredVersions === false ? { deferredVersions } : {}) });
    let estimated = 0;
    const checkpointer = storage.checkpointer!;
    const afterCommit = checkpointer.afterCommit.bind(checkpointer);
    checkpointer.afterCommit = (pages) => {
      estimated += pages;
      afterCommit(pages);
    };
    const walBytes = () => statSync(`${filename}-wal`).size;
    const before = walBytes();
    const body = JSON.stringify({ text: "x".repeat(100) });
    const oneDocument = (ts: number) => {
      const key = [ts >> 8, ts & 255];
      return { ts, documents: [{ id: `d${ts}`, table: "t", body }], indexes: [entry("by_id", key, `d${ts}`), entry("by_time", key, `d${ts}`), entry("by_key", key, `d${ts}`)] };
    };
    const commits = 640;
    for (let first = 1; first <= commits; first += perBatch) {
      await commitAll(storage, Array.from({ length: perBatch }, (_, i) => oneDocument(first + i)), first - 1);
    }
    storage.writePendingVersions();
    const frames = (walBytes() - before) / (4096 + 24);
    expect(frames).toBeGreaterThan(commits / perBatch); // every transaction wrote a page at least
    expect(estimated / frames).toBeGreaterThan(0.5);
    expect(estimated / frames).toBeLessThan(2);
    await storage.close();
  });

  it("rejects bad deferredVersions options, naming the one", async () => {
    await expect(openSqliteStorage({ filename, deferredVersions: { maxCommits: 0 } })).rejects.toThrow(/deferredVersions\.maxCommits/);
    await expect(openSqliteStorage({ filename, deferredVersions: { delayMs: -1 } })).rejects.toThrow(/deferredVersions\.delayMs/);
    await expect(openSqliteStorage({ filename, deferredVersions: true as unknown as false })).rejects.toThrow(/deferredVersions must be false or an object/);
    // Refused before the file was opened.
    await expect(access(filename)).rejects.toThrow();
  });
});

import { spawn } from "node:child_process";
import { existsSync, statSync, unlinkSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { storageConformanceSuite } from "../conformance.js";
import { withLatency } from "../latency.js";
import type { Storage } from "../types.js";
import { commit, entry, keysOf, put } from "../conformance/context.js";
import { scanSql } from "./scan.js";
import { MIGRATIONS, applyMigration } from "./schema.js";
import { openSqliteStorage, type SqliteStorage } from "./sqliteStorage.js";

const countVersions = (storage: Storage) => (storage as SqliteStorage).stats();

storageConformanceSuite("sqlite file", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-sqlite-"));
  const filename = path.join(dir, "walkin.sqlite");
  // Tiny pruning batches, so batch boundaries fall everywhere in the randomized histories.
  const open = () => openSqliteStorage({ filename, pruneBatchSize: 3 });
  return { storage: await open(), reopen: open, openSecond: open, countVersions, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

// The same file at a networked database's latency: every read waits 0–2 ms and every commit
// 2 ms, so commits are in flight while other calls run.
storageConformanceSuite("sqlite file, with latency", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-sqlite-"));
  const filename = path.join(dir, "walkin.sqlite");
  const open = async () => withLatency(await openSqliteStorage({ filename, pruneBatchSize: 3 }), { read: [0, 2], commit: 2 });
  return { storage: await open(), reopen: open, openSecond: open, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

// Deferred versions at their extremes: kept in the log until a sweep, `stats` or close writes
// them (the overlay answers nearly every read), written every third commit (reads merge the
// overlay with the tables), and written in each commit's own transaction.
for (const [name, deferredVersions] of [
  ["kept in the log", { maxCommits: 1e6, maxBytes: 1e12, delayMs: 1e9, inlineBatchCommits: 1e6, inlineBatchRows: 1e6 }],
  ["written every third commit", { maxCommits: 3, delayMs: 1e9, inlineBatchCommits: 1e6, inlineBatchRows: 1e6 }],
  ["written in each commit", false],
] as const) {
  storageConformanceSuite(`sqlite file, versions ${name}`, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-sqlite-"));
    const filename = path.join(dir, "walkin.sqlite");
    const open = () => openSqliteStorage({ filename, pruneBatchSize: 3, deferredVersions });
    return { storage: await open(), reopen: open, openSecond: open, countVersions, cleanup: () => rm(dir, { recursive: true, force: true }) };
  });
}

storageConformanceSuite("sqlite :memory:", async () => ({
  storage: await openSqliteStorage({ filename: ":memory:" }),
  countVersions,
  cleanup: async () => {},
}));

describe("SqliteStorage", () => {
  let dir: string;
  /** A new file in `dir` at an older schema version, as that version created it. */
  const databaseAtVersion = (version: number) => {
    const filename = path.join(dir, `v${version}.sqlite`);
    const raw = new Database(filename);
    for (const migration of MIGRATIONS.slice(0, version)) applyMigration(raw, migration);
    raw.pragma(`user_version = ${version}`);
    return { filename, raw };
  };
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "walkin-sqlite-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("uses WAL with synchronous=FULL by default, NORMAL on request", async () => {
    const full = await openSqliteStorage({ filename: path.join(dir, "full.sqlite") });
    expect(full.db.pragma("journal_mode", { simple: true })).toBe("wal");
    // FULL's sync of the log is the storage's own (walSync.ts): the connection appends at
    // NORMAL, and the engine waits for whenDurable before it shows a commit.
    expect(full.db.pragma("synchronous", { simple: true })).toBe(1);
    expect(full.whenDurable).toBeTypeOf("function");
    expect(full.db.pragma("busy_timeout", { simple: true })).toBeGreaterThan(0);
    expect(full.name).toBe(`sqlite:${path.join(dir, "full.sqlite")}`);
    await full.close();
    const normal = await openSqliteStorage({ filename: path.join(dir, "normal.sqlite"), synchronous: "normal" });
    expect(normal.db.pragma("synchronous", { simple: true })).toBe(1);
    expect(normal.whenDurable).toBeUndefined();
    await normal.close();
  });

  it("serves every scan from the primary key, point reads' LIMIT variants and scans without bodies too: no table scan, no sort", async () => {
    const storage = await openSqliteStorage({ filename: ":memory:" });
    // The first commit that writes index "i" creates its entry table.
    await commit(storage, { ts: 1, documents: [{ id: "a", table: "t", body: "{}" }], indexes: [{ indexId: "i", key: new Uint8Array([1]), docId: "a" }] });
    storage.writePendingVersions();
    const table = storage.db.prepare<[string], string>("SELECT 'entries_' || number FROM index_tables WHERE index_id = ?").pluck().get("i")!;
    for (const order of ["asc", "desc"] as const) {
      // The statements of scanVersions (no bodies) too.
      for (const [bounded, limit, withBodies] of [true, false].flatMap((b) => [undefined, 1, 2].flatMap((l) => [true, false].map((w) => [b, l, w] as const)))) {
        const params = { lower: Buffer.alloc(0), readTs: 1, ...(bounded && { upper: Buffer.from([1]) }) };
        const plan = storage.db
          .prepare<[object], { detail: string }>(`EXPLAIN QUERY PLAN ${scanSql(table, order, bounded, limit, withBodies)}`)
          .all(params)
          .map((row) => row.detail);
        const range = bounded ? "key>? AND key<?" : "key>?";
        expect(plan).toContain(`SEARCH ${table} USING PRIMARY KEY (${range})`);
        expect(plan.filter((line) => /^SEARCH (documents|version) /.test(line))).toHaveLength(2);
        for (const line of plan) {
          expect(line).not.toMatch(/TEMP B-TREE/);
          // The only SCAN allowed is over the grouped rows the inner query streams out.
          if (line.startsWith("SCAN")) expect(line).toBe("SCAN live");
        }
      }
    }
    await storage.close();
  });

  it("keeps the newest timestamp when pruning deletes the whole log, across reopen and connections", async () => {
    // Commits write no clock row: their log rows say the newest timestamp. Pruning must carry it
    // into the clock first, or deleting the log would move the clock back to an old value.
    const filename = path.join(dir, "carried.sqlite");
    const first = await openSqliteStorage({ filename });
    for (let ts = 1; ts <= 4; ts++) await commit(first, { ts, documents: [{ id: `d${ts}`, table: "t", body: "{}" }], indexes: [] }, ts - 1);
    await first.pruneHistory(4);
    expect(await first.latestTimestamp()).toBe(4);
    expect(first.db.prepare("SELECT count(*) FROM commit_log").pluck().get()).toBe(0);
    const second = await openSqliteStorage({ filename });
    expect(await second.latestTimestamp()).toBe(4);
    await expect(commit(second, { ts: 4, documents: [], indexes: [] }, 4)).rejects.toThrow(/timestamp/i);
    await commit(second, { ts: 6, documents: [], indexes: [] }, 4);
    // Pruning past the newest commit empties the log again; the trim mark stops at the newest.
    // (The second connection reads nothing old: it says so, or it would hold the prune back.)
    second.raiseReadFloor(100);
    await first.pruneHistory(100);
    await first.close();
    await second.close();
    const reopened = await openSqliteStorage({ filename });
    expect(await reopened.latestTimestamp()).toBe(6);
    expect(await reopened.commitsSince(0, 10)).toEqual({ latest: 6, commits: [], trimmedThrough: 6 });
    await commit(reopened, { ts: 7, documents: [], indexes: [] }, 6);
    expect(await reopened.latestTimestamp()).toBe(7);
    await reopened.close();
  });

  it("reports a sweep's own busy time, not the time it spent yielding to other work", async () => {
    const storage = await openSqliteStorage({ filename: path.join(dir, "busy.sqlite"), pruneBatchSize: 2 });
    for (let ts = 1; ts <= 40; ts++) await commit(storage, { ts, documents: [{ id: `d${ts % 4}`, table: "t", body: `{"n":${ts}}` }], indexes: [] }, ts - 1);
    // A clock the test drives: each reading moves it by 1 µs, and something else takes 20 ms
    // of it at every turn of the event loop while the sweep runs (no real time is measured).
    let clock = 0;
    const now = vi.spyOn(performance, "now").mockImplementation(() => (clock += 0.001));
    let hogging = true;
    let hogTurns = 0;
    const hogger = (async () => {
      while (hogging) {
        clock += 20;
        hogTurns++;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    try {
      const report = await storage.pruneHistory(40);
      hogging = false;
      await hogger;
      expect((await countVersions(storage)).documents).toBe(4);
      // The sweep yielded between its steps, and the hog ran at each of those turns...
      expect(hogTurns).toBeGreaterThan(5);
      // ...but none of the hog's time is the sweep's: its own steps read the clock a few times each.
      expect(report.busyMs).toBeGreaterThan(0);
      expect(report.busyMs).toBeLessThan(20);
    } finally {
      now.mockRestore();
    }
    await storage.close();
  });

  it("migrates a schema-2 database, whose clock row held the newest timestamp", async () => {
    const { filename, raw } = databaseAtVersion(2);
    // As schema 2 wrote them: a log trimmed through 3, commits 4 and 5 logged, the clock at 5.
    raw.exec(`INSERT INTO commit_log (ts, id, log) VALUES (4, 'c4', x''), (5, 'c5', x'01');
              UPDATE clock SET latest_ts = 5, log_trimmed_through = 3;`);
    raw.close();
    const storage = await openSqliteStorage({ filename });
    expect(await storage.latestTimestamp()).toBe(5);
    const view = await storage.commitsSince(3, 10);
    expect(view.latest).toBe(5);
    expect(view.trimmedThrough).toBe(3);
    expect(view.commits.map((c) => c.id)).toEqual(["c4", "c5"]);
    await storage.pruneHistory(5);
    expect(await storage.latestTimestamp()).toBe(5);
    await storage.close();
  });

  it("migrates a schema-3 database written before receipts: its data stays, receipts work", async () => {
    const { filename, raw } = databaseAtVersion(3);
    raw.exec(`INSERT INTO documents (id, ts, table_name, body) VALUES ('a', 1, 't', 'a1');
              INSERT INTO commit_log (ts, id, log) VALUES (1, 'c1', x'01');`);
    raw.close();
    const storage = await openSqliteStorage({ filename });
    expect(storage.db.pragma("user_version", { simple: true })).toBe(MIGRATIONS.length);
    expect(await storage.latestTimestamp()).toBe(1);
    expect((await storage.getDocument("a", 1))?.body).toBe("a1");
    expect(await storage.getReceipt("r")).toBeNull();
    await commit(storage, { ts: 2, documents: [], indexes: [], receipts: [{ key: "r", body: "b" }] }, 1);
    await storage.close();
    const reopened = await openSqliteStorage({ filename });
    expect(await reopened.getReceipt("r")).toEqual({ ts: 2, body: "b" });
    await reopened.close();
  });

  it("migrates a schema-8 database, moving documents and receipts into rowid tables keyed by an index, every row kept", async () => {
    const { filename, raw } = databaseAtVersion(8);
    const big = JSON.stringify({ text: "x".repeat(5_000) });
    raw.exec(`INSERT INTO documents (id, ts, table_name, body) VALUES ('a', 1, 't', 'a1'), ('a', 3, 't', NULL), ('b', 2, 't', '${big}');
              INSERT INTO receipts (key, ts, written_at, body) VALUES ('r1', 2, 100, '${big}'), ('r2', 3, 200, '"small"');
              INSERT INTO commit_log (ts, id, log) VALUES (3, 'c3', x'01');
              UPDATE clock SET materialized_through = 3;`);
    raw.close();
    const storage = await openSqliteStorage({ filename });
    expect(storage.db.pragma("user_version", { simple: true })).toBe(MIGRATIONS.length);
    const layout = storage.db.prepare<[], string>("SELECT sql FROM sqlite_master WHERE name = 'documents'").pluck().get()!;
    expect(layout).not.toMatch(/WITHOUT ROWID/);
    expect(storage.db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'documents'").pluck().all()).toEqual(["documents_versions"]);
    expect((await storage.getDocument("a", 1))?.body).toBe("a1");
    expect(await storage.getDocument("a", 3)).toBeNull();
    expect((await storage.getDocument("b", 3))?.body).toBe(big);
    // The (id, ts) index still refuses a version written twice.
    expect(() => storage.db.prepare("INSERT INTO documents (id, ts, table_name, body) VALUES ('b', 2, 't', '{}')").run()).toThrow(/UNIQUE/);
    expect(storage.db.prepare<[], string>("SELECT sql FROM sqlite_master WHERE name = 'receipts'").pluck().get()).not.toMatch(/WITHOUT ROWID/);
    expect(await storage.getReceipt("r1")).toEqual({ ts: 2, body: big });
    expect(await storage.getReceipt("r2")).toEqual({ ts: 3, body: '"small"' });
    // A receipt key already stored is still refused, and the age index still serves the pruning.
    await expect(commit(storage, { ts: 4, documents: [], indexes: [], receipts: [{ key: "r2", body: "again" }] }, 3)).rejects.toThrow();
    expect(storage.db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'receipts' ORDER BY name").pluck().all()).toEqual(["receipts_by_age", "receipts_keys"]);
    await storage.close();
  });

  it("migrates a schema-4 database, moving each index's entries into a table of its own", async () => {
    const { filename, raw } = databaseAtVersion(4);
    // As schema 4 wrote them: two indexes, "b" with a removed entry and a re-pointed one.
    raw.exec(`INSERT INTO documents (id, ts, table_name, body) VALUES ('x', 1, 't', 'x1'), ('y', 1, 't', 'y1'), ('y', 2, 't', 'y2');
              INSERT INTO index_entries (index_id, key, ts, doc_id) VALUES
                ('a', x'01', 1, 'x'), ('a', x'02', 1, 'y'),
                ('b', x'05', 1, 'x'), ('b', x'05', 2, NULL), ('b', x'06', 1, 'y'), ('b', x'07', 2, 'y');
              INSERT INTO commit_log (ts, id, log) VALUES (1, 'c1', x'01'), (2, 'c2', x'01');`);
    raw.close();
    const storage = await openSqliteStorage({ filename });
    expect(storage.db.pragma("user_version", { simple: true })).toBe(MIGRATIONS.length);
    const tables = storage.db.prepare<[], string>("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all();
    expect(tables).not.toContain("index_entries");
    expect(tables).toEqual(expect.arrayContaining(["entries_1", "entries_2", "index_tables"]));
    const scan = async (indexId: string, readTs: number) =>
      (await storage.scan({ indexId, range: {}, order: "asc", readTs, limit: 10 })).map((e) => [Array.from(e.key), e.doc.body]);
    expect(await scan("a", 2)).toEqual([[[1], "x1"], [[2], "y2"]]);
    expect(await scan("b", 1)).toEqual([[[5], "x1"], [[6], "y1"]]);
    expect(await scan("b", 2)).toEqual([[[6], "y2"], [[7], "y2"]]);
    expect(await storage.stats()).toEqual({ documents: 3, indexEntries: 6 });
    // The migrated tables take new commits, and a new index gets the next table.
    await commit(storage, { ts: 3, documents: [put("z", "z3")], indexes: [entry("a", [3], "z"), entry("c", [1], "z")] }, 2);
    expect(await scan("a", 3)).toEqual([[[1], "x1"], [[2], "y2"], [[3], "z3"]]);
    expect(await scan("c", 3)).toEqual([[[1], "z3"]]);
    storage.writePendingVersions();
    expect(storage.db.prepare("SELECT index_id, number FROM index_tables ORDER BY number").all()).toEqual([
      { index_id: "a", number: 1 },
      { index_id: "b", number: 2 },
      { index_id: "c", number: 3 },
    ]);
    await storage.close();
  });

  it("forgets an index table whose creating batch was rejected, and creates it again with the next write", async () => {
    // Versions written in the commit's transaction: a deferred commit is refused before any table is touched.
    const storage = await openSqliteStorage({ filename: path.join(dir, "rejected.sqlite"), deferredVersions: false });
    // The same index entry twice in one commit: the batch is rejected whole, after its first
    // entry created the index's table inside the rolled-back transaction.
    await expect(
      commit(storage, { ts: 1, documents: [put("a", "a1")], indexes: [entry("fresh", [1], "a"), entry("fresh", [1], "a")] }),
    ).rejects.toThrow(/twice|repeat|more than once/i);
    expect(storage.db.prepare("SELECT count(*) FROM index_tables").pluck().get()).toBe(0);
    await commit(storage, { ts: 1, documents: [put("a", "a1")], indexes: [entry("fresh", [1], "a")] });
    expect(keysOf(await storage.scan({ indexId: "fresh", range: {}, order: "asc", readTs: 1, limit: 10 }))).toEqual([[1]]);
    await storage.close();
  });

  it("sees index tables another connection created, and writes to them rather than making its own", async () => {
    const filename = path.join(dir, "shared-indexes.sqlite");
    const first = await openSqliteStorage({ filename });
    const second = await openSqliteStorage({ filename });
    // The second connection looks (and finds nothing) before the table exists.
    expect(await second.scan({ indexId: "late", range: {}, order: "asc", readTs: 5, limit: 10 })).toEqual([]);
    await commit(first, { ts: 1, documents: [put("a", "a1")], indexes: [entry("late", [1], "a")] });
    first.writePendingVersions();
    expect(keysOf(await second.scan({ indexId: "late", range: {}, order: "asc", readTs: 1, limit: 10 }))).toEqual([[1]]);
    await commit(second, { ts: 2, documents: [put("b", "b2")], indexes: [entry("late", [2], "b")] }, 1);
    second.writePendingVersions();
    expect(keysOf(await first.scan({ indexId: "late", range: {}, order: "asc", readTs: 2, limit: 10 }))).toEqual([[1], [2]]);
    expect(first.db.prepare("SELECT count(*) FROM index_tables").pluck().get()).toBe(1);
    await first.close();
    await second.close();
  });

  it("checkpoints from a worker thread, keeps the log bounded, and stops the worker on close", { timeout: 60_000 }, async () => {
    const filename = path.join(dir, "background.sqlite");
    // SQLite's own automatic checkpoint far away (100,000 pages), so only the worker and the
    // restart it asks for can keep the log short.
    const options = { passPages: 50, restartPages: 200, backstopPages: 100_000, idleMs: 50 };
    const storage = await openSqliteStorage({ filename, synchronous: "normal", backgroundCheckpoints: options });
    expect(storage.checkpointer?.running).toBe(false); // started only once a pass is due
    const body = JSON.stringify({ text: "x".repeat(300) });
    const write = (ts: number) => {
      const key = new Uint8Array([ts >> 8, ts & 255]);
      return commit(storage, { ts, documents: [{ id: `d${ts}`, table: "t", body }], indexes: [{ indexId: "i", key, docId: `d${ts}` }] }, ts - 1);
    };
    // The worker starts with the first pass due. Starting a thread that loads the driver can
    // take longer than the whole burst below on a loaded machine (CI runs test files in
    // parallel), which says nothing about whether a running worker keeps up: so wait until it
    // has copied pages into the database file, which only a checkpoint does.
    const warmUp = 200;
    for (let ts = 1; ts <= warmUp; ts++) await write(ts);
    expect(storage.checkpointer?.running).toBe(true);
    const fileBytes = statSync(filename).size;
    await vi.waitFor(() => expect(statSync(filename).size).toBeGreaterThan(fileBytes), { timeout: 20_000, interval: 10 });
    const commits = 3_000;
    for (let ts = warmUp + 1; ts <= commits; ts++) await write(ts);
    // Each commit writes about 2 pages (its log row's leaf, and its share of the versions
    // written 64 commits at a time): with no checkpoint catching up with the log, so that the
    // next commit starts it over, it would now hold about 5,600. The worker's passes, and the
    // pause for a restart it asks the main connection for when they fall behind
    // (checkpointer.ts), keep it far below, even a few passes late on a busy machine. The file
    // keeps its high-water mark, so ask SQLite how long the log is now.
    const [{ log }] = storage.db.pragma("wal_checkpoint(PASSIVE)") as [{ log: number }];
    expect(log).toBeLessThan(3_000);
    await storage.close();
    expect(storage.checkpointer?.running).toBe(false);
    const reopened = await openSqliteStorage({ filename });
    expect(await reopened.latestTimestamp()).toBe(commits);
    expect((await reopened.stats()).documents).toBe(commits);
    await reopened.close();
  });

  it("restarts the log by pausing the next commit when commits never leave the worker a gap", { timeout: 60_000 }, async () => {
    // Back-to-back commits of ~77 pages each, in a script of their own (restart-child.fixture.ts):
    // every worker pass overlaps an append, so the worker alone never finds the whole log copied
    // at a moment a writer begins, which is the only moment the log starts over. Only the pause
    // it asks the main connection for lets it (checkpointer.ts, steps 1-4). A log that never
    // started over would be about 31,000 pages long (measured: 30,811-32,443 with the pause
    // turned off); with it, 3,200-4,500 pages (2026-12-03). Two things used to spoil the pause
    // here, each caught by this test in most runs: the worker retried its passes before asking
    // while the commits outpaced them (8,752-30,856 pages), and the timed write of pending
    // versions ran in the middle of a pause (4,900-30,781; the next test isolates it).
    const filename = path.join(dir, "restart.sqlite");
    const { stdout, code, stderr } = await runScript(restartFixture, [filename]);
    // Exit code 13 is Node's "unsettled top-level await": the pause let the event loop run dry.
    expect(code, stderr).toBe(0);
    const { commits, walPages, earlySyncs } = JSON.parse(stdout) as { commits: number; walPages: number; earlySyncs: number };
    expect(commits).toBe(401);
    expect(walPages).toBeLessThan(12_000);
    // Each pause was asked for after the worker synced the database file itself, so that the
    // pause's pass only synced its own few pages (checkpointer.ts, "Why the worker syncs first").
    if (process.platform !== "win32") expect(earlySyncs).toBeGreaterThan(0);
    const reopened = await openSqliteStorage({ filename });
    expect(await reopened.latestTimestamp()).toBe(401);
    await reopened.close();
  });

  it("shows each commit the log as it is after its own last commit: another connection's commits, and a prune's trim", async () => {
    // A commit skips reading the log while nothing but its own connection wrote since its last
    // commit (sqliteStorage.ts, `logSince`): these are the two ways that stops being true.
    const filename = path.join(dir, "own-clock.sqlite");
    const a = await openSqliteStorage({ filename });
    const b = await openSqliteStorage({ filename });
    expect((await commit(a, { ts: 1, documents: [put("x", "x1")], indexes: [] })).view.latest).toBe(0);
    expect((await commit(a, { ts: 2, documents: [put("x", "x2")], indexes: [] }, 1)).view.latest).toBe(1);
    await commit(b, { ts: 3, documents: [put("y", "y3")], indexes: [] }, 2);
    const afterOther = (await commit(a, { ts: 4, documents: [put("x", "x4")], indexes: [] }, 2)).view;
    expect(afterOther.latest).toBe(3);
    expect(afterOther.commits.map((c) => c.ts)).toEqual([3]);

    b.raiseReadFloor(4); // b reads nothing below 4 (else it holds a's prune back: fileFloors.ts)
    await a.pruneHistory(4);
    const trimmed = (await a.commitsSince(4, 10)).trimmedThrough;
    expect(trimmed).toBeGreaterThan(0);
    const afterPrune = (await commit(a, { ts: 5, documents: [put("x", "x5")], indexes: [] }, 4)).view;
    expect(afterPrune).toEqual({ latest: 4, commits: [], trimmedThrough: trimmed });
    // And with nothing else written in between, the same answers as reading the log would give.
    const next = (await commit(a, { ts: 6, documents: [put("x", "x6")], indexes: [] }, 5)).view;
    expect(next).toEqual({ latest: 5, commits: [], trimmedThrough: trimmed });
    expect(await a.latestTimestamp()).toBe(6);
    await b.close();
    await a.close();
  });

  it("writes pending versions after a pause for a log restart, not in the middle of it", async () => {
    // No worker starts (passPages is never reached): the test plays its part. The write of the
    // pending versions is due 1 ms after the commit; a pause for a restart asked meanwhile must
    // hold it back, as it holds back commits, or the worker's pass would not copy the whole log.
    const filename = path.join(dir, "pause.sqlite");
    const storage = await openSqliteStorage({
      filename,
      synchronous: "normal",
      backgroundCheckpoints: { passPages: 1e9, restartPages: 1e9, backstopPages: 1e9, idleMs: 2_000 },
      deferredVersions: { delayMs: 1 },
    });
    const checkpointer = storage.checkpointer!;
    const documents = () => storage.db.prepare<[], number>("SELECT count(*) FROM documents").pluck().get();
    await commit(storage, { ts: 1, documents: [put("a", "a1")], indexes: [] });
    // Step 1 of checkpointer.ts's module comment, as the worker does it: RESTART (slot 2) = ASKED (1).
    (checkpointer as unknown as { shared: Int32Array }).shared[2] = 1;
    expect(checkpointer.writeShouldWait).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The timer fired and paused instead of writing; the pause waits for a worker that never answers.
    expect(checkpointer.writeShouldWait).toBe(true);
    expect(documents()).toBe(0);
    expect(await storage.getDocument("a", 1)).toMatchObject({ body: "a1" });
    // After the pause gives up (idleMs), the versions are written.
    await vi.waitFor(() => expect(documents()).toBe(1), { timeout: 10_000, interval: 20 });
    expect(checkpointer.writeShouldWait).toBe(false);
    await storage.close();
  });

  it("hands checkpoints back to SQLite when the worker cannot run", async () => {
    const filename = path.join(dir, "orphan.sqlite");
    const storage = await openSqliteStorage({ filename, backgroundCheckpoints: { passPages: 1 } });
    expect(storage.db.pragma("wal_autocheckpoint", { simple: true })).toBe(10_000);
    // The open connection keeps working on the unlinked file; the worker, which opens the file
    // when its first pass is due, finds nothing there and fails.
    unlinkSync(filename);
    await commit(storage, { ts: 1, documents: [{ id: "a", table: "t", body: "{}" }], indexes: [] });
    await vi.waitFor(() => expect(storage.checkpointer?.running).toBe(false), { timeout: 10_000 });
    expect(storage.db.pragma("wal_autocheckpoint", { simple: true })).toBe(1000);
    await commit(storage, { ts: 2, documents: [], indexes: [] }, 1);
    expect(await storage.latestTimestamp()).toBe(2);
    await storage.close();
  });

  it("leaves checkpoints to SQLite when background checkpoints are off or the database is in memory", async () => {
    const off = await openSqliteStorage({ filename: path.join(dir, "inline.sqlite"), backgroundCheckpoints: false });
    expect(off.checkpointer).toBeNull();
    expect(off.db.pragma("wal_autocheckpoint", { simple: true })).toBe(1000);
    await off.close();
    const memory = await openSqliteStorage({ filename: ":memory:" });
    expect(memory.checkpointer).toBeNull();
    await memory.close();
  });

  it("checkpoints from the worker by default under synchronous=NORMAL only, and under FULL when asked", async () => {
    // Under FULL the worker's longer log makes fresh files' commits pay for growing it
    // (checkpointer.ts, "Only under synchronous=NORMAL"), so SQLite checkpoints inline there.
    const full = await openSqliteStorage({ filename: path.join(dir, "full.sqlite") });
    expect(full.checkpointer).toBeNull();
    expect(full.db.pragma("wal_autocheckpoint", { simple: true })).toBe(1000);
    await full.close();
    const normal = await openSqliteStorage({ filename: path.join(dir, "normal.sqlite"), synchronous: "normal" });
    expect(normal.checkpointer).not.toBeNull();
    expect(normal.db.pragma("wal_autocheckpoint", { simple: true })).toBe(10_000);
    await normal.close();
    const asked = await openSqliteStorage({ filename: path.join(dir, "full-worker.sqlite"), backgroundCheckpoints: true });
    expect(asked.checkpointer).not.toBeNull();
    await asked.close();
  });

  it("refuses bad backgroundCheckpoints settings with an error that names them, before touching the file", async () => {
    const filename = path.join(dir, "bad-checkpoints.sqlite");
    const open = (backgroundCheckpoints: unknown) => openSqliteStorage({ filename, backgroundCheckpoints: backgroundCheckpoints as boolean });
    await expect(open("false")).rejects.toThrow(/backgroundCheckpoints must be true, false or an object of settings \(passPages, restartPages, backstopPages, idleMs\), got "false"/);
    await expect(open({ passpages: 10 })).rejects.toThrow(/backgroundCheckpoints has no setting "passpages"; the settings are passPages, restartPages, backstopPages, idleMs/);
    await expect(open({ toString: 5 })).rejects.toThrow(/backgroundCheckpoints has no setting "toString"/);
    await expect(open({ restartPages: 0 })).rejects.toThrow(/backgroundCheckpoints\.restartPages must be a whole number >= 1, got 0/);
    await expect(open({ idleMs: 2.5 })).rejects.toThrow(/backgroundCheckpoints\.idleMs must be a whole number >= 1, got 2\.5/);
    expect(existsSync(filename)).toBe(false);
  });

  it("refuses a database written by a newer schema version", async () => {
    const filename = path.join(dir, "future.sqlite");
    const raw = new Database(filename);
    raw.pragma("user_version = 99");
    raw.close();
    await expect(openSqliteStorage({ filename })).rejects.toThrow(/schema version 99.*Upgrade Walk-in/);
  });

  it("rejects bad scan limits and pruning batch sizes", async () => {
    const storage = await openSqliteStorage({ filename: ":memory:" });
    await expect(storage.scan({ indexId: "i", range: {}, order: "asc", readTs: 1, limit: -1 })).rejects.toThrow(/limit/);
    await storage.close();
    await expect(openSqliteStorage({ filename: ":memory:", pruneBatchSize: 0 })).rejects.toThrow(/pruneBatchSize/);
  });

  it("keeps every acknowledged commit when the process is killed with SIGKILL", { timeout: 120_000 }, async () => {
    const filename = path.join(dir, "killed.sqlite");
    const modes = ["full", "full", "full", "full", "normal", "normal"] as const;
    for (const [round, synchronous] of modes.entries()) {
      const killAfter = 1 + Math.floor(Math.random() * 50);
      const acknowledged = await commitUntilKilled(filename, synchronous, killAfter);
      expect(acknowledged.length, `round ${round}`).toBeGreaterThanOrEqual(killAfter);

      const storage = await openSqliteStorage({ filename });
      const latest = await storage.latestTimestamp();
      expect(latest).toBeGreaterThanOrEqual(Math.max(...acknowledged));
      for (const ts of acknowledged) {
        expect(await storage.getDocument(`doc${ts}`, latest), `round ${round}, ts ${ts}`).not.toBeNull();
      }
      // Index entries came with their documents: one per commit, none half-written.
      const entries = await storage.scan({ indexId: "byTs", range: {}, order: "asc", readTs: latest, limit: 1e9 });
      expect(entries.map((e) => e.doc.id)).toEqual(Array.from({ length: latest }, (_, i) => `doc${i + 1}`));
      await storage.close();
    }
  });
});

const fixture = fileURLToPath(new URL("./kill-child.fixture.ts", import.meta.url));
const restartFixture = fileURLToPath(new URL("./restart-child.fixture.ts", import.meta.url));
const projectRoot = fileURLToPath(new URL("../../..", import.meta.url));

/** Runs a TypeScript script to its end: its output and exit code. */
function runScript(script: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: projectRoot, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ stdout, stderr, code }));
  });
}

/**
 * Runs the committing child and SIGKILLs it right after it acknowledges `killAfter` commits.
 * Resolves with every ts it acknowledged, including lines that were in the pipe at the kill.
 */
function commitUntilKilled(filename: string, synchronous: "full" | "normal", killAfter: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", fixture, filename, synchronous], {
      cwd: projectRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const acknowledged: number[] = [];
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const match = /^committed (\d+)$/.exec(line);
      if (match === null) return;
      acknowledged.push(Number(match[1]));
      if (acknowledged.length === killAfter) child.kill("SIGKILL");
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (signal === "SIGKILL") resolve(acknowledged);
      else reject(new Error(`child exited with code ${code} before being killed:\n${stderr}`));
    });
  });
}

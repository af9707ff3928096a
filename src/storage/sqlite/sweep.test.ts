/**
 * The SQLite history sweep (prune.ts): the write-set sweep removes the garbage of the groups
 * this storage wrote, and only those; the full pass finds the rest (from before a restart, from
 * another connection, after the write-set map overflowed) and is spread over several calls
 * when it is longer than its budget. Exactness of pruning itself is the conformance suite's.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { commit, commitAll, entry, fresh, put, remove, type TestCommit } from "../conformance/context.js";
import { SWEEP_DOCUMENT_SQL, sweepEntrySql } from "./dirtyGroups.js";
import { openSqliteStorage, type SqliteStorage, type SqliteStorageOptions } from "./sqliteStorage.js";

let dir: string;
let filename: string;
const opened: SqliteStorage[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "walkin-sweep-"));
  filename = path.join(dir, "walkin.sqlite");
});
afterEach(async () => {
  for (const storage of opened.splice(0)) await storage.close();
  await rm(dir, { recursive: true, force: true });
});

async function open(options: Partial<SqliteStorageOptions> = {}): Promise<SqliteStorage> {
  const storage = await openSqliteStorage({ filename, ...options });
  opened.push(storage);
  return storage;
}

/** Commits one commit after the storage's latest; returns its timestamp. */
async function write(storage: SqliteStorage, one: Omit<TestCommit, "ts">): Promise<number> {
  const ts = (await storage.latestTimestamp()) + 1;
  await commit(storage, { ...one, ts }, ts - 1);
  return ts;
}

/** `count` documents d0, d1, … inserted as the engine inserts: hinted fresh, with a fresh `byN` entry each. */
async function insertFresh(storage: SqliteStorage, count: number): Promise<void> {
  const documents = [];
  const indexes = [];
  for (let n = 0; n < count; n++) {
    documents.push(fresh(put(`d${n}`, `{"n":${n}}`)));
    indexes.push(fresh(entry("byN", [n, 0], `d${n}`)));
  }
  await write(storage, { documents, indexes });
}

/** Moves document `dN` to key [N, round]: a new document version, the old entry removed, a new one. */
async function update(storage: SqliteStorage, n: number, round: number): Promise<number> {
  return write(storage, {
    documents: [put(`d${n}`, `{"n":${n},"round":${round}}`)],
    indexes: [entry("byN", [n, round - 1], null), entry("byN", [n, round], `d${n}`)],
  });
}

describe("the write-set sweep", () => {
  it("removes the garbage of the documents written since the last sweep, without a full pass", async () => {
    const storage = await open();
    await insertFresh(storage, 10);
    const first = await storage.pruneHistory(await storage.latestTimestamp());
    // The file was new when opened: nothing predates the write sets, so no pass (a reopened
    // file's first sweep passes: "after a restart", below).
    expect(first).toMatchObject({ fullPassBatches: 0, fullPassPending: false });
    for (const n of [2, 5, 7]) await update(storage, n, 1);
    for (const n of [2, 5]) await update(storage, n, 2);
    const report = await storage.pruneHistory(await storage.latestTimestamp());
    // 3 documents, and the keys [n,0], [n,1], [n,2] their updates wrote: 3 + 3 + 2 of them.
    expect(report).toMatchObject({ groupsSwept: 3 + 8, fullPassBatches: 0, fullPassPending: false });
    // One version per document and one live entry each are left, as if every version had been walked.
    expect(await storage.stats()).toEqual({ documents: 10, indexEntries: 10 });
    expect((await storage.pruneHistory(await storage.latestTimestamp())).groupsSwept).toBe(0);
  });

  it("remembers nothing of writes hinted fresh, except deletions", async () => {
    const storage = await open();
    await storage.pruneHistory(0);
    await insertFresh(storage, 20);
    expect((await storage.pruneHistory(await storage.latestTimestamp())).groupsSwept).toBe(0);
    // A deletion hinted fresh is a tombstone all the same: garbage once the sweep passes it.
    await write(storage, { documents: [fresh(remove("gone"))], indexes: [fresh(entry("byN", [99], null))] });
    expect((await storage.pruneHistory(await storage.latestTimestamp())).groupsSwept).toBe(2);
    expect(await storage.stats()).toEqual({ documents: 20, indexEntries: 20 });
  });

  it("keeps a group whose newest version is above the prune timestamp, and sweeps it again later", async () => {
    const storage = await open();
    await insertFresh(storage, 1);
    await storage.pruneHistory(1);
    const second = await update(storage, 0, 1);
    await update(storage, 0, 2);
    await storage.pruneHistory(second); // the first version goes; the group still has one above
    expect(await storage.stats()).toEqual({ documents: 2, indexEntries: 3 });
    await storage.pruneHistory(await storage.latestTimestamp());
    expect(await storage.stats()).toEqual({ documents: 1, indexEntries: 1 });
  });

  it("sweeps a commit that landed while a sweep was yielding, at the next sweep", async () => {
    const storage = await open({ pruneBatchSize: 1 });
    await insertFresh(storage, 5);
    await storage.pruneHistory(1);
    for (let n = 0; n < 5; n++) await update(storage, n, 1);
    const pruning = storage.pruneHistory(await storage.latestTimestamp());
    // The sweep takes one group per step, d0 first, and yields after each: by the time this
    // runs it has swept d0 (and dropped it from its map: d0's newest version was at or before
    // the prune timestamp), and d0 is written again before the sweep is done.
    await new Promise((resolve) => setImmediate(resolve));
    await update(storage, 0, 2);
    await pruning;
    expect((await storage.stats()).documents).toBe(6);
    await storage.pruneHistory(await storage.latestTimestamp());
    expect(await storage.stats()).toEqual({ documents: 5, indexEntries: 5 });
  });

  it("falls back to a full pass when more groups were written than it remembers", async () => {
    const storage = await open({ historySweep: { maxDirtyGroups: 4 } });
    await insertFresh(storage, 10);
    await storage.pruneHistory(1);
    // One batch of 3 commits writing 5 documents each: 5 groups, one more than remembered.
    await commitAll(storage, [1, 2, 3].map((round) => ({
      ts: 1 + round,
      documents: [0, 1, 2, 3, 4].map((n) => put(`d${n}`, `{"round":${round}}`)),
      indexes: [],
    })), 1);
    const report = await storage.pruneHistory(await storage.latestTimestamp());
    expect(report.groupsSwept).toBe(0); // forgotten
    expect(report.fullPassBatches).toBeGreaterThan(0);
    expect(await storage.stats()).toEqual({ documents: 10, indexEntries: 10 });
    // Once the pass covered the forgotten writes, sweeps are back to the write sets alone.
    await update(storage, 9, 1);
    expect(await storage.pruneHistory(await storage.latestTimestamp())).toMatchObject({ groupsSwept: 3, fullPassBatches: 0 });
  });

  it("deletes each group's garbage with a seek of its key: the documents' (id, ts) index, an entry table's primary key", async () => {
    const storage = await open();
    const plan = (sql: string, params: object) =>
      storage.db.prepare<[object], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`).all(params).map((row) => row.detail);
    const documents = plan(SWEEP_DOCUMENT_SQL, { id: "d0", pruneTs: 1 });
    expect(documents[0]).toMatch(/^SEARCH old USING INDEX documents_versions \(id=\? AND ts<\?\)$/);
    // An index has its entry table once a commit wrote it (indexTables.ts).
    await insertFresh(storage, 1);
    storage.writePendingVersions();
    const table = storage.db.prepare<[string], string>("SELECT 'entries_' || number FROM index_tables WHERE index_id = ?").pluck().get("byN")!;
    const entries = plan(sweepEntrySql(table), { key: Buffer.from([1]), pruneTs: 1 });
    expect(entries[0]).toMatch(/^SEARCH old USING PRIMARY KEY \(key=\? AND ts<\?\)$/);
    for (const line of [...documents, ...entries]) expect(line).not.toMatch(/^SCAN/);
  });
});

describe("the full pass", () => {
  /** Writes 30 documents with 3 versions each and closes the storage: garbage its successor cannot know of. */
  async function leaveGarbage(): Promise<void> {
    const before = await openSqliteStorage({ filename });
    await insertFresh(before, 30);
    for (let round = 1; round <= 2; round++) for (let n = 0; n < 30; n++) await update(before, n, round);
    await before.close();
  }

  it("after a restart, removes the garbage the previous process left, in the first sweep", async () => {
    await leaveGarbage();
    const storage = await open();
    expect(await storage.stats()).toEqual({ documents: 90, indexEntries: 150 });
    const report = await storage.pruneHistory(await storage.latestTimestamp());
    expect(report).toMatchObject({ groupsSwept: 0, fullPassPending: false });
    expect(await storage.stats()).toEqual({ documents: 30, indexEntries: 30 });
    // The pass is not repeated at every sweep.
    expect((await storage.pruneHistory(await storage.latestTimestamp())).fullPassBatches).toBe(0);
  });

  it("after a restart, passes again until one ran at a prune timestamp past everything the previous process wrote", async () => {
    await leaveGarbage();
    const storage = await open();
    const latest = await storage.latestTimestamp();
    // An old snapshot holds the prune timestamp back: the pass removes what is garbage by then.
    const held = Math.floor(latest / 2);
    expect((await storage.pruneHistory(held)).fullPassBatches).toBeGreaterThan(0);
    const atHeld = await storage.stats();
    expect(atHeld.documents).toBeGreaterThan(30);
    // Held at the same timestamp, another pass would find nothing more: none starts.
    expect((await storage.pruneHistory(held)).fullPassBatches).toBe(0);
    expect(await storage.stats()).toEqual(atHeld);
    // Once the prune timestamp moves on, a pass covers the rest of the previous process's writes.
    expect((await storage.pruneHistory(latest)).fullPassBatches).toBeGreaterThan(0);
    expect(await storage.stats()).toEqual({ documents: 30, indexEntries: 30 });
  });

  it("spreads a pass longer than its budget over several sweeps, exact at the end, with commits in between", async () => {
    await leaveGarbage();
    // 2 rows a batch, 3 batches a sweep: 240 rows take about 40 sweeps.
    const storage = await open({ pruneBatchSize: 2, historySweep: { fullPassRowsPerCall: 6 } });
    let sweeps = 0;
    let round = 2;
    for (let pending = true; pending; sweeps++) {
      // Updates behind and ahead of the pass's cursor: the write-set sweep has them.
      if (sweeps % 10 === 5) {
        round++;
        for (const n of [1, 28]) await update(storage, n, round);
      }
      const report = await storage.pruneHistory(await storage.latestTimestamp());
      expect(report.fullPassBatches).toBeLessThanOrEqual(3);
      pending = report.fullPassPending;
    }
    expect(sweeps).toBeGreaterThan(10);
    expect(await storage.stats()).toEqual({ documents: 30, indexEntries: 30 });
  });

  it("walks only the rows stored when it started, however fast inserts add rows ahead of it", async () => {
    await leaveGarbage();
    // One batch of 2 rows a sweep, and 6 rows inserted before each at the end of every range.
    const storage = await open({ pruneBatchSize: 2, historySweep: { fullPassRowsPerCall: 2 } });
    let sweeps = 0;
    for (let pending = true; pending && sweeps < 1_000; sweeps++) {
      const documents = [0, 1, 2].map((n) => fresh(put(`z${sweeps}-${n}`, "{}")));
      const indexes = documents.map((doc) => fresh(entry("byN", [200, sweeps, Number(doc.id.at(-1))], doc.id)));
      await write(storage, { documents, indexes });
      pending = (await storage.pruneHistory(await storage.latestTimestamp())).fullPassPending;
    }
    // 240 rows at the start, 2 a sweep (a little more, batches end on group boundaries).
    expect(sweeps).toBeLessThanOrEqual(130);
    expect(await storage.stats()).toEqual({ documents: 30 + 3 * sweeps, indexEntries: 30 + 3 * sweeps });
  });

  it("finds another connection's garbage at the next periodic pass", async () => {
    const periodic = await open({ historySweep: { fullPassIntervalMs: 0 } });
    const hourly = await open({ historySweep: { fullPassIntervalMs: 3_600_000 } });
    await insertFresh(periodic, 3);
    await periodic.pruneHistory(1);
    await hourly.pruneHistory(1);
    const other = await open();
    for (let round = 1; round <= 3; round++) await update(other, 0, round);
    // The other connection writes its versions to their tables itself (whoever writes them knows them).
    other.writePendingVersions();
    const latest = await other.latestTimestamp();
    other.raiseReadFloor(latest); // it reads nothing older (or it holds the others' pruning back)
    // A storage knows only of its own writes until its next full pass is due...
    expect(await hourly.pruneHistory(latest)).toMatchObject({ groupsSwept: 0, fullPassBatches: 0 });
    expect((await hourly.stats()).documents).toBe(6);
    // ...which it is at once with an interval of 0.
    const report = await periodic.pruneHistory(latest);
    expect(report.fullPassBatches).toBeGreaterThan(0);
    expect(await periodic.stats()).toEqual({ documents: 3, indexEntries: 3 });
  });
});

describe("history sweep options", () => {
  it("refuses options that are not positive counts or a duration, saying which", async () => {
    await expect(openSqliteStorage({ filename: ":memory:", historySweep: { maxDirtyGroups: 0 } })).rejects.toThrow(/historySweep\.maxDirtyGroups/);
    await expect(openSqliteStorage({ filename: ":memory:", historySweep: { fullPassRowsPerCall: 1.5 } })).rejects.toThrow(/historySweep\.fullPassRowsPerCall/);
    await expect(openSqliteStorage({ filename: ":memory:", historySweep: { fullPassIntervalMs: -1 } })).rejects.toThrow(/historySweep\.fullPassIntervalMs/);
  });
});

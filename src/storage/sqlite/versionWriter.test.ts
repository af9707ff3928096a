/**
 * VersionWriter (versionWriter.ts): many pending commits written together give the same
 * tables as writing them one at a time, pruning on write included ("Order"), and a failed
 * write leaves nothing buffered for the next one.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { commit, entry, fresh, keysOf, put } from "../conformance/context.js";
import { IndexTables } from "./indexTables.js";
import { openSqliteStorage, type SqliteStorage, VERSIONS_KEPT_IN_LOG } from "./sqliteStorage.js";
import { VersionWriter } from "./versionWriter.js";

let dir: string;
let storage: SqliteStorage;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "walkin-version-writer-"));
  storage = await openSqliteStorage({ filename: path.join(dir, "walkin.sqlite"), deferredVersions: VERSIONS_KEPT_IN_LOG });
});
afterEach(async () => {
  await storage.close();
  await rm(dir, { recursive: true, force: true });
});

const versionsOf = (id: string) => storage.db.prepare<[string], number>("SELECT ts FROM documents WHERE id = ? ORDER BY ts").pluck().all(id);

it("prunes on write as if the pending commits were written one at a time", async () => {
  await commit(storage, { ts: 1, documents: [fresh(put("counter", "1"))], indexes: [] });
  storage.writePendingVersions();
  for (let ts = 2; ts <= 5; ts++) await commit(storage, { ts, documents: [put("counter", String(ts))], indexes: [] });
  storage.raiseReadFloor(5);
  storage.writePendingVersions(); // commits 2-5 in one transaction
  // Before writing 3, version 2 supersedes 1 at the floor; before 4, 3 supersedes 2; before 5,
  // 4 supersedes 3. Version 4 stays: 5 was not in the table when its delete ran.
  expect(versionsOf("counter")).toEqual([4, 5]);
  expect((await storage.getDocument("counter", 5))?.body).toBe("5");
});

it("prunes on write as if one at a time when pending commits interleave two documents", async () => {
  await commit(storage, { ts: 1, documents: [fresh(put("a", "a1")), fresh(put("b", "b1"))], indexes: [] });
  storage.writePendingVersions();
  await commit(storage, { ts: 2, documents: [put("a", "a2")], indexes: [] });
  await commit(storage, { ts: 3, documents: [put("b", "b3"), fresh(put("c", "c3"))], indexes: [] });
  await commit(storage, { ts: 4, documents: [put("a", "a4")], indexes: [] });
  await commit(storage, { ts: 5, documents: [put("b", "b5")], indexes: [] });
  storage.raiseReadFloor(5);
  storage.writePendingVersions();
  // One at a time: before a4, a2 supersedes a1; before b5, b3 supersedes b1.
  expect(versionsOf("a")).toEqual([2, 4]);
  expect(versionsOf("b")).toEqual([3, 5]);
  expect(versionsOf("c")).toEqual([3]);
});

it("writes every row of many pending commits (documents, entries of two indexes, receipts)", async () => {
  const count = 150; // 2 statements of 64 rows per table, 2 of 8 and 6 of 1
  for (let ts = 1; ts <= count; ts++) {
    await commit(storage, {
      ts,
      documents: [fresh(put(`d${ts}`, `body ${ts}`))],
      indexes: [fresh(entry("byNumber", [ts >> 8, ts & 255], `d${ts}`)), fresh(entry("byParity", [ts % 2, ts >> 8, ts & 255], `d${ts}`))],
      receipts: [{ key: `r${ts}`, body: `result ${ts}` }],
    });
  }
  storage.writePendingVersions();
  const count1 = (sql: string) => storage.db.prepare<[], number>(sql).pluck().get();
  expect(count1("SELECT count(*) FROM documents")).toBe(count);
  expect(count1("SELECT count(*) FROM receipts")).toBe(count);
  expect(count1("SELECT count(*) FROM commit_log WHERE writes IS NOT NULL")).toBe(count); // the log keeps its rows
  const scan = await storage.scan({ indexId: "byNumber", range: {}, order: "asc", readTs: count, limit: 1000 });
  expect(keysOf(scan)).toEqual(Array.from({ length: count }, (_, i) => [(i + 1) >> 8, (i + 1) & 255]));
  expect(scan.map((e) => e.doc.body)).toEqual(Array.from({ length: count }, (_, i) => `body ${i + 1}`));
  const odd = await storage.scan({ indexId: "byParity", range: { lower: { key: Uint8Array.from([1]), inclusive: true } }, order: "asc", readTs: count, limit: 1000 });
  expect(odd.map((e) => e.doc.id)).toEqual(Array.from({ length: count / 2 }, (_, i) => `d${2 * i + 1}`));
  expect(await storage.getReceipt("r77")).toEqual({ ts: 77, body: "result 77" });
});

it("leaves nothing buffered after a failed write: the next transaction writes only its own rows", () => {
  const { db } = storage;
  const tables = new IndexTables(db);
  const writer = new VersionWriter(db, tables);
  const pending = (ts: number, id: string) => ({
    commit: {
      ts,
      id: `c${ts}-${id}`,
      log: new Uint8Array(),
      documents: [put(id, `${id}@${ts}`)],
      indexes: [entry("i", [ts], id)],
      receipts: [{ key: `${id}@${ts}`, body: "" }],
    },
    writtenAt: 0,
    bytes: 0,
  });
  const write = (commits: ReturnType<typeof pending>[]) => {
    try {
      db.transaction(() => writer.write(commits, 0))();
      tables.settle(true);
    } catch (error) {
      tables.settle(false); // as the storage does after a failed transaction
      throw error;
    }
  };
  write([pending(50, "w")]); // index "i"'s table now exists, outside the failing transaction
  // Two versions of "x" at one timestamp: the documents' primary key refuses the second, after
  // the entries and receipts of both were buffered and before they were written.
  expect(() => write([pending(100, "x"), pending(100, "x")])).toThrow(/UNIQUE constraint failed: documents/);
  write([pending(200, "y")]);
  expect(db.prepare("SELECT id, ts FROM documents ORDER BY ts").all()).toEqual([{ id: "w", ts: 50 }, { id: "y", ts: 200 }]);
  expect(db.prepare(`SELECT ts, doc_id FROM ${tables.find("i")!.name} ORDER BY ts`).all()).toEqual([{ ts: 50, doc_id: "w" }, { ts: 200, doc_id: "y" }]);
  expect(db.prepare("SELECT key FROM receipts ORDER BY ts").pluck().all()).toEqual(["w@50", "y@200"]);
});

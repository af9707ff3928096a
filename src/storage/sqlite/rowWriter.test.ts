/**
 * RowWriter: buffered rows reach their table in order, many to a statement, and a failing
 * statement fails like a one-row INSERT and leaves nothing buffered behind.
 */
import Database from "better-sqlite3";
import { afterEach, beforeEach, expect, it } from "vitest";
import { RowWriter } from "./rowWriter.js";

let db: Database.Database;

beforeEach(() => {
  db = new Database(":memory:");
  db.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT, b BLOB)");
});
afterEach(() => db.close());

const all = () => db.prepare<[], { k: number; v: string; b: Buffer | null }>("SELECT k, v, b FROM t ORDER BY rowid").all();

it.each([0, 1, 7, 8, 9, 63, 64, 65, 137])("writes %i rows, in the order they were added", (count) => {
  const writer = new RowWriter(db, "t", ["k", "v", "b"]);
  // Keys descending, so that "ORDER BY rowid" (insertion order for an INTEGER PRIMARY KEY
  // table is key order) would not hide a reordering: k is the rowid, so read by v instead.
  for (let i = 0; i < count; i++) writer.add(1000 - i, `row ${String(i).padStart(3, "0")}`, i % 2 === 0 ? Buffer.from([i % 256]) : null);
  expect(writer.buffered).toBe(count);
  db.transaction(() => writer.flush())();
  expect(writer.buffered).toBe(0);
  const rows = db.prepare<[], { k: number; v: string; b: Buffer | null }>("SELECT k, v, b FROM t ORDER BY v").all();
  expect(rows).toEqual(Array.from({ length: count }, (_, i) => ({ k: 1000 - i, v: `row ${String(i).padStart(3, "0")}`, b: i % 2 === 0 ? Buffer.from([i % 256]) : null })));
});

it("fails as a one-row INSERT would on a constraint, and the caller's transaction writes nothing", () => {
  db.prepare("INSERT INTO t (k, v) VALUES (5, 'stored')").run();
  const writer = new RowWriter(db, "t", ["k", "v", "b"]);
  for (let k = 100; k < 170; k++) writer.add(k, "new", null);
  writer.add(5, "clash", null); // the 71st row: in the last, one-row statement
  expect(() => db.transaction(() => writer.flush())()).toThrow(/UNIQUE constraint failed: t\.k/);
  expect(all()).toEqual([{ k: 5, v: "stored", b: null }]);
  // The failed rows are gone from the buffer: the next flush writes only what is added now.
  writer.add(6, "next", null);
  db.transaction(() => writer.flush())();
  expect(all().map((row) => row.k)).toEqual([5, 6]);
});

it("refuses a row of the wrong width, naming the columns", () => {
  const writer = new RowWriter(db, "t", ["k", "v", "b"]);
  expect(() => writer.add(1, "two values")).toThrow("RowWriter(t): a row has 3 values (k, v, b), got 2.");
  expect(writer.buffered).toBe(0);
});

it("discard drops the buffered rows unwritten", () => {
  const writer = new RowWriter(db, "t", ["k", "v", "b"]);
  writer.add(1, "a", null);
  writer.discard();
  writer.flush();
  expect(all()).toEqual([]);
});

/**
 * Point reads (scan.ts, "Point reads"): a scan with the limit of `first()` or `unique()` and
 * nothing pending in its range takes its rows from a statement with the LIMIT written in. These
 * tests hold it to the answer of the general path: the first rows of the same range read with
 * a larger limit, in both orders, bounded or not, with documents that pending versions changed
 * or deleted after the table's rows were written.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bytes, commit, entry, plain, put, remove } from "../conformance/context.js";
import type { KeyRange } from "../types.js";
import { openSqliteStorage, type SqliteStorage, VERSIONS_KEPT_IN_LOG } from "./sqliteStorage.js";

describe("point reads", () => {
  let storage: SqliteStorage;

  beforeEach(async () => {
    storage = await openSqliteStorage({ filename: ":memory:", deferredVersions: VERSIONS_KEPT_IN_LOG });
    // Four documents and their entries at keys 1–4, in the tables.
    await commit(storage, {
      ts: 1,
      documents: ["a", "b", "c", "d"].map((id) => put(id, `${id}1`)),
      indexes: ["a", "b", "c", "d"].map((id, i) => entry("i", [i + 1], id)),
    });
    storage.writePendingVersions();
  });
  afterEach(async () => {
    await storage.close();
  });

  const between = (low: number, high: number): KeyRange => ({ lower: { key: bytes(low), inclusive: true }, upper: { key: bytes(high), inclusive: true } });
  /**
   * Open, bounded around every key, bounded inside them, and each end alone: with `a` or `d`
   * deleted (below), the last two hold one row, so a point read at limit 2 runs out of rows
   * there rather than stopping on the deleted one.
   */
  const ranges: Record<string, KeyRange> = { open: {}, all: between(1, 4), middle: between(2, 3), first: between(1, 1), last: between(4, 4) };

  /** Every point read of every range and order, next to the first rows of the same read at limit 100. */
  async function expectPointReadsAgree(readTs: number): Promise<number> {
    let checked = 0;
    for (const [name, range] of Object.entries(ranges)) {
      for (const order of ["asc", "desc"] as const) {
        const all = plain(await storage.scan({ indexId: "i", range, order, readTs, limit: 100 }));
        for (const limit of [1, 2]) {
          const point = plain(await storage.scan({ indexId: "i", range, order, readTs, limit }));
          expect(point, `${name} ${order} limit ${limit} at ${readTs}`).toEqual(all.slice(0, limit));
          checked++;
        }
      }
    }
    return checked;
  }

  it("answers as the general path does from the tables alone", async () => {
    expect(await expectPointReadsAgree(1)).toBe(20);
    expect(plain(await storage.scan({ indexId: "i", range: {}, order: "desc", readTs: 1, limit: 2 })).map((e) => e.doc.id)).toEqual(["d", "c"]);
  });

  it("patches documents that pending versions changed, and reads past the ones they deleted at either end of the range", async () => {
    // Pending, not in the tables: new bodies for b and c, and a and d deleted as documents while
    // their entries stay (the storage contract allows it; the scan must skip them). A point read
    // that stops at the limit on a deleted document has not read the row that takes its place.
    await commit(storage, { ts: 2, documents: [put("b", "b2"), put("c", "c2"), remove("a"), remove("d")], indexes: [] }, 1);
    expect(await expectPointReadsAgree(2)).toBe(20);
    const ids = async (order: "asc" | "desc", limit: number) =>
      (await storage.scan({ indexId: "i", range: {}, order, readTs: 2, limit })).map((e) => `${e.doc.id}:${e.doc.body}`);
    expect(await ids("asc", 1)).toEqual(["b:b2"]);
    expect(await ids("asc", 2)).toEqual(["b:b2", "c:c2"]);
    expect(await ids("desc", 2)).toEqual(["c:c2", "b:b2"]);
    // The snapshot before the pending commit still reads the tables' versions.
    expect((await storage.scan({ indexId: "i", range: {}, order: "asc", readTs: 1, limit: 1 })).map((e) => e.doc.body)).toEqual(["a1"]);
  });

  it("reads an index that has no table yet as empty", async () => {
    expect(await storage.scan({ indexId: "never-written", range: {}, order: "asc", readTs: 1, limit: 1 })).toEqual([]);
  });
});

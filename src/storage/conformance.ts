/**
 * The storage conformance suite: every promise of `Storage` (see `types.ts`) as vitest tests.
 * Every backend runs it; a backend is correct when the whole suite passes.
 *
 * This file owns the harness and the tests of timestamps, commits, documents, metadata, reopen
 * and `dropIndex` with `reclaimIndex`; scans, history pruning, the commit log and receipts live in `conformance/`.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Storage } from "./types.js";
import { put, remove, entry, keysOf, commit, commitAll, type SuiteContext } from "./conformance/context.js";
import { readSnapshot } from "./conformance/history.js";
import { scanTests, scanVersionsTests } from "./conformance/scan.js";
import { pruneTests } from "./conformance/prune.js";
import { commitLogTests, sharingTests } from "./conformance/sharing.js";
import { receiptTests } from "./conformance/receipts.js";

export interface StorageUnderTest {
  /** A fresh, empty storage. */
  storage: Storage;
  /** Opens the same data again after the suite closed the storage (durable backends). */
  reopen?: () => Promise<Storage>;
  /** Stored version counts over all snapshots, to check that pruning frees space. Optional. */
  countVersions?: (storage: Storage) => Promise<{ documents: number; indexEntries: number }>;
  /**
   * Opens a second connection to the same database while the first is open, as a second
   * engine would (a hot reload's new engine, another node). Tests of racing writers need it.
   */
  openSecond?: () => Promise<Storage>;
  /** Frees what the storage left behind (files, schemas). Runs after the suite closed it. */
  cleanup(): Promise<void>;
}

/**
 * Registers the conformance tests for one storage backend. `makeStorage` runs before every test.
 *
 * @example
 * storageConformanceSuite("sqlite :memory:", async () => ({
 *   storage: await openSqliteStorage({ filename: ":memory:" }),
 *   cleanup: async () => {},
 * }));
 */
export function storageConformanceSuite(name: string, makeStorage: () => Promise<StorageUnderTest>): void {
  describe(`Storage conformance: ${name}`, () => {
    let target: StorageUnderTest | undefined;
    let current: Storage;
    const ctx: SuiteContext = {
      get storage() {
        return current;
      },
      async reopen(skip) {
        const reopen = target?.reopen ?? skip("this storage cannot be reopened");
        await current.close();
        current = await reopen();
        return current;
      },
      countVersions: () => target?.countVersions?.(current),
      openSecond(skip) {
        const open = target?.openSecond ?? skip("this storage cannot open a second connection to the same database");
        return open();
      },
    };

    beforeEach(async () => {
      target = await makeStorage();
      current = target.storage;
    });
    afterEach(async () => {
      if (target === undefined) return; // makeStorage failed; its error is the one to report
      await current.close();
      await target.cleanup();
      target = undefined;
    });

    describe("timestamps and commits", () => commitTests(ctx));
    describe("getDocument", () => documentTests(ctx));
    describe("scan", () => scanTests(ctx));
    describe("scanVersions", () => scanVersionsTests(ctx));
    describe("dropIndex", () => dropIndexTests(ctx));
    describe("pruneHistory", () => pruneTests(ctx));
    describe("metadata", () => metaTests(ctx));
    describe("currentTime", () => clockTests(ctx));
    describe("commit log", () => commitLogTests(ctx));
    describe("several writers and readers", () => sharingTests(ctx));
    describe("receipts", () => receiptTests(ctx));
  });
}

function commitTests(ctx: SuiteContext): void {
  it("latestTimestamp is 0 for an empty store", async () => {
    expect(await ctx.storage.latestTimestamp()).toBe(0);
  });

  it("latestTimestamp is the newest commit's, even one that writes nothing", async () => {
    await commit(ctx.storage, { ts: 3, documents: [put("a", "1")], indexes: [] });
    expect(await ctx.storage.latestTimestamp()).toBe(3);
    await commit(ctx.storage, { ts: 7, documents: [], indexes: [] });
    expect(await ctx.storage.latestTimestamp()).toBe(7);
  });

  it("rejects a timestamp not greater than the latest with a clear error, writing nothing", async () => {
    const s = ctx.storage;
    await commit(s, { ts: 5, documents: [put("a", "a5")], indexes: [entry("i", [1], "a")] });
    for (const ts of [5, 4, 0, -1]) {
      const bad = { ts, documents: [put("a", "bad"), put("b", "bad")], indexes: [entry("i", [2], "b")] };
      await expect(commit(s, bad)).rejects.toThrow(/timestamp/i);
    }
    expect(await s.latestTimestamp()).toBe(5);
    for (const readTs of [0, 4, 5, 6, 100]) {
      expect((await s.getDocument("a", readTs))?.body ?? null).toBe(readTs >= 5 ? "a5" : null);
      expect(await s.getDocument("b", readTs)).toBeNull();
    }
    const all = await s.scan({ indexId: "i", range: {}, order: "asc", readTs: 100, limit: 10 });
    expect(keysOf(all)).toEqual([[1]]);
  });

  it("rejects timestamp 0 on an empty store", async () => {
    await expect(commit(ctx.storage, { ts: 0, documents: [put("a", "x")], indexes: [] })).rejects.toThrow(/timestamp/i);
    expect(await ctx.storage.latestTimestamp()).toBe(0);
  });

  it("a commit that fails part-way writes nothing, and its timestamp stays free", async () => {
    const s = ctx.storage;
    await commit(s, { ts: 1, documents: [put("a", "a1")], indexes: [entry("i", [1], "a")] });
    // The last write repeats an index entry of the same commit: no backend can store both.
    const failing = {
      ts: 2,
      documents: [put("a", "a2"), put("b", "b2"), remove("c")],
      indexes: [entry("i", [1], null), entry("i", [2], "b"), entry("i", [2], "b")],
    };
    await expect(commit(s, failing)).rejects.toThrow();
    expect(await s.latestTimestamp()).toBe(1);
    expect((await s.getDocument("a", 10))?.body).toBe("a1");
    expect(await s.getDocument("b", 10)).toBeNull();
    expect(keysOf(await s.scan({ indexId: "i", range: {}, order: "asc", readTs: 10, limit: 10 }))).toEqual([[1]]);

    await commit(s, { ts: 2, documents: [put("b", "b2")], indexes: [entry("i", [2], "b")] });
    expect((await s.getDocument("b", 2))?.body).toBe("b2");
  });

  it("refuses a commit that writes one document or one index entry twice, in a few writes or in many, writing nothing", async () => {
    const s = ctx.storage;
    await commit(s, { ts: 1, documents: [put("kept", "k1")], indexes: [entry("i", [0], "kept")] });
    // A storage may check this itself before writing anything (SQLite's deferred commits do, pair
    // by pair for a few writes and with a Set for many): both sizes, adjacent repeats and not.
    const entries = (n: number) => Array.from({ length: n }, (_, k) => entry("i", [100 + k], `d${k}`));
    const documents = (n: number) => Array.from({ length: n }, (_, k) => put(`d${k}`, "x"));
    const repeats = [
      { ts: 2, documents: [put("a", "a2"), put("a", "a3")], indexes: [] },
      { ts: 2, documents: [put("a", "a2")], indexes: [entry("i", [1], "a"), entry("i", [1], "a")] },
      { ts: 2, documents: [put("a", "a2"), put("b", "b2"), put("a", "a3")], indexes: [] },
      { ts: 2, documents: [put("a", "a2")], indexes: [entry("i", [1], "a"), entry("j", [1], "a"), entry("i", [1], "a")] },
      { ts: 2, documents: [...documents(12), put("d3", "y")], indexes: [] },
      { ts: 2, documents: [put("a", "a2")], indexes: [...entries(12), entry("i", [105], "a")] },
    ];
    for (const repeat of repeats) {
      await expect(commit(s, { ...repeat, receipts: [{ key: "lost", body: "x" }] }, 1)).rejects.toThrow(/twice/);
    }
    expect(await s.latestTimestamp()).toBe(1);
    expect(await s.getReceipt("lost")).toBeNull();
    expect(await s.getDocument("a", 2)).toBeNull();
    // One key in two indexes, or two keys of one index, are not repeats.
    await commit(s, { ts: 2, documents: [put("a", "a2")], indexes: [entry("i", [1], "a"), entry("j", [1], "a"), entry("i", [2], "a")] }, 1);
    expect(keysOf(await s.scan({ indexId: "i", range: {}, order: "asc", readTs: 2, limit: 10 }))).toEqual([[0], [1], [2]]);
  });

  it("commitBatch writes several commits in order, each visible at its own timestamp", async () => {
    const s = ctx.storage;
    await commitAll(s, [
      { ts: 1, documents: [put("a", "a1")], indexes: [entry("i", [1], "a")] },
      { ts: 2, documents: [put("a", "a2"), put("b", "b2")], indexes: [entry("i", [2], "b")] },
    ]);
    expect(await s.latestTimestamp()).toBe(2);
    expect((await s.getDocument("a", 1))?.body).toBe("a1");
    expect((await s.getDocument("a", 2))?.body).toBe("a2");
    expect(await s.getDocument("b", 1)).toBeNull();
    expect(keysOf(await s.scan({ indexId: "i", range: {}, order: "asc", readTs: 1, limit: 10 }))).toEqual([[1]]);
    expect(keysOf(await s.scan({ indexId: "i", range: {}, order: "asc", readTs: 2, limit: 10 }))).toEqual([[1], [2]]);
  });

  it("commitBatch is all or nothing: one bad commit writes none of the batch", async () => {
    const s = ctx.storage;
    await commit(s, { ts: 1, documents: [put("a", "a1")], indexes: [] });
    const batch = [
      { ts: 2, documents: [put("b", "b2")], indexes: [entry("i", [2], "b")] },
      { ts: 2, documents: [put("c", "c2")], indexes: [] }, // not greater than its predecessor
    ];
    await expect(commitAll(s, batch)).rejects.toThrow(/timestamp/i);
    expect(await s.latestTimestamp()).toBe(1);
    expect(await s.getDocument("b", 10)).toBeNull();
    expect(await s.scan({ indexId: "i", range: {}, order: "asc", readTs: 10, limit: 10 })).toEqual([]);
  });

  it("after reopen, every commit is visible exactly as before and the clock continues", async ({ skip }) => {
    const s = ctx.storage;
    await commit(s, {
      ts: 1,
      documents: [put("d0", "x"), put("d1", JSON.stringify({ value: [1] }))],
      indexes: [entry("byValue", [1, 1], "d1")],
    });
    await commit(s, { ts: 2, documents: [remove("d0")], indexes: [entry("byValue", [2, 0], "d1")] });
    await commit(s, { ts: 4, documents: [put("d1", "y")], indexes: [entry("byValue", [1, 1], null)] });
    const before = [];
    for (let readTs = 0; readTs <= 5; readTs++) before.push(await readSnapshot(s, readTs));
    const reopened = await ctx.reopen(skip);
    expect(await reopened.latestTimestamp()).toBe(4);
    for (let readTs = 0; readTs <= 5; readTs++) expect(await readSnapshot(reopened, readTs)).toEqual(before[readTs]);
    await expect(commit(reopened, { ts: 4, documents: [], indexes: [] })).rejects.toThrow(/timestamp/i);
    await commit(reopened, { ts: 5, documents: [put("d2", "z")], indexes: [] });
    expect((await reopened.getDocument("d2", 5))?.body).toBe("z");
  });
}

function documentTests(ctx: SuiteContext): void {
  it("returns null for an id never written, and for any id at readTs 0", async () => {
    await commit(ctx.storage, { ts: 1, documents: [put("a", "x")], indexes: [] });
    expect(await ctx.storage.getDocument("nope", 10)).toBeNull();
    expect(await ctx.storage.getDocument("a", 0)).toBeNull();
  });

  it("returns the newest version at or before readTs", async () => {
    const s = ctx.storage;
    for (const ts of [2, 5, 9]) await commit(s, { ts, documents: [put("a", `v${ts}`, "users")], indexes: [] });
    const expected: Record<number, number | null> = { 1: null, 2: 2, 4: 2, 5: 5, 8: 5, 9: 9, 100: 9 };
    for (const [readTs, ts] of Object.entries(expected)) {
      const version = ts === null ? null : { id: "a", table: "users", ts, body: `v${ts}` };
      expect(await s.getDocument("a", Number(readTs))).toEqual(version);
    }
  });

  it("a tombstone hides the document from its ts on; older snapshots still see it", async () => {
    const s = ctx.storage;
    await commit(s, { ts: 1, documents: [put("a", "first")], indexes: [] });
    await commit(s, { ts: 3, documents: [remove("a")], indexes: [] });
    await commit(s, { ts: 6, documents: [put("a", "again")], indexes: [] });
    expect((await s.getDocument("a", 2))?.body).toBe("first");
    expect(await s.getDocument("a", 3)).toBeNull();
    expect(await s.getDocument("a", 5)).toBeNull();
    expect(await s.getDocument("a", 6)).toEqual({ id: "a", table: "things", ts: 6, body: "again" });
  });

  it("keeps documents of different ids and tables apart", async () => {
    const s = ctx.storage;
    await commit(s, { ts: 1, documents: [put("u1", "user", "users"), put("m1", "message", "messages")], indexes: [] });
    await commit(s, { ts: 2, documents: [remove("u1", "users")], indexes: [] });
    expect(await s.getDocument("m1", 2)).toEqual({ id: "m1", table: "messages", ts: 1, body: "message" });
    expect(await s.getDocument("u1", 1)).toEqual({ id: "u1", table: "users", ts: 1, body: "user" });
    expect(await s.getDocument("u1", 2)).toBeNull();
  });

  it("stores bodies exactly, including non-ASCII text and large documents", async () => {
    const bodies = ["", "héllo wörld ✓ 🎉 \u2028", JSON.stringify({ big: "x".repeat(1 << 20) })];
    await commit(ctx.storage, { ts: 1, documents: bodies.map((b, i) => put(`d${i}`, b)), indexes: [] });
    for (const [i, b] of bodies.entries()) expect((await ctx.storage.getDocument(`d${i}`, 1))?.body).toBe(b);
  });
}

function dropIndexTests(ctx: SuiteContext): void {
  it("removes every version of that index only, and the index can be rebuilt", async () => {
    const s = ctx.storage;
    await commit(s, { ts: 1, documents: [put("a", "a")], indexes: [entry("old", [1], "a"), entry("keep", [1], "a")] });
    await commit(s, {
      ts: 2,
      documents: [put("b", "b")],
      indexes: [entry("old", [1], null), entry("old", [2], "b"), entry("keep", [2], "b")],
    });
    await s.dropIndex("old");
    await s.dropIndex("never-existed");
    for (const readTs of [1, 2, 3]) {
      expect(await s.scan({ indexId: "old", range: {}, order: "asc", readTs, limit: 10 })).toEqual([]);
    }
    expect(keysOf(await s.scan({ indexId: "keep", range: {}, order: "asc", readTs: 2, limit: 10 }))).toEqual([[1], [2]]);
    expect((await s.getDocument("a", 2))?.body).toBe("a");

    await commit(s, { ts: 3, documents: [], indexes: [entry("old", [9], "b")] });
    expect(keysOf(await s.scan({ indexId: "old", range: {}, order: "asc", readTs: 3, limit: 10 }))).toEqual([[9]]);
  });

  it("reclaimIndex, alone, removes that index's entries only when its guard allows, reading the guard's metadata in its transaction", async () => {
    const s = ctx.storage;
    await commit(s, { ts: 1, documents: [put("a", "a")], indexes: [entry("old", [1], "a"), entry("keep", [1], "a")] });
    const seen: Array<string | null> = [];
    const refuse = { metaKey: "registry", allows: (value: string | null) => (seen.push(value), false) };
    expect(await s.reclaimIndex("old", refuse)).toBe(false);
    expect(keysOf(await s.scan({ indexId: "old", range: {}, order: "asc", readTs: 1, limit: 10 }))).toEqual([[1]]);
    await s.setMeta("registry", "retired: old");
    const allow = { metaKey: "registry", allows: (value: string | null) => (seen.push(value), value === "retired: old") };
    expect(await s.reclaimIndex("old", allow)).toBe(true);
    expect(seen).toEqual([null, "retired: old"]);
    expect(await s.scan({ indexId: "old", range: {}, order: "asc", readTs: 1, limit: 10 })).toEqual([]);
    expect(keysOf(await s.scan({ indexId: "keep", range: {}, order: "asc", readTs: 1, limit: 10 }))).toEqual([[1]]);
    expect(await s.reclaimIndex("never-existed", allow)).toBe(true);
  });

  it("reclaimIndex removes an index of many thousand entries whole (storages may delete it a batch at a time)", async () => {
    const s = ctx.storage;
    const many = Array.from({ length: 12_001 }, (_, i) => entry("big", [i >> 8, i & 0xff], "a"));
    await commit(s, { ts: 1, documents: [put("a", "a")], indexes: [...many, entry("keep", [1], "a")] });
    expect(await s.reclaimIndex("big", { metaKey: "registry", allows: () => true })).toBe(true);
    expect(await s.scan({ indexId: "big", range: {}, order: "asc", readTs: 1, limit: 10 })).toEqual([]);
    expect(keysOf(await s.scan({ indexId: "keep", range: {}, order: "asc", readTs: 1, limit: 10 }))).toEqual([[1]]);
  });

  it("reclaimIndex removes nothing and answers false while another connection has the database open, and reclaims once it closes", async ({ skip }) => {
    const s = ctx.storage;
    await commit(s, { ts: 1, documents: [put("a", "a")], indexes: [entry("old", [1], "a"), entry("old", [2], "a")] });
    const second = await ctx.openSecond(skip);
    const allow = { metaKey: "registry", allows: () => true };
    try {
      expect(await s.reclaimIndex("old", allow)).toBe(false);
      expect(await second.reclaimIndex("old", allow)).toBe(false);
      expect(keysOf(await second.scan({ indexId: "old", range: {}, order: "asc", readTs: 1, limit: 10 }))).toEqual([[1], [2]]);
    } finally {
      await second.close();
    }
    expect(keysOf(await s.scan({ indexId: "old", range: {}, order: "asc", readTs: 1, limit: 10 }))).toEqual([[1], [2]]);
    expect(await s.reclaimIndex("old", allow)).toBe(true);
    expect(await s.scan({ indexId: "old", range: {}, order: "asc", readTs: 1, limit: 10 })).toEqual([]);
  });
}

function metaTests(ctx: SuiteContext): void {
  it("gets, sets and overwrites values, independently of commits", async () => {
    const s = ctx.storage;
    expect(await s.getMeta("tables")).toBeNull();
    await s.setMeta("tables", "[1]");
    await s.setMeta("indexes", "{}");
    await s.setMeta("tables", "[1,2] ✓");
    expect(await s.getMeta("tables")).toBe("[1,2] ✓");
    expect(await s.getMeta("indexes")).toBe("{}");
    expect(await s.latestTimestamp()).toBe(0);
  });

  it("persists across reopen", async ({ skip }) => {
    await ctx.storage.setMeta("tables", "v1");
    await ctx.storage.setMeta("tables", "v2");
    const reopened = await ctx.reopen(skip);
    expect(await reopened.getMeta("tables")).toBe("v2");
    expect(await reopened.getMeta("other")).toBeNull();
  });
}

function clockTests(ctx: SuiteContext): void {
  // The database's clock, where the storage has one (scheduler.ts, "Clocks"): a time in ms since
  // the epoch that moves forward. The database runs on this machine in the tests, so it agrees
  // with this process's clock up to the call's own duration, give or take a clock step.
  it("is the database's time, in ms since the epoch, and moves forward", async ({ skip }) => {
    const currentTime = ctx.storage.currentTime?.bind(ctx.storage) ?? skip("this storage has no clock of its own (its processes share the machine's)");
    const before = Date.now();
    const first = await currentTime();
    const after = Date.now();
    expect(Number.isFinite(first)).toBe(true);
    expect(first).toBeGreaterThanOrEqual(before - 1_000);
    expect(first).toBeLessThanOrEqual(after + 1_000);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await currentTime()).toBeGreaterThan(first);
  });
}

/**
 * Conformance tests of receipts (`Commit.receipts`, `getReceipt`, `pruneReceipts`): written
 * atomically with their commit, unique by key, outside every snapshot, kept until pruned by age.
 */
import { expect, it } from "vitest";
import { isRepeatedReceipt, type Storage } from "../types.js";
import { commit, commitAll, entry, put, type SuiteContext } from "./context.js";

/** Resolves once `Date.now()` has moved past `after`, so that writes before and after differ in time. */
async function clockPast(after: number): Promise<void> {
  while (Date.now() <= after) await new Promise((resolve) => setTimeout(resolve, 1));
}

async function writeReceipt(s: Storage, ts: number, key: string, body = `body of ${key}`): Promise<void> {
  await commit(s, { ts, documents: [], indexes: [], receipts: [{ key, body }] });
}

export function receiptTests(ctx: SuiteContext): void {
  it("a receipt is written with its commit and read back by key with the commit's timestamp", async () => {
    const s = ctx.storage;
    expect(await s.getReceipt("r1")).toBeNull();
    await commit(s, { ts: 4, documents: [put("a", "a4")], indexes: [entry("i", [1], "a")], receipts: [{ key: "r1", body: "one" }] });
    await commitAll(s, [
      { ts: 5, documents: [], indexes: [], receipts: [{ key: "r2", body: "two" }, { key: "r3", body: "" }] },
      { ts: 6, documents: [put("b", "b6")], indexes: [] },
      { ts: 7, documents: [], indexes: [], receipts: [{ key: "ключ ✓", body: "{\"result\":[1,2]}" }] },
    ]);
    expect(await s.getReceipt("r1")).toEqual({ ts: 4, body: "one" });
    expect(await s.getReceipt("r2")).toEqual({ ts: 5, body: "two" });
    expect(await s.getReceipt("r3")).toEqual({ ts: 5, body: "" });
    expect(await s.getReceipt("ключ ✓")).toEqual({ ts: 7, body: "{\"result\":[1,2]}" });
    expect(await s.getReceipt("r")).toBeNull();
    expect(await s.latestTimestamp()).toBe(7);
  });

  it("a batch that fails writes none of its receipts", async () => {
    const s = ctx.storage;
    await writeReceipt(s, 1, "kept");
    // A timestamp not above the previous one: refused before anything is written.
    await expect(commitAll(s, [
      { ts: 2, documents: [], indexes: [], receipts: [{ key: "lost-1", body: "x" }] },
      { ts: 2, documents: [], indexes: [], receipts: [{ key: "lost-2", body: "x" }] },
    ])).rejects.toThrow(/timestamp/i);
    // A repeated index entry: refused by the database, part-way through the writes.
    await expect(commit(s, {
      ts: 2,
      documents: [put("a", "a2")],
      indexes: [entry("i", [1], "a"), entry("i", [1], "a")],
      receipts: [{ key: "lost-3", body: "x" }],
    })).rejects.toThrow();
    for (const key of ["lost-1", "lost-2", "lost-3"]) expect(await s.getReceipt(key), key).toBeNull();
    expect(await s.getReceipt("kept")).toEqual({ ts: 1, body: "body of kept" });
    expect(await s.latestTimestamp()).toBe(1);
  });

  it("rejects a batch whose receipt key is already stored or repeated, writing nothing of it", async () => {
    const s = ctx.storage;
    await writeReceipt(s, 1, "taken", "first");
    // A RepeatedReceiptError: the engine re-runs the batch's mutations at once for it
    // (clientRequests.ts, "First sends", c).
    const taken = commit(s, { ts: 2, documents: [put("a", "a2")], indexes: [], receipts: [{ key: "taken", body: "second" }] });
    await expect(taken).rejects.toThrow(/receipt/i);
    await expect(taken).rejects.toSatisfy(isRepeatedReceipt);
    const twice = commitAll(s, [
      { ts: 2, documents: [put("b", "b2")], indexes: [], receipts: [{ key: "twice", body: "x" }] },
      { ts: 3, documents: [], indexes: [], receipts: [{ key: "twice", body: "y" }] },
    ]);
    await expect(twice).rejects.toThrow(/receipt/i);
    await expect(twice).rejects.toSatisfy(isRepeatedReceipt);
    expect(await s.getReceipt("taken")).toEqual({ ts: 1, body: "first" });
    expect(await s.getReceipt("twice")).toBeNull();
    expect(await s.getDocument("a", 10)).toBeNull();
    expect(await s.getDocument("b", 10)).toBeNull();
    expect(await s.latestTimestamp()).toBe(1);
  });

  it("rejects malformed receipts with an error that says what a receipt must be", async () => {
    const s = ctx.storage;
    for (const receipts of [[{ key: "", body: "x" }], [{ key: "k", body: null }], [{ key: "k".repeat(1025), body: "x" }], "k"]) {
      await expect(commit(s, { ts: 1, documents: [], indexes: [], receipts: receipts as never })).rejects.toThrow(/receipt/i);
    }
    expect(await s.latestTimestamp()).toBe(0);
  });

  it("receipts are not versioned: any reader sees them once their commit landed, and pruning history keeps them", async () => {
    const s = ctx.storage;
    await writeReceipt(s, 3, "r");
    await commit(s, { ts: 9, documents: [put("a", "a9")], indexes: [] });
    await s.pruneHistory(9);
    expect(await s.getReceipt("r")).toEqual({ ts: 3, body: "body of r" });
  });

  it("another connection to the same database reads a receipt once its commit landed", async ({ skip }) => {
    const second = await ctx.openSecond(skip);
    try {
      expect(await second.getReceipt("r")).toBeNull();
      await writeReceipt(ctx.storage, 1, "r");
      expect(await second.getReceipt("r")).toEqual({ ts: 1, body: "body of r" });
    } finally {
      await second.close();
    }
  });

  it("receipts survive reopening the storage", async ({ skip }) => {
    await writeReceipt(ctx.storage, 2, "durable");
    const reopened = await ctx.reopen(skip);
    expect(await reopened.getReceipt("durable")).toEqual({ ts: 2, body: "body of durable" });
  });

  it("pruneReceipts deletes receipts written before a time, oldest first, at most `limit` per call", async () => {
    const s = ctx.storage;
    for (let ts = 1; ts <= 3; ts++) await writeReceipt(s, ts, `old-${ts}`);
    await clockPast(Date.now());
    const cut = Date.now();
    await writeReceipt(s, 4, "new");
    expect(await s.pruneReceipts(cut, 2)).toBe(2);
    expect(await s.getReceipt("old-1")).toBeNull();
    expect(await s.getReceipt("old-2")).toBeNull();
    expect(await s.getReceipt("old-3")).toEqual({ ts: 3, body: "body of old-3" });
    expect(await s.pruneReceipts(cut, 2)).toBe(1);
    expect(await s.pruneReceipts(cut, 2)).toBe(0);
    expect(await s.getReceipt("new")).toEqual({ ts: 4, body: "body of new" });
    // A receipt deleted by age frees its key.
    await writeReceipt(s, 5, "old-1", "again");
    expect(await s.getReceipt("old-1")).toEqual({ ts: 5, body: "again" });
  });

  it("pruneReceipts refuses arguments that are not a time and a positive limit", async () => {
    const s = ctx.storage;
    await writeReceipt(s, 1, "r");
    await expect(s.pruneReceipts(Number.NaN, 10)).rejects.toThrow(/writtenBefore/);
    await expect(s.pruneReceipts(Date.now() + 1000, 0)).rejects.toThrow(/limit/);
    expect(await s.getReceipt("r")).not.toBeNull();
  });
}

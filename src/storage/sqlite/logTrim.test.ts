/**
 * The commit log's trim in a history sweep (prune.ts, `Pruner.trimLog`): a batch of rows per
 * transaction with the event loop turning in between, and at every step a reader of the log
 * sees each commit either listed or behind the trim mark, never neither.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { commit, put } from "../conformance/context.js";
import type { CommitLogView } from "../types.js";
import { openSqliteStorage, type SqliteStorage } from "./sqliteStorage.js";

let dir: string;
let storage: SqliteStorage;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "walkin-log-trim-"));
  storage = await openSqliteStorage({ filename: path.join(dir, "walkin.sqlite"), pruneBatchSize: 3 });
});
afterEach(async () => {
  await storage.close();
  await rm(dir, { recursive: true, force: true });
});

/** Every commit after `since` up to the view's latest is listed, or at or behind its trim mark. */
function assertNoGap(view: CommitLogView, since: number): void {
  const listed = new Set(view.commits.map((c) => c.ts));
  for (let ts = since + 1; ts <= view.latest; ts++) {
    if (ts > view.trimmedThrough) expect(listed.has(ts), `commit ${ts} of ${JSON.stringify({ ...view, commits: [...listed] })}`).toBe(true);
  }
}

it("trims a batch of rows per step, the log consistent after each, with commits landing in between", async () => {
  for (let ts = 1; ts <= 10; ts++) await commit(storage, { ts, documents: [put(`d${ts}`, "x")], indexes: [] });

  const marks: number[] = [];
  let landed = 10;
  const pruning = storage.pruneHistory(8);
  let finished = false;
  void pruning.then(() => (finished = true));
  while (!finished) {
    const view = await storage.commitsSince(0, 100);
    assertNoGap(view, 0);
    if (marks.at(-1) !== view.trimmedThrough) marks.push(view.trimmedThrough);
    // A commit between the steps: it stays in the log whatever the trim does next.
    if (landed < 12) await commit(storage, { ts: ++landed, documents: [put(`d${landed}`, "x")], indexes: [] }, landed - 1);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await pruning;
  const after = await storage.commitsSince(0, 100);
  assertNoGap(after, 0);
  expect(after.trimmedThrough).toBe(8);
  expect(after.commits.map((c) => c.ts)).toEqual([9, 10, 11, 12]);
  // Seen between the steps: the mark rose three rows at a time, not in one go. The write of the
  // pending versions, which pruneHistory runs first, took the first step (rows 1-3) toward the
  // floor it raised; the sweep's first step (4-6) ran before its first yield, then 7-8.
  expect(marks).toEqual([6, 8]);
});

it("trims toward the read floor when pending versions are written, without a sweep", async () => {
  const kept = await openSqliteStorage({
    filename: path.join(dir, "floor.sqlite"),
    deferredVersions: { maxCommits: 1e6, maxBytes: 1e12, delayMs: 1e9 },
  });
  try {
    for (let ts = 1; ts <= 10; ts++) await commit(kept, { ts, documents: [put(`d${ts}`, "x")], indexes: [] });
    kept.raiseReadFloor(6);
    expect((await kept.commitsSince(0, 100)).trimmedThrough).toBe(0); // nothing written yet
    kept.writePendingVersions();
    const view = await kept.commitsSince(0, 100);
    expect(view.trimmedThrough).toBe(6);
    expect(view.commits.map((c) => c.ts)).toEqual([7, 8, 9, 10]);
    // The next commit reads the log again (its own view of it is out of date) and lands after it.
    await commit(kept, { ts: 11, documents: [put("d11", "x")], indexes: [] }, 10);
    expect((await kept.commitsSince(6, 100)).commits.map((c) => c.ts)).toEqual([7, 8, 9, 10, 11]);
    expect((await kept.getDocument("d7", 11))?.body).toBe("x");
  } finally {
    await kept.close();
  }
});

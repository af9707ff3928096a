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
  // Seen between the steps: the mark rose three rows at a time (rows 1-3, then 4-6, then
  // through 8), not in one go.
  expect(marks).toEqual([3, 6, 8]);
});

/**
 * A stalled node must not block the others for long: a commit waits at most `lockTimeoutMs` for
 * the commit lock, and a node that sits on the lock (its process frozen between the log read
 * and the writes) loses its session after the same time, so the others go on.
 */
import { afterEach, describe, expect, it } from "vitest";
import { put, toCommit } from "../conformance/context.js";
import type { CommitLogView } from "../types.js";
import { isCommitOutcomeUnknown } from "../types.js";
import { quoteIdentifier } from "./schema.js";
import { openTestSchema } from "./testDatabase.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const next = (id: string) => (view: CommitLogView) => [toCommit({ ts: view.latest + 1, id, documents: [put("doc", id)], indexes: [] })];

function busyWait(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // A frozen process: nothing else on this event loop runs either.
  }
}

describe("PostgreSQL commits when a node stalls", () => {
  it("a commit waits at most lockTimeoutMs for the lock, then fails clearly, writing nothing", async () => {
    const target = await openTestSchema({ lockTimeoutMs: 200 });
    cleanups.push(async () => {
      await target.storage.close();
      await target.drop();
    });
    // Another session holds the clock row lock, as a stalled committer would.
    const holder = await target.storage.pool.connect();
    await holder.query(`BEGIN; SELECT 1 FROM ${quoteIdentifier(target.schema)}.clock FOR UPDATE`);
    try {
      const error = await target.storage.commitBatch(0, next("blocked")).then(() => null, (e: Error) => e);
      expect(error?.message).toMatch(/waited more than 200 ms for the commit lock.*Nothing was written/);
      expect(isCommitOutcomeUnknown(error)).toBe(false);
    } finally {
      await holder.query("ROLLBACK");
      holder.release();
    }
    expect(await target.storage.latestTimestamp()).toBe(0);
    await target.storage.commitBatch(0, next("after"));
    expect(await target.storage.findCommits(["blocked", "after"])).toEqual(new Map([["after", 1]]));
  });

  it("a node frozen while holding the lock loses its session; its batch fails with nothing written and the others commit", async () => {
    const target = await openTestSchema({ lockTimeoutMs: 300 });
    const other = await target.open({ lockTimeoutMs: 5_000 });
    cleanups.push(async () => {
      await other.close();
      await target.storage.close();
      await target.drop();
    });
    // The planner runs while the lock is held; freezing the process there stalls the commit.
    const frozen = target.storage.commitBatch(0, (view) => {
      busyWait(1_000);
      return next("frozen")(view);
    }).then(() => null, (e: Error) => e);
    const error = await frozen;
    // The writes and COMMIT go out together; whether the server had closed the session before
    // they left (EPIPE) or they met the FATAL, the storage may not know which, so it may say
    // "unknown". The log is what settles it: the frozen batch did not land.
    expect(error).not.toBeNull();
    if (!isCommitOutcomeUnknown(error)) expect(error?.message).toMatch(/idle-in-transaction|terminat/i);
    await other.commitBatch(0, next("other"));
    expect(await other.findCommits(["frozen", "other"])).toEqual(new Map([["other", 1]]));
    // The frozen node's pool recovers too.
    await target.storage.commitBatch(1, next("recovered"));
    expect(await other.latestTimestamp()).toBe(2);
  });
});

/**
 * A stalled node must not block the others for long: a commit waits at most `lockTimeoutMs` for
 * the commit lock, and a node that sits on the lock (its process frozen between the log read
 * and the writes) loses its session after the same time, so the others go on. So does every
 * other transaction that takes a lock the others wait for (`findCommits`, the floors table's
 * `whileAlone`): its network path can die between two of its statements too.
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

  it("findCommits and whileAlone hold their locks with the same bound on idle time as a commit", async () => {
    const target = await openTestSchema({ lockTimeoutMs: 300 });
    cleanups.push(async () => {
      await target.storage.close();
      await target.drop();
    });
    // What the server would do with a session of this transaction that went quiet, read right
    // after the lock is granted, in the same transaction. A network path that dies there (a
    // NAT dropping its state, a failover) leaves the server waiting for the next statement:
    // without this bound, until its TCP keepalive notices, two hours by default, while every
    // node's commits (or starts) queue behind the lock.
    const idleBound = (client: { query: (sql: string) => Promise<{ rows: { idle_in_transaction_session_timeout: string }[] }> }) =>
      client.query("SHOW idle_in_transaction_session_timeout").then((result) => result.rows[0]!.idle_in_transaction_session_timeout);
    const pool = target.storage.pool;
    const connect = pool.connect.bind(pool);
    let seenInFindCommits: string | undefined;
    pool.connect = (async () => {
      const client = await connect();
      const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
      let statements = 0;
      client.query = (async (...args: unknown[]) => {
        const result = await query(...args);
        if (++statements === 1 && String(args[0]).includes("FOR UPDATE")) seenInFindCommits = await idleBound(client as never);
        return result;
      }) as never;
      return client;
    }) as never;
    await target.storage.findCommits(["nothing"]);
    pool.connect = connect as never;
    expect(seenInFindCommits).toBe("300ms");

    let seenWhileAlone: string | undefined;
    const floors = (target.storage as unknown as { floors: { whileAlone(work: (client: never) => Promise<boolean>, lockTimeoutMs: number): Promise<boolean> } }).floors;
    await floors.whileAlone(async (client) => {
      seenWhileAlone = await idleBound(client);
      return false;
    }, 300);
    expect(seenWhileAlone).toBe("300ms");
  });

  it("a node that starts while another session holds the floors table fails after lockTimeoutMs, saying what held it", async () => {
    const target = await openTestSchema({ lockTimeoutMs: 200 });
    cleanups.push(async () => {
      await target.storage.close();
      await target.drop();
    });
    // As a node reclaiming a dropped index's entries holds it (snapshotFloors.ts, whileAlone).
    const holder = await target.storage.pool.connect();
    await holder.query(`BEGIN; LOCK TABLE ${quoteIdentifier(target.schema)}.snapshot_floors IN SHARE ROW EXCLUSIVE MODE`);
    try {
      const error = await target.open().then((storage) => storage.close().then(() => null), (e: Error) => e);
      expect(error?.message).toMatch(new RegExp(`could not register this node in ${target.schema}\\.snapshot_floors \\(canceling statement due to lock timeout\\)`));
      expect(error?.message).toMatch(/held a lock on that table for more than lockTimeoutMs \(200 ms\).*Start again/);
    } finally {
      await holder.query("ROLLBACK");
      holder.release();
    }
    const started = await target.open();
    await started.close();
  });
});

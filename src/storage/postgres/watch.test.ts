/**
 * `watchCommits` across storages sharing one database: a commit through one storage notifies
 * the others, and a listener survives its LISTEN connection being killed.
 */
import { afterEach, describe, expect, it } from "vitest";
import { put, toCommit } from "../conformance/context.js";
import type { CommitLogView } from "../types.js";
import type { PostgresStorage } from "./postgresStorage.js";
import { openTestSchema } from "./testDatabase.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const next = (id: string) => (view: CommitLogView) => [toCommit({ ts: view.latest + 1, id, documents: [put("doc", id)], indexes: [] })];

/** Resolves with the next call of a listener. */
function listenerCalls() {
  const waiting: (() => void)[] = [];
  let calls = 0;
  return {
    listener: () => {
      calls++;
      waiting.splice(0).forEach((resolve) => resolve());
    },
    next: () => new Promise<void>((resolve) => waiting.push(resolve)),
    get calls() {
      return calls;
    },
  };
}

async function twoNodes(onError?: (error: unknown) => void) {
  const target = await openTestSchema();
  const other = await target.open();
  const watching: PostgresStorage = await target.open({ ...(onError && { onError }) });
  cleanups.push(async () => {
    await watching.close();
    await other.close();
    await target.storage.close();
    await target.drop();
  });
  return { watching, other };
}

/** Waits until `watching` is LISTENing (its dedicated connection shows up in pg_stat_activity). */
async function listenerPid(storage: PostgresStorage): Promise<number> {
  for (;;) {
    const { rows } = await storage.pool.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %' AND query LIKE $1`,
      [`%${storage.schema}%`],
    );
    if (rows[0]) return rows[0].pid;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("PostgreSQL watchCommits", () => {
  it("a commit through another storage on the same database calls the listener; unsubscribing stops it", async () => {
    const { watching, other } = await twoNodes();
    const calls = listenerCalls();
    const stop = watching.watchCommits(calls.listener);
    await listenerPid(watching);
    const notified = calls.next();
    await other.commitBatch(0, next("from-other"));
    await notified;
    expect(calls.calls).toBe(1);
    // The engine then reads what changed from the log.
    expect((await watching.commitsSince(0, 10)).commits.map((c) => c.id)).toEqual(["from-other"]);

    stop();
    await other.commitBatch(1, next("unwatched"));
    // Wait for a round trip that sees the second commit: a notification would have arrived by then.
    const secondWatcher = listenerCalls();
    const stopSecond = other.watchCommits(secondWatcher.listener);
    await listenerPid(other);
    const seen = secondWatcher.next();
    await other.commitBatch(2, next("third"));
    await seen;
    stopSecond();
    expect(calls.calls).toBe(1);
  });

  it("reconnects when its connection is killed, calls the listener once it listens again, and keeps notifying", async () => {
    const errors: unknown[] = [];
    const { watching, other } = await twoNodes((error) => errors.push(error));
    const calls = listenerCalls();
    watching.watchCommits(calls.listener);
    const firstPid = await listenerPid(watching);

    const reconnected = calls.next();
    await other.pool.query("SELECT pg_terminate_backend($1)", [firstPid]);
    await reconnected; // called after reconnecting, so the engine polls for what it missed
    expect(errors.length).toBeGreaterThan(0);
    const secondPid = await listenerPid(watching);
    expect(secondPid).not.toBe(firstPid);

    const notified = calls.next();
    await other.commitBatch(0, next("after-reconnect"));
    await notified;
  });

  it("close ends the listening connection", async () => {
    const { watching, other } = await twoNodes();
    watching.watchCommits(() => {});
    const pid = await listenerPid(watching);
    await watching.close();
    await watching.close(); // idempotent
    for (;;) {
      const { rows } = await other.pool.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid]);
      if (rows.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(() => watching.watchCommits(() => {})).toThrow(/closed storage/);
  });
});

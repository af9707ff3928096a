/**
 * Commits whose connection dies while COMMIT is in flight: the storage cannot know whether they
 * landed, so it must say so (`CommitOutcomeUnknownError`), and `findCommits` must then give the
 * true answer, whichever it is. Both outcomes are produced on purpose:
 *
 * - did not land: a deferred trigger (test-only) makes COMMIT wait inside the server, and the
 *   committing backend is terminated there with pg_terminate_backend;
 * - landed: the storage talks to the server through a loopback proxy that forwards COMMIT, lets
 *   the server finish it, and cuts the connection before the answer comes back.
 */
import { afterEach, describe, expect, it } from "vitest";
import { put, toCommit } from "../conformance/context.js";
import { isCommitOutcomeUnknown } from "../types.js";
import type { PostgresStorage } from "./postgresStorage.js";
import { quoteIdentifier } from "./schema.js";
import { openTestSchema } from "./testDatabase.js";
import { startTestProxy } from "./testProxy.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function fresh() {
  const target = await openTestSchema();
  cleanups.push(async () => {
    await target.storage.close();
    await target.drop();
  });
  return target;
}

const planOne = (id: string, body: string) => () => [toCommit({ ts: 0, id, documents: [put("doc", body)], indexes: [] })];
/** A planner writing one commit right after the latest. */
const next = (id: string, body: string) => (view: { latest: number }) => planOne(id, body)().map((c) => ({ ...c, ts: view.latest + 1 }));

describe("PostgreSQL commit outcomes when the connection dies during COMMIT", () => {
  it("a backend terminated while committing: unknown outcome, and findCommits says it did not land", async () => {
    const { storage, open } = await fresh();
    await storage.commitBatch(0, next("before", "v1"));
    // From now on every COMMIT in this schema waits 2 s inside the server, before it is durable.
    const s = quoteIdentifier(storage.schema);
    await storage.pool.query(`
      CREATE FUNCTION ${s}.slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$;
      CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON ${s}.commit_log DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION ${s}.slow_commit();`);
    const watcher = await open({ poolSize: 1 });
    cleanups.push(() => watcher.close());

    const committing = storage.commitBatch(1, next("doomed", "v2")).then(() => null, (error: unknown) => error);
    // Find the backend running our COMMIT (it is sleeping in the trigger) and terminate it.
    let terminated = false;
    while (!terminated) {
      const { rows } = await watcher.pool.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = 'COMMIT' AND state = 'active' AND pid <> pg_backend_pid()`,
      );
      for (const { pid } of rows) terminated = (await watcher.pool.query("SELECT pg_terminate_backend($1) AS ok", [pid])).rows[0].ok;
      if (!terminated) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const error = await committing;
    expect(isCommitOutcomeUnknown(error), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/may or may not have landed/);

    await storage.pool.query(`DROP TRIGGER slow_commit ON ${s}.commit_log`);
    expect(await storage.findCommits(["doomed", "before"])).toEqual(new Map([["before", 1]]));
    expect(await storage.latestTimestamp()).toBe(1);
    expect((await storage.getDocument("doc", 10))?.body).toBe("v1");
    // The pool replaced the dead connection: the next commit takes the timestamp that stayed free.
    const { written } = await storage.commitBatch(1, next("after", "v3"));
    expect(written.map((c) => c.ts)).toEqual([2]);
  });

  it("a connection cut after COMMIT reached the server: unknown outcome, and findCommits finds it", async () => {
    const { storage: direct, url, open } = await fresh();
    const proxy = await startTestProxy(url);
    cleanups.push(proxy.close);
    const storage: PostgresStorage = await open({ url: proxy.url, poolSize: 1 });
    cleanups.push(() => storage.close());
    await storage.commitBatch(0, next("before", "v1"));

    proxy.cutAfterNextCommit();
    const error = await storage.commitBatch(1, next("landed", "v2")).then(() => null, (e: unknown) => e);
    expect(isCommitOutcomeUnknown(error), String(error)).toBe(true);
    // The server finished the commit: every reader sees it, and findCommits reports it.
    expect(await storage.findCommits(["landed"])).toEqual(new Map([["landed", 2]]));
    expect((await direct.getDocument("doc", 2))?.body).toBe("v2");
    expect(await direct.latestTimestamp()).toBe(2);
  });
});

/**
 * PostgreSQL storage when the database is busy or misbehaves: far more callers than pool
 * connections, outside sessions holding the commit lock, connection limits reached at open, a
 * statement_timeout on the database, the schema dropped under a running storage, and an outside
 * transaction holding an old snapshot while history is pruned.
 */
import net from "node:net";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { put, toCommit } from "../conformance/context.js";
import type { CommitLogView } from "../types.js";
import { isCommitOutcomeUnknown } from "../types.js";
import { openPostgresStorage } from "./postgresStorage.js";
import { quoteIdentifier } from "./schema.js";
import { createTestDatabase, openTestSchema, testDatabaseUrl } from "./testDatabase.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const next = (id: string) => (view: CommitLogView) => [toCommit({ ts: view.latest + 1, id, documents: [put("doc", id)], indexes: [] })];

async function rawClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  cleanups.push(() => client.end().catch(() => {}));
  return client;
}

describe("PostgreSQL storage under load", () => {
  it("200 commits and reads at once on a pool of 3, with slow queries holding connections, all finish in order", async () => {
    const target = await openTestSchema({ poolSize: 3, lockTimeoutMs: 5_000 });
    cleanups.push(async () => {
      await target.storage.close();
      await target.drop();
    });
    const { storage } = target;
    const slow = Array.from({ length: 2 }, () => storage.pool.query("SELECT pg_sleep(0.3)"));
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      work.push(i % 4 === 3 ? storage.latestTimestamp() : storage.commitBatch(0, next(`c${i}`)));
    }
    await Promise.all([...slow, ...work]);
    expect(await storage.latestTimestamp()).toBe(150);
    const found = await storage.findCommits(Array.from({ length: 200 }, (_, i) => `c${i}`));
    expect(found.size).toBe(150);
    expect(new Set(found.values()).size).toBe(150);
    expect(storage.pool.totalCount).toBeLessThanOrEqual(3);
  });

  it("a commit while an outside session holds LOCK TABLE on the clock fails after lockTimeoutMs, writes nothing, and the next one succeeds", async () => {
    const target = await openTestSchema({ lockTimeoutMs: 200 });
    cleanups.push(async () => {
      await target.storage.close();
      await target.drop();
    });
    const holder = await rawClient(target.url);
    await holder.query(`BEGIN; LOCK TABLE ${quoteIdentifier(target.schema)}.clock IN EXCLUSIVE MODE`);
    const error = await target.storage.commitBatch(0, next("blocked")).then(() => null, (e: Error) => e);
    expect(error?.message).toMatch(/waited more than 200 ms for the commit lock.*Nothing was written/);
    expect(isCommitOutcomeUnknown(error)).toBe(false);
    await holder.query("ROLLBACK");
    await target.storage.commitBatch(0, next("after"));
    expect(await target.storage.findCommits(["blocked", "after"])).toEqual(new Map([["after", 1]]));
  });
});

/** A server that refuses every login with a FATAL `code` (as PostgreSQL does at max_connections). */
async function refusingServer(code: string, message: string): Promise<number> {
  const fields = Buffer.concat([
    ...[["S", "FATAL"], ["V", "FATAL"], ["C", code], ["M", message]].map(([type, value]) => Buffer.from(`${type}${value}\0`)),
    Buffer.from([0]),
  ]);
  const header = Buffer.alloc(5);
  header.write("E", 0);
  header.writeInt32BE(fields.length + 4, 1);
  const server = net.createServer((socket) => {
    socket.on("error", () => {});
    socket.once("data", () => socket.end(Buffer.concat([header, fields])));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

describe("PostgreSQL storage at the server's limits", () => {
  it("a read blocked by an outside LOCK TABLE fails clearly after lockTimeoutMs and leaves no backend behind", async () => {
    const target = await openTestSchema({ lockTimeoutMs: 100, queryTimeoutMs: 1_000, poolSize: 2 });
    cleanups.push(async () => {
      await target.storage.close();
      await target.drop();
    });
    await target.storage.commitBatch(0, next("a"));
    // A migration or an operator's LOCK TABLE, held for longer than any storage timeout.
    const holder = await rawClient(target.url);
    await holder.query(`BEGIN; LOCK TABLE ${quoteIdentifier(target.schema)}.documents IN ACCESS EXCLUSIVE MODE`);
    const waiting = () =>
      holder.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE $1`,
        [`%${target.schema}%`],
      );
    for (let i = 0; i < 3; i++) {
      const error = await target.storage.getDocument("doc", 1).then(() => null, (e: Error) => e);
      expect(error?.message).toMatch(/waited more than 100 ms for a lock.*another session holds/);
    }
    // Every read gave up server-side too: no backend still queues for the lock, each holding a
    // connection slot (with a client-side timeout alone, they pile up until the lock is released).
    expect((await waiting()).rows[0].n).toBe(0);
    await holder.query("ROLLBACK");
    expect((await target.storage.getDocument("doc", 1))?.id).toBe("doc");
  });

  it("max_connections reached at open gives an error that names the setting", async () => {
    const port = await refusingServer("53300", "sorry, too many clients already");
    const error = await openPostgresStorage({ url: `postgres://app@127.0.0.1:${port}/db` }).then(() => null, (e: Error) => e);
    expect(error?.message).toMatch(/sorry, too many clients already.*max_connections is reached.*poolSize/);
  });

  it("a connection limit reached at open gives an error that names the setting to raise", async () => {
    const url = await testDatabaseUrl();
    const admin = await rawClient(url);
    const role = `walkin_pgload_${process.pid}`;
    await admin.query(`DROP ROLE IF EXISTS ${quoteIdentifier(role)}`);
    await admin.query(`CREATE ROLE ${quoteIdentifier(role)} LOGIN CONNECTION LIMIT 0`);
    cleanups.push(async () => void (await admin.query(`DROP ROLE IF EXISTS ${quoteIdentifier(role)}`)));
    const limited = new URL(url);
    limited.username = role;
    const error = await openPostgresStorage({ url: limited.toString() }).then(
      async (storage) => {
        await storage.close();
        return null;
      },
      (e: Error) => e,
    );
    expect(error?.message).toMatch(new RegExp(`too many connections for role "${role}".*ALTER ROLE "${role}" CONNECTION LIMIT n`));
  });
});

describe("PostgreSQL storage when its data disappears under it", () => {
  it("the schema dropped: calls fail naming what is missing, the watcher keeps listening, close works", async () => {
    const errors: unknown[] = [];
    const target = await openTestSchema({ onError: (e) => errors.push(e) });
    cleanups.push(async () => {
      await target.storage.close();
      await target.drop();
    });
    let heard = 0;
    const stop = target.storage.watchCommits(() => heard++);
    // The watch starts listening in the background: a commit made before it listens is not
    // heard (on a loaded machine the first one often is not), so commit until one is.
    let round = 0;
    await expect
      .poll(async () => {
        if (heard === 0) await target.storage.commitBatch(0, next(`a${round++}`));
        return heard;
      }, { timeout: 15_000, interval: 100 })
      .toBeGreaterThan(0);
    await target.drop();
    await expect(target.storage.latestTimestamp()).rejects.toThrow(/relation ".*clock" does not exist/);
    await expect(target.storage.commitBatch(1, next("b"))).rejects.toThrow(/does not exist/);
    await expect(target.storage.getDocument("doc", 1)).rejects.toThrow(/does not exist/);
    stop();
    await target.storage.close();
  });

  it("the database dropped: calls fail naming the database, close works", async () => {
    const database = await createTestDatabase();
    let dropped = false;
    cleanups.push(() => (dropped ? Promise.resolve() : database.drop()));
    const errors: unknown[] = [];
    const storage = await openPostgresStorage({ url: database.url, poolSize: 2, onError: (e) => errors.push(e) });
    const stop = storage.watchCommits(() => {});
    await storage.commitBatch(0, next("a"));
    await database.drop();
    dropped = true;
    const error = await storage.latestTimestamp().then(() => null, (e: Error) => e);
    expect(error?.message).toMatch(/database ".*" does not exist/);
    await expect(storage.commitBatch(1, next("b"))).rejects.toThrow(/does not exist/);
    stop();
    await storage.close();
  });
});

describe("PostgreSQL storage beside other sessions' settings and snapshots", () => {
  it("a statement_timeout set for the session: commits work, and one cut off by it writes nothing", async () => {
    const target = await openTestSchema({ lockTimeoutMs: 2_000 });
    const url = new URL(target.url);
    url.searchParams.set("options", "-c statement_timeout=100");
    const limited = await target.open({ url: url.toString(), lockTimeoutMs: 2_000 });
    cleanups.push(async () => {
      await limited.close();
      await target.storage.close();
      await target.drop();
    });
    await limited.commitBatch(0, next("a"));
    const holder = await rawClient(target.url);
    await holder.query(`BEGIN; SELECT 1 FROM ${quoteIdentifier(target.schema)}.clock FOR UPDATE`);
    const error = await limited.commitBatch(1, next("cut")).then(() => null, (e: Error) => e);
    expect(error?.message).toMatch(/statement timeout/);
    expect(isCommitOutcomeUnknown(error)).toBe(false);
    await holder.query("ROLLBACK");
    await limited.commitBatch(1, next("b"));
    expect(await limited.findCommits(["a", "cut", "b"])).toEqual(new Map([["a", 1], ["b", 2]]));
  });

  it("an outside transaction holding an old snapshot: pruning neither waits for it nor changes what it reads", async () => {
    const target = await openTestSchema();
    cleanups.push(async () => {
      await target.storage.close();
      await target.drop();
    });
    const { storage } = target;
    for (let i = 0; i < 5; i++) await storage.commitBatch(i, next(`v${i}`));
    const reader = await rawClient(target.url);
    const docs = `${quoteIdentifier(target.schema)}.documents`;
    await reader.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const before = (await reader.query(`SELECT count(*)::int AS n FROM ${docs}`)).rows[0].n;
    expect(before).toBe(5);
    await storage.pruneHistory(5);
    expect((await storage.stats()).documents).toBe(1);
    expect((await storage.getDocument("doc", 5))?.ts).toBe(5);
    expect((await reader.query(`SELECT count(*)::int AS n FROM ${docs}`)).rows[0].n).toBe(5);
    await reader.query("COMMIT");
  });
});

/**
 * Several nodes on one PostgreSQL database at the edges: a node starting while an old node
 * writes past an index, pooled connections whose network died silently, and the errors of a
 * schema without CREATE and of a read-only server. Each failed before its fix (found in a
 * review). Engines are real, on one real database; interleavings are forced with storage
 * hooks, never with sleeps.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { startTestProxy } from "./testProxy.js";
import { Engine } from "../../engine/engine.js";
import { SharedHookedStorage } from "./sharedHookedStorage.js";
import { openPostgresStorage, type PostgresStorage } from "./postgresStorage.js";
import { createTestDatabase, openTestSchema, testServerUrl } from "./testDatabase.js";
import { items, newSchema, oldSchema } from "../../engine/fixtures/rollingDeploy.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Polls `condition` until it holds (bounded): for work another engine does in the background. */
async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}


describe("a node starting during a rolling deploy", () => {
  it("an old node's write between a new node's catalog load and its start is noticed, and that start rebuilds the index with the write", async () => {
    const target = await openTestSchema();
    const engines: Engine[] = [];
    const storages: PostgresStorage[] = [target.storage];
    cleanups.push(async () => {
      for (const engine of engines.splice(0)) await engine.close().catch(() => {});
      for (const storage of storages) await storage.close().catch(() => {});
      await target.drop();
    });
    const open = async (storage: PostgresStorage | SharedHookedStorage, schema: typeof newSchema | typeof oldSchema) => {
      const engine = await Engine.open({ storage, schema, modules: { items }, runScheduler: false, pollIntervalMs: 60_000, logError: () => {} });
      engines.push(engine);
      return engine;
    };
    const registry = async () => (await target.storage.getMeta("catalog")) ?? "";

    // The old code is running; the first new node starts and builds by_x.
    const old = await open(target.storage, oldSchema);
    const s1 = await target.open();
    storages.push(s1);
    const new1 = await open(s1, newSchema);
    await new1.runMutation("items:add", { x: 1 });
    expect(await registry()).toContain("by_x");

    // The second new node starts. Right after it has read the catalog (by_x: built), the old
    // node writes to items without maintaining by_x, and the running new node notices and marks
    // by_x unbuilt in the stored catalog, as designed.
    const s2 = await target.open();
    storages.push(s2);
    let windowDone = false;
    const hooked = new SharedHookedStorage(s2);
    hooked.hooks.read = async (operation, read) => {
      const result = await read();
      if (operation === "getMeta" && !windowDone && String(result).includes("by_x")) {
        windowDone = true;
        await old.runMutation("items:add", { x: 5 });
        await new1.refreshFromStorage();
        await until(async () => !(await registry()).includes("by_x"), "the running new node to mark by_x unbuilt");
      }
      return result;
    };
    const new2 = await open(hooked, newSchema);
    expect(windowDone).toBe(true);
    expect(await new2.runQuery("items:all", { x: 5 })).toBe(1);

    // The new node that was running refuses by_x: it knows an entry is missing.
    await expect(new1.runQuery("items:byX", { x: 5 })).rejects.toThrow(/incomplete on this node/);
    // The node that just started must not answer from by_x without the old node's document
    // either. The old node marked by_x as lacked before its write landed (engine/indexBuilds.ts),
    // so the new node, reading that mark after its catalog, rebuilt by_x with the document.
    expect(await new2.runQuery("items:byX", { x: 5 })).toBe(1);

    // Every node runs the new code and restarts (what docs/scaling.md says to do): the first to
    // start rebuilds by_x, with the old node's document.
    for (const engine of engines.splice(0)) await engine.close();
    const s3 = await target.open();
    storages.push(s3);
    const restarted = await open(s3, newSchema);
    expect(await restarted.runQuery("items:byX", { x: 5 })).toBe(1);
  });
});

describe("a node whose pooled connections are cut silently", () => {
  it("serves again within about half a minute once new connections work (connect.ts: a cut network is noticed within about half a minute)", async () => {
    const target = await openTestSchema();
    const proxy = await startTestProxy(target.url);
    const storage = await target.open({ url: proxy.url, poolSize: 2, onError: () => {} });
    const engine = await Engine.open({
      storage,
      schema: newSchema,
      modules: { items },
      runScheduler: false,
      pollIntervalMs: 60_000,
      storageTimeoutMs: 1_000,
      storageRetryMs: 2_000,
      logError: () => {},
    });
    cleanups.push(async () => {
      await proxy.close(); // first: closing the pool waits for its connections
      await engine.close().catch(() => {});
      await storage.close().catch(() => {});
      await target.storage.close();
      await target.drop();
    });
    await engine.runMutation("items:add", { x: 1 });
    // Both pooled connections open (two reads at once), then their network path is lost.
    await Promise.all([storage.getDocument("nothing", 1), storage.getDocument("nothing", 1)]);
    expect(storage.pool.totalCount).toBe(2);
    proxy.freezeAll();

    // PostgreSQL itself is fine, and new connections reach it. Within about half a minute the
    // node must have given up on the dead connections and answer again.
    const started = Date.now();
    let answer: unknown;
    while (Date.now() - started < 40_000) {
      answer = await engine.runQuery("items:all", { x: 1 }).catch((error: Error) => error);
      if (answer === 1) break;
    }
    expect(answer instanceof Error ? answer.message : answer).toBe(1);
  }, 60_000);
});

describe("opening PostgreSQL storage as a user who may not create tables in schema public", () => {
  it("PostgreSQL 15's default (no CREATE on schema public for other users): the error names the grant that fixes it", async () => {
    const database = await createTestDatabase();
    const role = `walkin_review_${randomBytes(4).toString("hex")}`;
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    cleanups.push(async () => {
      await admin.end().catch(() => {});
      await database.drop();
      const server = new pg.Client({ connectionString: testServerUrl() });
      await server.connect();
      await server.query(`DROP ROLE IF EXISTS ${role}`).finally(() => server.end());
    });
    const dbName = new URL(database.url).pathname.slice(1);
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    // What the error used to advise: the user may create schemas in the database...
    await admin.query(`GRANT CREATE ON DATABASE "${dbName}" TO ${role}`);
    // ...but not tables in schema public (PostgreSQL 15 and later, unless granted).
    await admin.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
    const url = new URL(database.url);
    url.username = role;

    const error = await openPostgresStorage({ url: url.toString() }).then(
      async (storage) => {
        await storage.close();
        return null;
      },
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/permission denied for schema public/);
    // The fix it names must be one that works: this user already has CREATE on the database.
    expect(error?.message).toMatch(/GRANT CREATE ON SCHEMA "?public"? TO "?walkin_review_/i);
    await admin.query(`GRANT CREATE ON SCHEMA public TO ${role}`);
    const storage = await openPostgresStorage({ url: url.toString() });
    await storage.close();
  });
});

describe("opening PostgreSQL storage on a server that accepts no writes", () => {
  it("a read-only database (as a hot standby, or a URL pointing at a replica) fails with an error naming the storage and the fix", async () => {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const dbName = new URL(database.url).pathname.slice(1);
    // SQLSTATE 25006 on every write, as a standby answers.
    await admin.query(`ALTER DATABASE "${dbName}" SET default_transaction_read_only = on`).finally(() => admin.end());

    const error = await openPostgresStorage({ url: database.url }).then(
      async (storage) => {
        await storage.close();
        return null;
      },
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/read-only/);
    // Which storage, and what to do: like every other open error (connect.ts).
    expect(error?.message).toMatch(/^Cannot open PostgreSQL storage postgres:\/\//);
    expect(error?.message).toMatch(/primary/);
  });
});

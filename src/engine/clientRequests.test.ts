import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, expect, it, vi } from "vitest";
import { defineSchema, defineTable, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { withTestLatency } from "../testing/testStorage.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import type { CommitBatchResult, Storage } from "../storage/types.js";
import { Engine } from "./engine.js";
import { HookedStorage, type StorageHooks } from "./fixtures/hookedStorage.js";
import { CLIENT_REQUEST_RETENTION_MS, receiptKey } from "./clientRequests.js";

const schema = defineSchema({ items: defineTable({ n: v.number() }) });
const modules = {
  items: {
    add: mutation({ args: { n: v.number() }, handler: (ctx, { n }) => ctx.db.insert("items", { n }) }),
    count: query({ args: {}, handler: async (ctx) => (await ctx.db.query("items").collect()).length }),
  },
};

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function openEngine(storage: Storage): Promise<Engine> {
  const engine = await Engine.open({ storage, schema, modules, runScheduler: false });
  cleanups.push(() => engine.close());
  return engine;
}

/**
 * Opens connections to one fresh database, as several engines sharing it would: PostgreSQL
 * schema under `WALKIN_TEST_STORAGE=postgres`, else an SQLite file (at latency in that suite).
 * Each connection is behind a `HookedStorage`, which has no `watchCommits`: an engine learns of
 * the other's commits only when it commits or refreshes, so a test decides when that happens.
 */
async function sharedDatabase(): Promise<(hooks?: StorageHooks) => Promise<Storage>> {
  if (process.env["WALKIN_TEST_STORAGE"] === "postgres") {
    const { openTestSchema } = await import("../storage/postgres/testDatabase.js");
    const schema = await openTestSchema();
    await schema.storage.close();
    cleanups.push(() => schema.drop());
    return async (hooks) => new HookedStorage(await schema.open(), hooks);
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-client-requests-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const filename = path.join(dir, "db.sqlite");
  return async (hooks) => new HookedStorage(withTestLatency(await openSqliteStorage({ filename })), hooks);
}

it("answers a re-send at its own commit's timestamp, not at the newest commit since (its writes show from there on)", async () => {
  const storage = withTestLatency(await openSqliteStorage({ filename: ":memory:" }));
  const engine = await openEngine(storage);
  const request = { clientId: "client-1", requestId: 1 };
  const first = await engine.runClientMutation("items:add", { n: 1 }, { fromClient: true }, request);
  const later = await engine.runMutation("items:add", { n: 2 });
  const again = await engine.runClientMutation("items:add", { n: 1 }, { fromClient: true }, request);
  expect(again).toMatchObject({ deduplicated: true, value: first.value });
  // At `later.ts` a reconnected client's answer waited for a commit it has nothing to do with,
  // while the results restored meanwhile showed its write twice (transport/connection.ts).
  expect(later.ts).toBeGreaterThan(first.ts);
  expect(again.ts).toBe(first.ts);
});

it("applies a client's request once, answers a re-send from the record, and expires records after the retention window", async () => {
  const storage = withTestLatency(await openSqliteStorage({ filename: ":memory:" }));
  const engine = await openEngine(storage);
  const request = { clientId: "client-1", requestId: 7 };
  const first = await engine.runClientMutation("items:add", { n: 1 }, { fromClient: true }, request);
  const again = await engine.runClientMutation("items:add", { n: 1 }, { fromClient: true }, request);
  expect(first.deduplicated).toBe(false);
  expect(again).toMatchObject({ deduplicated: true, value: first.value });
  expect(again.ts).toBeGreaterThanOrEqual(first.ts);
  expect(await engine.runQuery("items:count", {})).toBe(1);

  // Another client's request with the same number is its own.
  await engine.runClientMutation("items:add", { n: 2 }, { fromClient: true }, { clientId: "client-2", requestId: 7 });
  expect(await engine.runQuery("items:count", {})).toBe(2);

  // The record is a storage receipt of the mutation's own commit, not a versioned document.
  expect((await storage.getReceipt(receiptKey(request)))?.ts).toBe(first.ts);

  // Records younger than the window stay; older ones go.
  const now = Date.now();
  expect(await engine.pruneClientRequests(now)).toEqual({ receipts: 0, legacy: 0 });
  expect(await engine.pruneClientRequests(now + CLIENT_REQUEST_RETENTION_MS + 1000)).toEqual({ receipts: 2, legacy: 0 });
  expect(await storage.getReceipt(receiptKey(request))).toBeNull();
});

it("records the request of a mutation that writes nothing", async () => {
  const engine = await Engine.open({
    storage: await openSqliteStorage({ filename: ":memory:" }),
    modules: { noop: { run: mutation({ args: {}, handler: async () => "done" }) } },
    runScheduler: false,
  });
  cleanups.push(() => engine.close());
  const request = { clientId: "c", requestId: 1 };
  expect(await engine.runClientMutation("noop:run", {}, { fromClient: true }, request)).toMatchObject({ deduplicated: false, value: "done" });
  expect(await engine.runClientMutation("noop:run", {}, { fromClient: true }, request)).toMatchObject({ deduplicated: true, value: "done" });
});

it("refuses a result too large to keep, writing nothing", async () => {
  const engine = await Engine.open({
    storage: await openSqliteStorage({ filename: ":memory:" }),
    schema,
    modules: { items: { ...modules.items, big: mutation({ args: {}, handler: async (ctx) => {
      await ctx.db.insert("items", { n: 1 });
      return "x".repeat(1024 * 1024 + 1);
    } }) } },
    runScheduler: false,
  });
  cleanups.push(() => engine.close());
  await expect(engine.runClientMutation("items:big", {}, { fromClient: true }, { clientId: "c", requestId: 1 })).rejects.toThrow(/1 MiB/);
  expect(await engine.runQuery("items:count", {})).toBe(0);
});

it("never applies two racing copies of one request on two engines sharing a database (clientRequests.ts, steps 1-4)", async () => {
  const open = await sharedDatabase();
  // Both copies must look the receipt up before either commits: each engine's commit waits
  // until both lookups happened, so both find nothing and both try to commit.
  let armed = false;
  let lookups = 0;
  let bothLooked: () => void = () => {};
  const looked = new Promise<void>((resolve) => (bothLooked = resolve));
  const hooked = () =>
    open({
      read: async (operation, read) => {
        const answer = await read();
        if (operation === "getReceipt" && ++lookups === 2) bothLooked();
        return answer;
      },
      commitBatch: async (commit) => {
        if (armed) await looked;
        return commit();
      },
    });
  const a = await openEngine(await hooked());
  const b = await openEngine(await hooked());
  armed = true;
  const request = { clientId: "client-1", requestId: 1 };
  const [first, second] = await Promise.all([
    a.runClientMutation("items:add", { n: 1 }, { fromClient: true }, request),
    b.runClientMutation("items:add", { n: 1 }, { fromClient: true }, request),
  ]);
  expect([first.deduplicated, second.deduplicated].sort()).toEqual([false, true]);
  expect(second.value).toBe(first.value);
  // The second copy was refused by the commit check and re-ran (steps 3-4). Without the key in
  // the write set it would reach storage, whose unique receipt keys reject its whole batch: still
  // applied once, but as a failed commit of every mutation in that batch, not a retry of one.
  expect(a.stats.conflictRetries + b.stats.conflictRetries).toBe(1);
  await b.refreshFromStorage();
  expect(await b.runQuery("items:count", {})).toBe(1);
});

it("catches a first send racing a re-send of it on another engine by the commit check, not by storage (\"First sends\")", async () => {
  const open = await sharedDatabase();
  // The re-send (engine b) looks the receipt up, finds nothing and commits first; the first
  // send (engine a) read no receipt, ran its handler before that commit, and commits after it.
  let refusedByStorage = 0;
  let resendCommitted: () => void = () => {};
  const bCommitted = new Promise<void>((resolve) => (resendCommitted = resolve));
  let armed = false;
  const countRefusals = (commit: () => Promise<CommitBatchResult>) =>
    commit().catch((error: unknown) => {
      refusedByStorage += 1;
      throw error;
    });
  const a = await openEngine(await open({
    commitBatch: async (commit) => {
      if (armed) await bCommitted;
      return countRefusals(commit);
    },
  }));
  const b = await openEngine(await open({
    commitBatch: async (commit) => {
      const result = await countRefusals(commit);
      if (armed) resendCommitted();
      return result;
    },
  }));
  armed = true;
  const request = { clientId: "client-1", requestId: 1 };
  const [first, second] = await Promise.all([
    a.runClientMutation("items:add", { n: 1 }, { fromClient: true }, { ...request, firstSend: true }),
    b.runClientMutation("items:add", { n: 1 }, { fromClient: true }, request),
  ]);
  expect(second.deduplicated).toBe(false);
  expect(first).toMatchObject({ deduplicated: true, value: second.value });
  // The first send recorded the receipt's key in its read set all the same, so its commit was
  // refused by the commit check and it re-ran, looking the receipt up: storage saw no repeat.
  expect(a.stats.conflictRetries).toBe(1);
  expect(refusedByStorage).toBe(0);
  await b.refreshFromStorage();
  expect(await b.runQuery("items:count", {})).toBe(1);
});

it("answers a copy whose receipt landed after its snapshot only once it has caught up (clientRequests.ts, step 5)", async () => {
  const open = await sharedDatabase();
  const a = await openEngine(await open());
  const b = await openEngine(await open());
  const request = { clientId: "client-1", requestId: 1 };
  const first = await a.runClientMutation("items:add", { n: 1 }, { fromClient: true }, request);
  // b has not learned of a's commit (it neither committed nor refreshed since): its snapshot is older.
  expect(b.latestTimestamp).toBeLessThan(first.ts);
  const again = await b.runClientMutation("items:add", { n: 1 }, { fromClient: true }, request);
  expect(again).toMatchObject({ deduplicated: true, value: first.value });
  // The client waits for results at this ts: they must include the first copy's write.
  expect(again.ts).toBeGreaterThanOrEqual(first.ts);
  expect(await b.runQuery("items:count", {})).toBe(1);
});

it("does not look up the receipt of a first send, and applies a falsely claimed one once (clientRequests.ts, \"First sends\")", async () => {
  const operations: string[] = [];
  const storage = new HookedStorage(await openSqliteStorage({ filename: ":memory:" }), {
    read: (operation, read) => {
      operations.push(operation);
      return read();
    },
  });
  const engine = await openEngine(storage);
  const lookups = () => operations.filter((operation) => operation === "getReceipt").length;
  const first = await engine.runClientMutation("items:add", { n: 1 }, { fromClient: true }, { clientId: "c", requestId: 1, firstSend: true });
  expect(first.deduplicated).toBe(false);
  expect(lookups()).toBe(0);

  // The same request claimed as a first send again, racing a batch-mate: storage refuses the
  // receipt it holds, writing nothing; both re-run at once as after a conflict (no wait for a
  // storage outage), and the re-run of the claimed one finds its record.
  const outageWaits = vi.spyOn(engine.storageRetry, "wait");
  const [again, mate] = await Promise.all([
    engine.runClientMutation("items:add", { n: 1 }, { fromClient: true }, { clientId: "c", requestId: 1, firstSend: true }),
    engine.runClientMutation("items:add", { n: 2 }, { fromClient: true }, { clientId: "c", requestId: 2 }),
  ]);
  expect(again).toMatchObject({ deduplicated: true, value: first.value });
  expect(mate.deduplicated).toBe(false);
  expect(outageWaits).not.toHaveBeenCalled();
  expect(engine.stats.conflictRetries).toBe(2);
  expect(await engine.runQuery("items:count", {})).toBe(2);
});

it("honours records in the legacy table `_client_requests` until they expire, then stops reading it", async () => {
  const open = await sharedDatabase();
  const request = { clientId: "old-client", requestId: 3 };
  // A record as a Walk-in from before receipts wrote it: a document of the system table.
  const writer = await openEngine(await open());
  await writer.runSystemMutation((txn) => txn.insertSystem("_client_requests", { ...request, result: "old answer" }));
  await writer.close();

  const engine = await openEngine(await open());
  const again = await engine.runClientMutation("items:add", { n: 1 }, { fromClient: true }, request);
  expect(again).toMatchObject({ deduplicated: true, value: "old answer" });
  // Also when claimed as a first send: while the table may hold records, every request is
  // looked up, since nothing would refuse a second record there ("First sends", c).
  const claimed = await engine.runClientMutation("items:add", { n: 1 }, { fromClient: true }, { ...request, firstSend: true });
  expect(claimed).toMatchObject({ deduplicated: true, value: "old answer" });
  expect(await engine.runQuery("items:count", {})).toBe(0);

  const now = Date.now();
  expect(await engine.pruneClientRequests(now)).toEqual({ receipts: 0, legacy: 0 });
  expect(await engine.pruneClientRequests(now + CLIENT_REQUEST_RETENTION_MS + 1000)).toEqual({ receipts: 0, legacy: 1 });
  const count = () => engine.read(async (txn) => {
    const table = engine.catalog.lookup("_client_requests", { system: true })!;
    let n = 0;
    for await (const _ of txn.scan(table.indexes.get("by_id")!, {}, "asc")) n += 1;
    return n;
  });
  expect(await count()).toBe(0);
});

it("sees a legacy record written by another engine after its snapshot (a rolling deploy on a shared database)", async () => {
  const open = await sharedDatabase();
  const request = { clientId: "old-client", requestId: 4 };
  const current = await openEngine(await open());
  // The other engine stands for a node of the previous version, which still writes the table.
  const previous = await openEngine(await open());
  await previous.runSystemMutation((txn) => txn.insertSystem("_client_requests", { ...request, result: "from the old node" }));
  // `current` opened with the table empty and has not learned of that commit yet.
  const again = await current.runClientMutation("items:add", { n: 1 }, { fromClient: true }, request);
  expect(again).toMatchObject({ deduplicated: true, value: "from the old node" });
  expect(await current.runQuery("items:count", {})).toBe(0);
});

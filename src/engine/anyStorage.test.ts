/**
 * The engine is correct whatever its storage's latency and failures: serializable when every
 * call takes milliseconds, exact when a commit's outcome is unknown, clear when storage throws,
 * hangs or goes back in time, and storage drivers run outside the handlers' sandbox.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, type ApiFromModules, defineSchema, defineTable, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import { withLatency } from "../storage/latency.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { CommitOutcomeUnknownError, type Storage } from "../storage/types.js";
import { Engine } from "./engine.js";
import { HookedStorage } from "./fixtures/hookedStorage.js";

const schema = defineSchema({
  counters: defineTable({ name: v.string(), value: v.number() }).index("by_name", ["name"]),
});

const counters = {
  increment: mutation({
    args: { name: v.string() },
    handler: async (ctx, { name }) => {
      const counter = await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", name)).unique();
      if (counter) await ctx.db.patch(counter._id, { value: counter.value + 1 });
      else await ctx.db.insert("counters", { name, value: 1 });
    },
  }),
  all: query({
    args: {},
    handler: async (ctx) => Object.fromEntries((await ctx.db.query("counters").collect()).map((c) => [c.name, c.value])),
  }),
  clocks: mutation({
    args: { id: v.id("counters") },
    handler: async (ctx, { id }) => {
      const before = Date.now();
      await ctx.db.get(id);
      return [before, Date.now()];
    },
  }),
};
const modules = { counters };
const api = anyApi as unknown as ApiFromModules<typeof modules>;

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Runs `total` increments at once over `names`; returns the acknowledged count per name. */
async function incrementConcurrently(run: (name: string) => Promise<unknown>, names: string[], total: number) {
  const outcomes = await Promise.allSettled(Array.from({ length: total }, (_, i) => run(names[i % names.length]!)));
  const acknowledged: Record<string, number> = {};
  outcomes.forEach((outcome, i) => {
    const name = names[i % names.length]!;
    if (outcome.status === "fulfilled") acknowledged[name] = (acknowledged[name] ?? 0) + 1;
    else expect(String(outcome.reason)).toMatch(/kept conflicting/); // the only acceptable failure
  });
  return acknowledged;
}

describe("at a networked database's latency", () => {
  it("3,000 concurrent increments over 30 counters lose nothing, five runs in a row", async () => {
    const names = Array.from({ length: 30 }, (_, i) => `c${i}`);
    for (let run = 0; run < 5; run++) {
      const storage = withLatency(await openSqliteStorage({ filename: ":memory:" }), { read: [0, 3], commit: 4 });
      const t = walkinTest(schema, modules, { storage });
      const acknowledged = await incrementConcurrently((name) => t.mutation(api.counters.increment, { name }), names, 3000);
      expect(await t.query(api.counters.all, {}), `run ${run}`).toEqual(acknowledged);
      expect((await t.engine()).stats.conflictRetries, `run ${run}`).toBeGreaterThan(0);
      await t.close();
    }
  }, 300_000);

  it("two engines on one database file stay serializable (a hot reload's old and new engine)", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-two-engines-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const filename = path.join(dir, "data.sqlite");
    const open = async () =>
      Engine.open({ storage: withLatency(await openSqliteStorage({ filename }), { read: [0, 2], commit: 3 }), schema, modules, runScheduler: false });
    const a = await open();
    const b = await open();
    cleanups.push(() => a.close(), () => b.close());
    const engines = [a, b];
    let i = 0;
    const acknowledged = await incrementConcurrently(
      (name) => engines[i++ % 2]!.runMutation("counters:increment", { name }),
      ["x", "y", "z"],
      600,
    );
    await a.refreshFromStorage();
    expect(await a.runQuery("counters:all", {})).toEqual(acknowledged);
    expect(a.stats.conflictRetries + b.stats.conflictRetries).toBeGreaterThan(0);
  }, 120_000);
});

describe("storage runs outside the handler's sandbox", () => {
  let server: Server;
  afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  it("a driver called from a mutation sees the real clock and can fetch", async () => {
    server = createServer((_req, res) => res.end("pong"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
    const seen: Array<{ waited: number; fetched: string }> = [];
    const storage = new HookedStorage(await openSqliteStorage({ filename: ":memory:" }));
    const t = walkinTest(schema, modules, { storage });
    cleanups.push(() => t.close());
    const id = await t.run((ctx) => ctx.db.insert("counters", { name: "n", value: 0 }));

    storage.hooks.read = async (operation, read) => {
      if (operation !== "getDocument") return read();
      const start = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 30));
      const waited = Date.now() - start;
      seen.push({ waited, fetched: await (await fetch(url)).text() });
      return read();
    };
    const [before, after] = (await t.mutation(api.counters.clocks, { id })) as number[];
    expect(seen.length).toBeGreaterThan(0);
    for (const call of seen) {
      expect(call.waited).toBeGreaterThanOrEqual(29); // a frozen clock would say 0
      expect(call.fetched).toBe("pong");
    }
    expect(after).toBe(before); // ...while the handler's own clock stays fixed
  });
});

describe("exact commit outcomes", () => {
  for (const landed of [true, false]) {
    it(`a connection lost after COMMIT was sent (${landed ? "it landed" : "it did not land"}) applies every mutation once`, async () => {
      const storage = new HookedStorage(withLatency(await openSqliteStorage({ filename: ":memory:" }), { read: [0, 1], commit: 2 }));
      const t = walkinTest(schema, modules, { storage });
      cleanups.push(() => t.close());
      await t.engine();
      let commits = 0;
      storage.hooks.commitBatch = async (commit, since, plan) => {
        if (++commits % 3 !== 0) return commit();
        if (landed) await commit();
        // Not landed: the lock was taken and the batch planned, then the transaction was lost.
        else await storage.inner.commitBatch(since, (view) => (plan(view), []));
        throw new CommitOutcomeUnknownError("connection lost after COMMIT was sent");
      };
      // Waves of 30 over 10 counters: contended enough to retry, never enough to give up.
      const names = Array.from({ length: 10 }, (_, i) => `c${i}`);
      for (let wave = 0; wave < 10; wave++) {
        expect(await incrementConcurrently((name) => t.mutation(api.counters.increment, { name }), names, 30)).toEqual(
          Object.fromEntries(names.map((name) => [name, 3])),
        );
      }
      expect(await t.query(api.counters.all, {})).toEqual(Object.fromEntries(names.map((name) => [name, 30])));
      expect(commits).toBeGreaterThan(10);
    }, 60_000);
  }
});

describe("a storage that misbehaves gets a clear error and changes nothing", () => {
  async function engineOn(storage: Storage, storageTimeoutMs?: number) {
    const engine = await Engine.open({ storage, schema, modules, runScheduler: false, storageTimeoutMs, storageRetryMs: 150, logError: () => {} });
    cleanups.push(() => engine.close());
    return engine;
  }

  it("a read that throws names the storage and the operation", async () => {
    const storage = new HookedStorage(await openSqliteStorage({ filename: ":memory:" }));
    const engine = await engineOn(storage);
    storage.hooks.read = async (operation, read) => (operation === "scan" ? Promise.reject(new Error("socket closed")) : read());
    await expect(engine.runMutation("counters:increment", { name: "a" })).rejects.toThrow(
      /Storage hooked sqlite::memory:: scan failed: socket closed/,
    );
    storage.hooks.read = undefined;
    expect(await engine.runQuery("counters:all", {})).toEqual({});
  });

  it("a call that hangs fails after the timeout; a commit that hangs is resolved by asking storage", async () => {
    const storage = new HookedStorage(await openSqliteStorage({ filename: ":memory:" }));
    const engine = await engineOn(storage, 100);
    storage.hooks.read = (operation, read) => (operation === "scan" ? new Promise(() => {}) : read());
    await expect(engine.runMutation("counters:increment", { name: "a" })).rejects.toThrow(/scan did not finish within 100 ms/);
    storage.hooks.read = undefined;

    // The commit hangs before it reaches the database: the engine asks, learns it did not
    // land, and runs the mutation again.
    let hung = 0;
    storage.hooks.commitBatch = (commit) => (hung++ === 0 ? new Promise(() => {}) : commit());
    await engine.runMutation("counters:increment", { name: "a" });
    expect(hung).toBe(2);
    expect(await engine.runQuery("counters:all", {})).toEqual({ a: 1 });
  });

  it("a commit that timed out before reaching the lock and arrives later writes nothing: the retry is the only write", async () => {
    const storage = new HookedStorage(await openSqliteStorage({ filename: ":memory:" }));
    const engine = await engineOn(storage, 100);
    let late: Promise<unknown> | undefined;
    storage.hooks.commitBatch = (commit) => {
      storage.hooks.commitBatch = undefined; // only the first attempt is slow
      late = new Promise((resolve) => setTimeout(resolve, 300)).then(commit).catch((error: Error) => error.message);
      return late as never;
    };
    await engine.runMutation("counters:increment", { name: "a" });
    expect(await late).toMatch(/given up after a timeout/);
    expect(await engine.runQuery("counters:all", {})).toEqual({ a: 1 });
  });

  it("a commit that fails writes nothing and tells no subscriber", async () => {
    const storage = new HookedStorage(await openSqliteStorage({ filename: ":memory:" }));
    const engine = await engineOn(storage);
    const seen: unknown[] = [];
    const sub = await engine.subscriptions.subscribe("counters:all", {}, {}, (outcome) => seen.push(outcome));
    storage.hooks.commitBatch = () => Promise.reject(new Error("disk full"));
    await expect(engine.runMutation("counters:increment", { name: "a" })).rejects.toThrow(/Storage hooked sqlite::memory:.*disk full/);
    storage.hooks.commitBatch = undefined;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(seen).toEqual([]);
    expect(await engine.runQuery("counters:all", {})).toEqual({});
    await engine.runMutation("counters:increment", { name: "a" });
    expect(await engine.runQuery("counters:all", {})).toEqual({ a: 1 });
    sub.unsubscribe();
  });

  it("an outage shorter than storageRetryMs is ridden out: calls wait, live queries never show an error", async () => {
    const storage = new HookedStorage(await openSqliteStorage({ filename: ":memory:" }));
    const engine = await Engine.open({ storage, schema, modules, runScheduler: false, storageRetryMs: 5_000, logError: () => {} });
    cleanups.push(() => engine.close());
    await engine.runMutation("counters:increment", { name: "a" });
    const seen: unknown[] = [];
    const sub = await engine.subscriptions.subscribe("counters:all", {}, {}, (outcome) => seen.push(outcome));
    let down = true;
    const fail = () => Promise.reject(new Error("connection refused"));
    storage.hooks.read = (_operation, read) => (down ? fail() : read());
    storage.hooks.commitBatch = (commit) => (down ? fail() : commit());
    engine.subscriptions.invalidateAll(); // its re-run meets the outage
    const during = [engine.runMutation("counters:increment", { name: "a" }), engine.runQuery("counters:all", {})];
    await new Promise((resolve) => setTimeout(resolve, 300));
    down = false;
    await Promise.all(during);
    expect(await engine.runQuery("counters:all", {})).toEqual({ a: 2 });
    await engine.catchUpTo(engine.latestTimestamp);
    expect(seen.length).toBeGreaterThan(0);
    for (const outcome of seen) expect(outcome).toMatchObject({ ok: true });
    expect(seen.at(-1)).toEqual({ ok: true, value: { a: 2 } });
    sub.unsubscribe();
  });

  it("a clock that goes backwards is refused, naming the problem", async () => {
    const storage = new HookedStorage(await openSqliteStorage({ filename: ":memory:" }));
    const engine = await engineOn(storage);
    await engine.runMutation("counters:increment", { name: "a" });
    storage.hooks.commitBatch = (_commit, since, plan) => storage.inner.commitBatch(since, (view) => plan({ ...view, latest: 0 }));
    await expect(engine.runMutation("counters:increment", { name: "a" })).rejects.toThrow(/timestamps went backwards/);
    storage.hooks.commitBatch = undefined;
    expect(await engine.runQuery("counters:all", {})).toEqual({ a: 1 });
  });
});

/**
 * Nothing outside the engine sees a commit before storage has made it durable
 * (`Storage.whenDurable`; SQLite under synchronous=FULL syncs its log off the main thread:
 * storage/sqlite/walSync.ts). Each test holds durability back with a storage wrapper, checks
 * that the commit is kept from one way out of the engine, then lets it go. Transactions inside
 * the engine may read the commit at once: that is what lets live queries re-run during the sync.
 *
 * Each test fails without its gate: `onceDurable` for mutations and one-shot queries (engine.ts),
 * the published snapshot (subscriptions.ts, `flush` and `onCommit`), the scheduler's claim
 * (`runSystemMutation`), the dashboard's reads (`readDurable`, `durableThrough`).
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, defineSchema, defineTable, internalAction, internalMutation, mutation, query } from "../server/index.js";
import { getDocument, listDocuments } from "../dashboard/api/documents.js";
import { appTable, countDocuments } from "../dashboard/api/tables.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import type { CommitOptions, CommitPlanner, Storage, Timestamp } from "../storage/types.js";
import { v } from "../values/index.js";
import { Engine } from "./engine.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Wraps a storage: commits land as usual, but after `hold`, none becomes durable until
 * `release` says so (the engine's own commits while it opens are durable at once).
 */
function heldDurability(inner: Storage) {
  let durable = 0;
  let holding = false;
  const asked: Timestamp[] = [];
  const commitOptions: Array<CommitOptions | undefined> = [];
  const waiters: Array<{ ts: Timestamp; resolve: () => void }> = [];
  const whenDurable = (ts: Timestamp): Promise<void> | null => {
    asked.push(ts);
    if (ts <= durable || !holding) return null;
    return new Promise<void>((resolve) => waiters.push({ ts, resolve }));
  };
  const storage = new Proxy(inner, {
    get(target, property, receiver) {
      if (property === "whenDurable") return whenDurable;
      if (property === "commitBatch") {
        return (since: Timestamp, plan: CommitPlanner, options?: CommitOptions) => {
          commitOptions.push(options);
          return target.commitBatch(since, plan, options);
        };
      }
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    storage,
    asked,
    commitOptions,
    /** Commits from now on are not durable until `release`. */
    hold() {
      holding = true;
    },
    /** Makes every commit so far durable, and every later one at once until the next `hold`. */
    release() {
      holding = false;
      durable = Math.max(durable, ...asked);
      for (const waiter of waiters.splice(0)) waiter.resolve();
    },
  };
}

const schema = defineSchema({
  rooms: defineTable({ name: v.string() }),
  /** A table no live query of these tests reads. */
  notes: defineTable({ text: v.string() }),
});

/** What scheduled actions did, outside the engine (a stand-in for an email sent, a card charged). */
const sentOutside: string[] = [];

const modules = {
  rooms: {
    create: mutation({ args: { name: v.string() }, handler: (ctx, { name }) => ctx.db.insert("rooms", { name }) }),
    rename: mutation({ args: { id: v.id("rooms"), name: v.string() }, handler: (ctx, { id, name }) => ctx.db.patch(id, { name }) }),
    list: query({ args: {}, handler: async (ctx) => (await ctx.db.query("rooms").collect()).map((room) => room.name) }),
    count: query({ args: {}, handler: async (ctx) => (await ctx.db.query("rooms").collect()).length }),
    /** Fails naming what it read: the error tells of the commit as much as a result would. */
    failWithCount: mutation({
      args: {},
      handler: async (ctx) => {
        const rooms = await ctx.db.query("rooms").collect();
        throw new Error(`saw ${rooms.length} rooms`);
      },
    }),
    createAndNotify: mutation({
      args: { name: v.string() },
      handler: async (ctx, { name }) => {
        await ctx.db.insert("rooms", { name });
        await ctx.scheduler.runAfter(0, anyApi.rooms!.notify!, { name });
      },
    }),
    notify: internalAction({ args: { name: v.string() }, handler: async (_ctx, { name }) => void sentOutside.push(name) }),
    unused: internalMutation({ args: {}, handler: async () => null }),
  },
  notes: {
    create: mutation({ args: { text: v.string() }, handler: (ctx, { text }) => ctx.db.insert("notes", { text }) }),
  },
};

const engines: Engine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((engine) => engine.close()));
  sentOutside.length = 0;
});

async function open(options: { runScheduler?: boolean } = {}) {
  const held = heldDurability(await openSqliteStorage({ filename: ":memory:" }));
  const engine = await Engine.open({ storage: held.storage, schema, modules, runScheduler: options.runScheduler ?? false });
  engines.push(engine);
  held.hold();
  return { engine, held };
}

/** Whether `promise` has settled after a few turns of the event loop. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await sleep(20);
  return done;
}

describe("commits not yet durable stay inside the engine", () => {
  it("a mutation is answered only once its commit is durable", async () => {
    const { engine, held } = await open();
    const created = engine.runMutation("rooms:create", { name: "lobby" });
    expect(await settled(created)).toBe(false);
    held.release();
    const { ts } = await created;
    expect(held.asked).toContain(ts);
  });

  it("a one-shot query whose snapshot holds a commit not yet durable waits for it, and sees it", async () => {
    const { engine, held } = await open();
    const created = engine.runMutation("rooms:create", { name: "lobby" });
    await sleep(5); // landed, not durable
    const listed = engine.runQuery("rooms:list", {});
    expect(await settled(listed)).toBe(false);
    held.release();
    await created;
    expect(await listed).toEqual(["lobby"]);
  });

  it("a mutation that fails after reading a commit not yet durable reports its error only once it is", async () => {
    const { engine, held } = await open();
    const created = engine.runMutation("rooms:create", { name: "lobby" });
    await sleep(5);
    const failed = engine.runMutation("rooms:failWithCount", {});
    failed.catch(() => {});
    expect(await settled(failed)).toBe(false);
    held.release();
    await created;
    await expect(failed).rejects.toThrow("saw 1 rooms");
  });

  it("a live query's new result is published only once its snapshot is durable", async () => {
    const { engine, held } = await open();
    const heard: Array<{ value: unknown; ts: number }> = [];
    const subscription = await engine.subscriptions.subscribe("rooms:list", {}, {}, (outcome, ts) => {
      heard.push({ value: outcome.ok ? outcome.value : outcome.error.message, ts });
    });
    expect(subscription.outcome).toEqual({ ok: true, value: [] });
    const created = engine.runMutation("rooms:create", { name: "lobby" });
    await sleep(20);
    // The query re-ran (storage had nothing else to do meanwhile), but nothing was told.
    expect(heard).toEqual([]);
    expect(engine.subscriptions.publishedTimestamp).toBeLessThan(engine.latestTimestamp);
    held.release();
    const { ts } = await created;
    await sleep(20);
    expect(heard).toEqual([{ value: ["lobby"], ts }]);
    expect(engine.subscriptions.publishedTimestamp).toBe(ts);
    subscription.unsubscribe();
  });

  it("a subscription made while a commit is not yet durable starts from a published snapshot, and hears of the commit once it is", async () => {
    const { engine, held } = await open();
    const watching = await engine.subscriptions.subscribe("rooms:list", {}, {}, () => {});
    const before = engine.subscriptions.publishedTimestamp;
    const created = engine.runMutation("rooms:create", { name: "lobby" });
    await sleep(20);
    expect(engine.subscriptions.publishedTimestamp).toBe(before);
    // Its first result needs a snapshot that is published and current: that waits for the sync.
    const subscribing = engine.subscriptions.subscribe("rooms:count", {}, {}, () => {});
    expect(await settled(subscribing)).toBe(false);
    held.release();
    const { ts } = await created;
    const subscription = await subscribing;
    expect(subscription.outcome).toEqual({ ok: true, value: 1 });
    expect(subscription.ts).toBeGreaterThanOrEqual(ts);
    subscription.unsubscribe();
    watching.unsubscribe();
  });

  it("with nothing live, awaited mutations keep the published snapshot moving once durable, without an event-loop turn", async () => {
    // What onCommit published at once before: a script's commits would otherwise pile up in the
    // commit log (about 1 KB each) until something gave the flush a turn.
    const { engine, held } = await open();
    held.release();
    for (let i = 0; i < 5; i++) await engine.runMutation("rooms:create", { name: `r${i}` });
    expect(engine.subscriptions.publishedTimestamp).toBe(engine.latestTimestamp);
  });

  it("a scheduled action does not start before the commit that scheduled it is durable", async () => {
    const { engine, held } = await open({ runScheduler: true });
    const created = engine.runMutation("rooms:createAndNotify", { name: "lobby" });
    await sleep(200);
    expect(sentOutside).toEqual([]);
    held.release();
    await created;
    for (let i = 0; i < 100 && sentOutside.length === 0; i++) await sleep(10);
    expect(sentOutside).toEqual(["lobby"]);
  });

  it("the dashboard's pages see a commit's documents and its table's count only once it is durable", async () => {
    const { engine, held } = await open();
    held.release();
    const { value: id } = await engine.runMutation("rooms:create", { name: "lobby" });
    held.hold();
    const renamed = engine.runMutation("rooms:rename", { id, name: "hall" });
    const created = engine.runMutation("rooms:create", { name: "attic" });
    await sleep(5); // landed, not durable
    const fetched = getDocument(engine, { id });
    const listed = listDocuments(engine, { table: "rooms" });
    const counted = countDocuments(engine, appTable(engine, "rooms"));
    for (const read of [fetched, listed, counted]) expect(await settled(read)).toBe(false);
    held.release();
    await Promise.all([renamed, created]);
    expect((await fetched).doc).toMatchObject({ name: "hall" });
    expect((await listed).page.map((view) => view.doc.name)).toEqual(["attic", "hall"]);
    expect(await counted).toEqual({ count: 2, capped: false });
  });

  it("storage is asked to sync in the background only when the batch leaves live queries to re-run meanwhile", async () => {
    const { engine, held } = await open();
    held.release();
    await engine.runMutation("rooms:create", { name: "a" });
    expect(held.commitOptions.at(-1)).toBeUndefined();
    const subscription = await engine.subscriptions.subscribe("rooms:list", {}, {}, () => {});
    await engine.runMutation("rooms:create", { name: "b" });
    expect(held.commitOptions.at(-1)).toEqual({ durableLater: true });
    // A write no live query read: nothing to re-run while the disk syncs, so the storage syncs
    // in the commit, and the caller is spared the thread pool's two wake-ups. (Once the flush
    // has re-run rooms:list: a query still waiting to re-run is work to overlap too.)
    await sleep(20);
    await engine.runMutation("notes:create", { text: "unwatched" });
    expect(held.commitOptions.at(-1)).toBeUndefined();
    subscription.unsubscribe();
  });
});

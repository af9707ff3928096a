/**
 * A node whose snapshot floor may have stopped counting (its refreshes failed for longer than
 * the floors' stale window: cut off from the database, or frozen) must not answer reads at the
 * snapshots it held: other nodes may have pruned history they see (snapshotFloors.ts,
 * "Fencing"). The stale window is shortened (`snapshotFloorStaleMs`) so that a row lapses in
 * about a second; a node is cut off by making its pool's statements fail, as a network cut does.
 */
import type pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { Engine } from "../../engine/engine.js";
import { defineSchema, defineTable, mutation, query } from "../../server/index.js";
import { v } from "../../values/index.js";
import { commit, entry, put } from "../conformance/context.js";
import { isSnapshotFenced } from "../types.js";
import type { PostgresStorage } from "./postgresStorage.js";
import { quoteIdentifier } from "./schema.js";
import { openTestSchema } from "./testDatabase.js";

/** Rows stop counting 1.5 s after their last refresh; a node fences itself after 1.25 s. */
const STALE_MS = 1_500;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const waitMs = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Query = (config: string | pg.QueryConfig, values?: unknown[]) => Promise<pg.QueryResult>;

/**
 * Puts a switch on `storage`'s pool: while `cut`, every statement fails as on a dead network;
 * `hold(name)` keeps back the next statement of that prepared name until the returned release
 * is called (a read slow to reach the server).
 */
function cuttable(storage: PostgresStorage) {
  const query = storage.pool.query.bind(storage.pool) as Query;
  const state = { cut: false, held: new Map<string, Promise<void>>() };
  storage.pool.query = ((config: string | pg.QueryConfig, values?: unknown[]) => {
    if (state.cut) return Promise.reject(Object.assign(new Error("connect ECONNREFUSED (test cut)"), { code: "ECONNREFUSED" }));
    const name = typeof config === "object" ? config.name : undefined;
    const gate = name === undefined ? undefined : state.held.get(name);
    if (gate === undefined) return query(config, values);
    state.held.delete(name!);
    return gate.then(() => query(config, values));
  }) as never;
  return {
    set cut(on: boolean) {
      state.cut = on;
    },
    hold(name: string): () => void {
      let release!: () => void;
      state.held.set(name, new Promise<void>((resolve) => (release = resolve)));
      return release;
    },
  };
}

async function twoNodes() {
  const target = await openTestSchema({ snapshotFloorStaleMs: STALE_MS, onError: () => {} });
  const a = target.storage;
  const b = await target.open();
  cleanups.push(async () => {
    await a.close();
    await b.close();
    await target.drop();
  });
  return { target, a, b, cutA: cuttable(a) };
}

describe("PostgreSQL: a node cut off for longer than its floor counts", () => {
  it("refuses reads at the snapshots it held once back, as retryable, and reads newer ones", async () => {
    const { a, b, cutA } = await twoNodes();
    await commit(b, { ts: 1, documents: [put("doc", "v1")], indexes: [entry("i", [1], "doc")] });
    // Node A reads at snapshot 1 (its floor is 0, from when it opened).
    expect((await a.getDocument("doc", 1))?.body).toBe("v1");

    cutA.cut = true;
    await waitMs(STALE_MS + 300); // A's row no longer counts for B
    await commit(b, { ts: 2, documents: [put("doc", "v2")], indexes: [] }, 1);
    await b.pruneHistory(2); // B may now prune at 2: v1 is gone
    expect((await b.stats()).documents).toBe(1);
    cutA.cut = false;

    // Without the fence A answered "no such document" at 1, where the document was v1.
    const refused = await a.getDocument("doc", 1).then(() => null, (error: unknown) => error);
    expect(isSnapshotFenced(refused)).toBe(true);
    expect((refused as Error).message).toMatch(/snapshot 1 is older than 2/);
    const scanned = await a.scan({ indexId: "i", range: {}, order: "asc", readTs: 1, limit: 10 }).then(() => null, (error: unknown) => error);
    expect(isSnapshotFenced(scanned)).toBe(true);
    // A registered again at the latest commit: at 2 and after it reads, and B's pruning counts it.
    expect((await a.getDocument("doc", 2))?.body).toBe("v2");
    expect((await a.scan({ indexId: "i", range: {}, order: "asc", readTs: 2, limit: 10 })).map((e) => e.doc.body)).toEqual(["v2"]);
    await commit(b, { ts: 3, documents: [put("doc", "v3")], indexes: [] }, 2);
    await b.pruneHistory(3);
    expect((await a.getDocument("doc", 2))?.body).toBe("v2"); // A's floor (2) held B's pruning back
  });

  it("throws away an answer that arrived after its row may have lapsed, though the read was sent while it counted", async () => {
    const { a, b, cutA } = await twoNodes();
    await commit(b, { ts: 1, documents: [put("doc", "v1")], indexes: [] });
    expect((await a.getDocument("doc", 1))?.body).toBe("v1");

    // The read leaves while A's row counts, and is held up on its way to the server; meanwhile
    // A's refreshes fail, its row lapses and B prunes the version the read is after.
    const release = cutA.hold("walkin_selectDocument");
    const reading = a.getDocument("doc", 1).then((doc) => doc?.body ?? null, (error: unknown) => error);
    cutA.cut = true;
    await waitMs(STALE_MS + 300);
    await commit(b, { ts: 2, documents: [put("doc", "v2")], indexes: [] }, 1);
    await b.pruneHistory(2);
    expect((await b.stats()).documents).toBe(1);
    cutA.cut = false;
    release();
    // The server answers "no such document" at 1 now; checked only before it was sent, that
    // answer was returned.
    const outcome = await reading;
    expect(isSnapshotFenced(outcome)).toBe(true);
  });

  it("re-registers at the latest commit from the heartbeat too, instead of refreshing the old floor", async () => {
    const { a, b, cutA } = await twoNodes();
    await commit(b, { ts: 1, documents: [put("doc", "v1")], indexes: [] });
    cutA.cut = true;
    await waitMs(STALE_MS + 300);
    await commit(b, { ts: 2, documents: [put("doc", "v2")], indexes: [] }, 1);
    cutA.cut = false;
    await waitMs(STALE_MS / 6); // a heartbeat or two, with no read from A
    const s = quoteIdentifier(a.schema);
    const { rows } = await a.pool.query<{ floor: string }>(`SELECT floor FROM ${s}.snapshot_floors ORDER BY floor`);
    // B's row (its floor: 0, from its open) and A's, registered again at 2 (it was 0).
    expect(rows.map((row) => Number(row.floor))).toEqual([0, 2]);
  });
});

// ---------------------------------------------------------------------------------------------
// Through the engine: a one-shot query and a new live query on the node that was cut off end up
// answered at a fresh snapshot, neither wrong nor failed.

const schema = defineSchema({ things: defineTable({ n: v.number() }) });
const modules = {
  m: {
    add: mutation({ args: { n: v.number() }, handler: (ctx, { n }) => ctx.db.insert("things", { n }) }),
    set: mutation({ args: { id: v.id("things"), n: v.number() }, handler: (ctx, { id, n }) => ctx.db.patch(id, { n }) }),
  },
  q: {
    get: query({ args: { id: v.id("things") }, handler: async (ctx, { id }) => (await ctx.db.get(id))?.n ?? "missing" }),
  },
};

async function twoEngines(storageRetryMs: number) {
  const { a, b, cutA } = await twoNodes();
  const engineA = await Engine.open({ storage: a, schema, modules, runScheduler: false, storageRetryMs, logError: () => {} });
  cleanups.push(() => engineA.close());
  const engineB = await Engine.open({ storage: b, schema, modules, runScheduler: false, logError: () => {} });
  cleanups.push(() => engineB.close());
  // B inserts a document; A learns of the commit but never reads the document (nothing cached).
  const id = (await engineB.runMutation("m:add", { n: 1 })).value as string;
  await engineA.refreshFromStorage();
  // A is cut off for longer than its floor counts; meanwhile B updates the document and prunes
  // the version A's snapshot would read.
  cutA.cut = true;
  await waitMs(STALE_MS + 300);
  await engineB.runMutation("m:set", { id, n: 2 });
  await b.pruneHistory(await b.latestTimestamp());
  cutA.cut = false;
  return { engineA, id };
}

describe("an engine whose PostgreSQL node was cut off for longer than its floor counts", () => {
  it("answers a one-shot query at a fresh snapshot, not the pruned old one", async () => {
    const { engineA, id } = await twoEngines(3_000);
    // Without the fence: "missing" (the version at A's snapshot was pruned). Without the engine
    // learning the commits it missed before trying again: the fence's error, once every retry
    // at the old snapshot was refused for storageRetryMs (A hears of no commit on its own for
    // 10 s: its notification of B's came while it was cut off).
    expect(await engineA.runQuery("q:get", { id })).toBe(2);
  });

  it("gives a live query subscribed then its first result at a fresh snapshot, without waiting out storageRetryMs", async () => {
    // Ten minutes of retries: retried at the snapshot published before the cut, every run was
    // refused until storageRetryMs ran out, and only then did the query go live and run again
    // at a newer one; this subscribe would not have come back within the test's time limit.
    const { engineA, id } = await twoEngines(600_000);
    const subscription = await engineA.subscriptions.subscribe("q:get", { id }, {}, () => {});
    cleanups.push(async () => subscription.unsubscribe());
    expect(subscription.outcome).toEqual({ ok: true, value: 2 });
  });
});

/**
 * The engine's commit log stays bounded when a caller awaits mutation after mutation and never
 * lets the event loop come round: nothing then flushes live queries, which used to be the only
 * thing that let the log be trimmed (about 1 KB a commit, for as long as the loop ran).
 */
import { afterEach, expect, it } from "vitest";
import { defineSchema, defineTable, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine, type QueryOutcome } from "./engine.js";

const schema = defineSchema({ notes: defineTable({ text: v.string() }) });
const modules = {
  notes: {
    add: mutation({ args: { text: v.string() }, handler: (ctx, { text }) => ctx.db.insert("notes", { text }) }),
    count: query({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").collect()).length }),
    /** The same count under another name, so that subscribing to it creates a new live query. */
    total: query({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").collect()).length }),
    /** Counts, then waits for the test to open `gate`. */
    gated: query({
      args: {},
      handler: async (ctx) => {
        const count = (await ctx.db.query("notes").collect()).length;
        gateEntered?.();
        await gate;
        return count;
      },
    }),
  },
};

let gate: Promise<void> = Promise.resolve();
let gateEntered: (() => void) | undefined;

let engine: Engine | undefined;
afterEach(async () => {
  await engine?.close();
  engine = undefined;
});

async function open(): Promise<Engine> {
  engine = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema, modules, runScheduler: false });
  return engine;
}

/** Runs `n` mutations back to back; fails if the event loop came round meanwhile. */
async function addInATightLoop(engine: Engine, n: number): Promise<void> {
  let turned = false;
  const immediate = setImmediate(() => (turned = true));
  for (let i = 0; i < n; i++) await engine.runMutation("notes:add", { text: `note ${i}` });
  clearImmediate(immediate);
  expect(turned, "the loop must not give the event loop a turn, or it tests nothing").toBe(false);
}

it("keeps the commit log short when nothing is subscribed, however long the loop", async () => {
  const engine = await open();
  await addInATightLoop(engine, 1_000);
  // Trimmed every 256 commits, up to the newest: nothing is live, so nothing holds it back.
  expect(engine.commitLogSize).toBeLessThanOrEqual(256);
});

it("bounds the commit log while queries are live, and they still see every commit", async () => {
  const engine = await open();
  const seen: number[] = [];
  const subscription = await engine.subscriptions.subscribe("notes:count", {}, {}, (outcome: QueryOutcome) => {
    if (outcome.ok) seen.push(outcome.value as number);
  });
  expect(subscription.outcome).toEqual({ ok: true, value: 0 });

  await addInATightLoop(engine, 5_000);
  expect(engine.commitLogSize).toBeLessThanOrEqual(4_096 + 256);

  // A query subscribed now runs at the snapshot published before the loop, whose commits the
  // log no longer holds: it must not answer from that snapshot as if it were current.
  const late = await engine.subscriptions.subscribe("notes:total", {}, {}, () => {});
  expect(late.outcome).toEqual({ ok: true, value: 5_000 });
  await engine.subscriptions.waitPublished(engine.latestTimestamp);
  expect(seen.at(-1)).toBe(5_000);
  subscription.unsubscribe();
  late.unsubscribe();
});

it("never moves the published snapshot backwards when a flush ends after a newer commit was published", async () => {
  const engine = await open();
  const subscription = await engine.subscriptions.subscribe("notes:gated", {}, {}, () => {});
  // 1. The query is live; a commit makes it dirty, and the flush at that commit (T1) re-runs it
  //    and stops at the gate.
  let openGate!: () => void;
  gate = new Promise((resolve) => (openGate = resolve));
  const entered = new Promise<void>((resolve) => (gateEntered = resolve));
  await engine.runMutation("notes:add", { text: "first" });
  const t1 = engine.latestTimestamp;
  await entered;
  // 2. The query goes away, so nothing is live: the next commit (T2) is published at once.
  subscription.unsubscribe();
  await engine.runMutation("notes:add", { text: "second" });
  const t2 = engine.latestTimestamp;
  expect(t2).toBeGreaterThan(t1);
  expect(engine.subscriptions.publishedTimestamp).toBe(t2);
  // 3. The flush at T1 ends: it must leave T2 published, not go back to T1 (a later flush
  //    would publish T2 again, so look at what each flush leaves, as it ends).
  const publishedAtFlush: number[] = [];
  const stop = engine.subscriptions.onFlush((ts) => publishedAtFlush.push(ts, engine.subscriptions.publishedTimestamp));
  openGate();
  await new Promise((resolve) => setTimeout(resolve, 20));
  stop();
  expect(publishedAtFlush.length).toBeGreaterThan(0);
  expect(Math.min(...publishedAtFlush)).toBe(t2);
  gate = Promise.resolve();
  gateEntered = undefined;
});

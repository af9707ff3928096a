/**
 * Crons and scheduled functions where Convex documents what happens, on real engines over a real
 * database (an SQLite file; a PostgreSQL schema under WALKIN_TEST_STORAGE=postgres):
 *  - "At most one run of each cron job can be executing at any moment. If the function scheduled
 *    by the cron job takes too long to run, following runs of the cron job may be skipped"
 *    (https://docs.convex.dev/scheduling/cron-jobs, "Error handling"), on one node and across
 *    nodes sharing the database;
 *  - a scheduled function's `name` in `_scheduled_functions` is its path with the module's `.js`,
 *    `"messages.js:destruct"` (https://docs.convex.dev/scheduling/scheduled-functions, "Retrieving
 *    scheduled function status");
 *  - `cancel` of a job that already finished does nothing, also once the week's retention has
 *    deleted it (Convex's `SchedulerModel::cancel` ignores a job it no longer finds).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { cronJobs, defineSchema, defineTable, internalAction, internalMutation, makeFunctionReference, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import type { Storage } from "../storage/types.js";
import { withTestLatency } from "../testing/testStorage.js";
import { Engine } from "./engine.js";
import { QueryImpl } from "./query.js";
import { useSchedulerEngines, waitFor } from "./fixtures/schedulerEngines.js";

const ref = {
  hold: makeFunctionReference<"action">("work:hold"),
  record: makeFunctionReference<"mutation", { kind: string }>("work:record"),
  nested: makeFunctionReference<"mutation">("lib/tasks:work"),
};

const schema = defineSchema({ events: defineTable({ kind: v.string() }) });

/** A promise that resolves when `open` is called. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** Runs of `work:hold` in this process, and the gate they wait at until the test opens it. */
let held = { started: 0, gate: gate() };

const work = {
  hold: internalAction({
    args: {},
    handler: async () => {
      held.started++;
      await held.gate.opened;
    },
  }),
  record: internalMutation({ args: { kind: v.string() }, handler: (ctx, { kind }) => ctx.db.insert("events", { kind }) }),
  schedule: mutation({
    args: {},
    handler: async (ctx) => [await ctx.scheduler.runAfter(0, ref.record, { kind: "a" }), await ctx.scheduler.runAfter(0, ref.nested, {})],
  }),
  names: query({ args: {}, handler: async (ctx) => (await ctx.db.system.query("_scheduled_functions").collect()).map((job) => job.name) }),
  nameOf: query({ args: { id: v.id("_scheduled_functions") }, handler: async (ctx, { id }) => (await ctx.db.system.get(id))?.name ?? null }),
  countNamed: query({
    args: { name: v.string() },
    handler: async (ctx, { name }) => (await ctx.db.system.query("_scheduled_functions").filter((q) => q.eq(q.field("name"), name)).collect()).length,
  }),
  cancel: mutation({ args: { id: v.id("_scheduled_functions") }, handler: (ctx, { id }) => ctx.scheduler.cancel(id) }),
  cancelFromAction: internalAction({ args: { id: v.id("_scheduled_functions") }, handler: (ctx, { id }) => ctx.scheduler.cancel(id) }),
};
const tasks = { work: internalMutation({ args: {}, handler: (ctx) => ctx.db.insert("events", { kind: "nested" }) }) };

const modules = { work, "lib/tasks": tasks };
const { tempFile, open } = useSchedulerEngines(schema, modules);

function holdingCron() {
  const crons = cronJobs();
  crons.interval("slow sync", { seconds: 1 }, ref.hold);
  return { crons: { default: crons } };
}

async function systemRows(engine: Engine, table: "_scheduled_functions" | "_cron_jobs") {
  return engine.read((txn) => new QueryImpl(txn, engine.catalog.lookup(table, { system: true })!).collect());
}

/** Resolves once the cron's next due time has moved on from what it is now: a due time came and went. */
async function nextDueTimePassed(engine: Engine): Promise<void> {
  const [before] = await systemRows(engine, "_cron_jobs");
  await waitFor(async () => ((await systemRows(engine, "_cron_jobs"))[0]!.nextRun as number) > (before!.nextRun as number), 10_000, "the cron's due time never passed");
}

// ---------------------------------------------------------------------------------------------
// Storage shared by several engines (nodes): a PostgreSQL schema, or one SQLite file.

const cleanups: (() => Promise<void>)[] = [];
// Registered after useSchedulerEngines', so it runs before that one closes its engines (hooks run
// last registered first): the gate opens first, or closing would wait for the held runs.
afterEach(async () => {
  held.gate.open();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function sharedDatabase(): Promise<() => Promise<Storage>> {
  if (process.env["WALKIN_TEST_STORAGE"] === "postgres") {
    const { openTestSchema } = await import("../storage/postgres/testDatabase.js");
    const target = await openTestSchema();
    await target.storage.close();
    cleanups.push(() => target.drop());
    return () => target.open();
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-cron-parity-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const filename = path.join(dir, "db.sqlite");
  return async () => withTestLatency(await openSqliteStorage({ filename }));
}

async function openNode(storage: Storage, extraModules: Record<string, Record<string, unknown>>, runScheduler: boolean): Promise<Engine> {
  const engine = await Engine.open({ storage, schema, modules: { ...modules, ...extraModules }, runScheduler, pollIntervalMs: 20, logError: () => {} });
  cleanups.push(() => engine.close());
  return engine;
}

describe("a cron whose previous run is still going", () => {
  it("skips the runs that fall due meanwhile, says so in the log, and runs again once the previous run is over", async () => {
    held = { started: 0, gate: gate() };
    const logged: string[] = [];
    const engine = await open(tempFile(), { extraModules: holdingCron(), logError: (message) => logged.push(message) });
    await waitFor(async () => held.started === 1, 10_000, "the cron never ran");
    // Two due times come and go while the first run is held.
    await nextDueTimePassed(engine);
    await nextDueTimePassed(engine);
    // Fails without the fix: each due time enqueued another run, and the scheduler started it.
    expect(held.started).toBe(1);
    expect((await systemRows(engine, "_scheduled_functions")).map((job) => job.state)).toEqual(["inProgress"]);
    expect(logged.some((message) => message.includes('Cron "slow sync" skipped'))).toBe(true);
    held.gate.open();
    await waitFor(async () => held.started === 2, 10_000, "the cron did not run again after its previous run finished");
    expect((await systemRows(engine, "_scheduled_functions"))[0]!.state).toBe("success");
  });

  it("holds across nodes sharing the database: a node that starts while another runs the cron does not start it again", async () => {
    held = { started: 0, gate: gate() };
    const storage = await sharedDatabase();
    // The first node runs the cron's first run and is held in it; its loop is off, so the skips
    // below are the second node's, made from the database alone.
    const first = await openNode(await storage(), holdingCron(), false);
    const [row] = await systemRows(first, "_cron_jobs");
    await waitFor(async () => Date.now() >= (row!.nextRun as number));
    const firstRunning = first.scheduler.runUntilIdle();
    await waitFor(async () => held.started === 1, 10_000, "the cron never ran");
    // A second node starts (a deploy, a restart elsewhere) and shares the cron: the rule must be
    // in the database, not in the memory of the node running the held run.
    const second = await openNode(await storage(), holdingCron(), true);
    await nextDueTimePassed(second);
    await nextDueTimePassed(second);
    expect(held.started).toBe(1);
    expect((await systemRows(second, "_scheduled_functions")).map((job) => job.state)).toEqual(["inProgress"]);
    held.gate.open();
    await firstRunning;
    await waitFor(async () => held.started >= 2, 10_000, "the cron did not run again after its previous run finished");
  });
});

describe("_scheduled_functions as ctx.db.system shows it", () => {
  it("names a job by its path with the module's .js, as Convex does, and still runs it", async () => {
    const engine = await open(":memory:", { runScheduler: false });
    const [id] = (await engine.runMutation("work:schedule", {})).value as [string, string];
    expect(await engine.runQuery("work:names", {})).toEqual(["work.js:record", "lib/tasks.js:work"]);
    expect(await engine.runQuery("work:nameOf", { id })).toBe("work.js:record");
    expect(await engine.runQuery("work:countNamed", { name: "work.js:record" })).toBe(1);
    // Stored as called: the scheduler resolves and runs both.
    await engine.scheduler.runUntilIdle();
    expect((await systemRows(engine, "_scheduled_functions")).map((job) => job.state)).toEqual(["success", "success"]);
  });
});

describe("ctx.scheduler.cancel of a job that is over", () => {
  it("does nothing once retention has deleted the job, from a mutation and from an action", async () => {
    const engine = await open(":memory:", { runScheduler: false });
    const [id] = (await engine.runMutation("work:schedule", {})).value as [string, string];
    await engine.scheduler.runUntilIdle();
    // A week later the retention sweep deletes the finished job.
    await engine.runSystemMutation((txn) => txn.delete(id, { system: true }));
    // Fails without the fix: NOT_FOUND, so code that cancels a reminder it scheduled long ago throws.
    await engine.runMutation("work:cancel", { id });
    await engine.runAction("work:cancelFromAction", { id });
    expect(await systemRows(engine, "_scheduled_functions")).toHaveLength(1); // the other job, untouched
  });
});

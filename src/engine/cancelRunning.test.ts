/**
 * Canceling a scheduled action while it runs (found in a review, each case failing before its
 * fix): the dashboard's Cancel does what `ctx.scheduler.cancel` does (the action finishes, what
 * it schedules afterwards is canceled), and a cron whose running action was canceled does not
 * start its next run until that action has actually ended, while `ctx.db.system` shows the
 * canceled job the same from the cancel on. Real engines over SQLite files, a real server.
 */
import { afterEach, describe, expect, it } from "vitest";
import { cronJobs, internalAction, internalMutation, makeFunctionReference, mutation, query, defineSchema, defineTable } from "../server/index.js";
import { v } from "../values/index.js";
import { Dashboard } from "../dashboard/api/dashboard.js";
import { startServer, type WalkinServer } from "../transport/index.js";
import type { Engine } from "./engine.js";
import { useSchedulerEngines, waitFor } from "./fixtures/schedulerEngines.js";
import { QueryImpl } from "./query.js";

const ref = {
  record: makeFunctionReference<"mutation", { kind: string }>("jobs:record"),
  slow: makeFunctionReference<"action">("jobs:slow"),
};

const schema = defineSchema({ events: defineTable({ kind: v.string() }) });

/** How many times `jobs:slow` started, and the gate every run of it waits at until the test opens it. */
let slowStarts = 0;
let openGate: () => void = () => {};
let gate = new Promise<void>((resolve) => (openGate = resolve));

const jobs = {
  record: internalMutation({ args: { kind: v.string() }, handler: (ctx, { kind }) => ctx.db.insert("events", { kind }) }),
  /** Runs until the gate opens, then schedules a follow-up: canceled if this run was canceled meanwhile. */
  slow: internalAction({
    args: {},
    handler: async (ctx) => {
      slowStarts++;
      await gate;
      await ctx.scheduler.runAfter(0, ref.record, { kind: "after slow" });
    },
  }),
  startSlow: mutation({ args: {}, handler: (ctx) => ctx.scheduler.runAfter(0, ref.slow, {}) }),
  cancel: mutation({ args: { id: v.string() }, handler: (ctx, { id }) => ctx.scheduler.cancel(id as never) }),
  /** The job as app code sees it. */
  shown: query({ args: { id: v.string() }, handler: (ctx, { id }) => ctx.db.system.get(id as never) }),
  list: query({ args: {}, handler: async (ctx) => (await ctx.db.query("events").collect()).map((e) => e.kind) }),
};

const { tempFile, open } = useSchedulerEngines(schema, { jobs });

// Registered after the engines' cleanup, so it runs before it (afterEach hooks run last-registered
// first): a run still waiting at the gate would hold up closing its engine.
afterEach(() => {
  openGate();
  slowStarts = 0;
  gate = new Promise<void>((resolve) => (openGate = resolve));
});

const servers: WalkinServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function jobsNamed(engine: Engine, name: string) {
  return engine.read(async (txn) => {
    const rows = await new QueryImpl(txn, engine.catalog.lookup("_scheduled_functions", { system: true })!).collect();
    return rows.filter((row) => row.name === name);
  });
}

async function stateOf(engine: Engine, id: string) {
  return (await engine.read((txn) => txn.get(id, { system: true })))?.state;
}

describe("the dashboard's Cancel of a running action", () => {
  it("marks it canceled as ctx.scheduler.cancel does: it finishes, and what it schedules afterwards is canceled", async () => {
    const key = "cancel-running-admin-key-0123456789abcdef";
    const dashboard = new Dashboard({ adminKey: key });
    const engine = await open(tempFile());
    const server = await startServer({ engine, port: 0, log: () => {}, dashboard });
    servers.push(server);
    const cancel = async (id: string) => {
      const response = await fetch(`${server.url}/api/admin/scheduler/cancel`, {
        method: "POST",
        headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
        body: JSON.stringify({ id }),
      });
      return { status: response.status, json: (await response.json()) as Record<string, unknown> };
    };

    const id = (await engine.runMutation("jobs:startSlow", {})).value as string;
    await waitFor(async () => (await stateOf(engine, id)) === "inProgress");
    expect(await cancel(id)).toEqual({ status: 200, json: { canceled: true } });
    expect(await stateOf(engine, id)).toBe("canceled");

    openGate();
    await waitFor(async () => (await jobsNamed(engine, "jobs:record")).length === 1);
    const [followUp] = await jobsNamed(engine, "jobs:record");
    expect(followUp!.state).toBe("canceled");
    await waitFor(async () => (await engine.read((txn) => txn.get(id, { system: true })))?.leaseUntil === undefined);
    expect(await stateOf(engine, id)).toBe("canceled"); // its end leaves the cancel in place
    expect(await engine.runQuery("jobs:list", {})).toEqual([]);

    // A job that is over is left as it is, as ctx.scheduler.cancel leaves it.
    expect(await cancel(id)).toEqual({ status: 200, json: { canceled: false, state: "canceled" } });
  });
});

describe("a cron whose running action was canceled", () => {
  it("does not start its next run until the canceled action has ended, and ctx.db.system shows the canceled job the same throughout", async () => {
    const crons = cronJobs();
    crons.interval("slow tick", { seconds: 1 }, ref.slow, {});
    const logged: string[] = [];
    const engine = await open(tempFile(), { extraModules: { crons: { default: crons } }, logError: (message) => logged.push(message) });

    await waitFor(async () => slowStarts === 1, 5000, "the cron's first run did not start");
    const [run] = await jobsNamed(engine, "jobs:slow");
    const id = run!._id as string;
    await engine.runMutation("jobs:cancel", { id });
    const shownWhileRunning = await engine.runQuery("jobs:shown", { id });
    expect(shownWhileRunning).toMatchObject({ state: { kind: "canceled" }, completedTime: expect.any(Number) });

    // A due time passes while the canceled action still runs: that run is skipped.
    await waitFor(async () => logged.some((line) => line.startsWith('Cron "slow tick" skipped')), 5000, "no due time was skipped");
    expect(slowStarts).toBe(1);
    expect((await jobsNamed(engine, "jobs:slow")).length).toBe(1);

    // Once the action has ended, the cron runs again.
    openGate();
    await waitFor(async () => slowStarts === 2, 5000, "the cron did not run again after the canceled action ended");
    expect(await engine.runQuery("jobs:shown", { id })).toEqual(shownWhileRunning);
  });
});

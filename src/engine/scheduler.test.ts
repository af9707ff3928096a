import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, type ApiFromModules, makeFunctionReference, cronJobs, defineSchema, defineTable, internalAction, internalMutation, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import { Engine } from "./engine.js";
import { QueryImpl } from "./query.js";
import { withTestLatency } from "../testing/testStorage.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";

// References to functions of the module being defined (no codegen in this test).
const jobsApi = {
  record: makeFunctionReference<"mutation", { kind: string }>("jobs:record"),
  recordTwiceLater: makeFunctionReference<"mutation">("jobs:recordTwiceLater"),
  failing: makeFunctionReference<"mutation">("jobs:failing"),
};

const schema = defineSchema({
  events: defineTable({ kind: v.string() }),
});

const jobs = {
  record: internalMutation({ args: { kind: v.string() }, handler: (ctx, { kind }) => ctx.db.insert("events", { kind }) }),
  recordTwiceLater: internalMutation({
    args: {},
    handler: async (ctx) => {
      await ctx.db.insert("events", { kind: "first" });
      await ctx.scheduler.runAfter(0, jobsApi.record, { kind: "chained" });
    },
  }),
  scheduleSoon: mutation({
    args: { kind: v.string(), delayMs: v.number() },
    handler: (ctx, { kind, delayMs }) => ctx.scheduler.runAfter(delayMs, jobsApi.record, { kind }),
  }),
  scheduleThenFail: mutation({
    args: {},
    handler: async (ctx) => {
      await ctx.scheduler.runAfter(0, jobsApi.record, { kind: "never" });
      throw new Error("abort");
    },
  }),
  scheduleAndCancel: mutation({
    args: {},
    handler: async (ctx) => {
      const id = await ctx.scheduler.runAfter(0, jobsApi.record, { kind: "canceled" });
      await ctx.scheduler.cancel(id);
    },
  }),
  scheduleBadArgs: mutation({ args: {}, handler: (ctx) => ctx.scheduler.runAfter(0, jobsApi.record, { kind: 5 } as never) }),
  failing: internalMutation({ args: {}, handler: async () => { throw new Error("job failed"); } }),
  scheduleFailing: mutation({ args: {}, handler: (ctx) => ctx.scheduler.runAfter(0, jobsApi.failing, {}) }),
  fromAction: internalAction({
    args: {},
    handler: async (ctx) => {
      await ctx.scheduler.runAfter(0, jobsApi.record, { kind: "from-action" });
    },
  }),
  list: query({ args: {}, handler: async (ctx) => (await ctx.db.query("events").collect()).map((e) => e.kind as string) }),
  jobStates: query({
    args: {},
    handler: async (ctx) => (await ctx.db.system.query("_scheduled_functions").collect()).map((j) => j.state.kind),
  }),
};

const api = anyApi as unknown as ApiFromModules<{ jobs: typeof jobs }>;

describe("scheduler (in-process)", () => {
  let t: ReturnType<typeof walkinTest<typeof schema>>;
  afterEach(async () => t?.close());

  it("runs a scheduled mutation, and what it schedules", async () => {
    t = walkinTest(schema, { jobs });
    await t.mutation(api.jobs.scheduleSoon, { kind: "later", delayMs: 60_000 });
    await t.run(async (ctx) => ctx.scheduler.runAfter(0, jobsApi.recordTwiceLater, {}));
    expect(await t.query(api.jobs.list, {})).toEqual([]);
    await t.finishScheduledFunctions();
    expect((await t.query(api.jobs.list, {})).sort()).toEqual(["chained", "first", "later"]);
  });

  it("schedules nothing when the scheduling mutation aborts", async () => {
    t = walkinTest(schema, { jobs });
    await expect(t.mutation(api.jobs.scheduleThenFail, {})).rejects.toThrow("abort");
    await t.finishScheduledFunctions();
    expect(await t.query(api.jobs.list, {})).toEqual([]);
  });

  it("cancels, validates args at scheduling time, records failures and schedules from actions", async () => {
    t = walkinTest(schema, { jobs });
    await t.mutation(api.jobs.scheduleAndCancel, {});
    await expect(t.mutation(api.jobs.scheduleBadArgs, {})).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await t.mutation(api.jobs.scheduleFailing, {});
    const engine = await t.engine();
    await engine.runAction("jobs:fromAction", {});
    await t.finishScheduledFunctions();
    expect(await t.query(api.jobs.list, {})).toEqual(["from-action"]);
    expect((await t.query(api.jobs.jobStates, {})).sort()).toEqual(["canceled", "failed", "success"]);
  });
});

describe("scheduler (durable)", () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function open(filename: string, runScheduler: boolean, modules: Record<string, Record<string, unknown>> = { jobs }) {
    return Engine.open({ storage: withTestLatency(await openSqliteStorage({ filename })), schema, modules, runScheduler });
  }

  it("a scheduled call survives a restart and runs exactly once", async () => {
    dir = mkdtempSync(join(tmpdir(), "walkin-sched-"));
    const file = join(dir, "db.sqlite");
    const first = await open(file, false);
    await first.runMutation("jobs:scheduleSoon", { kind: "after-restart", delayMs: 0 });
    await first.close();

    const second = await open(file, true);
    await waitFor(async () => ((await second.runQuery("jobs:list", {})) as string[]).length === 1);
    await second.close();

    const third = await open(file, true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await third.runQuery("jobs:list", {})).toEqual(["after-restart"]);
    expect(await third.runQuery("jobs:jobStates", {})).toEqual(["success"]);
    await third.close();
  });

  it("a starting node fails the actions whose runner died (lease expired), not those another node is running", async () => {
    dir = mkdtempSync(join(tmpdir(), "walkin-lease-"));
    const file = join(dir, "db.sqlite");
    const first = await open(file, false);
    const now = Date.now();
    const [abandoned, running] = await first.runSystemMutation(async (txn) => [
      await txn.insertSystem("_scheduled_functions", { name: "jobs:record", args: {}, scheduledTime: now, state: "inProgress", leaseUntil: now - 1 }),
      await txn.insertSystem("_scheduled_functions", { name: "jobs:record", args: {}, scheduledTime: now, state: "inProgress", leaseUntil: now + 60_000 }),
    ]);
    await first.close();

    const second = await open(file, true);
    const states = await second.read(async (txn) => [(await txn.get(abandoned!, { system: true }))?.state, (await txn.get(running!, { system: true }))?.state]);
    expect(states).toEqual(["failed", "inProgress"]);
    await second.close();
  });

  it("runs due crons once per due time", async () => {
    dir = mkdtempSync(join(tmpdir(), "walkin-cron-"));
    const crons = cronJobs();
    crons.interval("tick", { seconds: 1 }, jobsApi.record, { kind: "tick" });
    const engine = await open(join(dir, "db.sqlite"), true, { jobs, crons: { default: crons } });
    await waitFor(async () => ((await engine.runQuery("jobs:list", {})) as string[]).length >= 2, 5000);
    const ticks = (await engine.runQuery("jobs:list", {})) as string[];
    expect(ticks.every((kind) => kind === "tick")).toBe(true);
    await engine.close();
  });
});

describe("finished jobs past their retention", () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("are deleted by the scheduler, in batches; pending, running and recently finished ones stay", async () => {
    dir = mkdtempSync(join(tmpdir(), "walkin-retention-"));
    const filename = join(dir, "db.sqlite");
    const hour = 3_600_000;
    const now = Date.now();
    const setup = await Engine.open({ storage: await openSqliteStorage({ filename }), schema, modules: { jobs }, runScheduler: false });
    const job = (state: string, scheduledTime: number, completedTime?: number) => ({
      name: "jobs:record",
      args: { kind: "x" },
      scheduledTime,
      state,
      ...(completedTime === undefined ? {} : { completedTime }),
      ...(state === "inProgress" ? { leaseUntil: now + hour } : {}),
    });
    // 600 expired successes (more than one batch), and one expired job of each other finished state.
    for (let i = 0; i < 3; i++) {
      await setup.runSystemMutation(async (txn) => {
        for (let j = 0; j < 200; j++) await txn.insertSystem("_scheduled_functions", job("success", now - 3 * hour, now - 3 * hour + j));
      });
    }
    const kept = await setup.runSystemMutation(async (txn) => {
      await txn.insertSystem("_scheduled_functions", job("failed", now - 5 * hour, now - 5 * hour));
      await txn.insertSystem("_scheduled_functions", job("canceled", now - 5 * hour, now - 4 * hour));
      return {
        // Scheduled long ago, but it finished within the hour (it waited for a runner).
        lateFinish: await txn.insertSystem("_scheduled_functions", job("success", now - 3 * hour, now - 10 * 60_000)),
        recent: await txn.insertSystem("_scheduled_functions", job("failed", now - 20 * 60_000, now - 20 * 60_000)),
        running: await txn.insertSystem("_scheduled_functions", job("inProgress", now - 3 * hour)),
        future: await txn.insertSystem("_scheduled_functions", job("pending", now + 10 * hour)),
      };
    });
    await setup.close();

    const engine = await Engine.open({
      storage: await openSqliteStorage({ filename }),
      schema,
      modules: { jobs },
      scheduledFunctionRetentionMs: hour,
    });
    const table = engine.catalog.lookup("_scheduled_functions", { system: true })!;
    const remaining = () => engine.read(async (txn) => (await new QueryImpl(txn, table).collect()).map((doc) => doc._id));
    await waitFor(async () => (await remaining()).length === 4, 10_000);
    expect((await remaining()).sort()).toEqual(Object.values(kept).sort());
    await engine.close();
  });

  it("a retention that is not a positive duration is refused, naming the option", async () => {
    await expect(Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema, modules: { jobs }, scheduledFunctionRetentionMs: 0 }))
      .rejects.toThrow(/scheduledFunctionRetentionMs must be a positive number/);
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 3000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

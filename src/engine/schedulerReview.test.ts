/**
 * Review of the durable scheduler (scheduler.ts) and crons (cron.ts), on a real engine over a
 * real SQLite file. Each test failed before its fix; the header of each `describe` says what a
 * user saw.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { cronJobs, defineSchema, defineTable, internalAction, internalMutation, makeFunctionReference, mutation } from "../server/index.js";
import { v } from "../values/index.js";
import type { Engine } from "./engine.js";
import { LIMITS } from "./limits.js";
import { useSchedulerEngines, waitFor } from "./fixtures/schedulerEngines.js";

const ref = {
  bigFailing: makeFunctionReference<"mutation", { payload: string }>("jobs:bigFailing"),
  bigFailingAction: makeFunctionReference<"action", { payload: string }>("jobs:bigFailingAction"),
  held: makeFunctionReference<"action">("jobs:held"),
  record: makeFunctionReference<"mutation", { kind: string }>("jobs:record"),
};

const schema = defineSchema({ events: defineTable({ kind: v.string() }) });

/** How many times each handler started, by name, in this process. */
const starts = new Map<string, number>();
const bump = (key: string) => starts.set(key, (starts.get(key) ?? 0) + 1);

/** Args this large leave the job's document less room under the limit than its error text takes (8 KB). */
const NEAR_LIMIT = LIMITS.maxDocumentBytes - 4_000;

/** An action that runs until the test opens its gate. */
let gate = { started: 0, open: () => {}, opened: Promise.resolve() };
function newGate() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  gate = { started: 0, open, opened };
}

const jobs = {
  held: internalAction({
    args: {},
    handler: async () => {
      gate.started += 1;
      await gate.opened;
    },
  }),
  record: internalMutation({ args: { kind: v.string() }, handler: (ctx, { kind }) => ctx.db.insert("events", { kind }) }),
  scheduleHeld: mutation({ args: {}, handler: (ctx) => ctx.scheduler.runAfter(0, ref.held, {}) }),
  scheduleRecord: mutation({ args: { kind: v.string() }, handler: (ctx, { kind }) => ctx.scheduler.runAfter(0, ref.record, { kind }) }),
  /** Fails, quoting part of its (large but valid) payload in the error, as apps often do. */
  bigFailing: internalMutation({
    args: { payload: v.string() },
    handler: async (_ctx, { payload }) => {
      bump("bigFailing");
      throw new Error(`could not import: ${payload.slice(0, 60_000)}`);
    },
  }),
  bigFailingAction: internalAction({
    args: { payload: v.string() },
    handler: async (_ctx, { payload }) => {
      bump("bigFailingAction");
      throw new Error(`could not import: ${payload.slice(0, 60_000)}`);
    },
  }),
  scheduleBig: mutation({
    args: { action: v.boolean() },
    handler: (ctx, { action }) =>
      action
        ? ctx.scheduler.runAfter(0, ref.bigFailingAction, { payload: "p".repeat(NEAR_LIMIT) })
        : ctx.scheduler.runAfter(0, ref.bigFailing, { payload: "p".repeat(NEAR_LIMIT) }),
  }),
};

const { tempFile, open } = useSchedulerEngines(schema, { jobs });

const job = (engine: Engine, id: string) => engine.read((txn) => txn.get(id, { system: true }));

async function systemRows(engine: Engine, table: "_cron_jobs" | "_scheduled_functions") {
  const { QueryImpl } = await import("./query.js");
  return engine.read((txn) => new QueryImpl(txn, engine.catalog.lookup(table, { system: true })!).collect());
}

describe("a job whose args leave too little room in its document for the error it failed with", () => {
  // Before: recording "failed" with the error text went over the document limit, so the job
  // stayed "pending" and every later scheduler pass (any commit that schedules, a cron tick)
  // ran its handler again, for ever.
  for (const kind of ["mutation", "action"] as const) {
    it(`${kind === "action" ? "an" : "a"} ${kind} is recorded as failed once, with a shortened error, and not run again`, async () => {
      const name = kind === "mutation" ? "bigFailing" : "bigFailingAction";
      starts.delete(name);
      // Driven by hand (no loop), so each run is one call here, not a matter of timing.
      const engine = await open(tempFile(), { runScheduler: false });
      const id = (await engine.runMutation("jobs:scheduleBig", { action: kind === "action" })).value as string;
      await engine.scheduler.runDueOnce(() => Infinity);
      const failed = await job(engine, id);
      expect(failed?.state).toBe("failed");
      expect(failed?.error).toMatch(/server's log/);
      expect((failed?.args as { payload: string }).payload.length).toBe(NEAR_LIMIT);
      await engine.scheduler.runDueOnce(() => Infinity);
      expect(starts.get(name)).toBe(1);
    });
  }
});

describe("an action running on this engine while the wall clock jumps forward", () => {
  afterEach(() => {
    gate.open();
    vi.useRealTimers();
  });

  // SQLite has no clock of its own: due times and leases are on the machine's wall clock, which
  // jumps (a laptop or VM waking from sleep, an NTP step). Before: the next scheduler pass found
  // the lease of the action this very engine was running expired, and marked it "failed" ("The
  // server running this action stopped") while it still ran; it then ended without being
  // recorded, and a cron would have started its next run alongside it.
  it("is not marked failed by its own engine: it stays in progress and is recorded once it ends", async () => {
    newGate();
    const engine = await open(tempFile());
    const id = (await engine.runMutation("jobs:scheduleHeld", {})).value as string;
    await waitFor(async () => gate.started === 1 && (await job(engine, id))?.state === "inProgress");
    // The wall clock jumps two minutes ahead, past the lease (30 s) before any renewal (every 10 s).
    vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
    vi.setSystemTime(Date.now() + 120_000);
    // A commit that schedules a job starts a pass, which looks at leases before it runs that job.
    const other = (await engine.runMutation("jobs:scheduleRecord", { kind: "after the jump" })).value as string;
    await waitFor(async () => (await job(engine, other))?.state === "success");
    expect((await job(engine, id))?.state).toBe("inProgress");
    gate.open();
    await waitFor(async () => (await job(engine, id))?.state === "success");
    expect(gate.started).toBe(1);
  });
});

describe("an interval cron whose run is enqueued late", () => {
  afterEach(() => vi.useRealTimers());

  // A pass reaches a due cron some time after its due time: the storage's round trips, or a
  // pass that waited for a free slot behind long actions. Before: the next due time was counted
  // from when the pass got there, so each run pushed the schedule back by that delay for good
  // (an "every minute" cron ran every minute and a bit, and later each time). Convex counts it
  // from the due time.
  it("keeps its due times on the interval from the first, and after downtime runs once at the next of them", async () => {
    vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
    const crons = cronJobs();
    crons.interval("minutely", { minutes: 1 }, ref.record, { kind: "tick" });
    // Driven by hand (no loop), on a clock the test sets.
    const engine = await open(tempFile(), { runScheduler: false, extraModules: { crons: { default: crons } } });
    const first = (await systemRows(engine, "_cron_jobs"))[0]!.nextRun as number;

    vi.setSystemTime(first + 5_000); // the pass gets there 5 s late
    await engine.scheduler.runDueOnce();
    expect((await systemRows(engine, "_cron_jobs"))[0]!.nextRun).toBe(first + 60_000);

    vi.setSystemTime(first + 10 * 60_000 + 30_000); // down for nine intervals and a half
    await engine.scheduler.runDueOnce();
    expect((await systemRows(engine, "_cron_jobs"))[0]!.nextRun).toBe(first + 11 * 60_000);
    // One run per pass that found it due, none for the missed due times.
    expect((await systemRows(engine, "_scheduled_functions")).map((run) => run.scheduledTime)).toEqual([first, first + 60_000]);
  });
});

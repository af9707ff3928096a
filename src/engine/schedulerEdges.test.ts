/**
 * Edge cases of the durable scheduler (ctx.scheduler and crons), on a real engine over a real
 * SQLite file in a temp dir. Each failed before its fix: a slow job started again on every pass
 * while it ran, a failure too large to record re-run in a tight loop, a thrown non-Error
 * recorded without `error`, a wake-up lost at the end of a pass, a Date taken as a delay,
 * misleading errors for a query or a typo, a failed start left polling, cron errors off by one,
 * a cron's bad args stopping every job, and a crons module without its default export.
 */
import { describe, expect, it } from "vitest";
import { cronJobs, defineSchema, defineTable, internalAction, internalMutation, makeFunctionReference, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { Engine } from "./engine.js";
import { sleep, useSchedulerEngines, waitFor } from "./fixtures/schedulerEngines.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import type { Storage } from "../storage/types.js";

const ref = {
  slow: makeFunctionReference<"mutation", { key: string }>("jobs:slow"),
  throwsString: makeFunctionReference<"mutation">("jobs:throwsString"),
  actThrowsString: makeFunctionReference<"action">("jobs:actThrowsString"),
  bigFailing: makeFunctionReference<"mutation", { payload: string }>("jobs:bigFailing"),
  record: makeFunctionReference<"mutation", { kind: string }>("jobs:record"),
  list: makeFunctionReference<"query">("jobs:list"),
  /** A typo of jobs:record, an internal mutation. */
  recrod: makeFunctionReference<"mutation", { kind: string }>("jobs:recrod"),
};

const schema = defineSchema({
  events: defineTable({ kind: v.string() }),
});

/** How many times each handler started, by key, in this process. */
const starts = new Map<string, number>();
const bump = (key: string) => starts.set(key, (starts.get(key) ?? 0) + 1);

const jobs = {
  /** A scheduled mutation that takes a while (a big read, a slow database): 300 ms here. */
  slow: internalMutation({
    args: { key: v.string() },
    handler: async (ctx, { key }) => {
      bump(key);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await ctx.db.insert("events", { kind: key });
    },
  }),
  throwsString: internalMutation({
    args: {},
    handler: async () => {
      throw "plain string thrown by a mutation";
    },
  }),
  actThrowsString: internalAction({
    args: {},
    handler: async () => {
      throw "plain string thrown by an action";
    },
  }),
  /** Fails, quoting part of its (large but valid) payload in the error, as apps often do. */
  bigFailing: internalMutation({
    args: { payload: v.string() },
    handler: async (_ctx, { payload }) => {
      bump("bigFailing");
      throw new Error(`could not import: ${payload.slice(0, 60_000)}`);
    },
  }),
  record: internalMutation({ args: { kind: v.string() }, handler: (ctx, { kind }) => ctx.db.insert("events", { kind }) }),
  schedule: mutation({
    args: { what: v.string(), key: v.string() },
    handler: async (ctx, { what, key }) => {
      if (what === "slow") return ctx.scheduler.runAfter(0, ref.slow, { key });
      if (what === "throwsString") return ctx.scheduler.runAfter(0, ref.throwsString, {});
      if (what === "actThrowsString") return ctx.scheduler.runAfter(0, ref.actThrowsString, {});
      if (what === "bigFailing") return ctx.scheduler.runAfter(0, ref.bigFailing, { payload: "p".repeat(1_000_000) });
      throw new Error(`unknown ${what}`);
    },
  }),
  /** Gives runAfter a Date, meant for runAt (a plain-JS app, or a value typed `any`). */
  scheduleDateDelay: mutation({
    args: {},
    handler: (ctx) => ctx.scheduler.runAfter(new Date(Date.now() + 60_000) as unknown as number, ref.record, { kind: "date" }),
  }),
  scheduleNow: mutation({ args: {}, handler: (ctx) => ctx.scheduler.runAfter(0, ref.record, { kind: "now" }) }),
  scheduleQuery: mutation({ args: {}, handler: (ctx) => ctx.scheduler.runAfter(0, ref.list as unknown as typeof ref.throwsString, {}) }),
  scheduleTypo: mutation({ args: {}, handler: (ctx) => ctx.scheduler.runAfter(0, ref.recrod, { kind: "x" }) }),
  list: query({ args: {}, handler: async (ctx) => (await ctx.db.query("events").collect()).map((e) => e.kind as string) }),
};

const modules = { jobs };

const { tempFile, open } = useSchedulerEngines(schema, modules);

async function job(engine: Engine, id: string) {
  return engine.read((txn) => txn.get(id, { system: true }));
}

async function messageOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as Error).message;
  }
  return "(no error)";
}

describe("scheduler: running jobs", () => {
  it("a scheduled mutation that takes a while is started once, not again on every pass while it runs", async () => {
    const engine = await open(tempFile());
    const id = (await engine.runMutation("jobs:schedule", { what: "slow", key: "slow-1" })).value as string;
    await waitFor(async () => (await job(engine, id))?.state === "success");
    await sleep(100);
    expect(await engine.runQuery("jobs:list", {})).toEqual(["slow-1"]);
    // Nothing else writes, so nothing conflicts: no reason to run the handler a second time.
    expect(starts.get("slow-1")).toBe(1);
  });

  it("a job whose failure cannot be recorded (large args, error quoting them) is not re-run in a tight loop", async () => {
    const errors: string[] = [];
    const engine = await open(tempFile(), { logError: (m) => errors.push(m) });
    const id = (await engine.runMutation("jobs:schedule", { what: "bigFailing", key: "" })).value as string;
    await sleep(1500);
    // One run, recorded as failed (with the error, shortened if need be).
    expect(starts.get("bigFailing")).toBe(1);
    expect((await job(engine, id))?.state).toBe("failed");
  });

  it("a scheduled mutation that throws a non-Error value is recorded as failed with an error", async () => {
    const engine = await open(tempFile());
    const id = (await engine.runMutation("jobs:schedule", { what: "throwsString", key: "" })).value as string;
    await waitFor(async () => (await job(engine, id))?.state === "failed");
    expect((await job(engine, id))?.error).toContain("plain string thrown by a mutation");
  });

  it("a scheduled action that throws a non-Error value is recorded as failed with an error", async () => {
    const engine = await open(tempFile());
    const id = (await engine.runMutation("jobs:schedule", { what: "actThrowsString", key: "" })).value as string;
    await waitFor(async () => (await job(engine, id))?.state === "failed");
    expect((await job(engine, id))?.error).toContain("plain string thrown by an action");
  });
});

describe("scheduler: waking up", () => {
  /**
   * A job scheduled with runAfter(0) whose commit lands just as a scheduler pass ends (after the
   * pass's last look, before it is marked done) is found by no pass: poke() saw a pass running
   * and only set `again`, which that pass no longer reads. The job then waits for the next
   * unrelated scheduler activity, here forever. `k` moves the commit over the few microtasks
   * around the end of a pass; the pass is started the way any commit that touches
   * `_scheduled_functions` starts one (a job finishing, a cancel, another node's commit).
   */
  it("a job committed while a scheduler pass is finishing is still run", async () => {
    const stuck: number[] = [];
    for (let k = 0; k < 6; k++) {
      let hold = false;
      let heldReached!: () => void;
      const reached = new Promise<void>((resolve) => (heldReached = resolve));
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      // The next commit is written, then its answer held until `release`.
      const holding = (storage: Storage): Storage =>
        new Proxy(storage, {
          get(target, prop, receiver) {
            const value = Reflect.get(target, prop, receiver);
            if (prop === "commitBatch" && typeof value === "function") {
              return async (...args: unknown[]) => {
                if (!hold) return value.apply(target, args);
                hold = false;
                const result = await value.apply(target, args);
                heldReached();
                await gate;
                return result;
              };
            }
            return typeof value === "function" ? value.bind(target) : value;
          },
        });
      const engine = await open(tempFile(), { storage: holding });
      await sleep(50); // the first pass is over
      hold = true;
      const scheduled = engine.runMutation("jobs:scheduleNow", {});
      await reached;
      // When the next pass has taken its last look (armTimer's read), let the commit land k microtasks later.
      const read = engine.read.bind(engine);
      let trapped = false;
      engine.read = async <T>(work: (txn: never) => Promise<T>): Promise<T> => {
        const result = await read(work as never);
        // armTimer's read: the earliest pending job, whenever due (not runDue's "pending", now).
        if (!trapped && /"pending"\)/.test(String(work))) {
          trapped = true;
          let chain = Promise.resolve();
          for (let i = 0; i < k; i++) chain = chain.then(() => {});
          void chain.then(() => release());
        }
        return result as T;
      };
      const listeners = (engine as unknown as { commitListeners: Set<(record: unknown, tables: Set<string>) => void> }).commitListeners;
      for (const listener of listeners) listener({}, new Set(["_scheduled_functions"]));
      setTimeout(() => release(), 300).unref(); // never hang, whatever the loop reads
      const id = (await scheduled).value as string;
      await sleep(500);
      engine.read = read;
      if ((await job(engine, id))?.state !== "success") stuck.push(k);
    }
    expect(stuck).toEqual([]);
  });
});

describe("scheduler: checks at schedule time", () => {
  it("runAfter refuses a Date as its delay instead of scheduling the job decades from now", async () => {
    const engine = await open(tempFile(), { runScheduler: false });
    // Math.max(0, date) turns the Date into its epoch milliseconds: due now + ~56 years, accepted.
    const outcome = await engine.runMutation("jobs:scheduleDateDelay", {}).then(
      async ({ value }) => `accepted, due ${new Date((await job(engine, value as string))!.scheduledTime as number).toISOString()}`,
      (error: { code?: string }) => error.code,
    );
    expect(outcome).toBe("INVALID_ARGUMENT");
  });


  it("scheduling a query, or a function that does not exist, says what is wrong in scheduler terms", async () => {
    const engine = await open(tempFile(), { runScheduler: false });
    const query = await messageOf(engine.runMutation("jobs:scheduleQuery", {}));
    // Was: '"jobs:list" is a query, not a action: call it with useQuery / client.query.'
    expect(query).toMatch(/schedul/i);
    expect(query).not.toMatch(/useQuery/);
    const typo = await messageOf(engine.runMutation("jobs:scheduleTypo", {}));
    // Was: 'Module "jobs" has no public action "recrod".' (it is an internal mutation that is missing)
    expect(typo).toMatch(/unknown function "jobs:recrod"/i);
    expect(typo).not.toMatch(/public action/);
  });
});

describe("scheduler: crons at startup", () => {
  it("a cron that never fires fails startup clearly, and the failed engine leaves nothing polling the closed database", async () => {
    const crons = cronJobs();
    crons.cron("feb 30", "0 0 30 2 *", ref.record, { kind: "x" });
    const file = tempFile();
    await (await open(file, { runScheduler: false })).close();
    const logged: string[] = [];
    const storage = await openSqliteStorage({ filename: file });
    await expect(
      Engine.open({ storage, schema, modules: { ...modules, crons: { default: crons } }, pollIntervalMs: 20, logError: (m) => logged.push(m) }),
    ).rejects.toThrow(/never matches a real date/);
    await storage.close(); // what `walkin dev` does when a new version fails to open (cli/serve.ts, openEngine)
    await sleep(300);
    expect(logged).toEqual([]);
  });

  it("a cron with an out-of-range day or month names the value that was written, not one less", () => {
    const crons = cronJobs();
    // croner counts days and months from 0 and reports its own number: "Invalid value for month: 12" for 13.
    const month = (() => { try { crons.cron("thirteenth month", "0 0 1 13 *", ref.record, { kind: "x" }); return "(accepted)"; } catch (error) { return (error as Error).message; } })();
    const day = (() => { try { crons.monthly("day 32", { day: 32, hourUTC: 0, minuteUTC: 0 }, ref.record, { kind: "x" }); return "(accepted)"; } catch (error) { return (error as Error).message; } })();
    expect(month).not.toMatch(/month: 12\b/);
    expect(month).toMatch(/month\D*13/);
    expect(day).not.toMatch(/day: 31\b/);
    expect(day).toMatch(/day\D*32/);
  });

  it("a cron whose arguments are not values (a Date) does not stop every other scheduled function", async () => {
    const crons = cronJobs();
    let refused: Error | null = null;
    try {
      crons.interval("dated", { seconds: 1 }, ref.record, { kind: "dated", since: new Date() } as never);
    } catch (error) {
      refused = error as Error; // refusing it when crons.ts loads is fine too
    }
    if (refused) {
      expect(refused.message).toMatch(/Date/);
      return;
    }
    const engine = await open(tempFile(), { extraModules: { crons: { default: crons } } });
    await sleep(1200); // the cron falls due: its failed run cannot be recorded either (the Date), so the pass throws
    await engine.runMutation("jobs:scheduleNow", {});
    await sleep(1000);
    expect(await engine.runQuery("jobs:list", {})).toEqual(["now"]);
  });


  it("a crons module whose default export is not a cronJobs() is reported, not silently ignored", async () => {
    const crons = cronJobs();
    crons.interval("tick", { seconds: 1 }, ref.record, { kind: "tick" });
    const logged: string[] = [];
    let failure: Error | null = null;
    try {
      // `export const crons = cronJobs()` without `export default crons`.
      await open(tempFile(), { extraModules: { crons: { crons } }, logError: (m, e) => logged.push(`${m} ${(e as Error)?.message ?? ""}`) });
    } catch (error) {
      failure = error as Error;
    }
    expect(failure?.message ?? logged.join("\n")).toMatch(/cron/i);
  });
});

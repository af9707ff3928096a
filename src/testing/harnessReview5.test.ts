/**
 * The test harness (review 5) against convex-test, written the way a Convex app's tests are.
 */
import { afterEach, describe, expect, test, vi } from "vitest";
import { anyApi, defineSchema, defineTable, internalMutation, internalQuery, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { convexTest } from "./index.js";

const schema = defineSchema({
  reminders: defineTable({ owner: v.string(), sent: v.boolean() }),
});
// What `_generated/api` would give; the functions are declared in this file.
const api = anyApi as any;
const internal = anyApi as any;

const reminders = {
  schedule: mutation({
    args: { inMs: v.number() },
    handler: async (ctx, { inMs }) => {
      const identity = await ctx.auth.getUserIdentity();
      const id = await ctx.db.insert("reminders", { owner: identity?.name ?? "nobody", sent: false });
      await ctx.scheduler.runAfter(inMs, internal.reminders.send, { id });
    },
  }),
  send: internalMutation({ args: { id: v.id("reminders") }, handler: (ctx, { id }) => ctx.db.patch(id, { sent: true }) }),
  mine: query({
    args: {},
    handler: async (ctx) => {
      const identity = await ctx.auth.getUserIdentity();
      return (await ctx.db.query("reminders").collect()).filter((r) => r.owner === identity?.name).map((r) => r.sent);
    },
  }),
};

afterEach(() => {
  vi.useRealTimers();
});

describe("t.withIdentity", () => {
  // convex-test's `withIdentity` returns the whole `t` (TestConvexForDataModel), so a test
  // that keeps only the user's accessor drives the scheduler through it.
  test("the accessor it returns runs scheduled functions, as convex-test's does", async () => {
    vi.useFakeTimers();
    const t = convexTest(schema, { reminders });
    const asAda = t.withIdentity({ name: "Ada" });
    await asAda.mutation(api.reminders.schedule, { inMs: 60_000 });
    await asAda.finishAllScheduledFunctions(vi.runAllTimers);
    expect(await asAda.query(api.reminders.mine, {})).toEqual([true]);

    await asAda.mutation(api.reminders.schedule, { inMs: 1_000 });
    vi.advanceTimersByTime(1_000);
    await asAda.finishInProgressScheduledFunctions();
    expect(await asAda.query(api.reminders.mine, {})).toEqual([true, true]);
    await t.close();
  });
});

describe("t.finishAllScheduledFunctions with an advance that moves the clock only partway", () => {
  // convex-test calls the advance in a loop; a test may pass one that moves the clock a step
  // (`() => vi.advanceTimersByTime(1000)`) instead of `vi.runAllTimers`: the clock is stepped
  // to the job's time, and the steps are not taken for a job that reschedules itself forever.
  test("a job an hour away runs on its time, instead of failing as an endless chain", async () => {
    vi.useFakeTimers();
    const t = convexTest(schema, { reminders });
    const asAda = t.withIdentity({ name: "Ada" });
    const scheduledAt = Date.now();
    await asAda.mutation(api.reminders.schedule, { inMs: 60 * 60_000 });
    await t.finishAllScheduledFunctions(() => vi.advanceTimersByTime(1_000));
    expect(await asAda.query(api.reminders.mine, {})).toEqual([true]);
    expect(Date.now()).toBe(scheduledAt + 60 * 60_000);
    await t.close();
  });
});

describe("a glob's test file that defines functions", () => {
  // convex-helpers' own tests do this: functions exported by the test file, reached through
  // `ctx.runQuery` in `t.run` (or scheduled there), where no `t.query` names the module first.
  const functionsOfTheTestFile = {
    count: internalQuery({ args: {}, handler: async (ctx) => (await ctx.db.query("reminders").collect()).length }),
    remind: internalMutation({ args: {}, handler: (ctx) => ctx.db.insert("reminders", { owner: "job", sent: true }) }),
  };
  /** What `import.meta.glob("./**\/*.ts")` gives beside the functions; the test file loads on demand. */
  const modules = {
    "./_generated/api.js": async () => ({}),
    "./reminders.ts": async () => reminders,
    "./reminders.test.ts": async () => functionsOfTheTestFile,
  };

  test("its functions are found from inside t.run: ctx.runQuery and the scheduler", async () => {
    const t = convexTest(schema, modules);
    expect(await t.run((ctx) => ctx.runQuery(internal["reminders.test"].count, {}))).toBe(0);
    await t.run((ctx) => ctx.scheduler.runAfter(0, internal["reminders.test"].remind, {}));
    await t.finishAllScheduledFunctions();
    expect(await t.query(internal["reminders.test"].count, {})).toBe(1);
    await t.close();
  });

  test("a function that is in no module still fails, naming it", async () => {
    const t = convexTest(schema, modules);
    await expect(t.run((ctx) => ctx.runQuery(internal["reminders.test"].missing, {}))).rejects.toThrow(/reminders\.test:missing/);
    await expect(t.run((ctx) => ctx.runQuery(internal["other.test"].count, {}))).rejects.toThrow(/other\.test:count/);
    await t.close();
  });
});

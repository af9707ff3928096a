/**
 * `convexTest` against tests written the way a Convex app writes them for convex-test: a
 * schema, modules, `t.query(api.x.y, args)`, `t.run`, identities, scheduled functions driven by
 * fake timers, and inline functions. Only the import paths differ from such a suite.
 */
import { afterEach, describe, expect, test, vi } from "vitest";
import {
  action,
  anyApi,
  defineSchema,
  defineTable,
  internalAction,
  internalMutation,
  internalQuery,
  mutation,
  query,
} from "../server/index.js";
import { WalkinError, v } from "../values/index.js";
import { withLatency } from "../storage/latency.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { convexTest } from "./index.js";

const schema = defineSchema({
  tasks: defineTable({ text: v.string(), done: v.boolean(), note: v.optional(v.string()) }),
  sessions: defineTable({ expiresAt: v.number() }),
  steps: defineTable({ name: v.string(), at: v.number(), by: v.union(v.string(), v.null()) }),
});
// What `_generated/api` would give; the functions here are declared in this file.
const api = anyApi as any;
const internal = anyApi as any;

class NotYours extends Error {}

const tasks = {
  add: mutation({ args: { text: v.string() }, handler: async (ctx, { text }) => ctx.db.insert("tasks", { text, done: false }) }),
  get: query({ args: { id: v.id("tasks") }, handler: async (ctx, { id }) => ctx.db.get(id) }),
  list: query({ args: {}, handler: async (ctx) => ctx.db.query("tasks").collect() }),
  shape: query({ args: {}, handler: async () => ({ kept: 1, dropped: undefined }) }),
  nothing: mutation({ args: {}, handler: async () => undefined }),
  count: internalQuery({ args: {}, handler: async (ctx) => (await ctx.db.query("tasks").collect()).length }),
  double: internalAction({ args: { n: v.number() }, handler: async (_ctx, { n }) => n * 2 }),
  addAndCount: action({
    args: { text: v.string() },
    handler: async (ctx, { text }): Promise<{ text: string | undefined; count: number; doubled: number }> => {
      const id = await ctx.runMutation(api.tasks.add, { text });
      const doc = await ctx.runQuery(api.tasks.get, { id });
      return { text: doc?.text, count: await ctx.runQuery(internal.tasks.count, {}), doubled: await ctx.runAction(internal.tasks.double, { n: 21 }) };
    },
  }),
  whoAmI: query({ args: {}, handler: async (ctx) => ctx.auth.getUserIdentity() }),
  addThenFail: mutation({
    args: {},
    handler: async (ctx) => {
      await ctx.db.insert("tasks", { text: "rolled back", done: false });
      throw new WalkinError("task limit reached", { data: { code: "LIMIT", max: 10 } });
    },
  }),
  notYours: mutation({ args: {}, handler: async () => { throw new NotYours("not your task"); } }),
  failViaAction: action({ args: {}, handler: async (ctx) => ctx.runMutation(api.tasks.notYours, {}) }),
};

const jobs = {
  /** Starts a session that a scheduled job ends at its expiry, unless it was extended meanwhile. */
  startSession: mutation({
    args: { ttlMs: v.number() },
    handler: async (ctx, { ttlMs }) => {
      const id = await ctx.db.insert("sessions", { expiresAt: Date.now() + ttlMs });
      await ctx.scheduler.runAfter(ttlMs, internal.jobs.expire, { id });
      return id;
    },
  }),
  expire: internalMutation({
    args: { id: v.id("sessions") },
    handler: async (ctx, { id }) => {
      const session = await ctx.db.get(id);
      if (session && session.expiresAt <= Date.now()) await ctx.db.delete(id);
    },
  }),
  /** A chain: first (mutation) → second (action, at once) → third (mutation, a minute later). */
  first: mutation({
    args: {},
    handler: async (ctx) => {
      await ctx.db.insert("steps", { name: "first", at: Date.now(), by: (await ctx.auth.getUserIdentity())?.subject ?? null });
      await ctx.scheduler.runAfter(0, internal.jobs.second, {});
    },
  }),
  second: internalAction({
    args: {},
    handler: async (ctx) => {
      await ctx.runMutation(internal.jobs.record, { name: "second" });
      await ctx.scheduler.runAfter(60_000, internal.jobs.record, { name: "third" });
    },
  }),
  record: internalMutation({
    args: { name: v.string() },
    handler: async (ctx, { name }) => {
      await ctx.db.insert("steps", { name, at: Date.now(), by: (await ctx.auth.getUserIdentity())?.subject ?? null });
    },
  }),
  /** An action that waits before it tries again, as a retry with backoff does. */
  retrying: internalAction({
    args: {},
    handler: async (ctx) => {
      await new Promise((resolve) => setTimeout(resolve, 30_000));
      await ctx.runMutation(internal.jobs.record, { name: "retried" });
    },
  }),
  broken: internalMutation({ args: {}, handler: async () => { throw new Error("job broke"); } }),
  forever: internalMutation({ args: {}, handler: async (ctx) => { await ctx.scheduler.runAfter(1000, internal.jobs.forever, {}); } }),
};

const modules = { tasks, jobs };
const steps = (t: ReturnType<typeof convexTest>) => t.run(async (ctx) => (await ctx.db.query("steps").collect()).map((s) => s.name));
const scheduled = (t: ReturnType<typeof convexTest>) => t.run(async (ctx) => ctx.db.system.query("_scheduled_functions").collect());

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("scheduled functions on a fake clock", () => {
  test("finishAllScheduledFunctions(vi.runAllTimers) runs each job at its time: an expiry job sees it is due", async () => {
    vi.useFakeTimers();
    const t = convexTest(schema, modules);
    const startedAt = Date.now();
    // A month: further off than one timer can wait (about 24.8 days).
    const ttlMs = 30 * 24 * 60 * 60_000;
    const id = await t.mutation(api.jobs.startSession, { ttlMs });
    await t.finishAllScheduledFunctions(vi.runAllTimers);
    expect(await t.run(async (ctx) => ctx.db.get(id))).toBeNull();
    // The test's clock moved with it, as fake timers firing the job's timer would move it.
    expect(Date.now()).toBeGreaterThanOrEqual(startedAt + ttlMs);
    const [job] = await scheduled(t);
    expect(job!.state).toEqual({ kind: "success" });
    expect(job!.completedTime).toBeGreaterThanOrEqual(job!.scheduledTime);
  });

  test("a chain runs in order, each step at its time, and without the caller's identity", async () => {
    vi.useFakeTimers();
    const t = convexTest(schema, modules);
    await t.withIdentity({ subject: "ada" }).mutation(api.jobs.first, {});
    await t.finishAllScheduledFunctions(vi.runAllTimers);
    const rows = await t.run(async (ctx) => ctx.db.query("steps").collect());
    expect(rows.map((r) => [r.name, r.by])).toEqual([["first", "ada"], ["second", null], ["third", null]]);
    expect(rows[2]!.at - rows[1]!.at).toBeGreaterThanOrEqual(60_000);
    expect((await scheduled(t)).map((j) => [j.name, j.state.kind])).toEqual([
      ["jobs.js:second", "success"],
      ["jobs.js:record", "success"],
    ]);
  });

  test("finishInProgressScheduledFunctions runs one step: what the step schedules waits, even when due at once", async () => {
    vi.useFakeTimers();
    const t = convexTest(schema, modules);
    await t.run(async (ctx) => {
      await ctx.scheduler.runAfter(0, api.jobs.first, {});
    });
    vi.runAllTimers();
    await t.finishInProgressScheduledFunctions();
    expect(await steps(t)).toEqual(["first"]);
    expect((await scheduled(t)).map((j) => j.state.kind)).toEqual(["success", "pending"]);
    vi.runAllTimers();
    await t.finishInProgressScheduledFunctions();
    expect(await steps(t)).toEqual(["first", "second"]);
    vi.advanceTimersByTime(60_000);
    await t.finishInProgressScheduledFunctions();
    expect(await steps(t)).toEqual(["first", "second", "third"]);
  });

  test("a scheduled action waiting on a timer goes on: timers are advanced while it runs", async () => {
    vi.useFakeTimers();
    const t = convexTest(schema, modules);
    const startedAt = Date.now();
    await t.run(async (ctx) => ctx.scheduler.runAfter(0, internal.jobs.retrying, {}));
    await t.finishAllScheduledFunctions(vi.runAllTimers);
    const rows = await t.run(async (ctx) => ctx.db.query("steps").collect());
    expect(rows.map((r) => r.name)).toEqual(["retried"]);
    expect(rows[0]!.at).toBeGreaterThanOrEqual(startedAt + 30_000);
  });

  test("on a storage with a network's latency (WALKIN_TEST_STORAGE=latency), fake timers stall nothing", async () => {
    vi.useFakeTimers();
    const storage = withLatency(await openSqliteStorage({ filename: ":memory:" }), { read: [0, 3], commit: 4 });
    const t = convexTest(schema, modules, { storage });
    await t.run(async (ctx) => ctx.scheduler.runAfter(0, internal.jobs.retrying, {}));
    await t.mutation(api.jobs.first, {});
    await t.finishAllScheduledFunctions(vi.runAllTimers);
    expect((await steps(t)).sort()).toEqual(["first", "retried", "second", "third"]);
    await t.close();
  });

  test("an advance that leaves the clock alone still runs every job (it runs early)", async () => {
    const t = convexTest(schema, modules);
    await t.mutation(api.jobs.first, {});
    await t.finishAllScheduledFunctions(() => undefined);
    expect(await steps(t)).toEqual(["first", "second", "third"]);
  });

  test("a job that reschedules itself forever ends with convex-test's hint", async () => {
    vi.useFakeTimers();
    const t = convexTest(schema, modules);
    await t.run(async (ctx) => {
      await ctx.scheduler.runAfter(0, internal.jobs.forever, {});
    });
    await expect(t.finishAllScheduledFunctions(vi.runAllTimers)).rejects.toThrow(/Check for infinitely recursive scheduled functions/);
  });

  test("a failing job is marked failed and does not fail the test's finish call", async () => {
    vi.useFakeTimers();
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const t = convexTest(schema, modules);
    const id = await t.run(async (ctx) => ctx.scheduler.runAfter(0, internal.jobs.broken, {}));
    await t.finishAllScheduledFunctions(vi.runAllTimers);
    expect(await t.run(async (ctx) => ctx.db.system.get(id))).toMatchObject({ args: [{}], state: { kind: "failed" } });
  });
});

describe("inline functions, as convex-test takes them", () => {
  test("t.query, t.mutation and t.action take a function of ctx", async () => {
    const t = convexTest(schema);
    const id = await t.mutation(async (ctx) => ctx.db.insert("tasks", { text: "inline", done: false }));
    expect(await t.query(async (ctx) => (await ctx.db.get(id))?.text)).toBe("inline");
    expect(await t.action(async (ctx) => ctx.runQuery(internal.tasks.count, {}).catch(() => "no modules"))).toBe("no modules");
    const me = await t.withIdentity({ name: "Ada" }).query(async (ctx) => ctx.auth.getUserIdentity());
    expect(me).toMatchObject({ name: "Ada", issuer: "https://convex.test" });
  });

  test("an inline query cannot write; an inline mutation that throws writes nothing", async () => {
    const t = convexTest(schema, modules);
    await expect(t.query(async (ctx) => (ctx.db as any).insert("tasks", { text: "x", done: false }))).rejects.toThrow();
    await expect(
      t.mutation(async (ctx) => {
        await ctx.db.insert("tasks", { text: "x", done: false });
        throw new Error("rollback");
      }),
    ).rejects.toThrow("rollback");
    expect(await t.query(api.tasks.list, {})).toEqual([]);
    expect(await t.action(async (ctx) => ctx.runAction(internal.tasks.double, { n: 4 }))).toBe(8);
  });
});

describe("what already matched convex-test", () => {
  test("documents: string ids, numeric _creationTime, undefined fields absent, undefined results null", async () => {
    const t = convexTest(schema, modules);
    const id = await t.mutation(api.tasks.add, { text: "a" });
    expect(typeof id).toBe("string");
    const doc = await t.query(api.tasks.get, { id });
    expect(doc).toStrictEqual({ _id: id, _creationTime: expect.any(Number), text: "a", done: false });
    expect(await t.query(api.tasks.shape, {})).toStrictEqual({ kept: 1 });
    expect(await t.mutation(api.tasks.nothing, {})).toBeNull();
    const fromRun = await t.run(async (ctx) => ctx.db.get(id));
    expect(fromRun).toEqual(doc);
    expect(await t.query(internal.tasks.count, {})).toBe(1);
  });

  test("actions call queries, mutations and internal actions", async () => {
    const t = convexTest(schema, modules);
    expect(await t.action(api.tasks.addAndCount, { text: "b" })).toEqual({ text: "b", count: 1, doubled: 42 });
  });

  test("errors: messages, the thrown class, data, rollback, argument validation", async () => {
    const t = convexTest(schema, modules);
    const error = await t.mutation(api.tasks.addThenFail, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WalkinError);
    expect((error as WalkinError).message).toBe("task limit reached");
    expect((error as WalkinError).data).toEqual({ code: "LIMIT", max: 10 });
    expect(await t.query(api.tasks.list, {})).toEqual([]);
    await expect(t.mutation(api.tasks.notYours, {})).rejects.toThrow(NotYours);
    await expect(t.action(api.tasks.failViaAction, {})).rejects.toThrowError(/^not your task$/);
    await expect(t.mutation(api.tasks.add, { text: 1 } as any)).rejects.toThrow(/text/);
    await expect(t.mutation(api.tasks.add, { text: "a", extra: true } as any)).rejects.toThrow(/extra/);
    await expect(t.mutation(api.tasks.add, {} as any)).rejects.toThrow(/text/);
  });

  test("withIdentity: subject, issuer, tokenIdentifier and custom claims, in queries and t.run", async () => {
    const t = convexTest(schema, modules);
    const asAda = t.withIdentity({ subject: "ada", name: "Ada", org: { id: "o1", roles: ["admin"] } });
    const me = await asAda.query(api.tasks.whoAmI, {});
    expect(me).toEqual({ subject: "ada", issuer: "https://convex.test", tokenIdentifier: "https://convex.test|ada", name: "Ada", org: { id: "o1", roles: ["admin"] } });
    expect(await asAda.run(async (ctx) => ctx.auth.getUserIdentity())).toEqual(me);
    expect(await t.query(api.tasks.whoAmI, {})).toBeNull();
    const custom = await t.withIdentity({ issuer: "https://auth.example", subject: "u", tokenIdentifier: "tok" }).query(api.tasks.whoAmI, {});
    expect(custom).toMatchObject({ issuer: "https://auth.example", subject: "u", tokenIdentifier: "tok" });
  });

  test("instances are isolated from each other", async () => {
    const a = convexTest(schema, modules);
    const b = convexTest(schema, modules);
    await a.mutation(api.tasks.add, { text: "only in a" });
    expect(await b.query(api.tasks.list, {})).toEqual([]);
    expect(await a.query(api.tasks.list, {})).toHaveLength(1);
  });

  test("a canceled job reads as canceled and never runs", async () => {
    vi.useFakeTimers();
    const t = convexTest(schema, modules);
    const id = await t.run(async (ctx) => ctx.scheduler.runAfter(5000, internal.jobs.record, { name: "never" }));
    expect(await t.run(async (ctx) => ctx.db.system.get(id))).toMatchObject({ name: "jobs.js:record", args: [{ name: "never" }], state: { kind: "pending" } });
    await t.run(async (ctx) => ctx.scheduler.cancel(id));
    await t.finishAllScheduledFunctions(vi.runAllTimers);
    expect(await steps(t)).toEqual([]);
    expect((await t.run(async (ctx) => ctx.db.system.get(id)))!.state).toEqual({ kind: "canceled" });
  });
});

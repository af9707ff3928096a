/**
 * The test harness against what suites written for convex-test expect: identities, isolation,
 * failed mutations writing nothing, scheduled functions in time order and to the end of a
 * chain, fake timers, clean close.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  action,
  anyApi,
  defineSchema,
  defineTable,
  internalMutation,
  makeFunctionReference,
  mutation,
  query,
} from "../server/index.js";
import { WalkinError, v } from "../values/index.js";
import { convexTest, walkinTest } from "./index.js";

const schema = defineSchema({
  log: defineTable({ entry: v.string() }),
});

const ref = {
  append: makeFunctionReference<"mutation", { entry: string }>("probe:append"),
  loop: makeFunctionReference<"mutation", { n: number }>("probe:loop"),
  chain: makeFunctionReference<"mutation", { n: number }>("probe:chain"),
};

const probe = {
  whoAmI: query({ args: {}, handler: async (ctx) => ctx.auth.getUserIdentity() }),
  append: internalMutation({
    args: { entry: v.string() },
    handler: async (ctx, { entry }) => {
      await ctx.db.insert("log", { entry });
    },
  }),
  entries: query({ args: {}, handler: async (ctx) => (await ctx.db.query("log").collect()).map((d) => d.entry) }),
  scheduleMany: mutation({
    args: { n: v.number(), delayMs: v.number() },
    handler: async (ctx, { n, delayMs }) => {
      for (let i = 0; i < n; i++) await ctx.scheduler.runAfter(delayMs, ref.append, { entry: `job${i}` });
    },
  }),
  scheduleOne: mutation({
    args: { entry: v.string(), delayMs: v.number() },
    handler: async (ctx, { entry, delayMs }) => {
      await ctx.scheduler.runAfter(delayMs, ref.append, { entry });
    },
  }),
  writeThenThrow: mutation({
    args: {},
    handler: async (ctx) => {
      await ctx.db.insert("log", { entry: "should not persist" });
      await ctx.scheduler.runAfter(0, ref.append, { entry: "scheduled by failed" });
      throw new WalkinError("nope", { data: { code: "NOPE" } });
    },
  }),
  loop: internalMutation({
    args: { n: v.number() },
    handler: async (ctx, { n }) => {
      await ctx.scheduler.runAfter(0, ref.loop, { n: n + 1 });
    },
  }),
  chain: internalMutation({
    args: { n: v.number() },
    handler: async (ctx, { n }) => {
      await ctx.db.insert("log", { entry: `chain${n}` });
      if (n < 5) await ctx.scheduler.runAfter(1000, ref.chain, { n: n + 1 });
    },
  }),
  identityInAction: action({
    args: {},
    handler: async (ctx): Promise<unknown> => ({
      direct: await ctx.auth.getUserIdentity(),
      viaQuery: await ctx.runQuery(anyApi.probe!.whoAmI!, {}),
    }),
  }),
};

describe("walkinTest probes", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("withIdentity: the same identity is the same user, as in convex-test (subject derived from the identity)", async () => {
    const t = convexTest(schema, { probe });
    const first = (await t.withIdentity({ name: "Ada" }).query(anyApi.probe!.whoAmI!, {})) as { subject: string };
    const second = (await t.withIdentity({ name: "Ada" }).query(anyApi.probe!.whoAmI!, {})) as { subject: string };
    expect(second.subject).toBe(first.subject);
    await t.close();
  });

  it("withIdentity: the default subject does not depend on what earlier tests did", async () => {
    const a = convexTest(schema, { probe });
    const b = convexTest(schema, { probe });
    const fromA = (await a.withIdentity({ name: "Ada" }).query(anyApi.probe!.whoAmI!, {})) as { subject: string };
    const fromB = (await b.withIdentity({ name: "Ada" }).query(anyApi.probe!.whoAmI!, {})) as { subject: string };
    expect(fromB.subject).toBe(fromA.subject);
    await Promise.all([a.close(), b.close()]);
  });

  it("withIdentity: issuer and tokenIdentifier defaults are convex-test's", async () => {
    const t = convexTest(schema, { probe });
    const me = (await t.withIdentity({ subject: "ada" }).query(anyApi.probe!.whoAmI!, {})) as Record<string, unknown>;
    expect(me).toMatchObject({ subject: "ada", issuer: "https://convex.test", tokenIdentifier: "https://convex.test|ada" });
    await t.close();
  });

  it("withIdentity reaches actions and the queries they run; explicit fields are kept", async () => {
    const t = walkinTest(schema, { probe });
    const out = (await t
      .withIdentity({ subject: "s", issuer: "i", tokenIdentifier: "tok", email: "a@b.c" })
      .action(anyApi.probe!.identityInAction!, {})) as Record<string, unknown>;
    const expected = { subject: "s", issuer: "i", tokenIdentifier: "tok", email: "a@b.c" };
    expect(out).toEqual({ direct: expected, viaQuery: expected });
    expect(await t.query(anyApi.probe!.whoAmI!, {})).toBeNull();
    await t.close();
  });

  it("a mutation that throws writes nothing and schedules nothing; WalkinError data survives", async () => {
    const t = walkinTest(schema, { probe });
    const error = await t.mutation(anyApi.probe!.writeThenThrow!, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WalkinError);
    expect((error as WalkinError).data).toEqual({ code: "NOPE" });
    await t.finishScheduledFunctions();
    expect(await t.query(anyApi.probe!.entries!, {})).toEqual([]);
    expect(await t.run(async (ctx) => (await ctx.db.system.query("_scheduled_functions").collect()).length)).toBe(0);
    await t.close();
  });

  it("t.run that throws writes nothing", async () => {
    const t = walkinTest(schema, { probe });
    await expect(
      t.run(async (ctx) => {
        await ctx.db.insert("log", { entry: "x" });
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await t.run(async (ctx) => ctx.db.query("log").collect())).toEqual([]);
    await t.close();
  });

  it("instances are isolated", async () => {
    const a = walkinTest(schema, { probe });
    const b = walkinTest(schema, { probe });
    await a.run(async (ctx) => ctx.db.insert("log", { entry: "a" }));
    expect(await b.query(anyApi.probe!.entries!, {})).toEqual([]);
    await Promise.all([a.close(), b.close()]);
  });

  it("jobs scheduled for the same time run in the order they were scheduled", async () => {
    const t = walkinTest(schema, { probe });
    await t.mutation(anyApi.probe!.scheduleMany!, { n: 12, delayMs: 0 });
    await t.finishScheduledFunctions();
    expect(await t.query(anyApi.probe!.entries!, {})).toEqual(Array.from({ length: 12 }, (_, i) => `job${i}`));
    await t.close();
  });

  it("jobs run in time order, and chains run to the end", async () => {
    const t = walkinTest(schema, { probe });
    await t.mutation(anyApi.probe!.scheduleOne!, { entry: "late", delayMs: 60_000 });
    await t.mutation(anyApi.probe!.scheduleOne!, { entry: "early", delayMs: 10 });
    await t.run(async (ctx) => {
      await ctx.scheduler.runAfter(0, ref.chain, { n: 0 });
    });
    await t.finishScheduledFunctions();
    expect(await t.query(anyApi.probe!.entries!, {})).toEqual(["chain0", "early", "chain1", "chain2", "chain3", "chain4", "chain5", "late"]);
    await t.close();
  });

  it("an endless chain ends with a clear error", async () => {
    const t = walkinTest(schema, { probe });
    await t.run(async (ctx) => {
      await ctx.scheduler.runAfter(0, ref.loop, { n: 0 });
    });
    await expect(t.finishScheduledFunctions()).rejects.toThrow(/kept scheduling/);
    await t.close();
  });

  it("fake timers: runAfter + advanceTimersByTime + finishInProgressScheduledFunctions", async () => {
    vi.useFakeTimers();
    const t = convexTest(schema, { probe });
    await t.mutation(anyApi.probe!.scheduleOne!, { entry: "later", delayMs: 10_000 });
    vi.advanceTimersByTime(5_000);
    await t.finishInProgressScheduledFunctions();
    expect(await t.query(anyApi.probe!.entries!, {})).toEqual([]);
    vi.advanceTimersByTime(5_000);
    await t.finishInProgressScheduledFunctions();
    expect(await t.query(anyApi.probe!.entries!, {})).toEqual(["later"]);
    await t.close();
  });

  it("fake timers: finishAllScheduledFunctions(vi.runAllTimers)", async () => {
    vi.useFakeTimers();
    const t = convexTest(schema, { probe });
    await t.run(async (ctx) => {
      await ctx.scheduler.runAfter(0, ref.chain, { n: 0 });
    });
    await t.finishAllScheduledFunctions(vi.runAllTimers);
    expect(await t.query(anyApi.probe!.entries!)).toHaveLength(6);
    await t.close();
  });

  it("fake timers: concurrent mutations do not hang", async () => {
    vi.useFakeTimers();
    const t = convexTest(schema, { probe });
    const both = Promise.all([
      t.mutation(anyApi.probe!.scheduleOne!, { entry: "a", delayMs: 0 }),
      t.mutation(anyApi.probe!.scheduleOne!, { entry: "b", delayMs: 0 }),
    ]);
    const outcome = await Promise.race([both.then(() => "done"), new Promise((r) => setTimeoutReal(r, 2_000, "hung"))]);
    await drainFakeTimers(both); // lets a hung commit finish, so the test cleans up either way
    await t.close();
    expect(outcome).toBe("done");
  });

  it("fake timers: an action running mutations in parallel does not hang", async () => {
    const mods = {
      add: internalMutation({ args: { entry: v.string() }, handler: async (ctx, { entry }) => void (await ctx.db.insert("log", { entry })) }),
      fanOut: action({
        args: {},
        handler: async (ctx) => {
          await Promise.all(["x", "y", "z"].map((entry) => ctx.runMutation(anyApi.mods!.add!, { entry })));
        },
      }),
    };
    vi.useFakeTimers();
    const t = convexTest(schema, { mods });
    const run = t.action(anyApi.mods!.fanOut!, {});
    const outcome = await Promise.race([run.then(() => "done"), new Promise((r) => setTimeoutReal(r, 2_000, "hung"))]);
    await drainFakeTimers(run);
    await t.close();
    expect(outcome).toBe("done");
  });

  it("a failing query's error names the function", async () => {
    const mods = { bad: query({ args: {}, handler: async () => { throw new Error("kaboom"); } }) };
    const t = walkinTest(null, { mods });
    const error = (await t.query(anyApi.mods!.bad!, {}).catch((e: unknown) => e)) as Error;
    expect(error.message).toContain("kaboom");
    await expect(t.query(anyApi.mods!.missing!, {})).rejects.toThrow(/mods:missing/);
    await expect(t.query(anyApi.nope!.missing!, {})).rejects.toThrow(/nope:missing/);
    await t.close();
  });

  it("closing leaves no active handles behind", async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap").length;
    const t = walkinTest(schema, { probe });
    await t.mutation(anyApi.probe!.scheduleOne!, { entry: "a", delayMs: 0 });
    await t.action(anyApi.probe!.identityInAction!, {});
    await t.finishScheduledFunctions();
    await t.close();
    await new Promise((r) => setImmediate(r));
    const after = process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap");
    expect(after.length, after.join(",")).toBeLessThanOrEqual(before);
  });

  it("args with an undefined optional field are accepted, as a client would drop it", async () => {
    const mods = {
      opt: mutation({ args: { a: v.optional(v.string()) }, handler: async (_ctx, { a }) => a ?? "none" }),
    };
    const t = walkinTest(null, { mods });
    expect(await t.mutation(anyApi.mods!.opt!, { a: undefined })).toBe("none");
    await t.close();
  });
});

// Captured before any test installs fake timers.
const realSetTimeout = globalThis.setTimeout;
function setTimeoutReal(resolve: (value: unknown) => void, ms: number, value: unknown) {
  realSetTimeout(() => resolve(value), ms);
}

/** Fires fake timers until `work` settles, then restores real timers. */
async function drainFakeTimers(work: Promise<unknown>) {
  let settled = false;
  void work.finally(() => (settled = true)).catch(() => undefined);
  while (!settled) {
    vi.runOnlyPendingTimers();
    await new Promise((r) => setTimeoutReal(r, 1, undefined));
  }
  vi.useRealTimers();
  await work;
}

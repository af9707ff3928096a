/**
 * The determinism sandbox under interleaving: several queries and mutations suspended at their
 * `await`s at once, and actions running in between. Each handler must keep its own fixed clock
 * and its own seeded randomness across every await, and code outside them the real ones.
 */
import { afterEach, describe, expect, it } from "vitest";
import { action, anyApi, type ApiFromModules, defineSchema, defineTable, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { withLatency } from "../storage/latency.js";

const schema = defineSchema({ notes: defineTable({ body: v.string() }) });
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Draws randomness and reads the clock between awaits that let other handlers run. */
async function trail(ctx: { db: { query(table: "notes"): { collect(): Promise<unknown[]> } } }, pauseMs: number, pausing?: () => void) {
  const draws: number[] = [Math.random()];
  const clocks: number[] = [Date.now()];
  for (let i = 0; i < 3; i++) {
    await ctx.db.query("notes").collect();
    if (i === 0) pausing?.();
    await sleep(pauseMs);
    draws.push(Math.random());
    clocks.push(Date.now(), new Date().getTime());
  }
  return { draws, clocks };
}

/** Set by a test to learn when the mutation below is suspended in its first pause. */
let mutationPausing: (() => void) | undefined;

const modules = {
  sandbox: {
    // The pause differs by tag, so that the handlers resume in a different order than they began.
    trailQuery: query({ args: { tag: v.string() }, handler: (ctx, { tag }) => trail(ctx, { a: 3, b: 1, c: 2 }[tag] ?? 0) }),
    trailMutation: mutation({
      args: { pauseMs: v.number() },
      handler: async (ctx, { pauseMs }) => {
        const result = await trail(ctx, pauseMs, mutationPausing);
        await ctx.db.insert("notes", { body: "x" });
        return result;
      },
    }),
    realClock: action({
      args: {},
      handler: async () => ({ now: Date.now(), draws: [Math.random(), Math.random()] }),
    }),
  },
};
const api = anyApi as unknown as ApiFromModules<typeof modules>;

let t: ReturnType<typeof walkinTest> | undefined;
afterEach(async () => {
  mutationPausing = undefined;
  await t?.close();
  t = undefined;
});

describe("determinism under interleaving", () => {
  it("gives each of several suspended queries its own seeded randomness and clock across every await", async () => {
    // Storage with latency, so that every read suspends its handler across macrotasks.
    t = walkinTest(schema, modules, { storage: async () => withLatency(await openSqliteStorage({ filename: ":memory:" }), { read: [0, 2] }) });
    // Alone first: a query's randomness is seeded by its path, arguments and snapshot.
    const alone = [];
    for (const tag of ["a", "b", "c"]) alone.push(await t.query(api.sandbox.trailQuery, { tag }));
    // Then all at once, interleaved. Had any handler drawn from another's generator, or from
    // the real Math.random after an await, its sequence would differ from its run alone.
    const together = await Promise.all(["a", "b", "c"].map((tag) => t!.query(api.sandbox.trailQuery, { tag })));
    expect(together.map((r) => r.draws)).toEqual(alone.map((r) => r.draws));
    for (const { clocks } of together) expect(new Set(clocks).size).toBe(1);
    // Different arguments, different seeds: the comparison above could tell them apart.
    expect(new Set(alone.map((r) => r.draws[0])).size).toBe(3);
  });

  it("keeps a mutation's clock fixed across awaits while an action, run in between, sees the real clock", async () => {
    t = walkinTest(schema, modules);
    const pausing = new Promise<void>((resolve) => (mutationPausing = resolve));
    const suspended = t.mutation(api.sandbox.trailMutation, { pauseMs: 20 });
    await pausing; // the mutation is now waiting in its first pause
    await sleep(3); // so that the real clock is past the mutation's fixed one
    const fromAction = (await t.action(api.sandbox.realClock, {})) as { now: number; draws: number[] };
    const { clocks, draws } = (await suspended) as { clocks: number[]; draws: number[] };
    expect(new Set(clocks).size).toBe(1);
    // The mutation's clock is fixed at its start; the action ran at least 3 ms later.
    expect(fromAction.now).toBeGreaterThan(clocks[0]!);
    expect(draws).not.toContain(fromAction.draws[0]);
    // Outside every handler, the real clock and randomness are back.
    const before = Date.now();
    await sleep(2);
    expect(Date.now()).toBeGreaterThan(before);
    expect(Math.random()).not.toBe(Math.random());
  });
});

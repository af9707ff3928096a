/**
 * Calling functions from functions, beyond mutationCtxRun.test.ts:
 *  - `ctx.runQuery` inside a query, as Convex's QueryCtx has it
 *    (docs.convex.dev/api/interfaces/server.GenericQueryCtx: "Call a query function within the
 *    same transaction"): same snapshot, validators applied, and the called query's reads are
 *    the caller's, so a live query re-runs when what only the inner query read changes;
 *  - the nesting limit: 8 ctx.runQuery / ctx.runMutation levels below the called function, as
 *    Convex's MAX_REACTOR_CALL_DEPTH; a function that calls itself without end fails clearly;
 *  - a call the handler did not await when it returned fails the function: its transaction
 *    commits nothing, rather than committing without the call's writes.
 * Over a real SQLite file; the live query over a real WebSocket server on loopback.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, expectTypeOf, it } from "vitest";
import {
  anyApi,
  defineSchema,
  defineTable,
  internalMutation,
  internalQuery,
  makeFunctionReference,
  mutation,
  query,
  type ApiFromModules,
  type GenericActionCtx,
  type GenericQueryCtx,
} from "../server/index.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { startHarness } from "../transport/fixtures/harness.js";
import { addQueries, isTransition } from "../transport/fixtures/rawClient.js";
import { Engine } from "./engine.js";
import { LIMITS } from "./limits.js";

const schema = defineSchema({
  lists: defineTable({ name: v.string(), title: v.string() }).index("by_name", ["name"]),
  notes: defineTable({ list: v.string(), text: v.string() }).index("by_list", ["list"]),
  steps: defineTable({ level: v.number() }),
});

/**
 * Where a function stops until the test lets it go on: it calls `reached` (resolving `atGate`),
 * awaits `opened` (resolved by `open`), and calls `done` when it ends (resolving `finished`).
 */
function makeGate() {
  let reached!: () => void;
  let open!: () => void;
  let done!: () => void;
  return {
    atGate: new Promise<void>((resolve) => (reached = resolve)),
    opened: new Promise<void>((resolve) => (open = resolve)),
    finished: new Promise<void>((resolve) => (done = resolve)),
    reached: () => reached(),
    open: () => open(),
    done: () => done(),
  };
}
let gate = makeGate();

const listsModule = {
  /** Only this query reads `lists`: the callers below read it through ctx.runQuery alone. */
  title: internalQuery({
    args: { name: v.string() },
    returns: v.string(),
    handler: async (ctx, { name }) => (await ctx.db.query("lists").withIndex("by_name", (q) => q.eq("name", name)).unique())?.title ?? "untitled",
  }),
  rename: mutation({
    args: { name: v.string(), title: v.string() },
    handler: async (ctx, { name, title }) => {
      const list = await ctx.db.query("lists").withIndex("by_name", (q) => q.eq("name", name)).unique();
      if (list) await ctx.db.patch(list._id, { title });
      else await ctx.db.insert("lists", { name, title });
    },
  }),
  /** A field set to undefined, which a caller receives absent. */
  summary: query({ args: {}, handler: async () => ({ kind: "summary", missing: undefined as string | undefined }) }),
  /** Declares a number, returns a string. */
  badReturn: internalQuery({ args: {}, returns: v.number(), handler: async () => "not a number" as unknown as number }),
};

const notesLeaves = {
  add: mutation({ args: { list: v.string(), text: v.string() }, handler: (ctx, args) => ctx.db.insert("notes", args) }),
  all: query({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").collect()).map((note) => note.text) }),
};

const lateLeaves = {
  /** Waits at the gate, then writes. */
  slow: internalMutation({
    args: {},
    handler: async (ctx) => {
      try {
        gate.reached();
        await gate.opened;
        await ctx.db.insert("notes", { list: "late", text: "written by slow" });
      } finally {
        gate.done();
      }
    },
  }),
  slowQuery: internalQuery({
    args: {},
    handler: async (ctx) => {
      try {
        gate.reached();
        await gate.opened;
        return (await ctx.db.query("notes").collect()).length;
      } finally {
        gate.done();
      }
    },
  }),
};

/** The functions the others call: `api` and `internal` of these, as codegen's `_generated/api` gives them. */
type CalledModules = { lists: typeof listsModule; notes: typeof notesLeaves; late: typeof lateLeaves };
const calledApi = anyApi as unknown as ApiFromModules<CalledModules>;
const internal = anyApi as unknown as ApiFromModules<CalledModules, "internal">;
// Functions that call themselves (or their own module's callers) are named by hand, as Convex
// apps do, since their type cannot come from their own module's.
const downRef = makeFunctionReference<"mutation", { n: number }, number>("recursion:down");
const foreverRef = makeFunctionReference<"query", Record<string, never>, number>("recursion:forever");
const fireRef = makeFunctionReference<"mutation", Record<string, never>, null>("late:fire");

const notesModule = {
  ...notesLeaves,
  /** A list's notes under its title, which it reads only through ctx.runQuery. */
  page: query({
    args: { list: v.string() },
    handler: async (ctx, { list }) => {
      const title = await ctx.runQuery(internal.lists.title, { name: list });
      expectTypeOf(title).toEqualTypeOf<string>();
      const notes = await ctx.db.query("notes").withIndex("by_list", (q) => q.eq("list", list)).collect();
      return { title, texts: notes.map((note) => note.text) };
    },
  }),
  /** Reads its notes, waits at the gate, then reads the title through ctx.runQuery. */
  pageWithPause: query({
    args: { list: v.string() },
    handler: async (ctx, { list }) => {
      const notes = await ctx.db.query("notes").withIndex("by_list", (q) => q.eq("list", list)).collect();
      gate.reached();
      await gate.opened;
      return { title: await ctx.runQuery(internal.lists.title, { name: list }), count: notes.length };
    },
  }),
  /** Calls with args the validator refuses, a query whose return fails its validator, and one returning undefined fields. */
  callBadly: query({
    args: {},
    handler: async (ctx) => {
      const messages: string[] = [];
      // @ts-expect-error -- name must be a string: the check at run time is what is tested
      await ctx.runQuery(internal.lists.title, { name: 5 }).catch((e: Error) => messages.push(e.message));
      await ctx.runQuery(internal.lists.badReturn).catch((e: Error) => messages.push(e.message));
      // A query cannot call a mutation: a type error, and refused at run time too.
      // @ts-expect-error -- a mutation reference is not a query reference
      await ctx.runQuery(calledApi.notes.add, { list: "a", text: "x" }).catch((e: Error) => messages.push(e.message));
      const summary = await ctx.runQuery(calledApi.lists.summary);
      return { messages, summaryKeys: Object.keys(summary) };
    },
  }),
};

const recursionModule = {
  /** Writes a step, then calls itself `n` more times: `n` nested ctx.runMutation calls. */
  down: internalMutation({
    args: { n: v.number() },
    handler: async (ctx, { n }): Promise<number> => {
      await ctx.db.insert("steps", { level: n });
      if (n > 0) await ctx.runMutation(downRef, { n: n - 1 });
      return n;
    },
  }),
  /** Writes a step, then calls `down` too deep and catches the error. */
  catchTooDeep: mutation({
    args: {},
    handler: async (ctx) => {
      await ctx.db.insert("steps", { level: -1 });
      return ctx.runMutation(downRef, { n: 20 }).then(() => "no error", (e: Error) => e.message);
    },
  }),
  levels: query({ args: {}, handler: async (ctx) => (await ctx.db.query("steps").collect()).map((step) => step.level) }),
  /** A query that calls itself without end. */
  forever: query({ args: {}, handler: async (ctx): Promise<number> => 1 + (await ctx.runQuery(foreverRef, {})) }),
};

const lateModule = {
  ...lateLeaves,
  /** Writes, starts `slow` without awaiting it, and returns. */
  fire: mutation({
    args: {},
    handler: async (ctx) => {
      await ctx.db.insert("notes", { list: "late", text: "written by fire" });
      void ctx.runMutation(internal.late.slow);
    },
  }),
  /** Calls `fire`, catches its error, and writes. */
  catchFire: mutation({
    args: {},
    handler: async (ctx) => {
      await ctx.runMutation(fireRef, {}).catch(() => {});
      await ctx.db.insert("notes", { list: "late", text: "written by catchFire" });
    },
  }),
  /** Starts a query without awaiting it, and returns. */
  peek: query({
    args: {},
    handler: async (ctx) => {
      void ctx.runQuery(internal.late.slowQuery);
      return "returned";
    },
  }),
};

const togetherLeaves = {
  /** Writes, waits a moment (while another called mutation runs, unless they take turns), then fails. */
  writeThenFail: internalMutation({
    args: {},
    handler: async (ctx) => {
      await ctx.db.insert("notes", { list: "together", text: "written by the failing one" });
      await new Promise((resolve) => setTimeout(resolve, 20));
      throw new Error("failed on purpose");
    },
  }),
  write: internalMutation({ args: {}, handler: (ctx) => ctx.db.insert("notes", { list: "together", text: "written by the good one" }) }),
};
const together = anyApi as unknown as ApiFromModules<{ together: typeof togetherLeaves }, "internal">;

const togetherModule = {
  ...togetherLeaves,
  /** Starts both at once and reports how each settled. */
  both: mutation({
    args: {},
    handler: async (ctx) => {
      const settled = await Promise.allSettled([ctx.runMutation(together.together.writeThenFail), ctx.runMutation(together.together.write)]);
      return settled.map((outcome) => outcome.status);
    },
  }),
};

const modules = { lists: listsModule, notes: notesModule, recursion: recursionModule, late: lateModule, together: togetherModule };

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  gate = makeGate();
});

async function openEngine(): Promise<Engine> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-query-ctx-run-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const storage = await openSqliteStorage({ filename: path.join(dir, "data.sqlite") });
  const engine = await Engine.open({ storage, schema, modules, runScheduler: false, logError: () => {} });
  cleanups.push(() => engine.close());
  return engine;
}

const allNotes = (engine: Engine) => engine.runQuery("notes:all", {});
const allLevels = (engine: Engine) => engine.runQuery("recursion:levels", {});

describe("ctx.runQuery in a query", () => {
  it("is typed as an action's (and a query's ctx has no runMutation)", () => {
    expectTypeOf<GenericQueryCtx<any>["runQuery"]>().toEqualTypeOf<GenericActionCtx<any>["runQuery"]>();
    expectTypeOf<GenericQueryCtx<any>>().not.toHaveProperty("runMutation");
  });

  it("runs the called query and returns its value", async () => {
    const engine = await openEngine();
    await engine.runMutation("lists:rename", { name: "a", title: "Groceries" });
    await engine.runMutation("notes:add", { list: "a", text: "milk" });
    expect(await engine.runQuery("notes:page", { list: "a" })).toEqual({ title: "Groceries", texts: ["milk"] });
  });

  it("runs the called query at the caller's snapshot: a commit between the caller's read and the call is not seen", async () => {
    const engine = await openEngine();
    await engine.runMutation("lists:rename", { name: "a", title: "before" });
    const result = engine.runQuery("notes:pageWithPause", { list: "a" });
    await gate.atGate; // the caller has read its notes at its snapshot
    await engine.runMutation("lists:rename", { name: "a", title: "after" });
    await engine.runMutation("notes:add", { list: "a", text: "milk" });
    gate.open();
    // Had the called query read the latest commit, it would see "after" beside a count of 0.
    expect(await result).toEqual({ title: "before", count: 0 });
  });

  it("checks the called query's args and returns validators, refuses a mutation, and drops undefined fields", async () => {
    const engine = await openEngine();
    const { messages, summaryKeys } = (await engine.runQuery("notes:callBadly", {})) as { messages: string[]; summaryKeys: string[] };
    expect(messages).toHaveLength(3);
    expect(messages[0]).toMatch(/args\.name: expected string/);
    expect(messages[1]).toMatch(/lists:badReturn/);
    expect(messages[2]).toMatch(/notes:add/);
    expect(summaryKeys).toEqual(["kind"]);
  });

  it("a live query gets a new result when a document only the called query read changes (over WebSocket)", async () => {
    const engine = await openEngine();
    const harness = await startHarness({ engine });
    cleanups.push(() => harness.dispose().catch(() => {}));
    await engine.runMutation("lists:rename", { name: "a", title: "Groceries" });
    const client = await harness.client();
    client.send(addQueries(0, [[1, "notes:page", { list: "a" }]]));
    const valueIs = (expected: unknown) => (message: Parameters<typeof isTransition>[0]) =>
      isTransition(message) && message.modifications.some((mod) => mod.type === "QueryUpdated" && mod.queryId === 1 && JSON.stringify(mod.value) === JSON.stringify(expected));
    await client.waitFor(valueIs({ title: "Groceries", texts: [] }));
    // The page query reads `notes` itself and `lists` only through ctx.runQuery.
    await engine.runMutation("lists:rename", { name: "a", title: "Shopping" });
    await client.waitFor(valueIs({ title: "Shopping", texts: [] }));
    expect(client.violations).toEqual([]);
  });
});

describe("nesting limit", () => {
  it(`allows ${LIMITS.maxCallDepth} nested calls; one more fails naming the limit and the chain, and writes nothing`, async () => {
    const engine = await openEngine();
    expect(LIMITS.maxCallDepth).toBe(8); // Convex's MAX_REACTOR_CALL_DEPTH
    expect((await engine.runMutation("recursion:down", { n: 8 })).value).toBe(8);
    expect(await allLevels(engine)).toEqual([8, 7, 6, 5, 4, 3, 2, 1, 0]);

    const error = await engine.runMutation("recursion:down", { n: 9 }).then(() => null, (e: unknown) => e);
    expect(error).toMatchObject({ code: "LIMIT_EXCEEDED" });
    const message = (error as Error).message;
    expect(message).toContain(`limit of ${LIMITS.maxCallDepth}`);
    expect(message).toContain(`recursion:down → ${Array(9).fill("recursion:down").join(" → ")}`);
    expect(message).toMatch(/base case/);
    expect(await allLevels(engine)).toHaveLength(9); // none of the 9 steps the refused run wrote
  });

  it("a caller that catches the error commits only its own writes, none of the refused chain's", async () => {
    const engine = await openEngine();
    const { value } = await engine.runMutation("recursion:catchTooDeep", {});
    expect(value).toMatch(/limit of 8/);
    expect(await allLevels(engine)).toEqual([-1]);
  });

  it("a query that calls itself without end fails with the limit instead of overflowing", async () => {
    const engine = await openEngine();
    await expect(engine.runQuery("recursion:forever", {})).rejects.toMatchObject({ code: "LIMIT_EXCEEDED", message: expect.stringMatching(/recursion:forever → recursion:forever/) });
  });
});

describe("a call the handler did not await", () => {
  it("fails the mutation, naming the call; neither its writes nor the caller's land, even once the call ends", async () => {
    const engine = await openEngine();
    // 1. `fire` writes, starts `slow` without awaiting it, and returns; `slow` waits at the gate.
    // 2. So `fire` ends while `slow` still runs: that is the error.
    // 3. Then `slow` goes on and writes to the transaction `fire` left behind, which must not
    //    commit (before the fix, `fire` committed without `slow`'s write: it was lost).
    const outcome = engine.runMutation("late:fire", {}).then(() => null, (e: unknown) => e);
    await gate.atGate;
    const error = await outcome;
    gate.open();
    await gate.finished;
    expect(error).toMatchObject({ code: "MISUSE", message: expect.stringContaining('ctx.runMutation("late:slow")') });
    expect((error as Error).message).toMatch(/late:fire returned/);
    expect(await allNotes(engine)).toEqual([]);
  });

  it("the failure sticks: a caller that catches it commits nothing", async () => {
    const engine = await openEngine();
    const outcome = engine.runMutation("late:catchFire", {}).then(() => null, (e: unknown) => e);
    await gate.atGate;
    const error = await outcome;
    gate.open();
    await gate.finished;
    expect(error).toMatchObject({ code: "MISUSE", message: expect.stringContaining('ctx.runMutation("late:slow")') });
    expect(await allNotes(engine)).toEqual([]);
  });

  it("fails a query that returned while a ctx.runQuery it made was running", async () => {
    const engine = await openEngine();
    const outcome = engine.runQuery("late:peek", {}).then(() => null, (e: unknown) => e);
    await gate.atGate;
    const error = await outcome;
    gate.open();
    await gate.finished;
    expect(error).toMatchObject({ code: "MISUSE", message: expect.stringContaining('ctx.runQuery("late:slowQuery")') });
  });
});

describe("called mutations started together", () => {
  it("take turns, so one that fails undoes only its own writes, not those of one that succeeded meanwhile", async () => {
    const engine = await openEngine();
    const { value } = await engine.runMutation("together:both", {});
    expect(value).toEqual(["rejected", "fulfilled"]);
    // Interleaved, the failing one's rollback to its savepoint (taken first) also undid the
    // good one's write, which had already reported success.
    expect(await allNotes(engine)).toEqual(["written by the good one"]);
  });
});

/**
 * More of Convex's documented API, each missing or different before its fix:
 * - `paginationResultValidator` (docs.convex.dev/api/modules/server#paginationresultvalidator),
 *   which must accept every page `paginate` returns, with or without `splitCursor`/`pageStatus`;
 * - `filterApi`, `ROUTABLE_HTTP_METHODS` and the type names `FilterApi`, `RoutableMethod`,
 *   `Crons`, `SchedulableFunctionReference` (docs.convex.dev/api/modules/server);
 * - `ctx.scheduler.cancel` of an action that is already running
 *   (docs.convex.dev/api/interfaces/server.Scheduler#cancel: "it will continue running but any
 *   new functions that it tries to schedule will be canceled"), with the cancel on one node and
 *   the action on another, over one real SQLite file.
 */
import { afterEach, describe, expect, expectTypeOf, it } from "vitest";
import * as server from "../server/index.js";
import {
  anyApi,
  defineSchema,
  defineTable,
  internalAction,
  internalMutation,
  makeFunctionReference,
  mutation,
  paginationOptsValidator,
  paginationResultValidator,
  query,
  type ApiFromModules,
  type Crons,
  type DataModelFromSchemaDefinition,
  type FilterApi,
  type FunctionReference,
  type QueryBuilder,
  type RoutableMethod,
  type SchedulableFunctionReference,
} from "../server/index.js";
import { v, validateResult } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine } from "./engine.js";
import { useSchedulerEngines, waitFor } from "./fixtures/schedulerEngines.js";

describe("paginationResultValidator", () => {
  const schema = defineSchema({ items: defineTable({ n: v.number() }).index("by_n", ["n"]) });
  const item = v.object({ _id: v.id("items"), _creationTime: v.number(), n: v.number() });
  /** The builder bound to the schema, as codegen's `_generated/server` gives it. */
  const typedQuery = query as unknown as QueryBuilder<DataModelFromSchemaDefinition<typeof schema>, "public">;
  const modules = {
    items: {
      /** Convex's documented pattern: the page goes back as `paginate` returned it, checked by `returns`. */
      page: typedQuery({
        args: { paginationOpts: paginationOptsValidator },
        returns: paginationResultValidator(item),
        handler: (ctx, { paginationOpts }) => ctx.db.query("items").withIndex("by_n").paginate(paginationOpts),
      }),
    },
  };
  const api = anyApi as unknown as ApiFromModules<typeof modules>;
  let t: ReturnType<typeof walkinTest<typeof schema>> | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it("is exported from walkin/server, as from convex/server", () => {
    expect(typeof (server as Record<string, unknown>).paginationResultValidator).toBe("function");
  });

  it("accepts every page paginate returns: a plain one, one split for its read budget, the last one", async () => {
    t = walkinTest(schema, modules);
    await t.run(async (ctx) => {
      for (let n = 0; n < 10; n++) await ctx.db.insert("items", { n });
    });
    const plain = await t.query(api.items.page, { paginationOpts: { numItems: 3, cursor: null } });
    expect(plain.page.map((d) => d.n)).toEqual([0, 1, 2]);
    expect(plain).not.toHaveProperty("pageStatus");

    // Stopped by its read budget: `paginate` adds pageStatus and splitCursor.
    const split = await t.query(api.items.page, { paginationOpts: { numItems: 8, cursor: plain.continueCursor, maximumRowsRead: 4 } });
    expect(split).toMatchObject({ isDone: false, pageStatus: "SplitRequired", splitCursor: expect.any(String) });
    expect(split.page.map((d) => d.n)).toEqual([3, 4, 5, 6]);

    const last = await t.query(api.items.page, { paginationOpts: { numItems: 8, cursor: split.continueCursor } });
    expect(last).toMatchObject({ isDone: true });
    expect(last.page.map((d) => d.n)).toEqual([7, 8, 9]);
  });

  it("has Convex's shape: splitCursor and pageStatus optional and nullable, pageStatus one of two words", () => {
    const validator = paginationResultValidator(v.number());
    const base = { page: [1, 2], isDone: false, continueCursor: "c" };
    expect(validateResult(validator, base).ok).toBe(true);
    expect(validateResult(validator, { ...base, splitCursor: null, pageStatus: null }).ok).toBe(true);
    expect(validateResult(validator, { ...base, splitCursor: "s", pageStatus: "SplitRecommended" }).ok).toBe(true);
    expect(validateResult(validator, { ...base, pageStatus: "Split" }).ok).toBe(false);
    expect(validateResult(validator, { ...base, page: ["one"] }).ok).toBe(false);
    expect(validateResult(validator, { page: [], isDone: true }).ok).toBe(false);
  });
});

describe("the other convex/server names code written for Convex imports", () => {
  const modules = {
    notes: {
      list: query({ args: {}, handler: () => [] }),
      add: mutation({ args: { text: v.string() }, handler: () => null }),
    },
    "admin/stats": { count: query({ args: {}, handler: () => 0 }) },
    "admin/tasks": { purge: mutation({ args: {}, handler: () => null }) },
  };
  type Api = ApiFromModules<typeof modules>;
  const api = anyApi as unknown as Api;

  it("filterApi keeps the references that match, typed, and is the same object at run time", async () => {
    const queries = server.filterApi<Api, FunctionReference<"query">>(api);
    expectTypeOf(queries).toEqualTypeOf<FilterApi<Api, FunctionReference<"query">>>();
    // Modules left without a match are gone from the type: admin/tasks holds only a mutation.
    expectTypeOf<keyof typeof queries>().toEqualTypeOf<"notes" | "admin">();
    expectTypeOf<keyof (typeof queries)["notes"]>().toEqualTypeOf<"list">();
    expectTypeOf<keyof (typeof queries)["admin"]>().toEqualTypeOf<"stats">();
    expect(queries).toBe(api);
    const t = walkinTest(defineSchema({}), modules);
    try {
      expect(await t.query(queries.notes.list, {})).toEqual([]);
      expect(await t.query(queries.admin.stats.count, {})).toBe(0);
    } finally {
      await t.close();
    }
  });

  it("ROUTABLE_HTTP_METHODS lists the methods http.route() accepts", () => {
    const methods = (server as Record<string, unknown>).ROUTABLE_HTTP_METHODS as readonly RoutableMethod[];
    expect([...methods].sort()).toEqual(["DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT"]);
    const http = server.httpRouter();
    for (const method of methods) http.route({ path: "/hook", method, handler: server.httpAction(async () => new Response("ok")) });
  });

  it("Crons and SchedulableFunctionReference name what Convex's do", () => {
    expectTypeOf(server.cronJobs()).toEqualTypeOf<Crons>();
    expectTypeOf(api.notes.add).toMatchTypeOf<SchedulableFunctionReference>();
    expectTypeOf(api.notes.list).not.toMatchTypeOf<SchedulableFunctionReference>();
  });
});

describe("ctx.scheduler.cancel of an action that is already running", () => {
  const ref = {
    work: makeFunctionReference<"action">("jobs:work"),
    record: makeFunctionReference<"mutation", { kind: string }>("jobs:record"),
    scheduleRecord: makeFunctionReference<"mutation", { kind: string }>("jobs:scheduleRecord"),
  };
  const schema = defineSchema({ events: defineTable({ kind: v.string() }) });

  /** Lets the test hold the running action until it has canceled it. */
  let started!: () => void;
  let release!: () => void;
  let startedOnce: Promise<void>;
  let released: Promise<void>;
  function resetGates() {
    startedOnce = new Promise((resolve) => (started = resolve));
    released = new Promise((resolve) => (release = resolve));
  }
  resetGates();

  const jobs = {
    start: mutation({ args: {}, handler: (ctx) => ctx.scheduler.runAfter(0, ref.work, {}) }),
    /** Runs on, after its cancel, to schedule: itself, and through a mutation it calls. */
    work: internalAction({
      args: {},
      handler: async (ctx) => {
        started();
        await released;
        const direct = await ctx.scheduler.runAfter(0, ref.record, { kind: "direct" });
        const viaMutation = await ctx.runMutation(ref.scheduleRecord, { kind: "viaMutation" });
        return [direct, viaMutation];
      },
    }),
    record: internalMutation({ args: { kind: v.string() }, handler: (ctx, { kind }) => ctx.db.insert("events", { kind }) }),
    scheduleRecord: internalMutation({
      args: { kind: v.string() },
      handler: (ctx, { kind }) => ctx.scheduler.runAfter(0, ref.record, { kind }),
    }),
    cancel: mutation({ args: { id: v.id("_scheduled_functions") }, handler: (ctx, { id }) => ctx.scheduler.cancel(id) }),
    states: query({
      args: {},
      handler: async (ctx) =>
        Object.fromEntries((await ctx.db.system.query("_scheduled_functions").collect()).map((j) => [j._id, `${j.name} ${j.state.kind}`])),
    }),
    events: query({ args: {}, handler: async (ctx) => (await ctx.db.query("events").collect()).map((e) => e.kind) }),
  };
  const { tempFile, open } = useSchedulerEngines(schema, { jobs });
  const nodes: Engine[] = [];
  afterEach(async () => {
    release();
    resetGates();
    for (const node of nodes.splice(0)) await node.close();
  });
  /** An engine over `filename`, as a node of its own (closed after the test). */
  async function openNode(filename: string, runScheduler: boolean): Promise<Engine> {
    const storage = await openSqliteStorage({ filename });
    const engine = await Engine.open({ storage, schema, modules: { jobs }, runScheduler, pollIntervalMs: 20, logError: () => {} });
    nodes.push(engine);
    return engine;
  }

  it("goes on, is marked canceled, and what it schedules afterwards is canceled and never runs (cancel on another node)", async () => {
    const file = tempFile();
    // Node A runs the scheduler; node B serves the mutation that cancels. Plain SQLite storages:
    // the latency wrapper does not pass on `watchCommits`, so engines behind it never hear of
    // each other's commits.
    const nodeA = await openNode(file, true);
    const nodeB = await openNode(file, false);
    const id = (await nodeB.runMutation("jobs:start", {})).value as string;
    await startedOnce;
    const states = async () => (await nodeB.runQuery("jobs:states", {})) as Record<string, string>;
    await waitFor(async () => (await states())[id] === "jobs.js:work inProgress");

    await nodeB.runMutation("jobs:cancel", { id });
    expect((await states())[id]).toBe("jobs.js:work canceled");
    release();

    // Every job the action scheduled exists, and is over without having run.
    await waitFor(async () => Object.keys(await states()).length === 3);
    await waitFor(async () => Object.values(await states()).every((state) => !/pending|inProgress/.test(state)));
    const after = await states();
    expect(Object.values(after).sort()).toEqual(["jobs.js:record canceled", "jobs.js:record canceled", "jobs.js:work canceled"]);
    // The action's end did not turn its job back into "success", and nothing it scheduled ran.
    await nodeA.scheduler.runUntilIdle();
    expect(await nodeB.runQuery("jobs:events", {})).toEqual([]);
    expect((await states())[id]).toBe("jobs.js:work canceled");
  });

  it("what a running action schedules still runs when nobody cancels it", async () => {
    const engine = await open(tempFile());
    await engine.runMutation("jobs:start", {});
    await startedOnce;
    release();
    await waitFor(async () => ((await engine.runQuery("jobs:events", {})) as string[]).length === 2);
    expect(((await engine.runQuery("jobs:events", {})) as string[]).sort()).toEqual(["direct", "viaMutation"]);
  });
});

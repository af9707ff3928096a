/**
 * Behaviours a Convex app relies on, each as Convex documents it (the page is cited above the
 * test): a mutation's `for await` sees its own writes, object validators derive others, system
 * documents of scheduled functions have Convex's shape, and a field set to undefined is absent
 * once it crossed a function call. Each failed before its fix (found in a compatibility review).
 */
import { afterEach, describe, expect, it } from "vitest";
import { action, anyApi, defineSchema, defineTable, internalMutation, internalQuery, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";

const schema = defineSchema({
  tasks: defineTable({ n: v.number(), status: v.optional(v.string()) }),
  other: defineTable({ x: v.optional(v.number()) }),
  people: defineTable({ name: v.optional(v.string()), age: v.optional(v.number()) }),
});

let t: ReturnType<typeof walkinTest<typeof schema>>;
afterEach(async () => t?.close());

/** 40 tasks: more than the first storage batch of a scan (16), so the rest is read mid-iteration. */
async function seedTasks(count = 40) {
  await t.run(async (ctx) => {
    for (let n = 0; n < count; n++) await ctx.db.insert("tasks", { n });
  });
}

describe("for await over a query inside a mutation reads the mutation's own writes", () => {
  // Convex: a mutation is one transaction whose reads see its own earlier writes
  // (https://docs.convex.dev/functions/mutation-functions, "Transactions"; and
  // https://docs.convex.dev/database/reading-data: a query is also an async iterable,
  // `for await (const task of ctx.db.query("tasks"))`). Walk-in says the same in
  // docs/functions.md: "A mutation reads its own writes, through indexes too."

  it("yields a document patched ahead of the cursor with its patched fields, not the stored ones", async () => {
    t = walkinTest(schema, {});
    await seedTasks();
    const statuses = await t.run(async (ctx) => {
      const all = await ctx.db.query("tasks").collect();
      const seen: string[] = [];
      for await (const task of ctx.db.query("tasks")) {
        seen.push(task.status ?? "unset");
        // At the first task, mark every later one: they come later in this same loop.
        if (task.n === 0) for (const later of all.slice(1)) await ctx.db.patch(later._id, { status: "done" });
      }
      // After the loop, collect() does see the writes: the loop and collect() disagree.
      const after = (await ctx.db.query("tasks").collect()).map((task) => task.status);
      return { seen, after };
    });
    expect(statuses.after.slice(1).every((status) => status === "done")).toBe(true);
    // Fails: tasks 1..39 come out of the loop as "unset", the version before this mutation's patch.
    expect(statuses.seen).toEqual(["unset", ...Array.from({ length: 39 }, () => "done")]);
  });

  it("does not drop documents patched ahead of the cursor when another query runs inside the loop", async () => {
    t = walkinTest(schema, {});
    await seedTasks();
    const seen = await t.run(async (ctx) => {
      const all = await ctx.db.query("tasks").collect();
      // Any earlier write to the table (here: task 0) is enough to set the stage.
      await ctx.db.patch(all[0]!._id, { status: "started" });
      const ns: number[] = [];
      for await (const task of ctx.db.query("tasks")) {
        ns.push(task.n);
        if (task.n === 0) {
          for (const later of all.slice(20)) await ctx.db.patch(later._id, { status: "queued" });
          await ctx.db.query("other").first(); // any other read, e.g. a lookup per task
        }
      }
      return ns;
    });
    // Fails: the loop yields only tasks 0..19; the 20 tasks patched ahead of the cursor vanish.
    expect(seen).toEqual(Array.from({ length: 40 }, (_, n) => n));
  });
});

describe("v.object validators", () => {
  // Convex: VObject has omit(...fields), pick(...fields), partial() and extend(fields), each
  // returning a new object validator (https://docs.convex.dev/api/classes/values.VObject), used
  // to derive argument validators from a table's: `schema.tables.tasks.validator.omit("status")`.
  it("derive new object validators with omit, pick, partial and extend", async () => {
    const base = v.object({ n: v.number(), status: v.optional(v.string()), note: v.string() });
    const api = {
      omitted: query({ args: base.omit("note"), handler: async (_ctx, args) => args }),
      picked: query({ args: base.pick("n"), handler: async (_ctx, args) => args }),
      partial: query({ args: base.partial(), handler: async (_ctx, args) => args }),
      extended: query({ args: base.extend({ extra: v.boolean() }), handler: async (_ctx, args) => args }),
    };
    t = walkinTest(schema, { api });
    expect(await t.query(anyApi.api!.omitted!, { n: 1 })).toEqual({ n: 1 });
    await expect(t.query(anyApi.api!.omitted!, { n: 1, note: "x" })).rejects.toThrow(/note/);
    expect(await t.query(anyApi.api!.picked!, { n: 2 })).toEqual({ n: 2 });
    await expect(t.query(anyApi.api!.picked!, { n: 2, status: "a" })).rejects.toThrow(/status/);
    expect(await t.query(anyApi.api!.partial!, {})).toEqual({});
    expect(await t.query(anyApi.api!.extended!, { n: 3, note: "y", extra: true })).toEqual({ n: 3, note: "y", extra: true });
    await expect(t.query(anyApi.api!.extended!, { n: 3, note: "y" })).rejects.toThrow(/extra/);
    // The table's own validator is a v.object too.
    expect(typeof schema.tables.tasks.validator.omit).toBe("function");
  });
});

describe("ctx.db.system: _scheduled_functions documents", () => {
  // Convex documents the shape of a scheduled function's document
  // (https://docs.convex.dev/api/interfaces/server.SystemDataModel, and the "Retrieving scheduled
  // function status" example of https://docs.convex.dev/scheduling/scheduled-functions):
  // `args: any[]` and `state: { kind: "pending" } | { kind: "inProgress" } | { kind: "success" }
  // | { kind: "failed"; error: string } | { kind: "canceled" }`. Apps check `job.state.kind`.
  it("has state as { kind } and args as an array", async () => {
    const jobs = {
      later: internalMutation({ args: { note: v.string() }, handler: async () => null }),
      schedule: mutation({
        args: {},
        handler: async (ctx) => ctx.scheduler.runAfter(0, anyApi.jobs!.later!, { note: "hi" }),
      }),
      status: query({
        args: { id: v.id("_scheduled_functions") },
        handler: async (ctx, { id }) => {
          const job = await ctx.db.system.get(id);
          return job && { state: job.state as unknown, args: job.args as unknown };
        },
      }),
    };
    t = walkinTest(schema, { jobs });
    const id = await t.mutation(anyApi.jobs!.schedule!, {});
    // Fails: Walk-in answers { state: "pending", args: { note: "hi" } }.
    expect(await t.query(anyApi.jobs!.status!, { id })).toEqual({ state: { kind: "pending" }, args: [{ note: "hi" }] });
    await t.finishAllScheduledFunctions();
    expect(await t.query(anyApi.jobs!.status!, { id })).toEqual({ state: { kind: "success" }, args: [{ note: "hi" }] });
  });
});

describe("values passed between functions from an action", () => {
  // Convex: `undefined` is not a Convex value; an object field set to `undefined` is the same
  // as a missing field: `{ a: undefined }` becomes `{}` when passed to a function or returned
  // from one (https://docs.convex.dev/database/types, "Working with undefined"). So the
  // common "update" mutation, `const { id, ...fields } = args; await ctx.db.patch(id, fields)`,
  // leaves a field alone when a caller passes it as `undefined`.
  const people = {
    update: internalMutation({
      args: { id: v.id("people"), name: v.optional(v.string()), age: v.optional(v.number()) },
      handler: async (ctx, { id, ...fields }) => {
        await ctx.db.patch(id, fields);
      },
    }),
    get: internalQuery({ args: { id: v.id("people") }, handler: async (ctx, { id }) => ctx.db.get(id) }),
    fieldsOf: internalQuery({ args: {}, handler: async () => ({ kept: 1, dropped: undefined }) }),
    // What a form handler in an action typically does: pass on what the user filled in.
    birthday: action({
      args: { id: v.id("people") },
      handler: async (ctx, { id }) => {
        const form: { name?: string; age?: number } = { name: undefined, age: 31 };
        await ctx.runMutation(anyApi.people!.update!, { id, ...form });
        return ctx.runQuery(anyApi.people!.get!, { id });
      },
    }),
    keysOfResult: action({
      args: {},
      handler: async (ctx) => Object.keys((await ctx.runQuery(anyApi.people!.fieldsOf!, {})) as object),
    }),
  };

  it("an argument set to undefined by ctx.runMutation is absent in the mutation (patch keeps the field)", async () => {
    t = walkinTest(schema, { people });
    const id = await t.run((ctx) => ctx.db.insert("people", { name: "Ada", age: 30 }));
    // Fails: the mutation receives { name: undefined }, and patch() removes "name".
    expect(await t.action(anyApi.people!.birthday!, { id })).toMatchObject({ name: "Ada", age: 31 });
  });

  it("a field set to undefined in a ctx.runQuery result is absent in the action", async () => {
    t = walkinTest(schema, { people });
    // Fails: the action sees ["kept", "dropped"].
    expect(await t.action(anyApi.people!.keysOfResult!, {})).toEqual(["kept"]);
  });
});

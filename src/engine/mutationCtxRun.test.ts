/**
 * `ctx.runQuery` and `ctx.runMutation` inside a mutation, as Convex documents them
 * (docs.convex.dev/api/interfaces/server.GenericMutationCtx): "Call a query function within the
 * same transaction", and for a mutation "The mutation runs in a sub-transaction, so if the
 * mutation throws an error, all of its writes will be rolled back". Args and return values go
 * through the called function's validators, and come back as across the wire. The reads of a
 * called query are the caller's reads: a write committed over them makes the caller conflict.
 * Over a real SQLite file.
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
  mutation,
  query,
  type ApiFromModules,
  type GenericActionCtx,
  type GenericMutationCtx,
} from "../server/index.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine } from "./engine.js";

const schema = defineSchema({
  doctors: defineTable({ name: v.string(), onCall: v.boolean() }).index("by_onCall", ["onCall"]),
  notes: defineTable({ text: v.string(), by: v.optional(v.string()) }).index("by_text", ["text"]),
});

/** Lets one run of `doctors.leave` stop between its read and its write. */
let gate: { reached: () => void; open: Promise<void> } | null = null;

const notesModule = {
  add: mutation({
    args: { text: v.string(), by: v.optional(v.string()) },
    returns: v.id("notes"),
    handler: (ctx, args) => ctx.db.insert("notes", args),
  }),
  /** Writes, calls `add` (which writes too), then fails: none of it may stay. */
  addThenFail: internalMutation({
    args: { text: v.string() },
    handler: async (ctx, { text }) => {
      await ctx.db.insert("notes", { text: `${text} (direct)` });
      await ctx.runMutation(calledApi.notes.add, { text: `${text} (nested)` });
      const first = await ctx.db.query("notes").withIndex("by_text", (q) => q.eq("text", "first")).unique();
      if (first) await ctx.db.patch(first._id, { text: "first, changed" });
      throw new Error("addThenFail failed on purpose");
    },
  }),
  /** Declares a number, returns a string. */
  badReturn: internalMutation({
    args: {},
    returns: v.number(),
    handler: async (ctx) => {
      await ctx.db.insert("notes", { text: "written by badReturn" });
      return "not a number" as unknown as number;
    },
  }),
  texts: query({
    args: {},
    handler: async (ctx) => (await ctx.db.query("notes").withIndex("by_text").collect()).map((note) => note.text),
  }),
  count: internalQuery({ args: {}, returns: v.number(), handler: async (ctx) => (await ctx.db.query("notes").collect()).length }),
  /** A field set to undefined, which a caller receives absent. */
  summary: query({ args: {}, handler: async () => ({ kind: "summary", missing: undefined as string | undefined }) }),
};

const doctorsModule = {
  onCall: query({
    args: {},
    handler: async (ctx) => (await ctx.db.query("doctors").withIndex("by_onCall", (q) => q.eq("onCall", true)).collect()).map(({ _id, name }) => ({ _id, name })),
  }),
};

type CalledModules = { notes: typeof notesModule; doctors: typeof doctorsModule };
/** `api` and `internal` of the called modules, as codegen's `_generated/api` gives them. */
const calledApi = anyApi as unknown as ApiFromModules<CalledModules>;
const internal = anyApi as unknown as ApiFromModules<CalledModules, "internal">;
let leaveRuns = 0;

const modules = {
  notes: notesModule,
  doctors: {
    ...doctorsModule,
    add: mutation({ args: { name: v.string() }, handler: (ctx, { name }) => ctx.db.insert("doctors", { name, onCall: true }) }),
    /**
     * Goes off call only if someone else stays on call (the classic write-skew case), reading
     * who is on call through ctx.runQuery: its own write touches only its own document.
     */
    leave: mutation({
      args: { name: v.string() },
      handler: async (ctx, { name }) => {
        leaveRuns += 1;
        const onCall = await ctx.runQuery(calledApi.doctors.onCall);
        if (gate) {
          const { reached, open } = gate;
          gate = null; // only the first run waits
          reached();
          await open;
        }
        const me = onCall.find((doctor) => doctor.name === name);
        if (!me || onCall.length < 2) return false;
        await ctx.db.patch(me._id, { onCall: false });
        return true;
      },
    }),
  },
  orders: {
    /** Runs a mutation and a query of another module; each sees the other's writes. */
    place: mutation({
      args: { text: v.string() },
      handler: async (ctx, { text }) => {
        await ctx.db.insert("notes", { text: "written by the caller" });
        const before = await ctx.runQuery(internal.notes.count);
        const id = await ctx.runMutation(calledApi.notes.add, { text, by: undefined });
        expectTypeOf(before).toEqualTypeOf<number>();
        expectTypeOf(id).toEqualTypeOf<string & { __tableName: "notes" }>();
        const added = await ctx.db.get(id);
        const summary = await ctx.runQuery(calledApi.notes.summary);
        return { before, after: await ctx.runQuery(internal.notes.count), added: added?.text ?? null, summaryKeys: Object.keys(summary) };
      },
    }),
    /** Calls a mutation that fails, catches the error, and goes on writing. */
    placeDespiteFailure: mutation({
      args: {},
      handler: async (ctx) => {
        await ctx.db.insert("notes", { text: "before the failure" });
        const error = await ctx.runMutation(internal.notes.addThenFail, { text: "failed" }).then(
          () => null,
          (e: Error) => e.message,
        );
        // Inside the same transaction, the rolled-back writes are gone already (index reads included).
        const seen = (await ctx.db.query("notes").withIndex("by_text").collect()).map((note) => note.text);
        await ctx.db.insert("notes", { text: "after the failure" });
        return { error, seen };
      },
    }),
    /** Calls `add` with args its validator refuses, and a mutation whose return fails its validator. */
    callBadly: mutation({
      args: {},
      handler: async (ctx) => {
        const messages: string[] = [];
        // @ts-expect-error -- text must be a string: the check at run time is what is tested
        await ctx.runMutation(calledApi.notes.add, { text: 5 }).catch((e: Error) => messages.push(e.message));
        await ctx.runMutation(internal.notes.badReturn).catch((e: Error) => messages.push(e.message));
        await ctx.runMutation(calledApi.notes.add, { text: "called well" });
        return messages;
      },
    }),
  },
};

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  gate = null;
});

async function openEngine(): Promise<Engine> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-mutation-ctx-run-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const storage = await openSqliteStorage({ filename: path.join(dir, "data.sqlite") });
  const engine = await Engine.open({ storage, schema, modules, runScheduler: false, logError: () => {} });
  cleanups.push(() => engine.close());
  return engine;
}

describe("ctx.runQuery and ctx.runMutation in a mutation", () => {
  it("are typed as an action's", () => {
    expectTypeOf<GenericMutationCtx<any>["runQuery"]>().toEqualTypeOf<GenericActionCtx<any>["runQuery"]>();
    expectTypeOf<GenericMutationCtx<any>["runMutation"]>().toEqualTypeOf<GenericActionCtx<any>["runMutation"]>();
  });

  it("run a query and a mutation of another module in the caller's transaction, each seeing the other's writes", async () => {
    const engine = await openEngine();
    const { value } = await engine.runMutation("orders:place", { text: "from a nested call" });
    expect(value).toEqual({
      before: 1, // the caller's own pending insert, seen by the called query
      after: 2, // the called mutation's insert, seen by the next query
      added: "from a nested call", // and by the caller's own db.get
      summaryKeys: ["kind"], // a field set to undefined comes back absent, as across the wire
    });
    expect(await engine.runQuery("notes:texts", {})).toEqual(["from a nested call", "written by the caller"]);
  });

  it("a called mutation that throws leaves none of its writes, nor those of mutations it called, when the caller catches the error", async () => {
    const engine = await openEngine();
    await engine.runMutation("notes:add", { text: "first" });
    const { value } = await engine.runMutation("orders:placeDespiteFailure", {});
    expect(value).toEqual({ error: "addThenFail failed on purpose", seen: ["before the failure", "first"] });
    expect(await engine.runQuery("notes:texts", {})).toEqual(["after the failure", "before the failure", "first"]);
  });

  it("checks the called function's args and returns validators; a refused call writes nothing", async () => {
    const engine = await openEngine();
    const { value } = await engine.runMutation("orders:callBadly", {});
    const [argsError, returnError] = value as string[];
    expect(argsError).toMatch(/args\.text: expected string/);
    expect(returnError).toMatch(/notes:badReturn/);
    expect(await engine.runQuery("notes:texts", {})).toEqual(["called well"]);
  });

  it("a query's reads are the caller's: a write committed over them between its read and the caller's commit makes the caller run again", async () => {
    const engine = await openEngine();
    for (const name of ["ann", "bob"]) await engine.runMutation("doctors:add", { name });
    leaveRuns = 0;
    let reached!: () => void;
    const atGate = new Promise<void>((resolve) => (reached = resolve));
    let open!: () => void;
    gate = { reached, open: new Promise<void>((resolve) => (open = resolve)) };
    const annLeaves = engine.runMutation("doctors:leave", { name: "ann" });
    await Promise.race([atGate, annLeaves]); // ann's run read, through ctx.runQuery, that both are on call
    expect((await engine.runMutation("doctors:leave", { name: "bob" })).value).toBe(true);
    open();
    // Had that read not joined ann's read set, she would leave too: nobody on call.
    expect((await annLeaves).value).toBe(false);
    expect(leaveRuns).toBe(3);
    expect(await engine.runQuery("doctors:onCall", {})).toEqual([expect.objectContaining({ name: "ann" })]);
  });

  it("concurrent write-skew through ctx.runQuery keeps someone on call", async () => {
    const engine = await openEngine();
    const names = ["ann", "bob", "cat", "dan", "eve", "fay"];
    for (const name of names) await engine.runMutation("doctors:add", { name });
    const outcomes = await Promise.allSettled(names.map((name) => engine.runMutation("doctors:leave", { name })));
    for (const outcome of outcomes) if (outcome.status === "rejected") expect(String(outcome.reason)).toMatch(/kept conflicting/);
    expect(await engine.runQuery("doctors:onCall", {})).toHaveLength(1);
  }, 60_000);
});

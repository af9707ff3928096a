/**
 * Review of triggers.ts: writes a Convex app makes that the first tests did not — two writes of
 * one document side by side, a write whose arguments end in `undefined` — and triggers used
 * together with row-level security, in both orders of the wrappers.
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, customCtx, customMutation, defineSchema, defineTable, mutation as rawMutation, Triggers, wrapDatabaseWriter, type Rules } from "./index.js";
import { v } from "../values/index.js";
import { walkinTest, type WalkinTest } from "../testing/index.js";
import { caught } from "../engine/fixtures/caught.js";

const api: any = anyApi;

const schema = defineSchema({
  counters: defineTable({ value: v.number(), owner: v.string() }),
  log: defineTable({ entry: v.string() }),
});

const triggers = new Triggers<any>();
/** The changes the counters' trigger saw, in order. */
let seen: string[] = [];
triggers.register("counters", async (ctx, change) => {
  seen.push(`${change.operation} ${change.oldDoc?.value ?? "-"} -> ${change.newDoc?.value ?? "-"}`);
  if (change.newDoc?.value === 13) {
    // Reads for a while (the handler's other write joins the queue meanwhile), then refuses.
    for (let i = 0; i < 20; i++) await ctx.db.query("log").first();
    throw new Error("13 is unlucky");
  }
  await ctx.db.insert("log", { entry: change.operation });
});

const mutation = customMutation(rawMutation, customCtx(triggers.wrapDB));

// Rules: only the owner ("ada") may write counters; the log is written by triggers only.
const rules = (me: string | null) =>
  ({
    counters: { modify: async (_ctx, doc) => doc.owner === me, insert: async (_ctx, doc) => doc.owner === me },
    log: { insert: async () => false },
  }) satisfies Rules<unknown, any>;
const me = async (ctx: { auth: { getUserIdentity(): Promise<{ subject: string } | null> } }) => (await ctx.auth.getUserIdentity())?.subject ?? null;

// Row-level security outside the triggers: the handler's writes are checked, the triggers' are not.
const rlsOutside = customMutation(rawMutation, customCtx(async (ctx) => ({ db: wrapDatabaseWriter(ctx, triggers.wrapDB(ctx).db, rules(await me(ctx))) })));
// Triggers outside row-level security: every write is checked, the triggers' writes too.
const rlsInside = customMutation(rawMutation, customCtx(async (ctx) => triggers.wrapDB({ ...ctx, db: wrapDatabaseWriter(ctx, ctx.db, rules(await me(ctx))) })));

const app = {
  create: mutation({ args: {}, handler: async (ctx) => ctx.db.insert("counters", { value: 0, owner: "ada" }) }),
  // Two patches of one document run side by side.
  bumpTwice: mutation({
    args: { id: v.id("counters") },
    handler: async (ctx, { id }) => {
      await Promise.all([ctx.db.patch(id, { value: 1 }), ctx.db.patch(id, { value: 2 })]);
    },
  }),
  // A pass-through helper whose optional table argument is left out: the ID-first form to the engine.
  removeVia: mutation({
    args: { id: v.id("counters") },
    handler: async (ctx, { id }) => {
      const table: string | undefined = undefined;
      await (ctx.db.delete as (...args: unknown[]) => Promise<void>)(id, table);
    },
  }),
  setOutside: rlsOutside({ args: { id: v.id("counters"), value: v.number() }, handler: async (ctx, { id, value }) => ctx.db.patch(id, { value }) }),
  setInside: rlsInside({ args: { id: v.id("counters"), value: v.number() }, handler: async (ctx, { id, value }) => ctx.db.patch(id, { value }) }),
  // Calls a wrapped mutation through ctx.runMutation: its writes go through its own wrapped db.
  viaRunMutation: mutation({
    args: { id: v.id("counters"), fail: v.boolean() },
    handler: async (ctx, { id, fail }) => {
      await ctx.db.patch(id, { value: 1 });
      try {
        await ctx.runMutation(api.app.setThenMaybeFail, { id, fail });
      } catch {
        // The sub-mutation rolled back: its write and its trigger's log entry with it.
      }
    },
  }),
  setThenMaybeFail: mutation({
    args: { id: v.id("counters"), fail: v.boolean() },
    handler: async (ctx, { id, fail }) => {
      await ctx.db.patch(id, { value: 2 });
      if (fail) throw new Error("changed my mind");
    },
  }),
  // Two inserts side by side; the first one's trigger throws, and the handler goes on.
  insertTwoSettled: mutation({
    args: {},
    handler: async (ctx) => {
      const results = await Promise.allSettled([ctx.db.insert("counters", { value: 13, owner: "ada" }), ctx.db.insert("counters", { value: 7, owner: "ada" })]);
      return results.map((result) => result.status);
    },
  }),
  // Two inserts side by side, the second followed by a read of what its trigger wrote.
  insertThenRead: mutation({
    args: {},
    handler: async (ctx) => {
      const [, logged] = await Promise.all([
        ctx.db.insert("counters", { value: 3, owner: "ada" }),
        (async () => {
          await ctx.db.insert("counters", { value: 4, owner: "ada" });
          return (await ctx.db.query("log").collect()).length;
        })(),
      ]);
      return logged;
    },
  }),
  state: rawMutation({
    args: {},
    handler: async (ctx) => ({ counters: (await ctx.db.query("counters").collect()).map((c) => c.value), log: (await ctx.db.query("log").collect()).map((l) => l.entry) }),
  }),
};

let t: WalkinTest<any> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function start() {
  t = walkinTest(schema, { app });
  const id = (await t.mutation(api.app.create, {})) as string;
  seen = [];
  return id;
}

describe("each change has its own document before and after", () => {
  it("two patches of one document side by side: the second change starts where the first ended", async () => {
    const id = await start();
    await t!.mutation(api.app.bumpTwice, { id });
    // Interleaved, both changes read 0 before either wrote and 2 after both had: "0 -> 2" twice.
    expect(seen).toEqual(["update 0 -> 1", "update 1 -> 2"]);
  });
});

describe("a handler's writes side by side", () => {
  it("when one's await returns, its triggers have run", async () => {
    await start();
    // The create's log entry, then one for each insert: the second insert's own is among them.
    expect(await t!.mutation(api.app.insertThenRead, {})).toBe(3);
  });

  it("when an earlier write's trigger throws, a later write is not left with its triggers unrun", async () => {
    await start();
    // Before: the second insert resolved at once, its change was dropped from the queue with
    // the throw, and it committed without its trigger ever running.
    expect(await t!.mutation(api.app.insertTwoSettled, {})).toEqual(["rejected", "rejected"]);
    expect(seen).toEqual(["insert - -> 13"]);
    // Both writes stay written, as any write of a mutation that goes on does; neither is logged.
    expect(await t!.mutation(api.app.state, {})).toEqual({ counters: [0, 13, 7], log: ["insert"] });
  });
});

describe("every form of a write fires its triggers", () => {
  it("delete(id, undefined) is delete(id) to the engine, and fires the delete trigger", async () => {
    const id = await start();
    await t!.mutation(api.app.removeVia, { id });
    expect(seen).toEqual(["delete 0 -> -"]);
    expect(await t!.mutation(api.app.state, {})).toEqual({ counters: [], log: ["insert", "delete"] });
  });
});

describe("ctx.runMutation into another wrapped mutation", () => {
  it("its writes fire their triggers once, and roll back with their trigger's writes when it throws", async () => {
    const id = await start();
    await t!.mutation(api.app.viaRunMutation, { id, fail: false });
    expect(seen).toEqual(["update 0 -> 1", "update 1 -> 2"]);
    expect(await t!.mutation(api.app.state, {})).toEqual({ counters: [2], log: ["insert", "update", "update"] });
    seen = [];
    await t!.mutation(api.app.viaRunMutation, { id, fail: true });
    // The trigger ran for the rolled-back write, but its log entry went with it.
    expect(seen).toEqual(["update 2 -> 1", "update 1 -> 2"]);
    expect(await t!.mutation(api.app.state, {})).toEqual({ counters: [1], log: ["insert", "update", "update", "update"] });
  });
});

describe("with row-level security", () => {
  it("rules outside the triggers: the handler's write is checked; the trigger's log insert, which no caller may make, is not", async () => {
    const id = await start();
    await t!.withIdentity({ subject: "ada" }).mutation(api.app.setOutside, { id, value: 5 });
    expect(seen).toEqual(["update 0 -> 5"]);
    const refused = await caught(t!.withIdentity({ subject: "bob" }).mutation(api.app.setOutside, { id, value: 6 }));
    expect(refused.message).toBe("write access not allowed");
    expect(seen).toEqual(["update 0 -> 5"]);
    expect(await t!.mutation(api.app.state, {})).toEqual({ counters: [5], log: ["insert", "update"] });
  });

  it("triggers outside the rules: the trigger's own writes are checked too, so its refused log insert fails the mutation", async () => {
    const id = await start();
    const refused = await caught(t!.withIdentity({ subject: "ada" }).mutation(api.app.setInside, { id, value: 5 }));
    expect(refused.message).toBe("insert access not allowed");
    // A refused write fires nothing.
    seen = [];
    await caught(t!.withIdentity({ subject: "bob" }).mutation(api.app.setInside, { id, value: 6 }));
    expect(seen).toEqual([]);
    expect(await t!.mutation(api.app.state, {})).toEqual({ counters: [0], log: ["insert"] });
  });
});

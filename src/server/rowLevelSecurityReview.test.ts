/**
 * Review of rowLevelSecurity.ts: the ways a Convex app's code reaches a document that the
 * first tests did not — a call whose arguments end in `undefined`, an ID of a table without
 * rules under "deny", a search query — each checked against the same rules.
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, customCtx, customMutation, customQuery, defineSchema, defineTable, mutation, query, wrapDatabaseReader, wrapDatabaseWriter, type Rules } from "./index.js";
import { v } from "../values/index.js";
import { walkinTest, type WalkinTest } from "../testing/index.js";
import { caught } from "../engine/fixtures/caught.js";

const api: any = anyApi;

const schema = defineSchema({
  notes: defineTable({ owner: v.string(), text: v.string() }).searchIndex("search_text", { searchField: "text" }),
  settings: defineTable({ key: v.string() }),
});

async function rules(ctx: { auth: { getUserIdentity(): Promise<{ subject: string } | null> } }) {
  const me = (await ctx.auth.getUserIdentity())?.subject ?? null;
  return {
    notes: { read: async (_ctx, note) => note.owner === me, modify: async (_ctx, note) => note.owner === me },
  } satisfies Rules<unknown, any>;
}

const queryWithRLS = customQuery(query, customCtx(async (ctx) => ({ db: wrapDatabaseReader(ctx, ctx.db, await rules(ctx)) })));
const mutationWithRLS = customMutation(mutation, customCtx(async (ctx) => ({ db: wrapDatabaseWriter(ctx, ctx.db, await rules(ctx)) })));
const strictQuery = customQuery(query, customCtx(async (ctx) => ({ db: wrapDatabaseReader(ctx, ctx.db, await rules(ctx), { defaultPolicy: "deny" }) })));

/** A pass-through helper with an optional table name, left out: `get(id, undefined)`, the ID-first form to the engine. */
const optionalTable: string | undefined = undefined;

const notes = {
  seed: mutation({
    args: {},
    handler: async (ctx) => ({
      ada: await ctx.db.insert("notes", { owner: "ada", text: "ada's secret plan" }),
      bob: await ctx.db.insert("notes", { owner: "bob", text: "bob's shopping list" }),
      setting: await ctx.db.insert("settings", { key: "theme" }),
    }),
  }),
  getVia: queryWithRLS({
    args: { id: v.id("notes") },
    handler: async (ctx, { id }) => ((await (ctx.db.get as (...a: unknown[]) => Promise<any>)(id, optionalTable)) as { text: string } | null)?.text ?? null,
  }),
  editVia: mutationWithRLS({
    args: { id: v.id("notes"), text: v.string() },
    handler: async (ctx, { id, text }) => (ctx.db.patch as (...a: unknown[]) => Promise<void>)(id, { text }, optionalTable),
  }),
  removeVia: mutationWithRLS({
    args: { id: v.id("notes") },
    handler: async (ctx, { id }) => (ctx.db.delete as (...a: unknown[]) => Promise<void>)(id, optionalTable),
  }),
  setting: strictQuery({ args: { id: v.id("settings") }, handler: async (ctx, { id }) => (await ctx.db.get(id))?.key ?? null }),
  search: queryWithRLS({
    args: { words: v.string() },
    handler: async (ctx, { words }) => (await ctx.db.query("notes").withSearchIndex("search_text", (q) => q.search("text", words)).take(10)).map((n) => n.text),
  }),
  raw: query({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").collect()).map((n) => n.text) }),
};

let t: WalkinTest<any> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function start() {
  t = walkinTest(schema, { notes });
  return (await t.mutation(api.notes.seed, {})) as Record<string, string>;
}
const as = (subject: string) => t!.withIdentity({ subject });

describe("a call's form is read as the engine reads it", () => {
  it("get(id, undefined) hides what get(id) hides", async () => {
    const ids = await start();
    // Read by its argument count as get(table, id), the "table" was the ID: no rules, allowed.
    expect(await as("bob").query(api.notes.getVia, { id: ids.ada })).toBeNull();
    expect(await as("ada").query(api.notes.getVia, { id: ids.ada })).toBe("ada's secret plan");
  });

  it("patch(id, v, undefined) and delete(id, undefined) are checked as patch(id, v) and delete(id)", async () => {
    const ids = await start();
    const edited = await caught(as("bob").mutation(api.notes.editVia, { id: ids.ada, text: "hacked" }));
    expect([edited.code, edited.message]).toEqual(["NOT_FOUND", "no read access or doc does not exist"]);
    const removed = await caught(as("bob").mutation(api.notes.removeVia, { id: ids.ada }));
    expect(removed.code).toBe("NOT_FOUND");
    expect(await t!.query(api.notes.raw, {})).toEqual(["ada's secret plan", "bob's shopping list"]);
    await as("ada").mutation(api.notes.editVia, { id: ids.ada, text: "ada's new plan" });
    expect(await t!.query(api.notes.raw, {})).toEqual(["ada's new plan", "bob's shopping list"]);
  });
});

describe("other ways in", () => {
  it('under "deny", get by the ID of a table without rules answers null', async () => {
    const ids = await start();
    expect(await as("ada").query(api.notes.setting, { id: ids.setting })).toBeNull();
  });

  it("a search query leaves out what the caller may not read", async () => {
    await start();
    expect(await as("bob").query(api.notes.search, { words: "plan list" })).toEqual(["bob's shopping list"]);
  });
});

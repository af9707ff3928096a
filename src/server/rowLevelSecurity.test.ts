/**
 * Row-level security (rowLevelSecurity.ts), as a Convex app using convex-helpers' version
 * writes it: rules built from the caller's identity, wrapped into `ctx.db` by custom builders,
 * run on the real engine. Reads leave out what the caller may not see (reading on past it);
 * writes are checked against the document as it was; a table without rules follows the policy.
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, customCtx, customMutation, customQuery, defineSchema, defineTable, mutation, query, wrapDatabaseReader, wrapDatabaseWriter, type Rules } from "./index.js";
import { v } from "../values/index.js";
import { walkinTest, type WalkinTest } from "../testing/index.js";
import { caught } from "../engine/fixtures/caught.js";

const api: any = anyApi;

const schema = defineSchema({
  notes: defineTable({ owner: v.string(), text: v.string(), shared: v.boolean() }).index("by_owner", ["owner"]).index("by_text", ["text"]),
  settings: defineTable({ key: v.string() }),
});

async function rules(ctx: { auth: { getUserIdentity(): Promise<{ subject: string } | null> } }) {
  const me = (await ctx.auth.getUserIdentity())?.subject ?? null;
  return {
    notes: {
      read: async (_ctx, note) => note.shared || note.owner === me,
      modify: async (_ctx, note) => note.owner === me,
      insert: async (_ctx, note) => note.owner === me,
    },
  } satisfies Rules<unknown, any>;
}

const queryWithRLS = customQuery(query, customCtx(async (ctx) => ({ db: wrapDatabaseReader(ctx, ctx.db, await rules(ctx)) })));
const mutationWithRLS = customMutation(mutation, customCtx(async (ctx) => ({ db: wrapDatabaseWriter(ctx, ctx.db, await rules(ctx)) })));
const strictQuery = customQuery(query, customCtx(async (ctx) => ({ db: wrapDatabaseReader(ctx, ctx.db, await rules(ctx), { defaultPolicy: "deny" }) })));
const strictMutation = customMutation(mutation, customCtx(async (ctx) => ({ db: wrapDatabaseWriter(ctx, ctx.db, await rules(ctx), { defaultPolicy: "deny" }) })));

const texts = (docs: Array<Record<string, any>>): string[] => docs.map((d) => d.text);

const notes = {
  // Unchecked: seeds the table as an admin would.
  seed: mutation({
    args: {},
    handler: async (ctx) => {
      const ids: Record<string, string> = {};
      for (const [owner, text, shared] of [["ada", "a1", false], ["ada", "a2", true], ["ada", "a3", false], ["bob", "b1", false], ["ada", "a4", true]] as const) {
        ids[text] = await ctx.db.insert("notes", { owner, text, shared });
      }
      await ctx.db.insert("settings", { key: "theme" });
      return ids;
    },
  }),
  all: queryWithRLS({ args: {}, handler: async (ctx) => texts(await ctx.db.query("notes").collect()) }),
  ofAda: queryWithRLS({ args: {}, handler: async (ctx) => texts(await ctx.db.query("notes").withIndex("by_owner", (q) => q.eq("owner", "ada")).collect()) }),
  firstTwo: queryWithRLS({ args: {}, handler: async (ctx) => texts(await ctx.db.query("notes").order("asc").take(2)) }),
  first: queryWithRLS({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").first())?.text ?? null }),
  oneOfAda: queryWithRLS({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").withIndex("by_owner", (q) => q.eq("owner", "ada")).unique())?.text ?? null }),
  page: queryWithRLS({
    args: { cursor: v.union(v.string(), v.null()) },
    handler: async (ctx, { cursor }) => {
      const { page, isDone, continueCursor } = await ctx.db.query("notes").paginate({ numItems: 2, cursor });
      return { texts: texts(page), isDone, continueCursor };
    },
  }),
  get: queryWithRLS({ args: { id: v.id("notes") }, handler: async (ctx, { id }) => (await ctx.db.get(id))?.text ?? null }),
  getDetached: queryWithRLS({
    args: { id: v.id("notes") },
    handler: async (ctx, { id }) => {
      const { get } = ctx.db;
      return (await get(id))?.text ?? null;
    },
  }),
  getNamed: queryWithRLS({ args: { id: v.id("notes") }, handler: async (ctx, { id }) => (await ctx.db.get("notes", id))?.text ?? null }),
  edit: mutationWithRLS({ args: { id: v.id("notes"), text: v.string() }, handler: async (ctx, { id, text }) => ctx.db.patch(id, { text }) }),
  remove: mutationWithRLS({ args: { id: v.id("notes") }, handler: async (ctx, { id }) => ctx.db.delete("notes", id) }),
  add: mutationWithRLS({ args: { owner: v.string(), text: v.string() }, handler: async (ctx, note) => ctx.db.insert("notes", { ...note, shared: false }) }),
  settings: strictQuery({ args: {}, handler: async (ctx) => (await ctx.db.query("settings").collect()).length }),
  addSetting: strictMutation({ args: {}, handler: async (ctx) => ctx.db.insert("settings", { key: "x" }) }),
  strictNotes: strictQuery({ args: {}, handler: async (ctx) => texts(await ctx.db.query("notes").collect()) }),
  raw: query({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").collect()).map((n) => `${n.owner}:${n.text}`) }),
  badPolicy: query({ args: {}, handler: async (ctx) => void wrapDatabaseReader(ctx, ctx.db, {}, { defaultPolicy: "maybe" as never }) }),
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

describe("reads leave out what the caller may not read", () => {
  it("collect, an index range, get by ID and by table and ID", async () => {
    const ids = await start();
    expect(await as("ada").query(api.notes.all, {})).toEqual(["a1", "a2", "a3", "a4"]);
    expect(await as("bob").query(api.notes.all, {})).toEqual(["a2", "b1", "a4"]);
    expect(await t!.query(api.notes.all, {})).toEqual(["a2", "a4"]);
    expect(await as("bob").query(api.notes.ofAda, {})).toEqual(["a2", "a4"]);
    expect(await as("bob").query(api.notes.get, { id: ids.a1 })).toBeNull();
    expect(await as("bob").query(api.notes.getNamed, { id: ids.a1 })).toBeNull();
    expect(await as("bob").query(api.notes.getDetached, { id: ids.a1 })).toBeNull();
    expect(await as("ada").query(api.notes.get, { id: ids.a1 })).toBe("a1");
  });

  it("take(n) and first() read on past hidden documents; unique() counts only readable ones", async () => {
    await start();
    expect(await as("bob").query(api.notes.firstTwo, {})).toEqual(["a2", "b1"]);
    expect(await as("bob").query(api.notes.first, {})).toBe("a2");
    expect(await as("eve").query(api.notes.first, {})).toBe("a2");
    const error = await caught(as("eve").query(api.notes.oneOfAda, {}));
    expect(error.code).toBe("NOT_UNIQUE");
    expect(await as("bob").query(api.notes.all, {})).toHaveLength(3);
  });

  it("paginate keeps the cursors of the query without rules; a page may come back shorter", async () => {
    await start();
    const first = await as("bob").query(api.notes.page, { cursor: null });
    expect([first.texts, first.isDone]).toEqual([["a2"], false]);
    const second = await as("bob").query(api.notes.page, { cursor: first.continueCursor });
    expect(second.texts).toEqual(["b1"]);
    const third = await as("bob").query(api.notes.page, { cursor: second.continueCursor });
    expect([third.texts, third.isDone]).toEqual([["a4"], true]);
  });
});

describe("writes are checked against the document as it was", () => {
  it("a note the caller cannot read is as if missing; one it can read but not modify is refused; nothing changes", async () => {
    const ids = await start();
    const hidden = await caught(as("bob").mutation(api.notes.edit, { id: ids.a1, text: "hacked" }));
    expect([hidden.code, hidden.message]).toEqual(["NOT_FOUND", "no read access or doc does not exist"]);
    const shared = await caught(as("bob").mutation(api.notes.remove, { id: ids.a2 }));
    expect([shared.code, shared.message]).toEqual(["APPLICATION", "write access not allowed"]);
    const forged = await caught(as("bob").mutation(api.notes.add, { owner: "ada", text: "from bob" }));
    expect([forged.code, forged.message]).toEqual(["APPLICATION", "insert access not allowed"]);
    expect(await t!.query(api.notes.raw, {})).toEqual(["ada:a1", "ada:a2", "ada:a3", "bob:b1", "ada:a4"]);

    await as("ada").mutation(api.notes.edit, { id: ids.a1, text: "a1 edited" });
    await as("bob").mutation(api.notes.add, { owner: "bob", text: "b2" });
    await as("bob").mutation(api.notes.remove, { id: ids.b1 });
    expect(await t!.query(api.notes.raw, {})).toEqual(["ada:a1 edited", "ada:a2", "ada:a3", "ada:a4", "bob:b2"]);
  });
});

describe("defaultPolicy", () => {
  it('"deny" hides and refuses tables without rules; tables with rules keep them', async () => {
    await start();
    expect(await as("ada").query(api.notes.settings, {})).toBe(0);
    const refused = await caught(as("ada").mutation(api.notes.addSetting, {}));
    expect(refused.message).toBe("insert access not allowed");
    expect(await as("bob").query(api.notes.strictNotes, {})).toEqual(["a2", "b1", "a4"]);
  });

  it("an unknown policy is a mistake that says what to pass", async () => {
    await start();
    const error = await caught(t!.query(api.notes.badPolicy, {}));
    expect([error.code, error.message]).toEqual(["MISUSE", 'defaultPolicy must be "allow" or "deny", got "maybe".']);
  });
});

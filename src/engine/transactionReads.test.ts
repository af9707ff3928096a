/**
 * How many storage reads a transaction makes for the documents it touches: a document found
 * through an index and then written by ID is read from storage once, and what `get` returns
 * stays right around that shortcut (another ID, our own writes, a deleted document).
 */
import { afterEach, expect, it } from "vitest";
import { defineSchema, defineTable, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine } from "./engine.js";
import { HookedStorage } from "./fixtures/hookedStorage.js";

const schema = defineSchema({
  counters: defineTable({ name: v.string(), value: v.number() }).index("by_name", ["name"]),
});

const modules = {
  counters: {
    create: mutation({ args: { name: v.string() }, handler: (ctx, { name }) => ctx.db.insert("counters", { name, value: 0 }) }),
    bump: mutation({
      args: { name: v.string() },
      handler: async (ctx, { name }) => {
        const row = (await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", name)).first())!;
        await ctx.db.patch(row._id, { value: row.value + 1 });
        return (await ctx.db.get(row._id))!.value;
      },
    }),
    /** Inserts a row, then changes the object a read of it hands back (not through the database). */
    insertThenTamper: mutation({
      args: { name: v.string() },
      handler: async (ctx, { name }) => {
        const id = await ctx.db.insert("counters", { name, value: 0 });
        const doc = (await ctx.db.get(id))! as unknown as { name: string };
        doc.name = "tampered";
        return id;
      },
    }),
    /** The names found through `by_name` for each of `names`. */
    lookUp: query({
      args: { names: v.array(v.string()) },
      handler: async (ctx, { names }) => Promise.all(names.map(async (name) => (await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", name)).first())?.name ?? null)),
    }),
    /** Finds `first` through the index, then reads `second` by ID. */
    scanThenGet: mutation({
      args: { first: v.string(), second: v.id("counters") },
      handler: async (ctx, { first, second }) => {
        await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", first)).first();
        return (await ctx.db.get(second))?.name ?? null;
      },
    }),
    /** Finds a row through the index, deletes it, then reads it by ID. */
    scanDeleteGet: mutation({
      args: { name: v.string() },
      handler: async (ctx, { name }) => {
        const row = (await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", name)).first())!;
        await ctx.db.delete(row._id);
        return await ctx.db.get(row._id);
      },
    }),
  },
};

let engine: Engine | undefined;
const run = async (e: Engine, name: string, args: Record<string, unknown>) => (await e.runMutation(name, args)).value;
afterEach(async () => {
  await engine?.close();
  engine = undefined;
});

/** An engine without a read cache, whose storage counts point reads (`getDocument`). */
async function open(): Promise<{ engine: Engine; pointReads: () => number }> {
  let reads = 0;
  const storage = new HookedStorage(await openSqliteStorage({ filename: ":memory:" }), {
    read: (operation, read) => {
      if (operation === "getDocument") reads++;
      return read();
    },
  });
  engine = await Engine.open({ storage, schema, modules, runScheduler: false, readCacheBytes: 0 });
  return { engine, pointReads: () => reads };
}

it("reads a document found through an index once, not again when it is patched by ID", async () => {
  const { engine, pointReads } = await open();
  await run(engine, "counters:create", { name: "a" });
  const before = pointReads();
  expect(await run(engine, "counters:bump", { name: "a" })).toBe(1);
  // The scan's entry came with the document: patch() and the get() after it (our own write)
  // need no point read.
  expect(pointReads() - before).toBe(0);
  expect(await run(engine, "counters:bump", { name: "a" })).toBe(2);
});

it("still reads another ID from storage, and sees the transaction's own delete", async () => {
  const { engine, pointReads } = await open();
  await run(engine, "counters:create", { name: "a" });
  const b = await run(engine, "counters:create", { name: "b" });
  const before = pointReads();
  expect(await run(engine, "counters:scanThenGet", { first: "a", second: b })).toBe("b");
  expect(pointReads() - before).toBe(1);
  expect(await run(engine, "counters:scanDeleteGet", { name: "a" })).toBeNull();
});

it("indexes a written document as it was written, even if the caller changes the object a read returned", async () => {
  const { engine } = await open();
  await run(engine, "counters:insertThenTamper", { name: "kept" });
  // The body was encoded at insert(); its index entry must say the same, not "tampered".
  const found = (await engine.runQuery("counters:lookUp", { names: ["kept", "tampered"] })) as unknown[];
  expect(found).toEqual(["kept", null]);
});

/**
 * The app the reliability runs serve: a "board" whose live query returns about 0.5 MB of JSON
 * that changes completely on every bump (the document itself stays small: the query expands
 * it), and a tiny "ping" table for the bystander's round trips.
 */
import { Engine } from "../../src/engine/engine.js";
import { anyApi, defineSchema, defineTable, mutation, query, type ApiFromModules } from "../../src/server/index.js";
import { openSqliteStorage } from "../../src/storage/sqlite/index.js";
import { v } from "../../src/values/index.js";

/** Rows of the board's result; each row is ~100 characters of JSON. */
export const BOARD_ROWS = 5_000;

const schema = defineSchema({
  board: defineTable({ version: v.number() }),
  pings: defineTable({ n: v.number() }),
  items: defineTable({ n: v.number() }).index("by_n", ["n"]),
});

const modules = {
  board: {
    get: query({
      args: {},
      handler: async (ctx) => {
        const version = (await ctx.db.query("board").first())?.version ?? 0;
        return Array.from({ length: BOARD_ROWS }, (_, i) => ({ i, version, text: `row ${i} of version ${version} `.padEnd(60, ".") }));
      },
    }),
    bump: mutation({
      args: {},
      handler: async (ctx) => {
        const board = await ctx.db.query("board").first();
        if (board) await ctx.db.patch(board._id, { version: board.version + 1 });
        else await ctx.db.insert("board", { version: 1 });
      },
    }),
  },
  /** One small query per `n`: a flood of distinct subscriptions, none of which any write touches. */
  flood: {
    item: query({ args: { n: v.number() }, handler: async (ctx, { n }) => (await ctx.db.query("items").withIndex("by_n", (q) => q.eq("n", n)).first())?.n ?? null }),
  },
  pings: {
    last: query({ args: {}, handler: async (ctx) => (await ctx.db.query("pings").order("desc").first())?.n ?? 0 }),
    touch: mutation({ args: { n: v.number() }, handler: (ctx, { n }) => ctx.db.insert("pings", { n }) }),
    count: query({ args: {}, handler: async (ctx) => (await ctx.db.query("pings").collect()).length }),
    all: query({ args: {}, handler: async (ctx) => (await ctx.db.query("pings").collect()).map((p) => p.n) }),
  },
};

export const api = anyApi as unknown as ApiFromModules<typeof modules>;

export async function openEngine(filename: string): Promise<Engine> {
  return Engine.open({ storage: await openSqliteStorage({ filename }), schema, modules, runScheduler: false });
}

/**
 * convex-helpers' `filter` helper (filteredQuery.ts), as an app uses it: a predicate that reads
 * the database (mutes), chained after an index range and order, ended with each terminal; and
 * its type, which keeps the query's.
 */
import { afterEach, describe, expect, expectTypeOf, it } from "vitest";
import { anyApi, defineSchema, defineTable, filter, mutation, query } from "./index.js";
import { v } from "../values/index.js";
import { walkinTest, type WalkinTest } from "../testing/index.js";
import { caught } from "../engine/fixtures/caught.js";

const api: any = anyApi;

const schema = defineSchema({
  messages: defineTable({ channel: v.string(), author: v.string(), body: v.string() }).index("by_channel", ["channel"]),
  mutes: defineTable({ by: v.string(), muted: v.string() }).index("by_pair", ["by", "muted"]),
});

/** The channel's messages `me` has not muted the author of: the predicate reads the database. */
function visible(ctx: { db: any }, me: string, channel: string) {
  const notMuted = async (message: any) =>
    !(await ctx.db.query("mutes").withIndex("by_pair", (q: any) => q.eq("by", me).eq("muted", message.author)).first());
  return filter(ctx.db.query("messages").withIndex("by_channel", (q: any) => q.eq("channel", channel)), notMuted);
}
const bodies = (docs: Array<Record<string, any>>): string[] => docs.map((d) => d.body);

const chat = {
  seed: mutation({
    args: {},
    handler: async (ctx) => {
      for (const [author, body] of [["spam", "s1"], ["ada", "a1"], ["spam", "s2"], ["spam", "s3"], ["bob", "b1"], ["ada", "a2"]]) {
        await ctx.db.insert("messages", { channel: "general", author: author!, body: body! });
      }
      await ctx.db.insert("mutes", { by: "me", muted: "spam" });
    },
  }),
  all: query({ args: {}, handler: async (ctx) => bodies(await visible(ctx, "me", "general").collect()) }),
  oldestTwo: query({ args: {}, handler: async (ctx) => bodies(await visible(ctx, "me", "general").order("asc").take(2)) }),
  newestTwo: query({ args: {}, handler: async (ctx) => bodies(await visible(ctx, "me", "general").order("desc").take(2)) }),
  first: query({ args: {}, handler: async (ctx) => (await visible(ctx, "me", "general").first())?.body ?? null }),
  onlyBob: query({ args: {}, handler: async (ctx) => (await filter(visible(ctx, "me", "general"), (m) => m.author === "bob").unique())?.body ?? null }),
  notUnique: query({ args: {}, handler: async (ctx) => (await visible(ctx, "me", "general").unique())?.body ?? null }),
  page: query({
    args: { cursor: v.union(v.string(), v.null()) },
    handler: async (ctx, { cursor }) => {
      const result = await visible(ctx, "me", "general").paginate({ numItems: 3, cursor });
      return { bodies: bodies(result.page), isDone: result.isDone, cursor: result.continueCursor };
    },
  }),
  iterate: query({
    args: {},
    handler: async (ctx) => {
      const seen: string[] = [];
      for await (const message of visible(ctx, "me", "general")) seen.push(message.body);
      return seen;
    },
  }),
  misuse: query({ args: {}, handler: async () => void filter("messages" as never, () => true) }),
};

let t: WalkinTest<any> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function start() {
  t = walkinTest(schema, { chat });
  await t.mutation(api.chat.seed, {});
}

describe("filter(query, predicate)", () => {
  it("keeps what an async predicate that reads the database keeps, through every terminal", async () => {
    await start();
    expect(await t!.query(api.chat.all, {})).toEqual(["a1", "b1", "a2"]);
    expect(await t!.query(api.chat.iterate, {})).toEqual(["a1", "b1", "a2"]);
    expect(await t!.query(api.chat.newestTwo, {})).toEqual(["a2", "b1"]);
    expect(await t!.query(api.chat.oldestTwo, {})).toEqual(["a1", "b1"]); // read on past s1, s2 and s3
    expect(await t!.query(api.chat.first, {})).toBe("a1"); // read on past s1
    expect(await t!.query(api.chat.onlyBob, {})).toBe("b1");
    expect((await caught(t!.query(api.chat.notUnique, {}))).code).toBe("NOT_UNIQUE");
  });

  it("pages keep the query's cursors: a page may be short, the next starts where the unfiltered one ended", async () => {
    await start();
    const first = await t!.query(api.chat.page, { cursor: null });
    expect([first.bodies, first.isDone]).toEqual([["a1"], false]);
    const second = await t!.query(api.chat.page, { cursor: first.cursor });
    expect([second.bodies, second.isDone]).toEqual([["b1", "a2"], false]); // a full page read: done only on the next
    const third = await t!.query(api.chat.page, { cursor: second.cursor });
    expect([third.bodies, third.isDone]).toEqual([[], true]);
  });

  it("says what it needs when given something else", async () => {
    await start();
    const error = await caught(t!.query(api.chat.misuse, {}));
    expect(error.code).toBe("MISUSE");
    expect(error.message).toContain("filter(query, predicate) needs a query");
  });

  it("keeps the query's type, and types the predicate's document", () => {
    type Q = AsyncIterable<{ body: string }> & { collect(): Promise<Array<{ body: string }>> };
    // Types only: never called.
    const filtered = (q: Q) =>
      filter(q, (doc) => {
        expectTypeOf(doc).toEqualTypeOf<{ body: string }>();
        return true;
      });
    expectTypeOf(filtered).returns.toEqualTypeOf<Q>();
  });
});

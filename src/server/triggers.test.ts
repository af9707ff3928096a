/**
 * Triggers (triggers.ts), as a Convex app using convex-helpers' triggers writes them: a
 * denormalized count kept by a trigger, a cascading delete, an audit log, all wired through
 * `customMutation(mutation, customCtx(triggers.wrapDB))` and run on the real engine.
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, customCtx, customMutation, defineSchema, defineTable, internalMutation, mutation as rawMutation, query, Triggers } from "./index.js";
import { v } from "../values/index.js";
import { walkinTest, type WalkinTest } from "../testing/index.js";
import { caught } from "../engine/fixtures/caught.js";

const api: any = anyApi;

const schema = defineSchema({
  users: defineTable({ name: v.string() }),
  channels: defineTable({ name: v.string(), messages: v.number() }),
  messages: defineTable({ channel: v.id("channels"), author: v.id("users"), body: v.string() }).index("by_author", ["author"]),
  audit: defineTable({ entry: v.string() }),
});

const triggers = new Triggers<any>();
/** What the triggers saw, in order: the test reads it after each call. */
let seen: string[] = [];

triggers.register("messages", async (ctx, change) => {
  seen.push(`count ${change.operation} ${change.oldDoc?.body ?? "-"} -> ${change.newDoc?.body ?? "-"}`);
  if (change.newDoc?.body === "forbidden") throw new Error("That word is not allowed here.");
  const bump = async (channel: any, by: number) => {
    const doc = await ctx.db.get(channel);
    await ctx.db.patch(channel, { messages: doc.messages + by });
  };
  if (change.oldDoc) await bump(change.oldDoc.channel, -1);
  if (change.newDoc) await bump(change.newDoc.channel, +1);
});
triggers.register("messages", async (ctx, change) => {
  seen.push(`audit ${change.operation}`);
  await ctx.db.insert("audit", { entry: `${change.operation} ${change.id}` });
});
// A user's messages go with them; each delete fires the messages' triggers in turn.
triggers.register("users", async (ctx, change) => {
  seen.push(`users ${change.operation}`);
  if (change.operation !== "delete") return;
  for (const message of await ctx.db.query("messages").withIndex("by_author", (q: any) => q.eq("author", change.id)).collect()) {
    await ctx.db.delete(message._id);
  }
  seen.push("users delete done");
});
triggers.register("audit", async (ctx, change) => {
  if (change.newDoc?.entry === "loop") await ctx.db.insert("audit", { entry: "loop" });
});

const mutation = customMutation(rawMutation, customCtx(triggers.wrapDB));

const app = {
  setup: mutation({
    args: {},
    handler: async (ctx) => {
      const ada = await ctx.db.insert("users", { name: "Ada" });
      const general = await ctx.db.insert("channels", { name: "general", messages: 0 });
      const random = await ctx.db.insert("channels", { name: "random", messages: 0 });
      return { ada, general, random };
    },
  }),
  send: mutation({
    args: { channel: v.id("channels"), author: v.id("users"), body: v.string() },
    handler: async (ctx, message) => {
      const id = await ctx.db.insert("messages", message);
      // Every trigger has run by now, however deep.
      return { id, count: (await ctx.db.get(message.channel))!.messages };
    },
  }),
  move: mutation({
    args: { id: v.id("messages"), channel: v.id("channels") },
    handler: async (ctx, { id, channel }) => ctx.db.patch("messages", id, { channel }),
  }),
  rewrite: mutation({
    args: { id: v.id("messages"), body: v.string() },
    handler: async (ctx, { id, body }) => {
      const old = (await ctx.db.get(id))!;
      await ctx.db.replace(id, { channel: old.channel, author: old.author, body });
    },
  }),
  removeUser: mutation({ args: { id: v.id("users") }, handler: async (ctx, { id }) => ctx.db.delete(id) }),
  sendTwo: mutation({
    args: { channel: v.id("channels"), author: v.id("users") },
    handler: async (ctx, { channel, author }) => {
      await Promise.all([ctx.db.insert("messages", { channel, author, body: "one" }), ctx.db.insert("messages", { channel, author, body: "two" })]);
      return (await ctx.db.get(channel))!.messages;
    },
  }),
  loop: mutation({ args: {}, handler: async (ctx) => ctx.db.insert("audit", { entry: "loop" }) }),
  // Methods taken off ctx.db, as from the engine's own.
  sendDetached: mutation({
    args: { channel: v.id("channels"), author: v.id("users"), body: v.string() },
    handler: async (ctx, message) => {
      const { insert, get } = ctx.db;
      await insert("messages", message);
      return (await get(message.channel))!.messages;
    },
  }),
  // Not wrapped: no trigger runs.
  sendRaw: internalMutation({
    args: { channel: v.id("channels"), author: v.id("users"), body: v.string() },
    handler: async (ctx, message) => ctx.db.insert("messages", message),
  }),
  wrapInQuery: query({ args: {}, handler: async (ctx) => void triggers.wrapDB(ctx as never) }),
  state: query({
    args: {},
    handler: async (ctx) => ({
      channels: Object.fromEntries((await ctx.db.query("channels").collect()).map((c) => [c.name, c.messages])),
      messages: (await ctx.db.query("messages").collect()).map((m) => m.body),
      audit: (await ctx.db.query("audit").collect()).length,
    }),
  }),
};

let t: WalkinTest<any> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function start() {
  t = walkinTest(schema, { app });
  const ids = await t.mutation(api.app.setup, {});
  seen = [];
  return ids;
}

describe("triggers run on every write through the wrapped db, inside the mutation", () => {
  it("keep a count through inserts, moves, rewrites and deletes, each change with the document before and after", async () => {
    const { ada, general, random } = await start();
    const first = await t!.mutation(api.app.send, { channel: general, author: ada, body: "hello" });
    expect(first.count).toBe(1);
    expect(seen).toEqual(["count insert - -> hello", "audit insert"]);

    seen = [];
    await t!.mutation(api.app.move, { id: first.id, channel: random });
    await t!.mutation(api.app.rewrite, { id: first.id, body: "hello again" });
    expect(seen).toEqual(["count update hello -> hello", "audit update", "count update hello -> hello again", "audit update"]);
    expect(await t!.query(api.app.state, {})).toEqual({ channels: { general: 0, random: 1 }, messages: ["hello again"], audit: 3 });
  });

  it("cascade: a trigger's writes fire triggers, after the trigger that wrote them, before the handler's write returns", async () => {
    const { ada, general } = await start();
    await t!.mutation(api.app.send, { channel: general, author: ada, body: "a" });
    await t!.mutation(api.app.send, { channel: general, author: ada, body: "b" });
    seen = [];
    await t!.mutation(api.app.removeUser, { id: ada });
    // The users trigger finishes (both deletes queued) before either message's triggers start.
    expect(seen).toEqual(["users delete", "users delete done", "count delete a -> -", "audit delete", "count delete b -> -", "audit delete"]);
    expect(await t!.query(api.app.state, {})).toEqual({ channels: { general: 0, random: 0 }, messages: [], audit: 4 });
  });

  it("fire through methods taken off ctx.db", async () => {
    const { ada, general } = await start();
    expect(await t!.mutation(api.app.sendDetached, { channel: general, author: ada, body: "detached" })).toBe(1);
  });

  it("writes run side by side each fire their triggers, all done when the handler's await returns", async () => {
    const { ada, general } = await start();
    expect(await t!.mutation(api.app.sendTwo, { channel: general, author: ada })).toBe(2);
  });

  it("a trigger that throws fails the mutation, and nothing it or the handler wrote is kept", async () => {
    const { ada, general } = await start();
    const error = await caught(t!.mutation(api.app.send, { channel: general, author: ada, body: "forbidden" }));
    expect(error.message).toContain("That word is not allowed here.");
    expect(await t!.query(api.app.state, {})).toEqual({ channels: { general: 0, random: 0 }, messages: [], audit: 0 });
  });

  it("a trigger that keeps writing its own table stops at the transaction's write limit, writing nothing", async () => {
    await start();
    const error = await caught(t!.mutation(api.app.loop, {}));
    expect(error.code).toBe("LIMIT_EXCEEDED");
    expect((await t!.query(api.app.state, {})).audit).toBe(0);
  });

  it("a mutation made with the raw builder fires nothing", async () => {
    const { ada, general } = await start();
    await t!.mutation(api.app.sendRaw, { channel: general, author: ada, body: "quiet" });
    expect(seen).toEqual([]);
    expect(await t!.query(api.app.state, {})).toEqual({ channels: { general: 0, random: 0 }, messages: ["quiet"], audit: 0 });
  });
});

describe("mistakes say what to fix", () => {
  it("wrapDB on a query's ctx, and register without a table or a function", async () => {
    await start();
    const error = await caught(t!.query(api.app.wrapInQuery, {}));
    expect([error.code, error.message]).toEqual(["MISUSE", "triggers.wrapDB needs a mutation's ctx (one whose db writes): use it with customMutation, not customQuery."]);
    expect(() => triggers.register("messages", undefined as never)).toThrow("triggers.register(table, trigger) needs a table name and an async function");
  });
});

import { v } from "walkin/values";
import { query } from "./_generated/server";
import { actionWithSession, mutationWithSession } from "./lib/sessions";
import { api } from "./_generated/api";

export const list = query({
  args: {},
  handler: async (ctx) => {
    const messages = await ctx.db.query("messages").order("desc").take(20);
    return Promise.all(
      messages.reverse().map(async (message) => ({
        ...message,
        authorId: message.author,
        author: (await ctx.db.get("users", message.author))?.name ?? "Anonymous",
      })),
    );
  },
});

/** Full-text search over the messages, most relevant first; optionally only one author's. */
export const search = query({
  args: { text: v.string(), author: v.optional(v.id("users")) },
  handler: async (ctx, { text, author }) => {
    const messages = await ctx.db
      .query("messages")
      .withSearchIndex("search_body", (q) => (author ? q.search("body", text).eq("author", author) : q.search("body", text)))
      .take(10);
    return messages.map((message) => message.body);
  },
});

export const send = mutationWithSession({
  args: { body: v.string() },
  handler: async (ctx, { body }) => {
    const text = body.trim();
    if (text.length === 0) throw new Error("Write something first");
    if (text.length > 1000) throw new Error("Messages are at most 1000 characters");
    const author = ctx.user?._id ?? (await ctx.db.insert("users", { name: "Anonymous", sessionId: ctx.sessionId, isAnonymous: true }));
    await ctx.db.insert("messages", { body: text, author });
  },
});

export const remove = mutationWithSession({
  args: { id: v.id("messages") },
  handler: async (ctx, { id }) => {
    const message = await ctx.db.get("messages", id);
    if (!message || message.author !== ctx.user?._id) throw new Error("You can only delete your own messages");
    await ctx.db.delete("messages", id);
  },
});

/** An action calling a session query as the same session: how many of the listed messages are the caller's. */
export const countMine = actionWithSession({
  args: {},
  handler: async (ctx): Promise<number> => {
    const mine = await ctx.runSessionQuery(api.users.get);
    const all = await ctx.runQuery(api.messages.list);
    // By user ID: names repeat (every guest is "Anonymous").
    return all.filter((m) => m.authorId === mine.userId).length;
  },
});

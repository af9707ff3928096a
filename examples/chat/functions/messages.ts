import { v, WalkinError } from "walkin/server";
import { mutation, query } from "./_generated/server.js";

const MAX_BODY = 1000;
const MAX_NAME = 40;

/** The newest 50 messages, oldest first. */
export const list = query({
  args: {},
  handler: async (ctx) => {
    const newest = await ctx.db.query("messages").order("desc").take(50);
    return newest.reverse().map(({ _id, _creationTime, author, body }) => ({ _id, _creationTime, author, body }));
  },
});

export const send = mutation({
  args: { author: v.string(), body: v.string() },
  handler: async (ctx, { author, body }) => {
    const text = body.trim();
    const name = author.trim();
    if (text.length === 0) throw new WalkinError("Write something first.", { data: { field: "body" } });
    if (text.length > MAX_BODY) throw new WalkinError(`Messages are at most ${MAX_BODY} characters.`, { data: { field: "body" } });
    if (name.length === 0 || name.length > MAX_NAME) {
      throw new WalkinError(`Names are 1 to ${MAX_NAME} characters.`, { data: { field: "author" } });
    }
    await ctx.db.insert("messages", { author: name, body: text });
  },
});

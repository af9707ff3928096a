import { v, WalkinError } from "walkin/values";
import { mutation, query } from "./_generated/server.js";

export const list = query({
  args: {},
  handler: async (ctx) => {
    const latest = await ctx.db.query("messages").order("desc").take(50);
    return latest.reverse();
  },
});

export const send = mutation({
  args: { author: v.string(), body: v.string() },
  handler: async (ctx, { author, body }) => {
    // A WalkinError's message reaches the page in production too; any other error's is hidden there.
    if (body.trim() === "") throw new WalkinError("Say something!");
    await ctx.db.insert("messages", { author, body });
  },
});

import { v, WalkinError } from "walkin/server";
import { getAuthUserId } from "walkin/auth";
import { internalMutation, mutation, query } from "./_generated/server.js";
import { internal } from "./_generated/api.js";

const MAX_BODY = 1000;

/** The newest 50 messages, oldest first, each with its author's current name (nothing else of theirs). */
export const list = query({
  args: {},
  handler: async (ctx) => {
    const newest = await ctx.db.query("messages").order("desc").take(50);
    return Promise.all(
      newest.reverse().map(async ({ _id, _creationTime, author, body }) => {
        const user = await ctx.db.get(author);
        return { _id, _creationTime, authorId: author, author: user?.name ?? "Someone", body };
      }),
    );
  },
});

export const send = mutation({
  args: { body: v.string() },
  handler: async (ctx, { body }) => {
    const author = await getAuthUserId(ctx);
    if (!author) throw new WalkinError("You are not signed in yet; wait a moment and try again.");
    const text = body.trim();
    if (text.length === 0) throw new WalkinError("Write something first.", { data: { field: "body" } });
    if (text.length > MAX_BODY) throw new WalkinError(`Messages are at most ${MAX_BODY} characters.`, { data: { field: "body" } });
    await ctx.db.insert("messages", { author, body: text });
  },
});

/**
 * An announcement posted later by the scheduler, as `author`. Internal: no client can call
 * it; run it from the dashboard (Functions → messages:announceLater), whose Scheduler screen
 * then shows the job pending and can cancel it.
 */
export const announceLater = internalMutation({
  args: { author: v.id("users"), body: v.string(), delayMs: v.number() },
  // The annotation breaks the type cycle through `internal` (this module's own references).
  handler: async (ctx, { author, body, delayMs }): Promise<void> => {
    await ctx.scheduler.runAfter(delayMs, internal.messages.announce, { author, body });
  },
});

export const announce = internalMutation({
  args: { author: v.id("users"), body: v.string() },
  handler: async (ctx, { author, body }) => {
    if (await ctx.db.get(author)) await ctx.db.insert("messages", { author, body });
  },
});

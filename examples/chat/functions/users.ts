import { v } from "walkin/server";
import { cleanName, mutationWithSession, queryWithSession, sessionUser } from "./lib/sessions.js";

/** The visitor's own profile (never another user's session data). */
export const me = queryWithSession({
  args: {},
  handler: async (ctx) => (ctx.user ? { _id: ctx.user._id, name: ctx.user.name } : null),
});

/** Creates the visitor's user if needed, so a name shows before the first message. */
export const ensure = mutationWithSession({
  args: {},
  handler: async (ctx) => sessionUser(ctx, ctx.sessionId),
});

export const setName = mutationWithSession({
  args: { name: v.string() },
  handler: async (ctx, { name }) => {
    const userId = await sessionUser(ctx, ctx.sessionId);
    await ctx.db.patch(userId, { name: cleanName(name) });
  },
});

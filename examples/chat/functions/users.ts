import { v, WalkinError } from "walkin/server";
import { getAuthUserId } from "walkin/auth";
import { mutation, query } from "./_generated/server.js";
import { cleanName } from "./lib/names.js";

/** The signed-in user's own profile; null before the first sign-in. Only ever the caller's. */
export const me = query({
  args: {},
  handler: async (ctx) => {
    const userId = await getAuthUserId(ctx);
    const user = userId ? await ctx.db.get(userId) : null;
    if (!user) return null;
    return { _id: user._id, name: user.name ?? "Someone", email: user.email ?? null, isAnonymous: user.isAnonymous ?? false };
  },
});

export const setName = mutation({
  args: { name: v.string() },
  handler: async (ctx, { name }) => {
    const userId = await getAuthUserId(ctx);
    if (!userId) throw new WalkinError("You are not signed in yet; wait a moment and try again.");
    await ctx.db.patch(userId, { name: cleanName(name) });
  },
});

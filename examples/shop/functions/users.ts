import { getAuthUserId } from "walkin/auth";
import { query } from "./_generated/server.js";

/** Who the visitor is: a guest (anonymous user) or an account, by email. */
export const me = query({
  args: {},
  handler: async (ctx) => {
    const userId = await getAuthUserId(ctx);
    const user = userId && (await ctx.db.get(userId));
    return user ? { isAnonymous: user.isAnonymous === true, email: user.email ?? null } : null;
  },
});

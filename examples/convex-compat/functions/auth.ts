import { convexAuth, getAuthSessionId, getAuthUserId } from "walkin/auth";
import { Anonymous } from "walkin/auth/providers/Anonymous";
import { query } from "./_generated/server";

export const { auth, signIn, signOut, store, isAuthenticated } = convexAuth({
  providers: [Anonymous],
  session: { inactiveDurationMs: 7 * 24 * 60 * 60 * 1000 },
  callbacks: {
    async createOrUpdateUser(ctx, args) {
      if (args.existingUserId !== null) return args.existingUserId;
      return ctx.db.insert("users", { name: "Guest", isAnonymous: args.profile.isAnonymous === true });
    },
    async beforeSessionCreation(ctx, { userId }) {
      const user = await ctx.db.get(userId);
      if (user?.banned) throw new Error("Account is banned");
    },
  },
});

export const whoAmI = query({
  args: {},
  handler: async (ctx) => ({ userId: await getAuthUserId(ctx), authSessionId: await getAuthSessionId(ctx) }),
});

/**
 * Accounts for the chat, with walkin/auth. Every visitor is signed in anonymously at once
 * (the Anonymous provider's `profile` hook names them "Sunny Otter"); they may sign up with
 * an email and a password and keep their user (same `_id`, so their messages stay theirs), or
 * sign in to an account they have, and what they wrote anonymously moves into it.
 */
import { turnstile, walkinAuth } from "walkin/auth";
import { Anonymous } from "walkin/auth/providers/Anonymous";
import { Password } from "walkin/auth/providers/Password";
import type { Id } from "./_generated/server.js";
import { generateName } from "./lib/names.js";
import { anonymousSignInsPerHour, captcha } from "./lib/settings.js";

export const { auth, signIn, signOut, store, isAuthenticated, currentSession, listSessions, revokeSession, revokeOtherSessions } = walkinAuth({
  providers: [
    Anonymous({
      captcha: captcha ? turnstile({ secret: captcha.secret, verifyUrl: captcha.verifyUrl }) : undefined,
      profile: () => ({ name: generateName() }),
    }),
    Password(),
  ],
  rateLimits: { anonymousSignIn: { limit: anonymousSignInsPerHour, windowMs: 3_600_000 } },
  callbacks: {
    // Signing in to an existing account: the anonymous user's messages become the account's;
    // walkin/auth then deletes the anonymous user, in the same transaction.
    async mergeAnonymousUser({ ctx, anonymousUserId, userId }) {
      const moved = await ctx.db.query("messages").withIndex("by_author", (q) => q.eq("author", anonymousUserId)).collect();
      for (const message of moved) await ctx.db.patch(message._id, { author: userId });
    },
    // An abandoned anonymous user (30 days idle) is deleted by walkin/auth's cleanup: its
    // messages go with it, so no message points at a missing user.
    async onDeleteUser(ctx, userId: Id<"users">) {
      const theirs = await ctx.db.query("messages").withIndex("by_author", (q) => q.eq("author", userId)).collect();
      for (const message of theirs) await ctx.db.delete(message._id);
    },
  },
});

import { walkinAuth } from "walkin/auth";
import { Anonymous } from "walkin/auth/providers/Anonymous";
import { Password, consoleCodeSender } from "walkin/auth/providers/Password";
import type { MutationCtx } from "./_generated/server.js";
import { deleteShopData, moveShopData } from "./lib/cart.js";

// The hooks get an untyped ctx; the shop's helpers want this schema's types.
const typed = (ctx: unknown) => ctx as MutationCtx;

export const { auth, signIn, signOut, store, isAuthenticated, currentSession, listSessions, revokeSession, revokeOtherSessions } = walkinAuth({
  providers: [Anonymous, Password({ sendCode: consoleCodeSender })],
  // A tab's checkout follows its new session ID on sign-in and is deleted on sign-out.
  sessions: { tables: { checkouts: "by_sessionId" } },
  callbacks: {
    // Signing in to an account that has a cart: quantities of the same item are added (up to
    // 99), other items are appended. Runs in the sign-in's transaction.
    mergeAnonymousUser: ({ ctx, anonymousUserId, userId }) => moveShopData(typed(ctx), anonymousUserId, userId),
    onDeleteUser: (ctx, userId) => deleteShopData(typed(ctx), userId),
  },
});

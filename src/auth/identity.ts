/**
 * Reading the caller's auth state in functions: the user ID and auth session ID of the
 * token the call carried, checked in this very transaction.
 */
import type { Auth } from "../server/registration.js";
import type { Id } from "../values/index.js";
import { ISSUER } from "./authSessions.js";

/**
 * The signed-in user's ID, or null (no token, or one that is invalid, expired or revoked).
 * @example
 * const userId = await getAuthUserId(ctx);
 * if (userId === null) throw new Error("Sign in first");
 */
export async function getAuthUserId(ctx: { auth: Auth }): Promise<Id<"users"> | null> {
  const identity = await ctx.auth.getUserIdentity();
  return identity && identity.issuer === ISSUER ? (identity.subject as Id<"users">) : null;
}

/**
 * The ID of the auth session (row of `authSessions`) the call was made with, or null.
 * @example
 * await invalidateSessions(ctx, userId, { except: [await getAuthSessionId(ctx)] });
 */
export async function getAuthSessionId(ctx: { auth: Auth }): Promise<Id<"authSessions"> | null> {
  const identity = await ctx.auth.getUserIdentity();
  return identity && identity.issuer === ISSUER && typeof identity.authSessionId === "string" ? (identity.authSessionId as Id<"authSessions">) : null;
}

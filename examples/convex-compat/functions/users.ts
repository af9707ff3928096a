import { v } from "walkin/values";
import { vSessionId } from "walkin/sessions";
import { mutationWithSession, namedUserQuery, queryWithSession, type SessionQueryCtx } from "./lib/sessions";

function describe(ctx: SessionQueryCtx) {
  return { name: ctx.user?.name, userId: ctx.user?._id, sessionId: ctx.sessionId };
}

/** The session's profile: `name` is undefined (so absent for clients) until one is chosen. */
export const get = queryWithSession({
  args: {},
  handler: async (ctx) => describe(ctx),
});

/** Redeclares the session argument with the same validator, as convex-helpers allows. */
export const getWithOwnSessionArg = queryWithSession({
  args: { sessionId: vSessionId },
  handler: async (ctx, { sessionId }) => sessionId === ctx.sessionId,
});

export const greeting = namedUserQuery({
  args: { punctuation: v.optional(v.string()) },
  handler: async (ctx, { punctuation }) => `Hello, ${ctx.name}${punctuation ?? "!"}`,
});

/** Creates the session's profile or renames it (the table name first, as Convex documents it). */
export const setName = mutationWithSession({
  args: { name: v.string() },
  handler: async (ctx, { name }) => {
    if (ctx.user) {
      await ctx.db.patch("users", ctx.user._id, { name });
      return ctx.user._id;
    }
    return ctx.db.insert("users", { name, sessionId: ctx.sessionId, isAnonymous: true });
  },
});

/** Moves the profile to the session's next ID (what a refresh's `beforeUpdate` runs). */
export const moveTo = mutationWithSession({
  args: { to: vSessionId },
  handler: async (ctx, { to }) => {
    if (ctx.user) await ctx.db.patch("users", ctx.user._id, { sessionId: to });
  },
});

// Session-aware builders, written the way convex-helpers' docs show them; only the import
// paths were changed (convex-helpers/server/customFunctions → walkin/server,
// convex-helpers/server/sessions → walkin/sessions).
import { customAction, customCtx, customMutation, customQuery, type CustomCtx } from "walkin/server";
import { runSessionFunctions, SessionIdArg, type SessionId } from "walkin/sessions";
import { action, mutation, query, type QueryCtx } from "../_generated/server";
import type { Doc } from "../_generated/dataModel";

/** The guest profile a session created, if any. */
export async function getUser(ctx: QueryCtx, sessionId: SessionId): Promise<Doc<"users"> | null> {
  return ctx.db
    .query("users")
    .withIndex("by_sessionId", (q) => q.eq("sessionId", sessionId))
    .first();
}

export const queryWithSession = customQuery(query, {
  args: SessionIdArg,
  input: async (ctx, { sessionId }) => {
    const user = await getUser(ctx, sessionId);
    return { ctx: { user, sessionId }, args: {} };
  },
});

export const mutationWithSession = customMutation(mutation, {
  args: SessionIdArg,
  input: async (ctx, { sessionId }) => {
    const user = await getUser(ctx, sessionId);
    return { ctx: { user, sessionId }, args: {} };
  },
});

export const actionWithSession = customAction(action, {
  args: SessionIdArg,
  input: async (ctx, { sessionId }) => ({ ctx: { ...runSessionFunctions(ctx, sessionId), sessionId }, args: {} }),
});

/** Builders nest: a session query that also insists on a named user. */
export const namedUserQuery = customQuery(
  queryWithSession,
  customCtx(async (ctx) => {
    if (!ctx.user?.name) throw new Error("Pick a name first");
    return { name: ctx.user.name };
  }),
);

export type SessionQueryCtx = CustomCtx<typeof queryWithSession>;

/**
 * The session builders: `queryWithSession`, `mutationWithSession`, `actionWithSession` (ready,
 * untyped) and `sessionBuilders(...)` (the same, typed by the app's schema), plus the `logins`
 * join table they read (`sessionTables`) and `getSessionUser`.
 *
 * They are custom builders, written the way an app could write them: a `sessionId` argument
 * (validated by `vSessionId`, so the handler only ever sees the digest) and `ctx.sessionId` /
 * `ctx.user` for queries and mutations; `ctx.sessionId` and `runSessionFunctions` for actions.
 * A user has many sessions through `logins`; the login is looked up with `.first()` so that
 * even a duplicate login (which `getOrCreateSessionUser` prevents) cannot make a call throw.
 */
import { customAction, customMutation, customQuery, type CustomBuilder, type Overwrite } from "../server/customFunctions.js";
import type { AnyDataModel, DocumentByName, GenericDataModel } from "../server/dataModel.js";
import type { BaseDatabaseReader } from "../server/database.js";
import { action as anyAction, mutation as anyMutation, query as anyQuery } from "../server/functions.js";
import type {
  ActionBuilder,
  FunctionBuilder,
  FunctionType,
  GenericActionCtx,
  GenericMutationCtx,
  GenericQueryCtx,
  MutationBuilder,
  QueryBuilder,
  RegisteredFunction,
} from "../server/registration.js";
import { defineTable } from "../server/schema.js";
import { v, type VString } from "../values/index.js";
import { runSessionFunctions, type SessionFunctionRunners } from "./runSessionFunctions.js";
import { SessionIdArg, sessionDigest, vSessionId, type SessionId } from "./sessionId.js";

/**
 * The tables the session builders read, to spread into the app's schema next to its own
 * `users` table. `logins` joins sessions to users (a user may have many sessions).
 * @example
 * export default defineSchema({
 *   ...sessionTables,
 *   users: defineTable({ name: v.string() }),
 * });
 */
export const sessionTables = {
  logins: defineTable({ sessionId: vSessionId, userId: v.id("users") })
    .index("by_sessionId", ["sessionId"])
    .index("by_userId", ["userId"]),
};

/** The app's user document, or a plain document when the data model is untyped. */
export type SessionUser<DM extends GenericDataModel> = "users" extends keyof DM ? DocumentByName<DM, "users"> : never;

/**
 * The user a session is logged in as (through `logins`), or null.
 * @example
 * const user = await getSessionUser(ctx.db, ctx.sessionId);
 */
export async function getSessionUser<DM extends GenericDataModel>(
  db: BaseDatabaseReader<DM>,
  sessionId: SessionId,
): Promise<SessionUser<DM> | null> {
  const reader = db as unknown as BaseDatabaseReader<AnyDataModel>;
  const login = await reader.query("logins").withIndex("by_sessionId", (q) => q.eq("sessionId", sessionId)).first();
  return login ? ((await reader.get(login.userId)) as SessionUser<DM> | null) : null;
}

/** What session queries and mutations add to ctx. */
export interface SessionCtx<DM extends GenericDataModel> {
  /** The session's digest (never the raw ID the client holds). */
  sessionId: SessionId;
  /** The session's user, or null when no login exists for it. */
  user: SessionUser<DM> | null;
}
/** What session actions add to ctx. */
export type SessionActionCtx = { sessionId: SessionId } & SessionFunctionRunners;

type Empty = Record<never, never>;
/**
 * The session argument as the registered function (and so `api.*`, clients and tests) types
 * it: a plain `string`. What a client sends is the raw ID it generated, which is exactly what
 * the `SessionId` brand (a digest) is not; handlers get the brand through `ctx.sessionId`.
 * At run time the validator is `vSessionId`.
 */
type ClientSessionArg = { sessionId: VString<string> };
export type QueryWithSession<DM extends GenericDataModel> = CustomBuilder<"query", ClientSessionArg, SessionCtx<DM>, Empty, GenericQueryCtx<DM>, "public", Empty> &
  WithoutOwnArgs<"query", Overwrite<GenericQueryCtx<DM>, SessionCtx<DM>>>;
export type MutationWithSession<DM extends GenericDataModel> = CustomBuilder<"mutation", ClientSessionArg, SessionCtx<DM>, Empty, GenericMutationCtx<DM>, "public", Empty> &
  WithoutOwnArgs<"mutation", Overwrite<GenericMutationCtx<DM>, SessionCtx<DM>>>;
export type ActionWithSession<DM extends GenericDataModel> = CustomBuilder<"action", ClientSessionArg, SessionActionCtx, Empty, GenericActionCtx<DM>, "public", Empty> &
  WithoutOwnArgs<"action", Overwrite<GenericActionCtx<DM>, SessionActionCtx>>;

/**
 * Unlike a custom builder an app makes (which refuses it, as convex-helpers does), these also
 * take a function that declares no args of its own: they declare `args: {}` for it.
 */
interface WithoutOwnArgs<Type extends FunctionType, Ctx> {
  <Returned = unknown>(definition: { handler: (ctx: Ctx, args: Empty) => Returned }): RegisteredFunction<Type, "public", { sessionId: string }, Awaited<Returned>>;
  <Returned = unknown>(handler: (ctx: Ctx, args: Empty) => Returned): RegisteredFunction<Type, "public", { sessionId: string }, Awaited<Returned>>;
}

/**
 * Functions defined without `args` get `args: {}`: with declared args the engine validates
 * `sessionId` knowing who calls (a digest from server code is fine, from a client it is not)
 * and hands over the digest. `sessionDigest` in the inputs below is a second guard.
 */
function declaringArgs<B>(builder: B): B {
  const build = builder as unknown as (definition: unknown) => unknown;
  return ((definition: any) =>
    build(typeof definition === "function" ? { args: {}, handler: definition } : definition?.args === undefined ? { ...definition, args: {} } : definition)) as B;
}

async function sessionInput(ctx: { db: BaseDatabaseReader<any> }, { sessionId }: { sessionId: SessionId }) {
  const digest = sessionDigest(sessionId);
  return { ctx: { sessionId: digest, user: await getSessionUser(ctx.db, digest) }, args: {} };
}

/**
 * Session builders typed by the app's schema: pass the builders from `_generated/server`.
 * @example
 * // functions/lib/sessions.ts
 * import { query, mutation, action } from "../_generated/server";
 * export const { queryWithSession, mutationWithSession, actionWithSession } = sessionBuilders({ query, mutation, action });
 */
export function sessionBuilders<DM extends GenericDataModel>(builders: {
  query: QueryBuilder<DM, "public">;
  mutation: MutationBuilder<DM, "public">;
  action: ActionBuilder<DM, "public">;
}): { queryWithSession: QueryWithSession<DM>; mutationWithSession: MutationWithSession<DM>; actionWithSession: ActionWithSession<DM> } {
  const query = builders.query as FunctionBuilder<"query", "public", any>;
  const mutation = builders.mutation as FunctionBuilder<"mutation", "public", any>;
  const action = builders.action as FunctionBuilder<"action", "public", any>;
  return {
    queryWithSession: declaringArgs(customQuery(query, { args: SessionIdArg, input: sessionInput })) as never,
    mutationWithSession: declaringArgs(customMutation(mutation, { args: SessionIdArg, input: sessionInput })) as never,
    actionWithSession: declaringArgs(
      customAction(action, {
        args: SessionIdArg,
        input: async (ctx, { sessionId }) => {
          const digest = sessionDigest(sessionId);
          return { ctx: { sessionId: digest, ...runSessionFunctions(ctx, digest) }, args: {} };
        },
      }),
    ) as never,
  };
}

const untyped = sessionBuilders<AnyDataModel>({ query: anyQuery, mutation: anyMutation, action: anyAction });

/**
 * A query with `ctx.sessionId` (the digest) and `ctx.user` (through `logins`, or null).
 * Clients send `{ sessionId, ...args }`; the handler's args do not include it.
 * @example
 * export const me = queryWithSession({ args: {}, handler: async (ctx) => ctx.user?.name ?? null });
 */
export const queryWithSession: QueryWithSession<AnyDataModel> = untyped.queryWithSession;

/**
 * A mutation with `ctx.sessionId` and `ctx.user`.
 * @example
 * export const rename = mutationWithSession({
 *   args: { name: v.string() },
 *   handler: async (ctx, { name }) => { if (ctx.user) await ctx.db.patch(ctx.user._id, { name }); },
 * });
 */
export const mutationWithSession: MutationWithSession<AnyDataModel> = untyped.mutationWithSession;

/**
 * An action with `ctx.sessionId` and `ctx.runSessionQuery` / `runSessionMutation` /
 * `runSessionAction`, which call session functions as the same session.
 * @example
 * export const summarize = actionWithSession({ args: {}, handler: async (ctx) => ctx.runSessionQuery(api.notes.mine) });
 */
export const actionWithSession: ActionWithSession<AnyDataModel> = untyped.actionWithSession;

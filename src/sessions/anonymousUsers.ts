/**
 * Anonymous users via sessions: get or create the session's user, move a session's data to a
 * new session (sign-in), and end a session (sign-out, remote invalidation). All three run
 * inside the calling mutation, so they commit or abort with it.
 *
 * "Per-session rows" are rows of the app's own tables that carry a `sessionId` field (a
 * digest, validated by `vSessionId`) and an index starting with it; the app lists them as
 * `{ table: indexName }` so that nothing is touched that the app did not name.
 */
import type { AnyDataModel, GenericDataModel } from "../server/dataModel.js";
import type { DatabaseWriter } from "../server/database.js";
import { walkinError, type Id } from "../values/index.js";
import { sessionDigest, type SessionId } from "./sessionId.js";

type WriterCtx<DM extends GenericDataModel> = { db: DatabaseWriter<DM> };

/** The app's tables that hold per-session rows: table name → index whose first field is `sessionId`. */
export type SessionTables = Record<string, string>;

/**
 * The session's user ID, creating the user (with `create`) and its login on first use.
 *
 * Two concurrent first calls for one session create one user. Step by step: both read the
 * empty `logins` range of the session; both create a user and a login; the first commits; the
 * second's read range now overlaps a committed write, so the engine discards its writes and
 * runs it again; this time it finds the login and returns the winner's user.
 * @example
 * const userId = await getOrCreateSessionUser(ctx, ctx.sessionId, (ctx) => ctx.db.insert("users", { name: "Anonymous" }));
 */
export async function getOrCreateSessionUser<DM extends GenericDataModel, Ctx extends WriterCtx<DM>>(
  ctx: Ctx,
  sessionId: SessionId,
  create: (ctx: Ctx) => Promise<Id<"users">>,
): Promise<Id<"users">> {
  const db = ctx.db as unknown as DatabaseWriter<AnyDataModel>;
  const digest = sessionDigest(sessionId);
  const login = await db.query("logins").withIndex("by_sessionId", (q) => q.eq("sessionId", digest)).first();
  if (login && (await db.get(login.userId))) return login.userId as Id<"users">;
  const userId = await create(ctx);
  // A login whose user was deleted is pointed at the new user rather than left dangling.
  if (login) await db.patch(login._id, { userId });
  else await db.insert("logins", { sessionId: digest, userId });
  return userId;
}

async function rowsOf(db: DatabaseWriter<AnyDataModel>, table: string, index: string, sessionId: SessionId) {
  return db.query(table).withIndex(index, (q) => q.eq("sessionId", sessionId)).collect();
}

/** Whether both sessions have a login, which `transferSession` refuses to merge. */
export async function loginsClash<DM extends GenericDataModel>(ctx: WriterCtx<DM>, from: SessionId, to: SessionId): Promise<boolean> {
  const db = ctx.db as unknown as DatabaseWriter<AnyDataModel>;
  const hasLogin = async (sessionId: SessionId) => (await db.query("logins").withIndex("by_sessionId", (q) => q.eq("sessionId", sessionDigest(sessionId))).first()) !== null;
  return (await hasLogin(from)) && (await hasLogin(to));
}

/**
 * Moves a session's logins and its rows in `tables` to a new session: call it from the
 * mutation that runs in the client's `refreshSessionId(beforeUpdate)` on sign-in, with the new
 * ID as an argument validated by `vSessionId`. Running it twice is harmless (the second time
 * there is nothing left to move). Returns how many documents moved.
 *
 * Throws if both sessions have a login: the new session must be fresh, or the user would be
 * ambiguous.
 * @example
 * export const carryOver = mutationWithSession({
 *   args: { newSessionId: vSessionId },
 *   handler: (ctx, { newSessionId }) => transferSession(ctx, { from: ctx.sessionId, to: newSessionId, tables: { carts: "by_sessionId" } }),
 * });
 */
export async function transferSession<DM extends GenericDataModel>(
  ctx: WriterCtx<DM>,
  { from, to, tables = {} }: { from: SessionId; to: SessionId; tables?: SessionTables },
): Promise<number> {
  const db = ctx.db as unknown as DatabaseWriter<AnyDataModel>;
  const source = sessionDigest(from);
  const target = sessionDigest(to);
  if (source === target) return 0;
  if (await loginsClash(ctx, from, to)) {
    throw walkinError("MISUSE", "transferSession: the new session already has a login. Transfer to a fresh session ID, or end the new session first.");
  }
  const logins = await rowsOf(db, "logins", "by_sessionId", source);
  let moved = 0;
  // `logins` is always moved, first; an app that lists it in `tables` too must not move it twice.
  const listed = Object.entries(tables).filter(([name]) => name !== "logins");
  for (const [table, index] of [["logins", "by_sessionId"], ...listed] as [string, string][]) {
    for (const row of table === "logins" ? logins : await rowsOf(db, table, index, source)) {
      await db.patch(row._id, { sessionId: target });
      moved++;
    }
  }
  return moved;
}

/**
 * Ends a session: deletes its logins and its rows in `tables` (what the session alone can
 * reach). Live queries of that session re-run at once and see no user. Returns how many
 * documents were deleted.
 * @example
 * export const signOut = mutationWithSession({ args: {}, handler: (ctx) => endSession(ctx, ctx.sessionId, { tables: { carts: "by_sessionId" } }) });
 */
export async function endSession<DM extends GenericDataModel>(
  ctx: WriterCtx<DM>,
  sessionId: SessionId,
  { tables = {} }: { tables?: SessionTables } = {},
): Promise<number> {
  const db = ctx.db as unknown as DatabaseWriter<AnyDataModel>;
  const digest = sessionDigest(sessionId);
  let deleted = 0;
  for (const [table, index] of [["logins", "by_sessionId"], ...Object.entries(tables)] as [string, string][]) {
    for (const row of await rowsOf(db, table, index, digest)) {
      await db.delete(row._id);
      deleted++;
    }
  }
  return deleted;
}

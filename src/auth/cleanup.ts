/**
 * The built-in cleanup, run as a cron job (every 10 minutes by default): deletes expired
 * sessions (their live queries re-run signed out) and, with an anonymous user's last session,
 * the user (after the app's `onDeleteUser` hook deleted its data): an anonymous session ends
 * after `anonymousUserInactiveMs` unused or when signed out, and then nothing can ever sign in
 * as that user again. Also drops expired codes, verifiers and refilled rate-limit buckets.
 *
 * Each run is one transaction of bounded size; when a batch was full, the run schedules
 * itself again at once, so a backlog drains in steps instead of one huge transaction.
 *
 * Each user is deleted in a sub-transaction of its own (`deleteGuest`, a `ctx.runMutation`):
 * an `onDeleteUser` that throws for one user undoes only that user's deletion, which keeps it
 * whole with its ended session (the next run tries again), and the run goes on. Without that,
 * one such user failed every run at the same place, and nothing was cleaned up any more.
 */
import { isWalkinError, type Id } from "../values/index.js";
import type { DatabaseWriter } from "../server/database.js";
import type { AnyDataModel } from "../server/dataModel.js";
import type { MutationCtx, ResolvedAuthConfig } from "./config.js";
import type { AuthSessionDoc } from "./authSessions.js";
import { refilledBefore } from "./rateLimit.js";
import { isGuest } from "./users.js";

type Db = DatabaseWriter<AnyDataModel>;

const BATCH = 100;
/** Deleting a user runs the app's hook over its data: fewer per run. */
const USER_BATCH = 20;

export type CleanupReport = {
  sessions: number;
  anonymousUsers: number;
  codes: number;
  verifiers: number;
  rateLimits: number;
  /** A batch was full: more is left, and another run was scheduled. */
  more: boolean;
};

async function deleteBelow(db: Db, table: string, index: string, field: string, bound: number): Promise<number> {
  const rows = await db.query(table).withIndex(index, (q) => q.lt(field, bound)).take(BATCH);
  for (const row of rows) await db.delete(row._id);
  return rows.length;
}

/** Deletes an abandoned guest (the app's `onDeleteUser`, then auth's rows) in a sub-transaction. */
export type DeleteGuest = (userId: Id<"users">) => Promise<void>;

/** Expired sessions, and anonymous users whose last session that was. */
async function endExpiredSessions(ctx: MutationCtx, deleteGuest: DeleteGuest, now: number) {
  const db = ctx.db as Db;
  const expired = (await db.query("authSessions").withIndex("by_expiresAt", (q) => q.lte("expiresAt", now)).take(BATCH)) as unknown as AuthSessionDoc[];
  let sessions = 0;
  let anonymousUsers = 0;
  for (const session of expired) {
    if (!(await db.get(session._id))) continue; // went with its user earlier in this run
    const others = session.isAnonymous
      ? (await db.query("authSessions").withIndex("by_userId", (q) => q.eq("userId", session.userId)).take(2)).filter((s) => s._id !== session._id)
      : [];
    if (session.isAnonymous && others.length === 0 && (await isGuest(db, session.userId))) {
      if (anonymousUsers === USER_BATCH) return { sessions, anonymousUsers, more: true };
      try {
        await deleteGuest(session.userId);
      } catch (error) {
        // A limit is the whole transaction's (it stays exceeded): this run cannot go on.
        if (isWalkinError(error) && error.code === "LIMIT_EXCEEDED") throw error;
        console.error(`[walkin auth] cleanup: deleting abandoned anonymous user ${session.userId} failed (onDeleteUser threw); it is kept and tried again at the next run:`, error);
        continue;
      }
      anonymousUsers++;
    } else {
      await db.delete(session._id);
    }
    sessions++;
  }
  // A full batch of users that could not be deleted is no progress: rescheduling at once would
  // only fail on them again; the next cron run tries.
  return { sessions, anonymousUsers, more: expired.length === BATCH && sessions > 0 };
}

export async function runCleanup(ctx: MutationCtx, config: ResolvedAuthConfig, now: number, deleteGuest: DeleteGuest): Promise<CleanupReport> {
  const db = ctx.db as Db;
  const ended = await endExpiredSessions(ctx, deleteGuest, now);
  const codes = await deleteBelow(db, "authVerificationCodes", "by_expiresAt", "expiresAt", now + 1);
  const verifiers = await deleteBelow(db, "authVerifiers", "by_expiresAt", "expiresAt", now + 1);
  // A bucket untouched for the longest window (and its step, rateLimit.ts) is full again: the row says nothing any more.
  const rateLimits = await deleteBelow(db, "authRateLimits", "by_updatedAt", "updatedAt", refilledBefore(Object.values(config.rateLimits), now));
  const more = ended.more || [codes, verifiers, rateLimits].some((n) => n === BATCH);
  return { sessions: ended.sessions, anonymousUsers: ended.anonymousUsers, codes, verifiers, rateLimits, more };
}

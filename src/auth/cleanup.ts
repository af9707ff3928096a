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
 * whole with its ended session, and the run goes on. Without that, one such user failed every
 * run at the same place, and nothing was cleaned up any more. Its ended session is marked
 * (`cleanupRetryAt`, an hour on) so that later runs pass over it: signed-out guests expire at
 * 0 and so come first in `by_expiresAt`, and a batch of them whose hook throws, tried again at
 * every run, filled every batch, and no one behind them (another guest, a real user's expired
 * session) was ever reached.
 *
 * The run's limits (documents read and written, engine/limits.ts) are the whole transaction's,
 * users' deletions included, and a limit once exceeded fails the transaction whole: deleting as
 * many users as fit in 20 used to fail every run once their data was large, and then nothing at
 * all was cleaned up again. So each deletion runs within a budget (`GUEST_BUDGET`, the limits
 * less a reserve for the rest of the run): one that goes past it is undone alone, and
 *  - after other users were deleted in this run, it is left for the next run, scheduled at
 *    once, where it comes first and has the whole budget;
 *  - when no user was deleted before it in this run, it had the whole budget (less what failed
 *    attempts before it read) and does not fit: its `onDeleteUser` must delete in batches. It
 *    is reported, and its ended session marked (`cleanupRetryAt`) so that runs pass over it for
 *    an hour instead of spending their budget on it again and again; the others go on in the
 *    next run, scheduled at once.
 * A run that schedules the next at once has thus deleted a session or marked one: backlogs
 * drain, and users that cannot be deleted never make the runs loop. What runs still cannot do:
 * pass over more than `MAX_PASSED_OVER` marked sessions in front of the rest; behind that many
 * undeletable guests, the others wait until the marks run out.
 */
import { isWalkinError, type Id } from "../values/index.js";
import type { DatabaseWriter } from "../server/database.js";
import type { AnyDataModel } from "../server/dataModel.js";
import { transactionOfDb } from "../engine/database.js";
import { LIMITS } from "../engine/limits.js";
import type { Budget } from "../engine/transaction.js";
import type { MutationCtx, ResolvedAuthConfig } from "./config.js";
import type { AuthSessionDoc } from "./authSessions.js";
import { refilledBefore } from "./rateLimit.js";
import { isGuest } from "./guests.js";

type Db = DatabaseWriter<AnyDataModel>;

const BATCH = 100;
/** Deleting a user runs the app's hook over its data: fewer per run. */
const USER_BATCH = 20;
/** Ended sessions of users marked as not deletable for now (too large, or their hook threw) that a run passes over, at most. */
const MAX_PASSED_OVER = 400;
/**
 * What the run may have used once a user's deletion is done: the limits less an eighth, left
 * for the rest of the run (at most 100 sessions, 100 each of codes, verifiers and rate-limit
 * rows, and the sessions passed over: about a thousand small documents read, fewer written).
 */
const GUEST_BUDGET: Budget = {
  documentsRead: LIMITS.maxDocumentsRead - LIMITS.maxDocumentsRead / 8,
  bytesRead: LIMITS.maxBytesRead - LIMITS.maxBytesRead / 8,
  documentsWritten: LIMITS.maxDocumentsWritten - LIMITS.maxDocumentsWritten / 8,
  bytesWritten: LIMITS.maxBytesWritten - LIMITS.maxBytesWritten / 8,
};
/**
 * How long runs pass over a user whose deletion failed (it did not fit in a transaction, or the
 * app's `onDeleteUser` threw) before trying it again: long enough that a failure logs once an
 * hour, not at every run; no one waits on an abandoned guest's deletion.
 */
export const RETRY_FAILED_DELETION_MS = 60 * 60 * 1000;

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

const isOverBudget = (error: unknown) =>
  isWalkinError(error) && error.code === "LIMIT_EXCEEDED" && (error.data as { limit?: unknown } | undefined)?.limit === "budget";

/** Expired sessions, and anonymous users whose last session that was. */
async function endExpiredSessions(ctx: MutationCtx, deleteGuest: DeleteGuest, now: number) {
  const db = ctx.db as Db;
  const txn = transactionOfDb(ctx.db);
  const expired = (await db.query("authSessions").withIndex("by_expiresAt", (q) => q.lte("expiresAt", now)).take(BATCH + MAX_PASSED_OVER)) as unknown as AuthSessionDoc[];
  let sessions = 0;
  let anonymousUsers = 0;
  let considered = 0;
  /** Sessions marked in this run (`cleanupRetryAt`): later runs pass over them, so this run made progress. */
  let marked = 0;
  for (const session of expired) {
    // A user whose deletion failed less than an hour ago: passed over (see the top).
    if (session.cleanupRetryAt !== undefined && session.cleanupRetryAt > now) continue;
    // More is left; scheduling the next run at once is worth it only if this one got anywhere
    // (deleted or marked something), since the next would otherwise meet the same sessions.
    if (considered === BATCH) return { sessions, anonymousUsers, more: sessions + marked > 0 };
    considered++;
    if (!(await db.get(session._id))) continue; // went with its user earlier in this run
    const others = session.isAnonymous
      ? (await db.query("authSessions").withIndex("by_userId", (q) => q.eq("userId", session.userId)).take(2)).filter((s) => s._id !== session._id)
      : [];
    if (session.isAnonymous && others.length === 0 && (await isGuest(db, session.userId))) {
      if (anonymousUsers === USER_BATCH) return { sessions, anonymousUsers, more: true };
      try {
        const attempt = () => deleteGuest(session.userId);
        await (txn ? txn.withinBudget(GUEST_BUDGET, attempt) : attempt());
      } catch (error) {
        if (isOverBudget(error)) {
          // Undone alone (withinBudget); what it read still counts, so this run deletes no more users.
          if (anonymousUsers === 0) {
            console.error(`[walkin auth] cleanup: abandoned anonymous user ${session.userId} cannot be deleted: deleting it ` +
              "(callbacks.onDeleteUser, then auth's rows) needs more than one transaction may read or write. It is kept, " +
              `and tried again in an hour; the cleanup of everything else goes on. Make onDeleteUser delete large data in batches: ` +
              "delete one batch, then ctx.scheduler.runAfter(0, …) a mutation that deletes the next.", error);
            await db.patch(session._id, { cleanupRetryAt: now + RETRY_FAILED_DELETION_MS });
            marked++;
          }
          return { sessions, anonymousUsers, more: true };
        }
        // Any other limit is the whole transaction's (it stays exceeded): this run cannot go on.
        if (isWalkinError(error) && error.code === "LIMIT_EXCEEDED") throw error;
        console.error(`[walkin auth] cleanup: deleting abandoned anonymous user ${session.userId} failed (onDeleteUser threw); it is kept, ` +
          "and tried again in an hour; the cleanup of everything else goes on:", error);
        // Marked, so that the next runs reach the sessions behind it (see the top).
        await db.patch(session._id, { cleanupRetryAt: now + RETRY_FAILED_DELETION_MS });
        marked++;
        continue;
      }
      anonymousUsers++;
    } else {
      await db.delete(session._id);
    }
    sessions++;
  }
  // A full read with nothing deleted or marked is no progress: rescheduling at once would only
  // meet the same sessions again; the next cron run tries.
  return { sessions, anonymousUsers, more: expired.length === BATCH + MAX_PASSED_OVER && sessions + marked > 0 };
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

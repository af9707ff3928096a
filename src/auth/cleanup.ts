/**
 * The built-in cleanup, run as a cron job (every 10 minutes by default): ends expired
 * sessions (their live queries re-run signed out), deletes anonymous users inactive for
 * `anonymousUserInactiveMs` (after the app's `onDeleteUser` hook), and drops expired codes,
 * verifiers and rate-limit buckets that have refilled.
 *
 * Each run is one transaction of bounded size; when a batch was full, the run schedules
 * itself again at once, so a backlog drains in steps instead of one huge transaction.
 */
import type { DatabaseWriter } from "../server/database.js";
import type { AnyDataModel } from "../server/dataModel.js";
import type { Id } from "../values/index.js";
import type { MutationCtx, ResolvedAuthConfig } from "./config.js";
import { deleteUser } from "./users.js";

type Db = DatabaseWriter<AnyDataModel>;

const BATCH = 100;
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

export async function runCleanup(ctx: MutationCtx, config: ResolvedAuthConfig, now: number): Promise<CleanupReport> {
  const db = ctx.db as Db;
  const sessions = await deleteBelow(db, "authSessions", "by_expiresAt", "expiresAt", now + 1);
  const codes = await deleteBelow(db, "authVerificationCodes", "by_expiresAt", "expiresAt", now + 1);
  const verifiers = await deleteBelow(db, "authVerifiers", "by_expiresAt", "expiresAt", now + 1);
  // A bucket untouched for the longest window is full again: the row says nothing any more.
  const longestWindow = Math.max(...Object.values(config.rateLimits).map((limit) => limit.windowMs));
  const rateLimits = await deleteBelow(db, "authRateLimits", "by_updatedAt", "updatedAt", now - longestWindow);

  const cutoff = now - config.cleanup.anonymousUserInactiveMs;
  const stale = await db
    .query("authActivity")
    .withIndex("by_isAnonymous_lastActiveAt", (q) => q.eq("isAnonymous", true).lt("lastActiveAt", cutoff))
    .take(USER_BATCH);
  for (const row of stale) await deleteUser(ctx, config, row.userId as Id<"users">);

  const more = [sessions, codes, verifiers, rateLimits].some((n) => n === BATCH) || stale.length === USER_BATCH;
  return { sessions, anonymousUsers: stale.length, codes, verifiers, rateLimits, more };
}

/**
 * Token-bucket rate limits kept in `authRateLimits`, so they hold across restarts and
 * servers. A bucket holds up to `limit` tokens and refills evenly over `windowMs`; each event
 * takes one. Two concurrent takes from one bucket read and write the same row, so the engine
 * serializes them (one retries): a burst can never take more than the bucket holds.
 */
import { walkinError } from "../values/index.js";
import type { DatabaseWriter } from "../server/database.js";
import type { AnyDataModel } from "../server/dataModel.js";
import type { RateLimit } from "./config.js";

type Db = DatabaseWriter<AnyDataModel>;

interface BucketRow {
  _id: string;
  tokens: number;
  updatedAt: number;
}

async function bucket(db: Db, key: string): Promise<BucketRow | null> {
  return (await db.query("authRateLimits").withIndex("by_key", (q) => q.eq("key", key)).first()) as BucketRow | null;
}

/** Tokens left in a bucket at `now`. */
function available(row: { tokens: number; updatedAt: number } | null, limit: RateLimit, now: number): number {
  if (!row) return limit.limit;
  return Math.min(limit.limit, row.tokens + ((now - row.updatedAt) * limit.limit) / limit.windowMs);
}

/**
 * Takes one token or throws RATE_LIMITED (with `data.retryAfterMs`); the throw aborts the
 * calling mutation, so a refused event changes nothing. `what` names the event in the error.
 */
export async function takeToken(db: Db, key: string, limit: RateLimit, now: number, what: string): Promise<void> {
  const row = await bucket(db, key);
  const tokens = available(row, limit, now);
  if (tokens < 1) {
    const retryAfterMs = Math.ceil(((1 - tokens) * limit.windowMs) / limit.limit);
    throw walkinError("RATE_LIMITED", `Too many ${what}. Try again in ${describe(retryAfterMs)}.`, { retryAfterMs });
  }
  if (row) await db.patch(row._id as never, { tokens: tokens - 1, updatedAt: now });
  else await db.insert("authRateLimits", { key, tokens: tokens - 1, updatedAt: now });
}

/** Refills a bucket (a successful sign-in forgives earlier failures). */
export async function resetBucket(db: Db, key: string): Promise<void> {
  const row = await bucket(db, key);
  if (row) await db.delete(row._id as never);
}

function describe(ms: number): string {
  const seconds = Math.ceil(ms / 1000);
  if (seconds < 120) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  return `${Math.ceil(seconds / 60)} minutes`;
}

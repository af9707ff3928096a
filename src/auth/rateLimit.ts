/**
 * Token-bucket rate limits kept in `authRateLimits`, so they hold across restarts and
 * servers. A bucket holds up to `limit` tokens and refills evenly over `windowMs`; each event
 * takes one. Two concurrent takes from one bucket read and write the same row, so the engine
 * serializes them (one retries): a burst can never take more than the bucket holds.
 *
 * ## What a row holds, and why `updatedAt` moves in steps
 *
 * A bucket's level is a line between takes: it rises at `limit / windowMs` tokens per ms (up
 * to `limit`) and drops by one at each take. A row stores one point of that line, `tokens` at
 * time `updatedAt`, and any point of the line says the same thing. The obvious point is the
 * last take itself, but then every take would change `updatedAt`, and with it the row's key in
 * the `by_updatedAt` index (which cleanup uses): two more index writes per take, and two more
 * versions for the history sweep to delete. Under a stream of anonymous sign-ins that index
 * churn was 6-10% of a sign-in's time (bench/auth).
 *
 * So `updatedAt` is the start of the take's step: `now` rounded down to a multiple of
 * `stepMs(windowMs)` (a minute, or a sixteenth of a short window), and `tokens` is the line's
 * level there, extrapolated back from the take: `tokensAfterTake - (now - updatedAt) * rate`.
 * It may be below zero; that is only where the line was, never what a caller sees. Step by
 * step, why the limit is exactly as before:
 *
 * 1. At any later time t, the level read is `min(limit, tokens + (t - updatedAt) * rate)`.
 *    With the extrapolated point, `tokens + (t - updatedAt) * rate` equals
 *    `tokensAfterTake + (t - now) * rate`: the value the take's own point would give. The same
 *    line, so the same answer at every t, and the same refusals and retry times.
 * 2. Each take reads the level at its `now` (1) and stores a point of the new line, so every
 *    take sees the line every earlier take left (the engine serializes them, see above).
 * 3. Within one step `updatedAt` stays the same: the take patches `tokens` alone, and the
 *    index key does not change. It changes at most once per step and bucket.
 * 4. Cleanup deletes a row only when its bucket is full again whatever it held. The point's
 *    level is at least `-stepMs * rate` (the level after a take is at least 0, and the point
 *    is at most one step earlier), so the line reaches `limit` by
 *    `updatedAt + stepMs + windowMs`: cleanup waits the longest window and its step
 *    (`refilledBefore`). A row written before this layout (its point the take itself) is full
 *    by `updatedAt + windowMs`, sooner.
 */
import { walkinError } from "../values/index.js";
import type { DatabaseWriter } from "../server/database.js";
import type { AnyDataModel } from "../server/dataModel.js";
import type { RateLimit } from "./config.js";

type Db = DatabaseWriter<AnyDataModel>;

/** The stored point of a bucket's line (see above). */
export interface BucketPoint {
  tokens: number;
  updatedAt: number;
}

interface BucketRow extends BucketPoint {
  _id: string;
}

/**
 * How far apart a bucket's `updatedAt` values are: a minute, or a sixteenth of a window shorter
 * than 16 minutes (whole ms, at least one).
 */
export function stepMs(windowMs: number): number {
  return Math.max(1, Math.floor(Math.min(60_000, windowMs / 16)));
}

/**
 * A level this close below a whole token counts as one. The stored point is a step away from
 * the take, so the level is computed through a few more roundings than the take's own point
 * would need: where the exact level is 1 (a bucket refilled to the token at that very ms), the
 * double may come out a few units in the last place short. This keeps such a take allowed, as
 * it is with exact arithmetic; a billionth of a token is no loosening anyone can use.
 */
const ROUNDING = 1e-9;

/** Tokens in a bucket at `now` (a missing row is a full bucket). */
export function available(row: BucketPoint | null, limit: RateLimit, now: number): number {
  if (!row) return limit.limit;
  return Math.min(limit.limit, row.tokens + ((now - row.updatedAt) * limit.limit) / limit.windowMs);
}

/**
 * One take at `now`: the point to store (at the start of `now`'s step), or how long until a
 * token is there when the bucket is empty.
 */
export function take(row: BucketPoint | null, limit: RateLimit, now: number): BucketPoint | { retryAfterMs: number } {
  const tokens = available(row, limit, now);
  if (tokens < 1 - ROUNDING) return { retryAfterMs: Math.ceil(((1 - tokens) * limit.windowMs) / limit.limit) };
  return pointAt(tokens - 1, limit, now);
}

/**
 * The point to store for a bucket that holds `tokens` at `now`: the same level, moved back to
 * the start of `now`'s step (what it held then, given the refill since).
 */
function pointAt(tokens: number, limit: RateLimit, now: number): BucketPoint {
  const step = stepMs(limit.windowMs);
  const updatedAt = Math.floor(now / step) * step;
  return { tokens: tokens - ((now - updatedAt) * limit.limit) / limit.windowMs, updatedAt };
}

/**
 * `count` tokens given back at `now` (events that took one each and turned out not to count):
 * the point to store, or `null` when the bucket is then full, which a missing row says as well.
 * The level rises by `count` and never above `limit`. It is then at least 1, above what any
 * take leaves, so cleanup's wait still holds (rule 4).
 */
export function giveBack(row: BucketPoint, limit: RateLimit, now: number, count = 1): BucketPoint | null {
  const tokens = available(row, limit, now) + count;
  if (tokens >= limit.limit - ROUNDING) return null;
  return pointAt(tokens, limit, now);
}

/** Rows whose `updatedAt` is before this are full again for every limit in `limits` (rule 4). */
export function refilledBefore(limits: readonly RateLimit[], now: number): number {
  const longest = Math.max(...limits.map((limit) => limit.windowMs));
  return now - longest - stepMs(longest);
}

async function bucket(db: Db, key: string): Promise<BucketRow | null> {
  return (await db.query("authRateLimits").withIndex("by_key", (q) => q.eq("key", key)).first()) as BucketRow | null;
}

/**
 * Takes one token or throws RATE_LIMITED (with `data.retryAfterMs`); the throw aborts the
 * calling mutation, so a refused event changes nothing. `what` names the event in the error.
 */
export async function takeToken(db: Db, key: string, limit: RateLimit, now: number, what: string): Promise<void> {
  const row = await bucket(db, key);
  const next = take(row, limit, now);
  if ("retryAfterMs" in next) {
    throw walkinError("RATE_LIMITED", `Too many ${what}. Try again in ${describe(next.retryAfterMs)}.`, { retryAfterMs: next.retryAfterMs });
  }
  await storePoint(db, key, row, next);
}

/** Stores a bucket's new point, rewriting `updatedAt` (and its index entry) only when it moved (rule 3). */
async function storePoint(db: Db, key: string, row: BucketRow | null, next: BucketPoint): Promise<void> {
  if (!row) await db.insert("authRateLimits", { key, ...next });
  else if (row.updatedAt === next.updatedAt) await db.patch(row._id as never, { tokens: next.tokens });
  else await db.patch(row._id as never, next);
}

/**
 * Gives back `count` tokens `takeToken` took from `key`'s bucket (`giveBack`). Like a take, it
 * reads and writes the bucket's row, so the engine orders it with every other take and refill.
 */
export async function giveBackTokens(db: Db, key: string, limit: RateLimit, now: number, count: number): Promise<void> {
  // A negative count would take tokens without the refusal a take gives.
  if (!(Number.isInteger(count) && count > 0)) throw walkinError("INTERNAL", `giveBackTokens: count must be a whole number above 0, got ${count}.`);
  const row = await bucket(db, key);
  if (!row) return; // full already
  const next = giveBack(row, limit, now, count);
  if (next === null) await db.delete(row._id as never);
  else await storePoint(db, key, row, next);
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

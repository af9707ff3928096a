/**
 * Auth sessions: creating one for a sign-in, checking a token on every call (the engine's
 * authenticate hook), sliding expiry with bounded writes, revocation and listing.
 *
 * The check runs inside the calling function's own transaction, and reads the session row
 * there: so a revoked session (row deleted) re-runs every live query that read the identity,
 * which then sees no one; and the next call with the token is unauthenticated. No JWT or
 * cache stands between a revocation and its effect.
 *
 * Sliding expiry, bounded: a call on a session whose recorded use is older than
 * `activityResolutionMs` asks for one deferred write (keyed by session, so concurrent calls
 * make one) that moves `lastUsedAt` and `expiresAt`. A busy session costs one write an hour
 * by default, however many calls it makes.
 *
 * Activity writes never starve a revocation, nor revive what it ended. Step by step, with
 * session row S used on every node while it is revoked (sign-out, revokeSession,
 * invalidateSessions, a password reset, a rotating sign-in):
 *  1. A call under S's token reads S (the token check, in its own transaction) and asks for
 *     an activity write: a deferred write that reads S again and rewrites it (`touchSession`).
 *  2. The revocation R reads S (its caller's token check, or the user's sessions) and deletes
 *     or expires it. An activity write that commits while R runs makes R conflict and re-run.
 *  3. R that lost to an activity write claims the key it lost on; from then on, on every node,
 *     activity writes of S give way (commit nothing) until R has committed (the engine's
 *     deferredWrites.ts writes out why none slips through). So R loses to activity writes at
 *     most once per session row it reads, and commits in a bounded number of tries however
 *     busy S is and however slow R runs: being slow no longer lets bookkeeping starve it.
 *  4. An activity write that read S before R committed conflicts with R (R wrote S) and re-runs:
 *     it then finds S deleted, or expired at 0, and writes nothing. One that reads S after R
 *     finds the same. None writes S as it was before R, so none revives it; and the token check
 *     refuses a deleted or expired row whatever the activity record says.
 *
 * Anonymous sessions are the only key to their user (there is no password to sign in with
 * again), so they have no absolute lifetime: they end after `cleanup.anonymousUserInactiveMs`
 * without use, or when signed out or revoked. Ending one does not delete it but expires it
 * now; the cleanup then deletes it and, if it was the user's last, the user (after the app's
 * `onDeleteUser`). So an abandoned anonymous user is found without any per-user activity row.
 */
import type { AuthenticateCtx } from "../server/hooks.js";
import type { DatabaseReader, DatabaseWriter } from "../server/database.js";
import type { AnyDataModel, GenericDocument } from "../server/dataModel.js";
import type { UserIdentity } from "../server/registration.js";
import type { Id } from "../values/index.js";
import type { SessionId } from "../sessions/sessionId.js";
import type { ResolvedAuthConfig } from "./config.js";
import { hashesEqual, parseSessionToken } from "./tokens.js";

type Db = DatabaseWriter<AnyDataModel>;
export const ISSUER = "walkin";

export interface AuthSessionDoc extends GenericDocument {
  _id: Id<"authSessions">;
  userId: Id<"users">;
  /** Only on sessions made for `wk1` tokens (see tokens.ts). */
  keyHash?: string;
  secretHash: string;
  provider: string;
  isAnonymous: boolean;
  createdAt: number;
  lastUsedAt: number;
  expiresAt: number;
  absoluteExpiresAt: number;
  userAgent?: string;
  ipAddress?: string;
  clientSessionId?: SessionId;
  /** The client session ID this session's sign-in rotated away from (`newSessionId`): guests.ts. */
  rotatedFromClientSessionId?: SessionId;
  /** On an ended guest session whose user's deletion failed (too large, or onDeleteUser threw): the cleanup passes over it until then (cleanup.ts). */
  cleanupRetryAt?: number;
}

/** The identity a session gives its calls (`ctx.auth.getUserIdentity()`). */
export function identityOf(session: AuthSessionDoc): UserIdentity {
  return {
    subject: session.userId,
    issuer: ISSUER,
    tokenIdentifier: `${ISSUER}|${session.userId}`,
    authSessionId: session._id,
    isAnonymous: session.isAnonymous,
    provider: session.provider,
  };
}

/** The live session row for a token, or null (malformed, unknown, wrong secret, expired). */
export async function findSession(db: DatabaseReader<AnyDataModel>, token: string, now: number): Promise<AuthSessionDoc | null> {
  const parsed = parseSessionToken(token);
  if (!parsed) return null;
  let row: AuthSessionDoc | null;
  if ("sessionId" in parsed) {
    // A well-formed ID of another table (a user's, a message's) must find nothing, not that document.
    const id = db.normalizeId("authSessions", parsed.sessionId);
    row = id ? ((await db.get(id)) as AuthSessionDoc | null) : null;
  } else {
    const { keyHash } = parsed;
    row = (await db.query("authSessions").withIndex("by_keyHash", (q) => q.eq("keyHash", keyHash)).first()) as AuthSessionDoc | null;
  }
  if (!row || !hashesEqual(row.secretHash, parsed.secretHash) || row.expiresAt <= now) return null;
  return row;
}

/** The engine's authenticate hook: the token's identity, checked in the caller's transaction. */
export function authenticator(config: ResolvedAuthConfig) {
  return async (ctx: AuthenticateCtx, token: string): Promise<UserIdentity | null> => {
    const session = await findSession(ctx.db, token, ctx.now);
    if (!session) return null;
    if (ctx.now - session.lastUsedAt >= config.session.activityResolutionMs && session.expiresAt < session.absoluteExpiresAt) {
      ctx.writeLater(`walkin-auth-touch:${session._id}`, (db) => touchSession(db, session._id, ctx.now, Date.now(), config));
    }
    return identityOf(session);
  };
}

/**
 * The activity write of a call made at `calledAt` (when its token was accepted), landing at `now`.
 * Whether there is anything to extend is the call's question, not the landing's: a call made
 * within the idle limit whose write lands after the old expiry (a busy node, retries after
 * conflicts) still extends the session. Otherwise the session ended though it was just used,
 * and for a guest the cleanup then deleted the user with what that very call wrote. A revoked
 * session (deleted, or expired at 0) is still never extended.
 */
async function touchSession(db: Db, id: Id<"authSessions">, calledAt: number, now: number, config: ResolvedAuthConfig): Promise<void> {
  const session = (await db.get(id)) as AuthSessionDoc | null;
  if (!session || session.expiresAt <= calledAt) return; // revoked (or ended) before the call: nothing to extend
  // Recorded within the resolution already: a call that read the row before an earlier touch
  // committed asked again after its key was released. Writing anyway would break the bound.
  if (now - session.lastUsedAt < config.session.activityResolutionMs) return;
  await db.patch(id, { lastUsedAt: now, expiresAt: Math.min(session.absoluteExpiresAt, now + idleLimit(session.isAnonymous, config)) });
}

/** How long a session may go unused. */
function idleLimit(isAnonymous: boolean, config: ResolvedAuthConfig): number {
  return isAnonymous ? config.cleanup.anonymousUserInactiveMs : config.session.inactiveDurationMs;
}

/** `absoluteExpiresAt` of anonymous sessions: none (see the header). */
const NEVER = Number.MAX_SAFE_INTEGER;

/**
 * Ends a session now: its token stops working and its live queries re-run signed out. A real
 * user's session row is deleted; an anonymous one is expired instead, so that the cleanup
 * deletes the user with its last session (nothing could ever sign in as it again).
 */
export async function endAuthSession(db: Db, session: AuthSessionDoc): Promise<void> {
  // Expired at 0, not at this node's "now": every node compares expiresAt with its own clock,
  // and on a node whose clock is behind this one's, a session expired "now" was still live
  // for the difference (it accepted the token, committed under it, signed it in again).
  if (session.isAnonymous) await db.patch(session._id, { expiresAt: 0 });
  else await db.delete(session._id);
}

/**
 * Whether a session was ended for good: only an anonymous one ended by `endAuthSession` (expired
 * at 0; a real one is deleted). One past its expiry is not: a call made just before that expiry
 * may still have its activity write on the way, and that write extends it (`touchSession`). So
 * whatever ends sessions (a password reset, `revokeOtherSessions`, `revokeSession`) ends those
 * too, rather than pass them over as already ended. Step by step, with session S expiring at E:
 *  1. a call under S at E - 1 is accepted and asks for an activity write (deferred, or delayed by
 *     conflicts on a busy node);
 *  2. at E + 1 a reset ends every session of the user. S looks expired: passed over, it kept its
 *     row, its `expiresAt` E and its token hash;
 *  3. the activity write lands: the call it records came before E, so it moves `expiresAt` a
 *     whole idle limit on. The token works again after the reset that should have ended it.
 * Ended in step 2 instead, S is deleted (or expired at 0), and step 3 writes nothing.
 */
export function endedForGood(session: AuthSessionDoc): boolean {
  return session.expiresAt <= 0;
}

export async function createSession(
  db: Db,
  config: ResolvedAuthConfig,
  input: {
    userId: Id<"users">;
    provider: string;
    isAnonymous: boolean;
    secretHash: string;
    now: number;
    userAgent?: string | null;
    ipAddress?: string | null;
    clientSessionId?: SessionId | null;
    rotatedFromClientSessionId?: SessionId | null;
    /** The user was inserted by this sign-in: it has no other sessions to count (a guest's first, the common case). */
    newUser?: boolean;
  },
): Promise<Id<"authSessions">> {
  const { now } = input;
  const absoluteExpiresAt = input.isAnonymous ? NEVER : now + config.session.totalDurationMs;
  const id = await db.insert("authSessions", {
    userId: input.userId,
    secretHash: input.secretHash,
    provider: input.provider,
    isAnonymous: input.isAnonymous,
    createdAt: now,
    lastUsedAt: now,
    expiresAt: Math.min(absoluteExpiresAt, now + idleLimit(input.isAnonymous, config)),
    absoluteExpiresAt,
    ...(input.userAgent ? { userAgent: input.userAgent.slice(0, 256) } : {}),
    ...(input.ipAddress ? { ipAddress: input.ipAddress.slice(0, 64) } : {}),
    ...(input.clientSessionId ? { clientSessionId: input.clientSessionId } : {}),
    ...(input.rotatedFromClientSessionId ? { rotatedFromClientSessionId: input.rotatedFromClientSessionId } : {}),
  });
  if (!input.newUser) await endSessionsBeyondLimit(db, input.userId, id as Id<"authSessions">, config.session.maxPerUser, now);
  return id as Id<"authSessions">;
}

/**
 * A database written before the limit may hold more live sessions than it: each sign-in ends at
 * most this many of them, so that it stays well inside a transaction's limits while they drain.
 */
const MAX_ENDED_PER_SIGN_IN = 1_000;

/**
 * Keeps at most `max` live sessions of `userId` (the new one among them), ending the least
 * recently used of the others, in the sign-in's own transaction. Why a limit at all: ending
 * sessions is one transaction (`invalidateSessions`: a password reset, revokeOtherSessions),
 * with a transaction's limits. Without one, whoever knew the password could sign in again and
 * again (each success refills the rate limits) until the account had more sessions than one
 * transaction may end; then the reset and "sign out everywhere" failed, and their tokens kept
 * working. `session.maxPerUser` is at most 1,000 (config.ts), so that always fits.
 */
async function endSessionsBeyondLimit(db: Db, userId: Id<"users">, newSessionId: Id<"authSessions">, max: number, now: number): Promise<void> {
  const sessions = (await db.query("authSessions").withIndex("by_userId", (q) => q.eq("userId", userId)).collect()) as unknown as AuthSessionDoc[];
  const others = sessions.filter((s) => s._id !== newSessionId && s.expiresAt > now);
  if (others.length < max) return;
  others.sort((a, b) => b.lastUsedAt - a.lastUsedAt || b.createdAt - a.createdAt || b._creationTime - a._creationTime);
  for (const session of others.slice(max - 1, max - 1 + MAX_ENDED_PER_SIGN_IN)) await endAuthSession(db, session);
}

/**
 * Ends every session of a user but those in `except`: their live queries re-run signed out
 * and their tokens stop working at once. Returns how many ended.
 * @example
 * // after a password change, sign out everywhere else
 * await invalidateSessions(ctx, userId, { except: [await getAuthSessionId(ctx)] });
 */
export async function invalidateSessions(
  ctx: { db: DatabaseWriter<any> },
  userId: Id<"users">,
  { except = [] }: { except?: ReadonlyArray<Id<"authSessions"> | null> } = {},
): Promise<number> {
  const db = ctx.db as Db;
  const now = Date.now();
  const sessions = (await db.query("authSessions").withIndex("by_userId", (q) => q.eq("userId", userId)).collect()) as unknown as AuthSessionDoc[];
  let ended = 0;
  for (const session of sessions) {
    // Past its expiry is not ended for good: see `endedForGood`. Counted only if it still worked.
    if (except.includes(session._id) || endedForGood(session)) continue;
    if (session.expiresAt > now) ended++;
    await endAuthSession(db, session);
  }
  return ended;
}

/** What `listSessions` shows of a session: no hashes, nothing a client could replay. */
export function describeSession(session: AuthSessionDoc, currentId: string | null) {
  return {
    _id: session._id,
    provider: session.provider,
    isAnonymous: session.isAnonymous,
    createdAt: session.createdAt,
    lastUsedAt: session.lastUsedAt,
    expiresAt: session.expiresAt,
    userAgent: session.userAgent ?? null,
    ipAddress: session.ipAddress ?? null,
    isCurrent: session._id === currentId,
  };
}

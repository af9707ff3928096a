/**
 * Guests (anonymous users), and which guest a client session ID (walkin/sessions) leads to.
 *
 * An anonymous sign-in that sends a client session ID S, without a token, gets the guest that S
 * signed in as, so that one visitor is one user: a reload of a tab that kept its token in
 * memory, another tab of a browser whose tabs share one ID, a retry. A sign-in may also rotate
 * the ID (`newSessionId`: S → A), and its auth session then belongs to A: A is what the client
 * sends from now on, and where the app's session-keyed rows moved (`transferSession`). But S
 * can still come back: another tab sharing a per-browser S that has not seen the switch to A
 * yet, or a retry of a sign-in whose answer was lost (that client never learned A and is still
 * on S). So an auth session records both IDs, `clientSessionId` (A) and
 * `rotatedFromClientSessionId` (S), each indexed, and S finds its guest through either.
 * Recording only A made that second sign-in a second guest, with the visitor's data split
 * between the two. But a rotation is also there so that the old ID stops being a key to what
 * the client does next (an ID seen in a log, a copied tab): so S leads to the guest through
 * `rotatedFromClientSessionId` only for `session.rotatedIdGraceMs` after the rotation (2
 * minutes by default), which a retry or a tab catching up fits in, and never to an account
 * (signing up ends it at once).
 *
 * What the second sign-in (S → B, while the guest's session from S → A is live) gets: the same
 * guest, a session of its own recording B (the ID this client moves to) and S; and the rows the
 * first rotation moved to A move on to B, after those still under S. A retry's client never
 * learned A, so rows left under A would be reached by no one; tabs sharing a per-browser ID
 * follow the newest ID, so they all end up on B too. (Two tabs that each hold S on their own, a
 * tab duplicated with its sessionStorage, are the one case where the tab on A sees its rows move
 * to the other tab: still one user, the one both tabs are signed in as.)
 *
 * Two such sign-ins at once (S → A and S → B, neither finding a guest yet) make one guest,
 * step by step in serializable transactions:
 *  1. both read the range S of `by_clientSessionId` and of `by_rotatedFromClientSessionId`:
 *     both empty;
 *  2. both insert a guest and an auth session `{ clientSessionId: A | B,
 *     rotatedFromClientSessionId: S }`;
 *  3. the first commits; its session's `by_rotatedFromClientSessionId` entry is at S, inside the
 *     range the second read in step 1;
 *  4. so the engine discards the second's writes and runs it again: it finds the first's session
 *     through that index, signs in as its guest and moves the rows from A to B.
 * So every sign-in with S writes S into one of the two indexes (`by_clientSessionId` when it does
 * not rotate, `by_rotatedFromClientSessionId` when it does) and reads both ranges at S: whichever
 * commits first, the other read what it wrote. When a rotation wrote only A (before), step 3
 * wrote nowhere near S, nothing conflicted, and both guests stayed.
 *
 * Only this lookup reads `rotatedFromClientSessionId`. What ends a guest ends the way back with
 * it: sign-out and revocation expire its sessions, the cleanup deletes them, an upgrade, a merge
 * and a deletion delete them, and an ended session, or one of a user who signed up, leads
 * nowhere. A database from before the field has sessions without it, found as they always were.
 */
import type { Id } from "../values/index.js";
import type { DatabaseWriter } from "../server/database.js";
import type { AnyDataModel } from "../server/dataModel.js";
import type { SessionId } from "../sessions/sessionId.js";
import type { AuthSessionDoc } from "./authSessions.js";
import { sha256 } from "./tokens.js";

type Db = DatabaseWriter<AnyDataModel>;

/**
 * Whether `userId` is a user still without credentials. A session's `isAnonymous` says how that
 * session signed in; only the user says whether it signed up since. An upgrade ends the guest's
 * other sessions (users.ts, `createOrUpgradeUser`), but a database written before it did may
 * still hold such sessions, so whatever would treat their user as a guest (delete it, merge it
 * away, sign in as it) asks the user. A missing `isAnonymous` (an app's own
 * `createOrUpdateUser`) leaves the session's word standing.
 */
export async function isGuest(db: Db, userId: Id<"users">): Promise<boolean> {
  const user = await db.get(userId);
  return user !== null && user.isAnonymous !== false;
}

/** The guest a client session ID leads to (see the top). */
export interface GuestOfClientSession {
  userId: Id<"users">;
  /**
   * The ID the guest's rows under the sent ID moved to when a live session of it rotated from
   * that ID (the newest such session's), or null: where the rows are to be carried from.
   */
  rotatedTo: SessionId | null;
}

/**
 * The guest whose live anonymous session was signed in with `clientSessionId`, or rotated from
 * it less than `rotatedIdGraceMs` ago, the newest such session's; null if none (ended
 * sessions, revoked ones and users who signed up since lead nowhere).
 */
export async function guestOfClientSession(db: Db, clientSessionId: SessionId | undefined, now: number, rotatedIdGraceMs: number): Promise<GuestOfClientSession | null> {
  if (!clientSessionId) return null;
  // Both ranges, in full: each is where a concurrent sign-in with this ID writes (see the top).
  // A session past the grace is read and passed over: the read still covers the range.
  const signedInWith = await sessionsAt(db, "by_clientSessionId", "clientSessionId", clientSessionId);
  const isLive = (s: AuthSessionDoc) => s.isAnonymous && s.expiresAt > now;
  const rotatedFrom = (await sessionsAt(db, "by_rotatedFromClientSessionId", "rotatedFromClientSessionId", clientSessionId))
    .filter((s) => isLive(s) && now - s.createdAt < rotatedIdGraceMs);
  for (const session of [...signedInWith.filter(isLive), ...rotatedFrom].sort(newestFirst)) {
    if (!(await isGuest(db, session.userId))) continue;
    const rotation = rotatedFrom.filter((s) => s.userId === session.userId).sort(newestFirst)[0];
    return { userId: session.userId, rotatedTo: rotation?.clientSessionId ?? null };
  }
  return null;
}

async function sessionsAt(db: Db, index: string, field: string, clientSessionId: SessionId): Promise<AuthSessionDoc[]> {
  return (await db.query("authSessions").withIndex(index, (q) => q.eq(field, clientSessionId)).collect()) as unknown as AuthSessionDoc[];
}

const newestFirst = (a: AuthSessionDoc, b: AuthSessionDoc) => b.createdAt - a.createdAt || b._creationTime - a._creationTime;

/**
 * What a new auth session records of the client's session IDs: the one the client goes on with
 * (`to`, else `from`), and `from` when the sign-in rotated away from it.
 */
export function clientSessionFields(clientSession: { from?: SessionId; to?: SessionId } | undefined): {
  clientSessionId: SessionId | null;
  rotatedFromClientSessionId: SessionId | null;
} {
  const from = clientSession?.from ?? null;
  const to = clientSession?.to ?? null;
  return { clientSessionId: to ?? from, rotatedFromClientSessionId: to !== null && from !== null && to !== from ? from : null };
}

/**
 * The bucket of new sessions a guest gets through client session IDs (`rateLimits.anonymousSignIn`,
 * per guest). Keyed by the guest, not by the ID sent: each sign-in through an ID may rotate it
 * (S → X1, then X1 → X2, ...), and a bucket per ID would give every step of such a chain a
 * full bucket of its own, so one visitor could sign in without end.
 */
export function guestSessionsBucketKey(userId: Id<"users">): string {
  return `anonymousAgain|${sha256(userId)}`;
}

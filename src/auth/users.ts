/**
 * Who a sign-in signs in, inside one transaction: a new anonymous user, the same anonymous
 * user again, an anonymous user upgraded in place, or an existing account with the caller's
 * anonymous user merged into it. Then the caller's old session ends and a new one begins
 * (rotation: every sign-in gets a fresh token).
 *
 * Because all of it is one mutation, a throwing `mergeAnonymousUser` hook, a rate limit or a
 * conflict leaves everything as it was: the client keeps its old token and its data.
 */
import { isIPv6 } from "node:net";
import { walkinError, type Id, type Value } from "../values/index.js";
import type { DatabaseWriter } from "../server/database.js";
import type { AnyDataModel } from "../server/dataModel.js";
import { endSession, loginsClash, transferSession } from "../sessions/anonymousUsers.js";
import type { SessionId } from "../sessions/sessionId.js";
import type { MutationCtx, ResolvedAuthConfig } from "./config.js";
import { createSession, type AuthSessionDoc } from "./authSessions.js";
import { callbackProvider, checkReturnedUser } from "./callbacks.js";
import { giveBackTokens, resetBucket, takeToken } from "./rateLimit.js";
import { consumeCode, findAccount, type CodeUse } from "./codes.js";
import { clientSessionFields, guestOfClientSession, guestSessionsBucketKey, isGuest } from "./guests.js";
import type { SignInMode } from "./providers/types.js";

type Db = DatabaseWriter<AnyDataModel>;

export interface SignInInput {
  provider: string;
  mode: SignInMode;
  /** See `CompleteSignIn.userId`. */
  userId?: string;
  /** See `CompleteSignIn.verifiedAccounts`. */
  verifiedAccounts?: Array<{ provider: string; providerAccountId: string; secret: string }>;
  providerAccountId?: string;
  secret?: string;
  profile?: Record<string, Value>;
  resetRateLimit?: string;
  /** See `CompleteSignIn.onlyIfSignedIn`. */
  onlyIfSignedIn?: boolean;
  /** See `CompleteSignIn.verifiedSecret`. */
  verifiedSecret?: string;
  /** See `CompleteSignIn.consumeCode`. */
  consumeCode?: CodeUse;
  /**
   * Password attempts this sign-in's own `passwordAttempt` calls took from the network of
   * `clientIp` (walkinAuth.ts counts them): the password was right, so they are given back.
   */
  refundNetworkAttempts?: number;
  /** sha256 of the new session's secret (the token is made from it and the session's ID). */
  secretHash: string;
  clientIp?: string | null;
  userAgent?: string | null;
  /** The client's session IDs (walkin/sessions): data moves from `from` to `to` on success. */
  clientSession?: { from?: SessionId; to?: SessionId };
}

export type SignInOutcome =
  | { kind: "signedIn"; userId: Id<"users">; isAnonymous: boolean; authSessionId: Id<"authSessions"> }
  | { kind: "unchanged"; userId: Id<"users">; isAnonymous: boolean };

/** A sign-up's refusal when the account exists (sign-up says so: without email verification there is no way around that). */
export const accountExists = () => walkinError("APPLICATION", "An account with these details already exists. Sign in instead.");

/** The session the caller's token belongs to, read in this transaction. */
export async function callerSession(ctx: MutationCtx): Promise<AuthSessionDoc | null> {
  const identity = await ctx.auth.getUserIdentity();
  if (!identity || typeof identity.authSessionId !== "string") return null;
  return (await ctx.db.get(identity.authSessionId as Id<"authSessions">)) as AuthSessionDoc | null;
}

export async function signInUser(ctx: MutationCtx, config: ResolvedAuthConfig, input: SignInInput): Promise<SignInOutcome> {
  const db = ctx.db as Db;
  const now = Date.now();
  // First, so that a refusal anywhere below (an app's hook) undoes it with everything else.
  if (input.consumeCode) await consumeCode(ctx, input.consumeCode, now);
  const current = await callerSession(ctx);
  let userId: Id<"users">;
  let isAnonymous = false;
  /** A user this sign-in inserted: it has no other sessions, so the sessions limit need not look. */
  let inserted: Id<"users"> | null = null;
  /** Where an earlier rotation from the caller's client session ID moved its rows (guests.ts). */
  let rotatedTo: SessionId | null = null;

  if (input.mode === "anonymous") {
    // Already signed in (anonymously or not): that user again, and the token stays valid.
    if (current) return { kind: "unchanged", userId: current.userId, isAnonymous: current.isAnonymous };
    // The provider saw a session and so ran no CAPTCHA; that session has ended since. Creating a
    // user now would be a new user that passed no check, so the caller starts over.
    if (input.onlyIfSignedIn) throw walkinError("UNAUTHENTICATED", "Your session ended while you were signing in. Call signIn again.");
    const from = input.clientSession?.from;
    const previous = await guestOfClientSession(db, from, now, config.session.rotatedIdGraceMs);
    if (previous) {
      // A new session for a guest found by its client session ID (a tab whose token is gone: a
      // reload with tokens kept in memory, or another tab of a browser whose tabs share the ID
      // but keep tokens of their own; also a sign-in that still sends the ID an earlier one
      // rotated away from, guests.ts). Without a limit, one ID minted sessions without end,
      // skipping the network's. Neither of the other ways fits: ending the guest's other sessions
      // with this ID would sign those other tabs out, and they would take turns signing each
      // other out; the network's bucket would refuse a reload because others on that network
      // used it up. The guest's own bucket counts only its own new sessions (guests.ts says why
      // the guest's, not the ID's).
      if (input.clientIp && from) await takeToken(db, guestSessionsBucketKey(previous.userId), config.rateLimits.anonymousSignIn, now, "anonymous sign-ins as this guest");
      userId = previous.userId;
      rotatedTo = previous.rotatedTo;
    } else {
      if (input.clientIp) await takeToken(db, networkBucketKey("anonymous", input.clientIp), config.rateLimits.anonymousSignIn, now, "anonymous sign-ins from this network");
      userId = await createOrUpdateUser(ctx, config, input, null, true, async () => (inserted = (await db.insert("users", { ...input.profile, isAnonymous: true })) as Id<"users">));
    }
    isAnonymous = true;
  } else if (input.mode === "user") {
    userId = await userNamedByProvider(ctx, input);
    // A secret checked before this transaction against a hash a reset has replaced since opens
    // nothing (the same word retrieveAccount gives for a wrong secret).
    for (const checked of input.verifiedAccounts ?? []) {
      const account = await findAccount(db, checked.provider, checked.providerAccountId);
      if (!account || account.secret !== checked.secret || account.userId !== userId) throw walkinError("UNAUTHENTICATED", "InvalidSecret");
    }
    isAnonymous = (await db.get(userId))!.isAnonymous === true;
    // As a sign-in to an existing account: the caller's guest and what it owns go to that user.
    if (!isAnonymous && current && current.isAnonymous && current.userId !== userId && (await isGuest(db, current.userId))) {
      await mergeAnonymousUser(ctx, config, current.userId, userId);
    }
  } else {
    const accountId = input.providerAccountId;
    if (!accountId) throw walkinError("INTERNAL", `Provider "${input.provider}" completed a ${input.mode} without an account ID.`);
    const account = await db.query("authAccounts").withIndex("by_provider_account", (q) => q.eq("provider", input.provider).eq("providerAccountId", accountId)).first();
    const mode = input.mode === "signInOrUp" ? (account ? "signIn" : "signUp") : input.mode;
    if (mode === "signUp") {
      if (account) throw accountExists();
      userId = await createOrUpgradeUser(ctx, config, input, current);
      await db.insert("authAccounts", { userId, provider: input.provider, providerAccountId: accountId, ...(input.secret ? { secret: input.secret } : {}) });
      // The app's createOrUpdateUser linked the sign-up to another user (one per email, say)
      // instead of turning the guest real: the guest's data goes to that user, as it does when
      // a guest signs in to an existing account. Left alone, the guest would keep it with no
      // session left to reach it, and the cleanup never deletes a user that owns nothing but
      // has no anonymous session either.
      if (current && current.isAnonymous && current.userId !== userId && (await isGuest(db, current.userId))) await mergeAnonymousUser(ctx, config, current.userId, userId);
    } else {
      if (!account) throw walkinError("INTERNAL", `Provider "${input.provider}" signed in to an account that does not exist.`);
      // The password was checked against this hash before this transaction began: a reset
      // that committed since replaced it, and the old password opens nothing any more. (The
      // provider's own refusal, word for word: nothing tells a reset from a wrong password.)
      if (input.verifiedSecret !== undefined && account.secret !== input.verifiedSecret) throw walkinError("UNAUTHENTICATED", "Invalid email or password.");
      userId = account.userId as Id<"users">;
      if (config.callbacks.createOrUpdateUser) {
        userId = await createOrUpdateUser(ctx, config, input, userId, false, async () => userId);
        if (userId !== account.userId) await db.patch(account._id, { userId }); // the app moved the account to another user
      }
      if (current && current.isAnonymous && current.userId !== userId && (await isGuest(db, current.userId))) await mergeAnonymousUser(ctx, config, current.userId, userId);
    }
  }

  if (input.resetRateLimit) await resetBucket(db, input.resetRateLimit);
  // The password was right: its attempts do not count against the caller's network.
  if (input.refundNetworkAttempts && input.clientIp) {
    await giveBackTokens(db, networkBucketKey("attempts", input.clientIp), config.rateLimits.passwordAttemptsPerNetwork, now, input.refundNetworkAttempts);
  }
  if (current && (await db.get(current._id))) await db.delete(current._id); // rotation: the old token ends here
  await config.callbacks.beforeSessionCreation?.(ctx, { userId }); // a throw refuses the sign-in: nothing is written
  const authSessionId = await createSession(db, config, {
    userId,
    provider: input.provider,
    isAnonymous,
    secretHash: input.secretHash,
    now,
    userAgent: input.userAgent,
    ipAddress: input.clientIp,
    ...clientSessionFields(input.clientSession),
    newUser: userId === inserted,
  });
  await carryClientSession(ctx, config, input.clientSession, rotatedTo);
  return { kind: "signedIn", userId, isAnonymous, authSessionId };
}

/** The user a provider completed a "user" sign-in with (`ConvexCredentials`' `authorize`), checked to exist now. */
async function userNamedByProvider(ctx: MutationCtx, input: SignInInput): Promise<Id<"users">> {
  const id = typeof input.userId === "string" ? ctx.db.normalizeId("users", input.userId) : null;
  if (id === null || (await ctx.db.get(id)) === null) {
    throw walkinError(
      "MISUSE",
      `Provider "${input.provider}" signed in as ${JSON.stringify(input.userId ?? null)}, which is not the ID of a users document. ` +
        "Its authorize must return { userId } of a user that exists (retrieveAccount and createAccount give one as user._id), or null to refuse.",
    );
  }
  return id as Id<"users">;
}

/** A new real user, or the caller's anonymous user turned real in place (same `_id`). */
async function createOrUpgradeUser(ctx: MutationCtx, config: ResolvedAuthConfig, input: SignInInput, current: AuthSessionDoc | null): Promise<Id<"users">> {
  const db = ctx.db as Db;
  const profile = input.profile ?? {};
  if (current?.isAnonymous && (await isGuest(db, current.userId))) {
    // The guest's other sessions (its other tabs, or sign-ins that raced its first) were keys to
    // a user without credentials. Left as they were, they would stay anonymous sessions of an
    // account that now has a password or a provider: the cleanup, a merge on their next sign-in
    // and an anonymous sign-in with their client session ID would all treat that account as an
    // abandoned guest (deleting it, or handing out a token to it without credentials). So the
    // upgrade ends them, as it ends the caller's own (rotation); their tabs sign in again.
    for (const other of await db.query("authSessions").withIndex("by_userId", (q) => q.eq("userId", current.userId)).collect()) {
      if (other._id !== current._id) await db.delete(other._id);
    }
    return createOrUpdateUser(ctx, config, input, current.userId, false, async () => {
      await db.patch(current.userId, { ...profile, isAnonymous: false });
      return current.userId;
    });
  }
  return createOrUpdateUser(ctx, config, input, null, false, () => db.insert("users", { ...profile, isAnonymous: false }) as Promise<Id<"users">>);
}

/**
 * The app's `createOrUpdateUser` when it has one (its returned ID is checked), else Walk-in's
 * own step `byDefault` followed by `afterUserCreatedOrUpdated`, as Convex Auth orders them.
 */
export async function createOrUpdateUser(
  ctx: MutationCtx,
  config: ResolvedAuthConfig,
  input: Pick<SignInInput, "provider" | "profile">,
  existingUserId: Id<"users"> | null,
  isAnonymous: boolean,
  byDefault: () => Promise<Id<"users">>,
): Promise<Id<"users">> {
  const args = {
    existingUserId,
    type: callbackProvider(config.providers, input.provider).type,
    provider: callbackProvider(config.providers, input.provider),
    profile: isAnonymous ? { ...input.profile, isAnonymous: true } : { ...input.profile },
    isAnonymous,
  };
  const { createOrUpdateUser: custom, afterUserCreatedOrUpdated } = config.callbacks;
  if (custom) return checkReturnedUser(ctx, await custom(ctx, args));
  const userId = await byDefault();
  await afterUserCreatedOrUpdated?.(ctx, { ...args, userId });
  return userId;
}

async function mergeAnonymousUser(ctx: MutationCtx, config: ResolvedAuthConfig, anonymousUserId: Id<"users">, userId: Id<"users">): Promise<void> {
  const outcome = await config.callbacks.mergeAnonymousUser?.({ ctx, anonymousUserId, userId });
  if (!(outcome && outcome.keepAnonymousUser)) return deleteUser(ctx, config, anonymousUserId);
  // Kept for the app (a merge it resolves later), but no one is signed in as it any more: its
  // other tabs' sessions end as they do when it is deleted. Deleted, not expired: the cleanup
  // finds abandoned guests through their ended sessions, and would delete the kept guest (and,
  // through onDeleteUser, the data the app kept it for) once the last of them ended.
  const db = ctx.db as Db;
  for (const session of await db.query("authSessions").withIndex("by_userId", (q) => q.eq("userId", anonymousUserId)).collect()) await db.delete(session._id);
}

/**
 * Deletes a user and everything auth keeps for it, after the app's `onDeleteUser` hook has
 * deleted the app's own data.
 */
export async function deleteUser(ctx: MutationCtx, config: ResolvedAuthConfig, userId: Id<"users">): Promise<void> {
  const db = ctx.db as Db;
  await config.callbacks.onDeleteUser?.(ctx, userId);
  for (const table of ["authSessions", "authAccounts"]) {
    for (const row of await db.query(table).withIndex("by_userId", (q) => q.eq("userId", userId)).collect()) {
      if (table === "authAccounts") await deleteCodesOf(db, row._id as Id<"authAccounts">);
      await db.delete(row._id);
    }
  }
  if (await db.get(userId)) await db.delete(userId);
}

async function deleteCodesOf(db: Db, accountId: Id<"authAccounts">): Promise<void> {
  for (const code of await db.query("authVerificationCodes").withIndex("by_accountId_purpose", (q) => q.eq("accountId", accountId)).collect()) {
    await db.delete(code._id);
  }
}

/**
 * What the per-IP limit counts by: an IPv4 address as it is (also one written IPv4-mapped,
 * `::ffff:10.0.0.1`), an IPv6 address by its /64. One host, or one home network, is given a
 * whole /64 and can send from any of its 2^64 addresses: counted per address, the limit would
 * hold no one back. A port is dropped (`10.0.0.1:51234`, `[2001:db8::1]:443`): some proxies
 * write one into X-Forwarded-For, and every connection comes from a new port, so counted with
 * it the limit would hold no one back either. Anything else (what an app's `clientIp`
 * answered) as it is.
 */
export function networkOf(ip: string): string {
  const v4 = /^(?:::ffff:)?(\d{1,3}(?:\.\d{1,3}){3})(?::\d{1,5})?$/i.exec(ip);
  if (v4) return v4[1]!;
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(ip);
  if (bracketed && isIPv6(bracketed[1]!)) return networkOf(bracketed[1]!);
  if (!isIPv6(ip)) return ip;
  // A zone (`%eth0`) is dropped; a dotted IPv4 tail (`64:ff9b::192.0.2.1`) is two groups.
  const plain = ip.replace(/%.*$/, "").toLowerCase().replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) => `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`);
  const [head = "", tail] = plain.split("::");
  const groups = (text: string | undefined) => (text ? text.split(":") : []);
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const full = [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  return `${full.slice(0, 4).map((group) => Number.parseInt(group, 16).toString(16)).join(":")}::/64`;
}

/**
 * The bucket of `ip`'s network for a per-network limit: "anonymous", anonymous sign-ins
 * (`rateLimits.anonymousSignIn`); "attempts", failed password sign-ins
 * (`rateLimits.passwordAttemptsPerNetwork`); "codeSends", reset codes asked for
 * (`rateLimits.codeSendsPerNetwork`); "signUps", password sign-ups (`rateLimits.signUpsPerNetwork`);
 * "redirects", redirect sign-ins (OAuth, OIDC) started (`rateLimits.redirectSignInsPerNetwork`).
 */
export function networkBucketKey(bucket: "anonymous" | "attempts" | "codeSends" | "signUps" | "redirects", ip: string): string {
  return `${bucket}|ip:${networkOf(ip)}`;
}

/**
 * With walkin/sessions configured: move the client session's data to its new ID. `rotatedTo`:
 * where an earlier sign-in with the same `from` moved it, a rotation this client did not take up
 * (a lost answer, a tab behind on a shared ID): those rows follow it too (guests.ts), unless
 * both that ID and the new one hold a login (an app that also keeps `logins`, written under
 * the old ID by a tab still on it): `transferSession` refuses to merge two, and that refusal
 * would fail this sign-in on every retry. Those rows then stay where a tab on that ID reads them.
 */
async function carryClientSession(ctx: MutationCtx, config: ResolvedAuthConfig, clientSession: SignInInput["clientSession"], rotatedTo: SessionId | null): Promise<void> {
  if (!config.sessions || !clientSession?.from || !clientSession.to) return;
  const { to } = clientSession;
  await transferSession(ctx, { from: clientSession.from, to, tables: config.sessions.tables });
  if (rotatedTo && rotatedTo !== to && !(await loginsClash(ctx, rotatedTo, to))) {
    await transferSession(ctx, { from: rotatedTo, to, tables: config.sessions.tables });
  }
}

/** Sign-out with walkin/sessions configured: the client session's own data goes with it. */
export async function endClientSession(ctx: MutationCtx, config: ResolvedAuthConfig, sessionId: SessionId | undefined): Promise<void> {
  if (!config.sessions || !sessionId) return;
  await endSession(ctx, sessionId, { tables: config.sessions.tables });
}

/**
 * The transactions behind the account helpers of accounts.ts (`createAccount`,
 * `retrieveAccount`, `modifyAccountCredentials`), run as operations of the `store` mutation.
 *
 * Secrets arrive here hashed, or are checked after this returns: hashing is slow (scrypt, about
 * 100 ms), so it runs in the helper's action, never inside a transaction, where it would hold
 * the commit back and run again on every retry.
 */
import { walkinError, type Id, type Value } from "../values/index.js";
import type { DatabaseWriter } from "../server/database.js";
import type { AnyDataModel } from "../server/dataModel.js";
import type { MutationCtx, ResolvedAuthConfig } from "./config.js";
import { findAccount } from "./codes.js";
import { giveBackTokens, resetBucket, takeToken } from "./rateLimit.js";
import { passwordAttemptKey } from "./store.js";
import { createOrUpdateUser, networkBucketKey } from "./users.js";

type Db = DatabaseWriter<AnyDataModel>;

export interface CreateAccountOp {
  provider: string;
  providerAccountId: string;
  /** The secret's hash (the provider's `crypto.hashSecret`), or none. */
  secret?: string;
  profile: Record<string, Value>;
  shouldLinkViaEmail?: boolean;
  shouldLinkViaPhone?: boolean;
}

/** The error `createAccount` gives for an account that exists: Convex Auth's words, then what to do. */
export function accountTaken(provider: string, providerAccountId: string) {
  return walkinError(
    "APPLICATION",
    `Account ${providerAccountId} already exists (provider "${provider}"). Use retrieveAccount to find it, or modifyAccountCredentials to change its secret.`,
  );
}

/**
 * A new account, for a new user or (`shouldLinkViaEmail`, `shouldLinkViaPhone`) for the one user
 * whose email or phone is verified and equal to the profile's. Only a verified one: linking to
 * whoever merely wrote an address down would hand their data to anyone who creates an account
 * with the same address. The app's `createOrUpdateUser` decides instead when it has one, as it
 * does for sign-ups.
 */
export async function createAccountOp(ctx: MutationCtx, config: ResolvedAuthConfig, op: CreateAccountOp) {
  const db = ctx.db as Db;
  if (await findAccount(db, op.provider, op.providerAccountId)) throw accountTaken(op.provider, op.providerAccountId);
  const { fields, emailVerified, phoneVerified } = userFieldsOf(op.profile, Date.now());
  // Convex Auth's profile.emailVerified (phoneVerified) says the caller checked the address: the
  // account then links as with shouldLinkViaEmail (still only to a user verified the same way).
  const linked = await verifiedUserToLink(db, { ...op, shouldLinkViaEmail: op.shouldLinkViaEmail || emailVerified, shouldLinkViaPhone: op.shouldLinkViaPhone || phoneVerified });
  const input = { provider: op.provider, profile: op.profile };
  const userId = await createOrUpdateUser(ctx, config, input, linked, false, async () => {
    if (!linked) return (await db.insert("users", { ...fields, isAnonymous: false })) as Id<"users">;
    // isAnonymous as for a new user: a profile's isAnonymous: true would make the linked user,
    // now holding this account, look like an abandoned guest that the cleanup deletes (with the
    // account and, through onDeleteUser, its data).
    await db.patch(linked, { ...fields, isAnonymous: false });
    return linked;
  });
  const accountId = await db.insert("authAccounts", { userId, provider: op.provider, providerAccountId: op.providerAccountId, ...(op.secret === undefined ? {} : { secret: op.secret }) });
  return { account: await db.get(accountId), user: await db.get(userId) };
}

/**
 * The user document's fields from a profile: Convex Auth's `emailVerified` / `phoneVerified`
 * flags are not fields (the users table has no such column, and a ported app's profile would
 * fail its schema) but the time of verification, as Convex Auth stores them.
 */
function userFieldsOf(profile: Record<string, Value>, now: number) {
  const { emailVerified, phoneVerified, ...fields } = profile;
  if (emailVerified === true && typeof fields.email === "string") fields.emailVerificationTime ??= now;
  if (phoneVerified === true && typeof fields.phone === "string") fields.phoneVerificationTime ??= now;
  return { fields, emailVerified: emailVerified === true, phoneVerified: phoneVerified === true };
}

async function verifiedUserToLink(db: Db, op: CreateAccountOp): Promise<Id<"users"> | null> {
  const ways = [
    { wanted: op.shouldLinkViaEmail, field: "email", verifiedBy: "emailVerificationTime" },
    { wanted: op.shouldLinkViaPhone, field: "phone", verifiedBy: "phoneVerificationTime" },
  ] as const;
  for (const { wanted, field, verifiedBy } of ways) {
    const value = op.profile[field];
    if (!wanted || typeof value !== "string") continue;
    let users: Array<Record<string, Value>>;
    try {
      users = await db.query("users").withIndex(field, (q) => q.eq(field, value)).collect();
    } catch (error) {
      if (field !== "phone") throw error;
      throw walkinError("MISUSE", 'createAccount({ shouldLinkViaPhone: true }) looks users up by phone: add phone: v.optional(v.string()), phoneVerificationTime: v.optional(v.number()) and .index("phone", ["phone"]) to your users table.', undefined, error);
    }
    const verified = users.filter((user) => typeof user[verifiedBy] === "number");
    if (verified.length === 1) return verified[0]!._id as Id<"users">;
  }
  return null;
}

/**
 * An account and its user, for `retrieveAccount`. With `checkSecret`, one attempt is taken
 * first from the account's bucket of failed attempts (if it exists) and, for a client's call,
 * its network's (`rateLimits.passwordAttempts`, `passwordAttemptsPerNetwork`), the buckets the
 * Password provider's sign-ins use: `secretAccepted` gives them back when the secret was right.
 * A refusal there is Convex Auth's `TooManyFailedAttempts`.
 */
export async function retrieveAccountOp(
  ctx: MutationCtx,
  config: ResolvedAuthConfig,
  op: { provider: string; providerAccountId: string; checkSecret: boolean; clientIp?: string | null },
) {
  const db = ctx.db as Db;
  const account = await findAccount(db, op.provider, op.providerAccountId);
  if (op.checkSecret) {
    const now = Date.now();
    try {
      if (op.clientIp) await takeToken(db, networkBucketKey("attempts", op.clientIp), config.rateLimits.passwordAttemptsPerNetwork, now, "failed sign-in attempts from this network");
      // Only an account that exists has attempts to count (as in Convex Auth): the answer
      // InvalidAccountId says so anyway. Counted for a missing one, a few sign-in attempts on a
      // free username would make its owner's sign-up (an authorize that calls retrieveAccount,
      // then createAccount on InvalidAccountId) fail with TooManyFailedAttempts.
      if (account) await takeToken(db, passwordAttemptKey(op.provider, op.providerAccountId), config.rateLimits.passwordAttempts, now, "sign-in attempts for this account");
    } catch (error) {
      const { code, data } = error as { code?: string; data?: Value };
      if (code !== "RATE_LIMITED") throw error;
      throw walkinError("RATE_LIMITED", CONVEX_AUTH_WORDS.tooMany, data, error);
    }
  }
  if (!account) return null;
  return { account, user: await db.get(account.userId as Id<"users">) };
}

/**
 * The secret `retrieveAccount` checked matched `verifiedSecret`, the hash it read before the
 * check: if the account still has that hash, the attempts the check took are given back and the
 * account and its user answered, as of now. A hash replaced meanwhile (a reset that committed
 * during the ~100 ms check) refuses the old secret, in this same transaction, so no reset can
 * land between this look and the answer.
 */
export async function secretAcceptedOp(
  ctx: MutationCtx,
  config: ResolvedAuthConfig,
  op: { provider: string; providerAccountId: string; verifiedSecret: string; clientIp?: string | null },
) {
  const db = ctx.db as Db;
  const account = await findAccount(db, op.provider, op.providerAccountId);
  if (!account || account.secret !== op.verifiedSecret) throw walkinError("UNAUTHENTICATED", CONVEX_AUTH_WORDS.wrongSecret);
  await resetBucket(db, passwordAttemptKey(op.provider, op.providerAccountId));
  if (op.clientIp) await giveBackTokens(db, networkBucketKey("attempts", op.clientIp), config.rateLimits.passwordAttemptsPerNetwork, Date.now(), 1);
  return { account, user: await db.get(account.userId as Id<"users">) };
}

/** A new secret (hashed) for an account; `InvalidAccountId` if there is none. */
export async function modifyAccountOp(ctx: MutationCtx, op: { provider: string; providerAccountId: string; secret: string }) {
  const db = ctx.db as Db;
  const account = await findAccount(db, op.provider, op.providerAccountId);
  if (!account) throw invalidAccountId();
  await db.patch(account._id, { secret: op.secret });
  return null;
}

/**
 * The messages of the account helpers' three expected failures are Convex Auth's words, exactly:
 * code ported from it branches on them (`if (error.message === "InvalidAccountId") create it`),
 * so a sentence here would silently take the other branch. What went wrong is in the `code`
 * (NOT_FOUND, UNAUTHENTICATED, RATE_LIMITED, the last with `data.retryAfterMs`), and
 * docs/auth.md explains each word.
 */
export const CONVEX_AUTH_WORDS = { noAccount: "InvalidAccountId", wrongSecret: "InvalidSecret", tooMany: "TooManyFailedAttempts" } as const;

/** No account has the ID (`retrieveAccount`, `modifyAccountCredentials`). */
export function invalidAccountId() {
  return walkinError("NOT_FOUND", CONVEX_AUTH_WORDS.noAccount);
}

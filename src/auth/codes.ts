/**
 * One-time codes (password reset): finding the live code an account was sent, and using it up.
 *
 * Checking a code and using it are two steps in two transactions. The check (`verifyCode` in
 * store.ts) takes from the account's attempt bucket and commits even when the code is wrong, so
 * that guesses stay counted. The use runs inside the sign-in's own transaction
 * (`signInUser`, `consumeCode` in its input): the code is deleted, the new password set and the
 * account's other sessions ended only if the whole sign-in commits. A sign-in refused after the
 * check (an app hook that throws, say) then changes nothing, and the same code works again.
 */
import { walkinError, type Id } from "../values/index.js";
import type { DatabaseWriter } from "../server/database.js";
import type { AnyDataModel } from "../server/dataModel.js";
import type { MutationCtx } from "./config.js";
import { invalidateSessions } from "./authSessions.js";
import { resetBucket } from "./rateLimit.js";
import { hashesEqual, sha256 } from "./tokens.js";

type Db = DatabaseWriter<AnyDataModel>;

export interface CodeUse {
  provider: string;
  providerAccountId: string;
  purpose: string;
  code: string;
  /** A new password hash to set with it (a reset). */
  newSecret?: string;
}

export function codeAttemptKey(provider: string, providerAccountId: string): string {
  return `codes|${sha256(`${provider}|${providerAccountId}`)}`;
}

/**
 * The bucket of codes sent for one email address. Keyed by the address, known or not, so that
 * a refusal says nothing about whether an account exists.
 */
export function codeSendKey(provider: string, providerAccountId: string): string {
  return `codeSends|${sha256(`${provider}|${providerAccountId}`)}`;
}

export async function findAccount(db: Db, provider: string, providerAccountId: string) {
  return db.query("authAccounts").withIndex("by_provider_account", (q) => q.eq("provider", provider).eq("providerAccountId", providerAccountId)).first();
}

/** The account and its live code equal to `use.code`, or null. */
export async function matchingCode(db: Db, use: CodeUse, now: number) {
  const account = await findAccount(db, use.provider, use.providerAccountId);
  if (!account) return null;
  const codes = await db.query("authVerificationCodes").withIndex("by_accountId_purpose", (q) => q.eq("accountId", account._id).eq("purpose", use.purpose)).collect();
  const match = codes.find((row) => (row.expiresAt as number) > now && hashesEqual(row.codeHash as string, sha256(use.code)));
  return match ? { account, match } : null;
}

/** Uses the code up, in the caller's transaction; throws if it is gone (used by a concurrent sign-in, or expired). */
export async function consumeCode(ctx: MutationCtx, use: CodeUse, now: number): Promise<void> {
  const db = ctx.db as Db;
  const found = await matchingCode(db, use, now);
  if (!found) throw walkinError("UNAUTHENTICATED", "The code is wrong or has expired. Check it, or ask for a new one.");
  await db.delete(found.match._id);
  if (use.newSecret) await db.patch(found.account._id, { secret: use.newSecret });
  await invalidateSessions(ctx, found.account.userId as Id<"users">); // whoever knew the old password is out
  await resetBucket(db, codeAttemptKey(use.provider, use.providerAccountId));
}

/**
 * `store`: the one internal mutation through which providers and the `signIn` action touch
 * the database. Each operation is one transaction; the operations are a union keyed on
 * `type`, validated like any function's arguments (the action is trusted code, but a wrong
 * shape should fail loudly, not write half a row).
 */
import { walkinError, v, type Id, type Value } from "../values/index.js";
import type { DatabaseWriter } from "../server/database.js";
import type { AnyDataModel } from "../server/dataModel.js";
import { vSessionId } from "../sessions/sessionId.js";
import type { MutationCtx, ResolvedAuthConfig } from "./config.js";
import { runCleanup, type DeleteGuest } from "./cleanup.js";
import { takeToken } from "./rateLimit.js";
import { sha256 } from "./tokens.js";
import { codeAttemptKey, codeSendKey, findAccount, matchingCode } from "./codes.js";
import { deleteUser, networkBucketKey, signInUser } from "./users.js";
import { isGuest } from "./guests.js";
import { authInstanceId } from "./authInstances.js";
import { createAccountOp, modifyAccountOp, retrieveAccountOp, secretAcceptedOp } from "./accountOps.js";
import { invalidateSessions } from "./authSessions.js";

type Db = DatabaseWriter<AnyDataModel>;

/** The caller's IP, for the per-network limits: null (or absent) for a server's own call, which has none. */
const vClientIp = v.optional(v.nullable(v.string()));

const vSignIn = {
  provider: v.string(),
  mode: v.union(v.literal("anonymous"), v.literal("signUp"), v.literal("signIn"), v.literal("signInOrUp"), v.literal("user")),
  userId: v.optional(v.string()),
  verifiedAccounts: v.optional(v.array(v.object({ provider: v.string(), providerAccountId: v.string(), secret: v.string() }))),
  providerAccountId: v.optional(v.string()),
  secret: v.optional(v.string()),
  profile: v.optional(v.record(v.string(), v.any())),
  resetRateLimit: v.optional(v.string()),
  onlyIfSignedIn: v.optional(v.boolean()),
  verifiedSecret: v.optional(v.string()),
  refundNetworkAttempts: v.optional(v.number()),
  consumeCode: v.optional(v.object({ provider: v.string(), providerAccountId: v.string(), purpose: v.string(), code: v.string(), newSecret: v.optional(v.string()) })),
  secretHash: v.string(),
  clientIp: vClientIp,
  userAgent: v.optional(v.nullable(v.string())),
  clientSession: v.optional(v.object({ from: v.optional(vSessionId), to: v.optional(vSessionId) })),
};

export const vStoreOp = v.union(
  v.object({ type: v.literal("signIn"), ...vSignIn }),
  /**
   * Takes one attempt from the bucket of the caller's network and one from the account's, then
   * hands back the stored password hash (or null). `clientIp` is set by walkinAuth, whatever the
   * provider passed: null (no network limit) only for a server's own call.
   */
  v.object({ type: v.literal("passwordAttempt"), provider: v.string(), providerAccountId: v.string(), clientIp: vClientIp }),
  /**
   * Takes one from the bucket of sign-ups from the caller's network, then says whether the
   * account exists; run before the password is hashed, so that neither a flood of sign-ups nor
   * sign-ups for a taken email cost a scrypt run each. `clientIp` as for `passwordAttempt`.
   */
  v.object({ type: v.literal("signUpAttempt"), provider: v.string(), providerAccountId: v.string(), clientIp: vClientIp }),
  /**
   * Takes one from the buckets of codes sent from the caller's network and to the email, then
   * stores a one-time code for the account, if it exists; returns whether it does. `clientIp`
   * as for `passwordAttempt`.
   */
  v.object({ type: v.literal("createCode"), provider: v.string(), providerAccountId: v.string(), purpose: v.string(), code: v.string(), expiresAt: v.number(), clientIp: vClientIp }),
  /** Takes one code attempt and says whether the code matches; the sign-in uses it up (`consumeCode`). */
  v.object({ type: v.literal("verifyCode"), provider: v.string(), providerAccountId: v.string(), purpose: v.string(), code: v.string() }),
  /**
   * Stores a verifier (a redirect sign-in's state, its one-time code). Started by a client's
   * sign-in call (not the provider's callback), it first takes one from the bucket of redirect
   * sign-ins from the caller's network: each start writes a row for `expiresAt`'s while, which
   * without a limit anyone could do in a loop. `clientIp` as for `passwordAttempt`.
   */
  v.object({ type: v.literal("createVerifier"), key: v.string(), provider: v.string(), value: v.any(), expiresAt: v.number(), clientIp: vClientIp }),
  /** Deletes the verifier (each one works once) and returns `{ provider, value }` if it had not expired, else null. */
  v.object({ type: v.literal("consumeVerifier"), key: v.string() }),
  v.object({ type: v.literal("cleanup") }),
  /** This configuration's ID (authInstances.ts): how the account helpers of accounts.ts find it. */
  v.object({ type: v.literal("instance") }),
  /** The account helpers' transactions (accountOps.ts): the secret comes hashed, or is checked after. */
  v.object({
    type: v.literal("createAccount"),
    provider: v.string(),
    providerAccountId: v.string(),
    secret: v.optional(v.string()),
    profile: v.record(v.string(), v.any()),
    shouldLinkViaEmail: v.optional(v.boolean()),
    shouldLinkViaPhone: v.optional(v.boolean()),
  }),
  v.object({ type: v.literal("retrieveAccount"), provider: v.string(), providerAccountId: v.string(), checkSecret: v.boolean(), clientIp: vClientIp }),
  v.object({ type: v.literal("secretAccepted"), provider: v.string(), providerAccountId: v.string(), verifiedSecret: v.string(), clientIp: vClientIp }),
  v.object({ type: v.literal("modifyAccount"), provider: v.string(), providerAccountId: v.string(), secret: v.string() }),
  v.object({ type: v.literal("invalidateSessions"), userId: v.id("users"), except: v.optional(v.array(v.union(v.id("authSessions"), v.null()))) }),
  /** The cleanup's deletion of one abandoned anonymous user, run as its sub-transaction (cleanup.ts). */
  v.object({ type: v.literal("deleteAnonymousUser"), userId: v.id("users") }),
);

export type StoreOp = typeof vStoreOp.type;

/**
 * The operations a provider may run through `SignInContext.store` and its HTTP routes' `store`.
 * Not a sign-in (a provider completes one with `completeSignIn`, which sets what a stored
 * sign-in must not take from a provider: the new session's secret, the caller's network, the
 * password attempts to give back), nor the cleanup's. The caller's network (`clientIp`) is
 * walkinAuth's to set (`withNetwork`), whatever a provider passes.
 */
export const PROVIDER_STORE_OPS = ["passwordAttempt", "signUpAttempt", "createCode", "verifyCode", "createVerifier", "consumeVerifier"] as const;
type ProviderOpType = (typeof PROVIDER_STORE_OPS)[number];
export type ProviderStoreOp = StoreOp extends infer Op ? (Op extends { type: ProviderOpType } ? Omit<Op, "clientIp"> : never) : never;

export function passwordAttemptKey(provider: string, providerAccountId: string): string {
  return `attempts|${sha256(`${provider}|${providerAccountId}`)}`;
}


export async function runStoreOp(ctx: MutationCtx, config: ResolvedAuthConfig, op: StoreOp, deleteGuest: DeleteGuest): Promise<Value> {
  const db = ctx.db as Db;
  const now = Date.now();
  switch (op.type) {
    case "signIn":
      return signInUser(ctx, config, op);
    case "passwordAttempt": {
      // The network first: a refusal there says so, and tells nothing about the account.
      if (op.clientIp) await takeToken(db, networkBucketKey("attempts", op.clientIp), config.rateLimits.passwordAttemptsPerNetwork, now, "failed sign-in attempts from this network");
      await takeToken(db, passwordAttemptKey(op.provider, op.providerAccountId), config.rateLimits.passwordAttempts, now, "sign-in attempts for this account");
      const account = await findAccount(db, op.provider, op.providerAccountId);
      return { secret: (account?.secret as string | undefined) ?? null };
    }
    case "signUpAttempt": {
      if (op.clientIp) await takeToken(db, networkBucketKey("signUps", op.clientIp), config.rateLimits.signUpsPerNetwork, now, "sign-ups from this network");
      return { exists: (await findAccount(db, op.provider, op.providerAccountId)) !== null };
    }
    case "createCode": {
      // Before the lookup: each code is an email and replaces the last one, so unlimited
      // requests would flood an inbox and keep cancelling the owner's own reset, and one
      // machine asking for codes to address after address would have us send its spam.
      if (op.clientIp) await takeToken(db, networkBucketKey("codeSends", op.clientIp), config.rateLimits.codeSendsPerNetwork, now, "codes asked for from this network");
      await takeToken(db, codeSendKey(op.provider, op.providerAccountId), config.rateLimits.codeSends, now, "codes sent to this email");
      const account = await findAccount(db, op.provider, op.providerAccountId);
      if (!account) return { exists: false };
      const accountId = account._id as Id<"authAccounts">;
      const existing = await db.query("authVerificationCodes").withIndex("by_accountId_purpose", (q) => q.eq("accountId", accountId).eq("purpose", op.purpose)).collect();
      for (const row of existing) await db.delete(row._id); // one live code per purpose: a new one replaces it
      await db.insert("authVerificationCodes", { accountId, purpose: op.purpose, codeHash: sha256(op.code), expiresAt: op.expiresAt });
      return { exists: true };
    }
    case "verifyCode": {
      // Checks only, and commits even when wrong (the attempt stays counted): the code is used up
      // in the sign-in's own transaction (codes.ts), so a sign-in refused after this changes nothing.
      await takeToken(db, codeAttemptKey(op.provider, op.providerAccountId), config.rateLimits.codeAttempts, now, "code attempts for this account");
      return { ok: (await matchingCode(db, op, now)) !== null };
    }
    case "createVerifier":
      if (op.clientIp) await takeToken(db, networkBucketKey("redirects", op.clientIp), config.rateLimits.redirectSignInsPerNetwork, now, "redirect sign-ins started from this network");
      await db.insert("authVerifiers", { keyHash: sha256(op.key), provider: op.provider, value: op.value, expiresAt: op.expiresAt });
      return null;
    case "consumeVerifier": {
      const row = await db.query("authVerifiers").withIndex("by_keyHash", (q) => q.eq("keyHash", sha256(op.key))).first();
      if (!row) return null;
      await db.delete(row._id);
      return (row.expiresAt as number) > now ? { provider: row.provider as string, value: row.value as Value } : null;
    }
    case "cleanup":
      return runCleanup(ctx, config, now, deleteGuest);
    case "instance":
      return authInstanceId(config);
    case "createAccount":
      return createAccountOp(ctx, config, op);
    case "retrieveAccount":
      return retrieveAccountOp(ctx, config, op);
    case "secretAccepted":
      return secretAcceptedOp(ctx, config, op);
    case "modifyAccount":
      return modifyAccountOp(ctx, op);
    case "invalidateSessions":
      return invalidateSessions(ctx, op.userId as Id<"users">, { except: op.except as Array<Id<"authSessions"> | null> | undefined });
    case "deleteAnonymousUser": {
      // Asked again here, whoever calls it: never a user who has signed up, nor one signed in.
      const userId = op.userId as Id<"users">;
      const sessions = await db.query("authSessions").withIndex("by_userId", (q) => q.eq("userId", userId)).collect();
      if ((await isGuest(db, userId)) && sessions.every((s) => (s.expiresAt as number) <= now)) await deleteUser(ctx, config, userId);
      return null;
    }
    default:
      throw walkinError("INTERNAL", `Unknown auth store operation ${JSON.stringify((op satisfies never as { type: unknown }).type)}.`);
  }
}

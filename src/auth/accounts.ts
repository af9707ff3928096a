/**
 * Convex Auth's account helpers, for an app that manages accounts itself: a `ConvexCredentials`
 * provider's `authorize`, an action that seeds users, an admin's password change.
 *
 * - `createAccount(ctx, { provider, account: { id, secret? }, profile, shouldLinkViaEmail?, shouldLinkViaPhone? })`
 *   → `{ account, user }`: a new account for a new user (or a verified-email/phone user to link to);
 * - `retrieveAccount(ctx, { provider, account: { id, secret? } })` → `{ account, user }`, checking
 *   the secret when one is given;
 * - `modifyAccountCredentials(ctx, { provider, account: { id, secret } })`: a new secret;
 * - `invalidateSessions(ctx, { userId, except? })`: ends a user's sessions (also from a mutation).
 *
 * They run in actions, as Convex Auth's do: each calls the app's `store` mutation (`auth:store`)
 * for its transactions, and hashes or checks secrets in between, outside any transaction
 * (scrypt takes about 100 ms). From a mutation they work too (its `runMutation` runs the store as
 * a sub-transaction), at the cost of hashing inside that mutation's run; all but
 * `retrieveAccount` with a secret, whose failed attempts a throwing mutation would undo.
 * Secrets are hashed with the provider's `crypto` (the Password provider's scrypt cost, or a
 * `ConvexCredentials` provider's own functions), so an account made here is one that provider's
 * sign-ins accept.
 *
 * Expected failures throw with Convex Auth's words as the message (`InvalidAccountId`,
 * `InvalidSecret`, `TooManyFailedAttempts`): accountOps.ts says why.
 */
import { walkinError, type Id, type Value } from "../values/index.js";
import { makeFunctionReference } from "../server/api.js";
import type { DatabaseWriter } from "../server/database.js";
import type { CallerRequest } from "../server/registration.js";
import type { ActionCtx, ResolvedAuthConfig } from "./config.js";
import { authConfigById } from "./authInstances.js";
import { CONVEX_AUTH_WORDS, invalidAccountId } from "./accountOps.js";
import { invalidateSessions as endUserSessions } from "./authSessions.js";
import { scryptCrypto } from "./passwordHash.js";
import type { AuthProvider } from "./providers/types.js";

/** An account whose secret `retrieveAccount` accepted, with the hash it matched. */
export interface AcceptedSecret {
  provider: string;
  providerAccountId: string;
  secret: string;
  userId: string;
}

/**
 * The secrets `retrieveAccount` accepted during a ConvexCredentials sign-in, by that sign-in
 * action's ctx (the one its `authorize` is given and passes on): the sign-in's transaction checks
 * their hashes again, so a reset that commits after `retrieveAccount` answered, and before the
 * session is made, still refuses the old secret. A ctx the app copied is not found: the sign-in
 * then goes on with `retrieveAccount`'s own check alone.
 */
const acceptedSecrets = new WeakMap<object, AcceptedSecret[]>();

/** Starts collecting, for one sign-in, the secrets `retrieveAccount` accepts with `ctx`. */
export function collectAcceptedSecrets(ctx: object): AcceptedSecret[] {
  const accepted: AcceptedSecret[] = [];
  acceptedSecrets.set(ctx, accepted);
  return accepted;
}

/** Where walkinAuth's `store` is: `functions/auth.ts`, as Convex Auth's is `convex/auth.ts`. */
const STORE_PATH = "auth:store";

/** What the helpers need of their ctx: an action's (a provider's `authorize` gets one) or a mutation's. */
type AccountCtx = Pick<ActionCtx, "runMutation"> & { request?: CallerRequest | null };

interface AccountArgs {
  provider: string;
  account: { id: string; secret?: string };
}

/** An account document and its user's. */
export interface AccountAndUser {
  account: Record<string, Value> & { _id: Id<"authAccounts">; userId: Id<"users"> };
  user: Record<string, Value> & { _id: Id<"users"> };
}

/**
 * A new account. Throws if the provider has an account with this ID already. The user is new,
 * unless `shouldLinkViaEmail` (`shouldLinkViaPhone`) finds the one user whose verified email
 * (phone) is the profile's: the account then joins that user. The app's `createOrUpdateUser`
 * callback, when it has one, decides instead (`existingUserId` is the user found to link to).
 * @example
 * // an internal action that seeds an administrator
 * await createAccount(ctx, {
 *   provider: "password",
 *   account: { id: "admin@example.com", secret: process.env.ADMIN_PASSWORD! },
 *   profile: { email: "admin@example.com", name: "Admin" },
 * });
 */
export async function createAccount(
  ctx: AccountCtx,
  args: AccountArgs & { profile: Record<string, Value | undefined>; shouldLinkViaEmail?: boolean; shouldLinkViaPhone?: boolean },
): Promise<AccountAndUser> {
  const what = "createAccount";
  checkAccountArgs(args, what);
  if (typeof args.profile !== "object" || args.profile === null || Array.isArray(args.profile)) {
    throw walkinError("INVALID_ARGUMENT", `${what} needs profile: the fields of the new user, e.g. { email, name } ({} for none).`);
  }
  const { provider, providerAccountId } = await resolve(ctx, args, what);
  const secret = args.account.secret === undefined ? undefined : await cryptoOf(provider).hashSecret(args.account.secret);
  const op = {
    type: "createAccount",
    provider: provider.id,
    providerAccountId,
    ...(secret === undefined ? {} : { secret }),
    profile: withoutUndefined(args.profile),
    ...(args.shouldLinkViaEmail === undefined ? {} : { shouldLinkViaEmail: args.shouldLinkViaEmail }),
    ...(args.shouldLinkViaPhone === undefined ? {} : { shouldLinkViaPhone: args.shouldLinkViaPhone }),
  };
  return (await runStore(ctx, op, what)) as unknown as AccountAndUser;
}

/**
 * The account with this ID and its user. With `secret`, the secret is checked as a sign-in
 * checks a password: one attempt is taken from the account's (and, for a client's call, its
 * network's) bucket of failed attempts first, and given back if it was right (none from
 * the account's when there is no such account).
 * Throws `InvalidAccountId` (code NOT_FOUND) when there is no such account, `InvalidSecret`
 * (UNAUTHENTICATED) for a wrong secret, `TooManyFailedAttempts` (RATE_LIMITED, with
 * `data.retryAfterMs`) when the attempts are used up. With `secret`, from an action only (MISUSE
 * from a mutation, which would undo its failed attempt when it throws).
 */
export async function retrieveAccount(ctx: AccountCtx, args: AccountArgs): Promise<AccountAndUser> {
  const what = "retrieveAccount";
  checkAccountArgs(args, what);
  const secret = args.account.secret;
  // A failed attempt is counted by the store's transaction. From a mutation that transaction is
  // part of the mutation's, and a mutation that lets InvalidSecret go up (a `changePassword`
  // that checks the old one) is undone whole, the count with it: unlimited guesses. From an
  // action the count is committed before the check. (Convex Auth's helpers take an action's ctx.)
  if (secret !== undefined && typeof (ctx as { db?: unknown }).db === "object") {
    throw walkinError("MISUSE", `${what} with account.secret checks the secret: call it from an action, whose failed attempts are counted in a transaction of their own. From a mutation, a throw would undo the count (a retrieveAccount without secret works there).`);
  }
  const { provider, providerAccountId, config } = await resolve(ctx, args, what);
  const clientIp = networkOf(config, ctx.request);
  const found = (await runStore(ctx, { type: "retrieveAccount", provider: provider.id, providerAccountId, checkSecret: secret !== undefined, clientIp }, what)) as unknown as AccountAndUser | null;
  if (!found) throw invalidAccountId();
  if (secret === undefined) return found;
  const hash = found.account.secret;
  if (typeof hash !== "string" || !(await cryptoOf(provider).verifySecret(secret, hash))) throw walkinError("UNAUTHENTICATED", CONVEX_AUTH_WORDS.wrongSecret);
  // The secret was checked against the hash read before the check began (scrypt: ~100 ms).
  // 1. retrieveAccount reads hash H1; 2. an admin's modifyAccountCredentials commits H2 (a reset
  // after a leak), then invalidateSessions; 3. the old secret matches H1. Answered now, the old
  // secret would sign in after the reset, with a session the invalidation never saw. So the
  // store's `secretAccepted` refuses it unless the account still has H1, in the transaction
  // that gives the attempts back and reads the answer (as the Password provider's sign-in
  // refuses a reset password: users.ts, verifiedSecret). A ConvexCredentials sign-in then
  // checks H1 once more in its own transaction (`acceptedSecrets`, users.ts "user" mode).
  const current = (await runStore(ctx, { type: "secretAccepted", provider: provider.id, providerAccountId, verifiedSecret: hash, clientIp }, what)) as unknown as AccountAndUser;
  acceptedSecrets.get(ctx)?.push({ provider: provider.id, providerAccountId, secret: hash, userId: current.user._id });
  return current;
}

/**
 * Gives an account a new secret (hashed with its provider's `crypto`). Throws `InvalidAccountId`
 * when there is no such account. The user's sessions go on: end them with `invalidateSessions`
 * when the change is meant to sign others out.
 */
export async function modifyAccountCredentials(ctx: AccountCtx, args: AccountArgs & { account: { secret: string } }): Promise<void> {
  const what = "modifyAccountCredentials";
  checkAccountArgs(args, what);
  if (typeof args.account.secret !== "string") throw walkinError("INVALID_ARGUMENT", `${what} needs account.secret: the new secret (a string).`);
  const { provider, providerAccountId } = await resolve(ctx, args, what);
  const secret = await cryptoOf(provider).hashSecret(args.account.secret);
  await runStore(ctx, { type: "modifyAccount", provider: provider.id, providerAccountId, secret }, what);
}

type SessionExceptions = ReadonlyArray<Id<"authSessions"> | null>;

/**
 * Ends every session of a user but those in `except`: their live queries re-run signed out and
 * their tokens stop working at once. Returns how many ended. Convex Auth's form,
 * `(ctx, { userId, except })`, runs from an action or a mutation; Walk-in's earlier form,
 * `(ctx, userId, { except })`, from a mutation.
 * @example
 * // after a password change, sign out everywhere else
 * await invalidateSessions(ctx, { userId, except: [await getAuthSessionId(ctx)] });
 */
export function invalidateSessions(ctx: { db: DatabaseWriter<any> } | AccountCtx, args: { userId: Id<"users">; except?: SessionExceptions }): Promise<number>;
export function invalidateSessions(ctx: { db: DatabaseWriter<any> }, userId: Id<"users">, options?: { except?: SessionExceptions }): Promise<number>;
export async function invalidateSessions(
  ctx: { db: DatabaseWriter<any> } | AccountCtx,
  target: Id<"users"> | { userId: Id<"users">; except?: SessionExceptions },
  options: { except?: SessionExceptions } = {},
): Promise<number> {
  const { userId, except = [] } = typeof target === "object" && target !== null ? target : { userId: target, except: options.except };
  if (typeof userId !== "string") throw walkinError("INVALID_ARGUMENT", "invalidateSessions needs the user's ID: invalidateSessions(ctx, { userId }).");
  const db = (ctx as { db?: DatabaseWriter<any> }).db;
  // A mutation ends them in its own transaction; an action, through the store's.
  if (typeof db?.delete === "function") return endUserSessions({ db }, userId, { except });
  return (await runStore(ctx as AccountCtx, { type: "invalidateSessions", userId, except: [...except] }, "invalidateSessions")) as number;
}

function checkAccountArgs(args: AccountArgs, what: string): void {
  if (typeof args?.provider !== "string" || typeof args.account?.id !== "string" || args.account.id === "") {
    throw walkinError("INVALID_ARGUMENT", `${what} needs { provider, account: { id } }: the provider's ID (e.g. "password") and the account's ID (e.g. an email).`);
  }
  if (args.account.secret !== undefined && typeof args.account.secret !== "string") {
    throw walkinError("INVALID_ARGUMENT", `${what}: account.secret must be a string (or left out).`);
  }
}

/** The configuration the ctx's app runs, the provider named, and the account ID as that provider stores it. */
async function resolve(ctx: AccountCtx, args: AccountArgs, what: string): Promise<{ config: ResolvedAuthConfig; provider: AuthProvider; providerAccountId: string }> {
  const id = await runStore(ctx, { type: "instance" }, what);
  const config = typeof id === "string" ? authConfigById(id) : undefined;
  if (!config) throw walkinError("INTERNAL", `${what}: the app's walkinAuth configuration is no longer loaded in this process.`);
  const provider = config.providers.find((p) => p.id === args.provider);
  if (!provider) {
    throw walkinError("INVALID_ARGUMENT", `${what}: no provider "${args.provider.slice(0, 64)}" is configured. walkinAuth's providers are ${config.providers.map((p) => `"${p.id}"`).join(", ")}.`);
  }
  return { config, provider, providerAccountId: provider.normalizeAccountId?.(args.account.id) ?? args.account.id };
}

/** A provider's secret hashing: its own, else scrypt at the default cost. */
function cryptoOf(provider: AuthProvider) {
  return provider.crypto ?? scryptCrypto();
}

/**
 * The network a client's call counts against, as walkinAuth decides it for sign-ins (its
 * `bucketIpOf`): the app's `clientIp`, "unknown" when that cannot tell; null for a server's own
 * call (no request), which no network limit applies to.
 */
function networkOf(config: ResolvedAuthConfig, request: CallerRequest | null | undefined): string | null {
  if (!request) return null;
  const ip = config.clientIp(request);
  return typeof ip === "string" && ip !== "" ? ip : "unknown";
}

async function runStore(ctx: AccountCtx, op: Record<string, Value>, what: string): Promise<Value> {
  if (typeof ctx?.runMutation !== "function") {
    throw walkinError("MISUSE", `${what} calls walkinAuth's store mutation: call it from an action (a provider's authorize is one) or a mutation, not from a query.`);
  }
  try {
    return (await ctx.runMutation(makeFunctionReference<"mutation">(STORE_PATH), { op })) as Value;
  } catch (error) {
    if ((error as { code?: string }).code === "UNKNOWN_FUNCTION" && String((error as Error).message).includes(STORE_PATH)) {
      throw walkinError(
        "MISUSE",
        `${what} calls walkinAuth's store at ${STORE_PATH}: export walkinAuth's functions from functions/auth.ts ` +
          "(export const { auth, signIn, signOut, store, isAuthenticated } = walkinAuth({ … })).",
        undefined,
        error,
      );
    }
    throw error;
  }
}

function withoutUndefined(profile: Record<string, Value | undefined>): Record<string, Value> {
  return Object.fromEntries(Object.entries(profile).filter(([, value]) => value !== undefined)) as Record<string, Value>;
}

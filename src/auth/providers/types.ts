/**
 * The provider interface: what `Anonymous`, `Password` and the OAuth providers implement, and
 * what an app implements for a provider of its own.
 *
 * A provider's `signIn` runs in the `signIn` action (it may call the outside world: a CAPTCHA
 * service, an OAuth token endpoint, a password hash that takes a while). Everything that
 * touches the database goes through `SignInContext`, which runs it in one transaction.
 */
import type { Value } from "../../values/index.js";
import type { CodeUse } from "../codes.js";
import type { HttpRouter } from "../../server/router.js";
import type { ActionCtx, ResolvedAuthConfig } from "../config.js";
import type { ProviderStoreOp } from "../store.js";

/** What the `signIn` action answers, by kind. */
export type SignInResult =
  /** Signed in: keep `token`; it replaces any token held before. */
  | { kind: "signedIn"; token: string; userId: string; isAnonymous: boolean }
  /** Already signed in as this user (anonymous sign-in again): keep the current token. */
  | { kind: "unchanged"; userId: string; isAnonymous: boolean }
  /** Continue at `redirect` (OAuth); bring `verifier` back with the code. */
  | { kind: "redirect"; redirect: string; verifier: string }
  /** A step that signs no one in yet (a reset code was sent). */
  | { kind: "started" };

/** How the account being signed in relates to existing ones. */
export type SignInMode =
  /** No account: an anonymous user (or the current anonymous user again). */
  | "anonymous"
  /** A new account; an anonymous caller is upgraded in place (same user ID). */
  | "signUp"
  /** An existing account whose credentials the provider checked; an anonymous caller is merged into it. */
  | "signIn"
  /** OAuth: sign in if the account exists, else sign up. */
  | "signInOrUp"
  /**
   * A user the provider found or made itself (`ConvexCredentials`' `authorize`, which returns a
   * user ID): signed in as that user; an anonymous caller is merged into it, as in "signIn".
   */
  | "user";

export interface CompleteSignIn {
  mode: SignInMode;
  /** "user": the ID of the `users` document to sign in as. */
  userId?: string;
  /**
   * "user": accounts whose secrets the provider checked against these hashes before this
   * sign-in's transaction: it refuses the sign-in if any was replaced since (a reset), as
   * `verifiedSecret` does for a password sign-in.
   */
  verifiedAccounts?: Array<{ provider: string; providerAccountId: string; secret: string }>;
  /** The provider's ID for the account (not for anonymous sign-ins). */
  providerAccountId?: string;
  /** A password hash for a new password account. */
  secret?: string;
  /** Fields for the user document (`name`, `email`, …) on creation or upgrade. */
  profile?: Record<string, Value>;
  /** A rate-limit bucket to refill on success (failed-attempt counters). */
  resetRateLimit?: string;
  /**
   * Anonymous: the provider skipped its checks (CAPTCHA, profile) because the caller was signed
   * in when it looked. The sign-in's transaction looks again, and refuses rather than create a
   * user if the caller's session ended in between (a sign-out or an expiry racing the sign-in).
   */
  onlyIfSignedIn?: boolean;
  /** A one-time code to use up in the sign-in's own transaction (a password reset; codes.ts). */
  consumeCode?: CodeUse;
  /**
   * Sign-in: the account's stored password hash that the provider checked the password
   * against. The check runs in the action, before the sign-in's transaction, so a password
   * reset can commit in between; the transaction refuses the sign-in if the hash is no longer
   * this one (else a sign-in with the old password would outlive the reset that ended every
   * session).
   */
  verifiedSecret?: string;
}

export interface SignInContext {
  ctx: ActionCtx;
  params: Record<string, Value>;
  /** The verifier the client brought back (OAuth), or null. */
  verifier: string | null;
  /** The caller's IP (per `clientIp`), or null for server-internal calls. */
  clientIp: string | null;
  config: ResolvedAuthConfig;
  /** Runs one store operation in its own transaction (see store.ts, `PROVIDER_STORE_OPS`). */
  store(op: ProviderStoreOp): Promise<Value>;
  /** Creates, upgrades or merges the user, ends the caller's session and issues a new token. */
  completeSignIn(input: CompleteSignIn): Promise<SignInResult>;
}

/** How a provider keeps account secrets: what `createAccount`, `retrieveAccount` and `modifyAccountCredentials` use for its accounts. */
export interface SecretCrypto {
  /** The value to store for `secret` (a salted, slow hash). */
  hashSecret(secret: string): Promise<string>;
  /** Whether `secret` is the one `hash` was made from. */
  verifySecret(secret: string, hash: string): Promise<boolean>;
}

export interface AuthProvider {
  /** What clients pass to `signIn(id, params)`. */
  readonly id: string;
  readonly type: "anonymous" | "credentials" | "oauth";
  /** How its accounts' secrets are hashed and checked (accounts.ts); scrypt when absent. */
  readonly crypto?: SecretCrypto;
  /**
   * The account ID as the provider's own sign-ins look it up (the Password provider's trimmed,
   * lower-case email), applied to the IDs given to `createAccount` and the other account
   * helpers, so an account they make is the one a sign-in finds.
   */
  normalizeAccountId?(id: string): string;
  signIn(context: SignInContext): Promise<SignInResult>;
  /** HTTP routes the provider needs (an OAuth callback), added by `auth.addHttpRoutes(http)`. */
  addHttpRoutes?(http: HttpRouter, helpers: ProviderHttpHelpers): void;
}

export interface ProviderHttpHelpers {
  /** Runs one store operation from an HTTP action (store.ts, `PROVIDER_STORE_OPS`). */
  store(ctx: ActionCtx, op: ProviderStoreOp): Promise<Value>;
  config: ResolvedAuthConfig;
}

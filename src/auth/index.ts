/**
 * `walkin/auth`: sign-in for Walk-in apps. Anonymous users from the first visit, password and
 * OAuth accounts, upgrade in place and merge into existing accounts, opaque session tokens
 * checked inside every transaction (revocation is immediate), rate limits and cleanup.
 *
 * @example
 * // functions/auth.ts
 * import { walkinAuth } from "walkin/auth";
 * import { Anonymous } from "walkin/auth/providers/Anonymous";
 * import { Password } from "walkin/auth/providers/Password";
 * export const { auth, signIn, signOut, store, isAuthenticated, currentSession, listSessions, revokeSession, revokeOtherSessions } =
 *   walkinAuth({ providers: [Anonymous, Password()] });
 */
export { walkinAuth, convexAuth, type AuthHooks, type SignInResponse } from "./walkinAuth.js";
export { authTables } from "./tables.js";
export { getAuthUserId, getAuthSessionId } from "./identity.js";
export { createAccount, retrieveAccount, modifyAccountCredentials, invalidateSessions, type AccountAndUser } from "./accounts.js";
export { turnstile, hCaptcha, type CaptchaVerifier, type SiteverifyOptions } from "./captcha.js";
export { hashPassword, verifyPassword, type ScryptParams } from "./passwordHash.js";
export type { WalkinAuthConfig, AuthCallbacks, RateLimit } from "./config.js";
export type { CallbackProvider, SignInType, UserCallbackArgs } from "./callbacks.js";
export type { AuthProvider, SignInContext, SignInResult, SignInMode, CompleteSignIn, SecretCrypto } from "./providers/types.js";

/**
 * The client's view of the `walkin/auth` server functions: their wire shapes and references.
 *
 * These are written out here, not imported from `src/auth/`, because the server half pulls in
 * Node-only code (hashing, providers) that must never reach a browser bundle. The shapes are
 * the contract of `auth:signIn`, `auth:signOut` and `auth:currentSession`.
 */
import { makeFunctionReference, type FunctionReference } from "../../server/api.js";
import type { Value } from "../../values/value.js";

/** The args of the `signIn` action. */
export interface SignInArgs {
  provider?: string;
  params?: Value;
  verifier?: string;
  sessionId?: string;
  newSessionId?: string;
}

/** What the `signIn` action returns. */
export type SignInResult =
  /** A new auth session: the client stores `token` and re-authenticates its socket. */
  | { kind: "signedIn"; token: string; userId: string; isAnonymous: boolean }
  /** Already signed in anonymously as `userId`: the current token stays. */
  | { kind: "unchanged"; userId: string; isAnonymous: boolean }
  /** OAuth: go to `redirect`; the provider sends the browser back with `?code=`. */
  | { kind: "redirect"; redirect: string; verifier: string }
  /** Started a flow with more steps (a code was sent); nothing to store. */
  | { kind: "started" };

/** What `currentSession` returns for the calling token (null: none, revoked or expired). */
export interface CurrentSession {
  userId: string;
  isAnonymous: boolean;
  /** The auth session's ID (a row of `authSessions`), as `revokeSession({ authSessionId })` takes it. */
  authSessionId: string;
  provider: string;
}

/** References to the three functions, under the module path where `walkinAuth()` is exported. */
export interface AuthFunctions {
  signIn: FunctionReference<"action", "public", SignInArgs, SignInResult>;
  signOut: FunctionReference<"mutation", "public", { sessionId?: string }, unknown>;
  currentSession: FunctionReference<"query", "public", Record<string, never>, CurrentSession | null>;
}

export function authFunctions(module: string): AuthFunctions {
  return {
    signIn: makeFunctionReference<"action", SignInArgs, SignInResult>(`${module}:signIn`),
    signOut: makeFunctionReference<"mutation", { sessionId?: string }, unknown>(`${module}:signOut`),
    currentSession: makeFunctionReference<"query", Record<string, never>, CurrentSession | null>(`${module}:currentSession`),
  };
}

/**
 * The auth state a UI renders from. `isLoading` is true while a stored token has not been
 * checked by the server yet (and during server rendering).
 *
 * @example
 * const { isLoading, isAuthenticated, token } = auth.getSnapshot();
 * if (token) await fetch("/api/export", { headers: { Authorization: `Bearer ${token}` } });
 */
export interface AuthSnapshot {
  readonly isLoading: boolean;
  readonly isAuthenticated: boolean;
  readonly isAnonymous: boolean;
  readonly userId: string | null;
  /** The auth token, for calls made outside Walk-in (an HTTP action with `Authorization`). Never log it. */
  readonly token: string | null;
}

/**
 * A session ID to refresh on sign-in and sign-out (see `walkin/sessions/browser`).
 *
 * @example
 * const source = createSessionIdSource({ store: sessionStorageStore("walkin-session-id"), scope: "tab" });
 * const session = { get sessionId() { return source.current!; }, refresh: source.refresh };
 * await auth.signIn("anonymous", undefined, { session });
 */
export interface SessionRefresh {
  /**
   * The current session ID, sent as `sessionId`. Read when the call's turn comes (calls run one
   * at a time): make it a getter of the source's current ID, so that a call queued behind a
   * sign-in that switched the ID sends the new one.
   */
  sessionId: string;
  /** Switches to a new ID once `beforeUpdate(newId)` resolves; keeps the old one if it throws. */
  refresh: (beforeUpdate: (newId: string) => Promise<void>) => Promise<unknown>;
}

/**
 * Options of `signIn` and `signOut`.
 *
 * @example
 * await auth.signOut({ session: { get sessionId() { return source.current!; }, refresh: source.refresh } });
 */
export interface AuthCallOptions {
  /** Refresh this session ID with the sign-in (data carried over) or sign-out (nothing carried). */
  session?: SessionRefresh;
}

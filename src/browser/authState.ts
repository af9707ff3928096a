/**
 * Authentication, without I/O: when to fetch a token, when to send it, when to tell the app.
 * Methods return effects that the client carries out (call `fetchToken`, send an Authenticate,
 * call `onChange`), so every step here is a plain state change that tests drive directly.
 *
 *   none ──setAuth──► fetching ──token──► waiting ──Transition at its identity version──► authenticated
 *                        │   ▲              │                                              │
 *                        │   └── AuthError, first time: fetch with forceRefreshToken ──────┘
 *                        └─ null / throw, or AuthError again ──► none (sign out, onChange(false))
 *
 * A token the server accepted can stop working later (revoked, expired): the server says so
 * with AuthExpired, and `authenticated` goes back to `fetching` with `forceRefreshToken`, so
 * a `fetchToken` that has nothing newer leads to `none` and `onChange(false)`.
 *
 * While `fetching`, the client holds back new queries, mutations and actions, so work started
 * right after `setAuth` runs as the signed-in user instead of running twice. A token is
 * confirmed by the first Transition whose identity version includes it: only then does
 * `onChange(true)` fire. Reconnects re-send the token (client.ts, `flush`); if the server
 * refuses it, the AuthError path above fetches a fresh one, once.
 */

export type FetchToken = (args: { forceRefreshToken: boolean }) => Promise<string | null | undefined>;

interface AuthConfig {
  readonly fetchToken: FetchToken;
  readonly onChange: (isAuthenticated: boolean) => void;
}

type AuthPhase =
  | { kind: "none" }
  | { kind: "fetching"; config: AuthConfig; generation: number; refreshed: boolean }
  | { kind: "waiting"; config: AuthConfig; identityVersion: number | null; refreshed: boolean }
  | { kind: "authenticated"; config: AuthConfig };

export type AuthEffect =
  | { type: "fetchToken"; fetchToken: FetchToken; forceRefreshToken: boolean; generation: number }
  /** Send this token (null: sign out); then report the identity version with `onAuthenticateSent`. */
  | { type: "authenticate"; token: string | null }
  | { type: "notify"; onChange: (isAuthenticated: boolean) => void; isAuthenticated: boolean };

export class AuthState {
  private phase: AuthPhase = { kind: "none" };
  private generation = 0;
  /** What the app was last told, so `onChange` fires only on a change. */
  private lastNotified: boolean | undefined;

  set(fetchToken: FetchToken, onChange: (isAuthenticated: boolean) => void = () => {}): AuthEffect[] {
    this.lastNotified = undefined;
    return this.fetch({ fetchToken, onChange }, false);
  }

  clear(): AuthEffect[] {
    this.generation++;
    this.lastNotified = undefined;
    const hadAuth = this.phase.kind !== "none";
    this.phase = { kind: "none" };
    return hadAuth ? [{ type: "authenticate", token: null }] : [];
  }

  /** `fetchToken` returned (an Error if it threw). Stale results (setAuth/clearAuth since) are ignored. */
  tokenFetched(generation: number, token: string | null | undefined | Error): AuthEffect[] {
    const phase = this.phase;
    if (phase.kind !== "fetching" || phase.generation !== generation) return [];
    if (typeof token !== "string" || token.length === 0) return this.signOut(phase.config);
    this.phase = { kind: "waiting", config: phase.config, identityVersion: null, refreshed: phase.refreshed };
    return [{ type: "authenticate", token }];
  }

  /** The Authenticate for the token was handed to the connection under this identity version. */
  onAuthenticateSent(identityVersion: number): void {
    if (this.phase.kind === "waiting") this.phase.identityVersion = identityVersion;
  }

  /** A new connection: the token is not sent on it yet (`onAuthenticateSent` says when it is), so no Transition of it confirms the token. */
  onRestart(): void {
    if (this.phase.kind === "waiting") this.phase.identityVersion = null;
  }

  /** A Transition computed under `identityVersion` was applied. */
  onTransition(identityVersion: number): AuthEffect[] {
    const phase = this.phase;
    if (phase.kind !== "waiting" || phase.identityVersion === null || identityVersion < phase.identityVersion) return [];
    this.phase = { kind: "authenticated", config: phase.config };
    return this.notify(phase.config, true);
  }

  /** The server refused the current token. */
  onAuthError(): AuthEffect[] {
    const phase = this.phase;
    if (phase.kind === "none" || phase.kind === "fetching") return [];
    if (phase.kind === "waiting" && phase.refreshed) return this.signOut(phase.config);
    return this.fetch(phase.config, true);
  }

  /** The server reported that the accepted token stopped resolving to a user. */
  onAuthExpired(): AuthEffect[] {
    const phase = this.phase;
    if (phase.kind !== "authenticated") return [];
    return this.fetch(phase.config, true);
  }

  /** True while a token is being fetched: new work waits for it. */
  isFetching(): boolean {
    return this.phase.kind === "fetching";
  }

  isAuthenticated(): boolean {
    return this.phase.kind === "authenticated";
  }

  private fetch(config: AuthConfig, forceRefreshToken: boolean): AuthEffect[] {
    const generation = ++this.generation;
    this.phase = { kind: "fetching", config, generation, refreshed: forceRefreshToken };
    return [{ type: "fetchToken", fetchToken: config.fetchToken, forceRefreshToken, generation }];
  }

  private signOut(config: AuthConfig): AuthEffect[] {
    this.generation++;
    this.phase = { kind: "none" };
    return [{ type: "authenticate", token: null }, ...this.notify(config, false)];
  }

  private notify(config: AuthConfig, isAuthenticated: boolean): AuthEffect[] {
    if (this.lastNotified === isAuthenticated) return [];
    this.lastNotified = isAuthenticated;
    return [{ type: "notify", onChange: config.onChange, isAuthenticated }];
  }
}

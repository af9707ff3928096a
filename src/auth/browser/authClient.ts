/**
 * `AuthClient`: the page's sign-in, framework-free. It runs sign-ins and sign-outs (one at a
 * time, identical concurrent sign-ins shared), OAuth redirects, and the session-ID refresh
 * that goes with them; `TokenTracker` keeps the resulting token, checks it live and follows
 * the other tabs. React (`walkin/auth/react`) only renders what this holds.
 */
import type { WalkinClient } from "../../browser/index.js";
import { isWalkinError, walkinError } from "../../values/errors.js";
import { convertToJson } from "../../values/json.js";
import type { Value } from "../../values/value.js";
import { hasRedirectCode, navigateWithLocation, storeVerifier, takeRedirectCode, type Navigate } from "./redirect.js";
import { browserLocks, TabLock, type LocksLike } from "./tabLock.js";
import { listenToOtherTabs, type ChannelLike, type TabSync } from "./tabs.js";
import { openTokenStorage, type AuthStorageOption, type TokenStorage } from "./tokenStorage.js";
import { TokenTracker } from "./tokenTracker.js";
import {
  authFunctions,
  type AuthCallOptions,
  type AuthFunctions,
  type AuthSnapshot,
  type SessionRefresh,
  type SignInArgs,
  type SignInResult,
} from "./types.js";

/**
 * @example
 * new AuthClient(client, { storage: "sessionStorage", storageKey: "shop-auth", module: "lib/auth" });
 */
export interface AuthClientOptions {
  /** Where the token is kept (default "localStorage": every tab shares one sign-in). */
  storage?: AuthStorageOption;
  /** The storage key (default "walkin-auth-token"); the OAuth verifier uses `${storageKey}:verifier`. */
  storageKey?: string;
  /** The module path where `walkinAuth()` is exported (default "auth", i.e. functions/auth.ts). */
  module?: string;
  /** Leaves for an OAuth provider (default: `window.location.href = url`). */
  navigate?: Navigate;
  /** The channel to other tabs (default a BroadcastChannel named after the key); null for none. */
  channel?: ChannelLike | null;
  /**
   * How the tabs sharing localStorage take turns (default `navigator.locks`, where the browser
   * has it); null for none.
   */
  locks?: LocksLike | null;
}

/**
 * What `signIn` resolves with. The token is deliberately absent (results get logged).
 *
 * @example
 * const outcome = await auth.signIn("password", { email, flow: "reset" });
 * if (outcome.kind === "started") showCodeForm();
 */
export type SignInOutcome =
  | { kind: "signedIn"; userId: string; isAnonymous: boolean }
  | { kind: "unchanged"; userId: string; isAnonymous: boolean }
  | { kind: "redirect"; redirect: string }
  | { kind: "started" };

/**
 * Sign-in params: a plain object, or a form's fields (string fields only).
 *
 * @example
 * <form onSubmit={(e) => { e.preventDefault(); void signIn("password", new FormData(e.currentTarget)); }}>
 */
export type SignInParams = Record<string, Value> | FormData;

/** Thrown inside a session refresh to keep the session ID when nothing was signed in. */
const KEEP_SESSION = Symbol("keep session");

/**
 * @example
 * const auth = new AuthClient(client, { storage: "localStorage" });
 * auth.subscribe(() => render(auth.getSnapshot()));
 * await auth.handleRedirect();              // finishes an OAuth sign-in, if the URL has ?code=
 * await auth.signIn("anonymous");
 * await client.mutation(api.messages.send, { body: "hi" }); // runs as the signed-in user
 * await auth.signOut();
 */
export class AuthClient {
  private readonly storage: TokenStorage;
  /** Where the OAuth verifier waits for the provider to send the browser back: it must outlive that page load. */
  private readonly verifierStorage: TokenStorage;
  private readonly key: string;
  private readonly fns: AuthFunctions;
  private readonly navigate: Navigate;
  private readonly tracker: TokenTracker;
  private readonly signIns = new Map<string, Promise<SignInOutcome>>();
  private readonly tabs: TabSync | undefined;
  private readonly tabLock: TabLock | null;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** The exchange of this page's OAuth `?code=`, while it runs. */
  private codeExchange: Promise<SignInOutcome> | undefined;

  constructor(
    private readonly client: WalkinClient,
    options: AuthClientOptions = {},
  ) {
    this.storage = openTokenStorage(options.storage);
    this.verifierStorage = this.storage.kind === "memory" ? openTokenStorage("sessionStorage") : this.storage;
    this.key = options.storageKey ?? "walkin-auth-token";
    this.fns = authFunctions(options.module ?? "auth");
    this.navigate = options.navigate ?? navigateWithLocation;
    // Only localStorage is shared by tabs; the others need no turns.
    this.tabLock =
      this.storage.kind === "localStorage" ? new TabLock(this.storage, this.key, options.locks !== undefined ? options.locks : browserLocks()) : null;
    this.tracker = new TokenTracker({
      client,
      storage: this.storage,
      key: this.key,
      currentSession: this.fns.currentSession,
      announce: () => this.tabs?.announce(),
      tabLock: this.tabLock,
    });
    this.tracker.start();
    // Loaded back from the provider: signed out would show `<Unauthenticated>` until
    // `handleRedirect` has exchanged the code, so the page shows "loading" until then.
    if (hasRedirectCode(this.verifierStorage, `${this.key}:verifier`)) this.tracker.exchangingCode(true);
    if (this.storage.kind === "localStorage") {
      this.tabs = listenToOtherTabs(this.key, options.channel, () => this.tracker.adoptStored());
    }
  }

  /** Calls `listener` after each change of the snapshot; returns the unsubscribe function. */
  subscribe = (listener: () => void): (() => void) => this.tracker.subscribe(listener);

  /** The current state; the same object until something in it changes. */
  getSnapshot = (): AuthSnapshot => this.tracker.getSnapshot();

  /**
   * Signs in with `provider`. Identical calls made while one is in flight share it (two clicks
   * make one anonymous user); sign-ins and sign-outs run one at a time, across the tabs too
   * with localStorage: a tab whose turn comes after another tab signed in first adopts that
   * tab's token (so two tabs signing in anonymously at once make one user). Server errors
   * (`RATE_LIMITED` with `data.retryAfterMs`, `INVALID_ARGUMENT`, …) are rethrown as they
   * came, and leave the stored token as it was.
   */
  signIn(provider?: string, params?: SignInParams, options: AuthCallOptions = {}): Promise<SignInOutcome> {
    return this.deduplicated({ provider, params: params === undefined ? undefined : toParams(params) }, options.session);
  }

  /** Ends the auth session on the server and forgets the token, here and in the other tabs. */
  signOut(options: AuthCallOptions = {}): Promise<void> {
    // A sign-in asked for after this sign-out must run after it, not join one queued before it
    // (which would leave the page signed out although the last click was "sign in").
    this.signIns.clear();
    return this.serialized(async () => {
      const token = this.tracker.token;
      if (token === null) return;
      let failure: unknown;
      const end = async (sessionId?: string) => {
        try {
          await this.client.mutation(this.fns.signOut, sessionId === undefined ? {} : { sessionId });
        } catch (error) {
          failure = error; // signed out here anyway; the error is rethrown below
        }
        this.tracker.forget(token);
      };
      const session = options.session;
      if (session) await session.refresh(() => end(session.sessionId));
      else await end();
      // UNAUTHENTICATED: the server had already ended this session, which is what we wanted.
      if (failure !== undefined && !(isWalkinError(failure) && failure.code === "UNAUTHENTICATED")) throw failure;
    });
  }

  /**
   * Finishes an OAuth sign-in when the page was loaded with `?code=` (and this browser started
   * it): removes the code from the URL and signs in with it. Resolves null when there is none.
   * Call it once the client is made (`AuthProvider` does): until it settles, a page loaded with
   * such a code reports `isLoading: true` rather than signed out.
   */
  handleRedirect(options: AuthCallOptions = {}): Promise<SignInOutcome | null> {
    const taken = this.closed ? null : takeRedirectCode(this.verifierStorage, `${this.key}:verifier`);
    if (taken === null) {
      // No code (or a second call, StrictMode's: the first one took it, and its end ends the loading).
      if (this.codeExchange === undefined) this.tracker.exchangingCode(false);
      return Promise.resolve(null);
    }
    this.tracker.exchangingCode(true);
    const exchange = this.deduplicated({ params: { code: taken.code }, verifier: taken.verifier }, options.session);
    this.codeExchange = exchange;
    // Settles after the sign-in stored its token (signed in), or failed (signed out): no "signed out" in between.
    const settle = () => {
      if (this.codeExchange !== exchange) return;
      this.codeExchange = undefined;
      this.tracker.exchangingCode(false);
    };
    exchange.then(settle, settle);
    return exchange;
  }

  /** Stops listening to the server and the other tabs. The token stays in storage and on the client. */
  close(): void {
    this.closed = true;
    this.tracker.close();
    this.tabs?.close();
  }

  // ------------------------------------------------------------------ operations

  private deduplicated(args: SignInArgs, session: SessionRefresh | undefined): Promise<SignInOutcome> {
    if (this.closed) return Promise.reject(closedError());
    let key: string;
    try {
      key = JSON.stringify(convertToJson([args.provider ?? null, args.params ?? null, args.verifier ?? null], "params"));
    } catch (error) {
      return Promise.reject(error); // params that are not values (a function, a class instance)
    }
    const running = this.signIns.get(key);
    if (running) return running;
    const promise = this.serialized(() => this.runSignIn(args, session));
    // Only the last queued sign-in may be joined: one before another call would be overtaken by it.
    this.signIns.clear();
    this.signIns.set(key, promise);
    const forget = () => void (this.signIns.get(key) === promise && this.signIns.delete(key));
    promise.then(forget, forget);
    return promise;
  }

  /**
   * With a session, the action runs inside `refresh`, so the session ID changes only if the
   * sign-in succeeded, and the token is in place before the new ID is: session queries
   * re-subscribe under the new user. A result that signed nobody in keeps the session ID.
   *
   * Signed in already (a guest signing up, or signing in to an account), the sign-in ends the
   * current session before its action returns the new token: the client holds the results of
   * that moment, so the app's queries go from the old user's view straight to the new one's
   * (`holdResultsAcrossSignIn`, written out step by step in browser/identityHandover.ts). The
   * hold ends with the new token's first results, or here when no new token came.
   */
  private async runSignIn(args: SignInArgs, session: SessionRefresh | undefined): Promise<SignInOutcome> {
    let outcome: SignInOutcome | undefined;
    const signIn = async (extra: Pick<SignInArgs, "sessionId" | "newSessionId">) => {
      const release = this.tracker.token === null ? () => {} : this.client.holdResultsAcrossSignIn(this.fns.currentSession);
      let result: SignInResult;
      try {
        result = await this.client.action(this.fns.signIn, { ...withoutUndefined(args), ...extra });
        outcome = this.apply(result);
      } catch (error) {
        release();
        throw error;
      }
      // No new token in use (none came, or this AuthClient was closed meanwhile): nothing ends the hold but this.
      if (result.kind !== "signedIn" || this.tracker.token !== result.token) release();
      if (result.kind !== "signedIn") throw KEEP_SESSION;
    };
    try {
      if (session) await session.refresh((newSessionId) => signIn({ sessionId: session.sessionId, newSessionId }));
      else await signIn({});
    } catch (error) {
      if (error !== KEEP_SESSION) throw error;
    }
    return outcome!;
  }

  private apply(result: SignInResult): SignInOutcome {
    switch (result.kind) {
      case "signedIn":
        this.tracker.store(result.token, { userId: result.userId, isAnonymous: result.isAnonymous });
        return { kind: "signedIn", userId: result.userId, isAnonymous: result.isAnonymous };
      case "unchanged":
        // Already signed in: anonymously, or as a real user who called signIn("anonymous").
        this.tracker.use(this.tracker.token, { userId: result.userId, isAnonymous: result.isAnonymous });
        return { kind: "unchanged", userId: result.userId, isAnonymous: result.isAnonymous };
      case "redirect":
        storeVerifier(this.verifierStorage, `${this.key}:verifier`, result.verifier);
        this.navigate(result.redirect);
        return { kind: "redirect", redirect: result.redirect };
      case "started":
        return { kind: "started" };
      default:
        return result satisfies never;
    }
  }

  /**
   * Runs `task` after every earlier sign-in and sign-out (of every tab, with localStorage: it
   * then starts from the token the storage holds), holding revocations meanwhile.
   */
  private serialized<T>(task: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(closedError());
    const tabLock = this.tabLock;
    const held = () => this.tracker.hold(task);
    const run = tabLock
      ? () =>
          tabLock.exclusive(() => {
            this.tracker.adoptStored();
            return held();
          }, { mark: true })
      : held;
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => {});
    return result;
  }
}

function toParams(params: SignInParams): Record<string, Value> {
  if (typeof FormData !== "undefined" && params instanceof FormData) {
    const fields: Record<string, Value> = {};
    params.forEach((value, name) => {
      if (typeof value === "string") fields[name] = value;
    });
    return fields;
  }
  return params as Record<string, Value>;
}

function withoutUndefined(args: SignInArgs): SignInArgs {
  return Object.fromEntries(Object.entries(args).filter(([, value]) => value !== undefined));
}

function closedError() {
  return walkinError("MISUSE", "This AuthClient was closed. Did you call close() too early? Create a new AuthClient.");
}

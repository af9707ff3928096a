/**
 * `TokenTracker`: which token the page uses and whom it belongs to. It is the one place that
 * calls `setAuth` / `clearAuth` and watches `auth:currentSession`; `AuthClient` decides when
 * tokens change (sign-in, sign-out, other tabs) and tells it.
 *
 *   signedOut ──signIn──────────────────────────────► signedIn(token, user)
 *       ▲  └──token in storage / other tab──► checking(token) ──currentSession──┘   │
 *       └──── signOut; currentSession null; token refused; other tab signed out ────┘
 *
 * A signed-in tab that adopts another tab's token goes to `checking` too, but keeps showing
 * its user meanwhile (`adoptStored`): only a page with no user yet shows "loading".
 *
 * Whom to believe, step by step. After a token change, `currentSession` results still come
 * from the previous identity until the server has switched: they are ignored until the
 * `WalkinClient` reports the new token accepted (`onChange(true)`, called once the results of
 * that identity are in place). From then on a `null` means the session was revoked or expired.
 * Every token change bumps `generation`, so callbacks of an older token do nothing.
 *
 * A revocation seen while a sign-in or sign-out runs (`hold`) waits until it ends: an upgrade
 * may end the old session just before its action returns the new token, and the page must not
 * flash "signed out" (nor tell the other tabs so) in between.
 *
 * While an OAuth `?code=` is being exchanged (`exchangingCode`), a page with no token shows
 * "loading", not "signed out": the sign-in is on its way, and `<Unauthenticated>` content
 * would flash until it lands.
 *
 * Another tab's sign-in ends this tab's session too when they share the token (a guest
 * signing up in tab A ends the guest's session, which tab B uses), and B hears of A's new
 * token only through storage, possibly after its own queries re-ran as no one. Step by step:
 *  1. A marks the storage busy (`tabLock.ts`), then calls the server, which ends session T1.
 *  2. B's live queries re-run under T1: `currentSession` turns null. Before B's page sees that
 *     Transition, the client asks this tracker (`holdResultsWhenSessionEnds`): B shows a
 *     user of T1 and another tab is busy, or has already stored a newer token, so B holds its
 *     results and does not sign out (`holdForOtherTab`).
 *  3. A stores T2, then removes its marker; B adopts T2 on the storage event (or on its next
 *     look at the storage, `awaitOtherTab`), and T2's first results end the hold: B goes from
 *     the guest's results to the account's, as A does.
 *  4. If A removes its marker and T1 is still stored (its sign-in failed, or it was a sign-out
 *     that left nothing), or A died with its marker in place and OTHER_TAB_WAIT_MS passed, the
 *     session really ended: B shows what the server sent and signs out.
 * A refused token (`forceRefreshToken`: the server said so on reconnect, or at a heartbeat)
 * waits for another tab the same way.
 *
 * A revocation seen otherwise stops using the token at once; removing it from a storage the
 * tabs share waits for the tab lock and is skipped while another tab signs in or out (see
 * `tabLock.ts`). A token seen refused is never adopted from storage again.
 */
import type { WalkinClient, Watch } from "../../browser/index.js";
import { getFunctionName, type FunctionReference } from "../../server/api.js";
import type { TabLock } from "./tabLock.js";
import type { TokenStorage } from "./tokenStorage.js";
import type { AuthSnapshot, CurrentSession } from "./types.js";

interface User {
  userId: string;
  isAnonymous: boolean;
}

type Phase =
  | { kind: "signedOut" }
  /** `showing`: whom the page showed before another tab switched the token (see `adoptStored`). */
  | { kind: "checking"; token: string; showing?: User }
  | ({ kind: "signedIn"; token: string } & User);

const SIGNED_OUT: AuthSnapshot = Object.freeze({ isLoading: false, isAuthenticated: false, isAnonymous: false, userId: null, token: null });
const LOADING: AuthSnapshot = Object.freeze({ ...SIGNED_OUT, isLoading: true });

export interface TokenTrackerOptions {
  client: WalkinClient;
  storage: TokenStorage;
  key: string;
  currentSession: FunctionReference<"query", "public", Record<string, never>, CurrentSession | null>;
  /** Tells the other tabs that this one changed the stored token. */
  announce: () => void;
  /** With a storage the tabs share: their turns at changing it. */
  tabLock: TabLock | null;
}

/** How often a tab waiting for another tab's sign-in looks at the storage again. */
const BUSY_RECHECK_MS = 200;

/**
 * Longest time a tab whose session ended keeps showing its results for another tab's sign-in
 * (one that died mid-sign-in leaves its marker for a minute).
 */
const OTHER_TAB_WAIT_MS = 10_000;

/** How many refused tokens are remembered (a page sees few). */
const REMEMBERED_REFUSALS = 16;

export class TokenTracker {
  private readonly listeners = new Set<() => void>();
  private phase: Phase = { kind: "signedOut" };
  private snapshot: AuthSnapshot = SIGNED_OUT;
  private generation = 0;
  private confirmed = false;
  private watch: Watch<CurrentSession | null> | undefined;
  private stopWatch: (() => void) | undefined;
  private holds = 0;
  private heldRevocation: string | undefined;
  private readonly refused = new Set<string>();
  private closed = false;
  private exchanging = false;
  private standby: { release: () => void; stop: () => void } | undefined;

  constructor(private readonly options: TokenTrackerOptions) {}

  get token(): string | null {
    return this.phase.kind === "signedOut" ? null : this.phase.token;
  }

  subscribe = (listener: () => void): (() => void) => {
    const wrapped = () => listener();
    this.listeners.add(wrapped);
    return () => void this.listeners.delete(wrapped);
  };

  getSnapshot = (): AuthSnapshot => this.snapshot;

  /**
   * At start: the stored token, or none; the client may hold a token another `AuthClient`
   * gave it, which must not keep signing this one's calls.
   */
  start(): void {
    const { client, currentSession, tabLock } = this.options;
    if (tabLock) this.standby = client.holdResultsWhenSessionEnds(currentSession, () => this.holdForOtherTab());
    this.adoptStored();
    if (this.token === null) this.options.client.clearAuth();
  }

  /**
   * Follows the storage: at start, before a sign-in or sign-out, and when another tab wrote it.
   * A tab that shows a user and adopts another tab's token (that tab signed up, or in as
   * someone else) keeps showing that user until the server answers for the new token, as its
   * queries do (they run under the old token until then): "loading" would unmount what
   * `<Authenticated>` shows, for one round trip.
   */
  adoptStored(): void {
    const stored = this.options.storage.get(this.options.key);
    const phase = this.phase;
    const showing = phase.kind === "signedIn" ? { userId: phase.userId, isAnonymous: phase.isAnonymous } : phase.kind === "checking" ? phase.showing : undefined;
    this.switchTo(stored !== null && this.refused.has(stored) ? null : stored, undefined, showing);
  }

  /** A sign-in gave `token` for `user`: keep it, use it, tell the other tabs (not once closed: a newer client owns the storage). */
  store(token: string, user: User): void {
    if (this.closed) return;
    this.options.storage.set(this.options.key, token);
    this.use(token, user);
    this.options.announce();
  }

  /**
   * Switches to `token` (null: none) and, when known, whom it belongs to. A call with the
   * token already in use only updates the user.
   */
  use(token: string | null, user?: User): void {
    this.switchTo(token, user, undefined);
  }

  private switchTo(token: string | null, user: User | undefined, showing: User | undefined): void {
    if (this.closed) return;
    if (token === this.token) {
      if (token !== null && user) this.setPhase({ kind: "signedIn", token, ...user });
      return;
    }
    const generation = ++this.generation;
    this.confirmed = false;
    const { client } = this.options;
    if (token === null) {
      this.stopWatch?.();
      this.stopWatch = undefined;
      client.clearAuth();
      return this.setPhase({ kind: "signedOut" });
    }
    client.setAuth(
      // Asked to refresh (the server refused the token): an opaque session token has nothing
      // newer, and sending it again would only cost a round trip before the same refusal;
      // unless another tab is replacing it: adopting its token makes this answer moot.
      async ({ forceRefreshToken }) => {
        if (!forceRefreshToken) return token;
        if (this.otherTabReplacing(token)) await this.awaitOtherTab(token, generation);
        return null;
      },
      (accepted) => this.onAuthChange(generation, token, accepted),
    );
    // After setAuth: the subscription then goes out after the token, under the new identity.
    this.watch ??= client.watchQuery(this.options.currentSession, {});
    this.stopWatch ??= this.watch.onUpdate(() => this.onSessionResult());
    this.setPhase(user ? { kind: "signedIn", token, ...user } : { kind: "checking", token, ...(showing ? { showing } : {}) });
  }

  /**
   * Removes `token` from storage if it is still there (another tab may have stored a newer
   * one, which this tab then adopts), tells the other tabs, and stops using it.
   */
  forget(token: string): void {
    const { storage, key } = this.options;
    if (storage.get(key) === token) {
      storage.remove(key);
      this.options.announce();
    }
    const stored = storage.get(key);
    // A storage that would not let go of the token must not make us adopt it again.
    this.use(stored === token ? null : stored);
  }

  /** Runs `task` with revocations held until it ends (see the file header). */
  async hold<T>(task: () => Promise<T>): Promise<T> {
    this.holds++;
    try {
      return await task();
    } finally {
      this.holds--;
      const held = this.heldRevocation;
      this.heldRevocation = undefined;
      if (held !== undefined) this.revoked(held);
    }
  }

  /** Whether an OAuth code is being exchanged for a token (see the file header). */
  exchangingCode(exchanging: boolean): void {
    this.exchanging = exchanging;
    this.setPhase(this.phase);
  }

  close(): void {
    this.closed = true;
    this.standby?.stop();
    this.generation++;
    this.stopWatch?.();
    this.stopWatch = undefined;
    this.listeners.clear();
  }

  private onAuthChange(generation: number, token: string, accepted: boolean): void {
    if (this.closed || generation !== this.generation) return;
    if (!accepted) return this.revoked(token);
    this.confirmed = true;
    this.onSessionResult();
  }

  private onSessionResult(): void {
    const token = this.token;
    if (!this.confirmed || token === null || !this.watch) return;
    let session: CurrentSession | null | undefined;
    try {
      session = this.watch.localQueryResult();
    } catch (error) {
      console.warn(
        `Walk-in auth: ${getFunctionName(this.options.currentSession)} failed: ${error instanceof Error ? error.message : String(error)}. ` +
          "Did you export it from functions/auth.ts, and does the `module` option name that module?",
      );
      return;
    }
    if (session === undefined) return;
    if (session === null) return this.revoked(token);
    this.setPhase({ kind: "signedIn", token, userId: session.userId, isAnonymous: session.isAnonymous });
  }

  /**
   * `currentSession` turned null, and the page has not seen it yet: whether to hold what it
   * shows while another tab replaces the token (steps 2-4 of the file header).
   */
  private holdForOtherTab(): boolean {
    const token = this.token;
    // Only results of this token's own user are worth holding (`confirmed`).
    if (this.closed || token === null || !this.confirmed || !this.otherTabReplacing(token)) return false;
    const generation = this.generation;
    void this.awaitOtherTab(token, generation).then((replaced) => {
      if (replaced || this.generation !== generation) return;
      // No new token came: the session really ended. Show what the server sent, and sign out.
      this.standby?.release();
      this.revoked(token);
    });
    return true;
  }

  /** Whether another tab is signing in or out, or has stored a token newer than `token`. */
  private otherTabReplacing(token: string): boolean {
    const { tabLock, storage, key } = this.options;
    if (!tabLock) return false;
    const stored = storage.get(key);
    return tabLock.otherTabBusy() || (stored !== null && stored !== token && !this.refused.has(stored));
  }

  /**
   * Waits until another tab's token replaces `token` here (true; its storage event may never
   * come, so the storage is read again meanwhile), or the other tabs are done without one, or
   * OTHER_TAB_WAIT_MS passed (false).
   */
  private async awaitOtherTab(token: string, generation: number): Promise<boolean> {
    const { storage, key, tabLock } = this.options;
    const until = Date.now() + OTHER_TAB_WAIT_MS;
    for (;;) {
      // Not inside the client's handling of a Transition (the first look), nor in a timer of a closed page.
      await Promise.resolve();
      if (this.closed || this.generation !== generation) return true;
      if (storage.get(key) !== token) {
        this.adoptStored(); // the other tab's token, or none (it signed out)
        return true;
      }
      // One tab's writes reach the others in order, and the marker goes after the token: none
      // visible (or a dead tab's) means no token is on its way.
      if (!tabLock?.otherTabBusy() || Date.now() >= until) return false;
      await new Promise((resolve) => setTimeout(resolve, BUSY_RECHECK_MS));
    }
  }

  /** The server no longer accepts `token`: forget it, unless it is no longer ours. */
  private revoked(token: string): void {
    if (this.token !== token) return;
    if (this.holds > 0) {
      this.heldRevocation = token;
      return;
    }
    const { tabLock } = this.options;
    if (!tabLock) return this.forget(token);
    this.remember(token);
    this.use(null);
    const { storage, key } = this.options;
    const tidy = async () => {
      // Adopted a newer token meanwhile (another tab's, heard about): nothing left to do.
      if (this.closed || this.token !== null) return;
      if (tabLock.otherTabBusy()) {
        // Its new token is on its way: look again once it is done (without Web Locks, by polling).
        setTimeout(() => void tabLock.exclusive(tidy, { mark: false }), BUSY_RECHECK_MS);
        return;
      }
      if (storage.get(key) === token) {
        storage.remove(key);
        this.options.announce();
      }
      this.adoptStored();
    };
    void tabLock.exclusive(tidy, { mark: false });
  }

  private remember(token: string): void {
    if (this.refused.size >= REMEMBERED_REFUSALS) this.refused.clear();
    this.refused.add(token);
  }

  private setPhase(phase: Phase): void {
    this.phase = phase;
    const next: AuthSnapshot =
      phase.kind === "signedOut"
        ? this.exchanging
          ? LOADING
          : SIGNED_OUT
        : phase.kind === "checking"
          ? phase.showing
            ? { isLoading: false, isAuthenticated: true, isAnonymous: phase.showing.isAnonymous, userId: phase.showing.userId, token: phase.token }
            : { isLoading: true, isAuthenticated: false, isAnonymous: false, userId: null, token: phase.token }
          : { isLoading: false, isAuthenticated: true, isAnonymous: phase.isAnonymous, userId: phase.userId, token: phase.token };
    const previous = this.snapshot;
    if ((Object.keys(next) as (keyof AuthSnapshot)[]).every((key) => next[key] === previous[key])) return;
    this.snapshot = next;
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (error) {
        console.warn("Walk-in auth: a subscriber threw:", error);
      }
    }
  }
}

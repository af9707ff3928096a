/**
 * Where this page's sign-in lives: per tab (sessionStorage, the default) or per browser
 * (localStorage, shared by every tab, which then see each other's sign-ins and sign-outs).
 *
 * A duplicated tab starts with a copy of sessionStorage, auth token included, so in per-tab
 * mode it would be the same user as the tab it was copied from. walkin/sessions' tab
 * detection spots that (the two tabs hold the same per-tab ID and compare start times over a
 * BroadcastChannel); the later tab then drops the copied token and signs in afresh.
 */
import { createSessionIdSource, sessionStorageStore } from "walkin/sessions/browser";

export type SessionMode = "tab" | "browser";

/** The auth token's key, in sessionStorage or localStorage depending on the mode. */
export const TOKEN_KEY = "walkin-chat-token";
const MODE_KEY = "walkin-chat-session-mode";
const TAB_KEY = "walkin-chat-tab";

/** The mode new tabs start in: the last one chosen in this browser. */
export function storedMode(): SessionMode {
  return localStorage.getItem(MODE_KEY) === "browser" ? "browser" : "tab";
}

/**
 * Remembers the choice. Going per browser with no shared sign-in yet, this tab's sign-in
 * becomes the shared one (the visitor keeps their name); if there is one, the tab joins it.
 */
export function switchMode(next: SessionMode): void {
  if (next === "browser") {
    const mine = sessionStorage.getItem(TOKEN_KEY);
    if (mine && !localStorage.getItem(TOKEN_KEY)) {
      localStorage.setItem(TOKEN_KEY, mine);
      sessionStorage.removeItem(TOKEN_KEY);
    }
  }
  localStorage.setItem(MODE_KEY, next);
}

/**
 * Calls `onDuplicate` once this tab turns out to be a duplicate of a live tab, after dropping
 * the copied token. Returns the stop function.
 */
export function watchForDuplicateTab(onDuplicate: () => void): () => void {
  const source = createSessionIdSource({
    store: sessionStorageStore(TAB_KEY),
    scope: "tab",
    channelName: TAB_KEY,
    onDuplicateTab: () => {
      sessionStorage.removeItem(TOKEN_KEY);
      onDuplicate();
    },
  });
  return () => source.dispose();
}

/** Identifies this tab in the "signing in" marker. */
const thisTab = Math.random().toString(36).slice(2);
const SIGNING_IN_KEY = "walkin-chat-signing-in";
const SIGNING_IN_FOR_MS = 60_000;

function anotherTabIsSigningIn(): boolean {
  const [tab, at] = (localStorage.getItem(SIGNING_IN_KEY) ?? "").split(":");
  return tab !== undefined && tab !== "" && tab !== thisTab && Date.now() - Number(at) < SIGNING_IN_FOR_MS;
}

/**
 * The per-browser token storage of one AuthProvider: localStorage, with two rules.
 *
 * 1. A tab does not delete the shared token while another tab is signing up or in. Signing
 *    up or in ends the guest's session in the same transaction that creates the account's;
 *    the other tabs see that session end (their live `currentSession` turns null) and
 *    walkin/auth removes the token they hold. But localStorage reaches the other tabs after a
 *    short delay: a tab may still read the old token just after the signing tab stored the
 *    new one, and its removal would then delete the new token. So the signing tab marks the
 *    storage first (`oneTabAtATime(…, { rotates: true })`) and the other tabs leave it alone.
 * 2. Every tab ends on the stored token: other tabs' writes arrive as `storage` events (see
 *    main.tsx), and a write by this tab's previous AuthProvider (a sign-in that was still
 *    running when the tab restarted) calls `onStaleWrite`, so the tab restarts once more.
 *
 * Being a custom storage, walkin/auth does not sync it across tabs itself; main.tsx does.
 */
export function sharedTokenStorage(isCurrent: () => boolean, onStaleWrite: () => void) {
  const written = () => {
    if (!isCurrent()) onStaleWrite();
  };
  return {
    getItem: (key: string) => localStorage.getItem(key),
    setItem: (key: string, value: string) => {
      localStorage.setItem(key, value);
      if (key === TOKEN_KEY) written();
    },
    removeItem: (key: string) => {
      if (key === TOKEN_KEY && anotherTabIsSigningIn()) return;
      localStorage.removeItem(key);
      if (key === TOKEN_KEY) written();
    },
  };
}

/**
 * Per browser, runs the sign-ins and sign-outs of all tabs one at a time (Web Locks): a tab
 * that finds itself signed out while another tab is signing in waits, then finds that tab's
 * token in localStorage and adopts it instead of signing in as a new guest over it. With
 * `rotates` (sign-up, sign-in: the current session ends), the other tabs are also told not to
 * delete the shared token meanwhile (see `sharedTokenStorage`). Per tab, it just runs `task`.
 */
export function oneTabAtATime<T>(mode: SessionMode, task: () => Promise<T>, options: { rotates?: boolean } = {}): Promise<T> {
  const locks = mode === "browser" && typeof navigator !== "undefined" ? navigator.locks : undefined;
  if (mode !== "browser") return task();
  const marked = async () => {
    if (options.rotates) localStorage.setItem(SIGNING_IN_KEY, `${thisTab}:${Date.now()}`);
    try {
      return await task();
    } finally {
      if (options.rotates) localStorage.removeItem(SIGNING_IN_KEY);
    }
  };
  return locks ? (locks.request("walkin-chat-sign-in", marked) as Promise<T>) : marked();
}

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

// @vitest-environment jsdom
/**
 * Cross-tab sign-in and sign-out: two `AuthClient`s on one localStorage stand for two tabs
 * (each with its own `WalkinClient`). A real browser fires `storage` events only in the other
 * tabs; here the test dispatches them, or links the two through a fake BroadcastChannel.
 */
import { describe, expect, it, vi } from "vitest";
import { createSessionIdSource, memoryStore } from "../../sessions/browser/index.js";
import { browserLocks, KEY, storageEvent, useFakeAuthTabs } from "./fixtures/tabs.js";
import { AuthClient, type ChannelLike } from "./index.js";

const tabs = useFakeAuthTabs();
const { tab } = tabs;

/** Two channel ends that deliver to each other (asynchronously, as BroadcastChannel does). */
function linkedChannels(): [ChannelLike, ChannelLike] {
  const listeners: ((event: { data: unknown }) => void)[][] = [[], []];
  const end = (me: 0 | 1): ChannelLike => ({
    postMessage: (data) => void queueMicrotask(() => listeners[1 - me]!.forEach((l) => l({ data }))),
    addEventListener: (_type, listener) => void listeners[me]!.push(listener),
    close: () => void (listeners[me] = []),
  });
  return [end(0), end(1)];
}

describe("AuthClient across tabs", () => {
  it("a sign-in in one tab signs the other in as the same user; a sign-out signs it out", async () => {
    const [a, b] = [tab(), tab()];
    await a.signIn("anonymous");
    expect(b.getSnapshot().isAuthenticated).toBe(false);
    storageEvent();
    expect(b.getSnapshot()).toMatchObject({ isLoading: true, token: a.getSnapshot().token });
    await vi.waitFor(() => expect(b.getSnapshot()).toMatchObject({ isAuthenticated: true, userId: a.getSnapshot().userId }));

    await a.signOut();
    storageEvent();
    expect(b.getSnapshot()).toMatchObject({ isAuthenticated: false, token: null });
  });

  it("follows storage alone: a token removed by another tab is dropped here without a server call", async () => {
    const a = tab();
    await a.signIn("anonymous");
    const b = tab();
    await vi.waitFor(() => expect(b.getSnapshot().isAuthenticated).toBe(true));
    localStorage.removeItem(KEY); // as another tab's sign-out would
    storageEvent();
    expect(a.getSnapshot().isAuthenticated).toBe(false);
    expect(b.getSnapshot().isAuthenticated).toBe(false);
  });

  it("hears the other tab over a BroadcastChannel, where storage events do not come", async () => {
    const [one, two] = linkedChannels();
    const [a, b] = [tab(one), tab(two)];
    await a.signIn("anonymous");
    await vi.waitFor(() => expect(b.getSnapshot()).toMatchObject({ isAuthenticated: true, userId: a.getSnapshot().userId }));
    await a.signOut();
    await vi.waitFor(() => expect(b.getSnapshot().isAuthenticated).toBe(false));
  });

  it("a tab whose session was revoked adopts the newer token another tab stored meanwhile", async () => {
    const a = tab();
    await a.signIn("anonymous");
    const b = tab();
    await vi.waitFor(() => expect(b.getSnapshot().isAuthenticated).toBe(true));
    // Tab A upgrades, which ends the anonymous session; no storage event reaches tab B, so it
    // learns only that its token died, and then finds A's in storage.
    await a.signIn("password", { email: "b@example.com" });
    await vi.waitFor(() => expect(b.getSnapshot()).toMatchObject({ isAuthenticated: true, token: a.getSnapshot().token }));
    expect(localStorage.getItem(KEY)).toBe(a.getSnapshot().token);
  });

  it("two tabs signing in anonymously at the same instant make one user", async () => {
    const locks = browserLocks();
    const [a, b] = [tab(null, locks), tab(null, locks)];
    const [first, second] = await Promise.all([a.signIn("anonymous"), b.signIn("anonymous")]);
    expect(first).toMatchObject({ kind: "signedIn" });
    // The second tab's turn came after the first stored its token: it adopted it.
    expect(second).toEqual({ kind: "unchanged", userId: a.getSnapshot().userId, isAnonymous: true });
    expect(b.getSnapshot()).toMatchObject({ isAuthenticated: true, token: a.getSnapshot().token });
  });

  it("two tabs signing in anonymously at the same instant with their session IDs make one user, and the second keeps its ID", async () => {
    const locks = browserLocks();
    const sessions = ["tab-a", "tab-b"].map((name) => createSessionIdSource({ store: memoryStore(name), scope: "tab", channel: null }));
    const session = (i: number) => ({ sessionId: sessions[i]!.current!, refresh: sessions[i]!.refresh });
    const before = sessions[1]!.current;
    const [a, b] = [tab(null, locks), tab(null, locks)];
    await Promise.all([a.signIn("anonymous", undefined, { session: session(0) }), b.signIn("anonymous", undefined, { session: session(1) })]);
    expect(b.getSnapshot()).toMatchObject({ isAuthenticated: true, userId: a.getSnapshot().userId });
    expect(sessions[1]!.current).toBe(before);
    sessions.forEach((s) => s.dispose());
  });

  it("a tab whose turn comes while it still sees another tab's marker waits for that tab's writes to arrive", async () => {
    const locks = browserLocks();
    const a = tab(null, locks);
    await a.signIn("anonymous");
    const token = localStorage.getItem(KEY)!;
    // Tab B's view of localStorage lags behind: A's token, and the removal of A's marker that
    // followed it, have not reached B yet (A has already released the lock).
    localStorage.removeItem(KEY);
    localStorage.setItem(`${KEY}:busy`, `tab-a:${Date.now()}`);
    const b = tab(null, locks);
    const signingIn = b.signIn("anonymous");
    await new Promise((resolve) => setTimeout(resolve, 100));
    localStorage.setItem(KEY, token);
    localStorage.removeItem(`${KEY}:busy`);
    expect(await signingIn).toEqual({ kind: "unchanged", userId: a.getSnapshot().userId, isAnonymous: true });
  });

  it("sessionStorage and custom storages do not listen to other tabs", async () => {
    const a = tabs.track(new AuthClient(tabs.backend.client(), { storage: "sessionStorage", channel: null }));
    sessionStorage.setItem(KEY, "from-elsewhere");
    window.dispatchEvent(new StorageEvent("storage", { key: KEY }));
    expect(a.getSnapshot().token).toBe(null);
    sessionStorage.clear();
  });
});

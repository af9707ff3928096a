// @vitest-environment jsdom
/**
 * `AuthClient` races: sign-ins racing sign-outs in one tab, session IDs captured
 * before the turn comes, tabs sharing one localStorage and one locks object, refused tokens.
 */
import { act, cleanup, renderHook } from "@testing-library/react";
import { createElement, type ReactNode } from "react";
import { describe, expect, it, vi } from "vitest";
import { WalkinProvider } from "../../react/index.js";
import { SessionProvider } from "../../sessions/react/index.js";
import { AuthProvider, useAuthActions } from "../react/index.js";
import { createSessionIdSource, memoryStore } from "../../sessions/browser/index.js";
import { fake, gates } from "./fixtures/fakeAuth.js";
import { browserLocks, KEY, storageEvent, useFakeAuthTabs } from "./fixtures/tabs.js";

const tabs = useFakeAuthTabs({
  before: cleanup,
  after: () => {
    gates.afterUpgrade = undefined;
  },
});
const { tab } = tabs;

describe("AuthClient races", () => {
  it("signIn, signOut, signIn clicked in quick succession ends signed in (the last call wins)", async () => {
    const auth = tab();
    const first = auth.signIn("anonymous");
    const out = auth.signOut();
    const again = auth.signIn("anonymous");
    await Promise.all([first, out, again]);
    // The third call came after the sign-out: it must not be answered by the first one's result.
    expect(auth.getSnapshot().isAuthenticated).toBe(true);
    expect(localStorage.getItem(KEY)).toBe(auth.getSnapshot().token);
  });

  it("two queued sign-ins with a session: the second carries over from the ID the first switched to", async () => {
    const source = createSessionIdSource({ store: memoryStore("probe-queued"), scope: "tab", channel: null });
    // What useAuthActions passes: the ID current when signIn is called.
    // As the docs show: the ID read when the call's turn comes.
    const session = () => ({ get sessionId() { return source.current!; }, refresh: source.refresh });
    const auth = tab();
    const s0 = source.current!;
    const one = auth.signIn("anonymous", undefined, { session: session() });
    const two = auth.signIn("password", { email: "queued@example.com" }, { session: session() });
    await Promise.all([one, two]);
    const args = (await tabs.backend.client().query(fake.sessionArgs!, {})) as { sessionId: string; newSessionId: string }[];
    const first = args.find((a) => a.sessionId === s0)!;
    expect(first).toBeDefined();
    // The second sign-in ran after the ID had become first.newSessionId; moving rows from s0
    // (already moved away) leaves the guest's data behind under first.newSessionId.
    expect(args).toContainEqual({ sessionId: first.newSessionId, newSessionId: source.current });
    source.dispose();
  });

  it("useAuthActions (in a SessionProvider): a signOut clicked while a signIn runs deletes the rows of the ID the sign-in switched to", async () => {
    const source = createSessionIdSource({ store: memoryStore("probe-react"), scope: "tab", channel: null });
    const client = tabs.backend.client();
    const wrapper = ({ children }: { children: ReactNode }) =>
      createElement(WalkinProvider, { client }, createElement(AuthProvider, null, createElement(SessionProvider, { source }, children)));
    const { result } = renderHook(() => useAuthActions(), { wrapper });
    const s0 = source.current!;
    await act(() => Promise.all([result.current.signIn("anonymous"), result.current.signOut()]));
    const args = (await tabs.backend.client().query(fake.sessionArgs!, {})) as { sessionId: string; newSessionId: string }[];
    const moved = args.find((a) => a.sessionId === s0 && a.newSessionId !== "")!;
    expect(moved).toBeDefined();
    expect(args).toContainEqual({ sessionId: moved.newSessionId, newSessionId: "" });
    source.dispose();
  });

  it("a signOut queued behind a signIn, with a session, deletes the rows of the ID the sign-in switched to", async () => {
    const source = createSessionIdSource({ store: memoryStore("probe-out"), scope: "tab", channel: null });
    // As the docs show: the ID read when the call's turn comes.
    const session = () => ({ get sessionId() { return source.current!; }, refresh: source.refresh });
    const auth = tab();
    const s0 = source.current!;
    const signingIn = auth.signIn("anonymous", undefined, { session: session() });
    const signingOut = auth.signOut({ session: session() });
    await Promise.all([signingIn, signingOut]);
    const args = (await tabs.backend.client().query(fake.sessionArgs!, {})) as { sessionId: string; newSessionId: string }[];
    const moved = args.find((a) => a.sessionId === s0 && a.newSessionId !== "")!;
    expect(moved).toBeDefined();
    expect(args).toContainEqual({ sessionId: moved.newSessionId, newSessionId: "" });
    source.dispose();
  });

  it("two tabs signing in anonymously at once, each after a sign-out, make one user", async () => {
    const locks = browserLocks();
    const [a, b] = [tab(null, locks), tab(null, locks)];
    await a.signIn("anonymous");
    storageEvent();
    await vi.waitFor(() => expect(b.getSnapshot().isAuthenticated).toBe(true));
    const before = (await tabs.backend.client().query(fake.counts!, {})) as { users: number };
    await Promise.all([a.signOut(), b.signOut()]);
    storageEvent();
    const [x, y] = await Promise.all([a.signIn("anonymous"), b.signIn("anonymous")]);
    const after = (await tabs.backend.client().query(fake.counts!, {})) as { users: number };
    expect(after.users).toBe(before.users + 1);
    expect(x.kind === "signedIn" || y.kind === "signedIn").toBe(true);
    await vi.waitFor(() => expect(b.getSnapshot().userId).toBe(a.getSnapshot().userId));
    expect(localStorage.getItem(KEY)).toBe(a.getSnapshot().token);
  });

  it("a refused token written back to storage by a lagging tab is not adopted again", async () => {
    const locks = browserLocks();
    const a = tab(null, locks);
    await a.signIn("anonymous");
    const token = a.getSnapshot().token!;
    await tabs.backend.client().mutation(fake.revokeAll!, { userId: a.getSnapshot().userId });
    await vi.waitFor(() => expect(a.getSnapshot().isAuthenticated).toBe(false));
    await vi.waitFor(() => expect(localStorage.getItem(KEY)).toBe(null));
    const setAuth = vi.spyOn((a as unknown as { client: { setAuth: () => void } }).client, "setAuth");
    localStorage.setItem(KEY, token);
    storageEvent();
    expect(a.getSnapshot()).toMatchObject({ isLoading: false, isAuthenticated: false, token: null });
    expect(setAuth).not.toHaveBeenCalled();
  });

  it("a sign-in racing another tab's sign-out: the signed-in tab's token is never deleted by the other", async () => {
    const locks = browserLocks();
    const [a, b] = [tab(null, locks), tab(null, locks)];
    await a.signIn("anonymous");
    storageEvent();
    await vi.waitFor(() => expect(b.getSnapshot().isAuthenticated).toBe(true));
    // B signs out; A, at the same instant, upgrades. Whatever the order, storage and both tabs agree.
    const [, up] = await Promise.allSettled([b.signOut(), a.signIn("password", { email: "race@example.com" })]);
    expect(up.status).toBe("fulfilled");
    storageEvent();
    await new Promise((r) => setTimeout(r, 300));
    const stored = localStorage.getItem(KEY);
    expect(a.getSnapshot().token).toBe(stored);
    await vi.waitFor(() => expect(b.getSnapshot().token).toBe(stored));
  });

  it("handleRedirect uses the verifier once, removes it, and a failure reaches the caller", async () => {
    localStorage.setItem(`${KEY}:verifier`, "wrong");
    window.history.replaceState(null, "", "/back?code=c1");
    const auth = tab();
    const error = await auth.handleRedirect().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "UNAUTHENTICATED" });
    expect(localStorage.getItem(`${KEY}:verifier`)).toBe(null);
    expect(window.location.search).toBe("");
    await expect(auth.handleRedirect()).resolves.toBe(null);
    window.history.replaceState(null, "", "/");
  });
});

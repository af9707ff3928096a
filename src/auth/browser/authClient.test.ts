// @vitest-environment jsdom
/**
 * `AuthClient`'s state logic against the real engine and server, with the stand-in auth
 * functions of `fixtures/fakeAuth.ts` (outcomes the real providers rarely produce: an upgrade
 * that ends the old session, redirects, rate limits). `walkinAuth.test.ts` runs the real ones.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { WalkinClient } from "../../browser/index.js";
import { createSessionIdSource, memoryStore } from "../../sessions/browser/index.js";
import { isWalkinError } from "../../values/errors.js";
import { fake, gates, startFakeAuthBackend } from "./fixtures/fakeAuth.js";
import { AuthClient, type AuthClientOptions, type AuthSnapshot, type StorageLike } from "./index.js";

let backend: Awaited<ReturnType<typeof startFakeAuthBackend>>;
beforeAll(async () => {
  backend = await startFakeAuthBackend();
});
afterEach(() => {
  localStorage.clear();
  window.history.replaceState(null, "", "/");
});
afterAll(() => backend.close());

/** A storage object two clients can share, as one browser's storage across a reload. */
function sharedStorage(): StorageLike & { values: Map<string, string> } {
  const values = new Map<string, string>();
  return {
    values,
    getItem: (key) => values.get(key) ?? null,
    setItem: (key, value) => void values.set(key, value),
    removeItem: (key) => void values.delete(key),
  };
}

function start(options: AuthClientOptions = {}) {
  const client = backend.client();
  const auth = new AuthClient(client, { storage: sharedStorage(), channel: null, ...options });
  const seen: AuthSnapshot[] = [];
  auth.subscribe(() => seen.push(auth.getSnapshot()));
  return { client, auth, seen };
}

const settled = (auth: AuthClient) => vi.waitFor(() => expect(auth.getSnapshot().isLoading).toBe(false));
const whoAmI = (client: WalkinClient) => client.query(fake.whoAmI!, {}) as Promise<string | null>;

describe("AuthClient", () => {
  it("starts signed out, without loading, when storage has no token", () => {
    const { auth } = start();
    expect(auth.getSnapshot()).toEqual({ isLoading: false, isAuthenticated: false, isAnonymous: false, userId: null, token: null });
    expect(auth.getSnapshot()).toBe(auth.getSnapshot());
  });

  it("signs in anonymously: stores the token, and later calls run as the new user", async () => {
    const storage = sharedStorage();
    const { auth, client } = start({ storage, storageKey: "k" });
    const outcome = await auth.signIn("anonymous");
    expect(outcome).toEqual({ kind: "signedIn", userId: expect.any(String), isAnonymous: true });
    expect(outcome).not.toHaveProperty("token");
    const state = auth.getSnapshot();
    expect(state).toMatchObject({ isLoading: false, isAuthenticated: true, isAnonymous: true, userId: outcome.kind === "signedIn" && outcome.userId });
    expect(storage.getItem("k")).toBe(state.token);
    expect(await whoAmI(client)).toBe(state.userId);
  });

  it("two concurrent identical sign-ins share one call and make one user", async () => {
    const { auth, client } = start();
    const before = (await client.query(fake.counts!, {})) as { users: number };
    const first = auth.signIn("anonymous");
    const second = auth.signIn("anonymous");
    expect(second).toBe(first);
    await Promise.all([first, second]);
    // A later one, once signed in, keeps the user (the server answers "unchanged").
    await expect(auth.signIn("anonymous")).resolves.toMatchObject({ kind: "unchanged", userId: auth.getSnapshot().userId });
    const after = (await client.query(fake.counts!, {})) as { users: number };
    expect(after.users).toBe(before.users + 1);
  });

  it("a reload (a new AuthClient on the same storage) loads, then is the same user", async () => {
    const storage = sharedStorage();
    const first = start({ storage });
    await first.auth.signIn("anonymous");
    const again = start({ storage });
    expect(again.auth.getSnapshot()).toMatchObject({ isLoading: true, isAuthenticated: false, token: first.auth.getSnapshot().token });
    await settled(again.auth);
    expect(again.auth.getSnapshot()).toMatchObject({ isAuthenticated: true, isAnonymous: true, userId: first.auth.getSnapshot().userId });
  });

  it("ignores currentSession results of the previous identity (the app watching it too)", async () => {
    const storage = sharedStorage();
    await start({ storage }).auth.signIn("anonymous");
    const client = backend.client();
    // The app already shows currentSession, signed out: its null is in the client's cache.
    const watch = client.watchQuery(fake.currentSession!, {});
    await new Promise<void>((resolve) => watch.onUpdate(() => watch.localQueryResult() === null && resolve()));
    const auth = new AuthClient(client, { storage, channel: null });
    await settled(auth);
    expect(auth.getSnapshot().isAuthenticated).toBe(true);
    expect(storage.values.size).toBe(1);
  });

  it("signs out: ends the server session, removes the token, and calls run signed out", async () => {
    const storage = sharedStorage();
    const { auth, client } = start({ storage });
    await auth.signIn("anonymous");
    const token = auth.getSnapshot().token!;
    await auth.signOut();
    expect(auth.getSnapshot()).toMatchObject({ isAuthenticated: false, isLoading: false, token: null });
    expect(storage.values.size).toBe(0);
    expect(await whoAmI(client)).toBe(null);
    // The token is dead on the server too: a new page holding it ends up signed out.
    const stale = sharedStorage();
    stale.setItem("walkin-auth-token", token);
    const reload = start({ storage: stale });
    await settled(reload.auth);
    expect(reload.auth.getSnapshot().isAuthenticated).toBe(false);
  });

  it("a session revoked on the server signs this page out on its own", async () => {
    const storage = sharedStorage();
    const { auth } = start({ storage });
    await auth.signIn("anonymous");
    await backend.client().mutation(fake.revokeAll!, { userId: auth.getSnapshot().userId });
    await vi.waitFor(() => expect(auth.getSnapshot().isAuthenticated).toBe(false));
    expect(storage.values.size).toBe(0);
  });

  it("a garbage token in storage ends in a clean sign-out, with no retry loop", async () => {
    const storage = sharedStorage();
    storage.setItem("walkin-auth-token", "garbage");
    const client = backend.client();
    const setAuth = vi.spyOn(client, "setAuth");
    const clearAuth = vi.spyOn(client, "clearAuth");
    const auth = new AuthClient(client, { storage, channel: null });
    expect(auth.getSnapshot().isLoading).toBe(true);
    await settled(auth);
    expect(auth.getSnapshot()).toMatchObject({ isAuthenticated: false, token: null });
    expect(storage.values.size).toBe(0);
    expect(await whoAmI(client)).toBe(null); // one more round trip: nothing else was attempted
    expect(setAuth).toHaveBeenCalledTimes(1);
    expect(clearAuth).toHaveBeenCalledTimes(1);
  });

  it("rethrows server errors unchanged and keeps the stored token", async () => {
    const storage = sharedStorage();
    const { auth } = start({ storage });
    await auth.signIn("anonymous");
    const before = auth.getSnapshot();
    const error = await auth.signIn("limited").catch((e: unknown) => e);
    expect(isWalkinError(error) && error.code).toBe("RATE_LIMITED");
    expect(isWalkinError(error) && error.data).toEqual({ retryAfterMs: 5000 });
    expect(auth.getSnapshot()).toBe(before);
    expect(storage.getItem("walkin-auth-token")).toBe(before.token);
  });

  it("an upgrade that ends the anonymous session never shows signed out in between", async () => {
    const { auth, client, seen } = start();
    const anonymous = await auth.signIn("anonymous");
    const oldToken = auth.getSnapshot().token!;
    // Hold the action's reply until this client has received the old session's end (its
    // watchers are not shown it: see upgradeContinuity.test.ts).
    let release!: () => void;
    gates.afterUpgrade = new Promise((resolve) => (release = resolve));
    const upgrade = auth.signIn("password", { email: "a@example.com" });
    await vi.waitFor(async () => expect(await backend.engine.runQuery("auth:currentSession", {}, { token: oldToken })).toBe(null));
    const ended = backend.engine.latestTimestamp;
    await vi.waitFor(() => expect(client.connectionState().lastTransitionTs).toBeGreaterThanOrEqual(ended));
    release();
    await upgrade;
    gates.afterUpgrade = undefined;
    expect(auth.getSnapshot()).toMatchObject({ isAuthenticated: true, isAnonymous: false, userId: anonymous.kind === "signedIn" && anonymous.userId });
    expect(seen.every((s) => s.isAuthenticated)).toBe(true);
  });

  it("a new AuthClient with no stored token signs the page's client out, whoever signed it in before", async () => {
    const { auth, client } = start();
    await auth.signIn("anonymous");
    expect(await whoAmI(client)).not.toBe(null);
    auth.close();
    const next = new AuthClient(client, { storage: sharedStorage(), channel: null });
    expect(next.getSnapshot().isAuthenticated).toBe(false);
    expect(await whoAmI(client)).toBe(null);
    expect(client.connectionState().isAuthenticated).toBe(false);
    next.close();
  });

  it("a 'started' outcome stores nothing", async () => {
    const storage = sharedStorage();
    const { auth } = start({ storage });
    await expect(auth.signIn("reset", { email: "a@example.com" })).resolves.toEqual({ kind: "started" });
    expect(storage.values.size).toBe(0);
    expect(auth.getSnapshot().isAuthenticated).toBe(false);
  });

  it("OAuth: stores the verifier and navigates; back with ?code= it signs in once and cleans the URL", async () => {
    const storage = sharedStorage();
    const navigate = vi.fn();
    const { auth } = start({ storage, navigate, storageKey: "app" });
    await expect(auth.signIn("oauth")).resolves.toEqual({ kind: "redirect", redirect: "https://provider.example/authorize?state=s" });
    expect(navigate).toHaveBeenCalledWith("https://provider.example/authorize?state=s");
    expect(storage.getItem("app:verifier")).toBe("v-1");

    window.history.replaceState(null, "", "/done?code=abc&tab=2");
    const back = start({ storage, storageKey: "app" });
    const [first, second] = await Promise.all([back.auth.handleRedirect(), back.auth.handleRedirect()]);
    expect(first).toMatchObject({ kind: "signedIn", isAnonymous: false });
    expect(second).toBe(null); // the code was taken by the first call
    expect(window.location.pathname + window.location.search).toBe("/done?tab=2");
    expect(storage.getItem("app:verifier")).toBe(null);
    expect(back.auth.getSnapshot().isAuthenticated).toBe(true);
  });

  it("leaves a ?code= alone when this browser started no redirect", async () => {
    window.history.replaceState(null, "", "/?code=not-ours");
    const { auth } = start();
    await expect(auth.handleRedirect()).resolves.toBe(null);
    expect(window.location.search).toBe("?code=not-ours");
  });

  it("refreshes the session ID with a sign-in and a sign-out, and keeps it when sign-in fails", async () => {
    const source = createSessionIdSource({ store: memoryStore("auth-client-test"), scope: "tab", channel: null });
    const session = () => ({ sessionId: source.current!, refresh: source.refresh });
    const { auth, client } = start();
    const first = source.current!;
    await expect(auth.signIn("limited", undefined, { session: session() })).rejects.toThrow();
    expect(source.current).toBe(first);
    await auth.signIn("anonymous", undefined, { session: session() });
    const second = source.current!;
    expect(second).not.toBe(first);
    await auth.signIn("anonymous", undefined, { session: session() }); // unchanged: same session ID
    expect(source.current).toBe(second);
    await auth.signOut({ session: session() });
    expect(source.current).not.toBe(second);
    expect(await client.query(fake.sessionArgs!, {})).toEqual(
      expect.arrayContaining([
        { sessionId: first, newSessionId: second },
        { sessionId: second, newSessionId: "" },
      ]),
    );
    source.dispose();
  });

  it("a closed AuthClient refuses new work", async () => {
    const { auth } = start();
    auth.close();
    await expect(auth.signIn("anonymous")).rejects.toThrow(/closed/);
  });
});

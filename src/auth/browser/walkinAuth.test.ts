// @vitest-environment jsdom
/**
 * `AuthClient` against the real `walkinAuth({ providers: [Anonymous] })` on the real engine and
 * server: sign-in, no duplicate users, reload, sign-out, revocation from another client,
 * cross-tab, a garbage token, and a sign-in that carries a session's data to its new ID.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { WalkinClient } from "../../browser/index.js";
import { createSessionIdSource, memoryStore } from "../../sessions/browser/index.js";
import type { SessionId } from "../../sessions/sessionId.js";
import { api, startRealAuthBackend } from "./fixtures/realAuth.js";
import { AuthClient, type AuthClientOptions, type StorageLike } from "./index.js";

let backend: Awaited<ReturnType<typeof startRealAuthBackend>>;
const opened: AuthClient[] = [];
beforeAll(async () => {
  backend = await startRealAuthBackend();
});
afterEach(() => {
  opened.splice(0).forEach((auth) => auth.close());
  localStorage.clear();
});
afterAll(() => backend.close());

const KEY = "walkin-auth-token";

function memory(): StorageLike & { values: Map<string, string> } {
  const values = new Map<string, string>();
  return { values, getItem: (k) => values.get(k) ?? null, setItem: (k, v) => void values.set(k, v), removeItem: (k) => void values.delete(k) };
}

function open(options: AuthClientOptions = {}, client: WalkinClient = backend.client()) {
  const auth = new AuthClient(client, { storage: memory(), channel: null, ...options });
  opened.push(auth);
  return { auth, client };
}

const settled = (auth: AuthClient) => vi.waitFor(() => expect(auth.getSnapshot().isLoading).toBe(false));
const whoAmI = (client: WalkinClient) => client.query(api.app.whoAmI, {}) as Promise<string | null>;

describe("AuthClient with walkinAuth", () => {
  it("signs in anonymously: authenticated, anonymous, and functions see the user", async () => {
    const storage = memory();
    const { auth, client } = open({ storage });
    await auth.signIn("anonymous");
    const state = auth.getSnapshot();
    expect(state).toMatchObject({ isLoading: false, isAuthenticated: true, isAnonymous: true, userId: expect.any(String) });
    expect(storage.getItem(KEY)).toBe(state.token);
    expect(await whoAmI(client)).toBe(state.userId);
  });

  it("two concurrent signIn('anonymous') make one user", async () => {
    const { auth, client } = open();
    const before = (await client.query(api.app.userCount, {})) as number;
    const [a, b] = await Promise.all([auth.signIn("anonymous"), auth.signIn("anonymous")]);
    expect(a).toEqual(b);
    expect(await auth.signIn("anonymous")).toMatchObject({ userId: auth.getSnapshot().userId });
    expect(await client.query(api.app.userCount, {})).toBe(before + 1);
  });

  it("a reload (a new AuthClient on the same storage) is the same user", async () => {
    const storage = memory();
    const first = open({ storage }).auth;
    await first.signIn("anonymous");
    const reloaded = open({ storage }).auth;
    expect(reloaded.getSnapshot().isLoading).toBe(true);
    await settled(reloaded);
    expect(reloaded.getSnapshot()).toMatchObject({ isAuthenticated: true, isAnonymous: true, userId: first.getSnapshot().userId });
  });

  it("signs out: unauthenticated, token removed, and the token no longer works", async () => {
    const storage = memory();
    const { auth, client } = open({ storage });
    await auth.signIn("anonymous");
    const token = auth.getSnapshot().token!;
    await auth.signOut();
    expect(auth.getSnapshot()).toMatchObject({ isAuthenticated: false, isLoading: false, token: null });
    expect(storage.values.size).toBe(0);
    expect(await whoAmI(client)).toBe(null);
    const stale = memory();
    stale.setItem(KEY, token);
    const again = open({ storage: stale }).auth;
    await settled(again);
    expect(again.getSnapshot().isAuthenticated).toBe(false);
  });

  it("a session revoked by another client (revokeSession) signs this page out on its own", async () => {
    const storage = memory();
    const { auth, client } = open({ storage });
    await auth.signIn("anonymous");
    const { authSessionId } = (await client.query(api.auth.currentSession, {}))!;
    const other = backend.client();
    const token = auth.getSnapshot().token!;
    other.setAuth(async () => token);
    await other.mutation(api.auth.revokeSession, { authSessionId });
    await vi.waitFor(() => expect(auth.getSnapshot().isAuthenticated).toBe(false));
    expect(storage.values.size).toBe(0);
    expect(await whoAmI(client)).toBe(null);
  });

  it("cross-tab: two tabs on one localStorage see each other's sign-in and sign-out", async () => {
    const tab = () => open({ storage: "localStorage" }).auth;
    const [a, b] = [tab(), tab()];
    const storageEvent = () => window.dispatchEvent(new StorageEvent("storage", { key: KEY, newValue: localStorage.getItem(KEY) }));
    await a.signIn("anonymous");
    storageEvent();
    await vi.waitFor(() => expect(b.getSnapshot()).toMatchObject({ isAuthenticated: true, userId: a.getSnapshot().userId }));
    await a.signOut();
    expect(localStorage.getItem(KEY)).toBe(null);
    storageEvent();
    expect(b.getSnapshot()).toMatchObject({ isAuthenticated: false, token: null });
  });

  it.each(["garbage", "wk1.AAAA.BBBB"])("a garbage token (%s) in storage ends in a clean sign-out, with no loop", async (garbage) => {
    const storage = memory();
    storage.setItem(KEY, garbage);
    const client = backend.client();
    const setAuth = vi.spyOn(client, "setAuth");
    const { auth } = open({ storage }, client);
    await settled(auth);
    expect(auth.getSnapshot()).toMatchObject({ isAuthenticated: false, token: null });
    expect(storage.values.size).toBe(0);
    expect(await whoAmI(client)).toBe(null);
    expect(setAuth).toHaveBeenCalledTimes(1);
    // Signing in afterwards works as on a fresh page.
    await auth.signIn("anonymous");
    expect(await whoAmI(client)).toBe(auth.getSnapshot().userId);
  });

  it("a sign-in with a session refreshes its ID and the server carries the session's data over", async () => {
    const source = createSessionIdSource({ store: memoryStore("walkin-auth-real"), scope: "tab", channel: null });
    const { auth, client } = open();
    const oldId = source.current as SessionId;
    await client.mutation(api.app.addDraft, { sessionId: oldId, text: "draft" });
    await auth.signIn("anonymous", undefined, { session: { sessionId: oldId, refresh: source.refresh } });
    const newId = source.current as SessionId;
    expect(newId).not.toBe(oldId);
    expect(await client.query(api.app.drafts, { sessionId: newId })).toEqual(["draft"]);
    expect(await client.query(api.app.drafts, { sessionId: oldId })).toEqual([]);
    await auth.signOut({ session: { sessionId: newId, refresh: source.refresh } });
    expect(source.current).not.toBe(newId);
    expect(await client.query(api.app.drafts, { sessionId: source.current as SessionId })).toEqual([]);
    source.dispose();
  });
});

// @vitest-environment jsdom
/**
 * What a user sees while the token changes under a page that already shows someone: a guest
 * signing up or signing in (the real `walkinAuth` with Password, `auth/fixtures/app.ts`), a
 * tab adopting another tab's sign-in, and a stored token the server no longer knows (the
 * stand-in functions of `fixtures/fakeAuth.ts`, behind the tab fixtures).
 */
import { describe, expect, it, vi } from "vitest";
import type { WalkinClient } from "../../browser/index.js";
import { api } from "../fixtures/app.js";
import { useAuthBackends } from "../fixtures/harness.js";
import { fake } from "./fixtures/fakeAuth.js";
import { KEY, shown, storageEvent, useFakeAuthTabs } from "./fixtures/tabs.js";
import { AuthClient, type AuthSnapshot, type StorageLike } from "./index.js";

const start = useAuthBackends();
const tabs = useFakeAuthTabs();

/** One page's token storage (nothing shared with other tests). */
function pageStorage(): StorageLike {
  const values = new Map<string, string>();
  return { getItem: (key) => values.get(key) ?? null, setItem: (key, value) => void values.set(key, value), removeItem: (key) => void values.delete(key) };
}

/** Resolves once the client's own live results are those of a signed-up (not anonymous) user. */
function upgraded(client: WalkinClient) {
  const session = client.watchQuery(api.auth.currentSession!, {});
  return new Promise<void>((resolve) => {
    const check = () => (session.localQueryResult() as { isAnonymous: boolean } | null | undefined)?.isAnonymous === false && resolve();
    session.onUpdate(check);
    check();
  });
}

describe("a guest who signs up or in keeps seeing their data", () => {
  it("signing up: the live queries go from the guest's messages to the account's, never to signed out", async () => {
    const backend = await start();
    const client = backend.client();
    const auth = new AuthClient(client, { storage: pageStorage(), channel: null });
    await auth.signIn("anonymous");
    await client.mutation(api.messages.send!, { body: "hello" });
    const mine = shown(client.watchQuery(api.messages.mine!, {}));
    await vi.waitFor(() => expect(mine).toEqual([["hello"]]));

    const outcome = await auth.signIn("password", { flow: "signUp", email: "guest@example.com", password: "long enough" });
    expect(outcome).toMatchObject({ kind: "signedIn", isAnonymous: false });
    await upgraded(client);
    // The sign-up ended the guest's session before the client held the new token; the app's
    // watcher must not have been shown that moment (null: "signed out").
    expect(mine).toEqual([["hello"]]);
    auth.close();
  });

  it("signing in to an existing account: straight from the guest's messages to the merged ones", async () => {
    const backend = await start();
    const account = backend.client();
    const accountAuth = new AuthClient(account, { storage: pageStorage(), channel: null });
    await accountAuth.signIn("password", { flow: "signUp", email: "ada@example.com", password: "long enough" });
    await account.mutation(api.messages.send!, { body: "from the account" });

    const client = backend.client();
    const auth = new AuthClient(client, { storage: pageStorage(), channel: null });
    await auth.signIn("anonymous");
    await client.mutation(api.messages.send!, { body: "from the guest" });
    const mine = shown(client.watchQuery(api.messages.mine!, {}));
    await vi.waitFor(() => expect(mine).toEqual([["from the guest"]]));

    await auth.signIn("password", { flow: "signIn", email: "ada@example.com", password: "long enough" });
    await upgraded(client);
    await vi.waitFor(() => expect(mine.at(-1)).toHaveLength(2));
    expect(mine).toEqual([["from the guest"], ["from the account", "from the guest"]]);
    accountAuth.close();
    auth.close();
  });

  it("a sign-in that fails while signed in shows what the server sent, as before", async () => {
    const backend = await start();
    const client = backend.client();
    const auth = new AuthClient(client, { storage: pageStorage(), channel: null });
    await auth.signIn("anonymous");
    const mine = shown(client.watchQuery(api.messages.mine!, {}));
    await vi.waitFor(() => expect(mine).toEqual([[]]));
    await expect(auth.signIn("password", { flow: "signIn", email: "nobody@example.com", password: "long enough" })).rejects.toThrow();
    // Live updates still reach the page after the failed attempt.
    await client.mutation(api.messages.send!, { body: "still here" });
    expect(mine.at(-1)).toEqual(["still here"]);
    auth.close();
  });
});

describe("a signed-in tab adopting another tab's sign-in", () => {
  it("keeps showing its user, not 'loading', until the server confirms the new one", async () => {
    const [a, b] = [tabs.tab(), tabs.tab()];
    await a.signIn("password", { email: "first@example.com" });
    storageEvent();
    await vi.waitFor(() => expect(b.getSnapshot()).toMatchObject({ isAuthenticated: true, userId: a.getSnapshot().userId }));
    const first = a.getSnapshot().userId;
    const seen: AuthSnapshot[] = [];
    b.subscribe(() => seen.push(b.getSnapshot()));

    // Tab A signs in as someone else; tab B hears of it through storage.
    await a.signIn("password", { email: "second@example.com" });
    const second = a.getSnapshot().userId;
    expect(second).not.toBe(first);
    storageEvent();
    await vi.waitFor(() => expect(b.getSnapshot()).toMatchObject({ isAuthenticated: true, userId: second, token: localStorage.getItem(KEY) }));
    // What <AuthLoading> and <Authenticated> render from: never "loading" nor signed out.
    expect(seen.filter((s) => s.isLoading || !s.isAuthenticated)).toEqual([]);
  });
});

describe("a stored token the server does not know", () => {
  it("signs the page out after one check on the server, without sending the token again", async () => {
    const client = tabs.backend.client();
    const auth = tabs.track(new AuthClient(client, { storage: pageStorage(), channel: null }));
    await auth.signIn("anonymous");
    const token = auth.getSnapshot().token!;
    await tabs.backend.client().mutation(fake.revokeAll!, { userId: auth.getSnapshot().userId });
    await vi.waitFor(() => expect(auth.getSnapshot().isAuthenticated).toBe(false));

    // A reload of a page whose session was deleted on the server meanwhile.
    const storage = pageStorage();
    storage.setItem(KEY, token);
    const checks = vi.spyOn(tabs.backend.engine, "tokenResolves");
    const reload = tabs.track(new AuthClient(tabs.backend.client(), { storage, channel: null }));
    await vi.waitFor(() => expect(reload.getSnapshot()).toMatchObject({ isLoading: false, isAuthenticated: false, token: null }));
    expect(checks.mock.calls.filter(([caller]) => caller.token === token)).toHaveLength(1);
    checks.mockRestore();
  });
});

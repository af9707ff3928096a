// @vitest-environment jsdom
/**
 * The other tab of a guest who signs up or in. Tabs on localStorage share the guest's token,
 * so the sign-in in tab A ends the session tab B uses too, and B hears of A's new token only
 * through storage: B must go from the guest's results to the account's as A does, never
 * through signed out; while a session that really ended (signed out elsewhere, revoked, a
 * tab that died mid-sign-in) still signs B out. Two `AuthClient`s on one localStorage, each
 * with its own `WalkinClient` on the real server, stand for the tabs (`fixtures/tabs.ts`);
 * the guest signs up with the real `walkinAuth` (`auth/fixtures/app.ts`), or, to stop the
 * sign-in right after it ended the guest's session, with the stand-in of `fixtures/fakeAuth.ts`.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { WebSocket } from "ws";
import { WalkinClient } from "../../browser/index.js";
import { startServer } from "../../transport/index.js";
import { api } from "../fixtures/app.js";
import { useAuthBackends } from "../fixtures/harness.js";
import { fake, gates } from "./fixtures/fakeAuth.js";
import { browserLocks, KEY, shown, storageEvent, useFakeAuthTabs } from "./fixtures/tabs.js";
import { AuthClient, type AuthSnapshot, type StorageLike } from "./index.js";
import type { LocksLike } from "./tabLock.js";

const start = useAuthBackends();
const tabs = useFakeAuthTabs();

afterEach(() => {
  gates.afterUpgrade = undefined;
  vi.restoreAllMocks();
});

/** A tab of one browser on `client`: localStorage, the browser's Web Locks, no BroadcastChannel. */
function tabOn(client: WalkinClient, locks: LocksLike | null = browserLocks()) {
  return tabs.track(new AuthClient(client, { storage: "localStorage", channel: null, locks }));
}

/** Every auth state `auth` went through from now on (what `<Authenticated>` renders from). */
function snapshots(auth: AuthClient): AuthSnapshot[] {
  const seen: AuthSnapshot[] = [];
  auth.subscribe(() => seen.push(auth.getSnapshot()));
  return seen;
}

/** Resolves once `client` has applied a Transition it had not when this was called. */
function nextTransition(client: WalkinClient) {
  const before = client.connectionState().lastTransitionTs;
  return vi.waitFor(() => expect(client.connectionState().lastTransitionTs).not.toBe(before));
}

describe("the other tab of a guest who signs up or in", () => {
  it("signing in to an account: goes from the guest's messages straight to the merged ones, never signed out", async () => {
    const backend = await start();
    const accountClient = backend.client();
    const elsewhere = new Map<string, string>(); // another browser's storage
    const storage: StorageLike = { getItem: (k) => elsewhere.get(k) ?? null, setItem: (k, v) => void elsewhere.set(k, v), removeItem: (k) => void elsewhere.delete(k) };
    const account = tabs.track(new AuthClient(accountClient, { storage, channel: null }));
    await account.signIn("password", { flow: "signUp", email: "ada@example.com", password: "long enough" });
    await accountClient.mutation(api.messages.send!, { body: "from the account" });

    const locks = browserLocks();
    const [clientA, clientB] = [backend.client(), backend.client()];
    const a = tabOn(clientA, locks);
    await a.signIn("anonymous");
    const b = tabOn(clientB, locks); // opened later: starts from the guest's stored token
    await vi.waitFor(() => expect(b.getSnapshot()).toMatchObject({ isAuthenticated: true, userId: a.getSnapshot().userId }));
    await clientB.mutation(api.messages.send!, { body: "from the guest" });
    const mine = shown(clientB.watchQuery(api.messages.mine!, {}));
    await vi.waitFor(() => expect(mine).toEqual([["from the guest"]]));
    const states = snapshots(b);

    await a.signIn("password", { flow: "signIn", email: "ada@example.com", password: "long enough" });
    storageEvent(); // as the browser does in the other tabs, once A stored its token
    await vi.waitFor(() => expect(b.getSnapshot()).toMatchObject({ isAnonymous: false, userId: a.getSnapshot().userId, token: a.getSnapshot().token }));
    await vi.waitFor(() => expect(mine.at(-1)).toHaveLength(2));
    // Not null (signed out) in between; nor did <Authenticated> unmount, nor <AuthLoading> show.
    expect(mine).toEqual([["from the guest"], ["from the account", "from the guest"]]);
    expect(states.filter((s) => s.isLoading || !s.isAuthenticated)).toEqual([]);
  });

  it("signing up: keeps the guest's messages on screen, and ends up as the account", async () => {
    const backend = await start();
    const locks = browserLocks();
    const [clientA, clientB] = [backend.client(), backend.client()];
    const a = tabOn(clientA, locks);
    await a.signIn("anonymous");
    await clientA.mutation(api.messages.send!, { body: "hello" });
    const b = tabOn(clientB, locks);
    const mine = shown(clientB.watchQuery(api.messages.mine!, {}));
    await vi.waitFor(() => expect(mine.at(-1)).toEqual(["hello"]));
    const states = snapshots(b);

    await a.signIn("password", { flow: "signUp", email: "guest@example.com", password: "long enough" });
    // No storage event this time (a browser that fires none, and no BroadcastChannel): B finds A's token itself.
    await vi.waitFor(() => expect(b.getSnapshot()).toMatchObject({ isAnonymous: false, token: a.getSnapshot().token }));
    const session = clientB.watchQuery(api.auth.currentSession!, {});
    await vi.waitFor(() => expect(session.localQueryResult()).toMatchObject({ isAnonymous: false }));
    expect(mine).toEqual([["hello"]]); // the same user, upgraded: never null (signed out) in between
    expect(states.filter((s) => s.isLoading || !s.isAuthenticated)).toEqual([]);
  });

  it("while the sign-in is still running after it ended the guest's session: keeps showing the guest, leaves the storage alone", async () => {
    const clientB = tabs.backend.client();
    const [a, b] = [tabs.tab(), tabOn(clientB, null)]; // no Web Locks (a page on plain http): the marker alone
    await a.signIn("anonymous");
    storageEvent();
    await vi.waitFor(() => expect(b.getSnapshot()).toMatchObject({ isAuthenticated: true, userId: a.getSnapshot().userId }));
    const guest = b.getSnapshot();
    const whoAmI = shown(clientB.watchQuery(fake.whoAmI!, {}));
    await vi.waitFor(() => expect(whoAmI).toEqual([guest.userId]));

    let release!: () => void;
    gates.afterUpgrade = new Promise((resolve) => (release = resolve));
    const arrived = nextTransition(clientB);
    const upgrade = a.signIn("password", { email: "c@example.com" });
    // The only change B's queries see: the guest's session ended (its results re-ran as no one).
    await arrived;
    expect(b.getSnapshot()).toBe(guest);
    expect(whoAmI).toEqual([guest.userId]);
    expect(localStorage.getItem(KEY)).toBe(guest.token); // B did not remove what A is about to replace

    release();
    await upgrade;
    storageEvent();
    await vi.waitFor(() => expect(b.getSnapshot()).toMatchObject({ isAnonymous: false, token: a.getSnapshot().token }));
    expect(whoAmI).toEqual([guest.userId]); // the same user, upgraded: nothing else to show
  });

  it("told by the server that the guest's token stopped working, while the sign-in still runs: waits for the new token", async () => {
    // Tab B's server re-checks tokens at every heartbeat (as every server does, every 15 s).
    const server = await startServer({ engine: tabs.backend.engine, port: 0, heartbeatMs: 100, log: () => {} });
    const warn = vi.fn();
    const clientB = new WalkinClient(server.url, { webSocketConstructor: WebSocket as never, logger: { log() {}, warn } });
    try {
      const [a, b] = [tabs.tab(), tabOn(clientB, null)];
      await a.signIn("anonymous");
      storageEvent();
      await vi.waitFor(() => expect(b.getSnapshot()).toMatchObject({ isAuthenticated: true, userId: a.getSnapshot().userId }));
      const guest = b.getSnapshot();
      const states = snapshots(b);

      let release!: () => void;
      gates.afterUpgrade = new Promise((resolve) => (release = resolve));
      const upgrade = a.signIn("password", { email: "d@example.com" });
      await vi.waitFor(() => expect(warn).toHaveBeenCalledWith(expect.stringContaining("the auth token stopped working")));
      // The client has asked for a fresh token (microtasks, all run by the next timer).
      await new Promise((resolve) => setTimeout(resolve, 0));
      expect(b.getSnapshot()).toBe(guest);

      release();
      await upgrade;
      storageEvent();
      await vi.waitFor(() => expect(b.getSnapshot()).toMatchObject({ isAnonymous: false, token: a.getSnapshot().token }));
      await vi.waitFor(() => expect(clientB.connectionState().isAuthenticated).toBe(true));
      expect(states.filter((s) => s.isLoading || !s.isAuthenticated)).toEqual([]);
    } finally {
      await clientB.close();
      await server.close();
    }
  });
});

describe("a tab whose session really ended still signs out", () => {
  /** Tab A signs in as a guest; tab B (on its own client) shows that guest, as `whoAmI` records. */
  async function guestInTwoTabs() {
    const locks = browserLocks();
    const a = tabOn(tabs.backend.client(), locks);
    await a.signIn("anonymous");
    const clientB = tabs.backend.client();
    const b = tabOn(clientB, locks);
    await vi.waitFor(() => expect(b.getSnapshot().isAuthenticated).toBe(true));
    const whoAmI = shown(clientB.watchQuery(fake.whoAmI!, {}));
    await vi.waitFor(() => expect(whoAmI).toEqual([a.getSnapshot().userId]));
    return { a, b, clientB, whoAmI };
  }

  it("revoked from elsewhere, while no tab signs in: at once, without a storage event", async () => {
    const { a, b, whoAmI } = await guestInTwoTabs();

    await tabs.backend.client().mutation(fake.revokeAll!, { userId: a.getSnapshot().userId });
    await vi.waitFor(() => expect(b.getSnapshot()).toMatchObject({ isAuthenticated: false, token: null }));
    await vi.waitFor(() => expect(whoAmI.at(-1)).toBe(null));
  });

  it("signed out in the other tab: once that tab is done, even when no storage event comes", async () => {
    const { a, b, whoAmI } = await guestInTwoTabs();

    await a.signOut();
    await vi.waitFor(() => expect(b.getSnapshot()).toMatchObject({ isAuthenticated: false, token: null }));
    await vi.waitFor(() => expect(whoAmI.at(-1)).toBe(null));
  });

  it("while a tab that died mid-sign-in left its marker: after a bounded wait", async () => {
    const { a, b, clientB, whoAmI } = await guestInTwoTabs();

    // A third tab marked the storage for its sign-in, and its page crashed: no token will come.
    localStorage.setItem(`${KEY}:busy`, `crashed:${Date.now()}`);
    const arrived = nextTransition(clientB);
    await tabs.backend.client().mutation(fake.revokeAll!, { userId: a.getSnapshot().userId });
    await arrived;
    expect(b.getSnapshot().isAuthenticated).toBe(true); // waiting for the crashed tab's token

    // Some seconds later (the marker, a minute's, is still fresh): B gives up waiting.
    const now = Date.now.bind(Date);
    vi.spyOn(Date, "now").mockImplementation(() => now() + 15_000);
    await vi.waitFor(() => expect(b.getSnapshot()).toMatchObject({ isAuthenticated: false, token: null }));
    await vi.waitFor(() => expect(whoAmI.at(-1)).toBe(null));
  });
});

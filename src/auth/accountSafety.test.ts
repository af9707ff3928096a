/**
 * walkin/auth's safety invariants, against the real engine and server:
 *  - after an anonymous user signs up (upgrade in place), no session of that user is still
 *    anonymous: otherwise the cleanup, a merge or an anonymous sign-in treats a real, password-
 *    protected account as an abandoned guest;
 *  - a revoked or rotated-away token runs nothing more over an open WebSocket (query, mutation,
 *    action), and its live queries flip to signed out;
 *  - the CAPTCHA of anonymous sign-in cannot be skipped by a token that ends mid-sign-in, and
 *    the per-IP limit holds for a client call whose IP the app's `clientIp` cannot tell;
 *  - a mutation that read the caller before a revocation commits is re-run and refused; an
 *    upgrade racing a merge of one guest leaves its data with exactly one user.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { LiveBackend } from "../testing/liveBackend.js";
import type { Caller, CallerRequest } from "../engine/engine.js";
import type { WalkinClient } from "../browser/index.js";
import { action, anyApi, mutation, query, v, type FunctionReference } from "../server/index.js";
import { getAuthUserId } from "./identity.js";
import { walkinError } from "../values/index.js";
import { Engine } from "../engine/engine.js";
import { createDatabaseReader } from "../engine/database.js";
import { openTestStorage } from "../testing/testStorage.js";
import { api, authApp, schema } from "./fixtures/app.js";
import { errorOf, from, listTable, signIn, signedIn, sleep, useAuthBackends } from "./fixtures/harness.js";

const start = useAuthBackends();

const mine = (backend: LiveBackend, token: string) => backend.engine.runQuery("messages:mine", {}, { token, fromClient: true });
const send = (backend: LiveBackend, token: string, body: string) => backend.engine.runMutation("messages:send", { body }, { token, fromClient: true });
const runCleanup = (backend: LiveBackend) => backend.engine.runMutation("auth:store", { op: { type: "cleanup" } });

/**
 * One client session S signed in anonymously from two tabs (per-browser session ID, per-tab
 * tokens): the server's "one user per client" gives both the same user, each with its own
 * token. Then tab 2 signs up: the user is upgraded in place.
 */
async function upgradedWithAnotherTab(backend: LiveBackend, email: string) {
  const sessionId = randomUUID();
  const tab1 = await signedIn(backend, "anonymous", {}, from("10.0.0.1"), { sessionId });
  const tab2 = await signedIn(backend, "anonymous", {}, from("10.0.0.1"), { sessionId });
  expect(tab2.userId).toBe(tab1.userId);
  await send(backend, tab2.token, "written as a guest");
  const upgraded = await signedIn(backend, "password", { flow: "signUp", email, password: "correct horse" }, from("10.0.0.1", tab2.token), { sessionId });
  expect(upgraded.userId).toBe(tab1.userId);
  expect(upgraded.isAnonymous).toBe(false);
  return { sessionId, tab1, upgraded };
}

describe("upgrade in place leaves no anonymous session behind", () => {
  it("the cleanup never deletes a user who signed up, even when an older guest tab's session expires", async () => {
    const backend = await start({ cleanup: { anonymousUserInactiveMs: 400 }, session: { activityResolutionMs: 10 } });
    const { upgraded } = await upgradedWithAnotherTab(backend, "ada@example.com");
    // The real user signs out (their session row is deleted); the other tab stays unused.
    await backend.engine.runMutation("auth:signOut", {}, { token: upgraded.token, fromClient: true });
    await sleep(500);
    await runCleanup(backend);
    // A real account with a password: it must survive, with its data, and sign in again.
    expect((await listTable(backend, "users")).map((u) => u._id)).toEqual([upgraded.userId]);
    expect((await listTable(backend, "authAccounts")).map((a) => a.providerAccountId)).toEqual(["ada@example.com"]);
    const again = await signedIn(backend, "password", { flow: "signIn", email: "ada@example.com", password: "correct horse" });
    expect(again.userId).toBe(upgraded.userId);
    expect(await mine(backend, again.token)).toEqual(["written as a guest"]);
  });

  it("signing in to another account from the older guest tab does not merge away (and delete) the signed-up user", async () => {
    const backend = await start();
    const other = await signedIn(backend, "password", { flow: "signUp", email: "work@example.com", password: "work password" }, from("10.0.0.9"));
    const { tab1, upgraded } = await upgradedWithAnotherTab(backend, "home@example.com");
    await signedIn(backend, "password", { flow: "signIn", email: "work@example.com", password: "work password" }, from("10.0.0.1", tab1.token));
    // home@example.com is a real account: signing in elsewhere must not delete it.
    expect((await listTable(backend, "users")).map((u) => u._id).sort()).toEqual([other.userId, upgraded.userId].sort());
    const home = await signIn(backend, "password", { flow: "signIn", email: "home@example.com", password: "correct horse" });
    expect(home).toMatchObject({ kind: "signedIn", userId: upgraded.userId });
  });

  it("an anonymous sign-in with the client session ID does not hand out a token to the signed-up account", async () => {
    const backend = await start();
    const { sessionId, upgraded } = await upgradedWithAnotherTab(backend, "grace@example.com");
    const guest = await signedIn(backend, "anonymous", {}, from("10.0.0.1"), { sessionId });
    expect(guest.userId).not.toBe(upgraded.userId);
    expect(await mine(backend, guest.token)).toEqual([]);
  });
});

/** A promise a handler waits on, and how the test releases it. */
let gate: { promise: Promise<void>; open: () => void } | null = null;
function newGate() {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Functions the probes add to the fixture app. */
const probe = {
  /** Who the action runs as, then a mutation and a query run from it as the same caller. */
  whoAmI: action({
    args: {},
    handler: async (ctx) => (await ctx.auth.getUserIdentity())?.subject ?? null,
  }),
  sendFromAction: action({
    args: { body: v.string() },
    handler: async (ctx, { body }) => ctx.runMutation(anyApi.messages!.send!, { body }),
  }),
  /** `messages:send`, but it waits on `gate` (once) between reading the caller and writing. */
  sendSlowly: mutation({
    args: { body: v.string() },
    handler: async (ctx, { body }) => {
      const author = await getAuthUserId(ctx);
      if (!author) throw walkinError("UNAUTHENTICATED", "Sign in first.");
      const wait = gate;
      gate = null;
      if (wait) await wait.promise;
      return ctx.db.insert("messages", { author, body });
    },
  }),
  /**
   * Reads the caller only once some message exists: until then it is one live query shared by
   * every caller; the first message makes it read the identity and split per token.
   */
  laterMine: query({
    args: {},
    handler: async (ctx) => {
      if ((await ctx.db.query("messages").first()) === null) return "nothing yet";
      const userId = await getAuthUserId(ctx);
      if (!userId) return null;
      return (await ctx.db.query("messages").withIndex("by_author", (q) => q.eq("author", userId)).collect()).map((m) => m.body);
    },
  }),
};
const probeApi = anyApi.probe!;

/** A live query over the client's WebSocket, recording every result it is shown. */
function watch(client: WalkinClient, ref: FunctionReference<"query">) {
  const results: unknown[] = [];
  const w = client.watchQuery(ref, {});
  w.onUpdate(() => results.push(w.localQueryResult()));
  return results;
}

describe("revocation over an open WebSocket", () => {
  it("a revoked token runs no query, mutation or action more on its open connection, and its live queries flip", async () => {
    const backend = await start({}, { probe });
    const phone = await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "correct horse" });
    const laptop = await signedIn(backend, "password", { flow: "signIn", email: "ada@example.com", password: "correct horse" });
    await send(backend, phone.token, "from the phone");

    const client = backend.client();
    client.setAuth(async () => phone.token);
    const mineSeen = watch(client, api.messages.mine!);
    const cartSeen = watch(client, api.messages.cart!);
    await expect.poll(() => mineSeen.at(-1)).toEqual(["from the phone"]);
    await expect.poll(() => cartSeen.at(-1)).toEqual([]);
    expect(await client.action(probeApi.whoAmI!, {})).toBe(phone.userId);

    const phoneSession = ((await backend.engine.runQuery("auth:listSessions", {}, { token: laptop.token })) as { _id: string; isCurrent: boolean }[]).find((s) => !s.isCurrent)!;
    await backend.engine.runMutation("auth:revokeSession", { authSessionId: phoneSession._id }, { token: laptop.token, fromClient: true });

    await expect.poll(() => mineSeen.at(-1)).toBeNull();
    await expect.poll(() => cartSeen.at(-1)).toBeNull();
    expect(await client.query(api.messages.mine!, {})).toBeNull();
    expect(await client.action(probeApi.whoAmI!, {})).toBeNull();
    expect((await errorOf(client.mutation(api.messages.send!, { body: "mutation after revocation" }))).message).toMatch(/Sign in first/);
    expect((await errorOf(client.action(probeApi.sendFromAction!, { body: "action after revocation" }))).message).toMatch(/Sign in first/);
    // A later write by the same user re-runs the revoked live query: it stays signed out.
    await send(backend, laptop.token, "from the laptop");
    expect(await mine(backend, laptop.token)).toEqual(["from the phone", "from the laptop"]);
    await sleep(50);
    expect(mineSeen.at(-1)).toBeNull();
    expect((await listTable(backend, "messages")).map((m) => m.body)).toEqual(["from the phone", "from the laptop"]);
  });

  it("revoking one of a user's two sessions flips only that session's live query, though both have the same identity", async () => {
    const backend = await start({}, { probe });
    const phone = await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "correct horse" });
    const laptop = await signedIn(backend, "password", { flow: "signIn", email: "ada@example.com", password: "correct horse" });
    const other = await signedIn(backend, "anonymous", {}, from("10.0.0.5"));
    const clients = [phone, laptop, other].map((who) => {
      const client = backend.client();
      client.setAuth(async () => who.token);
      return client;
    });
    // Shared while no message exists (the query does not read the caller yet).
    const seen = clients.map((client) => watch(client, probeApi.laterMine!));
    for (const results of seen) await expect.poll(() => results.at(-1)).toBe("nothing yet");
    // The first message: the shared query now reads the identity and splits per token.
    await send(backend, phone.token, "first");
    await expect.poll(() => seen[0]!.at(-1)).toEqual(["first"]);
    await expect.poll(() => seen[1]!.at(-1)).toEqual(["first"]);
    await expect.poll(() => seen[2]!.at(-1)).toEqual([]);

    await backend.engine.runMutation("auth:signOut", {}, { token: phone.token, fromClient: true });
    await expect.poll(() => seen[0]!.at(-1)).toBeNull();
    await send(backend, laptop.token, "second");
    await expect.poll(() => seen[1]!.at(-1)).toEqual(["first", "second"]);
    await sleep(50);
    expect(seen[0]!.at(-1)).toBeNull();
    expect(seen[2]!.at(-1)).toEqual([]);
  });

  it("signing in again (rotation) ends the old token's live queries at once, even on a connection that never learns the new token", async () => {
    const backend = await start({}, { probe });
    const sessionId = randomUUID();
    const guest = await signedIn(backend, "anonymous", {}, from("10.0.0.1"), { sessionId });
    await send(backend, guest.token, "guest words");
    const stale = backend.client();
    stale.setAuth(async () => guest.token);
    const seen = watch(stale, api.messages.mine!);
    await expect.poll(() => seen.at(-1)).toEqual(["guest words"]);

    const user = await signedIn(backend, "password", { flow: "signUp", email: "g@example.com", password: "correct horse" }, from("10.0.0.1", guest.token), { sessionId });
    await expect.poll(() => seen.at(-1)).toBeNull();
    await send(backend, user.token, "user words");
    await sleep(50);
    expect(seen.at(-1)).toBeNull();
    expect(await stale.action(probeApi.whoAmI!, {})).toBeNull();
    expect(await mine(backend, user.token)).toEqual(["guest words", "user words"]);
  });
});

describe("signing out an anonymous session (expired, not deleted)", () => {
  it("flips its live queries over the WebSocket and refuses its next calls", async () => {
    const backend = await start({}, { probe });
    const guest = await signedIn(backend, "anonymous", {}, from("10.0.0.4"));
    await send(backend, guest.token, "guest words");
    const client = backend.client();
    client.setAuth(async () => guest.token);
    const seen = watch(client, api.messages.mine!);
    await expect.poll(() => seen.at(-1)).toEqual(["guest words"]);
    await backend.engine.runMutation("auth:signOut", {}, { token: guest.token, fromClient: true });
    await expect.poll(() => seen.at(-1)).toBeNull();
    expect(await client.action(probeApi.whoAmI!, {})).toBeNull();
    expect((await errorOf(client.mutation(api.messages.send!, { body: "again" }))).message).toMatch(/Sign in first/);
    // Not a key to the user any more, not even through its client session.
    expect((await listTable(backend, "messages")).map((m) => m.body)).toEqual(["guest words"]);
  });
});

describe("rate limit of anonymous sign-ins", () => {
  /**
   * docs/auth.md's `clientIp` for apps behind a proxy as it read before (`??`, which answers ""
   * for an empty X-Forwarded-For): whatever an app's `clientIp` answers, a client call is limited.
   */
  const behindProxy = (request: CallerRequest) => (request.headers["x-forwarded-for"] as string | undefined)?.split(",")[0]?.trim() ?? request.remoteAddress;
  const fromProxy = (forwardedFor: string): Caller => ({ fromClient: true, token: null, request: { remoteAddress: "10.9.9.9", headers: { "x-forwarded-for": forwardedFor } } });

  it("a client call whose IP comes out empty is still limited (not treated as a server-internal call)", async () => {
    const backend = await start({ clientIp: behindProxy, rateLimits: { anonymousSignIn: { limit: 2, windowMs: 3_600_000 } } });
    for (let i = 0; i < 2; i++) await signedIn(backend, "anonymous", {}, fromProxy("203.0.113.7"));
    expect((await errorOf(signIn(backend, "anonymous", {}, fromProxy("203.0.113.7")))).code).toBe("RATE_LIMITED");
    // An empty X-Forwarded-For: the recipe answers "", and the limit is skipped.
    const outcomes = await Promise.all([1, 2, 3, 4].map(() => signIn(backend, "anonymous", {}, fromProxy("")).then((r) => r.kind, (e: Error & { code?: string }) => e.code)));
    expect(outcomes.filter((kind) => kind === "signedIn").length).toBeLessThanOrEqual(2);
  });
});

describe("revocation during a running mutation", () => {
  it("a mutation that read the caller before a revocation committed is re-run, and refused", async () => {
    const backend = await start({}, { probe });
    const phone = await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "correct horse" });
    const laptop = await signedIn(backend, "password", { flow: "signIn", email: "ada@example.com", password: "correct horse" });
    const held = newGate();
    gate = held;
    const running = backend.engine.runMutation("probe:sendSlowly", { body: "sent while being revoked" }, { token: phone.token, fromClient: true });
    running.catch(() => {});
    await sleep(20);
    expect(gate).toBeNull(); // it has read the caller and waits on the gate
    expect(await backend.engine.runMutation("auth:revokeOtherSessions", {}, { token: laptop.token, fromClient: true })).toMatchObject({ value: 1 });
    held.open();
    expect((await errorOf(running)).message).toMatch(/Sign in first/);
    expect(await listTable(backend, "messages")).toEqual([]);
  });
});

describe("concurrent sign-ins of one anonymous user", () => {
  it("an upgrade and a merge racing with the same guest token: the guest's data ends up with exactly one existing user", async () => {
    const backend = await start();
    const owner = await signedIn(backend, "password", { flow: "signUp", email: "owner@example.com", password: "owner pass" }, from("10.0.0.9"));
    const guest = await signedIn(backend, "anonymous", {}, from("10.0.0.2"));
    await send(backend, guest.token, "guest words");
    await backend.engine.runMutation("messages:addToCart", { item: "pen" }, { token: guest.token });
    const [upgraded, merged] = await Promise.all([
      signedIn(backend, "password", { flow: "signUp", email: "new@example.com", password: "new password" }, from("10.0.0.2", guest.token)),
      signedIn(backend, "password", { flow: "signIn", email: "owner@example.com", password: "owner pass" }, from("10.0.0.2", guest.token)),
    ]);
    expect(merged.userId).toBe(owner.userId);
    const users = (await listTable(backend, "users")).map((u) => u._id);
    expect(users).toHaveLength(2);
    expect(users).toContain(upgraded.userId);
    const messages = await listTable(backend, "messages");
    expect(messages.map((m) => m.body)).toEqual(["guest words"]);
    expect(users).toContain(messages[0]!.author);
    const carts = await listTable(backend, "carts");
    expect(carts.map((c) => c.items)).toEqual([["pen"]]);
    expect(users).toContain(carts[0]!.owner);
    // Every session left points at a user that exists, and the guest token is dead.
    for (const session of await listTable(backend, "authSessions")) expect(users).toContain(session.userId);
    expect(await mine(backend, guest.token)).toBeNull();
  });
});

describe("internal auth functions", () => {
  it("a client cannot call the store (which hands out password hashes) over the WebSocket or HTTP", async () => {
    const backend = await start();
    await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "correct horse" });
    const op = { type: "passwordAttempt", provider: "password", providerAccountId: "ada@example.com" };
    const client = backend.client();
    const error = await errorOf(client.mutation(anyApi.auth!.store!, { op }));
    expect(error.message).not.toContain("scrypt");
    const response = await fetch(`${backend.url}/api/mutation`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ path: "auth:store", args: { op } }),
    });
    expect(response.ok).toBe(false);
    expect(await response.text()).not.toContain("scrypt");
  });
});

describe("CAPTCHA on anonymous sign-in", () => {
  /**
   * The Anonymous provider skips the CAPTCHA when the action's caller is signed in (it checks the
   * token once, in the action), then the sign-in's own transaction checks it again. A token that
   * ends between the two (signed out in another request, or expiring) must not let the store
   * create a brand-new user with no CAPTCHA passed. The interleaving is forced with `observeRun`.
   */
  it("a token that ends between the provider's check and the sign-in transaction does not skip the CAPTCHA", async () => {
    const checks: unknown[] = [];
    const captcha = {
      name: "test-captcha",
      async verify(token: unknown) {
        checks.push(token);
        if (token !== "solved") throw walkinError("UNAUTHENTICATED", "CAPTCHA not solved.", { captcha: "invalid" });
      },
    };
    let beforeStore: (() => Promise<void>) | null = null;
    const engine = await Engine.open({
      storage: await openTestStorage(),
      schema,
      modules: authApp({ anonymous: { captcha } }),
      runScheduler: false,
      observeRun: async (trace, run) => {
        if (trace.path === "auth:store" && beforeStore) {
          const work = beforeStore;
          beforeStore = null;
          await work();
        }
        return run();
      },
    });
    try {
      const signInAnonymously = async (params: Record<string, unknown>, token: string | null) =>
        (await engine.runAction("auth:signIn", { provider: "anonymous", params }, from("10.0.0.1", token))) as { kind: string; token?: string; userId: string };
      const first = await signInAnonymously({ token: "solved" }, null);
      expect(first.kind).toBe("signedIn");
      expect(checks).toEqual(["solved"]);
      // The client signs out in another request, which lands right after the provider's check.
      beforeStore = async () => void (await engine.runMutation("auth:signOut", {}, { token: first.token!, fromClient: true }));
      const outcome = await signInAnonymously({}, first.token!).then(
        (result) => result,
        (error: Error) => error,
      );
      const users = await engine.read((txn) => createDatabaseReader(txn, engine.catalog).query("users").collect());
      // Either refused, or (at most) the same user as before: never a second user without a CAPTCHA.
      expect(users.map((u) => u._id)).toEqual([first.userId]);
      // Nothing to answer "unchanged" with: the caller is signed out, and is told to start over.
      expect(outcome).toMatchObject({ code: "UNAUTHENTICATED", message: expect.stringMatching(/session ended while you were signing in/) });
      expect(checks).toEqual(["solved"]);
    } finally {
      await engine.close();
    }
  });
});

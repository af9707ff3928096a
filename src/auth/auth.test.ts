/**
 * walkin/auth against the real engine and server: anonymous sign-in (no duplicates, even
 * concurrently), tokens (malformed, wrong, revoked, of another deployment), rotation, immediate
 * revocation of live subscriptions, upgrade in place and merge into an existing account.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { LiveBackend } from "../testing/liveBackend.js";
import { createDatabaseWriter } from "../engine/database.js";
import { sessionDigest } from "../sessions/sessionId.js";
import { sha256 } from "./tokens.js";
import { api } from "./fixtures/app.js";
import { errorOf, from, listTable, signIn, signedIn, useAuthBackends } from "./fixtures/harness.js";

const start = useAuthBackends();

describe("anonymous sign-in", () => {
  it("creates an anonymous user whose token authenticates calls", async () => {
    const backend = await start();
    const result = await signedIn(backend, "anonymous");
    expect(result.isAnonymous).toBe(true);
    expect(result.token).toMatch(/^wk2\./);
    await backend.engine.runMutation("messages:send", { body: "hi" }, { token: result.token, fromClient: true });
    expect(await backend.engine.runQuery("messages:mine", {}, { token: result.token, fromClient: true })).toEqual(["hi"]);
    const session = await backend.engine.runQuery("auth:currentSession", {}, { token: result.token, fromClient: true });
    expect(session).toMatchObject({ userId: result.userId, isAnonymous: true, provider: "anonymous" });
    // The token finds its session by ID (a point read), not through an index of random keys.
    expect(result.token.split(".")[1]).toBe((session as { authSessionId: string }).authSessionId);
  });

  it("returns the same user, keeping the token, when called again while signed in", async () => {
    const backend = await start();
    const first = await signedIn(backend, "anonymous");
    const again = await signIn(backend, "anonymous", {}, from("10.0.0.1", first.token));
    expect(again).toEqual({ kind: "unchanged", userId: first.userId, isAnonymous: true });
    expect(await listTable(backend, "users")).toHaveLength(1);
  });

  it("two concurrent sign-ins from one client session make one user", async () => {
    const backend = await start();
    const sessionId = randomUUID();
    const results = await Promise.all([1, 2, 3].map(() => signedIn(backend, "anonymous", {}, from("10.0.0.1"), { sessionId })));
    expect(new Set(results.map((r) => r.userId)).size).toBe(1);
    expect(await listTable(backend, "users")).toHaveLength(1);
    // Each call still got a working token of its own.
    for (const r of results) expect(await backend.engine.runQuery("messages:mine", {}, { token: r.token })).toEqual([]);
  });

  it("is rate-limited per client IP with the retry time, creating nothing when refused", async () => {
    const backend = await start({ rateLimits: { anonymousSignIn: { limit: 3, windowMs: 3_600_000 } } });
    for (let i = 0; i < 3; i++) await signedIn(backend, "anonymous", {}, from("10.0.0.7"));
    const error = await errorOf(signIn(backend, "anonymous", {}, from("10.0.0.7")));
    expect(error.code).toBe("RATE_LIMITED");
    expect(error.message).toMatch(/Try again in \d+ minutes/);
    expect((error.data as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(60_000);
    expect(await listTable(backend, "users")).toHaveLength(3);
    await signedIn(backend, "anonymous", {}, from("10.0.0.8")); // another address is not affected
  });

  it("a client session ID gets its guest new sessions only within the limit, counted per guest, not per network (failed before the fix)", async () => {
    const backend = await start({ rateLimits: { anonymousSignIn: { limit: 3, windowMs: 3_600_000 } } });
    const sessionId = randomUUID();
    const first = await signedIn(backend, "anonymous", {}, from("10.0.0.7"), { sessionId });
    // The same client session without its token (a reload, another tab): the same guest, a new
    // session, up to the limit. Before the fix, every such call made one, without end.
    for (let i = 0; i < 3; i++) expect((await signedIn(backend, "anonymous", {}, from("10.0.0.7"), { sessionId })).userId).toBe(first.userId);
    const error = await errorOf(signIn(backend, "anonymous", {}, from("10.0.0.7"), { sessionId }));
    expect(error.code).toBe("RATE_LIMITED");
    expect(error.message).toMatch(/anonymous sign-ins as this guest\. Try again in \d+ minutes/);
    expect((error.data as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(60_000);
    expect(await listTable(backend, "authSessions")).toHaveLength(4);
    // Those took nothing from the network's bucket: two more visitors from it still get in.
    for (let i = 0; i < 2; i++) await signedIn(backend, "anonymous", {}, from("10.0.0.7"), { sessionId: randomUUID() });
    expect(await listTable(backend, "users")).toHaveLength(3);
  });

  it("honours an async profile hook that rejects", async () => {
    const backend = await start({
      anonymous: {
        profile: async (params) => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          if (params.invite !== "yes") throw new Error("Invite only");
          return { name: "Guest" };
        },
      },
    });
    const error = await errorOf(signIn(backend, "anonymous", { invite: "no" }));
    expect(error.message).toContain("Invite only");
    expect(await listTable(backend, "users")).toHaveLength(0);
    const ok = await signedIn(backend, "anonymous", { invite: "yes" });
    expect((await listTable(backend, "users"))[0]).toMatchObject({ _id: ok.userId, name: "Guest", isAnonymous: true });
  });
});

describe("tokens", () => {
  it("refuses malformed, wrong, revoked tokens and tokens of another deployment", async () => {
    const backend = await start();
    const other = await start();
    const good = await signedIn(backend, "anonymous");
    const foreign = await signedIn(other, "anonymous");
    const [, id, secret] = good.token.split(".");
    const wrongSecret = `wk2.${id}.${"A".repeat(43)}`;
    // A well-formed ID of another table, with the right secret: that document is not a session.
    const userId = `wk2.${good.userId}.${secret}`;
    const oldShapes = [`wk1.${id}.${secret}`, `wk1.${"A".repeat(22)}.${secret}`];
    for (const token of ["", "garbage", "wk1..", "wk2..", wrongSecret, userId, ...oldShapes, foreign.token, good.token + "x", "Bearer " + good.token]) {
      expect(await backend.engine.runQuery("messages:mine", {}, { token, fromClient: true }), token).toBeNull();
    }
    await backend.engine.runMutation("auth:signOut", {}, { token: good.token, fromClient: true });
    expect(await backend.engine.runQuery("messages:mine", {}, { token: good.token })).toBeNull(); // replayed after sign-out
    // Over the wire: the Authenticate is refused, and HTTP answers 401.
    const response = await fetch(`${backend.url}/api/query`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${foreign.token}` },
      body: JSON.stringify({ path: "messages:mine", args: {} }),
    });
    expect(response.status).toBe(401);
    expect(JSON.stringify(await response.json())).not.toContain(foreign.token);
  });

  it("stores only hashes: nothing in the database is a usable token", async () => {
    const backend = await start();
    const { token } = await signedIn(backend, "anonymous");
    const [, id, secret] = token.split(".");
    const rows = await listTable(backend, "authSessions");
    expect(JSON.stringify(rows)).not.toContain(secret);
    // The ID part is the row's _id (not secret); every token made of what is stored fails.
    const stored = rows.flatMap((row) => Object.values(row).filter((value): value is string => typeof value === "string" && value.length === 43));
    expect(stored.length).toBeGreaterThan(0);
    for (const value of stored) {
      expect(await backend.engine.runQuery("messages:mine", {}, { token: `wk2.${id}.${value}` })).toBeNull();
    }
  });

  it("still accepts wk1 tokens issued before wk2 (found by the hash of their key), until they are revoked", async () => {
    const backend = await start();
    const { token, userId } = await signedIn(backend, "anonymous");
    await backend.engine.runMutation("messages:send", { body: "before the upgrade" }, { token });
    // A session as the previous version stored it: no ID in the token, a hash of its key in the row.
    const key = "K".repeat(22);
    const secret = "S".repeat(43);
    const legacy = `wk1.${key}.${secret}`;
    const engine = backend.engine;
    const rowId = await engine.runSystemMutation(async (txn) => {
      const db = createDatabaseWriter(txn, engine.catalog);
      const [row] = (await db.query("authSessions").collect()) as Record<string, unknown>[];
      const { _id, _creationTime, ...fields } = row!;
      return db.insert("authSessions", { ...fields, keyHash: sha256(key), secretHash: sha256(secret) });
    });
    expect(await engine.runQuery("messages:mine", {}, { token: legacy })).toEqual(["before the upgrade"]);
    expect(await engine.runQuery("messages:mine", {}, { token: `wk1.${key}.${"A".repeat(43)}` })).toBeNull();
    expect(await engine.runQuery("messages:mine", {}, { token: `wk2.${rowId}.${secret}` })).toEqual(["before the upgrade"]);
    const sessions = (await engine.runQuery("auth:listSessions", {}, { token: legacy })) as { _id: string; isCurrent: boolean }[];
    expect(sessions.find((s) => s.isCurrent)?._id).toBe(rowId);
    await engine.runMutation("auth:signOut", {}, { token: legacy });
    expect(await engine.runQuery("messages:mine", {}, { token: legacy })).toBeNull();
    expect(await engine.runQuery("auth:currentSession", {}, { token })).toMatchObject({ userId });
  });
});

describe("revocation", () => {
  it("flips a live subscription to signed out in the next transition, and the next call is unauthenticated", async () => {
    const backend = await start();
    const user = await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "correct horse" });
    const laptop = await signedIn(backend, "password", { flow: "signIn", email: "ada@example.com", password: "correct horse" });
    await backend.engine.runMutation("messages:send", { body: "from the phone" }, { token: user.token });

    const client = backend.client();
    client.setAuth(async () => user.token);
    const updates: unknown[] = [];
    const watch = client.watchQuery(api.messages.mine!, {});
    watch.onUpdate(() => updates.push(watch.localQueryResult()));
    await expect.poll(() => updates.at(-1)).toEqual(["from the phone"]);
    const before = updates.length;

    // From the laptop: list sessions, revoke the phone's.
    const sessions = (await backend.engine.runQuery("auth:listSessions", {}, { token: laptop.token })) as { _id: string; isCurrent: boolean; userAgent: string | null }[];
    expect(sessions).toHaveLength(2);
    expect(JSON.stringify(sessions)).not.toMatch(/keyHash|secretHash/);
    const phone = sessions.find((s) => !s.isCurrent)!;
    await backend.engine.runMutation("auth:revokeSession", { authSessionId: phone._id }, { token: laptop.token });

    await expect.poll(() => updates.at(-1)).toBeNull();
    expect(updates.length).toBe(before + 1); // one transition: straight from the data to signed out
    const error = await errorOf(client.mutation(api.messages.send!, { body: "still here?" }));
    expect(error.message).toMatch(/Sign in first|not accepted/);
    expect(await backend.engine.runQuery("messages:mine", {}, { token: laptop.token })).toEqual(["from the phone"]);
  });

  it("revokeOtherSessions keeps only the caller's session; nobody can revoke another user's", async () => {
    const backend = await start();
    const a1 = await signedIn(backend, "password", { flow: "signUp", email: "a@example.com", password: "password one" });
    const a2 = await signedIn(backend, "password", { flow: "signIn", email: "a@example.com", password: "password one" });
    const b = await signedIn(backend, "anonymous");
    const bSession = (await backend.engine.runQuery("auth:currentSession", {}, { token: b.token })) as { authSessionId: string };
    const error = await errorOf(backend.engine.runMutation("auth:revokeSession", { authSessionId: bSession.authSessionId }, { token: a1.token }));
    expect(error.code).toBe("NOT_FOUND");
    expect((await backend.engine.runMutation("auth:revokeOtherSessions", {}, { token: a2.token })).value).toBe(1);
    expect(await backend.engine.runQuery("auth:currentSession", {}, { token: a1.token })).toBeNull();
    expect(await backend.engine.runQuery("auth:currentSession", {}, { token: a2.token })).not.toBeNull();
    expect(await backend.engine.runQuery("auth:currentSession", {}, { token: b.token })).not.toBeNull();
  });
});

describe("upgrade and merge", () => {
  it("signing up while anonymous keeps the user ID and its data; the old token ends", async () => {
    const backend = await start();
    const anon = await signedIn(backend, "anonymous");
    await backend.engine.runMutation("messages:send", { body: "before sign-up" }, { token: anon.token });
    const upgraded = await signedIn(backend, "password", { flow: "signUp", email: "Grace@Example.com", password: "hopper1906", name: "Grace" }, from("10.0.0.1", anon.token));
    expect(upgraded.userId).toBe(anon.userId);
    expect(upgraded.isAnonymous).toBe(false);
    const users = await listTable(backend, "users");
    expect(users).toEqual([expect.objectContaining({ _id: anon.userId, isAnonymous: false, email: "grace@example.com", name: "Grace" })]);
    expect(await backend.engine.runQuery("messages:mine", {}, { token: upgraded.token })).toEqual(["before sign-up"]);
    expect(await backend.engine.runQuery("messages:mine", {}, { token: anon.token })).toBeNull(); // rotated
  });

  it("signing in to an existing account while anonymous merges through the hook and deletes the anonymous user", async () => {
    const backend = await start();
    const owner = await signedIn(backend, "password", { flow: "signUp", email: "owner@example.com", password: "owner pass" });
    await backend.engine.runMutation("messages:addToCart", { item: "book" }, { token: owner.token });
    const anon = await signedIn(backend, "anonymous", {}, from("10.0.0.2"));
    await backend.engine.runMutation("messages:send", { body: "anonymous words" }, { token: anon.token });
    await backend.engine.runMutation("messages:addToCart", { item: "pen" }, { token: anon.token });

    const merged = await signedIn(backend, "password", { flow: "signIn", email: "owner@example.com", password: "owner pass" }, from("10.0.0.2", anon.token));
    expect(merged.userId).toBe(owner.userId);
    expect(await backend.engine.runQuery("messages:mine", {}, { token: merged.token })).toEqual(["anonymous words"]);
    expect(await backend.engine.runQuery("messages:cart", {}, { token: merged.token })).toEqual(["book", "pen"]);
    expect((await listTable(backend, "users")).map((u) => u._id)).toEqual([owner.userId]);
    expect(await listTable(backend, "carts")).toHaveLength(1);
  });

  it("a merge hook that throws changes nothing, and the client stays signed in as before", async () => {
    const backend = await start({ callbacks: { mergeAnonymousUser: async () => { throw new Error("merge refused"); } } });
    await signedIn(backend, "password", { flow: "signUp", email: "owner@example.com", password: "owner pass" });
    const anon = await signedIn(backend, "anonymous", {}, from("10.0.0.2"));
    await backend.engine.runMutation("messages:send", { body: "mine" }, { token: anon.token });
    const before = JSON.stringify([await listTable(backend, "users"), await listTable(backend, "messages"), await listTable(backend, "authSessions")]);
    const error = await errorOf(signIn(backend, "password", { flow: "signIn", email: "owner@example.com", password: "owner pass" }, from("10.0.0.2", anon.token)));
    expect(error.message).toContain("merge refused");
    const after = JSON.stringify([await listTable(backend, "users"), await listTable(backend, "messages"), await listTable(backend, "authSessions")]);
    expect(after).toBe(before);
    expect(await backend.engine.runQuery("messages:mine", {}, { token: anon.token })).toEqual(["mine"]);
  });

  it("moves the client session's data to its new ID on sign-in and drops it on sign-out", async () => {
    const backend = await start();
    const oldId = randomUUID();
    const newId = randomUUID();
    const anon = await signedIn(backend, "anonymous", {}, from("10.0.0.3"), { sessionId: oldId });
    await insertDraft(backend, oldId, "half a thought");
    const user = await signedIn(backend, "password", { flow: "signUp", email: "s@example.com", password: "session pass" }, from("10.0.0.3", anon.token), { sessionId: oldId, newSessionId: newId });
    expect((await listTable(backend, "drafts")).map((d) => d.sessionId)).toEqual([sessionDigest(newId)]);
    await backend.engine.runMutation("auth:signOut", { sessionId: newId }, { token: user.token, fromClient: true });
    expect(await listTable(backend, "drafts")).toEqual([]);
    expect(await backend.engine.runQuery("auth:currentSession", {}, { token: user.token })).toBeNull();
  });
});

async function insertDraft(backend: LiveBackend, sessionId: string, text: string) {
  const engine = backend.engine;
  await engine.runSystemMutation((txn) => createDatabaseWriter(txn, engine.catalog).insert("drafts", { sessionId: sessionDigest(sessionId), text }));
}

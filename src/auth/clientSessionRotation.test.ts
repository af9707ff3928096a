/**
 * Anonymous sign-ins that rotate the client session ID (`newSessionId`, S → A) and a later or
 * concurrent one that still sends S (a retry whose answer was lost, a tab behind on a shared
 * per-browser ID): one guest, not two (guests.ts). Against the real engine, server and SQLite
 * storage (the shared auth harness, as in auth.test.ts). Each failed before the fix.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startLiveBackend, type LiveBackend } from "../testing/liveBackend.js";
import { createDatabaseWriter } from "../engine/database.js";
import { defineSchema, defineTable } from "../server/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { v } from "../values/index.js";
import { sessionDigest, vSessionId } from "../sessions/sessionId.js";
import { newSessionSecret, sessionToken } from "./tokens.js";
import { authApp, schema } from "./fixtures/app.js";
import { errorOf, from, listTable, signIn, signedIn, sleep, useAuthBackends } from "./fixtures/harness.js";

const start = useAuthBackends();

/** An anonymous sign-in without a token from client session `sessionId`, rotating it to `newSessionId`. */
const rotate = (backend: LiveBackend, sessionId: string, newSessionId: string) =>
  signedIn(backend, "anonymous", {}, from("10.0.0.1"), { sessionId, newSessionId });

const mine = (backend: LiveBackend, token: string) => backend.engine.runQuery("messages:mine", {}, { token, fromClient: true });
const send = (backend: LiveBackend, token: string, body: string) => backend.engine.runMutation("messages:send", { body }, { token, fromClient: true });

/**
 * A backend whose sign-ins wait, after reading the client session's ranges and inserting a
 * guest (in `beforeSessionCreation`), until two have arrived: the two really overlap. Then a
 * guest named in `holdBack` (its sign-in passed `{ name }`) waits for that promise too: the other
 * commits first. A third arrival is the re-run of the one that committed second.
 */
async function overlappingSignIns(holdBack: Record<string, Promise<unknown>> = {}): Promise<{ backend: LiveBackend; arrivals: () => number }> {
  let arrivals = 0;
  let bothArrived!: () => void;
  const barrier = new Promise<void>((resolve) => (bothArrived = resolve));
  const backend = await start({
    anonymous: { profile: async (params) => (typeof params.name === "string" ? { name: params.name } : undefined) },
    callbacks: {
      async beforeSessionCreation(ctx, { userId }) {
        if (++arrivals > 2) return;
        if (arrivals === 2) bothArrived();
        await barrier;
        const name = (await ctx.db.get(userId))?.name;
        if (typeof name === "string") await holdBack[name];
      },
    },
  });
  return { backend, arrivals: () => arrivals };
}

async function insertDraft(backend: LiveBackend, sessionId: string, text: string) {
  const engine = backend.engine;
  await engine.runSystemMutation((txn) => createDatabaseWriter(txn, engine.catalog).insert("drafts", { sessionId: sessionDigest(sessionId), text }));
}
const draftsUnder = async (backend: LiveBackend) => (await listTable(backend, "drafts")).map((d) => d.sessionId);

describe("an anonymous sign-in that still sends the client session ID another one rotated away from", () => {
  it("serially (S → A, then S → B): the same guest, a session recording B and S, and the rows follow to B", async () => {
    const backend = await start();
    const [s, a, b] = [randomUUID(), randomUUID(), randomUUID()];
    await insertDraft(backend, s, "half a thought");
    const first = await rotate(backend, s, a);
    await send(backend, first.token, "written as a guest");
    expect(await draftsUnder(backend)).toEqual([sessionDigest(a)]);

    // The answer to the first was lost (or another tab still on S signs in): it sends S again.
    const second = await rotate(backend, s, b);
    expect(second.userId, "a second guest: the visitor's data split in two").toBe(first.userId);
    expect(await listTable(backend, "users")).toHaveLength(1);
    expect(await mine(backend, second.token)).toEqual(["written as a guest"]);
    // Its session is found by B from now on, and by S still; the first tab's token keeps working.
    const sessions = await listTable(backend, "authSessions");
    expect(sessions.map((x) => [x.clientSessionId, x.rotatedFromClientSessionId])).toEqual([
      [sessionDigest(a), sessionDigest(s)],
      [sessionDigest(b), sessionDigest(s)],
    ]);
    expect(await mine(backend, first.token)).toEqual(["written as a guest"]);
    // The rows the first rotation moved to A, which that client never learned, moved on to B.
    expect(await draftsUnder(backend)).toEqual([sessionDigest(b)]);

    // A third from S finds them under B, the newest rotation from S, and takes them along.
    const c = randomUUID();
    expect((await rotate(backend, s, c)).userId).toBe(first.userId);
    expect(await draftsUnder(backend)).toEqual([sessionDigest(c)]);
    // And B, reloaded without its token, is that guest too (found by `clientSessionId`).
    expect((await rotate(backend, b, randomUUID())).userId).toBe(first.userId);
    expect(await listTable(backend, "users")).toHaveLength(1);
  });

  it("concurrently (S → A and S → B, both reading before either commits): one guest", async () => {
    const { backend, arrivals } = await overlappingSignIns();
    const [s, a, b] = [randomUUID(), randomUUID(), randomUUID()];
    await insertDraft(backend, s, "half a thought");
    const [first, second] = await Promise.all([rotate(backend, s, a), rotate(backend, s, b)]);

    expect(second.userId, "two guests for one client session").toBe(first.userId);
    expect(await listTable(backend, "users")).toHaveLength(1);
    expect(arrivals(), "the sign-in that committed second ran again").toBe(3);
    for (const r of [first, second]) expect(await mine(backend, r.token)).toEqual([]);
    // The rows are under the ID of the sign-in that committed second: each moved them on.
    const drafts = await draftsUnder(backend);
    expect(drafts).toHaveLength(1);
    expect([sessionDigest(a), sessionDigest(b)]).toContain(drafts[0]);
  });

  it("concurrently, one rotating (S → A) and one not (S alone), the rotating one committing first: one guest, the rows under A", async () => {
    let rotated!: () => void;
    const { backend, arrivals } = await overlappingSignIns({ staying: new Promise<void>((resolve) => (rotated = resolve)) });
    const [s, a] = [randomUUID(), randomUUID()];
    await insertDraft(backend, s, "half a thought");
    const rotating = rotate(backend, s, a).finally(() => rotated());
    const staying = signedIn(backend, "anonymous", { name: "staying" }, from("10.0.0.1"), { sessionId: s });
    const [{ userId: rotatingUser }, { userId: stayingUser }] = await Promise.all([rotating, staying]);

    expect(stayingUser, "two guests for one client session").toBe(rotatingUser);
    expect(await listTable(backend, "users")).toHaveLength(1);
    expect(arrivals(), "the sign-in that committed second ran again").toBe(3);
    // The rotation moved the rows to A; the other, signed in as that guest, moves nothing.
    expect(await draftsUnder(backend)).toEqual([sessionDigest(a)]);
  });

  it("a guest found through S still ends: a revoked or expired session, or a guest who signed up, leads S nowhere", async () => {
    // Sessions idle out after 2 s: long enough for each pair of sign-ins below, even on a busy machine.
    const backend = await start({ cleanup: { anonymousUserInactiveMs: 2_000 } });
    /** A guest signed in twice from S, each time rotating it (the second found the guest through S). */
    const guestOfTwoRotations = async () => {
      const s = randomUUID();
      const tab1 = await rotate(backend, s, randomUUID());
      const tab2 = await rotate(backend, s, randomUUID());
      expect(tab2.userId).toBe(tab1.userId);
      return { s, tab1, tab2 };
    };
    const signOut = (token: string) => backend.engine.runMutation("auth:signOut", {}, { token, fromClient: true });

    // Revoked (both sessions signed out): S no longer leads to that guest.
    const revoked = await guestOfTwoRotations();
    await signOut(revoked.tab1.token);
    await signOut(revoked.tab2.token);
    expect((await rotate(backend, revoked.s, randomUUID())).userId).not.toBe(revoked.tab1.userId);

    // Signed up (the upgrade ends the guest's other sessions): an account is never handed out
    // through a client session ID.
    const upgraded = await guestOfTwoRotations();
    const account = await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "correct horse" }, from("10.0.0.1", upgraded.tab2.token), { sessionId: randomUUID() });
    expect(account.userId).toBe(upgraded.tab1.userId);
    const afterUpgrade = await rotate(backend, upgraded.s, randomUUID());
    expect(afterUpgrade.userId).not.toBe(account.userId);
    expect(afterUpgrade.isAnonymous).toBe(true);

    // Expired (unused past anonymousUserInactiveMs): S no longer leads to that guest.
    const expired = await guestOfTwoRotations();
    await sleep(2_100);
    expect((await rotate(backend, expired.s, randomUUID())).userId).not.toBe(expired.tab1.userId);
  });

  it("leaves the rows under A where they are when A and B would both hold a login (an app that also keeps `logins`), instead of failing every retry", async () => {
    const backend = await start();
    const [s, a, b] = [randomUUID(), randomUUID(), randomUUID()];
    const first = await rotate(backend, s, a);
    await insertDraft(backend, a, "tab on A");
    // Both IDs got a login of the app's own (`getOrCreateSessionUser`): the tab on A, and a tab still on S.
    const engine = backend.engine;
    for (const id of [a, s]) {
      await engine.runSystemMutation((txn) => createDatabaseWriter(txn, engine.catalog).insert("logins", { sessionId: sessionDigest(id), userId: first.userId }));
    }
    const second = await rotate(backend, s, b);
    expect(second.userId).toBe(first.userId);
    // S's login went to B with it; A's rows stayed, where the tab on A reads them.
    expect((await listTable(backend, "logins")).map((l) => l.sessionId).sort()).toEqual([sessionDigest(a), sessionDigest(b)].sort());
    expect(await draftsUnder(backend)).toEqual([sessionDigest(a)]);
  });

  it("only within session.rotatedIdGraceMs: after it, S leads nowhere (a rotation is there to retire S) and starts a new guest", async () => {
    // Two seconds: the sign-in right after the first must land within it, even on a busy machine.
    const backend = await start({ session: { rotatedIdGraceMs: 2_000 } });
    const [s, a] = [randomUUID(), randomUUID()];
    const first = await rotate(backend, s, a);
    expect((await rotate(backend, s, randomUUID())).userId, "within the grace: the same guest").toBe(first.userId);
    await sleep(2_100);
    const late = await rotate(backend, s, randomUUID());
    expect(late.userId, "an ID rotated away from is still a key to the guest").not.toBe(first.userId);
    // The ID the client went on with still leads to its guest: only the old one retired.
    expect((await rotate(backend, a, randomUUID())).userId).toBe(first.userId);
  });

  it("rejects a negative or non-numeric rotatedIdGraceMs at start, naming the setting", async () => {
    for (const bad of [-1, Number.NaN, "60000"]) {
      await expect(start({ session: { rotatedIdGraceMs: bad as never } })).rejects.toThrow(
        `walkinAuth: session.rotatedIdGraceMs must be a number of milliseconds, 0 or more; received ${String(bad)}.`,
      );
    }
  });

  it("each new session for the guest counts against the guest's bucket, by whichever ID it came, however many new IDs it rotates to", async () => {
    const backend = await start({ rateLimits: { anonymousSignIn: { limit: 3, windowMs: 3_600_000 } } });
    const s = randomUUID();
    const first = await rotate(backend, s, randomUUID());
    // Retries with S, and a chain S → X1 → X2 in which every step arrives by the ID the last one rotated to.
    expect((await rotate(backend, s, randomUUID())).userId).toBe(first.userId);
    const x1 = randomUUID();
    const x2 = randomUUID();
    expect((await rotate(backend, s, x1)).userId).toBe(first.userId);
    expect((await rotate(backend, x1, x2)).userId).toBe(first.userId);
    for (const [from_, to] of [[x2, randomUUID()], [s, randomUUID()]]) {
      const error = await errorOf(signIn(backend, "anonymous", {}, from("10.0.0.1"), { sessionId: from_, newSessionId: to }));
      expect(error.code).toBe("RATE_LIMITED");
      expect(error.message).toMatch(/anonymous sign-ins as this guest/);
    }
    expect(await listTable(backend, "users")).toHaveLength(1);
  });

  it("a database written before `rotatedFromClientSessionId`: its sessions still lead to their guest, and the new index is built at start", async () => {
    const dir = mkdtempSync(join(tmpdir(), "walkin-rotation-"));
    const storage = () => openSqliteStorage({ filename: join(dir, "app.sqlite") });
    try {
      const s = randomUUID();
      const old = await startLiveBackend(defineSchema({ ...schema.tables, authSessions: authSessionsBefore }), authApp(), { storage });
      const guest = await guestAsWrittenBefore(old, s);
      await old.close();

      const upgraded = await startLiveBackend(schema, authApp(), { storage });
      try {
        // Found through `clientSessionId`, as before; this sign-in rotates S, and is recorded so.
        const rotated = await rotate(upgraded, s, randomUUID());
        expect(rotated.userId).toBe(guest.userId);
        // With the old session ended, S leads to the guest through the new index alone.
        await upgraded.engine.runMutation("auth:signOut", {}, { token: guest.token, fromClient: true });
        expect((await rotate(upgraded, s, randomUUID())).userId).toBe(guest.userId);
        expect(await listTable(upgraded, "users")).toHaveLength(1);
      } finally {
        await upgraded.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A guest signed in anonymously with client session `sessionId`, its rows as the version before this field wrote them. */
async function guestAsWrittenBefore(backend: LiveBackend, sessionId: string): Promise<{ userId: string; token: string }> {
  const engine = backend.engine;
  const { secret, secretHash } = newSessionSecret();
  const now = Date.now();
  return engine.runSystemMutation(async (txn) => {
    const db = createDatabaseWriter(txn, engine.catalog);
    const userId = await db.insert("users", { isAnonymous: true });
    const authSessionId = await db.insert("authSessions", {
      userId,
      secretHash,
      provider: "anonymous",
      isAnonymous: true,
      createdAt: now,
      lastUsedAt: now,
      expiresAt: now + 3_600_000,
      absoluteExpiresAt: Number.MAX_SAFE_INTEGER,
      clientSessionId: sessionDigest(sessionId),
    });
    return { userId, token: sessionToken(authSessionId, secret) };
  });
}

/** `authSessions` as it was before `rotatedFromClientSessionId` and its index. */
const authSessionsBefore = defineTable({
  userId: v.id("users"),
  keyHash: v.optional(v.string()),
  secretHash: v.string(),
  provider: v.string(),
  isAnonymous: v.boolean(),
  createdAt: v.number(),
  lastUsedAt: v.number(),
  expiresAt: v.number(),
  absoluteExpiresAt: v.number(),
  userAgent: v.optional(v.string()),
  ipAddress: v.optional(v.string()),
  clientSessionId: v.optional(vSessionId),
  cleanupRetryAt: v.optional(v.number()),
})
  .index("by_keyHash", ["keyHash"])
  .index("by_userId", ["userId"])
  .index("by_expiresAt", ["expiresAt"])
  .index("by_clientSessionId", ["clientSessionId"]);

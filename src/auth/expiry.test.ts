/**
 * Session lifetimes against the real engine: idle expiry, absolute expiry even for a busy
 * session, sliding expiry while in use, a bounded number of activity writes however many calls
 * a session makes, and configuration mistakes refused with a message saying what to pass.
 *
 * The tests wait in real time with small durations; they assert what the session does, never
 * how long anything took.
 */
import { describe, expect, it } from "vitest";
import type { LiveBackend } from "../testing/liveBackend.js";
import { query } from "../server/functions.js";
import { v } from "../values/index.js";
import { getAuthUserId } from "./identity.js";
import { walkinAuth } from "./walkinAuth.js";
import { Anonymous } from "./providers/anonymous.js";
import type { WalkinAuthConfig } from "./config.js";
import { errorOf, listTable, signedIn, sleep, useAuthBackends } from "./fixtures/harness.js";

const start = useAuthBackends();

/** A password user: its sessions have both an idle and an absolute limit. */
const realUser = (backend: LiveBackend) => signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "correct horse" });

const mine = (backend: LiveBackend, token: string) => backend.engine.runQuery("messages:mine", {}, { token, fromClient: true });

interface SessionRow {
  lastUsedAt: number;
  expiresAt: number;
  absoluteExpiresAt: number;
}
async function sessionRow(backend: LiveBackend): Promise<SessionRow> {
  const rows = await listTable(backend, "authSessions");
  expect(rows).toHaveLength(1);
  return rows[0] as unknown as SessionRow;
}

describe("expiry", () => {
  it("idle: a token unused for inactiveDurationMs stops working", async () => {
    const backend = await start({ session: { inactiveDurationMs: 80 } });
    const { token } = await realUser(backend);
    expect(await mine(backend, token)).toEqual([]);
    await sleep(130);
    expect(await mine(backend, token)).toBeNull();
    expect(await backend.engine.runQuery("auth:currentSession", {}, { token })).toBeNull();
    expect((await errorOf(backend.engine.runMutation("messages:send", { body: "late" }, { token }))).code).toBe("UNAUTHENTICATED");
  });

  it("absolute: totalDurationMs ends even a session in constant use", async () => {
    const backend = await start({ session: { totalDurationMs: 300, inactiveDurationMs: 60_000, activityResolutionMs: 10 } });
    const { token } = await realUser(backend);
    const { absoluteExpiresAt } = await sessionRow(backend);
    const results: unknown[] = [];
    // Use it every ~30 ms until refused (bounded, so a bug cannot hang the test).
    for (let i = 0; i < 200 && results.at(-1) !== null; i++) {
      results.push(await mine(backend, token));
      const row = await sessionRow(backend);
      expect(row.expiresAt).toBeLessThanOrEqual(absoluteExpiresAt); // sliding never passes the absolute end
      await sleep(30);
    }
    expect(results.at(-1)).toBeNull();
    expect(Date.now()).toBeGreaterThanOrEqual(absoluteExpiresAt); // it ended at the absolute end, not before
    expect(results.filter((r) => r !== null).length).toBeGreaterThan(1); // and it was in use until then
  });

  it("sliding: a token used more often than inactiveDurationMs stays alive well past it, then idles out", async () => {
    const backend = await start({ session: { inactiveDurationMs: 200, activityResolutionMs: 20 } });
    const { token } = await realUser(backend);
    const created = await sessionRow(backend);
    const until = Date.now() + 3 * 200;
    while (Date.now() < until) {
      expect(await mine(backend, token)).toEqual([]);
      await sleep(50);
    }
    const slid = await sessionRow(backend);
    expect(slid.lastUsedAt).toBeGreaterThan(created.lastUsedAt);
    expect(slid.expiresAt).toBeGreaterThan(created.expiresAt);
    expect(slid.expiresAt).toBe(slid.lastUsedAt + 200);
    await sleep(250);
    expect(await mine(backend, token)).toBeNull();
  });

  it("sliding follows a short idle limit by default: set only inactiveDurationMs, a session in use stays alive", async () => {
    const backend = await start({ session: { inactiveDurationMs: 400 } });
    const { token } = await realUser(backend);
    const until = Date.now() + 3 * 400;
    while (Date.now() < until) {
      expect(await mine(backend, token)).toEqual([]);
      await sleep(50);
    }
  });

  it("bounded writes: 50 concurrent calls inside one resolution window record their use once", async () => {
    const backend = await start({ session: { activityResolutionMs: 400 } });
    const { token } = await realUser(backend);
    const before = await sessionRow(backend);
    await sleep(450); // the recorded use is now older than the resolution: the next call records one

    const commits = backend.engine.stats.commits;
    const results = await Promise.all(Array.from({ length: 50 }, () => mine(backend, token)));
    expect(results.every((r) => Array.isArray(r))).toBe(true);
    await expect.poll(async () => (await sessionRow(backend)).lastUsedAt).toBeGreaterThan(before.lastUsedAt);
    await sleep(20); // let any further deferred write land before counting
    expect(backend.engine.stats.commits - commits).toBe(1);
    const after = await sessionRow(backend);
    expect(after.expiresAt).toBe(after.lastUsedAt + 7 * 86_400_000);

    // Still within the new window: calls read the session but write nothing.
    await Promise.all(Array.from({ length: 50 }, () => mine(backend, token)));
    await sleep(20);
    expect(backend.engine.stats.commits - commits).toBe(1);
    expect(await sessionRow(backend)).toEqual(after);
  });

  it("bounded writes: still one when calls read the session at a snapshot from before the first write committed", async () => {
    // A query that yields to the event loop before asking who is calling: some calls of the
    // burst check the token only after the first recorded use has committed, at older snapshots.
    const probe = {
      whoAfterAWait: query({
        args: { turns: v.number() },
        handler: async (ctx, { turns }) => {
          for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
          return getAuthUserId(ctx);
        },
      }),
    };
    const backend = await start({ session: { activityResolutionMs: 400 } }, { probe });
    const { token, userId } = await realUser(backend);
    await sleep(450);
    const commits = backend.engine.stats.commits;
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => backend.engine.runQuery("probe:whoAfterAWait", { turns: i % 10 }, { token, fromClient: true })));
    expect(new Set(results)).toEqual(new Set([userId]));
    await sleep(20);
    expect(backend.engine.stats.commits - commits).toBe(1);
  });

  it("anonymous: no absolute lifetime (the session is the user's only key); it idles out after cleanup.anonymousUserInactiveMs", async () => {
    const backend = await start({ session: { totalDurationMs: 100, activityResolutionMs: 20 }, cleanup: { anonymousUserInactiveMs: 300 } });
    const { token } = await signedIn(backend, "anonymous");
    expect((await sessionRow(backend)).absoluteExpiresAt).toBe(Number.MAX_SAFE_INTEGER);
    const until = Date.now() + 500; // past both the absolute limit of real sessions and the idle limit
    while (Date.now() < until) {
      expect(await mine(backend, token)).toEqual([]);
      await sleep(50);
    }
    await sleep(350);
    expect(await mine(backend, token)).toBeNull();
  });
});

describe("configuration mistakes", () => {
  it("no providers: a TypeError showing what to pass", () => {
    const hint = "walkinAuth needs at least one provider: walkinAuth({ providers: [Anonymous] }).";
    expect(() => walkinAuth({ providers: [] })).toThrow(new TypeError(hint));
    expect(() => walkinAuth(undefined as unknown as WalkinAuthConfig)).toThrow(new TypeError(hint));
    expect(() => walkinAuth({} as WalkinAuthConfig)).toThrow(new TypeError(hint));
  });

  it("two providers with one id: a TypeError saying to rename one", () => {
    expect(() => walkinAuth({ providers: [Anonymous(), Anonymous()] })).toThrow(new TypeError('walkinAuth: two providers have the id "anonymous"; give one another id.'));
  });

  it("a duration that is not a positive number of milliseconds: a TypeError naming the option", () => {
    const cases: Array<[string, Partial<WalkinAuthConfig>]> = [
      ["session.totalDurationMs", { session: { totalDurationMs: -1 } }],
      ["session.inactiveDurationMs", { session: { inactiveDurationMs: -1 } }],
      ["session.activityResolutionMs", { session: { activityResolutionMs: -1 } }],
      ["cleanup.anonymousUserInactiveMs", { cleanup: { anonymousUserInactiveMs: -1 } }],
      ["cleanup.intervalMs", { cleanup: { intervalMs: -1 } }],
    ];
    for (const [name, config] of cases) {
      expect(() => walkinAuth({ providers: [Anonymous()], ...config })).toThrow(new TypeError(`walkinAuth: ${name} must be a positive number of milliseconds; received -1.`));
    }
    for (const bad of [0, Number.NaN, Number.POSITIVE_INFINITY, "3600000"]) {
      expect(() => walkinAuth({ providers: [Anonymous()], session: { inactiveDurationMs: bad as number } })).toThrow(/session\.inactiveDurationMs must be a positive number of milliseconds/);
    }
  });

  it("an activity resolution at or past the idle limit: a TypeError, since a session in use would expire", () => {
    expect(() => walkinAuth({ providers: [Anonymous()], session: { inactiveDurationMs: 30 * 60_000, activityResolutionMs: 3_600_000 } })).toThrow(
      new TypeError("walkinAuth: session.activityResolutionMs (3600000) must be shorter than session.inactiveDurationMs (1800000), or a session in use would still expire; half of it, or leave it out for the default."),
    );
    expect(() => walkinAuth({ providers: [Anonymous()], session: { inactiveDurationMs: 30 * 60_000 } })).not.toThrow();
  });

  it("a rate limit that would refuse everyone or no one: a TypeError naming it, with an example", () => {
    expect(() => walkinAuth({ providers: [Anonymous()], rateLimits: { passwordAttempts: { limit: 0, windowMs: 60_000 } } })).toThrow(
      new TypeError("walkinAuth: rateLimits.passwordAttempts.limit must be a number of events, at least 1; received 0 (e.g. rateLimits: { passwordAttempts: { limit: 10, windowMs: 900000 } })."),
    );
    expect(() => walkinAuth({ providers: [Anonymous()], rateLimits: { codeAttempts: { limit: 5, windowMs: -1 } } })).toThrow(
      /^walkinAuth: rateLimits\.codeAttempts\.windowMs must be a positive number of milliseconds; received -1 \(e\.g\. rateLimits: \{ codeAttempts: /,
    );
    expect(() => walkinAuth({ providers: [Anonymous()], rateLimits: { anonymousSignIn: { limit: Number.NaN, windowMs: 1000 } } })).toThrow(TypeError);
    expect(() => walkinAuth({ providers: [Anonymous()], rateLimits: { anonymousSignIn: {} as never } })).toThrow(TypeError);
    // The per-network limits name themselves and their defaults the same way.
    expect(() => walkinAuth({ providers: [Anonymous()], rateLimits: { passwordAttemptsPerNetwork: { limit: 0.5, windowMs: 60_000 } } })).toThrow(
      new TypeError("walkinAuth: rateLimits.passwordAttemptsPerNetwork.limit must be a number of events, at least 1; received 0.5 (e.g. rateLimits: { passwordAttemptsPerNetwork: { limit: 100, windowMs: 900000 } })."),
    );
    expect(() => walkinAuth({ providers: [Anonymous()], rateLimits: { codeSendsPerNetwork: { limit: 20, windowMs: 0 } } })).toThrow(
      /^walkinAuth: rateLimits\.codeSendsPerNetwork\.windowMs must be a positive number of milliseconds; received 0 \(e\.g\. rateLimits: \{ codeSendsPerNetwork: \{ limit: 20, windowMs: 900000 \} \}\)\.$/,
    );
  });
});

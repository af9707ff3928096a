/**
 * Live sessions per user (`session.maxPerUser`), against the real engine and server. Ending a
 * user's sessions (a password reset, revokeOtherSessions) is one transaction; before the limit,
 * whoever knew the password could sign in until the account had more sessions than one
 * transaction may end (about 9,000), and then the reset failed with LIMIT_EXCEEDED and their
 * tokens kept working. Now a sign-in past the limit ends the least recently used session.
 */
import { describe, expect, it, onTestFinished, vi } from "vitest";
import type { LiveBackend } from "../testing/liveBackend.js";
import { sentCodes } from "./fixtures/app.js";
import { from, listTable, signIn, signedIn, useAuthBackends } from "./fixtures/harness.js";

const start = useAuthBackends();

const mine = (backend: LiveBackend, token: string) => backend.engine.runQuery("messages:mine", {}, { token, fromClient: true });
const liveSessions = async (backend: LiveBackend, userId: string) =>
  (await listTable(backend, "authSessions")).filter((s) => s.userId === userId && (s.expiresAt as number) > Date.now());
const ada = { email: "ada@example.com", password: "correct horse" };

describe("live sessions per user (session.maxPerUser)", () => {
  it("a sign-in past the limit ends the least recently used session; the others keep working (failed before the fix)", async () => {
    const T = Date.UTC(2030, 0, 1);
    vi.useFakeTimers({ toFake: ["Date"], now: T });
    onTestFinished(() => void vi.useRealTimers());
    const backend = await start({ session: { maxPerUser: 3, activityResolutionMs: 60_000 } });
    const first = await signedIn(backend, "password", { flow: "signUp", ...ada });
    vi.setSystemTime(T + 1_000);
    const second = await signedIn(backend, "password", { flow: "signIn", ...ada });
    vi.setSystemTime(T + 2_000);
    const third = await signedIn(backend, "password", { flow: "signIn", ...ada });
    // The first device is used (its use recorded): now the second is the least recently used.
    vi.setSystemTime(T + 120_000);
    expect(await mine(backend, first.token)).toEqual([]);
    await expect.poll(async () => (await listTable(backend, "authSessions")).find((s) => s.lastUsedAt === T + 120_000)).toBeTruthy();
    const fourth = await signedIn(backend, "password", { flow: "signIn", ...ada });

    expect(await liveSessions(backend, first.userId)).toHaveLength(3);
    expect(await mine(backend, second.token)).toBeNull();
    for (const device of [first, third, fourth]) expect(await mine(backend, device.token)).toEqual([]);
  });

  it("by default 100: an account signed in to again and again keeps 100, and a reset still ends every one of them", async () => {
    const backend = await start();
    const owner = await signedIn(backend, "password", { flow: "signUp", ...ada });
    const tokens = [owner.token];
    for (let i = 0; i < 110; i++) tokens.push((await signedIn(backend, "password", { flow: "signIn", ...ada }, from("203.0.113.9"))).token);
    expect(await liveSessions(backend, owner.userId)).toHaveLength(100);

    // The owner resets the password: every session ends, the attacker's included.
    sentCodes.length = 0;
    await signIn(backend, "password", { flow: "reset", email: ada.email });
    const reset = await signedIn(backend, "password", { flow: "reset-verification", email: ada.email, code: sentCodes[0]!.code, newPassword: "brand new horse" });
    expect((await liveSessions(backend, owner.userId)).map((s) => s._id)).toHaveLength(1);
    for (const token of tokens) expect(await mine(backend, token)).toBeNull();
    expect(await mine(backend, reset.token)).toEqual([]);
  });

  it("refuses a limit that is not a whole number from 1 to 1000 at startup, naming the option", async () => {
    for (const maxPerUser of [0, 1.5, 1_001]) {
      await expect(start({ session: { maxPerUser } })).rejects.toThrow(/session\.maxPerUser must be a whole number of sessions from 1 to 1000/);
    }
  });
});

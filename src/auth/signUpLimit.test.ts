/**
 * Password sign-ups per client network (`rateLimits.signUpsPerNetwork`), against the real engine
 * and server. Each sign-up costs a full scrypt run (about 100 ms and 128 MiB at the default cost,
 * on the threads every password sign-in shares): before the limit, one address could create
 * accounts without end, or sign up again and again for a taken email, each call hashing.
 *
 * `hashPassword` is wrapped (still the real scrypt) so the tests can see which calls hashed.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { Caller } from "../engine/engine.js";
import type { LiveBackend } from "../testing/liveBackend.js";
import { errorOf, from, listTable, signIn, useAuthBackends } from "./fixtures/harness.js";
import { hashPassword } from "./passwordHash.js";

vi.mock("./passwordHash.js", async (importOriginal) => {
  const actual = await importOriginal<typeof import("./passwordHash.js")>();
  return { ...actual, hashPassword: vi.fn(actual.hashPassword) };
});
const hashSpy = vi.mocked(hashPassword);

const start = useAuthBackends();
const WINDOW = 15 * 60_000;

beforeEach(() => void hashSpy.mockClear());

const signUp = (backend: LiveBackend, email: string, caller: Caller, password = "correct horse") => signIn(backend, "password", { flow: "signUp", email, password }, caller);
const emails = async (backend: LiveBackend) => (await listTable(backend, "authAccounts")).map((a) => a.providerAccountId).sort();

describe("password sign-ups per network (rateLimits.signUpsPerNetwork)", () => {
  it("one address is refused past the limit with the retry time, before any hashing, and nothing is created; other addresses are not (failed before the fix)", async () => {
    const backend = await start({ rateLimits: { signUpsPerNetwork: { limit: 3, windowMs: WINDOW } } });
    for (let i = 0; i < 3; i++) expect((await signUp(backend, `user${i}@example.com`, from("10.0.0.1"))).kind).toBe("signedIn");
    hashSpy.mockClear();

    const error = await errorOf(signUp(backend, "user3@example.com", from("10.0.0.1")));
    expect(error.code).toBe("RATE_LIMITED");
    expect(error.message).toMatch(/Too many sign-ups from this network\. Try again in \d+ (seconds|minutes)/);
    expect((error.data as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
    expect(hashSpy).not.toHaveBeenCalled();
    expect(await emails(backend)).toEqual(["user0@example.com", "user1@example.com", "user2@example.com"]);
    expect(await listTable(backend, "users")).toHaveLength(3);

    expect((await signUp(backend, "user3@example.com", from("10.0.0.2"))).kind).toBe("signedIn");
  });

  it("a sign-up for a taken email is refused without a scrypt run, and counts against the network", async () => {
    const backend = await start({ rateLimits: { signUpsPerNetwork: { limit: 3, windowMs: WINDOW } } });
    expect((await signUp(backend, "ada@example.com", from("10.0.0.1"))).kind).toBe("signedIn");
    hashSpy.mockClear();
    for (let i = 0; i < 2; i++) {
      const taken = await errorOf(signUp(backend, "ada@example.com", from("10.0.0.1"), "another password"));
      expect(taken.code).toBe("APPLICATION");
      expect(taken.message).toBe("An account with these details already exists. Sign in instead.");
    }
    expect(hashSpy).not.toHaveBeenCalled();
    expect((await errorOf(signUp(backend, "ada@example.com", from("10.0.0.1")))).code).toBe("RATE_LIMITED");
  });

  it("bad input is refused before the bucket is taken; a server's own call takes from no bucket", async () => {
    const backend = await start({ rateLimits: { signUpsPerNetwork: { limit: 1, windowMs: WINDOW } } });
    expect((await errorOf(signUp(backend, "ada@example.com", from("10.0.0.1"), "short"))).code).toBe("INVALID_ARGUMENT");
    expect(await listTable(backend, "authRateLimits")).toEqual([]);
    expect((await signUp(backend, "ada@example.com", from("10.0.0.1"))).kind).toBe("signedIn");
    for (const email of ["bob@example.com", "cy@example.com"]) expect((await signUp(backend, email, {})).kind).toBe("signedIn");
  });

  it("refuses a limit that would refuse everyone at startup, naming the option", async () => {
    await expect(start({ rateLimits: { signUpsPerNetwork: { limit: 0, windowMs: WINDOW } } })).rejects.toThrow(/rateLimits\.signUpsPerNetwork\.limit must be/);
  });
});

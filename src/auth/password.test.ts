/**
 * The Password provider against the real engine and server: sign-up validation, sign-in
 * errors that do not tell accounts apart (neither by text nor by the work done), brute-force
 * limits per account and per network, reset by one-time code (enumeration-safe, limited per
 * address and per network, single use, ends every session), and passwords kept only as scrypt
 * hashes.
 *
 * `verifyPassword` is wrapped (still the real scrypt) so the tests can see that every sign-in
 * attempt pays for exactly one verification, whether or not the account exists.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { Caller } from "../engine/engine.js";
import type { LiveBackend } from "../testing/liveBackend.js";
import { sentCodes } from "./fixtures/app.js";
import { errorOf, from, listTable, signIn, signedIn, useAuthBackends } from "./fixtures/harness.js";
import { verifyPassword } from "./passwordHash.js";
import { Password } from "./providers/password.js";
import type { AuthProvider } from "./providers/types.js";

vi.mock("./passwordHash.js", async (importOriginal) => {
  const actual = await importOriginal<typeof import("./passwordHash.js")>();
  return { ...actual, verifyPassword: vi.fn(actual.verifyPassword) };
});
const verifySpy = vi.mocked(verifyPassword);

const start = useAuthBackends();

beforeEach(() => {
  verifySpy.mockClear();
  sentCodes.length = 0;
});

const signUp = (backend: LiveBackend, email: string, password: string) => signedIn(backend, "password", { flow: "signUp", email, password });
const passwordSignIn = (backend: LiveBackend, email: string, password: string, caller?: Caller) => signIn(backend, "password", { flow: "signIn", email, password }, caller);
const currentSession = (backend: LiveBackend, token: string) => backend.engine.runQuery("auth:currentSession", {}, { token, fromClient: true });

/** Counts the `auth:store` operations of each type that run from now on. */
function countStoreOps(backend: LiveBackend) {
  const spy = vi.spyOn(backend.engine, "runMutation");
  return (type: string) => spy.mock.calls.filter(([path, args]) => path === "auth:store" && (args as { op: { type: string } }).op.type === type).length;
}

async function authRows(backend: LiveBackend) {
  const tables = ["users", "authAccounts", "authSessions", "authRateLimits", "authVerificationCodes"];
  return Object.fromEntries(await Promise.all(tables.map(async (t) => [t, await listTable(backend, t)] as const)));
}

async function requestCode(backend: LiveBackend, email: string): Promise<string> {
  expect(await signIn(backend, "password", { flow: "reset", email })).toEqual({ kind: "started", started: true });
  const sent = sentCodes.filter((c) => c.email === email);
  expect(sent.length).toBeGreaterThan(0);
  return sent.at(-1)!.code;
}

const resetWith = (backend: LiveBackend, email: string, code: string, newPassword: string) =>
  signIn(backend, "password", { flow: "reset-verification", email, code, newPassword });

const otherCode = (code: string) => (code === "00000000" ? "00000001" : "00000000");

describe("sign-up validation", () => {
  it("refuses a malformed email with INVALID_ARGUMENT saying what to enter, and creates nothing", async () => {
    const backend = await start();
    for (const email of ["not-an-email", "ada@example", "ada @example.com", "", 42, `${"a".repeat(250)}@example.com`]) {
      const error = await errorOf(signIn(backend, "password", { flow: "signUp", email, password: "long enough" }));
      expect(error.code, String(email)).toBe("INVALID_ARGUMENT");
      expect(error.message).toContain("Enter a valid email address (like ada@example.com)");
    }
    expect(Object.values(await authRows(backend)).flat()).toEqual([]);
  });

  it("refuses a short or missing password with a message saying what is needed, and creates nothing", async () => {
    const backend = await start();
    const short = await errorOf(signIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "1234567" }));
    expect(short.code).toBe("INVALID_ARGUMENT");
    expect(short.message).toBe("Choose a password of at least 8 characters.");
    const missing = await errorOf(signIn(backend, "password", { flow: "signUp", email: "ada@example.com" }));
    expect(missing.code).toBe("INVALID_ARGUMENT");
    expect(missing.message).toContain("needs params.password");
    const noFlow = await errorOf(signIn(backend, "password", { email: "ada@example.com", password: "long enough" }));
    expect(noFlow.message).toContain('needs params.flow: "signIn", "signUp", "reset" or "reset-verification"');
    expect(Object.values(await authRows(backend)).flat()).toEqual([]);
    // The same email can then sign up properly.
    await signUp(backend, "ada@example.com", "12345678");
  });
});

describe("sign-in", () => {
  it("answers a wrong password and an unknown email with the identical error", async () => {
    const backend = await start();
    await signUp(backend, "ada@example.com", "correct horse");
    const wrong = await errorOf(passwordSignIn(backend, "ada@example.com", "wrong horse"));
    const unknown = await errorOf(passwordSignIn(backend, "nobody@example.com", "correct horse"));
    expect(wrong.code).toBe("UNAUTHENTICATED");
    expect({ code: unknown.code, message: unknown.message, data: unknown.data }).toEqual({ code: wrong.code, message: wrong.message, data: wrong.data });
    expect(wrong.message).not.toMatch(/exist|unknown|not found|no account/i);
  });

  it("does the same work for an unknown email: one attempt taken from a bucket, one scrypt verification", async () => {
    const backend = await start();
    await signUp(backend, "ada@example.com", "correct horse");
    // Prime the provider's dummy hash so both paths below are measured in steady state.
    await errorOf(passwordSignIn(backend, "warmup@example.com", "whatever1"));
    const storeOps = countStoreOps(backend);

    verifySpy.mockClear();
    await errorOf(passwordSignIn(backend, "ada@example.com", "wrong horse"));
    const known = verifySpy.mock.calls.map(([password, hash]) => ({ password, hash: hash.split("$").slice(0, 4).join("$") }));
    const knownAttempts = storeOps("passwordAttempt");

    verifySpy.mockClear();
    await errorOf(passwordSignIn(backend, "nobody@example.com", "wrong horse"));
    const unknown = verifySpy.mock.calls.map(([password, hash]) => ({ password, hash: hash.split("$").slice(0, 4).join("$") }));

    // Exactly one verification each, against a real scrypt hash of the same cost.
    expect(known).toEqual([{ password: "wrong horse", hash: "scrypt$1024$8$1" }]);
    expect(unknown).toEqual(known);
    expect(knownAttempts).toBe(1);
    expect(storeOps("passwordAttempt")).toBe(2);
    expect(await verifySpy.mock.results[0]!.value).toBe(false);
    // A bucket row for each email, so a limit reached does not tell them apart either, and
    // one for the network the attempts came from (and Ada's sign-up took from the network's sign-up bucket).
    const buckets = (await listTable(backend, "authRateLimits")).map((row) => row.key as string);
    expect(buckets.filter((key) => key.startsWith("attempts|ip:"))).toEqual(["attempts|ip:10.0.0.1"]);
    expect(buckets.filter((key) => !key.startsWith("signUps|"))).toHaveLength(4);
  });

  it("limits attempts per account: past the limit even the right password is RATE_LIMITED, other accounts are not affected", async () => {
    const backend = await start({ rateLimits: { passwordAttempts: { limit: 3, windowMs: 60_000 } } });
    await signUp(backend, "ada@example.com", "correct horse");
    await signUp(backend, "bob@example.com", "bobs password");
    for (let i = 0; i < 3; i++) expect((await errorOf(passwordSignIn(backend, "ada@example.com", `guess ${i}!`))).code).toBe("UNAUTHENTICATED");

    verifySpy.mockClear();
    const limited = await errorOf(passwordSignIn(backend, "ada@example.com", "correct horse"));
    expect(limited.code).toBe("RATE_LIMITED");
    expect(limited.message).toMatch(/^Too many sign-in attempts for this account\. Try again in \d+ seconds?\.$/);
    const { retryAfterMs } = limited.data as { retryAfterMs: number };
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(retryAfterMs).toBeLessThanOrEqual(60_000 / 3);
    expect(verifySpy).not.toHaveBeenCalled(); // refused before any scrypt work

    expect((await passwordSignIn(backend, "bob@example.com", "bobs password")).kind).toBe("signedIn");
    // An unknown email runs out the same way.
    for (let i = 0; i < 3; i++) expect((await errorOf(passwordSignIn(backend, "nobody@example.com", "guess!!!"))).code).toBe("UNAUTHENTICATED");
    expect((await errorOf(passwordSignIn(backend, "nobody@example.com", "guess!!!"))).code).toBe("RATE_LIMITED");
  });

  it("a successful sign-in refills the account's bucket", async () => {
    const backend = await start({ rateLimits: { passwordAttempts: { limit: 3, windowMs: 60_000 } } });
    await signUp(backend, "ada@example.com", "correct horse");
    for (let i = 0; i < 2; i++) await errorOf(passwordSignIn(backend, "ada@example.com", "wrong horse"));
    expect((await passwordSignIn(backend, "ada@example.com", "correct horse")).kind).toBe("signedIn");
    for (let i = 0; i < 3; i++) expect((await errorOf(passwordSignIn(backend, "ada@example.com", "wrong horse"))).code).toBe("UNAUTHENTICATED");
    expect((await errorOf(passwordSignIn(backend, "ada@example.com", "wrong horse"))).code).toBe("RATE_LIMITED");
  });
});

describe("failed sign-ins per network (rateLimits.passwordAttemptsPerNetwork)", () => {
  const perNetwork = { passwordAttemptsPerNetwork: { limit: 3, windowMs: 60_000 } };
  const signInFrom = (backend: LiveBackend, ip: string, email: string, password: string) => passwordSignIn(backend, email, password, from(ip));

  it("one address guessing across accounts is stopped, even with a right password, and changes nothing; other addresses are not", async () => {
    const backend = await start({ rateLimits: perNetwork });
    await signUp(backend, "ada@example.com", "correct horse");
    // One guess per account: the per-account limit (10) never sees more than one.
    for (const email of ["ada@example.com", "bob@example.com", "cy@example.com"]) {
      expect((await errorOf(signInFrom(backend, "203.0.113.7", email, "leaked password"))).code).toBe("UNAUTHENTICATED");
    }
    const before = await authRows(backend);
    verifySpy.mockClear();
    const limited = await errorOf(signInFrom(backend, "203.0.113.7", "ada@example.com", "correct horse"));
    expect(limited.code).toBe("RATE_LIMITED");
    expect(limited.message).toMatch(/^Too many failed sign-in attempts from this network\. Try again in \d+ seconds?\.$/);
    expect((limited.data as { retryAfterMs: number }).retryAfterMs).toBeLessThanOrEqual(60_000 / 3);
    expect(verifySpy).not.toHaveBeenCalled(); // refused before any scrypt work
    expect(await authRows(backend)).toEqual(before); // no bucket taken from, no session made

    expect((await signInFrom(backend, "198.51.100.1", "ada@example.com", "correct horse")).kind).toBe("signedIn");
    // IPv6 is counted by /64: another address of the same block shares the bucket.
    for (let i = 0; i < 3; i++) await errorOf(signInFrom(backend, `2001:db8:1:2::${i + 1}`, "ada@example.com", "leaked password"));
    expect((await errorOf(signInFrom(backend, "2001:db8:1:2:ffff::9", "ada@example.com", "correct horse"))).code).toBe("RATE_LIMITED");
    expect((await signInFrom(backend, "2001:db8:1:3::1", "ada@example.com", "correct horse")).kind).toBe("signedIn");
  });

  it("a right password gives its attempt back, so many people behind one address do not use the bucket up", async () => {
    const backend = await start({ rateLimits: perNetwork });
    await signUp(backend, "ada@example.com", "correct horse");
    await signUp(backend, "bob@example.com", "bobs password");
    // Six sign-ins from one office's address, twice the bucket: every one gets in.
    for (let i = 0; i < 3; i++) {
      expect((await signInFrom(backend, "192.0.2.10", "ada@example.com", "correct horse")).kind).toBe("signedIn");
      expect((await signInFrom(backend, "192.0.2.10", "bob@example.com", "bobs password")).kind).toBe("signedIn");
    }
    // Failures still count: two, a success between them, then the third and a fourth.
    await errorOf(signInFrom(backend, "192.0.2.10", "ada@example.com", "typo horse"));
    await errorOf(signInFrom(backend, "192.0.2.10", "bob@example.com", "typo password"));
    expect((await signInFrom(backend, "192.0.2.10", "ada@example.com", "correct horse")).kind).toBe("signedIn");
    expect((await errorOf(signInFrom(backend, "192.0.2.10", "cy@example.com", "typo"))).code).toBe("UNAUTHENTICATED");
    expect((await errorOf(signInFrom(backend, "192.0.2.10", "bob@example.com", "bobs password"))).code).toBe("RATE_LIMITED");
  });

  it("a burst of attempts from one network at once takes exactly what the bucket holds", async () => {
    const backend = await start({ rateLimits: perNetwork });
    const emails = ["a", "b", "c", "d", "e", "f"].map((name) => `${name}@example.com`);
    const codes = await Promise.all(emails.map(async (email) => (await errorOf(signInFrom(backend, "203.0.113.9", email, "leaked password"))).code));
    expect(codes.filter((code) => code === "UNAUTHENTICATED")).toHaveLength(3);
    expect(codes.filter((code) => code === "RATE_LIMITED")).toHaveLength(3);
  });

  it("the network is the caller's, whatever IP a provider passes", async () => {
    const claimsAnotherIp: AuthProvider = {
      id: "claims-another-ip",
      type: "credentials",
      async signIn(context) {
        // A provider in JavaScript: the store's type no longer lets a TypeScript one pass an IP.
        await context.store({ type: "passwordAttempt", provider: "password", providerAccountId: "ada@example.com", clientIp: "192.0.2.99" } as never);
        return { kind: "started" };
      },
    };
    const backend = await start({ providers: [Password({ scrypt: { N: 1024, r: 8, p: 1 } }), claimsAnotherIp], rateLimits: perNetwork });
    expect((await signIn(backend, "claims-another-ip", {}, from("203.0.113.5"))).kind).toBe("started");
    const buckets = (await listTable(backend, "authRateLimits")).map((row) => row.key as string);
    expect(buckets.filter((key) => key.startsWith("attempts|ip:"))).toEqual(["attempts|ip:203.0.113.5"]);
  });

  it("a provider's store() runs no sign-in of its own (completeSignIn does), nor the cleanup: MISUSE, nothing written", async () => {
    const forges = (op: Record<string, unknown>): AuthProvider => ({
      id: `forges-${String(op.type)}`,
      type: "credentials",
      async signIn(context) {
        await context.store(op as never);
        return { kind: "started" };
      },
    });
    // A sign-in stored directly would choose its own session secret, network and refund.
    const signInOp = { type: "signIn", provider: "password", mode: "signUp", providerAccountId: "mallory@example.com", secretHash: "x", refundNetworkAttempts: 1_000 };
    const providers = [Password({ scrypt: { N: 1024, r: 8, p: 1 } }), forges(signInOp), forges({ type: "cleanup" })];
    const backend = await start({ providers, rateLimits: perNetwork });
    for (const provider of ["forges-signIn", "forges-cleanup"]) {
      const error = await errorOf(signIn(backend, provider, {}, from("203.0.113.5")));
      expect(error.code).toBe("MISUSE");
      expect(error.message).toMatch(/is not a provider's to run\. A provider completes a sign-in with completeSignIn/);
    }
    expect(await listTable(backend, "users")).toEqual([]);
    expect(await listTable(backend, "authSessions")).toEqual([]);
  });

  it("a provider that completes two sign-ins in one call gives its attempts back once", async () => {
    const completesTwice: AuthProvider = {
      id: "completes-twice",
      type: "credentials",
      async signIn(context) {
        await context.store({ type: "passwordAttempt", provider: "password", providerAccountId: "ada@example.com" });
        await context.completeSignIn({ mode: "signInOrUp", providerAccountId: "ada@example.com" });
        return context.completeSignIn({ mode: "signInOrUp", providerAccountId: "ada@example.com" });
      },
    };
    const backend = await start({ providers: [Password({ scrypt: { N: 1024, r: 8, p: 1 } }), completesTwice], rateLimits: perNetwork });
    await signUp(backend, "ada@example.com", "correct horse");
    for (let i = 0; i < 2; i++) expect((await errorOf(signInFrom(backend, "203.0.113.8", "ada@example.com", "leaked password"))).code).toBe("UNAUTHENTICATED");
    // The bucket had one token left; this call takes it and gives back only that one.
    expect((await signIn(backend, "completes-twice", {}, from("203.0.113.8"))).kind).toBe("signedIn");
    expect((await errorOf(signInFrom(backend, "203.0.113.8", "ada@example.com", "leaked password"))).code).toBe("UNAUTHENTICATED");
    expect((await errorOf(signInFrom(backend, "203.0.113.8", "ada@example.com", "leaked password"))).code).toBe("RATE_LIMITED");
  });

  it("an app's clientIp that returns something other than a string or null is named in the error, and nothing is written", async () => {
    const backend = await start({ clientIp: () => 42 as unknown as string, rateLimits: perNetwork });
    const before = await authRows(backend);
    const error = await errorOf(passwordSignIn(backend, "ada@example.com", "leaked password"));
    expect(error.message).toContain("walkinAuth's clientIp must return the client's IP as a string, or null when it cannot tell; it returned a number.");
    expect(await authRows(backend)).toEqual(before);
  });

  it("client calls whose IP the app's clientIp cannot tell share one bucket, and the server says so once", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    try {
      const backend = await start({ clientIp: () => "", rateLimits: perNetwork });
      for (const ip of ["10.1.0.1", "10.1.0.2", "10.1.0.3"]) expect((await errorOf(signInFrom(backend, ip, "ada@example.com", "leaked password"))).code).toBe("UNAUTHENTICATED");
      expect((await errorOf(signInFrom(backend, "10.1.0.4", "ada@example.com", "leaked password"))).code).toBe("RATE_LIMITED");
      const told = warn.mock.calls.filter(([message]) => String(message).includes("clientIp could not tell a client's IP"));
      expect(told).toHaveLength(1);
      expect(String(told[0]![0])).toContain('"unknown"');
    } finally {
      warn.mockRestore();
    }
  });

  it("a server's own call (no client IP) takes from no network's bucket", async () => {
    const backend = await start({ rateLimits: { ...perNetwork, passwordAttempts: { limit: 10, windowMs: 60_000 } } });
    await signUp(backend, "ada@example.com", "correct horse");
    const internal = { fromClient: false, token: null };
    for (let i = 0; i < 5; i++) expect((await errorOf(signIn(backend, "password", { flow: "signIn", email: "ada@example.com", password: "guess!!!" }, internal))).code).toBe("UNAUTHENTICATED");
    expect((await listTable(backend, "authRateLimits")).map((row) => row.key as string).filter((key) => key.startsWith("attempts|ip:"))).toEqual([]);
  });
});

describe("password reset", () => {
  it("answers an unknown email exactly like a known one, and sends nothing for it", async () => {
    const backend = await start();
    await signUp(backend, "ada@example.com", "correct horse");
    const unknown = await signIn(backend, "password", { flow: "reset", email: "nobody@example.com" });
    const known = await signIn(backend, "password", { flow: "reset", email: "ada@example.com" });
    expect(unknown).toEqual({ kind: "started", started: true });
    expect(known).toEqual(unknown);
    expect(sentCodes.map((c) => c.email)).toEqual(["ada@example.com"]);
    expect(sentCodes[0]!.code).toMatch(/^\d{8}$/);
    const codes = await listTable(backend, "authVerificationCodes");
    expect(codes).toHaveLength(1);
    expect(JSON.stringify(codes)).not.toContain(sentCodes[0]!.code); // only a hash is kept
  });

  it("the right code sets the new password, ends every earlier session and signs in; the code works once", async () => {
    const backend = await start();
    const phone = await signUp(backend, "ada@example.com", "old password");
    const laptop = (await passwordSignIn(backend, "ada@example.com", "old password")) as { token: string };
    const code = await requestCode(backend, "ada@example.com");

    const wrong = await errorOf(resetWith(backend, "ada@example.com", otherCode(code), "new password"));
    expect(wrong.code).toBe("UNAUTHENTICATED");
    expect(wrong.message).toContain("The code is wrong or has expired");
    expect(await currentSession(backend, phone.token)).not.toBeNull(); // a wrong code changes nothing

    const reset = await resetWith(backend, "ada@example.com", ` ${code} `, "new password");
    expect(reset).toMatchObject({ kind: "signedIn", userId: phone.userId, isAnonymous: false });
    const { token } = reset as { token: string };
    expect(await currentSession(backend, phone.token)).toBeNull();
    expect(await currentSession(backend, laptop.token)).toBeNull();
    expect(await currentSession(backend, token)).toMatchObject({ userId: phone.userId });
    expect(await listTable(backend, "authSessions")).toHaveLength(1);

    expect((await errorOf(passwordSignIn(backend, "ada@example.com", "old password"))).code).toBe("UNAUTHENTICATED");
    expect((await passwordSignIn(backend, "ada@example.com", "new password")).kind).toBe("signedIn");

    const again = await errorOf(resetWith(backend, "ada@example.com", code, "third password"));
    expect(again.code).toBe("UNAUTHENTICATED");
    expect((await passwordSignIn(backend, "ada@example.com", "new password")).kind).toBe("signedIn");
    expect(await listTable(backend, "authVerificationCodes")).toEqual([]);
  });

  it("limits code guesses: past the limit even the right code is RATE_LIMITED and nothing changes", async () => {
    const backend = await start({ rateLimits: { codeAttempts: { limit: 3, windowMs: 60_000 } } });
    const ada = await signUp(backend, "ada@example.com", "old password");
    const code = await requestCode(backend, "ada@example.com");
    for (let i = 0; i < 3; i++) expect((await errorOf(resetWith(backend, "ada@example.com", otherCode(code), "new password"))).code).toBe("UNAUTHENTICATED");

    const limited = await errorOf(resetWith(backend, "ada@example.com", code, "new password"));
    expect(limited.code).toBe("RATE_LIMITED");
    expect(limited.message).toMatch(/^Too many code attempts for this account\. Try again in/);
    expect((limited.data as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);

    expect(await currentSession(backend, ada.token)).not.toBeNull();
    expect((await passwordSignIn(backend, "ada@example.com", "old password")).kind).toBe("signedIn");
    expect(await listTable(backend, "authVerificationCodes")).toHaveLength(1);
  });

  it("limits codes asked for per network, whatever the address: a refusal sends and writes nothing; other networks are not affected", async () => {
    const backend = await start({ rateLimits: { codeSendsPerNetwork: { limit: 3, windowMs: 60_000 } } });
    await signUp(backend, "ada@example.com", "correct horse");
    const askFrom = (ip: string, email: string) => signIn(backend, "password", { flow: "reset", email }, from(ip));
    for (const email of ["ada@example.com", "bob@example.com", "cy@example.com"]) expect((await askFrom("203.0.113.7", email)).kind).toBe("started");
    await vi.waitFor(() => expect(sentCodes).toHaveLength(1)); // to ada only: the others have no account
    const before = await authRows(backend);
    const limited = await errorOf(askFrom("203.0.113.7", "ada@example.com"));
    expect(limited.code).toBe("RATE_LIMITED");
    expect(limited.message).toMatch(/^Too many codes asked for from this network\. Try again in \d+ seconds?\.$/);
    expect(await authRows(backend)).toEqual(before); // ada's code is still the one she was sent
    expect(sentCodes).toHaveLength(1);

    expect((await askFrom("198.51.100.1", "ada@example.com")).kind).toBe("started");
    await vi.waitFor(() => expect(sentCodes).toHaveLength(2));
  });

  it("a new code replaces the previous one", async () => {
    const backend = await start();
    await signUp(backend, "ada@example.com", "old password");
    const first = await requestCode(backend, "ada@example.com");
    const second = await requestCode(backend, "ada@example.com");
    if (first !== second) expect((await errorOf(resetWith(backend, "ada@example.com", first, "new password"))).code).toBe("UNAUTHENTICATED");
    expect((await resetWith(backend, "ada@example.com", second, "new password")).kind).toBe("signedIn");
  });

  it("refuses a too-short new password before using the code", async () => {
    const backend = await start();
    await signUp(backend, "ada@example.com", "old password");
    const code = await requestCode(backend, "ada@example.com");
    const error = await errorOf(resetWith(backend, "ada@example.com", code, "short"));
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.message).toBe("Choose a password of at least 8 characters.");
    expect((await resetWith(backend, "ada@example.com", code, "long new password")).kind).toBe("signedIn");
  });
});

describe("storage", () => {
  it("keeps passwords only as scrypt hashes, before and after a reset", async () => {
    const backend = await start();
    await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "first secret pw" }, from("10.0.0.9"));
    const before = await listTable(backend, "authAccounts");
    expect(before).toEqual([expect.objectContaining({ provider: "password", providerAccountId: "ada@example.com", secret: expect.stringMatching(/^scrypt\$1024\$8\$1\$[\w-]+\$[\w-]{43}$/) })]);
    expect(JSON.stringify(before)).not.toContain("first secret pw");

    const code = await requestCode(backend, "ada@example.com");
    await resetWith(backend, "ada@example.com", code, "second secret pw");
    const after = JSON.stringify(await listTable(backend, "authAccounts"));
    expect(after).toMatch(/"secret":"scrypt\$/);
    expect(after).not.toContain("second secret pw");
    expect(after).not.toContain(JSON.stringify(before[0]!.secret)); // a fresh hash (and salt)
  });
});

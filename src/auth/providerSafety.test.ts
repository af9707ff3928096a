/**
 * The Password and OAuth/OIDC providers: the invariants of docs/auth.md attacked
 * with variants (email case and whitespace, concurrent attempts, codes of another account,
 * redirect tricks, concurrent callbacks and code exchanges, callbacks.redirect).
 */
import { describe, expect, it, vi } from "vitest";
import type { Caller } from "../engine/engine.js";
import type { LiveBackend } from "../testing/liveBackend.js";
import { errorOf, from, listTable, signIn as harnessSignIn, signedIn, useAuthBackends, type AuthAppOverrides } from "./fixtures/harness.js";
import { approve, rows, signIn, SITE, startSignIn, useMockIssuer, type OAuthBackend } from "./fixtures/oauthIssuer.js";
import { Anonymous } from "./providers/anonymous.js";
import { Password } from "./providers/password.js";
import { Google } from "./providers/Google/index.js";
import { walkinError } from "../values/index.js";

const startAuth = useAuthBackends();
const SCRYPT = { N: 1024, r: 8, p: 1 };

function passwordApp(codes: { email: string; code: string }[], extra: Parameters<typeof Password>[0] = {}) {
  return [Anonymous(), Password({ scrypt: SCRYPT, sendCode: async ({ email, code }) => void codes.push({ email, code }), ...extra })];
}

const pw = (backend: LiveBackend, params: Record<string, unknown>, caller?: Caller) => harnessSignIn(backend, "password", params, caller);

describe("Password: failed-attempt limit", () => {
  it("case and whitespace variants of the email share the account's bucket", async () => {
    const backend = await startAuth({ rateLimits: { passwordAttempts: { limit: 3, windowMs: 60_000 } } });
    await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "correct horse" });
    for (const email of ["ADA@EXAMPLE.COM", " ada@example.com ", "Ada@Example.Com\t"]) {
      expect((await errorOf(pw(backend, { flow: "signIn", email, password: "wrong horse" }))).code).toBe("UNAUTHENTICATED");
    }
    expect((await errorOf(pw(backend, { flow: "signIn", email: "ada@example.com", password: "correct horse" }))).code).toBe("RATE_LIMITED");
  });

  it("concurrent wrong guesses never get more than the limit", async () => {
    const backend = await startAuth({ rateLimits: { passwordAttempts: { limit: 3, windowMs: 60_000 } } });
    await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "correct horse" });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => errorOf(pw(backend, { flow: "signIn", email: "ada@example.com", password: `guess ${i}!!` }))));
    const codes = results.map((e) => e.code).sort();
    expect(codes.filter((c) => c === "UNAUTHENTICATED")).toHaveLength(3);
    expect(codes.filter((c) => c === "RATE_LIMITED")).toHaveLength(7);
  });

  it("a locked account and a locked unknown email answer the same", async () => {
    const backend = await startAuth({ rateLimits: { passwordAttempts: { limit: 2, windowMs: 60_000 } } });
    await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "correct horse" });
    for (const email of ["ada@example.com", "nobody@example.com"]) {
      for (let i = 0; i < 2; i++) await errorOf(pw(backend, { flow: "signIn", email, password: "wrong horse" }));
    }
    const real = await errorOf(pw(backend, { flow: "signIn", email: "ada@example.com", password: "wrong horse" }));
    const unknown = await errorOf(pw(backend, { flow: "signIn", email: "nobody@example.com", password: "wrong horse" }));
    expect(real.code).toBe("RATE_LIMITED");
    expect(unknown.code).toBe(real.code);
    expect(unknown.message.replace(/\d+/g, "N")).toBe(real.message.replace(/\d+/g, "N"));
  });
});

describe("Password: reset codes", () => {
  it("a code is bound to its account: another account's email with it is refused, and it still works for its own", async () => {
    const codes: { email: string; code: string }[] = [];
    const backend = await startAuth({ providers: passwordApp(codes) });
    await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "old password" });
    await signedIn(backend, "password", { flow: "signUp", email: "bob@example.com", password: "bobs password" });
    await pw(backend, { flow: "reset", email: "ada@example.com" });
    await pw(backend, { flow: "reset", email: "bob@example.com" });
    const adaCode = codes.find((c) => c.email === "ada@example.com")!.code;
    const bobCode = codes.find((c) => c.email === "bob@example.com")!.code;
    if (adaCode !== bobCode) {
      expect((await errorOf(pw(backend, { flow: "reset-verification", email: "bob@example.com", code: adaCode, newPassword: "hijacked pw" }))).code).toBe("UNAUTHENTICATED");
    }
    expect((await pw(backend, { flow: "signIn", email: "bob@example.com", password: "bobs password" })).kind).toBe("signedIn");
    expect((await pw(backend, { flow: "reset-verification", email: " ADA@example.com", code: adaCode, newPassword: "new password" })).kind).toBe("signedIn");
  });

  it("an expired code is refused", async () => {
    const codes: { email: string; code: string }[] = [];
    const backend = await startAuth({ providers: passwordApp(codes, { codeTtlMs: 60_000 }) });
    await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "old password" });
    await pw(backend, { flow: "reset", email: "ada@example.com" });
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 61_000 });
    try {
      expect((await errorOf(pw(backend, { flow: "reset-verification", email: "ada@example.com", code: codes[0]!.code, newPassword: "new password" }))).code).toBe("UNAUTHENTICATED");
    } finally {
      vi.useRealTimers();
    }
    expect((await pw(backend, { flow: "signIn", email: "ada@example.com", password: "old password" })).kind).toBe("signedIn");
  });

  it("the right code used concurrently signs in once", async () => {
    const codes: { email: string; code: string }[] = [];
    const backend = await startAuth({ providers: passwordApp(codes) });
    await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "old password" });
    await pw(backend, { flow: "reset", email: "ada@example.com" });
    const code = codes[0]!.code;
    const outcomes = await Promise.allSettled(
      ["new password 1", "new password 2", "new password 3"].map((newPassword) => pw(backend, { flow: "reset-verification", email: "ada@example.com", code, newPassword })),
    );
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
  });

  it("a reset whose sign-in is refused (a throwing merge hook) changes nothing: the code still works, the password is the old one", async () => {
    const codes: { email: string; code: string }[] = [];
    const backend = await startAuth({
      providers: passwordApp(codes),
      callbacks: {
        async mergeAnonymousUser() {
          throw walkinError("APPLICATION", "merge refused");
        },
      },
    });
    const account = await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "old password" });
    const guest = await signedIn(backend, "anonymous", {}, from("10.0.0.2"));
    await pw(backend, { flow: "reset", email: "ada@example.com" });
    const code = codes[0]!.code;
    const refused = await errorOf(pw(backend, { flow: "reset-verification", email: "ada@example.com", code, newPassword: "new password" }, from("10.0.0.2", guest.token)));
    expect(refused.message).toBe("merge refused");
    // "If the hook throws, the sign-in fails and nothing changes" (docs/auth.md).
    expect.soft(await backend.engine.runQuery("auth:currentSession", {}, { token: account.token, fromClient: true }), "the account's other session").not.toBeNull();
    expect.soft(await listTable(backend, "authVerificationCodes"), "the code").toHaveLength(1);
    expect.soft((await errorOf(pw(backend, { flow: "signIn", email: "ada@example.com", password: "new password" }))).code, "the new password").toBe("UNAUTHENTICATED");
    expect((await pw(backend, { flow: "signIn", email: "ada@example.com", password: "old password" })).kind, "the old password").toBe("signedIn");
  });
});

// ---------------------------------------------------------------------------------------------
// OAuth / OIDC against a local issuer.

const GOOGLE = { clientId: "google-client", clientSecret: "google-secret" };
const issuer = useMockIssuer();

function startOAuth(overrides: AuthAppOverrides = {}): Promise<OAuthBackend> {
  return issuer.start({
    providers: [Anonymous(), Password({ scrypt: SCRYPT }), Google({ ...GOOGLE, issuer: issuer.url })],
    ...overrides,
  });
}

const ada = { sub: "google-ada", email: "ada@example.com", email_verified: true, name: "Ada" };

describe("OAuth: redirectTo", () => {
  // Each is either refused at the start, or ends on the app's own origin.
  it.each([
    "https:evil.example",
    "http:evil.example",
    "/\t/evil.example",
    "\\\\evil.example",
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "http://evil.example%2F@app.test",
    "http://app.test%2F@evil.example",
    "http://app.test.evil.example",
    "http://app.test:80@evil.example",
    " //evil.example",
    "\n//evil.example",
    "http://evil.example\\@app.test",
    "data:text/html,<script>alert(1)</script>",
    "HTTP://EVIL.EXAMPLE",
    "//app.test@evil.example",
    "/.//evil.example",
    "http://[::1]",
  ])("%j never leaves the app's origin", async (redirectTo) => {
    const backend = await startOAuth();
    issuer.idClaims = ada;
    let started;
    try {
      started = await startSignIn(backend, "google", { redirectTo });
    } catch (error) {
      expect(error).toMatchObject({ code: "INVALID_ARGUMENT" });
      return;
    }
    const response = await fetch(await approve(started.redirect), { redirect: "manual" });
    expect(response.status).toBe(302);
    const location = response.headers.get("location")!;
    expect(new URL(location).origin).toBe(SITE);
  });

  it("an app's callbacks.redirect that allows another origin is honoured at the callback", async () => {
    const backend = await startOAuth({
      callbacks: {
        async redirect({ redirectTo }) {
          if (redirectTo.startsWith("https://preview.app.test/")) return redirectTo;
          throw new Error("refused");
        },
      },
    });
    issuer.idClaims = ada;
    const { redirect, verifier } = await startSignIn(backend, "google", { redirectTo: "https://preview.app.test/welcome" });
    const response = await fetch(await approve(redirect), { redirect: "manual" });
    expect(response.status, await response.clone().text()).toBe(302);
    const back = new URL(response.headers.get("location")!);
    expect(back.origin + back.pathname).toBe("https://preview.app.test/welcome");
    expect((await signIn(backend, { params: { code: back.searchParams.get("code")! }, verifier })).kind).toBe("signedIn");
  });
});

describe("Password: reset requests", () => {
  it("limits how many codes one account can be sent (an attacker can otherwise mail-bomb it and keep replacing its code)", async () => {
    const codes: { email: string; code: string }[] = [];
    const backend = await startAuth({ providers: passwordApp(codes) });
    await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "old password" });
    for (let i = 0; i < 30; i++) await errorOf(pw(backend, { flow: "reset", email: "ada@example.com" }).then(() => { throw new Error("sent"); }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(codes.length).toBeLessThan(30);
  });
});

describe("OAuth: single use under concurrency", () => {
  it("two concurrent callbacks with one state: exactly one gets a sign-in code", async () => {
    const backend = await startOAuth();
    issuer.idClaims = ada;
    const { redirect } = await startSignIn(backend, "google");
    const callbackUrl = await approve(redirect);
    const responses = await Promise.all([1, 2, 3].map(() => fetch(callbackUrl, { redirect: "manual" })));
    expect(responses.map((r) => r.status).sort()).toEqual([302, 400, 400]);
  });

  it("the one-time code exchanged concurrently signs in once", async () => {
    const backend = await startOAuth();
    issuer.idClaims = ada;
    const { redirect, verifier } = await startSignIn(backend, "google");
    const response = await fetch(await approve(redirect), { redirect: "manual" });
    const code = new URL(response.headers.get("location")!).searchParams.get("code")!;
    const outcomes = await Promise.allSettled([1, 2, 3].map(() => signIn(backend, { params: { code }, verifier })));
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    expect(await rows(backend, "authSessions")).toHaveLength(1);
  });
});

describe("OAuth: account linking", () => {
  it("a verified email equal to a password account's does not link them", async () => {
    const backend = await startOAuth();
    const password = await signIn(backend, { provider: "password", params: { flow: "signUp", email: "ada@example.com", password: "correct horse" } });
    issuer.idClaims = ada;
    const { redirect, verifier } = await startSignIn(backend, "google");
    const response = await fetch(await approve(redirect), { redirect: "manual" });
    const code = new URL(response.headers.get("location")!).searchParams.get("code")!;
    const google = await signIn(backend, { params: { code }, verifier });
    expect(google.kind).toBe("signedIn");
    expect((google as { userId: string }).userId).not.toBe((password as { userId: string }).userId);
    expect(await rows(backend, "users")).toHaveLength(2);
  });

  it("an unverified email is not kept", async () => {
    const backend = await startOAuth();
    issuer.idClaims = { ...ada, email_verified: "true" }; // a string, not the boolean true
    const { redirect, verifier } = await startSignIn(backend, "google");
    const response = await fetch(await approve(redirect), { redirect: "manual" });
    const code = new URL(response.headers.get("location")!).searchParams.get("code")!;
    expect((await signIn(backend, { params: { code }, verifier })).kind).toBe("signedIn");
    expect((await rows(backend, "users"))[0]).not.toHaveProperty("email");
  });
});

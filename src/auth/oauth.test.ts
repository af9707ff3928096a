/**
 * OAuth and OIDC sign-in end to end: the real engine and server with the app's router, a real
 * local OIDC issuer (oauth2-mock-server: discovery, JWKS, signed ID tokens) standing in for
 * Google and a company SSO, and a local fake of GitHub's OAuth and API endpoints. The browser's
 * part is plain `fetch` following `Location` headers by hand; the client's part calls `signIn`.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Events, type MutableResponse } from "oauth2-mock-server";
import { isWalkinError } from "../values/index.js";
import { approve, as, rows, signIn, SITE, startSignIn, useMockIssuer, type OAuthBackend as Backend } from "./fixtures/oauthIssuer.js";
import { Anonymous } from "./providers/anonymous.js";
import { GitHub } from "./providers/GitHub/index.js";
import { startFakeGitHub, type FakeGitHub, type FakeGitHubUser } from "./providers/GitHub/fakeGitHub.js";
import { Google } from "./providers/Google/index.js";
import { OIDC } from "./providers/OIDC/index.js";

const GOOGLE = { clientId: "google-client", clientSecret: "google-secret" };
const CORP = { clientId: "corp-client", clientSecret: "corp-secret" };
const GITHUB = { clientId: "github-client", clientSecret: "github-secret" };

const issuer = useMockIssuer();
let github: FakeGitHub;

beforeAll(async () => {
  github = await startFakeGitHub(GITHUB);
});

afterAll(async () => {
  await github.close();
});

/**
 * The app with Anonymous, Google and a generic OIDC provider at the mock issuer, and GitHub at
 * the fake. GitHub's client ID/secret, the app's URL and the server's come from the environment.
 * Callbacks are served at the default "/api/auth/callback/<id>".
 */
function start(overrides: Omit<Parameters<typeof issuer.start>[0], "providers"> = {}): Promise<Backend> {
  return issuer.start(
    {
      ...overrides,
      providers: [
        Anonymous(),
        Google({ ...GOOGLE, issuer: issuer.url }),
        OIDC({ id: "corp", ...CORP, issuer: issuer.url, siteUrl: SITE }),
        GitHub({ authorizationEndpoint: github.authorizationEndpoint, tokenEndpoint: github.tokenEndpoint, apiBaseUrl: github.url }),
      ],
    },
    { AUTH_GITHUB_ID: GITHUB.clientId, AUTH_GITHUB_SECRET: GITHUB.clientSecret },
  );
}

/** Step 2: the browser at our callback; answers the app URL it is sent back to. */
async function callback(callbackUrl: string): Promise<URL> {
  const response = await fetch(callbackUrl, { redirect: "manual" });
  expect(response.status, await response.clone().text()).toBe(302);
  return new URL(response.headers.get("location")!);
}

/** All three steps; the result of the final `signIn({ code }, verifier)`. */
async function oauthSignIn(backend: Backend, provider: string, caller = as(), params: Record<string, unknown> = {}) {
  const { redirect, verifier } = await startSignIn(backend, provider, params, caller);
  const back = await callback(await approve(redirect));
  const result = await signIn(backend, { params: { code: back.searchParams.get("code")! }, verifier }, caller);
  if (result.kind !== "signedIn") throw new Error(`expected signedIn, got ${result.kind}`);
  return result;
}

async function errorOf(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    if (isWalkinError(error) || error instanceof Error) return error;
    throw error;
  }
  throw new Error("expected an error");
}

/** One-time sign-in codes stored by callbacks (state rows have no `step`). */
async function signInCodes(backend: Backend) {
  return (await rows(backend, "authVerifiers")).filter((row) => (row.value as { step?: unknown }).step !== undefined);
}

/** A refused callback: status 400, an HTML page, no sign-in code for the app, no user. */
async function expectRefused(backend: Backend, callbackUrl: string, text: RegExp) {
  const response = await fetch(callbackUrl, { redirect: "manual" });
  expect(response.status).toBe(400);
  expect(response.headers.get("content-type")).toMatch(/^text\/html/);
  expect(await response.text()).toMatch(text);
  expect(await signInCodes(backend)).toEqual([]);
  expect(await rows(backend, "users")).toEqual([]);
}

const ada = { sub: "google-ada", email: "Ada@Example.com", email_verified: true, name: "Ada Lovelace", picture: "https://img.example/ada.png" };

describe("OIDC sign-in", () => {
  it("signs up a new user with the verified profile, via PKCE, state and nonce", async () => {
    const backend = await start();
    issuer.idClaims = ada;
    const { redirect } = await startSignIn(backend, "google");
    const authorization = new URL(redirect);
    expect(authorization.origin + authorization.pathname).toBe(`${issuer.url}/authorize`);
    expect(authorization.searchParams.get("redirect_uri")).toBe(`${backend.server.url}/api/auth/callback/google`);
    expect(authorization.searchParams.get("code_challenge_method")).toBe("S256");
    expect(authorization.searchParams.get("scope")).toBe("openid email profile");
    expect(authorization.searchParams.get("state")).toBeTruthy();
    expect(authorization.searchParams.get("nonce")).toBeTruthy();

    const result = await oauthSignIn(backend, "google");
    expect(result).toMatchObject({ kind: "signedIn", isAnonymous: false });
    const users = await rows(backend, "users");
    expect(users).toMatchObject([{ _id: result.userId, email: "ada@example.com", name: "Ada Lovelace", image: ada.picture, isAnonymous: false }]);
    expect(await rows(backend, "authAccounts")).toMatchObject([{ userId: result.userId, provider: "google", providerAccountId: "google-ada" }]);
    const session = await backend.engine.runQuery("auth:currentSession", {}, as((result as { token: string }).token));
    expect(session).toMatchObject({ userId: result.userId, provider: "google" });
  });

  it("signs the same account in to the same user the second time", async () => {
    const backend = await start();
    issuer.idClaims = { sub: "corp-42", email: "grace@corp.example", email_verified: true };
    const first = await oauthSignIn(backend, "corp");
    const second = await oauthSignIn(backend, "corp");
    expect(second.userId).toBe(first.userId);
    expect(await rows(backend, "users")).toHaveLength(1);
  });

  it("keeps an email the issuer has not verified out of the user", async () => {
    const backend = await start();
    issuer.idClaims = { sub: "corp-unverified", email: "someone@else.example", email_verified: false };
    const result = await oauthSignIn(backend, "corp");
    expect((await rows(backend, "users"))[0]).not.toHaveProperty("email");
    expect(result.isAnonymous).toBe(false);
  });
});

describe("GitHub sign-in", () => {
  const octo: FakeGitHubUser = {
    id: 583231,
    login: "octocat",
    name: "The Octocat",
    emails: [
      { email: "old@example.com", primary: false, verified: true },
      { email: "Octo@Example.com", primary: true, verified: true },
    ],
  };

  it("signs up with the numeric user ID and the verified primary email, then signs in to the same user", async () => {
    const backend = await start();
    github.signInAs(octo);
    const first = await oauthSignIn(backend, "github");
    expect(await rows(backend, "users")).toMatchObject([{ _id: first.userId, email: "octo@example.com", name: "The Octocat", isAnonymous: false }]);
    expect(await rows(backend, "authAccounts")).toMatchObject([{ provider: "github", providerAccountId: "583231" }]);
    github.signInAs({ ...octo, login: "renamed" });
    expect((await oauthSignIn(backend, "github")).userId).toBe(first.userId);
  });

  it("refuses a code GitHub does not recognise (it answers HTTP 200 with an error)", async () => {
    const backend = await start();
    const { redirect } = await startSignIn(backend, "github");
    const forged = new URL(await approve(redirect));
    forged.searchParams.set("code", "not-a-real-code");
    await expectRefused(backend, forged.href, /GitHub refused the sign-in code \(bad_verification_code\)/);
  });

  it("names the missing environment variable when GitHub is not configured", async () => {
    const backend = await start();
    vi.stubEnv("AUTH_GITHUB_ID", "");
    expect((await errorOf(startSignIn(backend, "github"))).message).toMatch(/set AUTH_GITHUB_ID in the server's environment, or pass clientId to GitHub/);
    vi.stubEnv("AUTH_GITHUB_ID", GITHUB.clientId);
    vi.stubEnv("SITE_URL", "");
    expect((await errorOf(startSignIn(backend, "github"))).message).toMatch(/set SITE_URL/);
    expect(await rows(backend, "authVerifiers")).toEqual([]);
  });
});

describe("anonymous users", () => {
  it("an anonymous user who signs up with OAuth keeps their user ID and data", async () => {
    const backend = await start();
    const anonymous = await signIn(backend, { provider: "anonymous" });
    if (anonymous.kind !== "signedIn") throw new Error("expected signedIn");
    await backend.engine.runMutation("messages:send", { body: "before" }, as(anonymous.token));
    issuer.idClaims = ada;
    const upgraded = await oauthSignIn(backend, "google", as(anonymous.token));
    expect(upgraded).toMatchObject({ userId: anonymous.userId, isAnonymous: false });
    expect(await rows(backend, "users")).toMatchObject([{ _id: anonymous.userId, email: "ada@example.com", isAnonymous: false }]);
    expect(await backend.engine.runQuery("messages:mine", {}, as((upgraded as { token: string }).token))).toEqual(["before"]);
  });

  it("an anonymous user who signs in to an existing account is merged into it", async () => {
    const backend = await start();
    issuer.idClaims = ada;
    const account = await oauthSignIn(backend, "google");
    const anonymous = await signIn(backend, { provider: "anonymous" });
    if (anonymous.kind !== "signedIn") throw new Error("expected signedIn");
    await backend.engine.runMutation("messages:send", { body: "written while anonymous" }, as(anonymous.token));
    const merged = await oauthSignIn(backend, "google", as(anonymous.token));
    expect(merged.userId).toBe(account.userId);
    expect(await backend.engine.runQuery("messages:mine", {}, as((merged as { token: string }).token))).toEqual(["written while anonymous"]);
    expect((await rows(backend, "users")).map((u) => u._id)).toEqual([account.userId]);
  });
});

describe("refusals", () => {
  it("limits redirect sign-ins started per network (rateLimits.redirectSignInsPerNetwork), storing nothing for a refused one; finishing one is not counted", async () => {
    const backend = await start({ rateLimits: { redirectSignInsPerNetwork: { limit: 2, windowMs: 60_000 } } });
    issuer.idClaims = ada;
    // The browser's requests to the callback come from 127.0.0.1 here: the sign-in calls do too.
    const from = (ip: string) => ({ ...as(), request: { remoteAddress: ip, headers: {} } });
    const first = await startSignIn(backend, "google", {}, from("127.0.0.1"));
    await startSignIn(backend, "corp", {}, from("127.0.0.1"));
    const stored = (await rows(backend, "authVerifiers")).length;

    const refused = await errorOf(signIn(backend, { provider: "google", params: {} }, from("127.0.0.1")));
    expect(refused.code).toBe("RATE_LIMITED");
    expect(refused.message).toMatch(/redirect sign-ins started from this network/);
    expect((await rows(backend, "authVerifiers")).length, "a refused start stored its state").toBe(stored);
    // Another network has its own bucket.
    await startSignIn(backend, "google", {}, from("10.0.0.2"));

    // The first one finishes from the same, spent network: its callback stores a one-time code, uncounted.
    const back = await callback(await approve(first.redirect));
    const done = await signIn(backend, { params: { code: back.searchParams.get("code")! }, verifier: first.verifier }, from("127.0.0.1"));
    expect(done.kind).toBe("signedIn");
  });

  it("refuses a tampered or missing state (and the genuine one still works)", async () => {
    const backend = await start();
    issuer.idClaims = ada;
    const { redirect } = await startSignIn(backend, "google");
    const genuine = await approve(redirect);
    const tampered = new URL(genuine);
    tampered.searchParams.set("state", `${tampered.searchParams.get("state")}x`);
    await expectRefused(backend, tampered.href, /invalid, expired or already used/);
    tampered.searchParams.delete("state");
    await expectRefused(backend, tampered.href, /has no state/);
    expect((await callback(genuine)).searchParams.get("code")).toBeTruthy();
  });

  it("refuses a replayed callback", async () => {
    const backend = await start();
    issuer.idClaims = ada;
    const { redirect } = await startSignIn(backend, "google");
    const callbackUrl = await approve(redirect);
    await callback(callbackUrl);
    const again = await fetch(callbackUrl, { redirect: "manual" });
    expect(again.status).toBe(400);
    expect(await again.text()).toMatch(/already used/);
  });

  it("refuses a state that has expired", async () => {
    const backend = await start();
    const { redirect } = await startSignIn(backend, "google");
    const callbackUrl = await approve(redirect);
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 11 * 60_000 });
    await expectRefused(backend, callbackUrl, /invalid, expired or already used/);
    expect(await rows(backend, "authVerifiers")).toEqual([]); // consumed all the same
  });

  it("refuses a state started for another provider", async () => {
    const backend = await start();
    const { redirect } = await startSignIn(backend, "google");
    const elsewhere = new URL(await approve(redirect));
    elsewhere.pathname = "/api/auth/callback/corp";
    await expectRefused(backend, elsewhere.href, /invalid, expired or already used/);
  });

  it("refuses a sign-in the user cancelled at the provider", async () => {
    const backend = await start();
    const { redirect } = await startSignIn(backend, "google");
    const cancelled = new URL(await approve(redirect));
    cancelled.searchParams.delete("code");
    cancelled.searchParams.set("error", "access_denied");
    await expectRefused(backend, cancelled.href, /cancelled/);
  });

  it("refuses the one-time code with another verifier, and burns it", async () => {
    const backend = await start();
    issuer.idClaims = ada;
    const { redirect, verifier } = await startSignIn(backend, "google");
    const code = (await callback(await approve(redirect))).searchParams.get("code")!;
    const wrong = await errorOf(signIn(backend, { params: { code }, verifier: `${verifier}x` }));
    expect(wrong).toMatchObject({ code: "UNAUTHENTICATED" });
    expect(await errorOf(signIn(backend, { params: { code }, verifier }))).toMatchObject({ code: "UNAUTHENTICATED" });
    expect(await rows(backend, "users")).toEqual([]);
  });

  it.each([
    ["another audience", { aud: "someone-else" }, /unexpected \S*aud\S* claim value/],
    ["another issuer", { iss: "https://evil.example" }, /unexpected \S*iss\S* claim value/],
    ["another nonce", { nonce: "replayed-nonce" }, /nonce/],
    ["an expiry in the past", { exp: Math.floor(Date.now() / 1000) - 3600 }, /\S*exp\S* claim timestamp check failed/],
  ])("refuses an ID token with %s", async (_name, claims, reason) => {
    const backend = await start();
    issuer.idClaims = { ...ada, ...claims };
    const { redirect } = await startSignIn(backend, "google");
    await expectRefused(backend, await approve(redirect), reason);
  });

  it("refuses an ID token whose payload was altered after signing", async () => {
    const backend = await start();
    issuer.idClaims = ada;
    issuer.server.service.once(Events.BeforeResponse, (response: MutableResponse) => {
      if (typeof response.body !== "object") return;
      const [header, payload, signature] = String(response.body.id_token).split(".");
      const claims = { ...JSON.parse(Buffer.from(payload!, "base64url").toString("utf8")), sub: "victim" };
      response.body.id_token = `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${signature}`;
    });
    const { redirect } = await startSignIn(backend, "google");
    await expectRefused(backend, await approve(redirect), /signature verification failed/);
  });
});

describe("redirectTo", () => {
  it("returns to a path of the app", async () => {
    const backend = await start();
    issuer.idClaims = ada;
    const { redirect } = await startSignIn(backend, "google", { redirectTo: "/settings?tab=profile" });
    const back = await callback(await approve(redirect));
    expect(back.origin + back.pathname).toBe(`${SITE}/settings`);
    expect(back.searchParams.get("tab")).toBe("profile");
    expect(back.searchParams.get("code")).toBeTruthy();
  });

  it.each(["https://evil.example", "//evil.example/path", "/\\evil.example", "http://app.test@evil.example", "javascript:alert(1)"])(
    "refuses %s before anything is stored",
    async (redirectTo) => {
      const backend = await start();
      const error = await errorOf(startSignIn(backend, "google", { redirectTo }));
      expect(error).toMatchObject({ code: "INVALID_ARGUMENT" });
      expect(error.message).toMatch(/must be a path on this site/);
      expect(await rows(backend, "authVerifiers")).toEqual([]);
    },
  );
});

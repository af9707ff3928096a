/**
 * CAPTCHA on anonymous sign-in, against a local fake siteverify endpoint speaking the
 * Turnstile/hCaptcha protocol: a passed check creates the user (and the service saw the right
 * secret, response and client IP); a failed, missing or unavailable check (timeout, HTTP 500,
 * not JSON, unreachable) refuses with UNAUTHENTICATED and `data.captcha` saying why, and
 * creates nothing (fail closed). A client already signed in needs no new token.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { LiveBackend } from "../testing/liveBackend.js";
import { hCaptcha, turnstile, type CaptchaVerifier } from "./captcha.js";
import { startFakeSiteverify, type FakeSiteverify } from "./fixtures/fakeSiteverify.js";
import { errorOf, from, listTable, signIn, signedIn, useAuthBackends } from "./fixtures/harness.js";

const start = useAuthBackends();
let fakes: FakeSiteverify[] = [];
afterEach(async () => {
  const closing = fakes;
  fakes = [];
  await Promise.all(closing.map((f) => f.close()));
});

async function fakeService(passing: string[] = ["good-token"]) {
  const fake = await startFakeSiteverify(passing);
  fakes.push(fake);
  return fake;
}

const withCaptcha = (captcha: CaptchaVerifier) => start({ anonymous: { captcha } });

/** Nothing a sign-in would create exists. */
async function expectNothingCreated(backend: LiveBackend) {
  for (const table of ["users", "authSessions", "authRateLimits"]) expect(await listTable(backend, table), table).toEqual([]);
}

async function refusal(backend: LiveBackend, params: Record<string, unknown>) {
  const error = await errorOf(signIn(backend, "anonymous", params, from("10.0.0.5")));
  expect(error.code).toBe("UNAUTHENTICATED");
  return { reason: (error.data as { captcha?: string } | undefined)?.captcha, message: error.message };
}

describe("a passed check", () => {
  it("turnstile: creates the anonymous user; the service got the secret, the token and the client's IP", async () => {
    const fake = await fakeService();
    const backend = await withCaptcha(turnstile({ secret: "turnstile-secret", verifyUrl: fake.url }));
    const result = await signedIn(backend, "anonymous", { token: "good-token" }, from("10.0.0.5"));
    expect(result.isAnonymous).toBe(true);
    expect(fake.requests).toEqual([{ secret: "turnstile-secret", response: "good-token", remoteip: "10.0.0.5" }]);
    expect((await listTable(backend, "users")).map((u) => u._id)).toEqual([result.userId]);
    expect(await backend.engine.runQuery("messages:mine", {}, { token: result.token })).toEqual([]);
  });

  it("hCaptcha: also sends the site key", async () => {
    const fake = await fakeService();
    const backend = await withCaptcha(hCaptcha({ secret: "hcaptcha-secret", verifyUrl: fake.url, sitekey: "site-key-1" }));
    await signedIn(backend, "anonymous", { token: "good-token" }, from("10.0.0.6"));
    expect(fake.requests).toEqual([{ secret: "hcaptcha-secret", response: "good-token", remoteip: "10.0.0.6", sitekey: "site-key-1" }]);
    expect(await listTable(backend, "users")).toHaveLength(1);
  });

  it("a client already signed in calls again without a token: the same user, no new check", async () => {
    const fake = await fakeService();
    const backend = await withCaptcha(turnstile({ secret: "s", verifyUrl: fake.url }));
    const first = await signedIn(backend, "anonymous", { token: "good-token" }, from("10.0.0.5"));
    const again = await signIn(backend, "anonymous", {}, from("10.0.0.5", first.token));
    expect(again).toEqual({ kind: "unchanged", userId: first.userId, isAnonymous: true });
    expect(fake.requests).toHaveLength(1);
    expect(await listTable(backend, "users")).toHaveLength(1);
  });
});

describe("a refused check creates nothing", () => {
  it("failed: the service said no (its error codes are passed on)", async () => {
    const fake = await fakeService();
    const backend = await withCaptcha(turnstile({ secret: "s", verifyUrl: fake.url }));
    const { reason, message } = await refusal(backend, { token: "bad-token" });
    expect(reason).toBe("failed");
    expect(message).toBe("The CAPTCHA was not passed (invalid-input-response). Solve it again and retry.");
    expect(fake.requests).toEqual([{ secret: "s", response: "bad-token", remoteip: "10.0.0.5" }]);
    await expectNothingCreated(backend);
  });

  it("missing: no token (or not a string), and the service is not asked", async () => {
    const fake = await fakeService();
    const backend = await withCaptcha(turnstile({ secret: "s", verifyUrl: fake.url }));
    for (const params of [{}, { token: "" }, { token: 42 }]) {
      const { reason, message } = await refusal(backend, params);
      expect(reason).toBe("missing");
      expect(message).toContain('signIn("anonymous", { token }) needs the turnstile token');
    }
    expect(fake.requests).toEqual([]);
    await expectNothingCreated(backend);
  });

  it("unavailable: the service does not answer within timeoutMs", async () => {
    const fake = await fakeService();
    fake.mode = "hang";
    const backend = await withCaptcha(turnstile({ secret: "s", verifyUrl: fake.url, timeoutMs: 200 }));
    const { reason, message } = await refusal(backend, { token: "good-token" });
    expect(reason).toBe("unavailable");
    expect(message).toContain("no answer within 200 ms");
    expect(fake.requests).toHaveLength(1);
    await expectNothingCreated(backend);
  });

  it("unavailable: HTTP 500, an answer that is not JSON, or no service at all", async () => {
    const fake = await fakeService();
    const closed = await startFakeSiteverify();
    await closed.close();
    const backend = await withCaptcha(turnstile({ secret: "s", verifyUrl: fake.url }));
    const unreachable = await withCaptcha(turnstile({ secret: "s", verifyUrl: closed.url, timeoutMs: 2000 }));
    fake.mode = "error";
    expect((await refusal(backend, { token: "good-token" })).reason).toBe("unavailable");
    fake.mode = "garbage";
    expect((await refusal(backend, { token: "good-token" })).reason).toBe("unavailable");
    const { reason, message } = await refusal(unreachable, { token: "good-token" });
    expect(reason).toBe("unavailable");
    expect(message).toContain("Try again in a moment");
    expect(fake.requests).toHaveLength(2);
    await expectNothingCreated(backend);
    await expectNothingCreated(unreachable);
    // Once the service is back, the same token passes.
    fake.mode = "check";
    await signedIn(backend, "anonymous", { token: "good-token" }, from("10.0.0.5"));
  });
});

describe("misuse", () => {
  it("a verifier without a secret is refused at startup, saying what to pass", () => {
    expect(() => turnstile({ secret: "" })).toThrow(new TypeError("turnstile: pass the secret key, e.g. turnstile({ secret: process.env.CAPTCHA_SECRET! })."));
    expect(() => hCaptcha({} as never)).toThrow(TypeError);
  });
});

/**
 * walkin/auth probed as an attacker over the wire would: HTTP calls to the real server on
 * loopback (`/api/action`, `/api/query`, `/api/mutation`), the fixture app, the local fake
 * CAPTCHA service. Each `describe` names what an attacker tries; the ones marked
 * "(failed before the fix)" found a hole.
 *
 * `passwordHash.js` is wrapped (still the real scrypt) so a test can count the password
 * hashing an unknown email triggers.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { LiveBackend } from "../testing/liveBackend.js";
import type { CallerRequest } from "../engine/engine.js";
import { Engine } from "../engine/engine.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { authApp, schema, sentCodes } from "./fixtures/app.js";
import { startFakeSiteverify, type FakeSiteverify } from "./fixtures/fakeSiteverify.js";
import { errorOf, from, listTable, useAuthBackends } from "./fixtures/harness.js";
import { turnstile } from "./captcha.js";
import { hashPassword } from "./passwordHash.js";

vi.mock("./passwordHash.js", async (importOriginal) => {
  const actual = await importOriginal<typeof import("./passwordHash.js")>();
  return { ...actual, hashPassword: vi.fn(actual.hashPassword) };
});
const hashSpy = vi.mocked(hashPassword);

const start = useAuthBackends();
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
beforeEach(() => {
  sentCodes.length = 0;
});

type Answer = { status: number; body: { status: "success"; value: any } | { status: "error"; code: string; message: string; data?: any } };

/** One HTTP call as any client on the network makes it. */
async function call(backend: LiveBackend, kind: "query" | "mutation" | "action", fn: string, args: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(`${backend.url}/api/${kind}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify({ path: fn, args }),
  });
  return { status: response.status, body: (await response.json()) as Answer["body"] };
}

const signInHttp = (backend: LiveBackend, provider: string, params: Record<string, unknown>, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}) =>
  call(backend, "action", "auth:signIn", { provider, params, ...extra }, headers);

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

async function signedInHttp(backend: LiveBackend, provider: string, params: Record<string, unknown>, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}) {
  const answer = await signInHttp(backend, provider, params, headers, extra);
  if (answer.body.status !== "success" || answer.body.value.kind !== "signedIn") throw new Error(`expected a sign-in, got ${JSON.stringify(answer.body)}`);
  return answer.body.value as { token: string; userId: string; isAnonymous: boolean };
}

/**
 * docs/auth.md's `clientIp` recipe for apps behind a proxy, as the docs print it: the test
 * follows whatever the page tells people to paste.
 */
function docsClientIp(): (request: CallerRequest) => string | null {
  const page = readFileSync(new URL("../../docs/auth.md", import.meta.url), "utf8");
  const source = /walkinAuth\(\{ clientIp: (\(request\) => [^`]*?) \}\)`/.exec(page)?.[1];
  if (!source) throw new Error("docs/auth.md no longer has the walkinAuth({ clientIp: (request) => … }) recipe");
  return new Function(`return ${source};`)() as (request: CallerRequest) => string | null;
}

describe("per-IP limit of anonymous sign-ins, behind a proxy (docs/auth.md's clientIp recipe)", () => {
  /**
   * A proxy appends the address it saw to whatever X-Forwarded-For the client sent (nginx's
   * $proxy_add_x_forwarded_for, load balancers): only the last entry is the proxy's word. Here
   * the client talks to the server directly, so it sends the header as the proxy would pass it
   * on: its own made-up entry first, then the real address the proxy appended.
   */
  const viaProxy = (spoofed: string, real: string) => ({ "X-Forwarded-For": `${spoofed}, ${real}` });

  it("a client writing its own X-Forwarded-For does not get a fresh bucket per request (failed before the fix)", async () => {
    const backend = await start({ clientIp: docsClientIp(), rateLimits: { anonymousSignIn: { limit: 2, windowMs: 3_600_000 } } });
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const answer = await signInHttp(backend, "anonymous", {}, viaProxy(`10.66.0.${i}`, "198.51.100.7"));
      outcomes.push(answer.body.status === "success" ? answer.body.value.kind : answer.body.code);
    }
    expect(outcomes).toEqual(["signedIn", "signedIn", "RATE_LIMITED", "RATE_LIMITED"]);
    expect(await listTable(backend, "users")).toHaveLength(2);
    // Another real client behind the same proxy has its own bucket.
    expect((await signInHttp(backend, "anonymous", {}, viaProxy("10.66.0.0", "198.51.100.8"))).body.status).toBe("success");
  });

  it("IPv6: every address of one /64 (what one host or home network gets) shares a bucket (failed before the fix)", async () => {
    const backend = await start({ clientIp: docsClientIp(), rateLimits: { anonymousSignIn: { limit: 2, windowMs: 3_600_000 } } });
    const kinds = [];
    for (const address of ["2001:db8:1:2::a", "2001:DB8:1:2:0:0:0:b", "2001:db8:1:2:ffff:1:2:3"]) {
      const answer = await signInHttp(backend, "anonymous", {}, viaProxy("10.66.0.1", address));
      kinds.push(answer.body.status === "success" ? answer.body.value.kind : answer.body.code);
    }
    expect(kinds).toEqual(["signedIn", "signedIn", "RATE_LIMITED"]);
    // The next /64 is someone else.
    const other = await signedInHttp(backend, "anonymous", {}, viaProxy("10.66.0.1", "2001:db8:1:3::a"));
    // A session still records the full address it signed in from.
    const listed = await call(backend, "query", "auth:listSessions", {}, bearer(other.token));
    expect(listed.body.status === "success" && listed.body.value.map((s: { ipAddress: string }) => s.ipAddress)).toEqual(["2001:db8:1:3::a"]);
  });
});

describe("per-IP limits when the client IP carries a port", () => {
  it("a proxy that writes the port into X-Forwarded-For does not give each connection a fresh bucket (failed before the fix)", async () => {
    const backend = await start({ clientIp: docsClientIp(), rateLimits: { anonymousSignIn: { limit: 2, windowMs: 3_600_000 } } });
    const kinds = [];
    for (const address of ["198.51.100.7:50001", "198.51.100.7:50002", "198.51.100.7:50003", "[2001:db8:1:2::a]:443", "[2001:db8:1:2::b]:443", "[2001:db8:1:2::c]:8443"]) {
      const answer = await signInHttp(backend, "anonymous", {}, { "X-Forwarded-For": address });
      kinds.push(answer.body.status === "success" ? answer.body.value.kind : answer.body.code);
    }
    expect(kinds).toEqual(["signedIn", "signedIn", "RATE_LIMITED", "signedIn", "signedIn", "RATE_LIMITED"]);
  });
});

describe("telling accounts apart over HTTP", () => {
  /** Everything the wire shows of an answer. */
  const seen = (answer: Answer) => JSON.stringify(answer);

  it("sign-in, reset request and reset verification answer a known and an unknown email byte for byte the same", async () => {
    const backend = await start();
    await signedInHttp(backend, "password", { flow: "signUp", email: "ada@example.com", password: "correct horse" });
    const pairs: Array<[Record<string, unknown>, Record<string, unknown>]> = [
      [{ flow: "signIn", email: "ada@example.com", password: "wrong password" }, { flow: "signIn", email: "nobody@example.com", password: "wrong password" }],
      [{ flow: "reset", email: "ada@example.com" }, { flow: "reset", email: "nobody@example.com" }],
      [{ flow: "reset-verification", email: "ada@example.com", code: "00000000", newPassword: "new password" }, { flow: "reset-verification", email: "nobody@example.com", code: "00000000", newPassword: "new password" }],
    ];
    for (const [known, unknown] of pairs) expect(seen(await signInHttp(backend, "password", unknown))).toBe(seen(await signInHttp(backend, "password", known)));
  });

  it("an unknown email's sign-in hashes no password: it pays one scrypt verification, as a known one does (failed before the fix)", async () => {
    // The dummy hash an unknown email is verified against used to be made with hashPassword on
    // the first such sign-in of a process: that one call paid for two scrypt runs.
    const backend = await start();
    await signedInHttp(backend, "password", { flow: "signUp", email: "ada@example.com", password: "correct horse" });
    hashSpy.mockClear();
    for (const email of ["nobody@example.com", "ada@example.com", "nobody2@example.com"]) {
      const answer = await signInHttp(backend, "password", { flow: "signIn", email, password: "wrong password" });
      expect(answer.body.status === "error" && answer.body.message).toBe("Invalid email or password.");
    }
    expect(hashSpy).not.toHaveBeenCalled();
  });
});

describe("tokens after sign-out, on every HTTP path", () => {
  it("a signed-out or revoked token is refused by one-shot queries, mutations and actions, with a message that does not echo it", async () => {
    const backend = await start();
    const laptop = await signedInHttp(backend, "password", { flow: "signUp", email: "ada@example.com", password: "correct horse" });
    const phone = await signedInHttp(backend, "password", { flow: "signIn", email: "ada@example.com", password: "correct horse" });
    expect((await call(backend, "mutation", "messages:send", { body: "hi" }, bearer(laptop.token))).status).toBe(200);
    expect((await call(backend, "mutation", "auth:signOut", {}, bearer(laptop.token))).status).toBe(200);
    expect((await call(backend, "mutation", "auth:revokeOtherSessions", {}, bearer(phone.token))).status).toBe(200);
    // The phone revoked nothing of its own; sign it out too, so both tokens are dead.
    expect((await call(backend, "mutation", "auth:signOut", {}, bearer(phone.token))).status).toBe(200);
    for (const token of [laptop.token, phone.token]) {
      for (const [kind, fn, args] of [["query", "messages:mine", {}], ["mutation", "messages:send", { body: "x" }], ["action", "auth:signIn", { provider: "anonymous" }]] as const) {
        const answer = await call(backend, kind, fn, args, bearer(token));
        expect(answer.status, `${kind} ${fn}`).toBe(401);
        expect(JSON.stringify(answer.body)).not.toContain(token.split(".")[2]);
      }
    }
    expect((await listTable(backend, "messages")).map((m) => m.body)).toEqual(["hi"]);
  });
});

describe("CAPTCHA over the HTTP path", () => {
  let fake: FakeSiteverify;
  beforeEach(async () => {
    fake = await startFakeSiteverify(["good-token"]);
    cleanups.push(() => fake.close());
  });

  it("no token, a refused token, or a client session ID of an existing guest instead of a token: refused, nothing created", async () => {
    const backend = await start({ anonymous: { captcha: turnstile({ secret: "s", verifyUrl: fake.url }) } });
    const sessionId = randomUUID();
    const guest = await signedInHttp(backend, "anonymous", { token: "good-token" }, {}, { sessionId });
    const before = { users: await listTable(backend, "users"), sessions: await listTable(backend, "authSessions") };
    for (const [params, extra, reason] of [
      [{}, {}, "missing"],
      [{ token: "" }, {}, "missing"],
      [{ token: "forged" }, {}, "failed"],
      [{}, { sessionId }, "missing"],
    ] as const) {
      const answer = await signInHttp(backend, "anonymous", params, {}, extra);
      expect(answer.status).toBe(401);
      expect(answer.body.status === "error" && [answer.body.code, answer.body.data?.captcha]).toEqual(["UNAUTHENTICATED", reason]);
    }
    expect({ users: await listTable(backend, "users"), sessions: await listTable(backend, "authSessions") }).toEqual(before);
    // The guest's own token still needs no new check.
    expect((await signInHttp(backend, "anonymous", {}, bearer(guest.token))).body).toMatchObject({ status: "success", value: { kind: "unchanged", userId: guest.userId } });
  });
});

describe("reset-code guessing across nodes and restarts", () => {
  /** Two engines on one SQLite file stand for two nodes of one deployment. */
  async function openNode(filename: string): Promise<Engine> {
    const storage = await openSqliteStorage({ filename });
    return Engine.open({ storage, schema, modules: authApp({ rateLimits: { codeAttempts: { limit: 3, windowMs: 3_600_000 } } }), runScheduler: false, logError: () => {} });
  }
  const resetOn = (node: Engine, code: string) =>
    node.runAction("auth:signIn", { provider: "password", params: { flow: "reset-verification", email: "ada@example.com", code, newPassword: "new password" } }, from("10.0.0.9"));

  it("guesses spread over two nodes count in one bucket, which a restart does not refill", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-authsec-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const filename = path.join(dir, "db.sqlite");
    let nodeA = await openNode(filename);
    let nodeB = await openNode(filename);
    await nodeA.runAction("auth:signIn", { provider: "password", params: { flow: "signUp", email: "ada@example.com", password: "correct horse" } }, from("10.0.0.9"));
    await nodeB.runAction("auth:signIn", { provider: "password", params: { flow: "reset", email: "ada@example.com" } }, from("10.0.0.9"));
    const code = sentCodes.at(-1)!.code;
    const wrong = code === "00000000" ? "00000001" : "00000000";
    for (const node of [nodeA, nodeB, nodeA]) expect((await errorOf(resetOn(node, wrong))).code).toBe("UNAUTHENTICATED");
    expect((await errorOf(resetOn(nodeB, code))).code).toBe("RATE_LIMITED");
    await Promise.all([nodeA.close(), nodeB.close()]);
    nodeA = await openNode(filename);
    nodeB = await openNode(filename);
    cleanups.push(() => nodeA.close(), () => nodeB.close());
    expect((await errorOf(resetOn(nodeA, code))).code).toBe("RATE_LIMITED");
    expect((await errorOf(resetOn(nodeB, code))).code).toBe("RATE_LIMITED");
  });
});

describe("making the server hash passwords past the limits", () => {
  it("reset verification with a wrong code or past the code-attempt limit runs no scrypt hash (failed before the fix)", async () => {
    // The new password used to be hashed before the code was checked, so every refused guess,
    // even one refused by the limit, cost a full scrypt run (128 MiB at the default cost).
    const backend = await start({ rateLimits: { codeAttempts: { limit: 2, windowMs: 3_600_000 } } });
    await signedInHttp(backend, "password", { flow: "signUp", email: "ada@example.com", password: "correct horse" });
    await signInHttp(backend, "password", { flow: "reset", email: "ada@example.com" });
    const code = sentCodes.at(-1)!.code;
    const wrong = code === "00000000" ? "00000001" : "00000000";
    hashSpy.mockClear();
    const codes = [];
    for (const [email, guess] of [["ada@example.com", wrong], ["nobody@example.com", wrong], ["ada@example.com", wrong], ["ada@example.com", wrong], ["ada@example.com", code]]) {
      const answer = await signInHttp(backend, "password", { flow: "reset-verification", email, code: guess, newPassword: "new password" });
      codes.push(answer.body.status === "error" ? answer.body.code : "signedIn");
    }
    expect(codes).toEqual(["UNAUTHENTICATED", "UNAUTHENTICATED", "UNAUTHENTICATED", "RATE_LIMITED", "RATE_LIMITED"]);
    expect(hashSpy).not.toHaveBeenCalled();
    // The right code, once the bucket allows it, hashes the new password once and signs in.
    const fresh = await start();
    await signedInHttp(fresh, "password", { flow: "signUp", email: "bob@example.com", password: "correct horse" });
    await signInHttp(fresh, "password", { flow: "reset", email: "bob@example.com" });
    hashSpy.mockClear();
    await signedInHttp(fresh, "password", { flow: "reset-verification", email: "bob@example.com", code: sentCodes.at(-1)!.code, newPassword: "new password" });
    expect(hashSpy).toHaveBeenCalledTimes(1);
    await signedInHttp(fresh, "password", { flow: "signIn", email: "bob@example.com", password: "new password" });
  });
});

describe("getting past the per-account and per-IP limits with variants", () => {
  it("an email variant either lowercases to the account (and shares its bucket) or reaches no account at all", async () => {
    const backend = await start({ rateLimits: { passwordAttempts: { limit: 2, windowMs: 3_600_000 } } });
    await signedInHttp(backend, "password", { flow: "signUp", email: "kate@example.com", password: "correct horse" });
    // U+212A KELVIN SIGN lowercases to "k": the same account, the same bucket.
    for (let i = 0; i < 2; i++) await signInHttp(backend, "password", { flow: "signIn", email: "\u212Aate@example.com", password: "wrong horse" });
    expect((await signInHttp(backend, "password", { flow: "signIn", email: "kate@example.com", password: "correct horse" })).body).toMatchObject({ code: "RATE_LIMITED" });
    // Look-alikes that do not lowercase to it (fullwidth k, a decomposed form) are other, unknown
    // emails: a fresh bucket, but the right password opens nothing there.
    const fresh = await start();
    await signedInHttp(fresh, "password", { flow: "signUp", email: "ren\u00e9@example.com", password: "correct horse" });
    for (const email of ["\uff52en\u00e9@example.com", "rene\u0301@example.com"]) {
      expect((await signInHttp(fresh, "password", { flow: "signIn", email, password: "correct horse" })).body).toMatchObject({ code: "UNAUTHENTICATED", message: "Invalid email or password." });
    }
  });

  it("a new client session ID per request does not skip the per-IP limit of anonymous sign-ins", async () => {
    const backend = await start({ rateLimits: { anonymousSignIn: { limit: 2, windowMs: 3_600_000 } } });
    const outcomes = [];
    for (let i = 0; i < 4; i++) {
      const answer = await signInHttp(backend, "anonymous", {}, {}, { sessionId: randomUUID() });
      outcomes.push(answer.body.status === "success" ? answer.body.value.kind : answer.body.code);
    }
    expect(outcomes).toEqual(["signedIn", "signedIn", "RATE_LIMITED", "RATE_LIMITED"]);
    expect(await listTable(backend, "users")).toHaveLength(2);
  });
});

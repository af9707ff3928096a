/**
 * What docs/auth.md, docs/sessions.md, docs/client.md and the README promise, checked against
 * the running code where no other test asserts it: each test names the doc and the claim.
 * The docs' `ts example` blocks run in docs/snippets.test.ts and the README's app in
 * docs/readme.test.ts; their other blocks (setup fragments, React snippets) run nowhere, so the
 * last tests check that what they import exists in the package and that they would compile
 * in an app laid out by `walkin init`.
 */
import { createHash, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, defineSchema, defineTable, httpRouter, v } from "../server/index.js";
import { walkinTest, type WalkinTest } from "../testing/index.js";
import {
  actionWithSession,
  endSession,
  getOrCreateSessionUser,
  mutationWithSession,
  queryWithSession,
  readSessionIdCookie,
  sessionDigest,
  sessionTables,
  transferSession,
  vSessionId,
} from "../sessions/index.js";
import { startLiveBackend } from "../testing/liveBackend.js";
import { hCaptcha, turnstile, walkinAuth } from "./index.js";
import { Anonymous } from "./providers/Anonymous/index.js";
import { Password, consoleCodeSender } from "./providers/Password/index.js";
import { GitHub } from "./providers/GitHub/index.js";
import { Google } from "./providers/Google/index.js";
import { OIDC } from "./providers/OIDC/index.js";
import { authApp, schema as authSchema } from "./fixtures/app.js";
import { errorOf, from, listTable, signIn, signedIn, useAuthBackends } from "./fixtures/harness.js";

const start = useAuthBackends();

describe("docs/sessions.md", () => {
  const schema = defineSchema({
    ...sessionTables,
    users: defineTable({ name: v.string() }),
    carts: defineTable({ sessionId: vSessionId, item: v.string() }).index("by_sessionId", ["sessionId"]),
  });
  const shop = {
    name: mutationWithSession({
      args: { name: v.string() },
      handler: (ctx, { name }) => getOrCreateSessionUser(ctx, ctx.sessionId, (ctx) => ctx.db.insert("users", { name })),
    }),
    add: mutationWithSession({ args: { item: v.string() }, handler: (ctx, { item }) => ctx.db.insert("carts", { sessionId: ctx.sessionId, item }) }),
    view: queryWithSession({
      args: {},
      handler: async (ctx) => ({
        user: ctx.user?.name ?? null,
        cart: (await ctx.db.query("carts").withIndex("by_sessionId", (q) => q.eq("sessionId", ctx.sessionId)).collect()).map((c) => c.item),
      }),
    }),
    transfer: mutationWithSession({
      args: { to: vSessionId },
      handler: (ctx, { to }) => transferSession(ctx, { from: ctx.sessionId, to, tables: { carts: "by_sessionId" } }),
    }),
    end: mutationWithSession({ args: {}, handler: (ctx) => endSession(ctx, ctx.sessionId, { tables: { carts: "by_sessionId" } }) }),
    // "Arguments may be omitted when `sessionId` is the only one."
    viewFromAction: actionWithSession({ args: {}, handler: (ctx) => ctx.runSessionQuery(anyApi.shop!.view!) }),
  };
  let t: WalkinTest<any>;
  afterEach(async () => t?.close());

  it("an ID that is not a UUID is refused with the error the docs quote, which never echoes it", async () => {
    t = walkinTest(schema, { shop });
    const engine = await t.engine();
    const error = await errorOf(engine.runQuery("shop:view", { sessionId: "0123456789" }, { fromClient: true }));
    expect(error.message).toContain(
      "args.sessionId: expected a session ID: expected the UUID the client generated (e.g. from crypto.randomUUID()), received a string of 10 characters",
    );
    expect(error.message).not.toContain("0123456789");
  });

  it("what handlers see is sd1_ + base64url(sha256(\"walkin-session-id:\" + id)), the same for the same ID", async () => {
    t = walkinTest(schema, { shop });
    const id = randomUUID();
    const expected = "sd1_" + createHash("sha256").update("walkin-session-id:" + id).digest("base64url");
    await t.mutation(anyApi.shop!.name!, { sessionId: id, name: "Ada" });
    expect(await t.run((ctx) => ctx.db.query("logins").collect())).toMatchObject([{ sessionId: expected }]);
    expect(sessionDigest(id)).toBe(expected);
  });

  it("a digest sent back by a client is refused with the docs' wording", async () => {
    t = walkinTest(schema, { shop });
    const engine = await t.engine();
    const error = await errorOf(engine.runQuery("shop:view", { sessionId: sessionDigest(randomUUID()) }, { fromClient: true }));
    expect(error.message).toContain("this is a session digest (what functions see), not a session ID; send the ID the client generated");
  });

  it("transferSession twice is harmless, and it refuses to merge into a session that already has a login", async () => {
    t = walkinTest(schema, { shop });
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    await t.mutation(anyApi.shop!.name!, { sessionId: a, name: "Ada" });
    await t.mutation(anyApi.shop!.add!, { sessionId: a, item: "tea" });
    expect(await t.mutation(anyApi.shop!.transfer!, { sessionId: a, to: b })).toBe(2);
    expect(await t.mutation(anyApi.shop!.transfer!, { sessionId: a, to: b })).toBe(0);
    expect(await t.query(anyApi.shop!.view!, { sessionId: b })).toEqual({ user: "Ada", cart: ["tea"] });

    await t.mutation(anyApi.shop!.name!, { sessionId: c, name: "Grace" });
    await expect(t.mutation(anyApi.shop!.transfer!, { sessionId: b, to: c })).rejects.toThrow(/already has a login/);
    expect(await t.query(anyApi.shop!.view!, { sessionId: b })).toEqual({ user: "Ada", cart: ["tea"] });
  });

  it("endSession deletes the session's logins and listed rows and keeps the user document", async () => {
    t = walkinTest(schema, { shop });
    const id = randomUUID();
    await t.mutation(anyApi.shop!.name!, { sessionId: id, name: "Lin" });
    await t.mutation(anyApi.shop!.add!, { sessionId: id, item: "cake" });
    await t.mutation(anyApi.shop!.end!, { sessionId: id });
    expect(await t.query(anyApi.shop!.view!, { sessionId: id })).toEqual({ user: null, cart: [] });
    expect(await t.run((ctx) => ctx.db.query("users").collect())).toMatchObject([{ name: "Lin" }]);
  });

  it("runSessionQuery takes no arguments when sessionId is the only one", async () => {
    t = walkinTest(schema, { shop });
    const id = randomUUID();
    await t.mutation(anyApi.shop!.name!, { sessionId: id, name: "Kay" });
    expect(await t.action(anyApi.shop!.viewFromAction!, { sessionId: id })).toEqual({ user: "Kay", cart: [] });
  });

  it("readSessionIdCookie reads the cookie named after the storage key, and answers null for a malformed one", () => {
    const id = randomUUID();
    expect(readSessionIdCookie(`a=b; my-app=${id}`, "my-app")).toBe(id);
    expect(readSessionIdCookie(`walkin-session-id=${id}`, "my-app")).toBeNull();
    expect(readSessionIdCookie("walkin-session-id=%E0%A4%A")).toBeNull();
    expect(readSessionIdCookie(undefined)).toBeNull();
  });
});

describe("docs/auth.md", () => {
  it("the setup fragments (not run by docs/snippets.test.ts) build as written, and serve the OAuth callbacks at /api/auth/callback/<id>", () => {
    const setup = walkinAuth({
      providers: [Anonymous, Password({ sendCode: consoleCodeSender })],
      callbacks: { async mergeAnonymousUser() {}, async onDeleteUser() {} },
    });
    expect(Object.keys(setup).sort()).toEqual(
      ["auth", "signIn", "signOut", "store", "isAuthenticated", "currentSession", "listSessions", "revokeSession", "revokeOtherSessions"].sort(),
    );
    Anonymous({
      captcha: turnstile({ secret: "turnstile-secret" }),
      profile: async () => ({ name: `Guest ${Math.floor(Math.random() * 1000)}` }),
    });
    hCaptcha({ secret: "hcaptcha-secret", sitekey: "site-key" });
    const oauth = walkinAuth({
      providers: [Anonymous, GitHub(), Google(), OIDC({ id: "okta", issuer: "https://example.okta.com" })],
      clientIp: (request) => request.headers["x-forwarded-for"]?.split(",").at(-1)?.trim() || request.remoteAddress,
    });
    const http = httpRouter();
    oauth.auth.addHttpRoutes(http);
    expect(http.getRoutes().map(([path, method]) => `${method} ${path}`)).toEqual(["github", "google", "okta"].map((id) => `GET /api/auth/callback/${id}`));
  });

  it("listSessions shows createdAt, lastUsedAt, expiresAt, userAgent, ipAddress, provider and isCurrent, never a token or hash", async () => {
    const backend = await start();
    const laptop = await signedIn(backend, "anonymous", {}, from("10.0.0.5"));
    const sessions = (await backend.engine.runQuery("auth:listSessions", {}, from("10.0.0.5", laptop.token))) as Record<string, unknown>[];
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ provider: "anonymous", userAgent: "test-agent", ipAddress: "10.0.0.5", isCurrent: true });
    for (const field of ["createdAt", "lastUsedAt", "expiresAt"]) expect(typeof sessions[0]![field]).toBe("number");
    const shown = JSON.stringify(sessions);
    expect(shown).not.toContain(laptop.token.split(".")[2]!);
    expect(shown).not.toMatch(/secretHash|keyHash/);
  });

  it("a client call whose IP clientIp cannot tell shares the `unknown` bucket, which is also its sessions' ipAddress", async () => {
    const backend = await start({ clientIp: () => null, rateLimits: { anonymousSignIn: { limit: 1, windowMs: 3_600_000 } } });
    const first = await signedIn(backend, "anonymous", {}, from("10.0.0.1"));
    const sessions = (await backend.engine.runQuery("auth:listSessions", {}, from("10.0.0.1", first.token))) as { ipAddress: string }[];
    expect(sessions[0]!.ipAddress).toBe("unknown");
    expect((await errorOf(signIn(backend, "anonymous", {}, from("10.0.0.2")))).code).toBe("RATE_LIMITED");
    // Internal calls (the app's own functions) have no IP and no limit.
    await backend.engine.runAction("auth:signIn", { provider: "anonymous" }, {});
  });

  it("mergeAnonymousUser returning { keepAnonymousUser: true } keeps the anonymous user", async () => {
    const backend = await start({
      callbacks: { mergeAnonymousUser: async () => ({ keepAnonymousUser: true }) },
    });
    await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "analytical engine" });
    const guest = await signedIn(backend, "anonymous");
    const merged = await signedIn(backend, "password", { flow: "signIn", email: "ada@example.com", password: "analytical engine" }, from("10.0.0.1", guest.token));
    expect(merged.userId).not.toBe(guest.userId);
    expect((await listTable(backend, "users")).map((u) => u._id)).toContain(guest.userId);
  });

  it("signIn answers Convex Auth's fields too: tokens for a new token, started for a started flow", async () => {
    const backend = await start();
    const result = await signIn(backend, "anonymous");
    expect(result).toMatchObject({ kind: "signedIn", tokens: { token: (result as { token: string }).token } });
    expect(await signIn(backend, "password", { flow: "reset", email: "nobody@example.com" })).toEqual({ kind: "started", started: true });
  });

  it("beforeSessionCreation runs in the sign-in transaction: a throw refuses the sign-in and writes nothing", async () => {
    const backend = await start({
      callbacks: {
        async beforeSessionCreation(ctx, { userId }) {
          if ((await ctx.db.get(userId))?.name === "Banned") throw new Error("This account is banned.");
        },
      },
    });
    const guest = await signedIn(backend, "anonymous");
    const error = await errorOf(
      signIn(backend, "password", { flow: "signUp", email: "banned@example.com", password: "long enough", name: "Banned" }, from("10.0.0.1", guest.token)),
    );
    expect(error.message).toContain("This account is banned.");
    // Nothing written: no account, the guest is still a guest, and its token still works.
    expect(await listTable(backend, "authAccounts")).toEqual([]);
    expect(await listTable(backend, "users")).toMatchObject([{ _id: guest.userId, isAnonymous: true }]);
    expect(await backend.engine.runQuery("auth:currentSession", {}, from("10.0.0.1", guest.token))).toMatchObject({ userId: guest.userId });
  });

  it("afterUserCreatedOrUpdated runs after Walk-in creates or upgrades a user, in its transaction; not when createOrUpdateUser is set", async () => {
    const seen: { userId: string; existingUserId: string | null; isAnonymous: boolean }[] = [];
    const backend = await start({
      callbacks: {
        async afterUserCreatedOrUpdated(ctx, { userId, existingUserId, isAnonymous }) {
          seen.push({ userId, existingUserId, isAnonymous });
          await ctx.db.patch(userId, { name: isAnonymous ? "Guest" : "Member" });
        },
      },
    });
    const guest = await signedIn(backend, "anonymous");
    const account = await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "long enough" }, from("10.0.0.1", guest.token));
    expect(seen).toEqual([
      { userId: guest.userId, existingUserId: null, isAnonymous: true },
      { userId: guest.userId, existingUserId: guest.userId, isAnonymous: false },
    ]);
    expect(account.userId).toBe(guest.userId);
    expect(await listTable(backend, "users")).toMatchObject([{ _id: guest.userId, name: "Member", isAnonymous: false }]);

    const custom: string[] = [];
    const other = await start({
      callbacks: {
        createOrUpdateUser: async (ctx, { existingUserId }) => existingUserId ?? (await ctx.db.insert("users", { isAnonymous: true })),
        async afterUserCreatedOrUpdated(_ctx, { userId }) {
          custom.push(userId);
        },
      },
    });
    await signedIn(other, "anonymous");
    expect(custom).toEqual([]);
  });

  it("createOrUpdateUser must return a users document: anything else refuses the sign-in, saying so", async () => {
    const backend = await start({ callbacks: { createOrUpdateUser: async () => "not-an-id" as never } });
    const error = await errorOf(signIn(backend, "anonymous"));
    expect(error.message).toContain("callbacks.createOrUpdateUser must return the ID of a document of the users table");
    expect(await listTable(backend, "authSessions")).toEqual([]);
  });

  it("the hint for a missing store export lists every function walkinAuth returns, isAuthenticated included", async () => {
    const { store: _left, ...exported } = authApp().auth;
    const error = await errorOf(startLiveBackend(authSchema, { auth: exported }));
    const listed = /export const \{ ([^}]*) \}/.exec(error.message)?.[1]?.split(", ");
    expect(listed?.sort()).toEqual(Object.keys(authApp().auth).sort());
  });

  it("revokeSession of a session that is not the caller's is refused, and revokeOtherSessions keeps the caller's", async () => {
    const backend = await start();
    const account = { flow: "signUp", email: "ada@example.com", password: "analytical engine" };
    const laptop = await signedIn(backend, "password", account);
    const phone = await signedIn(backend, "password", { ...account, flow: "signIn" });
    const stranger = await signedIn(backend, "anonymous");
    const phoneId = phone.token.split(".")[1]!;
    expect((await errorOf(backend.engine.runMutation("auth:revokeSession", { authSessionId: phoneId }, from("10.0.0.1", stranger.token)))).code).toBe("NOT_FOUND");
    expect((await backend.engine.runMutation("auth:revokeOtherSessions", {}, from("10.0.0.1", laptop.token))).value).toBe(1);
    expect(await backend.engine.runQuery("auth:currentSession", {}, from("10.0.0.1", phone.token))).toBeNull();
    expect(await backend.engine.runQuery("auth:currentSession", {}, from("10.0.0.1", laptop.token))).not.toBeNull();
  });
});

/** The ```ts / ```tsx blocks of a doc (runnable examples and fragments alike), with their line. */
function codeBlocks(doc: string): { line: number; code: string }[] {
  const markdown = readFileSync(fileURLToPath(new URL(`../../${doc}`, import.meta.url)), "utf8");
  return [...markdown.matchAll(/^```tsx?\b[^\n]*\n([\s\S]*?)^```/gm)].map((m) => ({ line: markdown.slice(0, m.index).split("\n").length, code: m[1]! }));
}

describe("the docs' code uses what the package has", () => {
  const docs = ["docs/sessions.md", "docs/auth.md", "docs/client.md", "README.md"];
  const packageExports = Object.keys((JSON.parse(readFileSync(fileURLToPath(new URL("../../package.json", import.meta.url)), "utf8")) as { exports: object }).exports);

  it("every name imported from walkin/* is exported by that entry point of the package", async () => {
    const missing: string[] = [];
    let checked = 0;
    for (const doc of docs) {
      for (const { line, code } of codeBlocks(doc)) {
        for (const [, names, entry] of code.matchAll(/import\s*\{([^}]*)\}\s*from\s*"walkin\/([^"]+)"/g)) {
          if (!packageExports.includes(`./${entry}`)) {
            missing.push(`${doc}:${line}: walkin/${entry} is not an entry point of the package`);
            continue;
          }
          const module = (await import(/* @vite-ignore */ new URL(`../${entry}/index.ts`, import.meta.url).href)) as Record<string, unknown>;
          for (const name of names!.split(",").map((n) => n.trim().split(/\s+as\s+/)[0]!)) {
            if (name === "" || name.startsWith("type ")) continue;
            checked++;
            if (!(name in module)) missing.push(`${doc}:${line}: walkin/${entry} has no export ${name}`);
          }
        }
      }
    }
    expect(missing).toEqual([]);
    expect(checked).toBeGreaterThan(50);
  });

  it("relative imports name their .js file, as walkin init's tsconfig (NodeNext) requires", () => {
    const extensionless: string[] = [];
    for (const doc of docs) {
      for (const { line, code } of codeBlocks(doc)) {
        for (const [, path] of code.matchAll(/from\s*"(\.{1,2}\/[^"]+)"/g)) {
          if (!/\.(js|jsx|json)$/.test(path!)) extensionless.push(`${doc}:${line}: "${path}"`);
        }
      }
    }
    expect(extensionless).toEqual([]);
  });
});

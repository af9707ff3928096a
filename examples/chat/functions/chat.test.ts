import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { walkinTest } from "walkin/testing";
import { api } from "./_generated/api.js";
import type { Id } from "./_generated/server.js";
import schema from "./schema.js";
import * as auth from "./auth.js";
import * as messages from "./messages.js";
import * as settings from "./settings.js";
import * as users from "./users.js";

const modules = { auth, messages, settings, users };
const chat = () => walkinTest(schema, modules);
type Chat = ReturnType<typeof chat>;

async function visitor(t: Chat, params?: Record<string, string>) {
  const result = await t.action(api.auth.signIn, { provider: "anonymous", ...(params ? { params } : {}) });
  if (result.kind !== "signedIn") throw new Error(`expected a new session, got ${result.kind}`);
  return { ...result, as: t.withToken(result.token) };
}

const signUp = { flow: "signUp", email: "ada@example.com", password: "analytical engine" };
const signIn = { ...signUp, flow: "signIn" };

describe("the chat backend", () => {
  it("names each visitor at once, and a rename shows on old messages", async () => {
    const t = chat();
    const [ada, grace] = [await visitor(t), await visitor(t)];
    const adaName = (await ada.as.query(api.users.me))!.name;
    expect(adaName).toMatch(/^[A-Z][a-z]+ [A-Z][a-z]+$/);
    expect((await grace.as.query(api.users.me))!.isAnonymous).toBe(true);

    await ada.as.mutation(api.messages.send, { body: "hello" });
    await grace.as.mutation(api.messages.send, { body: "hi Ada" });
    await ada.as.mutation(api.users.setName, { name: "  Ada  " });
    const graceName = (await grace.as.query(api.users.me))!.name;
    const list = await t.query(api.messages.list, {});
    expect(list.map((m) => [m.author, m.body])).toEqual([["Ada", "hello"], [graceName, "hi Ada"]]);
    await t.close();
  });

  it("keeps the user and their messages on sign-up, merges on sign-in, and starts afresh after sign-out", async () => {
    const t = chat();
    const ada = await visitor(t);
    await ada.as.mutation(api.messages.send, { body: "before signing up" });
    const account = await ada.as.action(api.auth.signIn, { provider: "password", params: signUp });
    if (account.kind !== "signedIn") throw new Error("sign-up failed");
    expect(account.userId).toBe(ada.userId);
    const me = await t.withToken(account.token).query(api.users.me);
    expect(me).toMatchObject({ _id: ada.userId, isAnonymous: false, email: "ada@example.com" });

    // The same person on another device: anonymous first, then signs in to the account.
    const phone = await visitor(t);
    await phone.as.mutation(api.messages.send, { body: "from the phone" });
    const merged = await phone.as.action(api.auth.signIn, { provider: "password", params: signIn });
    if (merged.kind !== "signedIn") throw new Error("sign-in failed");
    expect(merged.userId).toBe(ada.userId);
    const list = await t.query(api.messages.list, {});
    expect(list.map((m) => [m.authorId, m.body])).toEqual([[ada.userId, "before signing up"], [ada.userId, "from the phone"]]);
    expect(await t.run((ctx) => ctx.db.get(phone.userId as Id<"users">))).toBeNull(); // the anonymous user is gone

    // Two sessions now; revoking the phone's ends it at once.
    const sessions = await t.withToken(account.token).query(api.auth.listSessions, {});
    expect(sessions.map((s) => s.isCurrent).sort()).toEqual([false, true]);
    await t.withToken(account.token).mutation(api.auth.revokeSession, { authSessionId: sessions.find((s) => !s.isCurrent)!._id });
    expect(await t.withToken(merged.token).query(api.users.me)).toBeNull();

    await t.withToken(account.token).mutation(api.auth.signOut, {});
    expect(await t.withToken(account.token).query(api.users.me)).toBeNull();
    const fresh = await visitor(t);
    expect(fresh.userId).not.toBe(ada.userId);
    await t.close();
  });

  it("refuses empty and over-long input, bad emails and short passwords with a clear message, writing nothing", async () => {
    const t = chat();
    const me = await visitor(t);
    const name = (await me.as.query(api.users.me))!.name;
    await expect(me.as.mutation(api.messages.send, { body: "   " })).rejects.toThrow("Write something first.");
    await expect(me.as.mutation(api.messages.send, { body: "x".repeat(1001) })).rejects.toThrow("at most 1000");
    await expect(me.as.mutation(api.users.setName, { name: "" })).rejects.toThrow("Names are 1 to 40");
    await expect(me.as.mutation(api.users.setName, { name: "x".repeat(41) })).rejects.toThrow("Names are 1 to 40");
    await expect(t.mutation(api.messages.send, { body: "hi" })).rejects.toThrow("not signed in");
    await expect(me.as.action(api.auth.signIn, { provider: "password", params: { ...signUp, email: "ada" } })).rejects.toThrow("valid email");
    await expect(me.as.action(api.auth.signIn, { provider: "password", params: { ...signUp, password: "short" } })).rejects.toThrow("at least 8");
    expect(await t.query(api.messages.list, {})).toEqual([]);
    expect((await me.as.query(api.users.me))).toMatchObject({ name, isAnonymous: true });
    await t.close();
  });

  it("never sends session IDs, digests or tokens to clients", async () => {
    const t = chat();
    const me = await visitor(t);
    await me.as.mutation(api.messages.send, { body: "hello" });
    const account = await me.as.action(api.auth.signIn, { provider: "password", params: signUp });
    if (account.kind !== "signedIn") throw new Error("sign-up failed");
    const as = t.withToken(account.token);
    const rows = await t.run(async (ctx) => ctx.db.query("authSessions").collect());
    const results = JSON.stringify([
      await t.query(api.messages.list, {}),
      await as.query(api.users.me),
      await as.query(api.auth.listSessions, {}),
      await as.query(api.auth.currentSession, {}),
      await t.query(api.settings.client, {}),
    ]);
    expect(results).not.toMatch(/sd1_/);
    expect(results).not.toMatch(/wk[12]\./);
    // A token is `wk2.<session _id>.<secret>`: the ID is shown (currentSession, listSessions), the secret never.
    for (const token of [me.token, account.token]) expect(results).not.toContain(token.split(".")[2]!);
    for (const row of rows) {
      if (row.keyHash !== undefined) expect(results).not.toContain(row.keyHash);
      expect(results).not.toContain(row.secretHash);
    }
    await t.close();
  });
});

describe("CHAT_CAPTCHA=turnstile", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  it("checks anonymous sign-ins with Turnstile's siteverify protocol and refuses failed ones, writing nothing", async () => {
    const checks: URLSearchParams[] = [];
    const siteverify = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk) => (body += chunk));
      request.on("end", () => {
        const form = new URLSearchParams(body);
        checks.push(form);
        const success = form.get("secret") === "test-secret" && form.get("response") === "pass";
        response.setHeader("content-type", "application/json");
        response.end(JSON.stringify(success ? { success } : { success, "error-codes": ["invalid-input-response"] }));
      });
    });
    await new Promise<void>((resolve) => siteverify.listen(0, "127.0.0.1", resolve));
    vi.stubEnv("CHAT_CAPTCHA", "turnstile");
    vi.stubEnv("TURNSTILE_SECRET", "test-secret");
    vi.stubEnv("TURNSTILE_SITE_KEY", "test-site-key");
    vi.stubEnv("TURNSTILE_VERIFY_URL", `http://127.0.0.1:${(siteverify.address() as AddressInfo).port}/siteverify`);
    vi.resetModules();
    const withCaptcha = { auth: await import("./auth.js"), messages, settings: await import("./settings.js"), users };
    const t = walkinTest((await import("./schema.js")).default, withCaptcha);
    try {
      expect(await t.query(api.settings.client, {})).toEqual({ captcha: { provider: "turnstile", siteKey: "test-site-key" } });
      await expect(t.action(api.auth.signIn, { provider: "anonymous" })).rejects.toMatchObject({ code: "UNAUTHENTICATED", data: { captcha: "missing" } });
      await expect(t.action(api.auth.signIn, { provider: "anonymous", params: { token: "fail" } })).rejects.toMatchObject({ data: { captcha: "failed" } });
      expect(await t.run((ctx) => ctx.db.query("users").collect())).toEqual([]);
      const ok = await visitor(t, { token: "pass" });
      expect((await ok.as.query(api.users.me))?.name).toBeTruthy();
      expect(checks.map((c) => c.get("response"))).toEqual(["fail", "pass"]);
    } finally {
      await t.close();
      siteverify.close();
    }
  });
});

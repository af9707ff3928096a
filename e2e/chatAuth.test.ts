/**
 * Accounts in the chat example (walkin/auth), in a real browser: sign-up keeps the user,
 * sign-in merges a guest into an account, sign-out starts a fresh guest, the sessions panel
 * revokes another tab at once, per-browser mode shares sign-ins, and the CAPTCHA setting.
 */
import { rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { buildChat, startChat, type ChatApp } from "./chatApp.js";
import { launchBrowser, screenshot } from "./browser.js";
import { authors, kindOf, nameOf, open as openTab, patiently, send, signIn, signUp, submitAccount, uniqueEmail, userIdOf, waitForName } from "./chatPage.js";

let app: ChatApp;
let browser: Browser;
let dist: string;

beforeAll(async () => {
  dist = await buildChat();
  app = await startChat();
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await app?.stop();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

const open = (context: BrowserContext) => openTab(context, app.url);
const alertIn = (page: Page, selector: string) => page.locator(`${selector} [role=alert]`).innerText();

describe("accounts in the chat example", { timeout: 120_000 }, () => {
  it("signs up with the same user and messages, after showing bad input inline", async () => {
    const context = await browser.newContext();
    const page = await open(context);
    const [id, name] = [await userIdOf(page), await nameOf(page)];
    expect(await kindOf(page)).toBe("guest");
    await send(page, "written as a guest");

    await submitAccount(page, "signUp", "ada", "long enough password");
    await expect.poll(() => alertIn(page, ".account-form"), patiently).toBe("Enter a valid email address (like ada@example.com).");
    await submitAccount(page, "signUp", "ada@example.com", "short");
    await expect.poll(() => alertIn(page, ".account-form"), patiently).toBe("Choose a password of at least 8 characters.");

    const email = uniqueEmail("ada");
    await signUp(page, email);
    expect(await userIdOf(page)).toBe(id);
    expect(await nameOf(page)).toBe(name);
    await expect.poll(() => page.locator(".messages li.mine .body").allInnerTexts(), patiently).toContain("written as a guest");
    // The sessions panel, for signed-up users, marks this tab.
    await expect.poll(() => page.locator(".sessions .session.current .badge").textContent(), patiently).toBe("this tab");
    await screenshot(page, "chat-signed-up");
    await context.close();
  });

  it("merges a guest into the account they sign in to, and revoking that tab's session signs it out at once", async () => {
    const context = await browser.newContext();
    const laptop = await open(context);
    const email = uniqueEmail("grace");
    await laptop.fill("#name", "Grace");
    await laptop.getByRole("button", { name: "Rename" }).click();
    await expect.poll(() => nameOf(laptop), patiently).toBe("Grace");
    await signUp(laptop, email);

    const phone = await open(context); // another tab: another guest
    const guestId = await userIdOf(phone);
    expect(guestId).not.toBe(await userIdOf(laptop));
    await send(phone, "sent as a guest on the phone");
    await signIn(phone, email);
    expect(await userIdOf(phone)).toBe(await userIdOf(laptop));
    // The guest's message now belongs to the account, in every tab, live.
    await laptop.waitForFunction(
      () => [...document.querySelectorAll(".messages li")].some((li) => li.classList.contains("mine") && li.querySelector(".body")?.textContent === "sent as a guest on the phone"),
      undefined,
      patiently,
    );
    expect((await authors(laptop)).at(-1)).toBe("Grace");

    // Two sessions; the laptop revokes the phone's.
    await expect.poll(() => laptop.locator(".sessions .session").count(), patiently).toBe(2);
    expect(await laptop.locator(".sessions .session").allInnerTexts()).toEqual(expect.arrayContaining([expect.stringContaining("Chrome on Linux")]));
    await screenshot(laptop, "chat-sessions");
    await laptop.locator(".sessions .session:not(.current)").getByRole("button", { name: "Revoke" }).click();
    // The phone becomes a fresh guest with a new generated name, without a reload.
    await expect.poll(() => kindOf(phone), patiently).toBe("guest");
    await expect.poll(async () => (await userIdOf(phone)) !== "" && (await userIdOf(phone)) !== (await userIdOf(laptop)), patiently).toBe(true);
    expect(await nameOf(phone)).not.toBe("Grace");
    await expect.poll(() => laptop.locator(".sessions .session").count(), patiently).toBe(1);
    expect(await kindOf(laptop)).toBe(email);
    await screenshot(phone, "chat-revoked");
    await context.close();
  });

  it("starts a fresh guest with a new name after sign-out", async () => {
    const context = await browser.newContext();
    const page = await open(context);
    await page.fill("#name", "Katherine");
    await page.getByRole("button", { name: "Rename" }).click();
    await expect.poll(() => nameOf(page), patiently).toBe("Katherine");
    const id = await userIdOf(page);
    await signUp(page, uniqueEmail("katherine"));
    await page.locator(".account").getByRole("button", { name: "Sign out" }).click();
    await expect.poll(() => kindOf(page), patiently).toBe("guest");
    await expect.poll(async () => (await userIdOf(page)) !== "" && (await userIdOf(page)) !== id, patiently).toBe(true);
    expect(await nameOf(page)).not.toBe("Katherine");
    expect(await page.locator(".sessions").count()).toBe(0);
    await screenshot(page, "chat-signed-out");
    await context.close();
  });

  it("in per-browser mode, a sign-in or sign-out in one tab is seen by all", async () => {
    const context = await browser.newContext();
    const a = await open(context);
    await a.selectOption("select[aria-label='Session scope']", "browser");
    await waitForName(a);
    const b = await open(context);
    await expect.poll(() => userIdOf(b), patiently).toBe(await userIdOf(a));

    const email = uniqueEmail("mary");
    await signUp(a, email);
    await expect.poll(() => kindOf(b), patiently).toBe(email);
    await expect.poll(() => b.locator(".sessions .session.current .badge").textContent(), patiently).toBe("this browser");

    const accountId = await userIdOf(a);
    await a.locator(".account").getByRole("button", { name: "Sign out" }).click();
    // Both tabs end up as one new guest (the first tab to notice signs in, the other adopts it).
    await expect.poll(() => kindOf(b), patiently).toBe("guest");
    await expect.poll(async () => (await userIdOf(a)) !== accountId && (await userIdOf(a)) !== "" && (await userIdOf(a)) === (await userIdOf(b)), patiently).toBe(true);
    await expect.poll(() => nameOf(b), patiently).toBe(await nameOf(a));
    await screenshot(b, "chat-per-browser-signed-out");
    await context.close();
  });
  it("in per-browser mode, two tabs opened at the same instant become one guest (walkin/auth has them take turns)", async () => {
    const context = await browser.newContext();
    await context.addInitScript(() => {
      localStorage.setItem("walkin-chat-session-mode", "browser");
      // Every user this tab shows, so that two guests made and then merged onto one token would show.
      const seen: string[] = ((window as unknown as { seenUserIds: string[] }).seenUserIds = []);
      setInterval(() => {
        const id = document.querySelector("main.chat")?.getAttribute("data-user-id");
        if (id && seen.at(-1) !== id) seen.push(id);
      }, 5);
    });
    const [a, b] = await Promise.all([context.newPage(), context.newPage()]);
    await Promise.all([a.goto(app.url), b.goto(app.url)]);
    await Promise.all([waitForName(a), waitForName(b)]);
    await expect.poll(async () => (await userIdOf(a)) !== "" && (await userIdOf(a)) === (await userIdOf(b)), patiently).toBe(true);
    const seen = async (page: Page) => page.evaluate(() => (window as unknown as { seenUserIds: string[] }).seenUserIds);
    expect(new Set([...(await seen(a)), ...(await seen(b))]).size).toBe(1);
    expect(await a.evaluate(() => localStorage.getItem("walkin-chat-token"))).toBe(await b.evaluate(() => localStorage.getItem("walkin-chat-token")));
    await context.close();
  });
});

describe("the chat with CHAT_CAPTCHA=turnstile", { timeout: 120_000 }, () => {
  let captchaApp: ChatApp;
  let siteverify: Server;
  const checks: URLSearchParams[] = [];

  beforeAll(async () => {
    // A local stand-in for Turnstile's siteverify: POST form secret/response/remoteip → JSON.
    siteverify = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk) => (body += chunk));
      request.on("end", () => {
        const form = new URLSearchParams(body);
        checks.push(form);
        const success = request.method === "POST" && form.get("secret") === "e2e-secret" && form.get("response") === "e2e-pass";
        response.setHeader("content-type", "application/json");
        response.end(JSON.stringify(success ? { success: true } : { success: false, "error-codes": ["invalid-input-response"] }));
      });
    });
    await new Promise<void>((resolve) => siteverify.listen(0, "127.0.0.1", resolve));
    captchaApp = await startChat({
      env: {
        CHAT_CAPTCHA: "turnstile",
        TURNSTILE_SECRET: "e2e-secret",
        TURNSTILE_SITE_KEY: "e2e-site-key",
        TURNSTILE_VERIFY_URL: `http://127.0.0.1:${(siteverify.address() as AddressInfo).port}/siteverify`,
      },
    });
  }, 120_000);

  afterAll(async () => {
    await captchaApp?.stop();
    siteverify?.close();
  });

  async function visit(context: BrowserContext, token: string) {
    const page = await context.newPage();
    const external: string[] = [];
    page.on("request", (request) => {
      if (!/^(http:\/\/(localhost|127\.0\.0\.1)[:/]|data:|ws:)/.test(request.url())) external.push(request.url());
    });
    await page.addInitScript((t) => ((window as { walkinChatCaptchaToken?: string }).walkinChatCaptchaToken = t), token);
    await page.goto(captchaApp.url);
    return { page, external };
  }

  it("signs a visitor in only with a token the siteverify service passes", async () => {
    const context = await browser.newContext();
    const refused = await visit(context, "e2e-wrong");
    await expect.poll(() => refused.page.locator(".banner[role=alert]").innerText(), patiently).toContain("The CAPTCHA was not passed (invalid-input-response)");
    expect(await nameOf(refused.page)).toBe("");
    await screenshot(refused.page, "chat-captcha-refused");

    const passed = await visit(context, "e2e-pass");
    await waitForName(passed.page);
    await send(passed.page, "I am human");
    expect(checks.map((c) => c.get("response"))).toEqual(["e2e-wrong", "e2e-pass"]);
    expect(checks.every((c) => c.get("secret") === "e2e-secret" && c.get("remoteip"))).toBe(true);
    expect([...refused.external, ...passed.external]).toEqual([]); // no widget script from the internet
    await screenshot(passed.page, "chat-captcha-passed");
    await context.close();
  });
});

/**
 * The chat example in a real browser: what the README's first command serves.
 */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { buildChat, startChat, type ChatApp } from "./chatApp.js";
import { launchBrowser, screenshot } from "./browser.js";
import { authors, nameOf, open as openTab, patiently, send } from "./chatPage.js";
import type { BrowserContext } from "playwright-core";

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

describe("the chat example", { timeout: 90_000 }, () => {
  it("makes two tabs two users, keeps a name across a reload, and shows a rename on old messages live", async () => {
    const context = await browser.newContext();
    const [a, b] = [await open(context), await open(context)];
    expect(await nameOf(a)).not.toBe(await nameOf(b));

    await send(a, "hello from A");
    await send(b, "hello from B");
    await a.fill("#name", "Ada");
    await a.getByRole("button", { name: "Rename" }).click();
    // B sees A's old message under the new name without reloading.
    await b.waitForFunction(() => [...document.querySelectorAll(".messages .author")].some((e) => e.textContent === "Ada"), undefined, patiently);

    await a.reload();
    await a.waitForFunction(() => document.querySelector<HTMLInputElement>("#name")?.value === "Ada", undefined, patiently);
    await expect.poll(() => a.locator(".who-name").innerText(), patiently).toBe("Ada");
    await screenshot(b, "chat-two-tabs");
    await context.close();
  });

  it("shows the server's validation errors inline and never renders user text as HTML", async () => {
    const context = await browser.newContext();
    const page = await open(context);
    await page.getByLabel("Message").fill("   ");
    await page.getByRole("button", { name: "Send" }).click();
    await expect.poll(() => page.locator(".send-error[role=alert]").innerText(), patiently).toBe("Write something first.");
    await page.getByLabel("Message").fill("x".repeat(1001));
    await page.getByRole("button", { name: "Send" }).click();
    await expect.poll(() => page.locator(".send-error[role=alert]").innerText(), patiently).toBe("Messages are at most 1000 characters.");

    const html = `<img src="x" onerror="window.pwned = true"><b>bold?</b>`;
    await send(page, html);
    expect(await page.locator(".messages img, .messages b").count()).toBe(0);
    expect(await page.evaluate(() => (window as { pwned?: boolean }).pwned)).toBeUndefined();

    await page.fill("#name", "y".repeat(41));
    await page.getByRole("button", { name: "Rename" }).click();
    await expect.poll(() => page.locator(".name-error[role=alert]").innerText(), patiently).toBe("Names are 1 to 40 characters.");
    await page.fill("#name", "   ");
    await page.getByRole("button", { name: "Rename" }).click();
    await expect.poll(() => page.locator(".name-error[role=alert]").innerText(), patiently).toBe("Names are 1 to 40 characters.");
    await screenshot(page, "chat-validation");
    // The next success clears the errors of what was tried before.
    await page.getByLabel("Message").fill("   ");
    await page.getByRole("button", { name: "Send" }).click();
    await expect.poll(() => page.locator(".send-error[role=alert]").count(), patiently).toBe(1);
    await send(page, "this one works");
    await expect.poll(() => page.locator("[role=alert]").count(), patiently).toBe(0);
    await context.close();
  });

  it("gives a duplicated tab its own user", async () => {
    const context = await browser.newContext();
    const original = await open(context);
    const copied = await original.evaluate(() => ({ ...sessionStorage }));
    expect(Object.keys(copied)).toContain("walkin-chat-token"); // the copy includes the auth token
    // A duplicated tab starts with a copy of the original's sessionStorage.
    const duplicate = await context.newPage();
    await duplicate.addInitScript((entries) => {
      for (const [key, value] of Object.entries(entries)) sessionStorage.setItem(key, value as string);
    }, copied);
    await duplicate.goto(app.url);
    await send(original, "from the original");
    await expect.poll(async () => (await nameOf(duplicate)) !== "" && (await nameOf(duplicate)) !== (await nameOf(original)), patiently).toBe(true);
    await send(duplicate, "from the duplicate");
    const names = await authors(original);
    expect(new Set(names.slice(-2)).size).toBe(2);
    // The original kept its user and its token.
    expect(await original.evaluate(() => sessionStorage.getItem("walkin-chat-token"))).toBe(copied["walkin-chat-token"]);
    expect(await duplicate.evaluate(() => sessionStorage.getItem("walkin-chat-token"))).not.toBe(copied["walkin-chat-token"]);
    await screenshot(duplicate, "chat-duplicated-tab");
    await context.close();
  });

  it("shares one user across tabs in per-browser mode, keeping the name the tab had", async () => {
    const context = await browser.newContext();
    const a = await open(context);
    const before = await nameOf(a);
    await a.selectOption("select[aria-label='Session scope']", "browser");
    await expect.poll(() => nameOf(a), patiently).toBe(before);
    const b = await open(context);
    await expect.poll(() => nameOf(b), patiently).toBe(before);
    expect(await b.inputValue("select[aria-label='Session scope']")).toBe("browser");
    await screenshot(b, "chat-per-browser");
    await context.close();
  });

  it("shows a message sent while offline as pending, and delivers it once when the server is back", async () => {
    const context = await browser.newContext();
    const page = await open(context);
    await app.down();
    await page.waitForFunction(() => document.querySelector(".status")?.textContent !== "live", undefined, patiently);
    await page.getByLabel("Message").fill("sent while offline");
    await page.getByRole("button", { name: "Send" }).click();
    await expect.poll(() => page.locator(".messages li.pending").innerText(), patiently).toContain("waiting for connection");
    expect(await page.locator(".messages li.pending .pending-body").innerText()).toBe("sent while offline");
    expect(await page.getByLabel("Message").inputValue()).toBe("");
    await screenshot(page, "chat-offline-pending");

    await app.up();
    await page.waitForFunction(() => [...document.querySelectorAll(".messages .body")].some((e) => e.textContent === "sent while offline"), undefined, { timeout: 30_000 });
    await expect.poll(() => page.locator(".messages li.pending").count(), patiently).toBe(0);
    const count = (p: Page) => p.locator(".messages .body", { hasText: "sent while offline" }).count();
    expect(await count(page)).toBe(1);
    const other = await open(context);
    await expect.poll(() => count(other), patiently).toBe(1);
    await context.close();
  });

  it("reconnects after a server restart and loses or doubles nothing", async () => {
    const context = await browser.newContext();
    const page = await open(context);
    const name = await nameOf(page);
    await send(page, "before the restart");
    await app.restart();
    await page.waitForFunction(() => document.querySelector(".status")?.textContent === "live", undefined, { timeout: 30_000 });
    await send(page, "after the restart");
    const bodies = await page.locator(".messages .body").allInnerTexts();
    expect(bodies.filter((b) => b === "before the restart")).toHaveLength(1);
    expect(bodies.filter((b) => b === "after the restart")).toHaveLength(1);
    // Still the same user: the auth session survived the restart.
    expect(await nameOf(page)).toBe(name);
    expect((await authors(page)).slice(-2)).toEqual([name, name]);
    await screenshot(page, "chat-after-restart");
    await context.close();
  });
});

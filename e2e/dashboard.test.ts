/**
 * The dashboard in a real browser, against the chat example run as `walkin start` with
 * WALKIN_ADMIN_KEY: browse and filter messages, edit a user (and see the chat follow live,
 * and a bad edit refused inline), run a session query as a chosen session, watch a chat
 * mutation reach the logs, revoke a session (the chat tab becomes a new guest at once),
 * cancel a scheduled job, and a wrong key refused. Screenshots of each screen are saved.
 */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { buildChat, startChat, type ChatApp } from "./chatApp.js";
import { launchBrowser, screenshot } from "./browser.js";
import { nameOf, open as openChatTab, patiently, send, userIdOf } from "./chatPage.js";

const KEY = "e2e-dashboard-admin-key-0123456789abcdef";
let app: ChatApp;
let browser: Browser;
let dist: string;
let context: BrowserContext;
let chat: Page;
let dashboard: Page;
let userId: string;

beforeAll(async () => {
  dist = await buildChat();
  app = await startChat({ env: { WALKIN_ADMIN_KEY: KEY } });
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  chat = await openChatTab(context, app.url);
  userId = (await userIdOf(chat))!;
  dashboard = await context.newPage();
  await dashboard.goto(`${app.url}/_dashboard#key=${KEY}`);
  await dashboard.locator(".status", { hasText: "live" }).waitFor(patiently);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await app?.stop();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

const go = (hash: string) => dashboard.evaluate((h) => (location.hash = h), hash);

describe("the dashboard on the chat example", { timeout: 120_000 }, () => {
  it("takes the key out of the address bar", async () => {
    expect(new URL(dashboard.url()).hash).not.toContain(KEY);
  });

  it("browses messages newest first and filters them by an index", async () => {
    await send(chat, "first from the chat");
    await send(chat, "second from the chat");
    const other = await openChatTab(context, app.url);
    await send(other, "from another guest");
    await go("#/data/messages");
    const rows = dashboard.locator("table.docs tbody tr");
    await expect.poll(() => rows.count(), patiently).toBe(3);
    // Newest first.
    await expect.poll(() => rows.first().innerText(), patiently).toContain("from another guest");
    await dashboard.getByLabel("Index").selectOption("by_author");
    await dashboard.getByLabel("author =").fill(userId);
    await dashboard.getByRole("button", { name: "Apply" }).click();
    await expect.poll(() => rows.count(), patiently).toBe(2);
    expect(await rows.allInnerTexts()).toEqual([expect.stringContaining("second from the chat"), expect.stringContaining("first from the chat")]);
    // A message written meanwhile by that user appears without a reload.
    await send(chat, "third, live");
    await expect.poll(() => rows.count(), patiently).toBe(3);
    // The author is a reference: it opens the user.
    await rows.first().locator("a.ref").click();
    await dashboard.locator(".doc-panel .json").waitFor(patiently);
    expect(await dashboard.locator(".doc-panel h2").innerText()).toBe(userId);
    await screenshot(dashboard, "dashboard-data");
    await other.close();
  });

  it("edits a user's name (the chat shows it at once) and refuses an invalid edit inline", async () => {
    await go(`#/data/users?doc=${userId}`);
    await dashboard.getByRole("button", { name: "Edit" }).click();
    const editor = dashboard.locator("#doc-json");
    const fields = JSON.parse(await editor.inputValue());
    await editor.fill(JSON.stringify({ ...fields, name: 5 }, null, 2));
    await dashboard.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => dashboard.locator("form.doc-panel [role=alert]").innerText(), patiently).toMatch(/name/);
    await screenshot(dashboard, "dashboard-edit-refused");
    expect(await nameOf(chat)).not.toBe("5");

    await editor.fill(JSON.stringify({ ...fields, name: "Renamed by the dashboard" }, null, 2));
    await dashboard.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => nameOf(chat), patiently).toBe("Renamed by the dashboard");
    await expect.poll(() => dashboard.locator(".doc-panel .json").innerText(), patiently).toContain("Renamed by the dashboard");
  });

  it("runs a session query as a chosen session, live", async () => {
    await go(`#/users/${userId}`);
    const live = dashboard.locator("table.sessions-table tbody tr", { hasText: "live" }).first();
    await live.waitFor(patiently);
    const sessionId = (await live.getAttribute("data-session-id"))!;
    await live.getByRole("button", { name: "Run as" }).click();
    await dashboard.locator(".nav-list a", { hasText: "auth:currentSession" }).click();
    await expect.poll(() => dashboard.getByLabel("Auth session _id").inputValue(), patiently).toBe(sessionId);
    await dashboard.getByRole("button", { name: "Run live" }).click();
    const result = dashboard.locator(".result .json");
    await expect.poll(() => result.innerText(), patiently).toContain(sessionId);
    expect(await result.innerText()).toContain(userId);
    await screenshot(dashboard, "dashboard-functions");
  });

  it("shows a mutation sent from the chat page in the logs", async () => {
    await go("#/logs");
    await dashboard.locator("table.logs").waitFor(patiently);
    await send(chat, "watched in the logs");
    const row = dashboard.locator("tr.log", { hasText: "messages:send" }).first();
    await row.waitFor(patiently);
    expect(await row.innerText()).toMatch(/client[\s\S]*success/);
    // The filters narrow the stream to one function's successful runs.
    await dashboard.getByLabel("Outcome").selectOption("success");
    await dashboard.getByLabel("Function").selectOption("messages:send");
    await expect.poll(() => dashboard.locator("tr.log").count(), patiently).toBeGreaterThan(0);
    await screenshot(dashboard, "dashboard-logs");
  });

  it("revokes a session: that chat tab becomes a new guest at once", async () => {
    await go(`#/users/${userId}`);
    await dashboard.locator(".overview .figures").waitFor(patiently);
    await screenshot(dashboard, "dashboard-users");
    const live = dashboard.locator("table.sessions-table tbody tr", { hasText: "live" }).first();
    await live.getByRole("button", { name: "Revoke" }).click();
    await expect.poll(() => userIdOf(chat), patiently).not.toBe(userId);
    await expect.poll(() => dashboard.locator("table.sessions-table tbody tr", { hasText: "live" }).count(), patiently).toBe(0);
  });

  it("cancels a scheduled job", async () => {
    const newUser = (await userIdOf(chat))!;
    await go("#/functions/messages%3AannounceLater");
    await dashboard.getByLabel(/^author/).fill(newUser);
    await dashboard.getByLabel(/^body/).fill("posted in an hour");
    await dashboard.getByLabel(/^delayMs/).fill("3600000");
    await dashboard.getByRole("button", { name: "Run", exact: true }).click();
    await dashboard.locator(".result h2", { hasText: "Result" }).waitFor(patiently);
    await go("#/scheduler");
    const job = dashboard.locator("table.jobs tbody tr", { hasText: "messages:announce" });
    await job.waitFor(patiently);
    await dashboard.locator(".health .figure-value").first().waitFor(patiently);
    await screenshot(dashboard, "dashboard-scheduler");
    await job.getByRole("button", { name: "Cancel" }).click();
    await expect.poll(() => job.count(), patiently).toBe(0);
    await dashboard.getByRole("tab", { name: /Canceled/ }).click();
    await dashboard.locator("table.jobs tbody tr", { hasText: "messages:announce" }).waitFor(patiently);
  });

  it("fits a 390 px wide screen", async () => {
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    // The fragment changes as soon as the document is parsed, before React's first effects
    // have run: the page must have adopted the key by then, or it asks for one again.
    await phone.addInitScript(() => {
      document.addEventListener("DOMContentLoaded", () => (location.hash = "#/data/messages"));
    });
    await phone.goto(`${app.url}/_dashboard#key=${KEY}`); // sessionStorage is per tab
    await phone.locator("table.docs tbody tr").first().waitFor(patiently);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBe(0);
    await screenshot(phone, "dashboard-data-390px");
    await phone.close();
  });

  it("follows a dark system theme, and works from the keyboard", async () => {
    const dark = await browser.newContext({ colorScheme: "dark", viewport: { width: 1280, height: 860 } });
    const page = await dark.newPage();
    await page.goto(`${app.url}/_dashboard`);
    // Key form, then the sections, with the keyboard only.
    await page.locator("#admin-key:focus").waitFor(patiently); // the key field takes focus on arrival
    await page.keyboard.type(KEY);
    await page.keyboard.press("Enter");
    await page.locator(".status", { hasText: "live" }).waitFor(patiently);
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(background).toBe("rgb(21, 23, 28)");
    await page.locator("nav a", { hasText: "Logs" }).focus();
    await page.keyboard.press("Enter");
    await page.locator("table.logs").waitFor(patiently);
    await page.locator("nav a", { hasText: "Data" }).focus();
    await page.keyboard.press("Enter");
    await page.locator(".nav-list a", { hasText: "messages" }).focus();
    await page.keyboard.press("Enter");
    await page.locator("table.docs tbody tr").first().waitFor(patiently);
    await page.locator("table.docs tbody tr a.mono").first().focus();
    await page.keyboard.press("Enter");
    await page.locator(".doc-panel .json").waitFor(patiently);
    await screenshot(page, "dashboard-dark");
    await dark.close();
  });

  it("refuses a wrong key, and holds no secret before one is entered", async () => {
    const stranger = await browser.newContext();
    const page = await stranger.newPage();
    const html = await (await page.goto(`${app.url}/_dashboard`))!.text();
    expect(html).not.toContain(KEY);
    await page.getByLabel("Admin key").fill("not-the-key");
    await page.getByRole("button", { name: "Open the dashboard" }).click();
    await expect.poll(() => page.getByRole("alert").innerText(), patiently).toContain("refused");
    const answer = await page.evaluate(async () => (await fetch("/api/admin/tables", { headers: { Authorization: "Bearer not-the-key" } })).status);
    expect(answer).toBe(401);
    await screenshot(page, "dashboard-key-refused");
    await stranger.close();
  });
});

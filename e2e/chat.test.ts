/**
 * The chat example in a real browser: what the README's first command serves.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { buildChat, startChat, type ChatApp } from "./chatApp.js";
import { launchBrowser, screenshot } from "./browser.js";

let app: ChatApp;
let browser: Browser;

beforeAll(async () => {
  await buildChat();
  app = await startChat();
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await app?.stop();
});

async function open(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  await page.goto(app.url);
  await page.waitForFunction(() => (document.querySelector<HTMLInputElement>("#name")?.value ?? "") !== "");
  return page;
}

const nameOf = (page: Page) => page.inputValue("#name");
// Generous: these run beside the rest of the suite on a shared 2-core machine.
const patiently = { timeout: 20_000 };
const authors = (page: Page) => page.locator(".messages .author").allInnerTexts();

async function send(page: Page, body: string) {
  await page.getByLabel("Message").fill(body);
  await page.getByRole("button", { name: "Send" }).click();
  await page.waitForFunction((text) => [...document.querySelectorAll(".messages .body")].some((e) => e.textContent === text), body);
}

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
    await b.waitForFunction(() => [...document.querySelectorAll(".messages .author")].some((e) => e.textContent === "Ada"));

    await a.reload();
    await a.waitForFunction(() => document.querySelector<HTMLInputElement>("#name")?.value === "Ada");
    await screenshot(b, "chat-two-tabs");
    await context.close();
  });

  it("rejects an empty message with an inline error from the server", async () => {
    const context = await browser.newContext();
    const page = await open(context);
    await page.getByLabel("Message").fill("   ");
    await page.getByRole("button", { name: "Send" }).click();
    await expect.poll(() => page.getByRole("alert").innerText(), patiently).toBe("Write something first.");
    await screenshot(page, "chat-validation");
    await context.close();
  });

  it("gives a duplicated tab its own session", async () => {
    const context = await browser.newContext();
    const original = await open(context);
    const copied = await original.evaluate(() => ({ ...sessionStorage }));
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
    await screenshot(duplicate, "chat-duplicated-tab");
    await context.close();
  });

  it("shares one session across tabs in per-browser mode", async () => {
    const context = await browser.newContext();
    const a = await open(context);
    await a.selectOption("select[aria-label='Session scope']", "browser");
    await a.waitForFunction(() => (document.querySelector<HTMLInputElement>("#name")?.value ?? "") !== "");
    const b = await open(context);
    await expect.poll(() => nameOf(b), patiently).toBe(await nameOf(a));
    await screenshot(b, "chat-per-browser");
    await context.close();
  });

  it("reconnects after a server restart and loses or doubles nothing", async () => {
    const context = await browser.newContext();
    const page = await open(context);
    await send(page, "before the restart");
    await app.restart();
    await page.waitForFunction(() => document.querySelector(".status")?.textContent === "live", undefined, { timeout: 30_000 });
    await send(page, "after the restart");
    const bodies = await page.locator(".messages .body").allInnerTexts();
    expect(bodies.filter((b) => b === "before the restart")).toHaveLength(1);
    expect(bodies.filter((b) => b === "after the restart")).toHaveLength(1);
    await screenshot(page, "chat-after-restart");
    await context.close();
  });
});

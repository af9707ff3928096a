/**
 * The chat and the shop on a phone (390×844) and a laptop (1280×800): nothing overflows
 * sideways, no control is cut off, titles and buttons do not wrap letter by letter, names are
 * not truncated. Each state is saved as a screenshot (e2e/artifacts/, kept by CI) to look at.
 */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { launchBrowser, screenshot } from "./browser.js";
import { buildChat, startChat, type ChatApp } from "./chatApp.js";
import { open as openChat, patiently, send, signUp, uniqueEmail } from "./chatPage.js";
import { buildShop, startShop, type ShopApp } from "./shopApp.js";

const SCREENS = [
  { name: "phone", viewport: { width: 390, height: 844 } },
  { name: "laptop", viewport: { width: 1280, height: 800 } },
] as const;

let browser: Browser;
let chat: ChatApp;
let shop: ShopApp;
let chatDist: string;

beforeAll(async () => {
  chatDist = await buildChat();
  chat = await startChat();
  shop = await startShop(await buildShop());
  browser = await launchBrowser();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await chat?.stop();
  await shop?.stop();
  if (chatDist) rmSync(chatDist, { recursive: true, force: true });
});

/**
 * What is wrong with the page's layout, as sentences (none: an empty list). Checks every
 * visible control and heading, and the elements named in `unclipped` (text that must show whole).
 */
function layoutProblems(page: Page, unclipped: string[] = []): Promise<string[]> {
  return page.evaluate((unclippedSelectors) => {
    const problems: string[] = [];
    const width = window.innerWidth;
    const describe = (e: Element) => `${e.tagName.toLowerCase()}${e.className && typeof e.className === "string" ? `.${e.className.trim().split(/\s+/).join(".")}` : ""} "${(e.textContent ?? "").trim().slice(0, 30)}"`;
    if (document.documentElement.scrollWidth > width) problems.push(`the page scrolls sideways (${document.documentElement.scrollWidth} px wide in ${width})`);
    for (const e of document.querySelectorAll("button, input, select, textarea, h1, h2, a")) {
      const box = e.getBoundingClientRect();
      if (box.width === 0 || box.height === 0) continue;
      if (box.left < -0.5 || box.right > width + 0.5) problems.push(`${describe(e)} is cut off (${Math.round(box.left)}–${Math.round(box.right)} of ${width})`);
      if (e.matches("button, h1")) {
        const style = getComputedStyle(e);
        const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.25;
        const inner = box.height - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom) - parseFloat(style.borderTopWidth) - parseFloat(style.borderBottomWidth);
        if (inner > line * 1.6) problems.push(`${describe(e)} wraps onto ${Math.round(inner / line)} lines`);
      }
      // A quantity field holds two digits; any other field needs room to show what is typed.
      const minimum = e.matches("input[type=number]") ? 32 : 60;
      if (e.matches("input:not([type=radio]):not([type=checkbox]), select") && box.width < minimum) problems.push(`${describe(e)} is only ${Math.round(box.width)} px wide`);
    }
    for (const selector of unclippedSelectors) {
      for (const e of document.querySelectorAll(selector)) {
        if (e.scrollWidth > e.clientWidth + 1) problems.push(`${describe(e)} is truncated (${e.scrollWidth} px of text in ${e.clientWidth})`);
      }
    }
    return problems;
  }, unclipped);
}

describe("the examples on a phone and on a laptop", { timeout: 120_000 }, () => {
  for (const screen of SCREENS) {
    it(`chat, ${screen.name} (${screen.viewport.width}×${screen.viewport.height})`, async () => {
      const context = await browser.newContext({ viewport: screen.viewport });
      const page = await openChat(context, chat.url);
      // Longer than any generated name: the header must still show it whole.
      await page.fill("#name", "Bartholomew Featherstonehaugh");
      await page.getByRole("button", { name: "Rename" }).click();
      await page.locator(".who-name", { hasText: "Bartholomew Featherstonehaugh" }).waitFor(patiently);
      await send(page, "Hello from a screen test! This message is long enough to wrap on a phone, which it should do gracefully.");
      await send(page, "Short one.");
      await screenshot(page, `screen-chat-guest-${screen.name}`);
      expect(await layoutProblems(page, [".who-name"])).toEqual([]);

      await signUp(page, uniqueEmail("screens"));
      await page.locator(".sessions .session").first().waitFor(patiently);
      await screenshot(page, `screen-chat-signed-up-${screen.name}`);
      expect(await layoutProblems(page, [".who-name", ".device"])).toEqual([]);
      await context.close();
    });

    it(`shop, ${screen.name} (${screen.viewport.width}×${screen.viewport.height})`, async () => {
      const context = await browser.newContext({ viewport: screen.viewport });
      const page = await context.newPage();
      await page.goto(shop.url);
      await page.locator(".cart .empty, .cart-line").first().waitFor(patiently);
      await screenshot(page, `screen-shop-${screen.name}`);
      expect(await layoutProblems(page)).toEqual([]);

      for (const name of ["Walk-in mug", "Canvas tote"]) {
        const button = page.getByRole("button", { name: `Add ${name} to cart` });
        await button.click();
        await expect.poll(() => button.isEnabled(), patiently).toBe(true);
      }
      await expect.poll(() => page.locator(".cart-line").count(), patiently).toBe(2);
      await screenshot(page, `screen-shop-cart-${screen.name}`);
      await page.getByRole("button", { name: "Checkout" }).click();
      await page.locator('form[aria-label="Shipping address"]').waitFor(patiently);
      await screenshot(page, `screen-shop-checkout-${screen.name}`);
      expect(await layoutProblems(page)).toEqual([]);
      await context.close();
    });
  }
});

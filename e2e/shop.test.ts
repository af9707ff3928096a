/**
 * The shop example in a real browser: a guest's cart shared live by their tabs, one checkout
 * per tab, and the cart kept on sign-up and merged on sign-in.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { launchBrowser, screenshot } from "./browser.js";
import { buildShop, startShop, type ShopApp } from "./shopApp.js";

let app: ShopApp;
let browser: Browser;

beforeAll(async () => {
  app = await startShop(await buildShop());
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await app?.stop();
});

// Generous: these run beside the rest of the suite on a shared 2-core machine.
const patiently = { timeout: 20_000 };
const PASSWORD = "correct horse battery";

/** A new tab, once the visitor is signed in (as a guest at first) and the cart has loaded. */
async function open(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  const log: string[] = [];
  page.on("console", (message) => log.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => log.push(`page error: ${error.message}`));
  await page.goto(app.url);
  try {
    await page.locator(".cart .empty, .cart-line").first().waitFor(patiently);
  } catch (error) {
    const shown = await page.locator("body").innerText().catch(() => "");
    throw new Error(`the shop did not load its cart.\npage: ${shown}\nconsole:\n${log.join("\n")}\nserver:\n${app.output()}`, { cause: error });
  }
  return page;
}

/** The cart as this tab shows it: [sku, quantity] in display order. */
const cartOf = (page: Page) =>
  page.$$eval(".cart-line", (lines) => lines.map((l) => [l.getAttribute("data-sku"), Number(l.querySelector("input")!.value)]));

async function add(page: Page, name: string, times = 1) {
  const button = page.getByRole("button", { name: `Add ${name} to cart` });
  for (let i = 0; i < times; i++) {
    await button.click();
    await expect.poll(() => button.isEnabled(), patiently).toBe(true);
  }
}

const stepOf = (page: Page) => page.locator(".steps [aria-current=step]").innerText();

async function fillAddress(page: Page, address: { name: string; street: string; city: string; postcode: string }) {
  for (const [field, value] of Object.entries(address)) await page.locator(`form[aria-label="Shipping address"] input[name=${field}]`).fill(value);
  await page.getByRole("button", { name: "Continue to delivery" }).click();
}

async function passwordForm(page: Page, email: string, button: "Sign in" | "Create account") {
  await page.locator(".who").getByRole("button", { name: "Sign in" }).click();
  await page.locator(".auth-form input[name=email]").fill(email);
  await page.locator(".auth-form input[name=password]").fill(PASSWORD);
  await page.locator(".auth-form").getByRole("button", { name: button, exact: true }).click();
  await expect.poll(() => page.getByTestId("who").innerText(), patiently).toBe(email);
}

describe("the shop example", { timeout: 120_000 }, () => {
  it("keeps a guest's cart in sync across two tabs, live", async () => {
    const context = await browser.newContext();
    const a = await open(context);
    const b = await open(context);
    expect(await a.getByTestId("who").innerText()).toBe("Guest");

    await add(a, "Walk-in mug", 2);
    await add(b, "Canvas tote");
    for (const page of [a, b]) await expect.poll(() => cartOf(page), patiently).toEqual([["mug", 2], ["tote", 1]]);

    await b.getByRole("button", { name: "One more Canvas tote" }).click();
    await expect.poll(() => cartOf(a), patiently).toEqual([["mug", 2], ["tote", 2]]);
    await a.getByRole("button", { name: "Remove Walk-in mug" }).click();
    await expect.poll(() => cartOf(b), patiently).toEqual([["tote", 2]]);
    await expect.poll(() => b.getByTestId("subtotal").innerText(), patiently).toBe("$36.00");

    // A quantity over 99 is refused by the server and shown next to the line.
    await a.getByLabel("Quantity of Canvas tote").fill("100");
    await a.getByLabel("Quantity of Canvas tote").press("Enter");
    await expect.poll(() => a.locator(".cart-line").getByRole("alert").innerText(), patiently).toBe("Choose a quantity from 1 to 99.");
    expect(await cartOf(b)).toEqual([["tote", 2]]);
    await screenshot(a, "shop-quantity-error");
    await a.getByLabel("Quantity of Canvas tote").press("Escape");
    await expect.poll(() => a.locator(".cart-line").getByRole("alert").count(), patiently).toBe(0);

    await add(b, "Cosy socks");
    await expect.poll(() => cartOf(a), patiently).toEqual([["tote", 2], ["socks", 1]]);
    await screenshot(a, "shop-cart-two-tabs");
    await context.close();
  });

  it("runs two checkouts in two tabs without one overwriting the other", async () => {
    const context = await browser.newContext();
    const a = await open(context);
    const b = await open(context);
    await add(a, "Dot-grid notebook", 2);
    await expect.poll(() => cartOf(b), patiently).toEqual([["notebook", 2]]);

    await a.getByRole("button", { name: "Checkout" }).click();
    await b.getByRole("button", { name: "Checkout" }).click();
    await fillAddress(a, { name: "Ada Lovelace", street: "12 St James's Square", city: "London", postcode: "SW1Y 4JH" });
    await fillAddress(b, { name: "Grace Hopper", street: "1 Navy Yard", city: "Arlington", postcode: "22202" });
    await expect.poll(() => stepOf(a), patiently).toContain("Delivery");
    await expect.poll(() => stepOf(b), patiently).toContain("Delivery");

    // A moves on to the review with express delivery; B stays at delivery with its own address.
    await a.locator("input[name=delivery][value=express]").check();
    await a.getByRole("button", { name: "Continue to review" }).click();
    await expect.poll(() => stepOf(a), patiently).toContain("Review");
    expect(await a.getByTestId("address-summary").innerText()).toContain("Ada Lovelace");
    expect(await a.getByTestId("delivery-summary").innerText()).toContain("Express");
    expect(await a.getByTestId("order-total").innerText()).toBe("$36.95");
    expect(await stepOf(b)).toContain("Delivery");
    expect(await b.getByTestId("address-summary").innerText()).toContain("Grace Hopper");
    await screenshot(b, "shop-checkout-tab-b");

    // Both are kept server-side per tab: a reload finds each tab where it was.
    await b.reload();
    await expect.poll(() => stepOf(b), patiently).toContain("Delivery");
    expect(await b.getByTestId("address-summary").innerText()).toContain("Grace Hopper");
    await a.reload();
    await expect.poll(() => stepOf(a), patiently).toContain("Review");
    expect(await a.getByTestId("address-summary").innerText()).toContain("Ada Lovelace");
    // Going back in B shows B's address, not A's.
    await b.getByRole("button", { name: "Edit address" }).click();
    await expect.poll(() => b.locator("input[name=name]").inputValue(), patiently).toBe("Grace Hopper");

    await screenshot(a, "shop-checkout-tab-a");

    // A places the order; the shared cart empties in B too.
    await a.getByRole("button", { name: "Place order" }).click();
    await a.getByTestId("order-number").waitFor(patiently);
    await expect.poll(() => cartOf(b), patiently).toEqual([]);
    await screenshot(a, "shop-order-placed");
    await context.close();
  });

  it("checks addresses on the server with inline errors, and shows what was typed as text", async () => {
    const context = await browser.newContext();
    const page = await open(context);
    await add(page, "Sticker pack");
    await page.getByRole("button", { name: "Checkout" }).click();
    await fillAddress(page, { name: "   ", street: "x".repeat(121), city: "Oslo", postcode: "0150" });
    await expect.poll(() => page.locator("#name-error").innerText(), patiently).toBe("Full name is required.");
    expect(await page.locator("#street-error").innerText()).toBe("Street address can be at most 120 characters.");
    expect(await page.getByRole("alert").innerText()).toBe("Please check the highlighted fields.");
    expect(await page.locator("input[name=city]").getAttribute("aria-invalid")).toBe("false");
    await screenshot(page, "shop-address-errors");

    const markup = `<img src=x onerror="document.title='owned'"><b>Ada</b>`;
    await fillAddress(page, { name: markup, street: "1 Main St", city: "Oslo", postcode: "0150" });
    await expect.poll(() => stepOf(page), patiently).toContain("Delivery");
    const summary = page.getByTestId("address-summary");
    expect(await summary.innerText()).toContain(markup);
    expect(await summary.locator("img, b").count()).toBe(0);
    expect(await page.title()).toBe("Walk-in shop");
    await context.close();
  });

  it("keeps the cart when a guest signs up", async () => {
    const context = await browser.newContext();
    const page = await open(context);
    await add(page, "Cosy socks", 2);
    await add(page, "Baseball cap");
    const guest = await cartOf(page);
    await passwordForm(page, "ada@example.com", "Create account");
    expect(await page.getByRole("status").innerText()).toContain("Your cart came with you");
    await expect.poll(() => cartOf(page), patiently).toEqual(guest);
    // Another tab of the browser is signed in as the same account, with the same cart.
    const other = await open(context);
    await expect.poll(() => other.getByTestId("who").innerText(), patiently).toBe("ada@example.com");
    await expect.poll(() => cartOf(other), patiently).toEqual([["socks", 2], ["cap", 1]]);
    await screenshot(page, "shop-sign-up");
    await context.close();
  });

  it("merges a guest cart into the account's cart on sign-in: same items add up, others are appended", async () => {
    // Bob has an account with a cart, on his laptop.
    const laptop = await browser.newContext();
    const bobsLaptop = await open(laptop);
    await add(bobsLaptop, "Walk-in mug", 2);
    await add(bobsLaptop, "Canvas tote");
    await passwordForm(bobsLaptop, "bob@example.com", "Create account");

    // On a fresh browser he shops as a guest, then signs in.
    const phone = await browser.newContext();
    const bobsPhone = await open(phone);
    expect(await bobsPhone.getByTestId("who").innerText()).toBe("Guest");
    await add(bobsPhone, "Cosy socks");
    await add(bobsPhone, "Walk-in mug");
    await expect.poll(() => cartOf(bobsPhone), patiently).toEqual([["socks", 1], ["mug", 1]]);
    await passwordForm(bobsPhone, "bob@example.com", "Sign in");

    const merged = [["mug", 3], ["tote", 1], ["socks", 1]];
    await expect.poll(() => cartOf(bobsPhone), patiently).toEqual(merged);
    expect(await bobsPhone.getByRole("status").innerText()).toContain("merged");
    // The laptop, signed in to the same account, sees the merged cart live.
    await expect.poll(() => cartOf(bobsLaptop), patiently).toEqual(merged);
    await screenshot(bobsPhone, "shop-merged");
    await laptop.close();
    await phone.close();
  });
});

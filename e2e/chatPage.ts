/**
 * Helpers shared by the chat browser tests: open a tab, read who it is, act in the UI.
 */
import type { BrowserContext, Page } from "playwright-core";

// Generous: these run beside the rest of the suite on a shared 2-core machine.
export const patiently = { timeout: 20_000 };

/** A new tab on the chat, once it has its generated name. */
export async function open(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(url);
  await waitForName(page);
  return page;
}

export const waitForName = (page: Page) =>
  page.waitForFunction(() => (document.querySelector<HTMLInputElement>("#name")?.value ?? "") !== "", undefined, patiently);

export const nameOf = (page: Page) => page.inputValue("#name");
export const userIdOf = (page: Page) => page.getAttribute("main.chat", "data-user-id");
/** "guest", or the account's email. */
export const kindOf = (page: Page) => page.locator(".who-kind").innerText();
export const authors = (page: Page) => page.locator(".messages .author").allInnerTexts();

export async function send(page: Page, body: string) {
  await page.getByLabel("Message").fill(body);
  await page.getByRole("button", { name: "Send" }).click();
  await page.waitForFunction((text) => [...document.querySelectorAll(".messages .body")].some((e) => e.textContent === text), body, patiently);
}

/** Fills and submits the account form ("signUp" or "signIn"); does not wait for the outcome. */
export async function submitAccount(page: Page, flow: "signUp" | "signIn", email: string, password: string) {
  const form = page.locator(".account-form");
  if (!(await form.isVisible())) await page.locator(".account").getByRole("button", { name: flow === "signUp" ? "Sign up" : "Sign in" }).click();
  await form.getByLabel("Email").fill(email);
  await form.getByLabel("Password").fill(password);
  await form.locator("button[type=submit]").click();
}

export async function signUp(page: Page, email: string, password = "correct horse battery") {
  await submitAccount(page, "signUp", email, password);
  await page.locator(".who-kind", { hasText: email }).waitFor(patiently);
}

export async function signIn(page: Page, email: string, password = "correct horse battery") {
  await submitAccount(page, "signIn", email, password);
  await page.locator(".who-kind", { hasText: email }).waitFor(patiently);
}

export const uniqueEmail = (who: string) => `${who}-${Math.random().toString(36).slice(2, 8)}@example.com`;

import { describe, expect, it } from "vitest";
import { walkinTest } from "walkin/testing";
import { isWalkinError } from "walkin/server";
import { api } from "./_generated/api.js";
import schema from "./schema.js";
import * as auth from "./auth.js";
import * as cart from "./cart.js";
import * as checkout from "./checkout.js";
import * as products from "./products.js";
import * as users from "./users.js";
import { mergeCartItems } from "./lib/cart.js";
import type { SessionId } from "walkin/sessions";

const modules = { auth, cart, checkout, products, users };
// What a browser tab generates and keeps in sessionStorage (typed as the signIn action declares it).
const newTab = () => crypto.randomUUID() as string as SessionId;
type Shop = ReturnType<typeof shop>;
const shop = () => walkinTest(schema, modules);

/** Signs in and returns the token, the way the browser's AuthClient does. */
async function signIn(t: Shop, args: { provider: string; params?: Record<string, string>; token?: string; sessionId?: SessionId; newSessionId?: SessionId }) {
  const { token, ...rest } = args;
  const result = await (token ? t.withToken(token) : t).action(api.auth.signIn, rest);
  if (result.kind !== "signedIn") throw new Error(`expected a sign-in, got ${result.kind}`);
  return result;
}
const password = (flow: "signUp" | "signIn", email: string) => ({ provider: "password", params: { flow, email, password: "correct horse battery" } });
const cartOf = async (t: Shop, token: string) => (await t.withToken(token).query(api.cart.get))!.lines.map((l) => [l.sku, l.qty]);
const address = (name: string) => ({ name, street: "1 Analytical Way", city: "London", postcode: "N1 9GU" });

describe("the shop backend", () => {
  it("merges carts by the rule: same items add up (to 99), other items are appended", () => {
    const account = [{ sku: "mug", qty: 2 }, { sku: "tote", qty: 1 }];
    const anonymous = [{ sku: "socks", qty: 3 }, { sku: "mug", qty: 1 }, { sku: "cap", qty: 99 }];
    expect(mergeCartItems(account, anonymous)).toEqual([{ sku: "mug", qty: 3 }, { sku: "tote", qty: 1 }, { sku: "socks", qty: 3 }, { sku: "cap", qty: 99 }]);
    expect(mergeCartItems([{ sku: "mug", qty: 98 }], [{ sku: "mug", qty: 5 }])).toEqual([{ sku: "mug", qty: 99 }]);
    expect(account).toEqual([{ sku: "mug", qty: 2 }, { sku: "tote", qty: 1 }]); // inputs untouched
  });

  it("keeps the cart on sign-up (same user) and merges it into an existing account's cart on sign-in", async () => {
    const t = shop();
    // A guest fills a cart, then signs up: the very same user, the cart stays.
    const guest = await signIn(t, { provider: "anonymous" });
    await t.withToken(guest.token).mutation(api.cart.add, { sku: "mug", qty: 2 });
    await t.withToken(guest.token).mutation(api.cart.add, { sku: "tote", qty: 1 });
    const ada = await signIn(t, { ...password("signUp", "ada@example.com"), token: guest.token });
    expect(ada.userId).toBe(guest.userId);
    expect(ada.isAnonymous).toBe(false);
    expect(await cartOf(t, ada.token)).toEqual([["mug", 2], ["tote", 1]]);
    expect(await t.withToken(ada.token).query(api.users.me)).toEqual({ isAnonymous: false, email: "ada@example.com" });

    // Another device: a guest adds a mug and socks, then signs in to Ada's account.
    const phone = await signIn(t, { provider: "anonymous" });
    await t.withToken(phone.token).mutation(api.cart.add, { sku: "socks", qty: 3 });
    await t.withToken(phone.token).mutation(api.cart.add, { sku: "mug", qty: 1 });
    const merged = await signIn(t, { ...password("signIn", "ada@example.com"), token: phone.token });
    expect(merged.userId).toBe(ada.userId);
    expect(await cartOf(t, merged.token)).toEqual([["mug", 3], ["tote", 1], ["socks", 3]]);
    // The laptop sees the merged cart too; the guest and its cart are gone.
    expect(await cartOf(t, ada.token)).toEqual([["mug", 3], ["tote", 1], ["socks", 3]]);
    expect(await t.run(async (ctx) => (await ctx.db.query("carts").collect()).length)).toBe(1);
    expect(await t.run(async (ctx) => ctx.db.get(phone.userId as never))).toBeNull();
    await t.close();
  }, 30_000);

  it("runs one checkout per tab: two tabs of one user keep their own step and address", async () => {
    const t = shop();
    const [tabA, tabB] = [newTab(), newTab()];
    const { token } = await signIn(t, { provider: "anonymous", sessionId: tabA });
    const as = t.withToken(token);
    await as.mutation(api.cart.add, { sku: "notebook", qty: 2 });

    await as.mutation(api.checkout.start, { sessionId: tabA });
    await as.mutation(api.checkout.start, { sessionId: tabB });
    await as.mutation(api.checkout.saveAddress, { sessionId: tabA, address: address("Ada Lovelace") });
    await as.mutation(api.checkout.saveAddress, { sessionId: tabB, address: address("  Grace Hopper ") });
    await as.mutation(api.checkout.chooseDelivery, { sessionId: tabA, delivery: "express" });

    const a = await as.query(api.checkout.current, { sessionId: tabA });
    const b = await as.query(api.checkout.current, { sessionId: tabB });
    expect(a).toMatchObject({ step: "review", delivery: "express", address: { name: "Ada Lovelace" } });
    expect(b).toMatchObject({ step: "delivery", delivery: null, address: { name: "Grace Hopper" } });
    // A third tab has no checkout; another visitor cannot see these with their own tab.
    expect(await as.query(api.checkout.current, { sessionId: newTab() })).toBeNull();
    const stranger = await signIn(t, { provider: "anonymous" });
    expect(await t.withToken(stranger.token).query(api.checkout.current, { sessionId: tabA })).toBeNull();

    // Going back keeps what was entered.
    await as.mutation(api.checkout.back, { sessionId: tabA, step: "address" });
    expect(await as.query(api.checkout.current, { sessionId: tabA })).toMatchObject({ step: "address", delivery: "express", address: { name: "Ada Lovelace" } });
    await as.mutation(api.checkout.chooseDelivery, { sessionId: tabA, delivery: "pickup" });

    // Tab A places the order: the cart (shared) empties, so tab B cannot place it twice.
    await as.mutation(api.checkout.placeOrder, { sessionId: tabA });
    expect((await as.query(api.checkout.current, { sessionId: tabA }))).toMatchObject({ step: "placed", order: { totalCents: 2 * 1200, itemCount: 2 } });
    expect(await cartOf(t, token)).toEqual([]);
    await as.mutation(api.checkout.chooseDelivery, { sessionId: tabB, delivery: "standard" });
    await expect(as.mutation(api.checkout.placeOrder, { sessionId: tabB })).rejects.toThrow(/cart is empty/);
    await t.close();
  }, 30_000);

  it("moves a tab's checkout to its new session ID on sign-in, and other tabs' checkouts follow the merge", async () => {
    const t = shop();
    await signIn(t, password("signUp", "grace@example.com"));
    const [tabA, tabB, tabA2] = [newTab(), newTab(), newTab()];
    const guest = await signIn(t, { provider: "anonymous", sessionId: tabA });
    const as = t.withToken(guest.token);
    await as.mutation(api.cart.add, { sku: "cap", qty: 1 });
    for (const [tab, name] of [[tabA, "Tab A"], [tabB, "Tab B"]] as const) {
      await as.mutation(api.checkout.start, { sessionId: tab });
      await as.mutation(api.checkout.saveAddress, { sessionId: tab, address: address(name) });
    }
    // Tab A signs in, refreshing its session ID (as useAuthActions does inside a SessionProvider).
    const grace = await signIn(t, { ...password("signIn", "grace@example.com"), token: guest.token, sessionId: tabA, newSessionId: tabA2 });
    const signedIn = t.withToken(grace.token);
    expect(await signedIn.query(api.checkout.current, { sessionId: tabA2 })).toMatchObject({ step: "delivery", address: { name: "Tab A" } });
    expect(await signedIn.query(api.checkout.current, { sessionId: tabA })).toBeNull();
    expect(await signedIn.query(api.checkout.current, { sessionId: tabB })).toMatchObject({ step: "delivery", address: { name: "Tab B" } });

    // Sign-out ends the tab's checkout; whoever comes next in the other tab does not see its address.
    await signedIn.mutation(api.auth.signOut, { sessionId: tabA2 });
    expect(await t.run(async (ctx) => (await ctx.db.query("checkouts").collect()).length)).toBe(1);
    const next = await signIn(t, { provider: "anonymous" });
    expect(await t.withToken(next.token).query(api.checkout.current, { sessionId: tabB })).toBeNull();
    await t.close();
  }, 30_000);

  it("refuses bad quantities and addresses with errors for the form, writing nothing", async () => {
    const t = shop();
    const tab = newTab();
    const { token } = await signIn(t, { provider: "anonymous" });
    const as = t.withToken(token);
    for (const qty of [0, -1, 100, 1.5, Number.NaN]) {
      await expect(as.mutation(api.cart.add, { sku: "mug", qty })).rejects.toMatchObject({ message: "Choose a quantity from 1 to 99.", data: { field: "qty" } });
    }
    await expect(as.mutation(api.cart.add, { sku: "<script>", qty: 1 })).rejects.toThrow("not in the catalog");
    await as.mutation(api.cart.add, { sku: "mug", qty: 60 });
    await expect(as.mutation(api.cart.add, { sku: "mug", qty: 40 })).rejects.toThrow("at most 99 of one item");
    await expect(as.mutation(api.cart.setQty, { sku: "mug", qty: 0 })).rejects.toThrow("from 1 to 99");
    expect(await cartOf(t, token)).toEqual([["mug", 60]]);
    await expect(t.mutation(api.cart.add, { sku: "mug", qty: 1 })).rejects.toMatchObject({ code: "UNAUTHENTICATED" });

    await expect(as.mutation(api.checkout.saveAddress, { sessionId: tab, address: address("Ada") })).rejects.toThrow("no checkout in progress");
    await as.mutation(api.checkout.start, { sessionId: tab });
    const error = await as
      .mutation(api.checkout.saveAddress, { sessionId: tab, address: { name: "  ", street: "x".repeat(121), city: "Paris", postcode: "75<001" } })
      .catch((e: unknown) => e);
    expect(isWalkinError(error) && error.data).toEqual({
      fields: { name: "Full name is required.", street: "Street address can be at most 120 characters.", postcode: "Postcode can only hold letters, digits, spaces and dashes." },
    });
    expect(await as.query(api.checkout.current, { sessionId: tab })).toMatchObject({ step: "address", address: null });
    await expect(as.mutation(api.checkout.placeOrder, { sessionId: tab })).rejects.toThrow("Finish the address and delivery steps first.");
    await t.close();
  }, 30_000);

  it("never puts session digests or auth tokens in query results", async () => {
    const t = shop();
    const tab = newTab();
    const guest = await signIn(t, { provider: "anonymous", sessionId: tab });
    const as = t.withToken(guest.token);
    await as.mutation(api.cart.add, { sku: "sticker", qty: 3 });
    await as.mutation(api.checkout.start, { sessionId: tab });
    await as.mutation(api.checkout.saveAddress, { sessionId: tab, address: address("Ada") });
    await as.mutation(api.checkout.chooseDelivery, { sessionId: tab, delivery: "standard" });
    const results = JSON.stringify([
      await as.query(api.cart.get),
      await as.query(api.users.me),
      await as.query(api.products.list),
      await as.query(api.checkout.current, { sessionId: tab }),
      await as.query(api.auth.currentSession),
      await as.query(api.auth.listSessions),
    ]);
    await as.mutation(api.checkout.placeOrder, { sessionId: tab });
    const placed = JSON.stringify(await as.query(api.checkout.current, { sessionId: tab }));
    for (const text of [results, placed]) {
      expect(text).not.toMatch(/sd1_/);
      expect(text).not.toMatch(/wk[12]\./);
      expect(text).not.toContain(tab);
      expect(text).not.toContain(guest.token);
    }
    await t.close();
  }, 30_000);
});

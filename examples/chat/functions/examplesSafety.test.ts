// The example apps' functions: authorization, validation and concurrency, through walkinTest.
import { describe, expect, it } from "vitest";
import { walkinTest } from "walkin/testing";
import type { SessionId } from "walkin/sessions";
import { api as chatApi } from "./_generated/api.js";
import chatSchema from "./schema.js";
import * as chatAuth from "./auth.js";
import * as chatMessages from "./messages.js";
import * as chatSettings from "./settings.js";
import * as chatUsers from "./users.js";
import { api as shopApi } from "../../shop/functions/_generated/api.js";
import shopSchema from "../../shop/functions/schema.js";
import * as shopAuth from "../../shop/functions/auth.js";
import * as shopCart from "../../shop/functions/cart.js";
import * as shopCheckout from "../../shop/functions/checkout.js";
import * as shopProducts from "../../shop/functions/products.js";
import * as shopUsers from "../../shop/functions/users.js";
import { api as compatApi } from "../../convex-compat/functions/_generated/api";
import compatSchema from "../../convex-compat/functions/schema";
import * as compatAuth from "../../convex-compat/functions/auth";
import * as compatMessages from "../../convex-compat/functions/messages";
import * as compatUsers from "../../convex-compat/functions/users";

const newTab = () => crypto.randomUUID() as string as SessionId;

const chat = () => walkinTest(chatSchema, { auth: chatAuth, messages: chatMessages, settings: chatSettings, users: chatUsers });
const shop = () => walkinTest(shopSchema, { auth: shopAuth, cart: shopCart, checkout: shopCheckout, products: shopProducts, users: shopUsers });
const compat = () => walkinTest(compatSchema, { auth: compatAuth, messages: compatMessages, users: compatUsers });

async function anon(t: { action: (...a: any[]) => Promise<any> }, extra: Record<string, unknown> = {}) {
  const r = await t.action(chatApi.auth.signIn, { provider: "anonymous", ...extra });
  if (r.kind !== "signedIn") throw new Error(r.kind);
  return r as { token: string; userId: string };
}

describe("shop probes", () => {
  it("two concurrent first adds to an empty cart keep both items in one cart", async () => {
    const t = shop();
    const { token } = await anon(t);
    const as = t.withToken(token);
    await Promise.all(["mug", "tote", "socks", "cap"].map((sku) => as.mutation(shopApi.cart.add, { sku, qty: 1 })));
    const lines = (await as.query(shopApi.cart.get))!.lines.map((l) => l.sku).sort();
    expect(lines).toEqual(["cap", "mug", "socks", "tote"]);
    expect(await t.run(async (ctx) => (await ctx.db.query("carts").collect()).length)).toBe(1);
    await t.close();
  });

  it("concurrent adds of the same item add up", async () => {
    const t = shop();
    const { token } = await anon(t);
    const as = t.withToken(token);
    await as.mutation(shopApi.cart.add, { sku: "mug", qty: 1 });
    await Promise.all(Array.from({ length: 6 }, () => as.mutation(shopApi.cart.add, { sku: "mug", qty: 2 })));
    expect((await as.query(shopApi.cart.get))!.lines).toMatchObject([{ sku: "mug", qty: 13 }]);
    await t.close();
  });

  it("another user cannot see or drive a checkout, even with the tab's session ID", async () => {
    const t = shop();
    const tab = newTab();
    const ada = await anon(t, { sessionId: tab });
    const as = t.withToken(ada.token);
    await as.mutation(shopApi.cart.add, { sku: "mug", qty: 1 });
    await as.mutation(shopApi.checkout.start, { sessionId: tab });
    await as.mutation(shopApi.checkout.saveAddress, { sessionId: tab, address: { name: "Ada", street: "1 Way", city: "London", postcode: "N1" } });
    const eve = t.withToken((await anon(t)).token);
    await eve.mutation(shopApi.cart.add, { sku: "cap", qty: 1 });
    expect(await eve.query(shopApi.checkout.current, { sessionId: tab })).toBeNull();
    await expect(eve.mutation(shopApi.checkout.chooseDelivery, { sessionId: tab, delivery: "express" })).rejects.toThrow("no checkout in progress");
    await expect(eve.mutation(shopApi.checkout.placeOrder, { sessionId: tab })).rejects.toThrow("no checkout in progress");
    expect(await as.query(shopApi.checkout.current, { sessionId: tab })).toMatchObject({ step: "delivery", address: { name: "Ada" } });
    await t.close();
  });

  it("refuses a malformed session ID and an unknown delivery with a clear error", async () => {
    const t = shop();
    const as = t.withToken((await anon(t)).token);
    await expect(as.mutation(shopApi.checkout.start, { sessionId: "not-a-uuid" as SessionId })).rejects.toThrow();
    await expect(as.mutation(shopApi.checkout.chooseDelivery, { sessionId: newTab(), delivery: "drone" as never })).rejects.toThrow(/delivery/);
    await t.close();
  });
});

describe("shop probes: orders", () => {
  it("two tabs placing the order at once make one order", async () => {
    const t = shop();
    const [a, b] = [newTab(), newTab()];
    const as = t.withToken((await anon(t, { sessionId: a })).token);
    await as.mutation(shopApi.cart.add, { sku: "mug", qty: 2 });
    for (const tab of [a, b]) {
      await as.mutation(shopApi.checkout.start, { sessionId: tab });
      await as.mutation(shopApi.checkout.saveAddress, { sessionId: tab, address: { name: "Ada", street: "1 Way", city: "London", postcode: "N1" } });
      await as.mutation(shopApi.checkout.chooseDelivery, { sessionId: tab, delivery: "standard" });
    }
    const results = await Promise.allSettled([a, b].map((tab) => as.mutation(shopApi.checkout.placeOrder, { sessionId: tab })));
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect(await t.run(async (ctx) => (await ctx.db.query("orders").collect()).length)).toBe(1);
    await t.close();
  });
});

describe("chat probes", () => {
  it("concurrent sends from one user all land", async () => {
    const t = chat();
    const as = t.withToken((await anon(t)).token);
    await Promise.all(Array.from({ length: 5 }, (_, i) => as.mutation(chatApi.messages.send, { body: `m${i}` })));
    expect((await t.query(chatApi.messages.list, {})).map((m) => m.body).sort()).toEqual(["m0", "m1", "m2", "m3", "m4"]);
    await t.close();
  });

  it("no client can call the internal announce functions", async () => {
    const t = chat();
    const me = await anon(t);
    const eng = await t.engine();
    await expect(
      eng.runMutation("messages:announce", { author: me.userId, body: "spoof" }, { token: me.token, fromClient: true } as never),
    ).rejects.toThrow();
    expect(await t.query(chatApi.messages.list, {})).toEqual([]);
    await t.close();
  });
});

describe("convex-compat probes", () => {
  it("concurrent first sends from one new session create one guest profile", async () => {
    const t = compat();
    const sessionId = newTab();
    await Promise.all(Array.from({ length: 4 }, (_, i) => t.mutation(compatApi.messages.send, { sessionId, body: `m${i}` })));
    const users = await t.run(async (ctx) => ctx.db.query("users").collect());
    expect(users).toHaveLength(1);
    await t.close();
  });

  it("a session cannot delete another session's message", async () => {
    const t = compat();
    const [a, b] = [newTab(), newTab()];
    await t.mutation(compatApi.messages.send, { sessionId: a, body: "mine" });
    const [msg] = await t.query(compatApi.messages.list);
    await expect(t.mutation(compatApi.messages.remove, { sessionId: b, id: msg!._id })).rejects.toThrow("only delete your own");
    await t.mutation(compatApi.users.setName, { sessionId: b, name: "Bob" });
    await expect(t.mutation(compatApi.messages.remove, { sessionId: b, id: msg!._id })).rejects.toThrow("only delete your own");
    expect(await t.query(compatApi.messages.list)).toHaveLength(1);
    await t.close();
  });

  it("refuses an empty message with a clear error", async () => {
    const t = compat();
    await expect(t.mutation(compatApi.messages.send, { sessionId: newTab(), body: "   " })).rejects.toThrow();
    expect(await t.query(compatApi.messages.list)).toEqual([]);
    await t.close();
  });

  it("countMine counts only the caller's messages, not others with the same name", async () => {
    const t = compat();
    const [a, b] = [newTab(), newTab()];
    await t.mutation(compatApi.messages.send, { sessionId: a, body: "a1" });
    await t.mutation(compatApi.messages.send, { sessionId: b, body: "b1" });
    await t.mutation(compatApi.messages.send, { sessionId: b, body: "b2" });
    expect(await t.action(compatApi.messages.countMine, { sessionId: a })).toBe(1);
    await t.close();
  });
});

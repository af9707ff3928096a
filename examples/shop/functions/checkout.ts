/**
 * Checkout progress is per tab: each row is keyed by the tab's session ID (sessionStorage),
 * so two tabs can be at different steps with different addresses. The cart stays per user.
 *
 *   address ──saveAddress──► delivery ──chooseDelivery──► review ──placeOrder──► placed
 *      ▲──────── back ─────────┘  ▲─────────── back ─────────┘
 */
import { getAuthUserId } from "walkin/auth";
import { v, WalkinError } from "walkin/server";
import type { Doc, QueryCtx } from "./_generated/server.js";
import { cleanAddress } from "./lib/address.js";
import { deliveryOf, productOf } from "./lib/catalog.js";
import { cartOf } from "./lib/cart.js";
import { mutationWithSession, queryWithSession } from "./lib/sessions.js";
import { requireUser } from "./lib/users.js";
import { vAddress, vDelivery } from "./lib/validators.js";
import type { SessionId } from "walkin/sessions";

type Ctx = QueryCtx & { sessionId: SessionId };

/** This tab's checkout, if it belongs to the signed-in user (not to one signed out since). */
async function checkoutOf(ctx: Ctx): Promise<Doc<"checkouts"> | null> {
  const owner = await getAuthUserId(ctx);
  const row = await ctx.db.query("checkouts").withIndex("by_sessionId", (q) => q.eq("sessionId", ctx.sessionId)).first();
  return row && row.owner === owner ? row : null;
}

async function requireCheckout(ctx: Ctx): Promise<Doc<"checkouts">> {
  const row = await checkoutOf(ctx);
  if (!row || row.step === "placed") throw new WalkinError("This tab has no checkout in progress. Start one from your cart.");
  return row;
}

/** This tab's checkout: its step, address, delivery and, once placed, the order. */
export const current = queryWithSession({
  args: {},
  handler: async (ctx) => {
    const row = await checkoutOf(ctx);
    if (!row) return null;
    const order = row.orderId ? await ctx.db.get(row.orderId) : null;
    return {
      step: row.step,
      address: row.address ?? null,
      delivery: row.delivery ?? null,
      order: order ? { number: order._id.slice(-6).toUpperCase(), totalCents: order.totalCents, itemCount: order.lines.reduce((n, l) => n + l.qty, 0) } : null,
    };
  },
});

/** Starts a checkout in this tab (or keeps the one in progress). */
export const start = mutationWithSession({
  args: {},
  handler: async (ctx) => {
    const owner = await requireUser(ctx);
    const cart = await cartOf(ctx, owner);
    if (!cart || cart.items.length === 0) throw new WalkinError("Your cart is empty. Add something first.");
    const row = await ctx.db.query("checkouts").withIndex("by_sessionId", (q) => q.eq("sessionId", ctx.sessionId)).first();
    if (row && row.owner === owner && row.step !== "placed") return;
    if (row) await ctx.db.delete(row._id);
    await ctx.db.insert("checkouts", { sessionId: ctx.sessionId, owner, step: "address" });
  },
});

/** Step 1: the shipping address, checked field by field (errors in `data.fields`). */
export const saveAddress = mutationWithSession({
  args: { address: vAddress },
  handler: async (ctx, { address }) => {
    const row = await requireCheckout(ctx);
    await ctx.db.patch(row._id, { address: cleanAddress(address), step: "delivery" });
  },
});

/** Step 2: the delivery option. */
export const chooseDelivery = mutationWithSession({
  args: { delivery: vDelivery },
  handler: async (ctx, { delivery }) => {
    const row = await requireCheckout(ctx);
    if (!row.address) throw new WalkinError("Enter a shipping address first.");
    await ctx.db.patch(row._id, { delivery, step: "review" });
  },
});

/** Back to an earlier step; what was entered stays. */
export const back = mutationWithSession({
  args: { step: v.union(v.literal("address"), v.literal("delivery")) },
  handler: async (ctx, { step }) => {
    const row = await requireCheckout(ctx);
    if (step === "delivery" && !row.address) throw new WalkinError("Enter a shipping address first.");
    await ctx.db.patch(row._id, { step });
  },
});

/** Step 3: places the order at today's prices and empties the cart (every tab sees it). */
export const placeOrder = mutationWithSession({
  args: {},
  handler: async (ctx) => {
    const row = await requireCheckout(ctx);
    if (row.step !== "review" || !row.address || !row.delivery) throw new WalkinError("Finish the address and delivery steps first.");
    const cart = await cartOf(ctx, row.owner);
    if (!cart || cart.items.length === 0) throw new WalkinError("Your cart is empty: the order may have been placed from another tab.");
    const lines = cart.items.map(({ sku, qty }) => ({ sku, qty, name: productOf(sku).name, priceCents: productOf(sku).priceCents }));
    const deliveryCents = deliveryOf(row.delivery).priceCents;
    const totalCents = lines.reduce((sum, l) => sum + l.priceCents * l.qty, deliveryCents);
    const orderId = await ctx.db.insert("orders", { owner: row.owner, lines, address: row.address, delivery: row.delivery, deliveryCents, totalCents });
    await ctx.db.patch(cart._id, { items: [] });
    await ctx.db.patch(row._id, { step: "placed", orderId });
  },
});

/** Leaves this tab's checkout (cancel, or "continue shopping" after an order). */
export const close = mutationWithSession({
  args: {},
  handler: async (ctx) => {
    const row = await ctx.db.query("checkouts").withIndex("by_sessionId", (q) => q.eq("sessionId", ctx.sessionId)).first();
    if (row) await ctx.db.delete(row._id);
  },
});

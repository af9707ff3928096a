/**
 * The cart belongs to the user, not to a tab: every tab of a browser shares the auth token,
 * so they all see one cart, live.
 */
import { getAuthUserId } from "walkin/auth";
import { v, WalkinError } from "walkin/server";
import { mutation, query, type MutationCtx } from "./_generated/server.js";
import { productOf } from "./lib/catalog.js";
import { cartOf, checkQty, MAX_QTY, type CartItem } from "./lib/cart.js";
import { requireUser } from "./lib/users.js";

/** The caller's cart with names and prices, or null before the first sign-in. */
export const get = query({
  args: {},
  handler: async (ctx) => {
    const owner = await getAuthUserId(ctx);
    if (owner === null) return null;
    const items = (await cartOf(ctx, owner))?.items ?? [];
    const lines = items.map(({ sku, qty }) => {
      const { name, hue, priceCents } = productOf(sku);
      return { sku, qty, name, hue, priceCents, lineCents: priceCents * qty };
    });
    return {
      lines,
      count: lines.reduce((n, line) => n + line.qty, 0),
      subtotalCents: lines.reduce((sum, line) => sum + line.lineCents, 0),
    };
  },
});

async function updateCart(ctx: MutationCtx, change: (items: CartItem[]) => CartItem[]): Promise<void> {
  const owner = await requireUser(ctx);
  const cart = await cartOf(ctx, owner);
  const items = change(cart?.items ?? []);
  if (cart) await ctx.db.patch(cart._id, { items });
  else await ctx.db.insert("carts", { owner, items });
}

/** Adds `qty` of a product; the same product again adds to its line. */
export const add = mutation({
  args: { sku: v.string(), qty: v.number() },
  handler: async (ctx, { sku, qty }) => {
    productOf(sku);
    checkQty(qty);
    await updateCart(ctx, (items) => {
      const line = items.find((item) => item.sku === sku);
      if (!line) return [...items, { sku, qty }];
      if (line.qty + qty > MAX_QTY) throw new WalkinError(`You can order at most ${MAX_QTY} of one item.`, { data: { field: "qty", sku } });
      return items.map((item) => (item.sku === sku ? { sku, qty: item.qty + qty } : item));
    });
  },
});

export const setQty = mutation({
  args: { sku: v.string(), qty: v.number() },
  handler: async (ctx, { sku, qty }) => {
    productOf(sku);
    checkQty(qty);
    await updateCart(ctx, (items) => items.map((item) => (item.sku === sku ? { sku, qty } : item)));
  },
});

export const remove = mutation({
  args: { sku: v.string() },
  handler: async (ctx, { sku }) => updateCart(ctx, (items) => items.filter((item) => item.sku !== sku)),
});

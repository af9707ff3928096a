/**
 * Cart rules shared by the cart functions and the auth hooks: quantity limits, the merge rule
 * for signing in to an account that already has a cart, and moving or deleting a user's data.
 */
import { WalkinError } from "walkin/server";
import type { Id } from "walkin/values";
import type { Doc, MutationCtx, QueryCtx } from "../_generated/server.js";

export const MAX_QTY = 99;

export type CartItem = Doc<"carts">["items"][number];

/** A quantity a visitor asked for: a whole number from 1 to 99. */
export function checkQty(qty: number): number {
  if (!Number.isInteger(qty) || qty < 1 || qty > MAX_QTY) {
    throw new WalkinError(`Choose a quantity from 1 to ${MAX_QTY}.`, { data: { field: "qty" } });
  }
  return qty;
}

export function cartOf(ctx: QueryCtx, owner: Id<"users">) {
  return ctx.db.query("carts").withIndex("by_owner", (q) => q.eq("owner", owner)).first();
}

/**
 * The merge rule, when someone who filled a cart anonymously signs in to an account that
 * already has one: quantities of the same item are added (capped at 99); the anonymous cart's
 * other items are appended after the account's, in the order they were added.
 */
export function mergeCartItems(account: readonly CartItem[], anonymous: readonly CartItem[]): CartItem[] {
  const merged = account.map((item) => ({ ...item }));
  for (const item of anonymous) {
    const same = merged.find((m) => m.sku === item.sku);
    if (same) same.qty = Math.min(MAX_QTY, same.qty + item.qty);
    else merged.push({ ...item });
  }
  return merged;
}

/** `mergeAnonymousUser`: the anonymous user's cart and open checkouts go to the account. */
export async function moveShopData(ctx: MutationCtx, from: Id<"users">, to: Id<"users">): Promise<void> {
  const theirs = await cartOf(ctx, from);
  const mine = await cartOf(ctx, to);
  if (theirs && mine) {
    await ctx.db.patch(mine._id, { items: mergeCartItems(mine.items, theirs.items) });
    await ctx.db.delete(theirs._id);
  } else if (theirs) {
    await ctx.db.patch(theirs._id, { owner: to });
  }
  // Other tabs of the same browser keep their place in checkout after the sign-in.
  for (const checkout of await ctx.db.query("checkouts").withIndex("by_owner", (q) => q.eq("owner", from)).collect()) {
    await ctx.db.patch(checkout._id, { owner: to });
  }
  for (const order of await ctx.db.query("orders").withIndex("by_owner", (q) => q.eq("owner", from)).collect()) {
    await ctx.db.patch(order._id, { owner: to });
  }
}

/** `onDeleteUser` (abandoned anonymous users, or after a merge): their cart and checkouts go. */
export async function deleteShopData(ctx: MutationCtx, userId: Id<"users">): Promise<void> {
  const cart = await cartOf(ctx, userId);
  if (cart) await ctx.db.delete(cart._id);
  for (const checkout of await ctx.db.query("checkouts").withIndex("by_owner", (q) => q.eq("owner", userId)).collect()) {
    await ctx.db.delete(checkout._id);
  }
}

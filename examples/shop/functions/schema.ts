import { defineSchema, defineTable, v } from "walkin/server";
import { authTables } from "walkin/auth";
import { sessionTables, vSessionId } from "walkin/sessions";
import { vAddress, vDelivery } from "./lib/validators.js";

export default defineSchema({
  // users (with isAnonymous), auth sessions, password accounts, …
  ...authTables,
  // logins: the session builders read it; walkinAuth moves per-tab rows on sign-in.
  ...sessionTables,

  // One cart per user, anonymous or not: every tab of a browser shares the user, so the cart.
  carts: defineTable({
    owner: v.id("users"),
    items: v.array(v.object({ sku: v.string(), qty: v.number() })),
  }).index("by_owner", ["owner"]),

  // One checkout per tab: keyed by the tab's session ID (a digest), so two tabs run two
  // checkouts. `owner` hides a tab's checkout from whoever signs in after a sign-out.
  checkouts: defineTable({
    sessionId: vSessionId,
    owner: v.id("users"),
    step: v.union(v.literal("address"), v.literal("delivery"), v.literal("review"), v.literal("placed")),
    address: v.optional(vAddress),
    delivery: v.optional(vDelivery),
    orderId: v.optional(v.id("orders")),
  })
    .index("by_sessionId", ["sessionId"])
    .index("by_owner", ["owner"]),

  // Placed orders keep the prices they were placed at.
  orders: defineTable({
    owner: v.id("users"),
    lines: v.array(v.object({ sku: v.string(), name: v.string(), qty: v.number(), priceCents: v.number() })),
    address: vAddress,
    delivery: vDelivery,
    deliveryCents: v.number(),
    totalCents: v.number(),
  }).index("by_owner", ["owner"]),
});

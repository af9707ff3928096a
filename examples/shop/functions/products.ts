import { query } from "./_generated/server.js";
import { DELIVERY_OPTIONS, PRODUCTS } from "./lib/catalog.js";

/** The catalog and the delivery options, prices in cents. */
export const list = query({
  args: {},
  handler: async () => ({ products: PRODUCTS, delivery: DELIVERY_OPTIONS }),
});

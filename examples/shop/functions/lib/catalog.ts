/**
 * The shop's fixed catalog and delivery options. Prices are whole cents, so totals are exact.
 * A constant rather than a table: the example is about carts and checkouts, not inventory.
 */
import { WalkinError } from "walkin/server";
import type { Delivery } from "./validators.js";

export interface Product {
  sku: string;
  name: string;
  blurb: string;
  /** The hue of the product's tile in the UI (0–360). */
  hue: number;
  priceCents: number;
}

export const PRODUCTS: readonly Product[] = [
  { sku: "mug", name: "Walk-in mug", blurb: "Stoneware, 350 ml, dishwasher safe.", hue: 20, priceCents: 1400 },
  { sku: "tote", name: "Canvas tote", blurb: "Heavy cotton, fits a laptop.", hue: 200, priceCents: 1800 },
  { sku: "socks", name: "Cosy socks", blurb: "Merino blend, one size.", hue: 330, priceCents: 950 },
  { sku: "notebook", name: "Dot-grid notebook", blurb: "A5, 192 pages, lies flat.", hue: 45, priceCents: 1200 },
  { sku: "sticker", name: "Sticker pack", blurb: "Six vinyl stickers.", hue: 270, priceCents: 450 },
  { sku: "cap", name: "Baseball cap", blurb: "Washed cotton, adjustable.", hue: 150, priceCents: 2200 },
];

export interface DeliveryOption {
  id: Delivery;
  label: string;
  detail: string;
  priceCents: number;
}

export const DELIVERY_OPTIONS: readonly DeliveryOption[] = [
  { id: "standard", label: "Standard", detail: "3–5 working days", priceCents: 495 },
  { id: "express", label: "Express", detail: "Next working day", priceCents: 1295 },
  { id: "pickup", label: "Pick up in store", detail: "Ready in 2 hours", priceCents: 0 },
];

export function productOf(sku: string): Product {
  const product = PRODUCTS.find((p) => p.sku === sku);
  if (!product) throw new WalkinError("That product is not in the catalog.", { data: { field: "sku" } });
  return product;
}

export function deliveryOf(id: Delivery): DeliveryOption {
  return DELIVERY_OPTIONS.find((d) => d.id === id)!;
}

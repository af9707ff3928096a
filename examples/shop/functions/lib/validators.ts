import { v, type Infer } from "walkin/server";

export const vAddress = v.object({ name: v.string(), street: v.string(), city: v.string(), postcode: v.string() });
export type Address = Infer<typeof vAddress>;

export const vDelivery = v.union(v.literal("standard"), v.literal("express"), v.literal("pickup"));
export type Delivery = Infer<typeof vDelivery>;

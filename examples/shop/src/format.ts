import { isWalkinError } from "walkin/values";

const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });

/** Prices are whole cents on the server; only the display divides. */
export const formatCents = (cents: number) => money.format(cents / 100);

export function messageOf(error: unknown): string {
  return isWalkinError(error) ? error.message : "Something went wrong. Try again.";
}

/** `data.fields` of a validation error: field name → message. */
export function fieldErrorsOf(error: unknown): Record<string, string> {
  if (!isWalkinError(error) || typeof error.data !== "object" || error.data === null) return {};
  const fields = (error.data as { fields?: unknown }).fields;
  return typeof fields === "object" && fields !== null ? (fields as Record<string, string>) : {};
}

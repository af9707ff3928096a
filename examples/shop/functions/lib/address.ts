import { WalkinError } from "walkin/server";
import type { Address } from "./validators.js";

/** Per field: what to call it in errors, and its maximum length. */
export const ADDRESS_FIELDS = {
  name: { label: "Full name", max: 80 },
  street: { label: "Street address", max: 120 },
  city: { label: "City", max: 60 },
  postcode: { label: "Postcode", max: 12 },
} as const satisfies Record<keyof Address, { label: string; max: number }>;

/**
 * The address trimmed, or a `WalkinError` whose `data.fields` maps each bad field to its
 * message, so the form can show every error next to its input at once.
 */
export function cleanAddress(address: Address): Address {
  const fields: Partial<Record<keyof Address, string>> = {};
  const clean = { ...address };
  for (const key of Object.keys(ADDRESS_FIELDS) as (keyof Address)[]) {
    const { label, max } = ADDRESS_FIELDS[key];
    const value = address[key].trim();
    if (value.length === 0) fields[key] = `${label} is required.`;
    else if (value.length > max) fields[key] = `${label} can be at most ${max} characters.`;
    else if (/[\u0000-\u001f\u007f]/.test(value)) fields[key] = `${label} cannot contain control characters.`;
    else if (key === "postcode" && !/^[A-Za-z0-9][A-Za-z0-9 -]*$/.test(value)) fields[key] = "Postcode can only hold letters, digits, spaces and dashes.";
    clean[key] = value;
  }
  if (Object.keys(fields).length > 0) throw new WalkinError("Please check the highlighted fields.", { data: { fields } });
  return clean;
}

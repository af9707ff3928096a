/**
 * Validators as plain data for the page (they are frozen data objects already; this drops
 * format functions and turns int64 literals into strings, which JSON cannot hold).
 */
export function validatorData(validator: unknown): unknown {
  if (!validator) return null;
  return JSON.parse(JSON.stringify(validator, (_key, value) => (typeof value === "bigint" ? `${value}n` : value)));
}

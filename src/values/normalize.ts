/**
 * Applying string formats' `normalize` to a value that already passed validation: what a
 * handler receives for `v.formattedString({ ..., normalize })` fields (a session ID's one-way
 * digest, for instance) instead of what the caller sent. Validators without normalizing
 * formats (nearly all) are detected once and skipped at no cost.
 */
import type { GenericValidator } from "./validatorTypes.js";
import type { Value } from "./value.js";
import { validateResult } from "./validate.js";

const normalizes = new WeakMap<GenericValidator, boolean>();

/** Whether any string format inside `validator` normalizes. */
export function hasNormalizer(validator: GenericValidator): boolean {
  let known = normalizes.get(validator);
  if (known === undefined) {
    known = computeHasNormalizer(validator);
    normalizes.set(validator, known);
  }
  return known;
}

const normalizingFields = new WeakMap<GenericValidator, ReadonlyArray<readonly [string, GenericValidator]>>();

/**
 * The fields of an object validator that hold a normalizing format, listed once per validator:
 * a table's documents are normalized on every write, and an auth session's table has one such
 * field among thirteen, each of which cost a lookup in `normalizes` on every write before.
 */
function fieldsToNormalize(validator: GenericValidator & { kind: "object" }): ReadonlyArray<readonly [string, GenericValidator]> {
  let fields = normalizingFields.get(validator);
  if (fields === undefined) {
    fields = Object.entries(validator.fields)
      .map(([key, field]) => [key, field as GenericValidator] as const)
      .filter(([, field]) => hasNormalizer(field));
    normalizingFields.set(validator, fields);
  }
  return fields;
}

function computeHasNormalizer(validator: GenericValidator): boolean {
  switch (validator.kind) {
    case "string":
      return typeof validator.format?.normalize === "function";
    case "array":
      return hasNormalizer(validator.element);
    case "object":
      return Object.values(validator.fields).some((field) => hasNormalizer(field as GenericValidator));
    case "record":
      return hasNormalizer(validator.key) || hasNormalizer(validator.value);
    case "union":
      return validator.members.some(hasNormalizer);
    default:
      return false;
  }
}

/**
 * `value` with every normalizing format applied. `value` must already be valid for
 * `validator` (with the same `trusted` and `isIdOfTable`); the input is not modified.
 * `isIdOfTable` must be the one validation used: without it `v.id(...)` takes any string, so
 * a union would be normalized as a different member than the one the value matched.
 */
export function normalizeValue(
  validator: GenericValidator,
  value: Value,
  trusted = false,
  isIdOfTable?: (tableName: string, id: string) => boolean,
): Value {
  if (!hasNormalizer(validator) || value === undefined) return value;
  switch (validator.kind) {
    case "string":
      return validator.format?.normalize ? validator.format.normalize(value as string) : value;
    case "array":
      return (value as Value[]).map((item) => normalizeValue(validator.element, item, trusted, isIdOfTable));
    case "object": {
      const out: Record<string, Value> = { ...(value as Record<string, Value>) };
      for (const [key, field] of fieldsToNormalize(validator)) {
        if (out[key] !== undefined) out[key] = normalizeValue(field, out[key]!, trusted, isIdOfTable);
      }
      return out;
    }
    case "record": {
      const out: Record<string, Value> = {};
      for (const [key, item] of Object.entries(value as Record<string, Value>)) {
        // defineProperty, not `out[key] =`: a key "__proto__" (a valid record key) would set the
        // prototype instead of a field, losing the entry or hiding it behind inheritance.
        Object.defineProperty(out, normalizeValue(validator.key, key, trusted, isIdOfTable) as string, {
          value: normalizeValue(validator.value, item, trusted, isIdOfTable),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    case "union": {
      // The first member the value satisfies is the one it was validated as.
      const member = validator.members.find((m) => validateResult(m, value, { trusted, isIdOfTable }).ok);
      return member ? normalizeValue(member, value, trusted, isIdOfTable) : value;
    }
    default:
      return value;
  }
}

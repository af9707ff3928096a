/** Validators as the server sends them (plain data), and what the page builds from them. */
import { typedValue } from "./format.js";

export interface ValidatorData {
  kind: "string" | "float64" | "int64" | "boolean" | "null" | "bytes" | "any" | "id" | "literal" | "array" | "object" | "record" | "union";
  isOptional?: "optional" | "required";
  tableName?: string;
  value?: unknown;
  element?: ValidatorData;
  fields?: Record<string, ValidatorData>;
  members?: ValidatorData[];
  format?: { name?: string };
}

/** A short type name: `string`, `id<users>`, `"a" | "b"`, `array<number>`. */
export function describe(v: ValidatorData | undefined): string {
  if (!v) return "any";
  switch (v.kind) {
    case "float64":
      return "number";
    case "int64":
      return "bigint";
    case "id":
      return `id<${v.tableName}>`;
    case "literal":
      return JSON.stringify(v.value);
    case "array":
      return `array<${describe(v.element)}>`;
    case "union":
      return (v.members ?? []).map(describe).join(" | ");
    case "object":
      return "object";
    case "record":
      return "record";
    case "string":
      return v.format?.name ? `string (${v.format.name})` : "string";
    default:
      return v.kind;
  }
}

/** A starting value for a new document or argument: required fields filled with neutral values. */
export function templateFor(v: ValidatorData | null | undefined): unknown {
  if (!v) return {};
  switch (v.kind) {
    case "string":
    case "id":
      return "";
    case "float64":
      return 0;
    case "int64":
      return { $integer: "AAAAAAAAAAA=" };
    case "boolean":
      return false;
    case "null":
      return null;
    case "literal":
      return v.value;
    case "array":
      return [];
    case "union":
      return templateFor(v.members?.[0]);
    case "object": {
      const out: Record<string, unknown> = {};
      for (const [name, field] of Object.entries(v.fields ?? {})) if (field.isOptional !== "optional") out[name] = templateFor(field);
      return out;
    }
    default:
      return {};
  }
}

/** Fields a form can show as one input; the rest are typed as JSON. */
export type Simple = "text" | "number" | "checkbox" | "select" | "json";

export function inputKind(v: ValidatorData): Simple {
  if (v.kind === "string" || v.kind === "id") return "text";
  if (v.kind === "float64") return "number";
  if (v.kind === "boolean") return "checkbox";
  if (v.kind === "union" && (v.members ?? []).every((m) => m.kind === "literal")) return "select";
  return "json";
}

/**
 * What a filter or index value box of the Data screen sends for `text` typed against the field
 * at `path` (dots for nested fields) of a table whose documents `table` describes:
 * - a string or ID field: the text as it is;
 * - an int64 field: whole digits as an int64 (`{ $integer }`). Read as JSON, "5" would be the
 *   float64 5, which never equals the 5n the field holds (int64 and float64 are different
 *   types to the database), and digits past 2^53 would lose their last ones;
 * - anything else: JSON if the text is JSON, else the text (`typedValue`).
 */
export function filterValue(table: ValidatorData | null | undefined, path: string, text: string): unknown {
  const kinds = leafKinds(fieldAt(table, path.split(".")));
  if (kinds.length > 0 && kinds.every((kind) => kind === "string" || kind === "id")) return text;
  if (kinds.includes("int64") && !kinds.includes("float64") && !kinds.includes("any")) {
    const digits = text.trim();
    if (/^-?\d+$/.test(digits)) {
      const n = BigInt(digits);
      if (BigInt.asIntN(64, n) === n) return int64Json(n);
    }
  }
  return typedValue(text);
}

/** The validators the field at `path` may hold: several when a union of objects declares it. */
function fieldAt(validator: ValidatorData | null | undefined, path: string[]): ValidatorData[] {
  if (!validator) return [];
  if (validator.kind === "union") return (validator.members ?? []).flatMap((member) => fieldAt(member, path));
  if (path.length === 0) return [validator];
  if (validator.kind !== "object") return [];
  return fieldAt(validator.fields?.[path[0]!], path.slice(1));
}

/** The kinds of the validators, unions opened. */
function leafKinds(validators: ValidatorData[]): string[] {
  return validators.flatMap((v) => (v.kind === "union" ? leafKinds(v.members ?? []) : [v.kind]));
}

/** An int64 in Walk-in's JSON: the base64 of its 8 bytes, little-endian two's complement. */
function int64Json(n: bigint): { $integer: string } {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigInt64(0, n, true);
  return { $integer: btoa(String.fromCharCode(...bytes)) };
}

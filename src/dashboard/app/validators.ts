/** Validators as the server sends them (plain data), and what the page builds from them. */
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

/**
 * Merging a custom builder's args with a function's own: a function may declare an argument
 * the customization already declares, with the same validator or a narrower one (every value
 * it accepts, the customization's accepts too), as convex-helpers allows. A wider one would let
 * through values the customization's `input` was written never to see, so it is refused.
 */
import { walkinError, type GenericValidator, type PropertyValidators } from "../values/index.js";

/** The validators a custom function registers: the function's own win where both declare a key. */
export function mergeCustomArgs(custom: PropertyValidators, declared: PropertyValidators): PropertyValidators {
  for (const [key, validator] of Object.entries(declared)) {
    const customValidator = custom[key];
    if (customValidator && !isNarrowerOrEqual(validator as GenericValidator, customValidator as GenericValidator)) {
      throw walkinError(
        "MISUSE",
        `The argument "${key}" is already declared by the custom builder (${describe(customValidator as GenericValidator)}), and the ` +
          `function redeclares it wider (${describe(validator as GenericValidator)}). Redeclare it only with the same or a narrower ` +
          `validator, or remove it from args.`,
      );
    }
  }
  return { ...custom, ...declared };
}

/** Whether every value `inner` accepts is accepted by `outer`. Conservative: false when unsure. */
export function isNarrowerOrEqual(inner: GenericValidator, outer: GenericValidator): boolean {
  if (inner.isOptional === "optional" && outer.isOptional !== "optional") return false;
  if (outer.kind === "any") return true;
  if (inner.kind === "union") return inner.members.every((member) => isNarrowerOrEqual(required(member), required(outer)));
  if (outer.kind === "union") return outer.members.some((member) => isNarrowerOrEqual(required(inner), required(member)));
  switch (outer.kind) {
    case "string":
      // A format (session IDs, say) is part of what the customization relies on: keep it.
      if (inner.kind === "literal") return typeof inner.value === "string" && (!outer.format || outer.format.check(inner.value, { trusted: false }) === null);
      return inner.kind === "string" && (outer.format === undefined || inner.format === outer.format);
    case "float64":
    case "int64":
    case "boolean":
      return inner.kind === outer.kind || (inner.kind === "literal" && literalKind(inner.value) === outer.kind);
    case "null":
    case "bytes":
      return inner.kind === outer.kind;
    case "id":
      return inner.kind === "id" && inner.tableName === outer.tableName;
    case "literal":
      return inner.kind === "literal" && Object.is(inner.value, outer.value);
    case "array":
      return inner.kind === "array" && isNarrowerOrEqual(inner.element, outer.element);
    case "record":
      return inner.kind === "record" && isNarrowerOrEqual(inner.key, outer.key) && isNarrowerOrEqual(inner.value, outer.value);
    case "object": {
      if (inner.kind !== "object") return false;
      const innerFields = inner.fields as Record<string, GenericValidator>;
      const outerFields = outer.fields as Record<string, GenericValidator>;
      return (
        Object.keys(innerFields).every((key) => key in outerFields) &&
        Object.entries(outerFields).every(([key, field]) => (innerFields[key] ? isNarrowerOrEqual(innerFields[key], field) : field.isOptional === "optional"))
      );
    }
    default:
      return false;
  }
}

function required(validator: GenericValidator): GenericValidator {
  return validator.isOptional === "optional" ? ({ ...validator, isOptional: "required" } as GenericValidator) : validator;
}

function literalKind(value: unknown): string {
  return typeof value === "number" ? "float64" : typeof value === "bigint" ? "int64" : typeof value === "boolean" ? "boolean" : "string";
}

function describe(validator: GenericValidator): string {
  const optional = validator.isOptional === "optional" ? "optional " : "";
  if (validator.kind === "string" && validator.format) return `${optional}${validator.format.name}`;
  if (validator.kind === "id") return `${optional}an ID of "${validator.tableName}"`;
  if (validator.kind === "literal") return `${optional}the literal ${JSON.stringify(String(validator.value))}`;
  return `${optional}${validator.kind}`;
}

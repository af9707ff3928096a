/**
 * The function builders: `query`, `mutation`, `action` and their `internal*` variants.
 *
 * They only check and package a definition; the engine runs it. These exports are untyped
 * (any table, any document); `walkin codegen` re-exports them bound to the schema's data model.
 */
import { asObjectValidator, walkinError } from "../values/index.js";
import type { PropertyValidators, Validator } from "../values/index.js";
import type { AnyDataModel } from "./dataModel.js";
import type {
  ActionBuilder,
  FunctionType,
  FunctionVisibility,
  MutationBuilder,
  QueryBuilder,
  RegisteredFunction,
} from "./registration.js";

type Definition = {
  args?: PropertyValidators | Validator<any, "required", any>;
  /** Set by custom builders only, for `args: v.any()` (see `RegisteredFunction.customArgs`). */
  customArgs?: PropertyValidators;
  returns?: Validator<any, any, any>;
  handler: (ctx: any, args: any) => unknown;
};

/** Packages a definition; shared by every builder and by custom builders. */
export function registerFunction(
  type: FunctionType,
  visibility: FunctionVisibility,
  definition: Definition | ((ctx: any, args: any) => unknown),
): RegisteredFunction {
  const def: Definition = typeof definition === "function" ? { handler: definition } : definition;
  if (typeof def !== "object" || def === null || typeof def.handler !== "function") {
    throw walkinError(
      "MISUSE",
      `${type}() takes a handler function or { args, handler }. Did you forget the handler?`,
    );
  }
  let args: Validator<any, "required", any> | null = null;
  if (def.args !== undefined) {
    args = asObjectValidator(def.args);
    if (args.kind !== "object" && args.kind !== "any") {
      throw walkinError("MISUSE", `${type}() args must be an object of validators, e.g. { args: { id: v.string() } }.`);
    }
  }
  return Object.freeze({
    type,
    visibility,
    args,
    customArgs: args?.kind === "any" && def.customArgs && Object.keys(def.customArgs).length > 0 ? asObjectValidator(def.customArgs) : null,
    returns: def.returns ?? null,
    handler: def.handler,
    // Convex's name for the handler, which tests written for Convex call directly.
    _handler: def.handler,
  }) as unknown as RegisteredFunction;
}

/** One runtime function serves every builder; its public type comes from the annotation. */
function builder<Builder>(type: FunctionType, visibility: FunctionVisibility): Builder {
  return ((definition: Definition) => registerFunction(type, visibility, definition)) as unknown as Builder;
}

/** A read-only, deterministic, cached, live function. */
export const query: QueryBuilder<AnyDataModel, "public"> = builder("query", "public");
/** A query only other functions can call. */
export const internalQuery: QueryBuilder<AnyDataModel, "internal"> = builder("query", "internal");
/** A serializable transaction. */
export const mutation: MutationBuilder<AnyDataModel, "public"> = builder("mutation", "public");
/** A mutation only other functions (and the scheduler) can call. */
export const internalMutation: MutationBuilder<AnyDataModel, "internal"> = builder("mutation", "internal");
/** A function that may call the outside world; it reads and writes through queries and mutations. */
export const action: ActionBuilder<AnyDataModel, "public"> = builder("action", "public");
/** An action only other functions (and the scheduler) can call. */
export const internalAction: ActionBuilder<AnyDataModel, "internal"> = builder("action", "internal");

/** True if a module export is a registered function. */
export function isRegisteredFunction(value: unknown): value is RegisteredFunction {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as RegisteredFunction).handler === "function" &&
    ["query", "mutation", "action"].includes((value as RegisteredFunction).type)
  );
}

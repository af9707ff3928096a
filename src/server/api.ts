/**
 * Function references: how clients, tests and other functions name a function.
 *
 * A reference is a tiny object that carries the function's path (`"messages:send"`, or
 * `"lib/users:get"` for nested modules) at run time and its type, visibility, args and return
 * type at compile time. `anyApi` builds untyped references on the fly; codegen writes an `api`
 * object typed from the modules' exports (`ApiFromModules`).
 */
import { walkinError } from "../values/errors.js";
import type { Expand } from "./dataModel.js";
import type { FunctionType, FunctionVisibility, RegisteredFunction } from "./registration.js";

const FUNCTION_NAME = Symbol.for("walkin.functionName");

export interface FunctionReference<
  Type extends FunctionType = FunctionType,
  Visibility extends FunctionVisibility = FunctionVisibility,
  Args = any,
  Returns = any,
> {
  /** Type-only. */
  readonly _type: Type;
  /** Type-only. */
  readonly _visibility: Visibility;
  /** Type-only. */
  readonly _args: Args;
  /** Type-only. */
  readonly _returnType: Returns;
}

export type AnyFunctionReference = FunctionReference<any, any, any, any>;
export type FunctionArgs<F extends AnyFunctionReference> = F["_args"];
export type FunctionReturnType<F extends AnyFunctionReference> = F["_returnType"];

/**
 * The part of an API whose references extend `Predicate`, without the modules left empty:
 * `FilterApi<typeof api, FunctionReference<"query">>` holds every query, as in Convex.
 */
export type FilterApi<API, Predicate> = Expand<{
  [Key in keyof API as API[Key] extends Predicate
    ? Key
    : API[Key] extends AnyFunctionReference
      ? never
      : keyof FilterApi<API[Key], Predicate> extends never
        ? never
        : Key]: API[Key] extends Predicate ? API[Key] : FilterApi<API[Key], Predicate>;
}>;

/**
 * `api` typed as `FilterApi<API, Predicate>`, as Convex's `filterApi`. Only the type narrows: at
 * run time it is the same object, so it filters what code can name, not what it can call.
 *
 * @example
 * const queries = filterApi<typeof api, FunctionReference<"query">>(api);
 */
export function filterApi<API, Predicate>(api: API): FilterApi<API, Predicate> {
  return api as unknown as FilterApi<API, Predicate>;
}

/** Args may be omitted when the function takes none (or only optional ones). */
export type OptionalRestArgs<F extends AnyFunctionReference> = {} extends FunctionArgs<F>
  ? [args?: FunctionArgs<F>]
  : [args: FunctionArgs<F>];

/** Args, then options; both may be omitted when the function takes no args (as Convex's `ArgsAndOptions`). */
export type ArgsAndOptions<F extends AnyFunctionReference, Options> = {} extends FunctionArgs<F>
  ? [args?: FunctionArgs<F>, options?: Options]
  : [args: FunctionArgs<F>, options?: Options];

/** Builds a reference from a path like `"messages:send"` or `"lib/users:get"`. */
export function makeFunctionReference<Type extends FunctionType, Args = any, Returns = any>(
  name: string,
): FunctionReference<Type, "public", Args, Returns> {
  return { [FUNCTION_NAME]: name } as unknown as FunctionReference<Type, "public", Args, Returns>;
}

/**
 * The path of a referenced function, e.g. `"messages:send"`. Accepts a reference or a path.
 * Throws a clear error for anything else (a common mistake is passing the function itself).
 */
export function getFunctionName(ref: AnyFunctionReference | string): string {
  if (typeof ref === "string") return ref;
  const name = (ref as unknown as Record<symbol, unknown> | null)?.[FUNCTION_NAME];
  if (typeof name !== "string") {
    throw walkinError(
      "MISUSE",
      "Expected a function reference like api.messages.send. Did you pass the function itself " +
        "(imported from its module) instead of its reference from _generated/api or anyApi?",
    );
  }
  return name;
}

function createApiProxy(path: string[]): any {
  return new Proxy(
    {},
    {
      get(_target, prop) {
        if (prop === FUNCTION_NAME) {
          if (path.length < 2) return undefined;
          return `${path.slice(0, -1).join("/")}:${path[path.length - 1]}`;
        }
        if (typeof prop !== "string") return undefined;
        // Let `await api.x` and JSON/console inspection behave sanely.
        if (prop === "then" || prop === "toJSON") return undefined;
        return createApiProxy([...path, prop]);
      },
    },
  );
}

/** Untyped references: `anyApi.messages.send`, `anyApi.lib.users.get`. */
export const anyApi: AnyApi = createApiProxy([]);
export type AnyApi = { readonly [key: string]: { readonly [key: string]: AnyApi & AnyFunctionReference } };

// A handler that returns nothing (or undefined) sends null: the engine's checkReturn turns
// undefined into null for every caller, clients and ctx.runQuery alike, as Convex does.
type UndefinedToNull<T> = T extends void ? null : T;

type ReferenceTo<F> = F extends RegisteredFunction<infer T, infer V, infer A, infer R> ? FunctionReference<T, V, A, UndefinedToNull<R>> : never;

type ModuleApi<Module, Visibility extends FunctionVisibility> = {
  [Export in keyof Module as Module[Export] extends RegisteredFunction<any, Visibility, any, any>
    ? Export
    : never]: ReferenceTo<Module[Export]>;
};

type PathToObject<Path extends string, Leaf> = Path extends `${infer Head}/${infer Rest}`
  ? { [K in Head]: PathToObject<Rest, Leaf> }
  : { [K in Path]: Leaf };

type UnionToIntersection<U> = (U extends any ? (x: U) => void : never) extends (x: infer I) => void ? I : never;

/**
 * The typed API of a set of modules, as codegen writes it:
 * `ApiFromModules<{ messages: typeof messages; "lib/users": typeof users }, "public">`.
 */
export type ApiFromModules<Modules extends Record<string, any>, Visibility extends FunctionVisibility = "public"> = Expand<
  UnionToIntersection<
    { [Path in keyof Modules & string]: PathToObject<Path, Expand<ModuleApi<Modules[Path], Visibility>>> }[keyof Modules & string]
  >
>;

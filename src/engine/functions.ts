/**
 * Finding functions by path and checking what goes in and out of them.
 *
 * Module paths are the keys of the `modules` map (`"messages"`, `"lib/users"`); a function's
 * path is `module:export` (`"messages:send"`; `"messages"` alone means its default export).
 */
import { checkValue, normalizeValue, validateResult, walkinError } from "../values/index.js";
import type { Value } from "../values/index.js";
import { isRegisteredFunction } from "../server/functions.js";
import type { FunctionType, RegisteredFunction } from "../server/registration.js";
import { canonicalPath, functionPath } from "../server/functionPath.js";

export type Modules = Record<string, Record<string, unknown>>;

export class FunctionRegistry {
  constructor(private readonly modules: Modules) {}

  /**
   * The function at `path`, checked to be of `type`. `fromClient` refuses internal functions
   * with the same error as a missing one, so clients cannot probe for internal names.
   */
  resolve(path: unknown, type: FunctionType, { fromClient = false } = {}): RegisteredFunction {
    const known = typeof path === "string" ? this.found.get(path) : undefined;
    const fn = known ?? this.find(path, type, fromClient);
    // An internal function looks missing to clients (same error), before its type is told.
    if (fromClient && fn.visibility === "internal") this.find(path, type, true);
    if (fn.type !== type) {
      throw walkinError("WRONG_FUNCTION_TYPE", `"${path as string}" is ${withArticle(fn.type)}, not ${withArticle(type)}: call it as ${withArticle(fn.type)} (${CALLED_WITH[fn.type]}).`);
    }
    return fn;
  }

  /**
   * The type of the function at `path`, for callers whose request does not say it (Convex's
   * `/api/run/<module>/<function>`); errors as `resolve`, internal functions missing to clients.
   */
  typeOf(path: string, { fromClient = false } = {}): FunctionType {
    const fn = this.found.get(path) ?? this.find(path, "function", fromClient);
    if (fromClient && fn.visibility === "internal") this.find(path, "function", true);
    return fn.type;
  }

  /** Functions found by path so far: resolving is on the path of every call. */
  private readonly found = new Map<string, RegisteredFunction>();

  /** Looks `path` up in the modules (remembering it), or throws the error a caller should see. */
  private find(path: unknown, type: FunctionType | "function", fromClient: boolean): RegisteredFunction {
    if (typeof path !== "string" || path.length === 0 || path.length > 512) {
      throw walkinError("UNKNOWN_FUNCTION", `Function paths are strings like "messages:send"; received ${typeof path}.`);
    }
    // Read as Convex's clients read a path (functionPath.ts), so that code sending one straight
    // to the HTTP API or the WebSocket works: "lib/users.js:get" is "lib/users:get" (modules are
    // known without their extension), "messages" is "messages:default".
    const [modulePath, exportName] = splitOnce(canonicalPath(functionPath(path)));
    // A path no module can have is refused with what is wrong with it, not "no module named …".
    const segments = modulePath.split("/");
    let problem: string | null = null;
    if (modulePath.length === 0) problem = "it names no module";
    else if (segments.includes("")) problem = 'its module path has an empty segment (a leading, trailing or doubled "/")';
    else if (segments.some((segment) => segment === "." || segment === "..")) problem = 'its module path has a "." or ".." segment: name the module by its path in functions/';
    else if (/[\u0000-\u001f\u007f\\]/.test(path)) problem = 'it holds a control character or a backslash (module paths are separated by "/")';
    else if (exportName.length === 0) problem = 'it names no export after the ":"';
    if (problem !== null) {
      throw walkinError("UNKNOWN_FUNCTION", `Function path ${JSON.stringify(path)} is not valid: ${problem}. Write "<module>:<export>" with the module's path in functions/, e.g. "lib/users:get", or the module alone for its default export.`);
    }
    const module = Object.hasOwn(this.modules, modulePath) ? this.modules[modulePath] : undefined;
    const fn = module && Object.hasOwn(module, exportName) ? module[exportName] : undefined;
    if (!isRegisteredFunction(fn) || (fromClient && fn.visibility === "internal")) {
      // To a client, a module of internal functions only is a missing module.
      const visible = module !== undefined && (!fromClient || Object.values(module).some((f) => isRegisteredFunction(f) && f.visibility !== "internal"));
      const hint = visible
        ? `Module "${modulePath}" has no public ${type} "${exportName}".`
        : `There is no module "${modulePath}" in functions/.${dotHint(path)}`;
      throw walkinError("UNKNOWN_FUNCTION", `Unknown function "${path}". ${hint}`);
    }
    this.found.set(path, fn);
    return fn;
  }

  /** Every registered function, for listings and codegen. */
  *all(): Generator<{ path: string; fn: RegisteredFunction }> {
    for (const [modulePath, module] of Object.entries(this.modules)) {
      for (const [name, fn] of Object.entries(module)) {
        if (isRegisteredFunction(fn)) yield { path: `${modulePath}:${name}`, fn };
      }
    }
  }
}

/**
 * Every way of calling each kind, since the caller may be a browser hook, a client, a server
 * component, another function or a plain HTTP request, and `resolve` cannot tell which.
 */
const CALLED_WITH: Record<FunctionType, string> = {
  query: "useQuery, client.query, fetchQuery, ctx.runQuery or POST /api/query",
  mutation: "useMutation, client.mutation, fetchMutation, ctx.runMutation or POST /api/mutation",
  action: "useAction, client.action, fetchAction, ctx.runAction or POST /api/action",
};

function withArticle(type: FunctionType): string {
  return type === "action" ? "an action" : `a ${type}`;
}

/** `"messages.list"` → a hint that the separator is `:`. */
function dotHint(path: string): string {
  const dot = path.lastIndexOf(".");
  if (path.includes(":") || dot <= 0 || dot === path.length - 1) return "";
  return ` Function paths separate the module from the export with ":": did you mean "${path.slice(0, dot)}:${path.slice(dot + 1)}"?`;
}

function splitOnce(path: string): [string, string] {
  const at = path.lastIndexOf(":");
  return [path.slice(0, at), path.slice(at + 1)];
}

/**
 * Validates arguments (an object of values matching the function's `args` validator) and
 * returns them normalized. `trusted` is false for arguments sent by a client.
 */
export function checkArgs(
  fn: RegisteredFunction,
  args: unknown,
  isIdOfTable: (table: string, id: string) => boolean,
  trusted = true,
): Record<string, Value> {
  const given = args === undefined ? {} : args;
  if (typeof given !== "object" || given === null || Array.isArray(given) || given instanceof ArrayBuffer) {
    throw walkinError("INVALID_ARGUMENT", `args: expected an object of named arguments, received ${given === null ? "null" : Array.isArray(given) ? "array" : typeof given}.`);
  }
  try {
    checkValue(given as Value, "args");
  } catch (error) {
    throw walkinError("INVALID_ARGUMENT", (error as Error).message, undefined, error);
  }
  // As after the wire: a field set to undefined (by an action's ctx.runMutation, say) is absent,
  // so a handler spreading its args into patch() leaves that field alone.
  const present = withoutUndefinedFields(given);
  if (fn.args?.kind === "any" && fn.customArgs) return withCustomArgsChecked(fn.customArgs, present as Record<string, Value>, isIdOfTable, trusted);
  if (fn.args) {
    const result = validateResult(fn.args, present, { path: "args", isIdOfTable, trusted });
    if (!result.ok) throw walkinError("INVALID_ARGUMENT", result.message);
    // Formats such as session IDs hand the handler a normalized value (a digest), never the raw one.
    return normalizeValue(fn.args, present as Value, trusted, isIdOfTable) as Record<string, Value>;
  }
  return present as Record<string, Value>;
}

/**
 * The args of a custom function declared with `args: v.any()`: its own args pass unchecked, but
 * the ones its custom builders add are checked here, as declared ones are, and for the same
 * reason: only here is it known who calls. A session ID is the case in point. A client must send
 * the raw ID and never its digest; server code (an action's ctx.runQuery, the scheduler, a test)
 * only ever holds the digest, read from ctx, its args or a stored document, and passes that. The
 * builder's own wrapper cannot tell the two apart, so if it checked, it would refuse one of them.
 */
function withCustomArgsChecked(
  customArgs: NonNullable<RegisteredFunction["customArgs"]>,
  present: Record<string, Value>,
  isIdOfTable: (table: string, id: string) => boolean,
  trusted: boolean,
): Record<string, Value> {
  const fields = Object.keys((customArgs as { fields: Record<string, unknown> }).fields);
  const custom: Record<string, Value> = {};
  for (const key of fields) if (Object.hasOwn(present, key)) custom[key] = present[key]!;
  const result = validateResult(customArgs, custom, { path: "args", isIdOfTable, trusted });
  if (!result.ok) throw walkinError("INVALID_ARGUMENT", result.message);
  return { ...present, ...(normalizeValue(customArgs, custom, trusted, isIdOfTable) as Record<string, Value>) };
}

/**
 * `value` without the object fields set to `undefined`, at any depth: what a value is once it
 * crossed the wire (Convex: `{ a: undefined }` is `{}` when passed to or returned from a
 * function). The same object when it has none, so the common case copies nothing.
 */
export function withoutUndefinedFields<T>(value: T): T {
  if (typeof value !== "object" || value === null || value instanceof ArrayBuffer) return value;
  if (!Array.isArray(value) && isDefinedAndFlat(value as Record<string, unknown>)) return value; // most args: no walk, no key list
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item = withoutUndefinedFields(value[i] as unknown);
      if (item !== value[i]) (copy ??= value.slice())[i] = item;
    }
    return (copy ?? value) as T;
  }
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    const field = (value as Record<string, unknown>)[key];
    if (field === undefined) {
      copy ??= { ...(value as Record<string, unknown>) };
      delete copy[key];
      continue;
    }
    const inner = withoutUndefinedFields(field);
    if (inner !== field) (copy ??= { ...(value as Record<string, unknown>) })[key] = inner;
  }
  return (copy ?? value) as T;
}

/** No field undefined and none an object or array: nothing for `withoutUndefinedFields` to remove. */
function isDefinedAndFlat(value: Record<string, unknown>): boolean {
  for (const key in value) {
    const field = value[key];
    if (field === undefined || (typeof field === "object" && field !== null)) return false;
  }
  return true;
}

/** Checks a handler's return value: encodable, and matching `returns` if declared. */
export function checkReturn(fn: RegisteredFunction, path: string, value: unknown, isIdOfTable: (table: string, id: string) => boolean): Value {
  const result = value === undefined ? null : (value as Value);
  try {
    checkValue(result, "returns");
  } catch (error) {
    throw walkinError("INVALID_VALUE", `${path} returned a value that cannot be sent to clients: ${(error as Error).message}`, undefined, error);
  }
  if (fn.returns) {
    // What a handler returns is the server's own value: formats read strictly only for a
    // client's input (a session digest, refused in a client's args) pass here. A handler that
    // returns nothing answers null (undefined is no value to send), and is checked as that
    // null, as Convex checks the value it sends: `returns: v.null()` is how Convex's guidelines
    // declare a function that returns nothing. Under `returns: v.optional(...)` it is checked
    // as `undefined`, which the optional accepts (as Convex does).
    const checked = value === undefined && fn.returns.isOptional === "optional" ? undefined : result;
    const check = validateResult(fn.returns, checked, { path: "returns", isIdOfTable, trusted: true });
    if (!check.ok) throw walkinError("MISUSE", `${path} returned a value that does not match its returns validator: ${check.message}`);
  }
  return result;
}

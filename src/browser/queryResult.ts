/**
 * What the client holds for one query: its identity (`QueryToken`) and its latest result.
 *
 * A new result that stands for the same thing as the previous one keeps the previous decoded
 * object, so `Object.is` holds across transitions (the React layer re-renders only when a
 * value really changed). Results from the server keep their wire form (`wire`) and are
 * compared on it, in one walk that stops at the first difference: a changed result (the
 * usual case after a write) costs almost nothing to tell apart, and no text is built for it.
 * Other results (optimistic values, errors) are compared on `text`, the canonical JSON text
 * of what they stand for, built when first needed. `text` is undefined when a value cannot
 * be encoded (an optimistic update that stored a non-value); such a result always counts as
 * changed.
 */
import type { JSONValue, Value } from "../values/value.js";
import { WalkinError, type WalkinErrorCode } from "../values/errors.js";
import { convertFromJson, convertToJson } from "../values/json.js";
import type { ErrorPayload } from "../transport/protocol.js";
import { canonicalPath } from "../server/functionPath.js";

/**
 * One query: a function path (in its one spelling, `canonicalPath`) and its JSON-encoded args.
 * Two watches with equal tokens share one subscription.
 */
export type QueryToken = string & { readonly __brand: "QueryToken" };

export function queryToken(udfPath: string, args: JSONValue): QueryToken {
  // An array keeps path and args apart however either is spelled.
  return canonicalJson([canonicalPath(udfPath), args]) as QueryToken;
}

/**
 * The JSON text of `value` with every object's keys sorted: args that differ only in the order
 * their keys were written are one query, as in Convex's client (whose encoding sorts keys). An
 * optimistic update that writes `{ limit, channel }` must reach the `useQuery` that wrote
 * `{ channel, limit }`, and a `{ ...filters, channel }` rebuilt in another order must not
 * resubscribe (or start a paginated list over).
 */
export function canonicalJson(value: JSONValue): string {
  return JSON.stringify(value, sortKeys);
}

function sortKeys(_key: string, value: unknown): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
  const object = value as Record<string, unknown>;
  // No prototype: a field named __proto__ is a field like any other, not the object's prototype.
  const sorted: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(object).sort()) sorted[key] = object[key];
  return sorted;
}

export type QueryResult =
  | { readonly kind: "value"; readonly value: Value; readonly text: string | undefined; readonly wire?: JSONValue }
  | { readonly kind: "error"; readonly error: WalkinError; readonly text: string | undefined; readonly wire?: undefined };

/** A value from the server: its wire form kept for comparison, its text built only if asked for. */
class ServerValue {
  readonly kind = "value";
  private cachedText: string | undefined;

  constructor(
    readonly value: Value,
    readonly wire: JSONValue,
  ) {}

  get text(): string {
    return (this.cachedText ??= "v" + JSON.stringify(this.wire));
  }
}

/** A result decoded from the wire; a value the client cannot decode becomes an INTERNAL error. */
export function resultFromServer(value: JSONValue): QueryResult {
  try {
    return new ServerValue(convertFromJson(value), value);
  } catch (cause) {
    const error = new WalkinError("The server sent a query result this client cannot decode", { code: "INTERNAL", cause });
    return { kind: "error", error, text: "v" + JSON.stringify(value) };
  }
}

export function errorResultFromServer(payload: ErrorPayload): QueryResult {
  return { kind: "error", error: errorFromPayload(payload), text: "e" + JSON.stringify(payload) };
}

/** An error the client gives a query itself, without asking the server (one it cannot send). */
export function localErrorResult(error: WalkinError): QueryResult {
  return { kind: "error", error, text: "e" + JSON.stringify({ code: error.code, message: error.message }) };
}

/** A result set by an optimistic update. */
export function resultFromLocalValue(value: Value): QueryResult {
  let text: string | undefined;
  try {
    text = "v" + JSON.stringify(convertToJson(value));
  } catch {
    text = undefined;
  }
  return { kind: "value", value, text };
}

/** Whether two results stand for the same thing (so the older object can be kept). */
export function sameResult(a: QueryResult | undefined, b: QueryResult | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.kind !== b.kind) return false;
  if (a.wire !== undefined && b.wire !== undefined) return sameJson(a.wire, b.wire);
  return a.text !== undefined && a.text === b.text;
}

/**
 * Whether two JSON values have the same text: `JSON.stringify(a) === JSON.stringify(b)`
 * (so key order counts, as it does for the decoded objects the app sees), without building
 * either text.
 */
function sameJson(a: JSONValue, b: JSONValue): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i]!, b[i]!)) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const keys = Object.keys(a);
  const otherKeys = Object.keys(b);
  if (keys.length !== otherKeys.length) return false;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (key !== otherKeys[i] || !sameJson(a[key]!, b[key]!)) return false;
  }
  return true;
}

/** The error a client call rejects with, rebuilt from the wire form. */
export function errorFromPayload(payload: ErrorPayload): WalkinError {
  let data: Value | undefined;
  try {
    data = payload.data === undefined ? undefined : convertFromJson(payload.data);
  } catch {
    data = undefined;
  }
  return new WalkinError(payload.message, { code: payload.code as WalkinErrorCode, data });
}

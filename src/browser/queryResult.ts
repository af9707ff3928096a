/**
 * What the client holds for one query: its identity (`QueryToken`) and its latest result.
 *
 * Every result carries `text`, the canonical JSON text of what it stands for. Comparing texts
 * is how the client tells "the same result again" from "a new result": an unchanged result
 * keeps its decoded object, so `Object.is` holds across transitions (the React layer re-renders
 * only when a value really changed). `text` is undefined when a value cannot be encoded (an
 * optimistic update that stored a non-value); such a result always counts as changed.
 */
import type { JSONValue, Value } from "../values/value.js";
import { WalkinError, type WalkinErrorCode } from "../values/errors.js";
import { convertFromJson, convertToJson } from "../values/json.js";
import type { ErrorPayload } from "../transport/protocol.js";

/** One query: a function path and its JSON-encoded args. Two watches with equal tokens share one subscription. */
export type QueryToken = string & { readonly __brand: "QueryToken" };

export function queryToken(udfPath: string, args: JSONValue): QueryToken {
  // An array keeps path and args apart however either is spelled.
  return JSON.stringify([udfPath, args]) as QueryToken;
}

export type QueryResult =
  | { readonly kind: "value"; readonly value: Value; readonly text: string | undefined }
  | { readonly kind: "error"; readonly error: WalkinError; readonly text: string | undefined };

/** A result decoded from the wire; a value the client cannot decode becomes an INTERNAL error. */
export function resultFromServer(value: JSONValue): QueryResult {
  const text = "v" + JSON.stringify(value);
  try {
    return { kind: "value", value: convertFromJson(value), text };
  } catch (cause) {
    return { kind: "error", error: new WalkinError("The server sent a query result this client cannot decode", { code: "INTERNAL", cause }), text };
  }
}

export function errorResultFromServer(payload: ErrorPayload): QueryResult {
  return { kind: "error", error: errorFromPayload(payload), text: "e" + JSON.stringify(payload) };
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
  if (a === undefined || b === undefined) return false;
  return a.text !== undefined && a.text === b.text;
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

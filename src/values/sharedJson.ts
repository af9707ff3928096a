/**
 * The JSON form of a query run's result and its text, computed once for everyone who needs
 * them. The engine tells whether a live query's new result differs from its last by this text,
 * and the transport sends the same JSON form and text to every subscriber. Computed separately,
 * every changed result was walked and stringified twice on its way to a client (once for the
 * comparison, once for the wire): 7 µs for the round-trip benchmark's 2 KB result, warm.
 *
 * Keyed by the run's outcome object (`{ ok: true, value }`), which the engine creates for each
 * run and never reuses, not by the value: a handler may return the same object from two runs
 * with different contents (module state), and its second result must be converted afresh.
 * A JSON form is only ever read, so its text is keyed by the form itself.
 */
import { convertToJson } from "./json.js";
import type { JSONValue, Value } from "./value.js";

const jsonOfOutcome = new WeakMap<object, JSONValue>();
const textOfJson = new WeakMap<object, string>();

/** `convertToJson(outcome.value)`, the same object every time for the same outcome object. */
export function sharedJsonOf(outcome: { readonly value: Value }): JSONValue {
  let json = jsonOfOutcome.get(outcome);
  if (json === undefined) jsonOfOutcome.set(outcome, (json = convertToJson(outcome.value)));
  return json;
}

/** `JSON.stringify(json)`, computed once per JSON object. */
export function sharedJsonText(json: JSONValue): string {
  if (typeof json !== "object" || json === null) return JSON.stringify(json);
  let text = textOfJson.get(json);
  if (text === undefined) textOfJson.set(json, (text = JSON.stringify(json)));
  return text;
}

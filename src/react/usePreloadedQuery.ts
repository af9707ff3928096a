/**
 * `usePreloadedQuery`: a query's result fetched on the server (`preloadQuery`, in ssr.ts) until
 * the live subscription has one. On the server and during hydration `useQuery` reports
 * "loading", so both renders show the preloaded value: the hydrated HTML matches and there is
 * no loading flash.
 */
import { useMemo } from "react";
import { makeFunctionReference, type FunctionReference, type FunctionReturnType } from "../server/api.js";
import { convertFromJson } from "../values/json.js";
import type { JSONValue, Value } from "../values/value.js";
import { checkPreloaded, type Preloaded } from "./ssr.js";
import { useQuery } from "./useQuery.js";

/**
 * The live result of a preloaded query: the preloaded value until the subscription has a
 * result, then the live one. Needs a `<WalkinProvider>`.
 *
 * @example
 * function Messages({ preloaded }: { preloaded: Preloaded<typeof api.messages.list> }) {
 *   const messages = usePreloadedQuery(preloaded);
 *   return <ul>{messages.map((m) => <li key={m._id}>{m.body}</li>)}</ul>;
 * }
 */
export function usePreloadedQuery<Query extends FunctionReference<"query">>(preloaded: Preloaded<Query>): FunctionReturnType<Query> {
  checkPreloaded("usePreloadedQuery", preloaded);
  const { _name: name, _argsJSON: argsText, _valueJSON: valueText } = preloaded;
  const args = useMemo(() => convertFromJson(JSON.parse(argsText) as JSONValue, "args") as Record<string, Value>, [argsText]);
  const preloadedValue = useMemo(() => convertFromJson(JSON.parse(valueText) as JSONValue), [valueText]);
  const live: unknown = useQuery(makeFunctionReference<"query">(name), args);
  return (live === undefined ? preloadedValue : live) as FunctionReturnType<Query>;
}

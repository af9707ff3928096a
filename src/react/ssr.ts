/**
 * Server rendering: fetch a query's result over HTTP before rendering, then hand it to the
 * browser, which renders it at once and switches to the live subscription when that has a
 * result.
 *
 * `fetchQuery` is one `POST {url}/api/query`, with no client and no socket, so it works in any
 * server runtime. `preloadQuery` wraps the result in a `Preloaded` object made only of strings,
 * safe to pass through any serialization (framework props, `JSON.stringify`), and
 * `usePreloadedQuery` returns it until the live query has a result. On the server and during
 * hydration `useQuery` reports "loading", so both renders show the preloaded value: the
 * hydrated HTML matches and there is no loading flash.
 */
import { useMemo } from "react";
import {
  getFunctionName,
  makeFunctionReference,
  type FunctionArgs,
  type FunctionReference,
  type FunctionReturnType,
} from "../server/api.js";
import { WalkinError, walkinError, type WalkinErrorCode } from "../values/errors.js";
import { convertFromJson, convertToJson } from "../values/json.js";
import type { JSONValue, Value } from "../values/value.js";
import { useQuery } from "./useQuery.js";

export interface FetchQueryOptions {
  /** The Walk-in server's address, e.g. `"https://my-app.example.com"` (ws:// works too). */
  url: string;
  /** An auth token, sent as `Authorization: Bearer <token>`: the query runs as that user. */
  token?: string;
  /** The `fetch` to use; the global one by default. */
  fetch?: typeof globalThis.fetch;
}

/** A query's result fetched on the server, to be passed to `usePreloadedQuery` in the browser. */
export interface Preloaded<Query extends FunctionReference<"query">> {
  /** Type-only: the query this result belongs to. Absent at run time. */
  readonly __type: Query;
  readonly _name: string;
  readonly _argsJSON: string;
  readonly _valueJSON: string;
}

/**
 * Runs a query once over HTTP and returns its result; throws a `WalkinError` if it fails.
 *
 * @example
 * const messages = await fetchQuery(api.messages.list, { channel: "general" }, { url: process.env.WALKIN_URL! });
 */
export async function fetchQuery<Query extends FunctionReference<"query">>(
  query: Query,
  args: FunctionArgs<Query>,
  options: FetchQueryOptions,
): Promise<FunctionReturnType<Query>> {
  const json = await fetchQueryJson(getFunctionName(query), convertToJson((args ?? {}) as Value, "args"), options);
  return convertFromJson(json) as FunctionReturnType<Query>;
}

/**
 * Fetches a query's result for `usePreloadedQuery`.
 *
 * @example
 * // on the server (a route loader, a server component)
 * const preloaded = await preloadQuery(api.messages.list, { channel }, { url });
 * // in the browser
 * const messages = usePreloadedQuery(preloaded);
 */
export async function preloadQuery<Query extends FunctionReference<"query">>(
  query: Query,
  args: FunctionArgs<Query>,
  options: FetchQueryOptions,
): Promise<Preloaded<Query>> {
  const name = getFunctionName(query);
  const argsJson = convertToJson((args ?? {}) as Value, "args");
  const valueJson = await fetchQueryJson(name, argsJson, options);
  return { _name: name, _argsJSON: JSON.stringify(argsJson), _valueJSON: JSON.stringify(valueJson) } as Preloaded<Query>;
}

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
  const { _name: name, _argsJSON: argsText, _valueJSON: valueText } = preloaded;
  const args = useMemo(() => convertFromJson(JSON.parse(argsText) as JSONValue, "args") as Record<string, Value>, [argsText]);
  const preloadedValue = useMemo(() => convertFromJson(JSON.parse(valueText) as JSONValue), [valueText]);
  const live: unknown = useQuery(makeFunctionReference<"query">(name), args);
  return (live === undefined ? preloadedValue : live) as FunctionReturnType<Query>;
}

async function fetchQueryJson(path: string, args: JSONValue, options: FetchQueryOptions): Promise<JSONValue> {
  if (typeof options?.url !== "string" || options.url === "") {
    throw walkinError("MISUSE", "fetchQuery needs the server's address. Did you forget to pass { url: \"https://…\" }?");
  }
  const doFetch = options.fetch ?? globalThis.fetch;
  const endpoint = `${httpBase(options.url)}/api/query`;
  let response: Response;
  try {
    response = await doFetch(endpoint, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
      },
      body: JSON.stringify({ path, args }),
    });
  } catch (error) {
    throw walkinError("DISCONNECTED", `fetchQuery(${path}): could not reach ${endpoint}: ${(error as Error).message}`, undefined, error);
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch (error) {
    throw walkinError("INTERNAL", `fetchQuery(${path}): ${endpoint} answered ${response.status} without a JSON body`, undefined, error);
  }
  const result = body as { status?: unknown; value?: JSONValue; code?: unknown; message?: unknown; data?: JSONValue };
  if (result?.status === "success" && "value" in result) return result.value as JSONValue;
  if (result?.status === "error" && typeof result.message === "string") {
    throw new WalkinError(result.message, {
      code: (typeof result.code === "string" ? result.code : "INTERNAL") as WalkinErrorCode,
      data: result.data === undefined ? undefined : convertFromJson(result.data),
    });
  }
  throw walkinError("INTERNAL", `fetchQuery(${path}): ${endpoint} answered ${response.status} with an unexpected body`);
}

/** `ws://host/` → `http://host`: one address works for the client and for fetchQuery. */
function httpBase(url: string): string {
  return url.replace(/^ws(s?):\/\//, "http$1://").replace(/\/+$/, "");
}

/**
 * Functions run from server code over HTTP: `fetchQuery`, `fetchMutation`, `fetchAction`, and
 * `preloadQuery`, which fetches a query's result for `usePreloadedQuery` (usePreloadedQuery.ts)
 * to render at once in the browser until the live subscription has a result.
 *
 * Each call is one `POST {url}/api/query|mutation|action` (`postCall`, shared with
 * `WalkinHttpClient`), with no client and no socket, and with a time limit (browser/deadline.ts,
 * also `WalkinHttpClient`'s), because a page render waits for it. So it
 * works in any server runtime: a route loader, or a Next.js Server Component, Server Action or
 * Route Handler. This module imports nothing from React: `walkin/nextjs` re-exports it, and
 * Next.js loads Server Components with React's "react-server" build, which has no
 * `createContext` or client hooks for the rest of walkin/react to use.
 *
 * `Preloaded` is made only of strings, so it survives any serialization on the way to the
 * browser (a Server Component's props to a client component, `JSON.stringify`).
 */
import type { ArgsAndOptions, FunctionArgs, FunctionReference, FunctionReturnType } from "../server/api.js";
import { functionPath } from "../server/functionPath.js";
import { checkTimeout, DEFAULT_ACTION_TIMEOUT_MS, DEFAULT_TIMEOUT_MS, withDeadline } from "../browser/deadline.js";
import { postCall } from "../browser/httpClient.js";
import { walkinError } from "../values/errors.js";
import { convertFromJson, convertToJson } from "../values/json.js";
import type { JSONValue, Value } from "../values/value.js";

export interface FetchQueryOptions {
  /**
   * The Walk-in server's address, e.g. `"https://my-app.example.com"` (ws:// works too). By
   * default the environment variable `NEXT_PUBLIC_WALKIN_URL`, else `NEXT_PUBLIC_CONVEX_URL`
   * (so a Convex app whose variable now holds the Walk-in server's address runs unchanged).
   */
  url?: string;
  /** An auth token, sent as `Authorization: Bearer <token>`: the function runs as that user. None, `null` or `""`: signed out. */
  token?: string | null;
  /** Accepted as Convex's `NextjsOptions` has it; Walk-in has no deployment host to check, so it changes nothing. */
  skipConvexDeploymentUrlCheck?: boolean;
  /** The `fetch` to use; the global one by default. */
  fetch?: typeof globalThis.fetch;
  /**
   * How long to wait for the server's answer, in milliseconds, before throwing a
   * `DISCONNECTED` error: 30 seconds by default (`fetchAction`: 11 minutes, as an action may
   * run for 10). `Infinity` waits as long as the server takes. Walk-in's own option, not Convex's.
   */
  timeoutMs?: number;
}

/** The options of `fetchQuery`, `fetchMutation`, `fetchAction` and `preloadQuery`, under Convex's name. */
export type NextjsOptions = FetchQueryOptions;

/** A query's result fetched on the server, to be passed to `usePreloadedQuery` in the browser. */
export interface Preloaded<Query extends FunctionReference<"query">> {
  /** Type-only: the query this result belongs to. Absent at run time. */
  readonly __type: Query;
  readonly _name: string;
  readonly _argsJSON: string;
  readonly _valueJSON: string;
}

type FunctionKind = "query" | "mutation" | "action";

/**
 * Runs a query once over HTTP and returns its result; throws a `WalkinError` if it fails
 * (`DISCONNECTED` after `timeoutMs`, 30 seconds by default, without an answer).
 *
 * @example
 * const messages = await fetchQuery(api.messages.list, { channel: "general" }, { token });
 */
export async function fetchQuery<Query extends FunctionReference<"query">>(
  query: Query,
  ...argsAndOptions: ArgsAndOptions<Query, FetchQueryOptions>
): Promise<FunctionReturnType<Query>> {
  return (await call("query", "fetchQuery", query, argsAndOptions)) as FunctionReturnType<Query>;
}

/**
 * Runs a mutation over HTTP (from a Server Action or a Route Handler, say) and returns its
 * result; throws a `WalkinError` if it fails, in which case none of its writes happened, except
 * `DISCONNECTED` (no answer within `timeoutMs`, 30 seconds by default), after which it may have run.
 *
 * @example
 * await fetchMutation(api.messages.send, { channel, body }, { token });
 */
export async function fetchMutation<Mutation extends FunctionReference<"mutation">>(
  mutation: Mutation,
  ...argsAndOptions: ArgsAndOptions<Mutation, FetchQueryOptions>
): Promise<FunctionReturnType<Mutation>> {
  return (await call("mutation", "fetchMutation", mutation, argsAndOptions)) as FunctionReturnType<Mutation>;
}

/**
 * Runs an action over HTTP and returns its result; throws a `WalkinError` if it fails
 * (`DISCONNECTED` after `timeoutMs`, 11 minutes by default, without an answer).
 *
 * @example
 * const summary = await fetchAction(api.ai.summarize, { channel }, { token });
 */
export async function fetchAction<Action extends FunctionReference<"action">>(
  action: Action,
  ...argsAndOptions: ArgsAndOptions<Action, FetchQueryOptions>
): Promise<FunctionReturnType<Action>> {
  return (await call("action", "fetchAction", action, argsAndOptions)) as FunctionReturnType<Action>;
}

/**
 * Fetches a query's result for `usePreloadedQuery`; waits at most `timeoutMs` (30 seconds by
 * default) for it.
 *
 * @example
 * // on the server (a route loader, a Server Component)
 * const preloaded = await preloadQuery(api.messages.list, { channel });
 * // in the browser
 * const messages = usePreloadedQuery(preloaded);
 */
export async function preloadQuery<Query extends FunctionReference<"query">>(
  query: Query,
  ...argsAndOptions: ArgsAndOptions<Query, FetchQueryOptions>
): Promise<Preloaded<Query>> {
  const [args, options] = argsAndOptions as [FunctionArgs<Query> | undefined, FetchQueryOptions | undefined];
  const name = functionPath(query);
  const argsJson = convertToJson((args ?? {}) as Value, "args");
  const valueJson = await callJson("query", "preloadQuery", name, argsJson, options ?? {});
  return { _name: name, _argsJSON: JSON.stringify(argsJson), _valueJSON: JSON.stringify(valueJson) } as Preloaded<Query>;
}

/**
 * The value a `Preloaded` holds, decoded (bigints, bytes), for server code that also wants it.
 *
 * @example
 * const preloaded = await preloadQuery(api.tasks.list);
 * const tasks = preloadedQueryResult(preloaded);
 */
export function preloadedQueryResult<Query extends FunctionReference<"query">>(preloaded: Preloaded<Query>): FunctionReturnType<Query> {
  checkPreloaded("preloadedQueryResult", preloaded);
  return convertFromJson(JSON.parse(preloaded._valueJSON) as JSONValue) as FunctionReturnType<Query>;
}

/**
 * Throws a `MISUSE` unless `preloaded` is what `preloadQuery` resolves to. The usual slip is
 * passing the Promise itself (`preloaded={preloadQuery(...)}`): Next.js hands it to the client
 * component as a Promise, which would otherwise fail as a JSON syntax error.
 */
export function checkPreloaded(caller: string, preloaded: unknown): void {
  const fields = preloaded as Partial<Record<"_name" | "_argsJSON" | "_valueJSON", unknown>> | null | undefined;
  if (typeof fields?._name === "string" && typeof fields._argsJSON === "string" && typeof fields._valueJSON === "string") return;
  const awaitable = typeof (preloaded as { then?: unknown } | null | undefined)?.then === "function";
  const got = awaitable ? "got a Promise: await preloadQuery(...) before passing its result on" : `got ${describePreloaded(preloaded)}`;
  throw walkinError("MISUSE", `${caller} takes what preloadQuery returned (an object with _name, _argsJSON and _valueJSON); ${got}.`);
}

function describePreloaded(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === "object" && !Array.isArray(value)) return "an object whose _name, _argsJSON and _valueJSON are not all text";
  return describeType(value);
}

async function call(kind: FunctionKind, caller: string, reference: FunctionReference<FunctionKind>, argsAndOptions: unknown[]): Promise<Value> {
  const [args, options] = argsAndOptions as [Value | undefined, FetchQueryOptions | undefined];
  const path = functionPath(reference);
  return convertFromJson(await callJson(kind, caller, path, convertToJson(args ?? {}, "args"), options ?? {}));
}

function callJson(kind: FunctionKind, caller: string, path: string, args: JSONValue, options: FetchQueryOptions): Promise<JSONValue> {
  const label = `${caller}(${path})`;
  const ms = checkTimeout(caller, "timeoutMs", options.timeoutMs, kind === "action" ? DEFAULT_ACTION_TIMEOUT_MS : DEFAULT_TIMEOUT_MS);
  const base = serverAddress(label, options);
  const token = bearerToken(label, options.token);
  const limit = { ms, label, mayHaveRun: kind !== "query", option: "timeoutMs", raise: "pass { timeoutMs } to wait longer" };
  return withDeadline(limit, options.fetch ?? globalThis.fetch, (fetch) => postCall({ base, kind, path, args, token, fetch, label }));
}

/**
 * The server's HTTP address: `options.url`, else `NEXT_PUBLIC_WALKIN_URL`, else
 * `NEXT_PUBLIC_CONVEX_URL` unless that still names a Convex deployment. Read as a URL, as
 * `WalkinHttpClient` reads its address: whitespace pasted around it is not part of it, and a
 * query or fragment is refused (the calls' paths go after it). `ws://host/` becomes
 * `http://host`, so one address serves the client and these calls.
 */
function serverAddress(label: string, options: FetchQueryOptions): string {
  const fromEnvironment = options.url ? undefined : addressFromEnvironment();
  const url = options.url || fromEnvironment?.url;
  if (!url) {
    throw walkinError("MISUSE", `${label} needs the server's address. Did you forget to pass { url: "https://…" } or to set NEXT_PUBLIC_WALKIN_URL?`);
  }
  const source = fromEnvironment ? ` (from ${fromEnvironment.variable})` : "";
  const example = '"https://my-app.example.com"';
  const parsed = typeof url === "string" && URL.canParse(url) ? new URL(url) : null;
  if (!parsed || !/^(https?|wss?):$/.test(parsed.protocol) || parsed.hostname === "") {
    throw walkinError("MISUSE", `${label}: ${JSON.stringify(url)}${source} is not a server address: give one that starts with https:// or http:// (ws:// and wss:// work too), e.g. ${example}.`);
  }
  if (parsed.search !== "" || parsed.hash !== "") {
    throw walkinError("MISUSE", `${label}: ${JSON.stringify(url)}${source} has a query or fragment, which would end up before the calls' paths: give the server's address alone, e.g. ${example}.`);
  }
  if (fromEnvironment?.variable === "NEXT_PUBLIC_CONVEX_URL" && /\.convex\.(cloud|site)$/i.test(parsed.hostname)) {
    throw walkinError("MISUSE", `${label}: NEXT_PUBLIC_CONVEX_URL is a Convex deployment (${url}), not a Walk-in server: set NEXT_PUBLIC_WALKIN_URL to your Walk-in server's address, or point NEXT_PUBLIC_CONVEX_URL at it.`);
  }
  const scheme = parsed.protocol.replace(/^ws/, "http");
  return `${scheme}//${parsed.host}${parsed.pathname.replace(/\/+$/, "")}`;
}

/**
 * The `token` option as the bearer token to send, or null to call signed out. Auth libraries
 * answer null (or "") for a signed-out visitor, where "Bearer null" would be refused as a bad
 * token. Anything else that is not one token would reach the server as a header it refuses
 * for a reason the caller cannot see (a Promise is sent as "[object Promise]"), or make
 * `fetch` fail as if the server were down (a newline): it is refused here, saying why.
 */
function bearerToken(label: string, token: unknown): string | null {
  if (token === undefined || token === null) return null;
  if (typeof token !== "string") {
    const awaitable = typeof (token as { then?: unknown }).then === "function";
    const got = awaitable ? "not a Promise: did you forget to await it?" : `not ${describeType(token)}.`;
    throw walkinError("MISUSE", `${label}: the token option takes the user's token as a string (null or "" to call signed out), ${got}`);
  }
  const trimmed = token.trim();
  if (/\s/.test(trimmed)) {
    throw walkinError("MISUSE", `${label}: the token option has whitespace in it: pass the token alone, without "Bearer " and without anything after it.`);
  }
  return trimmed === "" ? null : trimmed;
}

function describeType(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  const type = typeof value;
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function addressFromEnvironment(): { url: string; variable: string } | undefined {
  // Not every runtime that renders on the server has `process` (edge runtimes, workers).
  if (typeof process === "undefined" || !process.env) return undefined;
  const walkin = process.env["NEXT_PUBLIC_WALKIN_URL"];
  if (walkin) return { url: walkin, variable: "NEXT_PUBLIC_WALKIN_URL" };
  const convex = process.env["NEXT_PUBLIC_CONVEX_URL"];
  if (convex) return { url: convex, variable: "NEXT_PUBLIC_CONVEX_URL" };
  return undefined;
}

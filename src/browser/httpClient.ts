/**
 * `WalkinHttpClient`: one-shot calls over plain HTTP (`POST /api/query|mutation|action`), no
 * socket and no live results. For server code (route handlers, scripts, serverless functions)
 * that needs a value once; `WalkinClient` is the live client. Exported also as Convex's
 * `ConvexHttpClient`, whose calls it answers alike.
 *
 * Mutations of one client run one after another, in the order they were called (a queue), as
 * over the WebSocket: `client.mutation(a); client.mutation(b)` never lets `b` overtake `a`.
 * Each call is a separate request, so, unlike over the WebSocket, a mutation whose answer was
 * lost is not re-sent and not deduplicated: the call rejects with code `DISCONNECTED`.
 *
 * Every call has a time limit (deadline.ts, shared with react/ssr.ts): `timeoutMs` for queries
 * and mutations, `actionTimeoutMs` for actions. A queued mutation's limit starts when its
 * request is sent, not while it waits behind the ones before it.
 */
import type { FunctionArgs, FunctionReference, FunctionReturnType } from "../server/api.js";
import type { ErrorPayload } from "../transport/protocol.js";
import { walkinError, type WalkinErrorCode } from "../values/errors.js";
import { convertFromJson, convertToJson } from "../values/json.js";
import type { JSONValue, Value } from "../values/value.js";
import type { UserIdentityAttributes } from "../server/registration.js";
import { functionPath } from "../server/functionPath.js";
import { actingAs, postAdminCall, type AdminActingAs } from "./adminCall.js";
import { checkTimeout, DEFAULT_ACTION_TIMEOUT_MS, DEFAULT_TIMEOUT_MS, withDeadline } from "./deadline.js";
import { postJson } from "./postJson.js";
import { errorFromPayload } from "./queryResult.js";

export interface WalkinHttpClientOptions {
  /** A token to send from the first call, as `setAuth(token)` would. */
  auth?: string;
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /**
   * Convex's option for where the function logs that come back with each answer go. Accepted
   * so that Convex code runs unchanged; it has nothing to print here: a Walk-in server keeps
   * function logs in its own log (the answers' `logLines` are always empty).
   */
  logger?: unknown;
  /** Convex's check that the address is a Convex deployment's; accepted, with no effect (there is no deployment host to check). */
  skipConvexDeploymentUrlCheck?: boolean;
  /**
   * How long a query or a mutation waits for its answer, in milliseconds, before rejecting with
   * `DISCONNECTED`: 30 seconds by default; `Infinity` waits as long as the server takes.
   * Walk-in's own option (Convex's client has none, and waits forever).
   */
  timeoutMs?: number;
  /** The same for actions: 11 minutes by default, as an action may run for 10. */
  actionTimeoutMs?: number;
}

export interface HttpMutationOptions {
  /** Run now, beside the mutations queued before it, instead of after them. */
  skipQueue?: boolean;
}

type Kind = "query" | "mutation" | "action";

/**
 * @example
 * import { WalkinHttpClient } from "walkin/browser";
 * const client = new WalkinHttpClient(process.env.WALKIN_URL!);
 * client.setAuth(token);
 * const messages = await client.query(api.messages.list, { channel: "general" });
 */
export class WalkinHttpClient {
  /** The server's address, without a trailing slash: calls go to `${url}/api/query` and so on. */
  readonly url: string;
  private token: string | null = null;
  /** Set by `setAdminAuth`: calls then go through the admin API. Never set together with `token`. */
  private admin: { key: string; as: AdminActingAs } | null = null;
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;
  private readonly actionTimeoutMs: number;
  /** Settles when the last queued mutation has (either way). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(address: string, options: WalkinHttpClientOptions = {}) {
    this.url = baseUrl(address);
    const fetchFunction = options.fetch ?? globalThis.fetch;
    if (typeof fetchFunction !== "function") {
      throw walkinError("MISUSE", "WalkinHttpClient: there is no global fetch here; pass one: new WalkinHttpClient(url, { fetch }).");
    }
    // Called unbound (`this.fetch(...)` would call it on the client): a browser's fetch must run on `globalThis`.
    this.fetch = (...args) => fetchFunction(...args);
    this.timeoutMs = checkTimeout("new WalkinHttpClient(url, options)", "timeoutMs", options.timeoutMs, DEFAULT_TIMEOUT_MS);
    this.actionTimeoutMs = checkTimeout("new WalkinHttpClient(url, options)", "actionTimeoutMs", options.actionTimeoutMs, DEFAULT_ACTION_TIMEOUT_MS);
    if (options.auth !== undefined) this.setAuth(options.auth);
  }

  /** Sends `Authorization: Bearer <token>` with every call from now on (and stops calling as admin). */
  setAuth(token: string): void {
    if (typeof token !== "string" || !/^\S+$/.test(token)) {
      throw walkinError("MISUSE", "setAuth(token) takes the token as a non-empty string without spaces; call clearAuth() to call signed out.");
    }
    this.admin = null;
    this.token = token;
  }

  /**
   * Calls with the server's admin key from now on (Convex's `setAdminAuth`): internal functions
   * too, as nobody, or with `actingAsIdentity` as exactly that identity (`issuer` left out:
   * walkin/auth's, so `{ subject: userId }` is that user). For trusted server code only
   * (scripts, webhooks, jobs): the key is the server's `WALKIN_ADMIN_KEY`, and calls go to its
   * admin API (`POST /api/admin/functions/run`), logged as `dashboard` runs. Replaces a token
   * given to `setAuth`; `clearAuth()` ends it.
   * @example
   * const admin = new WalkinHttpClient(process.env.WALKIN_URL!);
   * admin.setAdminAuth(process.env.WALKIN_ADMIN_KEY!);
   * await admin.mutation(internal.billing.markPaid, { invoiceId });
   */
  setAdminAuth(adminKey: string, actingAsIdentity?: UserIdentityAttributes): void {
    if (typeof adminKey !== "string" || !/^\S+$/.test(adminKey)) {
      throw walkinError("MISUSE", "setAdminAuth(adminKey) takes the server's admin key (WALKIN_ADMIN_KEY) as a non-empty string without spaces.");
    }
    const as = actingAs(actingAsIdentity);
    this.token = null;
    this.admin = { key: adminKey, as };
  }

  /** Calls signed out from now on (and not as admin). */
  clearAuth(): void {
    this.token = null;
    this.admin = null;
  }

  /** Where the server's HTTP API lives (`${url}/api`), as Convex's `backendUrl()` answers it. */
  backendUrl(): string {
    return `${this.url}/api`;
  }

  /**
   * Convex's switch for printing the function logs that come back with each answer. Accepted
   * so that Convex code runs unchanged; there is nothing to print: a Walk-in server keeps
   * function logs in its own log.
   */
  setDebug(debug: boolean): void {
    void debug;
  }

  /** Runs a query once and returns its value. */
  query<Q extends FunctionReference<"query">>(query: Q, args?: FunctionArgs<Q>): Promise<FunctionReturnType<Q>> {
    return this.call("query", query, args) as Promise<FunctionReturnType<Q>>;
  }

  /** Runs a mutation after the ones this client queued before it (see `skipQueue`). */
  mutation<M extends FunctionReference<"mutation">>(mutation: M, args?: FunctionArgs<M>, options: HttpMutationOptions = {}): Promise<FunctionReturnType<M>> {
    if (options.skipQueue) return this.call("mutation", mutation, args) as Promise<FunctionReturnType<M>>;
    // The request starts once the one before it settled, failed ones included: a failure
    // rejects its own call only.
    const result = this.queue.then(() => this.call("mutation", mutation, args));
    this.queue = result.catch(() => undefined);
    return result as Promise<FunctionReturnType<M>>;
  }

  /** Runs an action. It is not retried: if the answer is lost, it may or may not have run. */
  action<A extends FunctionReference<"action">>(action: A, args?: FunctionArgs<A>): Promise<FunctionReturnType<A>> {
    return this.call("action", action, args) as Promise<FunctionReturnType<A>>;
  }

  private async call(kind: Kind, ref: FunctionReference<Kind>, args: unknown): Promise<Value> {
    const path = functionPath(ref);
    const encoded = convertToJson((args ?? {}) as Value, "args");
    const label = `${kind} ${path}`;
    const { admin, token } = this;
    const option = kind === "action" ? "actionTimeoutMs" : "timeoutMs";
    const limit = {
      ms: kind === "action" ? this.actionTimeoutMs : this.timeoutMs,
      label: admin ? `admin ${label}` : label,
      mayHaveRun: kind !== "query",
      option,
      raise: `create the client with a longer limit: new WalkinHttpClient(url, { ${option} })`,
    };
    const answer = await withDeadline(limit, this.fetch, (fetch) =>
      admin
        ? postAdminCall({ base: this.url, kind, path, args: encoded, adminKey: admin.key, as: admin.as, fetch, label })
        : postCall({ base: this.url, kind, path, args: encoded, token, fetch, label }),
    );
    return convertFromJson(answer, "value");
  }
}

export interface HttpCall {
  /** The server's address, without a trailing slash. */
  base: string;
  kind: Kind;
  path: string;
  /** The arguments, already JSON-encoded (`convertToJson`). */
  args: JSONValue;
  /** Sent as `Authorization: Bearer <token>`; null calls signed out. */
  token: string | null;
  fetch: typeof fetch;
  /** Names the call in errors: "query messages:list", "fetchQuery(messages:list)". */
  label: string;
}

/**
 * One call over HTTP (`POST {base}/api/{kind}`): the JSON of its value, or the `WalkinError` its
 * answer carries (code, message, data). The one place that speaks the HTTP API from the client
 * side: `WalkinHttpClient` and the server-rendering functions (react/ssr.ts) both call it.
 */
export async function postCall(call: HttpCall): Promise<JSONValue> {
  const { base, kind, path, label } = call;
  const endpoint = `${base}/api/${kind}`;
  const headers: Record<string, string> = call.token === null ? {} : { Authorization: `Bearer ${call.token}` };
  const { status, body } = await postJson(endpoint, headers, { path, args: call.args, format: "json" }, call.fetch, label);
  const answer = (typeof body === "object" && body !== null ? body : {}) as { status?: unknown; value?: JSONValue; code?: unknown; message?: unknown; data?: JSONValue };
  if (answer.status === "success" && "value" in answer) return answer.value!;
  if (answer.status === "error" && typeof answer.message === "string") {
    const code = (typeof answer.code === "string" ? answer.code : "INTERNAL") as WalkinErrorCode;
    const payload: ErrorPayload = { code, message: answer.message, ...(answer.data === undefined ? {} : { data: answer.data }) };
    throw errorFromPayload(payload);
  }
  throw walkinError("INTERNAL", `${label}: ${endpoint} answered ${status} with a body that is not a Walk-in answer.`);
}

/** `address` checked and without trailing slashes; a clear error for anything but an http(s) URL. */
function baseUrl(address: string): string {
  const example = 'pass the server\'s address, like "http://127.0.0.1:3210" or "https://api.example.com"';
  if (typeof address !== "string" || !URL.canParse(address)) {
    throw walkinError("MISUSE", `WalkinHttpClient: ${JSON.stringify(address)} is not a URL: ${example}.`);
  }
  const url = new URL(address);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw walkinError("MISUSE", `WalkinHttpClient: "${address}" has the scheme ${url.protocol}; HTTP calls need http:// or https://: ${example}.`);
  }
  if (url.search !== "" || url.hash !== "") {
    throw walkinError("MISUSE", `WalkinHttpClient: "${address}" has a query or fragment, which calls would drop: ${example}.`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

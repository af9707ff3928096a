/**
 * Plain HTTP on the server's port, in this order:
 *  1. `/api/*`, Walk-in's own: `GET /api/health`, one-shot `POST /api/query|mutation|action`
 *     (body `{ path, args, format? }`, optional `Authorization: Bearer <token>`) and Convex's
 *     `POST /api/run/<module>/<function>` (body `{ args, format? }`), stored files under
 *     `/api/storage/` (fileRoutes.ts), CORS for browsers;
 *     `/api/sync` is the WebSocket (upgrades are handled in server.ts).
 *  2. The app's routes from `functions/http.ts` (`httpRouter()`), run as HTTP actions.
 *  3. Static files, when a directory is configured (GET/HEAD only, SPA fallback).
 * Answers to the one-shot endpoints are `{ status: "success", value, logLines }` or
 * `{ status: "error", code, message, data?, errorMessage, errorData?, logLines }`, with an HTTP
 * status that follows the code: Walk-in's fields, and Convex's names for the same things so
 * that code written against Convex's HTTP API reads them unchanged.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as zlib from "node:zlib";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { Caller } from "../engine/engine.js";
import { bearerTokenIn, callerRequestOf } from "./callerRequest.js";
import { isReservedApiPath, type HttpRouter } from "../server/router.js";
import type { GenericActionCtx } from "../server/registration.js";
import { convertFromJson, convertToJson, walkinError, type JSONValue, type Value, type WalkinErrorCode } from "../values/index.js";
import type { EngineSwitch } from "./engineSwitch.js";
import { errorPayload, type ErrorReporting } from "./errors.js";
import { PROTOCOL_LIMITS, type ErrorPayload } from "./protocol.js";
import { serveStatic } from "./staticFiles.js";
import { handleStorage, STORAGE_PREFIX } from "./fileRoutes.js";
import { bodyLeftUnread, closedIfBodyUnread, closeIfBodyUnread } from "./unreadBody.js";

/** Largest request body accepted, in bytes. */
export const MAX_HTTP_BODY_BYTES = 8 * 1024 * 1024;

export const CORS_HEADERS = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
  // Digest and Range: a page of another origin uploads a file with its hash and reads part of one (fileRoutes.ts).
  "Access-Control-Allow-Headers": "Content-Type, Authorization, Digest, Range",
  "Access-Control-Max-Age": "86400",
};

const UTF8 = new TextDecoder("utf-8", { fatal: true });

const ONE_SHOT = { "/api/query": "query", "/api/mutation": "mutation", "/api/action": "action" } as const;

/** Convex's route that names the function in the URL (`/api/run/messages/list`); its type comes from the registry. */
const RUN_PREFIX = "/api/run/";

export interface HttpContext {
  engines: EngineSwitch;
  reporting: ErrorReporting;
  router: HttpRouter | null;
  staticDir: string | null;
  /** The dashboard (`/_dashboard`, `/api/admin/*`), when enabled. */
  dashboard?: DashboardHandler | null;
  /** The server limit `trustProxy`: an HTTP action's `request.url` then takes the proxy's scheme (`forwardedScheme`). */
  trustProxy?: boolean;
  /** True once the server's `close()` has begun: requests are then refused (`refusedWhileClosing`). */
  closing?: () => boolean;
}

/** Answers the dashboard's requests (see src/dashboard/api); false when `url` is not one of its. */
export interface DashboardHandler {
  handle(request: IncomingMessage, response: ServerResponse, url: URL, engines: EngineSwitch): Promise<boolean>;
}

/** Answers one request; never throws (a failure becomes a 500). */
export async function handleHttp(request: IncomingMessage, response: ServerResponse, context: HttpContext): Promise<void> {
  try {
    const url = requestUrl(request);
    const method = request.method ?? "GET";
    if (url === null) {
      sendJson(response, 400, { status: "error", code: "INVALID_ARGUMENT", message: "The request-target is not a valid URL: request a path such as /api/query." });
      return;
    }
    if (refusedWhileClosing(response, context)) return;
    if (context.dashboard && (await context.dashboard.handle(request, response, url, context.engines))) return;
    if (isReservedApiPath(url.pathname)) return await handleApi(request, response, url, method, context);
    if (context.router && (await handleRoute(request, response, url, method, context))) return;
    if (context.staticDir && (method === "GET" || method === "HEAD")) {
      // staticFiles.ts writes its own heads; they take this one up (`setHeader`), as the 404 below would.
      closeIfBodyUnread(response);
      if (await serveStatic(context.staticDir, url.pathname, method, response)) return;
    }
    sendJson(response, 404, { status: "error", code: "NOT_FOUND", message: `Nothing is served at ${method} ${url.pathname}.` });
  } catch (error) {
    if (error instanceof ClientGone) {
      // Routine on the internet (a closed tab, a lost connection): one line, at debug level.
      context.reporting.debug(`[walkin] HTTP ${request.method} ${pathOf(request)}: the client went away before sending the whole request`);
      return;
    }
    const payload = errorPayload(error, `HTTP ${request.method} request`, context.reporting);
    if (!response.headersSent) sendJson(response, 500, { status: "error", ...payload });
    else response.destroy();
  }
}

async function handleApi(request: IncomingMessage, response: ServerResponse, url: URL, method: string, context: HttpContext): Promise<void> {
  const path = url.pathname;
  if (method === "OPTIONS") {
    response.writeHead(204, { ...CORS_HEADERS, ...closedIfBodyUnread(request) }).end();
    return;
  }
  if (path === "/api/health") {
    if (method !== "GET" && method !== "HEAD") return methodNotAllowed(response, "GET, HEAD, OPTIONS", CORS_HEADERS);
    return sendJson(response, 200, { status: "ok" }, CORS_HEADERS);
  }
  if (path === "/api/sync") {
    return sendJson(response, 426, { status: "error", code: "MISUSE", message: "/api/sync is the WebSocket endpoint: connect with a WebSocket client." }, { Upgrade: "websocket", ...CORS_HEADERS });
  }
  if (path.startsWith(STORAGE_PREFIX)) return handleStorage(request, response, url, method, context.engines);
  const kind = Object.hasOwn(ONE_SHOT, path) ? ONE_SHOT[path as keyof typeof ONE_SHOT] : path.startsWith(RUN_PREFIX) ? "run" : undefined;
  if (!kind) {
    return sendJson(response, 404, { status: "error", code: "NOT_FOUND", message: `Unknown endpoint ${path}. The API has /api/query, /api/mutation, /api/action, /api/run/<module>/<function>, /api/storage/…, /api/health and /api/sync.` }, CORS_HEADERS);
  }
  if (method !== "POST") {
    // A call endpoint: the body in the call-error shape (Convex's fields too), as the docs' table says.
    return sendCallError(response, { code: "MISUSE", message: "Method not allowed; use POST, OPTIONS." }, 405, { Allow: "POST, OPTIONS" });
  }
  const runPath = kind === "run" ? runFunctionPath(path) : undefined;
  if (runPath?.ok === false) return sendCallError(response, { code: "UNKNOWN_FUNCTION", message: runPath.error });
  const format = url.searchParams.get("format");
  if (format !== null && format !== "json") return sendCallError(response, { code: "INVALID_ARGUMENT", message: unknownFormat(format) });
  const body = await readBody(request);
  if (body === null) return sendCallError(response, { code: "LIMIT_EXCEEDED", message: `The request body is larger than ${MAX_HTTP_BODY_BYTES} bytes.` }, 413);
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    return sendCallError(response, { code: "INVALID_ARGUMENT", message: "The request body is not valid UTF-8: send JSON encoded as UTF-8." });
  }
  const call = parseCall(text, runPath?.path);
  if (!call.ok) return sendCallError(response, { code: "INVALID_ARGUMENT", message: call.error });
  if (malformedBearer(request)) {
    return sendCallError(response, { code: "UNAUTHENTICATED", message: 'The Authorization header must be "Bearer <token>" with one token and no spaces in it; leave the header out to call signed out.' });
  }
  // Checked again: close() may have begun while the body was arriving.
  if (refusedWhileClosing(response, context)) return;
  const caller: Caller = { token: bearerToken(request), fromClient: true, request: callerRequestOf(request), kind: "http" };
  let type: "query" | "mutation" | "action" | undefined;
  try {
    if (caller.token && !(await context.engines.current.tokenResolves(caller))) {
      return sendCallError(response, { code: "UNAUTHENTICATED", message: "The auth token was not accepted: it is invalid, expired or revoked. Sign in again to get a new one." });
    }
    // /api/run does not say the type: the registry does, and internal functions are missing to
    // it as to the other endpoints. Should a deploy swap the engine before the call runs, the
    // new one checks the type again (WRONG_FUNCTION_TYPE if it changed), as for any call.
    type = kind === "run" ? context.engines.current.functions.typeOf(call.path, { fromClient: true }) : kind;
    const value = await run(type, call.path, call.args, caller, context.engines);
    sendJson(response, 200, { status: "success", value: convertToJson(value), logLines: [] }, CORS_HEADERS);
  } catch (error) {
    sendCallError(response, errorPayload(error, `${type ?? "function"} ${call.path} (HTTP)`, context.reporting));
  }
}

/** `/api/run/lib/messages/list` → `lib/messages:list`: the last segment is the function, the ones before it the module. */
function runFunctionPath(path: string): { ok: true; path: string } | { ok: false; error: string } {
  const usage = `Name the function in the URL as /api/run/<module path>/<function>, e.g. /api/run/messages/list for "messages:list".`;
  let segments: string[];
  try {
    segments = path.slice(RUN_PREFIX.length).split("/").map(decodeURIComponent);
  } catch {
    return { ok: false, error: `${path} is not a valid URL path (a bad percent-encoding). ${usage}` };
  }
  if (segments.some((segment) => segment.length === 0)) return { ok: false, error: `${path} has an empty path segment. ${usage}` };
  // One segment is a module's default export, as the path "messages" is elsewhere.
  const name = segments.length === 1 ? segments[0]! : `${segments.slice(0, -1).join("/")}:${segments.at(-1)!}`;
  return { ok: true, path: name };
}

function unknownFormat(format: unknown): string {
  return `"format" must be "json", the only value format served (got ${JSON.stringify(format)}); leave it out or send "json".`;
}

/**
 * Each call first learns the commits other processes made before the request came
 * (`catchUpWithOthers`): a client that wrote through another process reads its write here. A
 * mutation that writes would be checked against those commits anyway when it commits; one that
 * only reads would not, and would answer from before them.
 */
function run(kind: "query" | "mutation" | "action", path: string, args: Value, caller: Caller, engines: EngineSwitch): Promise<Value> {
  switch (kind) {
    case "query":
      return engines.use(async (engine) => {
        await engine.catchUpWithOthers();
        return engine.runQuery(path, args, caller);
      });
    case "mutation":
      return engines.mutate(async (engine) => {
        await engine.catchUpWithOthers();
        return (await engine.runMutation(path, args, caller)).value;
      });
    case "action":
      return engines.use(async (engine) => {
        await engine.catchUpWithOthers();
        return engine.runAction(path, args, caller);
      });
    default:
      return kind satisfies never;
  }
}

/** The call in a request body; `urlPath` is the function named by an `/api/run/…` URL, which the body then leaves out. */
function parseCall(text: string, urlPath?: string): { ok: true; path: string; args: Value } | { ok: false; error: string } {
  const shape = urlPath === undefined ? '{ "path": "module:function", "args": { ... } }' : '{ "args": { ... } }';
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { ok: false, error: `The request body must be JSON: ${shape}.` };
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) return { ok: false, error: `The request body must be a JSON object: ${shape}.` };
  const { args, format } = body as { args?: unknown; format?: unknown };
  const path = urlPath ?? (body as { path?: unknown }).path;
  if (format !== undefined && format !== "json") return { ok: false, error: unknownFormat(format) };
  if (typeof path !== "string" || path.length === 0 || path.length > PROTOCOL_LIMITS.maxPathLength) {
    const what = urlPath === undefined ? `"path" must be a function path like "messages:send"` : "The function named in the URL must be a path like /api/run/messages/send";
    return { ok: false, error: `${what} (at most ${PROTOCOL_LIMITS.maxPathLength} characters).` };
  }
  try {
    return { ok: true, path, args: args === undefined ? {} : convertFromJson(args as JSONValue, "args") };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}

/** Runs an `httpAction` route; false if no route matches the path. */
async function handleRoute(request: IncomingMessage, response: ServerResponse, url: URL, method: string, context: HttpContext): Promise<boolean> {
  const router = context.router!;
  const route = router.match(method, url.pathname);
  if (!route) {
    const allowed = router.methodsFor(url.pathname);
    if (allowed.length === 0) return false;
    if (method === "OPTIONS") {
      response.writeHead(204, { ...CORS_HEADERS, "Access-Control-Allow-Methods": [...allowed, "OPTIONS"].join(", "), ...closedIfBodyUnread(request) }).end();
    } else {
      // HEAD is served wherever GET is (as GET without the body), so Allow names it too.
      methodNotAllowed(response, allowed.flatMap((one) => (one === "GET" ? ["GET", "HEAD"] : [one])).join(", "));
    }
    return true;
  }
  const body = method === "GET" || method === "HEAD" ? undefined : await readBody(request);
  if (body === null) {
    sendError(response, { code: "LIMIT_EXCEEDED", message: `The request body is larger than ${MAX_HTTP_BODY_BYTES} bytes.` }, 413);
    return true;
  }
  // Checked again: close() may have begun while the body was arriving.
  if (refusedWhileClosing(response, context)) return true;
  // A Host header that is no authority ("bad host") is the client's mistake, not a server error.
  // Only the host of it: a Request cannot be built from a URL with credentials ("user:pw@host").
  const host = URL.canParse(`http://${request.headers.host}`) ? new URL(`http://${request.headers.host}`).host : "";
  const scheme = (context.trustProxy && forwardedScheme(request)) || "http";
  const origin = `${scheme}://${host || "localhost"}`;
  const webRequest = new Request(new URL(`${origin}${url.pathname}${url.search}`), {
    method,
    headers: toHeaders(request),
    ...(body === undefined ? {} : { body: new Uint8Array(body) }),
  });
  const caller: Caller = { token: bearerToken(request), fromClient: true, request: callerRequestOf(request), kind: "http" };
  let answer: unknown;
  try {
    answer = await context.engines.use((engine) =>
      engine.runHttpAction(`HTTP action ${method} ${url.pathname}`, caller, (ctx) => route.handler.handler(ctx as unknown as GenericActionCtx, webRequest)));
  } catch (error) {
    sendError(response, errorPayload(error, `HTTP action ${method} ${url.pathname}`, context.reporting));
    return true;
  }
  const served = servable(answer);
  if (typeof served === "string") {
    const misuse = walkinError("MISUSE", `The HTTP action for ${method} ${url.pathname} ${served}`);
    sendError(response, errorPayload(misuse, "HTTP action", context.reporting), 500);
    return true;
  }
  await writeResponse(served.answer, response, method, served.decoded);
  return true;
}

/**
 * The Response an HTTP action returned, ready to send (`decoded`: see `decodedByFetch`), or
 * what is wrong with it, found before any header goes out:
 *  - a Response made by another copy of the Fetch API (the `undici` package's fetch, which an
 *    app imports for its proxy agents) is a Response all the same, of another class: it is
 *    rebuilt as a global one, its body passed on unread;
 *  - a body the handler already read (or holds a reader of) cannot be sent: written anyway,
 *    the client got a 200 cut off after the headers, and the log no word of which route or why.
 */
function servable(answer: unknown): { answer: Response; decoded: boolean } | string {
  if (!(answer instanceof Response) && !isForeignResponse(answer)) {
    return `returned ${answer === null ? "null" : typeof answer}; it must return a Response, e.g. new Response("ok").`;
  }
  const fetched: FetchResponse = answer;
  if (fetched.bodyUsed || fetched.body?.locked) {
    return "returned a Response whose body was already read: a body can be read once. Return a new Response with what you read, e.g. new Response(text, { status: upstream.status, headers: upstream.headers }).";
  }
  const decoded = decodedByFetch(fetched);
  if (fetched instanceof Response) return { answer: fetched, decoded };
  return { answer: new Response(fetched.body, { status: fetched.status, statusText: fetched.statusText, headers: fetched.headers }), decoded };
}

/** What the server reads of a Response, of the global Fetch API or another one. */
type FetchResponse = Pick<Response, "status" | "statusText" | "type" | "bodyUsed" | "body" | "headers">;

/** A Response of another Fetch implementation: its shape, with a body the global Response can take over. */
function isForeignResponse(value: unknown): value is FetchResponse {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Partial<Record<keyof FetchResponse, unknown>>;
  const headers = candidate.headers as Partial<Headers> | undefined;
  return (
    typeof candidate.status === "number" &&
    typeof candidate.statusText === "string" &&
    typeof candidate.type === "string" &&
    typeof candidate.bodyUsed === "boolean" &&
    (candidate.body === null || candidate.body instanceof ReadableStream) &&
    typeof headers?.get === "function" &&
    typeof headers.forEach === "function"
  );
}

/**
 * The scheme the client used, as the proxy in front says it (`X-Forwarded-Proto`), or null.
 * Behind a proxy that ends TLS the server itself is reached over plain http, so without this an
 * HTTP action's `request.url` said `http://` to an app building links or OAuth return URLs from
 * it. The last entry, as for `X-Forwarded-For` (`clientAddress`): the one the proxy next to the
 * server wrote; only `http` and `https` are taken.
 */
function forwardedScheme(request: IncomingMessage): "http" | "https" | null {
  const header = request.headers["x-forwarded-proto"];
  const last = (Array.isArray(header) ? header.join(",") : (header ?? "")).split(",").pop()?.trim().toLowerCase();
  return last === "http" || last === "https" ? last : null;
}

/** The content codings Node's fetch() decodes (undici; zstd only where zlib has it). */
const FETCH_DECODES = new Set(["gzip", "x-gzip", "deflate", "br", ...(typeof (zlib as { createZstdDecompress?: unknown }).createZstdDecompress === "function" ? ["zstd"] : [])]);

/**
 * Whether `answer` came straight from `fetch()` (type "basic" or "cors"; a constructed Response
 * is "default") with a body fetch has already decoded: its Content-Encoding and Content-Length
 * still describe the upstream's bytes, not the body. `return await fetch(upstream)` is the
 * usual proxy in an HTTP action; passed on as they are, those headers make the client decode
 * the body a second time and fail. An encoding fetch does not decode leaves the body as it was.
 */
function decodedByFetch(answer: Pick<Response, "type" | "headers">): boolean {
  const encoding = answer.headers.get("content-encoding");
  if (answer.type === "default" || encoding === null) return false;
  return encoding.split(",").every((coding) => FETCH_DECODES.has(coding.trim().toLowerCase()));
}

async function writeResponse(answer: Response, response: ServerResponse, method: string, decoded: boolean): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  answer.headers.forEach((value, name) => {
    if (name === "set-cookie") return;
    if (decoded && (name === "content-encoding" || name === "content-length")) return;
    headers[name] = value;
  });
  const cookies = answer.headers.getSetCookie();
  if (cookies.length > 0) headers["set-cookie"] = cookies;
  // Over a "connection" header of the app's own: the rule of unreadBody.ts holds for every answer.
  if (bodyLeftUnread(response.req)) headers["connection"] = "close";
  response.writeHead(answer.status, answer.statusText || undefined, headers);
  if (method === "HEAD" || answer.body === null) {
    void answer.body?.cancel().catch(() => {});
    response.end();
    return;
  }
  // Piped, not read whole first: a streaming body (server-sent events, a large export) reaches
  // the client as it is produced, and a client that leaves cancels the stream instead of
  // leaving it to be read into memory for ever.
  // Either side can end the pipeline early, and each then destroys the other, so which one
  // failed is told by which came first: the client leaving closes the response before the
  // stream is destroyed (and cancelled), a stream that fails (the handler's bug) errors before
  // the pipeline destroys the response. Only the latter is worth a log line.
  const body = Readable.fromWeb(answer.body as WebReadableStream);
  let first: "client" | "stream" | undefined;
  response.once("close", () => (first ??= "client"));
  body.once("error", () => (first ??= "stream"));
  try {
    await pipeline(body, response);
  } catch (error) {
    if (first === "client") return; // the client went away: the stream was cancelled
    throw error; // headers are out: handleHttp logs it and cuts the connection
  }
}

/** The client aborted the request before its body arrived: nobody is left to answer. */
class ClientGone extends Error {}

function pathOf(request: IncomingMessage): string {
  return (requestUrl(request)?.pathname ?? "(invalid URL)").slice(0, 200);
}

/**
 * The request's URL. A request-target is a path, so it is put after the origin as it is:
 * `new URL("//evil/page", base)` would read `evil` as a host and route `//evil/page` as `/page`.
 */
export function requestUrl(request: IncomingMessage): URL | null {
  const target = request.url ?? "/";
  const text = target.startsWith("/") ? `http://localhost${target}` : target;
  return URL.canParse(text, "http://localhost") ? new URL(text, "http://localhost") : null;
}

/** The body, or null once it exceeds the limit (the rest is not read); rejects with ClientGone if aborted. */
function readBody(request: IncomingMessage): Promise<Buffer | null> {
  const declared = Number(request.headers["content-length"] ?? 0);
  if (declared > MAX_HTTP_BODY_BYTES) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_HTTP_BODY_BYTES) {
        request.removeAllListeners("data");
        request.pause();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    request.on("end", () => resolve(size > MAX_HTTP_BODY_BYTES ? null : Buffer.concat(chunks)));
    request.on("error", (error) => reject(request.readableAborted || request.destroyed ? new ClientGone(error.message) : error));
    request.on("close", () => {
      if (!request.complete) reject(new ClientGone("aborted"));
    });
  });
}

function bearerToken(request: IncomingMessage): string | null {
  return bearerTokenIn(request.headers.authorization);
}

/** An Authorization header that starts like a Bearer token but is not `Bearer <token>`. */
function malformedBearer(request: IncomingMessage): boolean {
  const header = request.headers.authorization;
  return header !== undefined && /^Bearer(\s|$)/i.test(header) && bearerToken(request) === null;
}

function toHeaders(request: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  return headers;
}

const STATUS_BY_CODE: Partial<Record<WalkinErrorCode, number>> = {
  UNKNOWN_FUNCTION: 404,
  UNAUTHENTICATED: 401,
  RATE_LIMITED: 429,
  LIMIT_EXCEEDED: 400,
  INTERNAL: 500,
};

function sendError(response: ServerResponse, error: ErrorPayload, status?: number, headers: Record<string, string> = {}): void {
  sendJson(response, status ?? STATUS_BY_CODE[error.code as WalkinErrorCode] ?? 400, { status: "error", ...error }, { ...CORS_HEADERS, ...headers });
}

/**
 * An error answer of a function call: Walk-in's `code`, `message` and `data`, and the same
 * under the names Convex's HTTP API documents (`errorMessage`, `errorData`, `logLines`), so
 * that code written against it (`if (body.status === "error") throw new Error(body.errorMessage)`)
 * needs no change. Log lines stay in the server's log, so the list is empty.
 */
function sendCallError(response: ServerResponse, error: ErrorPayload, status?: number, headers?: Record<string, string>): void {
  const convex = { errorMessage: error.message, ...(error.data === undefined ? {} : { errorData: error.data }), logLines: [] };
  sendError(response, { ...error, ...convex }, status, headers);
}

/**
 * Once `close()` has begun, a request on a connection kept alive from before must not start
 * work on an engine about to close (close() would wait for it, or the engine close under it):
 * it gets 503 with `Connection: close`, so the client's next request opens a new connection
 * (to this server once restarted, or another one). The code is DISCONNECTED, the one a client
 * gets when it cannot reach the server: the call did not run and may be sent again.
 */
function refusedWhileClosing(response: ServerResponse, context: HttpContext): boolean {
  if (!context.closing?.()) return false;
  const message = "The server is shutting down; the request was not run. Send it again once the server is back.";
  sendCallError(response, { code: "DISCONNECTED", message }, 503, { Connection: "close" });
  return true;
}

function methodNotAllowed(response: ServerResponse, allow: string, extra: Record<string, string> = {}): void {
  sendJson(response, 405, { status: "error", code: "MISUSE", message: `Method not allowed; use ${allow}.` }, { Allow: allow, ...extra });
}

/** A JSON answer; with the request's body left unread it closes the connection (unreadBody.ts), whatever `headers` say. */
export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), ...headers, ...closedIfBodyUnread(response.req) });
  response.end(text);
}


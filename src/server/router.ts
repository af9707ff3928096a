/**
 * HTTP routes of an app: `functions/http.ts` default-exports an `httpRouter()` whose routes the
 * Walk-in server serves on its own port, next to the sync WebSocket and the `/api/*` endpoints.
 *
 * ```ts
 * // functions/http.ts
 * import { httpRouter, httpAction } from "walkin/server";
 * const http = httpRouter();
 * http.route({
 *   path: "/webhook",
 *   method: "POST",
 *   handler: httpAction(async (ctx, request) => {
 *     await ctx.runMutation(internal.events.record, { body: await request.text() });
 *     return new Response(null, { status: 204 });
 *   }),
 * });
 * export default http;
 * ```
 *
 * This module only describes routes; the transport (`walkin/transport`) runs them, giving each
 * handler an action ctx whose caller carries the request's `Authorization: Bearer` token.
 * `/api` and everything under it is reserved for Walk-in itself.
 */
import { walkinError } from "../values/errors.js";
import type { AnyDataModel } from "./dataModel.js";
import type { GenericActionCtx } from "./registration.js";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS";
/** Convex's name for `HttpMethod`. */
export type RoutableMethod = HttpMethod;
/** The methods a route may have, under Convex's name (code that lists or checks them imports it). */
export const ROUTABLE_HTTP_METHODS: readonly HttpMethod[] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const METHODS = ROUTABLE_HTTP_METHODS;

const ACTION_BRAND = Symbol.for("walkin.httpAction");
const ROUTER_BRAND = Symbol.for("walkin.httpRouter");

/** An HTTP handler made by `httpAction`. */
export interface PublicHttpAction {
  readonly [ACTION_BRAND]: true;
  readonly handler: (ctx: GenericActionCtx<AnyDataModel>, request: Request) => Promise<Response>;
}

/**
 * Wraps a handler for an HTTP route. It gets an action ctx (`runQuery`, `runMutation`,
 * `runAction`, `auth`, `scheduler`) and the web-standard `Request`, and returns a `Response`.
 *
 * @example
 * export const hello = httpAction(async (_ctx, request) => new Response(`hi ${new URL(request.url).searchParams.get("name")}`));
 */
export function httpAction(handler: (ctx: GenericActionCtx<AnyDataModel>, request: Request) => Promise<Response>): PublicHttpAction {
  if (typeof handler !== "function") {
    throw walkinError("MISUSE", "httpAction() takes an async function (ctx, request) => Response. Did you pass the handler's result instead of the handler?");
  }
  return Object.freeze({ [ACTION_BRAND]: true as const, handler });
}

export function isHttpAction(value: unknown): value is PublicHttpAction {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[ACTION_BRAND] === true;
}

export type RouteSpec =
  | { path: string; method: HttpMethod; handler: PublicHttpAction }
  | { pathPrefix: string; method: HttpMethod; handler: PublicHttpAction };

/** A route as registered: exactly one of `path` / `pathPrefix`. */
export interface Route {
  readonly path?: string;
  readonly pathPrefix?: string;
  readonly method: HttpMethod;
  readonly handler: PublicHttpAction;
}

/**
 * The HTTP routes of an app. Exact paths win over prefixes; among prefixes the longest wins.
 * Mistakes (a reserved path, a duplicate route, a handler not made by `httpAction`) throw a
 * `MISUSE` error when the route is defined, not when a request arrives.
 */
/**
 * Whether Walk-in's own API answers `path` (the sync socket, one-shot calls, health). The one
 * exception is `/api/auth/*`, left to app routes so that walkin/auth's OAuth callbacks live
 * beside the API under one origin.
 */
export function isReservedApiPath(path: string): boolean {
  return (path === "/api" || path.startsWith("/api/")) && !path.startsWith("/api/auth/");
}

export class HttpRouter {
  readonly [ROUTER_BRAND] = true;
  private readonly exact = new Map<string, Route>();
  private readonly prefixes: Route[] = [];

  route(spec: RouteSpec): void {
    const given = spec as Partial<Route> & { method?: unknown; handler?: unknown };
    const method = given.method;
    if (typeof method !== "string" || !METHODS.includes(method as HttpMethod)) {
      throw walkinError("MISUSE", `http.route(): method must be one of ${METHODS.join(", ")}; received ${JSON.stringify(method)}.`);
    }
    if (!isHttpAction(given.handler)) {
      throw walkinError("MISUSE", "http.route(): handler must be made by httpAction(async (ctx, request) => new Response(...)). Did you forget to wrap it?");
    }
    const hasPath = given.path !== undefined;
    if (hasPath === (given.pathPrefix !== undefined)) {
      throw walkinError("MISUSE", "http.route() takes exactly one of path (an exact path) or pathPrefix (a path ending in /).");
    }
    const where = (hasPath ? given.path : given.pathPrefix) as unknown;
    if (typeof where !== "string" || !where.startsWith("/")) {
      throw walkinError("MISUSE", `http.route(): ${hasPath ? "path" : "pathPrefix"} must be a string starting with "/"; received ${JSON.stringify(where)}.`);
    }
    if (isReservedApiPath(where)) {
      throw walkinError("MISUSE", `http.route(): "${where}" is reserved: Walk-in serves /api/* itself (only /api/auth/* is left to walkin/auth's routes). Choose another path, e.g. "/webhooks${where.slice(4) || "/"}".`);
    }
    const route: Route = hasPath
      ? { path: where, method: method as HttpMethod, handler: given.handler }
      : { pathPrefix: where, method: method as HttpMethod, handler: given.handler };
    if (hasPath) {
      const key = `${method} ${where}`;
      if (this.exact.has(key)) throw walkinError("MISUSE", `http.route(): ${key} is already routed. Each path and method may have one handler.`);
      this.exact.set(key, route);
      return;
    }
    if (!where.endsWith("/")) {
      throw walkinError("MISUSE", `http.route(): pathPrefix must end with "/" (it matches every path under it); use "${where}/", or path for one exact path.`);
    }
    if (this.prefixes.some((r) => r.method === method && r.pathPrefix === where)) {
      throw walkinError("MISUSE", `http.route(): ${method} ${where}* is already routed. Each prefix and method may have one handler.`);
    }
    this.prefixes.push(route);
    this.prefixes.sort((a, b) => b.pathPrefix!.length - a.pathPrefix!.length);
  }

  /** The route serving `method` on `path`, or null (what the server runs). */
  match(method: string, path: string): Route | null {
    // HEAD is GET without the body (which the server leaves out), as Convex routes it.
    if (method === "HEAD") method = "GET";
    const exact = this.exact.get(`${method} ${path}`);
    if (exact) return exact;
    return this.prefixes.find((r) => r.method === method && path.startsWith(r.pathPrefix!)) ?? null;
  }

  /**
   * Convex's `lookup`: `[handler, method, routed path]` for a request path and method (HEAD as
   * GET), the routed path of a prefix being `"/prefix/*"`; null when nothing is routed.
   */
  lookup(path: string, method: HttpMethod | "HEAD"): Readonly<[PublicHttpAction, HttpMethod, string]> | null {
    const route = this.match(method, path);
    return route ? [route.handler, route.method, route.path ?? `${route.pathPrefix}*`] : null;
  }

  /** The methods routed on `path` (for 405 answers and CORS preflights). */
  methodsFor(path: string): HttpMethod[] {
    return METHODS.filter((method) => this.match(method, path) !== null);
  }

  /**
   * Convex's `getRoutes`: every route as `[path, method, handler]`, a prefix's path being
   * `"/prefix/*"`; exact paths first (by path, then method), then prefixes (by method, then prefix).
   */
  getRoutes(): Array<Readonly<[string, HttpMethod, PublicHttpAction]>> {
    const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    const exact = [...this.exact.values()].sort((a, b) => byText(a.path!, b.path!) || byText(a.method, b.method));
    const prefixes = [...this.prefixes].sort((a, b) => byText(a.method, b.method) || byText(a.pathPrefix!, b.pathPrefix!));
    return [...exact.map((r) => [r.path!, r.method, r.handler] as const), ...prefixes.map((r) => [`${r.pathPrefix}*`, r.method, r.handler] as const)];
  }
}

/** Creates the router `functions/http.ts` default-exports. */
export function httpRouter(): HttpRouter {
  return new HttpRouter();
}

/** True for a router, even one made by another copy of the package. */
export function isHttpRouter(value: unknown): value is HttpRouter {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[ROUTER_BRAND] === true;
}

/**
 * `t.fetch(path, init)`: a request to the app's HTTP routes (`functions/http.ts`'s default
 * `httpRouter()`), run in-process as the server runs them, as convex-test's `t.fetch` does: the
 * route's `httpAction` gets a `Request` and its ctx, with the identity of `t.withIdentity` (or
 * the token of `t.withToken`, or the request's own `Authorization: Bearer` token, as the server
 * reads it), and the test gets the `Response` it returned.
 *
 * What the server's routing adds, t.fetch adds too: HEAD runs the GET route and drops the body;
 * an OPTIONS preflight of a routed path without an OPTIONS route answers 204 with the CORS
 * headers; a path routed for other methods only answers 405 with `Allow`; a path routed for
 * none 404.
 * Unlike the server, a handler that throws makes `t.fetch` reject with its error (the server
 * would answer it as a JSON error), so that the test sees what failed and where.
 */
import type { Caller, Engine } from "../engine/engine.js";
import type { Modules } from "../engine/functions.js";
import { isHttpRouter, type HttpRouter } from "../server/router.js";
import type { GenericActionCtx } from "../server/registration.js";
import { bearerTokenIn, callerRequestOfFetch } from "../transport/callerRequest.js";
import { CORS_HEADERS } from "../transport/http.js";
import { walkinError } from "../values/index.js";

export async function testFetch(engine: Engine, modules: Modules, caller: Caller, origin: string, path: unknown, init?: RequestInit): Promise<Response> {
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw walkinError("MISUSE", `t.fetch takes the path of one of the app's HTTP routes, starting with "/", e.g. t.fetch("/webhook", { method: "POST", body }); got ${JSON.stringify(path) ?? typeof path}.`);
  }
  const router = routerOf(modules);
  const request = new Request(new URL(path, origin), init);
  const url = new URL(request.url);
  const route = router.match(request.method, url.pathname);
  if (!route) {
    const routed = router.methodsFor(url.pathname);
    // A browser's CORS preflight of a routed path, answered as the server answers it (http.ts).
    if (request.method === "OPTIONS" && routed.length > 0) {
      return new Response(null, { status: 204, headers: { ...CORS_HEADERS, "Access-Control-Allow-Methods": [...routed, "OPTIONS"].join(", ") } });
    }
    const allowed = routed.flatMap((one) => (one === "GET" ? ["GET", "HEAD"] : [one]));
    if (allowed.length > 0) return new Response(`${request.method} is not routed on ${url.pathname}; its methods: ${allowed.join(", ")}.`, { status: 405, headers: { Allow: allowed.join(", ") } });
    return new Response(`No HTTP route for ${request.method} ${url.pathname} in functions/http.ts.`, { status: 404 });
  }
  const what = `HTTP action ${request.method} ${url.pathname}`;
  const answer: unknown = await engine.runHttpAction(what, callerOf(caller, request), (ctx) =>
    route.handler.handler(ctx as unknown as GenericActionCtx, request),
  );
  if (!(answer instanceof Response)) {
    throw walkinError("MISUSE", `The ${what} returned ${answer === null ? "null" : typeof answer}; it must return a Response, e.g. new Response("ok").`);
  }
  if (request.method !== "HEAD") return answer;
  return new Response(null, { status: answer.status, statusText: answer.statusText, headers: answer.headers });
}

/** The app's router: the default export of its `http` module, as `walkin dev` serves it. */
function routerOf(modules: Modules): HttpRouter {
  const exported = (modules["http"] as Record<string, unknown> | undefined)?.["default"];
  if (isHttpRouter(exported)) return exported;
  const found = modules["http"] === undefined ? "there is no http module among the test's modules" : "the http module's default export is not an httpRouter()";
  throw walkinError(
    "MISUSE",
    `t.fetch runs the app's HTTP routes, but ${found}. Export them from functions/http.ts (const http = httpRouter(); ...; export default http) ` +
      `and pass that module too: walkinTest(schema, import.meta.glob("./**/*.ts")) or walkinTest(schema, { http, ... }).`,
  );
}

/** Who the route runs as: the test's identity or token, else the request's bearer token, as the server reads it. */
function callerOf(caller: Caller, request: Request): Caller {
  const bearer = bearerTokenIn(request.headers.get("authorization"));
  const token = caller.identity || caller.token || bearer === null ? {} : { token: bearer };
  return { ...caller, ...token, fromClient: true, request: callerRequestOfFetch(request, "127.0.0.1"), kind: "http" };
}

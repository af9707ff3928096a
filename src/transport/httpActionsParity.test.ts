/**
 * HTTP actions as a Convex app uses them, with only its imports changed: routing edge cases,
 * request bodies, odd request-targets, failures, auth and the scheduler inside a handler, and
 * the `HttpRouter` methods (`lookup`, `getRoutes`) with Convex's signatures.
 */
import { createServer } from "node:http";
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { makeFunctionReference } from "../server/api.js";
import { QueryImpl } from "../engine/query.js";
import { httpAction, httpRouter } from "../server/router.js";
import { WalkinError } from "../values/index.js";
import { startHarness, type Harness } from "./fixtures/harness.js";
import { rawHttp } from "./fixtures/rawHttp.js";

let harness: Harness | null = null;
afterEach(async () => {
  await harness?.dispose();
  harness = null;
});

const text = (body: string, init?: ResponseInit) => httpAction(async () => new Response(body, init));
const echoPath = httpAction(async (_ctx, request) => new Response(new URL(request.url).pathname));

function url(path: string): string {
  return `${harness!.server.url}${path}`;
}

/** Sends raw bytes (HTTP/1.0 requests, so the answer is not chunked) and resolves with the raw answer. */
const raw = (payload: string) => rawHttp(harness!.server.port, payload);

const statusOf = (answer: string) => Number(answer.split(" ")[1]);
const bodyOf = (answer: string) => answer.slice(answer.indexOf("\r\n\r\n") + 4);

describe("HttpRouter as Convex's", () => {
  it("lookup(path, method) returns [handler, method, routed path], HEAD routed as GET", () => {
    const http = httpRouter();
    const exact = text("exact");
    const prefix = text("prefix");
    http.route({ path: "/profile", method: "GET", handler: exact });
    http.route({ pathPrefix: "/profile/", method: "GET", handler: prefix });
    // Convex: http.lookup("/profile/abc", "GET") returns [getProfile, "GET", "/profile/*"].
    expect(http.lookup("/profile/abc", "GET")).toEqual([prefix, "GET", "/profile/*"]);
    expect(http.lookup("/profile", "HEAD")).toEqual([exact, "GET", "/profile"]);
    expect(http.lookup("/profile", "POST")).toBeNull();
    expect(http.lookup("/other", "GET")).toBeNull();
  });

  it("getRoutes() lists [path, method, handler] tuples, prefixes as `prefix*`", () => {
    const http = httpRouter();
    const a = text("a");
    const b = text("b");
    http.route({ pathPrefix: "/files/", method: "GET", handler: b });
    http.route({ path: "/hook", method: "POST", handler: a });
    expect(http.getRoutes()).toEqual([
      ["/hook", "POST", a],
      ["/files/*", "GET", b],
    ]);
  });
});

describe("routing", () => {
  it("overlapping prefixes registered in any order: the longest wins, per method; an exact path is not a prefix of itself plus /", async () => {
    const http = httpRouter();
    http.route({ pathPrefix: "/", method: "GET", handler: text("root") });
    http.route({ pathPrefix: "/a/b/", method: "GET", handler: text("ab") });
    http.route({ pathPrefix: "/a/", method: "GET", handler: text("a") });
    http.route({ pathPrefix: "/a/b/", method: "POST", handler: text("ab post") });
    http.route({ path: "/a/b", method: "GET", handler: text("exact ab") });
    harness = await startHarness({ http });
    const get = async (path: string, init?: RequestInit) => (await fetch(url(path), init)).text();
    expect(await get("/a/b/x/y")).toBe("ab");
    expect(await get("/a/b/")).toBe("ab");
    expect(await get("/a/b")).toBe("exact ab");
    expect(await get("/a/bc")).toBe("a");
    expect(await get("/ab")).toBe("root");
    expect(await get("/a/b/x", { method: "POST", body: "" })).toBe("ab post");
    // A POST outside /a/b/ is routed for GET only (by "/" at least): 405, not another handler.
    const post = await fetch(url("/a/x"), { method: "POST", body: "" });
    expect([post.status, post.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
  });

  it("methods no route can have (TRACE, a made-up one) on a routed path are refused, and the server goes on", async () => {
    const http = httpRouter();
    http.route({ path: "/x", method: "GET", handler: text("x") });
    harness = await startHarness({ http });
    for (const method of ["TRACE", "PROPFIND", "PURGE"]) {
      const answer = await raw(`${method} /x HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
      expect([method, statusOf(answer)]).toEqual([method, 405]);
    }
    // CONNECT is Node's own business (no "connect" listener: the socket is closed), not a crash.
    expect(await raw("CONNECT localhost:1 HTTP/1.1\r\nHost: localhost:1\r\n\r\n")).toBe("");
    expect(await (await fetch(url("/x"))).text()).toBe("x");
  });

  it("encoded separators, dot segments and double slashes never reach another route or /api", async () => {
    const http = httpRouter();
    http.route({ pathPrefix: "/public/", method: "GET", handler: echoPath });
    http.route({ path: "/admin/secret", method: "GET", handler: text("SECRET") });
    harness = await startHarness({ http });
    // %2F is not a separator: the prefix route gets it, encoded as sent.
    expect(await (await fetch(url("/public/..%2Fadmin%2Fsecret"))).text()).toBe("/public/..%2Fadmin%2Fsecret");
    // Dot segments are resolved before routing (as every URL parser does), so what runs is the
    // route of the resolved path, and the handler sees that same path.
    const dots = await raw("GET /public/../admin/secret HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    expect(bodyOf(dots)).toBe("SECRET");
    const encodedDots = await raw("GET /public/%2e%2e/%2e%2e/admin/secret HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    expect(bodyOf(encodedDots)).toBe("SECRET");
    // A request-target that climbs above / stays at /.
    const above = await raw("GET /../../public/x HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    expect(bodyOf(above)).toBe("/public/x");
    // Double slashes are kept: //admin/secret is not /admin/secret.
    const doubled = await raw("GET /public//x HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    expect(bodyOf(doubled)).toBe("/public//x");
    expect((await fetch(url("//admin/secret"))).status).toBe(404);
    // A dot segment that resolves into /api reaches Walk-in's API, never the app's prefix route.
    const intoApi = await raw("GET /public/../api/health HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    expect(bodyOf(intoApi)).toContain('"status":"ok"');
  });

  it("a bad percent-encoding or an absolute-form target is routed by its path and does not crash the server", async () => {
    const http = httpRouter();
    http.route({ pathPrefix: "/p/", method: "GET", handler: echoPath });
    harness = await startHarness({ http });
    const bad = await raw("GET /p/%zz%%% HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    expect([statusOf(bad), bodyOf(bad)]).toEqual([200, "/p/%zz%%%"]);
    const absolute = await raw("GET http://elsewhere.example/p/abs HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    expect(bodyOf(absolute)).toBe("/p/abs");
    expect(harness.logs).toEqual([]);
  });
});

describe("request bodies", () => {
  it("json, formData (urlencoded and multipart), arrayBuffer, blob; a DELETE body; a body read twice fails in the handler", async () => {
    const http = httpRouter();
    http.route({ path: "/json", method: "POST", handler: httpAction(async (_ctx, r) => Response.json(await r.json())) });
    http.route({
      path: "/form",
      method: "POST",
      handler: httpAction(async (_ctx, r) => {
        const form = await r.formData();
        const file = form.get("file");
        return Response.json({ a: form.get("a"), file: file instanceof Blob ? await file.text() : null });
      }),
    });
    http.route({ path: "/bytes", method: "PUT", handler: httpAction(async (_ctx, r) => new Response(String(new Uint8Array(await r.arrayBuffer()).reduce((s, b) => s + b, 0)))) });
    http.route({ path: "/del", method: "DELETE", handler: httpAction(async (_ctx, r) => new Response(`deleted ${await r.text()}`)) });
    http.route({
      path: "/twice",
      method: "POST",
      handler: httpAction(async (_ctx, r) => {
        await r.text();
        return new Response(`again ${await r.text()}`);
      }),
    });
    harness = await startHarness({ http });
    expect(await (await fetch(url("/json"), { method: "POST", body: JSON.stringify({ x: [1, "é"] }), headers: { "content-type": "application/json" } })).json()).toEqual({ x: [1, "é"] });
    expect(await (await fetch(url("/form"), { method: "POST", body: new URLSearchParams({ a: "1 2" }) })).json()).toEqual({ a: "1 2", file: null });
    const multipart = new FormData();
    multipart.set("a", "b");
    multipart.set("file", new Blob(["file body"]), "f.txt");
    expect(await (await fetch(url("/form"), { method: "POST", body: multipart })).json()).toEqual({ a: "b", file: "file body" });
    expect(await (await fetch(url("/bytes"), { method: "PUT", body: new Uint8Array([1, 2, 250]) })).text()).toBe("253");
    expect(await (await fetch(url("/del"), { method: "DELETE", body: "it" })).text()).toBe("deleted it");
    const twice = await fetch(url("/twice"), { method: "POST", body: "once" });
    expect(twice.status).toBe(500);
    expect(harness.logs.join("\n")).toMatch(/HTTP action POST \/twice failed: TypeError/);
  });

  it("a body of exactly the limit arrives whole; a chunked body over the limit gets 413 and the server goes on", async () => {
    const http = httpRouter();
    http.route({ path: "/up", method: "POST", handler: httpAction(async (_ctx, r) => new Response(String((await r.arrayBuffer()).byteLength))) });
    harness = await startHarness({ http });
    const exact = await fetch(url("/up"), { method: "POST", body: new Uint8Array(8 * 1024 * 1024) });
    expect(await exact.text()).toBe(String(8 * 1024 * 1024));
    // No Content-Length (a stream): the limit is found while reading.
    const chunk = new Uint8Array(1024 * 1024);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 9) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const big = await fetch(url("/up"), { method: "POST", body: stream, duplex: "half" } as RequestInit);
    expect(big.status).toBe(413);
    expect(await (await fetch(url("/up"), { method: "POST", body: "abc" })).text()).toBe("3");
  });
});

describe("failures", () => {
  it("a thrown error is a 500 with a generic message in production and the message (no stack) in dev", async () => {
    const http = httpRouter();
    http.route({ path: "/boom", method: "GET", handler: httpAction(async () => { throw new Error("db password is hunter2"); }) });
    http.route({ path: "/str", method: "GET", handler: httpAction(async () => { throw "a string"; }) });
    http.route({ path: "/app", method: "GET", handler: httpAction(async () => { throw new WalkinError("no such order", { data: { orderId: 7 } }); }) });
    harness = await startHarness({ http });
    const prod = await fetch(url("/boom"));
    expect([prod.status, await prod.json()]).toEqual([500, { status: "error", code: "INTERNAL", message: "Internal server error" }]);
    expect((await fetch(url("/str"))).status).toBe(500);
    // An application error is part of the app's contract: it crosses with its code and data.
    const app = await fetch(url("/app"));
    expect([app.status, await app.json()]).toEqual([400, { status: "error", code: "APPLICATION", message: "no such order", data: { orderId: 7 } }]);
    await harness.dispose();
    harness = await startHarness({ http, exposeInternalErrors: true });
    const dev = await fetch(url("/boom"));
    const body = (await dev.json()) as { message: string };
    expect([dev.status, body.message]).toEqual([500, "db password is hunter2"]);
  });

  it("a statusText no HTTP line may carry is a logged 500, not a crash, and the server goes on", async () => {
    const http = httpRouter();
    http.route({ path: "/bad-status-text", method: "GET", handler: httpAction(async () => new Response("x", { statusText: "d\u00e9j\u00e0 vu \u263a" })) });
    http.route({ path: "/ok", method: "GET", handler: text("ok") });
    harness = await startHarness({ http });
    const answer = await fetch(url("/bad-status-text")).then((r) => r.status, () => "connection failed");
    expect(answer).toBe(500);
    // The Response constructor itself refuses it, so it is the handler that fails.
    expect(harness.logs.join("\n")).toMatch(/HTTP action GET \/bad-status-text failed: TypeError/);
    expect(await (await fetch(url("/ok"))).text()).toBe("ok");
  });

  it("a stream that fails after the headers cuts the connection (the client sees an error), logged, server goes on", async () => {
    const http = httpRouter();
    http.route({
      path: "/half",
      method: "GET",
      handler: httpAction(async () => {
        let step = 0;
        return new Response(
          new ReadableStream<Uint8Array>({
            pull(controller) {
              if (step++ === 0) controller.enqueue(new TextEncoder().encode("part"));
              else controller.error(new Error("stream broke"));
            },
          }),
        );
      }),
    });
    http.route({ path: "/ok", method: "GET", handler: text("ok") });
    harness = await startHarness({ http });
    // The connection is cut: before the headers arrive (they go out with the first chunk,
    // which may still be buffered when the stream fails) or while the body is read.
    const outcome = await fetch(url("/half")).then((r) => r.text().then(() => "whole body", () => "cut"), () => "cut");
    expect(outcome).toBe("cut");
    expect(harness.logs.join("\n")).toContain("stream broke");
    expect(await (await fetch(url("/ok"))).text()).toBe("ok");
  });
});

describe("proxying", () => {
  it("a Response returned straight from fetch() reaches the client readable, though fetch decoded its gzip body", async () => {
    const page = "hello ".repeat(100);
    const upstream = createServer((_request, response) => {
      const body = gzipSync(page);
      response.writeHead(200, { "content-encoding": "gzip", "content-length": body.length, "content-type": "text/plain", "x-upstream": "1" });
      response.end(body);
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}/`;
    try {
      const http = httpRouter();
      http.route({ path: "/proxy", method: "GET", handler: httpAction(async () => fetch(upstreamUrl)) });
      // A body the handler compressed itself keeps its Content-Encoding.
      http.route({ path: "/own", method: "GET", handler: httpAction(async () => new Response(gzipSync(page), { headers: { "content-encoding": "gzip" } })) });
      harness = await startHarness({ http });
      // Before: the decoded body went out under "content-encoding: gzip" and the compressed
      // length, and the client failed with "incorrect header check".
      const proxied = await fetch(url("/proxy"));
      expect([proxied.status, proxied.headers.get("x-upstream"), await proxied.text()]).toEqual([200, "1", page]);
      expect(await (await fetch(url("/own"))).text()).toBe(page);
    } finally {
      upstream.close();
    }
  });
});

describe("the ctx", () => {
  it("Authorization: Bearer reaches ctx.auth; a bad token or another scheme means signed out, and the handler still runs", async () => {
    const http = httpRouter();
    http.route({ path: "/me", method: "GET", handler: httpAction(async (ctx) => Response.json({ who: (await ctx.auth.getUserIdentity())?.subject ?? null, header: null })) });
    http.route({
      path: "/me-query",
      method: "GET",
      handler: httpAction(async (ctx) => Response.json(await ctx.runQuery(makeFunctionReference<"query">("auth:whoami"), {}))),
    });
    harness = await startHarness({ http });
    const who = async (authorization?: string, path = "/me") => {
      const response = await fetch(url(path), authorization ? { headers: { authorization } } : {});
      return [response.status, await response.json()];
    };
    expect(await who("Bearer token-ann")).toEqual([200, { who: "ann", header: null }]);
    expect(await who("bearer token-ann")).toEqual([200, { who: "ann", header: null }]);
    expect(await who("Bearer token-ann", "/me-query")).toEqual([200, "ann"]);
    // A webhook's shared secret or Basic credentials are the handler's business, not a sign-in.
    expect(await who("Bearer not-a-token")).toEqual([200, { who: null, header: null }]);
    expect(await who("Basic dXNlcjpwdw==")).toEqual([200, { who: null, header: null }]);
    expect(await who(undefined, "/me-query")).toEqual([200, null]);
  });

  it("ctx.scheduler.runAfter from an HTTP action schedules the function", async () => {
    const http = httpRouter();
    http.route({
      path: "/later",
      method: "POST",
      handler: httpAction(async (ctx, request) => {
        const id = await ctx.scheduler.runAfter(0, makeFunctionReference<"mutation">("messages:record"), { body: await request.text() });
        return Response.json({ id });
      }),
    });
    harness = await startHarness({ http });
    const answer = (await (await fetch(url("/later"), { method: "POST", body: "hello" })).json()) as { id: string };
    expect(typeof answer.id).toBe("string");
    // The fixture's engine does not run the scheduler: the job is there, pending, with its args.
    const engine = harness.engine;
    const jobs = await engine.read((txn) => new QueryImpl(txn, engine.catalog.lookup("_scheduled_functions", { system: true })!).collect());
    expect(jobs.map((job) => [job._id, job.name, job.args])).toEqual([[answer.id, "messages:record", { body: "hello" }]]);
  });
});

describe("preflights and HEAD", () => {
  it("HEAD on a prefix route runs GET and sends no body; an OPTIONS route on a prefix answers preflights under it", async () => {
    const http = httpRouter();
    http.route({ pathPrefix: "/api2/", method: "GET", handler: text("body", { headers: { "x-k": "v" } }) });
    http.route({ pathPrefix: "/api2/", method: "OPTIONS", handler: httpAction(async () => new Response(null, { status: 204, headers: { "access-control-allow-origin": "https://me.example", "access-control-allow-headers": "x-custom" } })) });
    harness = await startHarness({ http });
    const head = await fetch(url("/api2/thing"), { method: "HEAD" });
    expect([head.status, head.headers.get("x-k"), await head.text()]).toEqual([200, "v", ""]);
    const preflight = await fetch(url("/api2/thing"), { method: "OPTIONS", headers: { origin: "https://me.example", "access-control-request-method": "GET", "access-control-request-headers": "x-custom" } });
    expect([preflight.status, preflight.headers.get("access-control-allow-origin"), preflight.headers.get("access-control-allow-headers")]).toEqual([204, "https://me.example", "x-custom"]);
  });

  it("a 405 lists HEAD with GET in Allow", async () => {
    const http = httpRouter();
    http.route({ path: "/g", method: "GET", handler: text("g") });
    harness = await startHarness({ http });
    const put = await fetch(url("/g"), { method: "PUT", body: "" });
    expect([put.status, put.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
  });
});

describe("request.url behind a proxy", () => {
  const echoUrl = httpAction(async (_ctx, request) => new Response(request.url));
  const get = (headers: Record<string, string>) => fetch(url("/where?x=1"), { headers }).then((answer) => answer.text());

  it("with trustProxy, takes the scheme of the last X-Forwarded-Proto entry (https behind a proxy that ends TLS)", async () => {
    const http = httpRouter();
    http.route({ path: "/where", method: "GET", handler: echoUrl });
    harness = await startHarness({ http, limits: { trustProxy: true } });
    const host = new URL(harness.server.url).host;
    expect(await get({ "x-forwarded-proto": "https" })).toBe(`https://${host}/where?x=1`);
    // The proxy next to the server wrote the last entry; what the client sent comes before it.
    expect(await get({ "x-forwarded-proto": "https, http" })).toBe(`http://${host}/where?x=1`);
    // Anything but http or https is ignored.
    expect(await get({ "x-forwarded-proto": "javascript" })).toBe(`http://${host}/where?x=1`);
    expect(await get({})).toBe(`http://${host}/where?x=1`);
  });

  it("without trustProxy, ignores X-Forwarded-Proto (a client could claim anything)", async () => {
    const http = httpRouter();
    http.route({ path: "/where", method: "GET", handler: echoUrl });
    harness = await startHarness({ http });
    const host = new URL(harness.server.url).host;
    expect(await get({ "x-forwarded-proto": "https" })).toBe(`http://${host}/where?x=1`);
  });
});

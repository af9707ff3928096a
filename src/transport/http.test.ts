import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request as rawRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "./fixtures/harness.js";
import { MAX_HTTP_BODY_BYTES } from "./http.js";

let harness: Harness;
let staticDir: string;

beforeAll(() => {
  staticDir = mkdtempSync(join(tmpdir(), "walkin-static-"));
  mkdirSync(join(staticDir, "assets"));
  writeFileSync(join(staticDir, "index.html"), "<!doctype html><title>app</title>");
  writeFileSync(join(staticDir, "assets", "app.js"), "console.log('app')");
});
afterAll(() => rmSync(staticDir, { recursive: true, force: true }));
afterEach(async () => harness?.dispose());

async function call(path: string, body: unknown, init: RequestInit = {}) {
  const response = await fetch(`${harness.server.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(init.headers ?? {}) },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...init,
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

describe("one-shot calls", () => {
  it("runs queries, mutations and actions", async () => {
    harness = await startHarness();
    expect(await call("/api/mutation", { path: "messages:send", args: { channel: "a", body: "hey" } })).toMatchObject({ status: 200, body: { status: "success", value: 3 } });
    expect(await call("/api/query", { path: "messages:list", args: { channel: "a" } })).toMatchObject({ status: 200, body: { status: "success", value: ["hey"] } });
    expect(await call("/api/action", { path: "actions:wait", args: { ms: 1, value: "done" } })).toMatchObject({ status: 200, body: { value: "done" } });
    expect(await call("/api/query", { path: "messages:count" })).toMatchObject({ status: 200, body: { value: 1 } });
  });

  it("maps errors to statuses", async () => {
    harness = await startHarness();
    expect(await call("/api/query", { path: "messages:nope", args: {} })).toMatchObject({ status: 404, body: { status: "error", code: "UNKNOWN_FUNCTION" } });
    expect(await call("/api/query", { path: "messages:secret", args: {} })).toMatchObject({ status: 404, body: { code: "UNKNOWN_FUNCTION" } });
    expect(await call("/api/mutation", { path: "messages:record", args: { body: "x" } })).toMatchObject({ status: 404 });
    // A query called as a mutation is not "unknown": the error names what the function is.
    expect(await call("/api/mutation", { path: "messages:list", args: { channel: "a" } })).toMatchObject({
      status: 400,
      body: { code: "WRONG_FUNCTION_TYPE", message: '"messages:list" is a query, not a mutation: call it as a query (useQuery, client.query, fetchQuery, ctx.runQuery or POST /api/query).' },
    });
    // A dot where the colon goes gets a hint.
    expect(await call("/api/query", { path: "messages.list", args: {} })).toMatchObject({
      status: 404,
      body: { code: "UNKNOWN_FUNCTION", message: expect.stringContaining('did you mean "messages:list"?') },
    });
    expect(await call("/api/mutation", { path: "messages:send", args: { channel: 1, body: "x" } })).toMatchObject({ status: 400, body: { code: "INVALID_ARGUMENT" } });
    expect(await call("/api/mutation", { path: "messages:send", args: { $integer: "??" } })).toMatchObject({ status: 400, body: { code: "INVALID_ARGUMENT" } });
    expect(await call("/api/mutation", "{oops")).toMatchObject({ status: 400, body: { code: "INVALID_ARGUMENT", message: expect.stringMatching(/must be JSON/) } });
    expect(await call("/api/mutation", { args: {} })).toMatchObject({ status: 400, body: { message: expect.stringMatching(/"path" must be/) } });
    expect(await call("/api/mutation", { path: "messages:fail", args: {} })).toMatchObject({
      status: 400,
      body: { status: "error", code: "APPLICATION", message: "nope", data: { reason: "testing", n: { $integer: "AQAAAAAAAAA=" } } },
    });
    expect(await call("/api/query", { path: "messages:crash", args: {} })).toMatchObject({ status: 500, body: { code: "INTERNAL", message: "Internal server error" } });
    expect(await harness.engine.runQuery("messages:count", {})).toBe(0);
  });

  it("passes the Bearer token and refuses a token that does not resolve", async () => {
    harness = await startHarness();
    expect(await call("/api/action", { path: "actions:whoami" }, { headers: { authorization: "Bearer token-bob" } })).toMatchObject({ status: 200, body: { value: "bob" } });
    expect(await call("/api/query", { path: "auth:whoami" }, { headers: { authorization: "Bearer token-bob" } })).toMatchObject({ status: 200, body: { value: "bob" } });
    expect(await call("/api/query", { path: "auth:whoami" })).toMatchObject({ status: 200, body: { value: null } });
    expect(await call("/api/query", { path: "auth:whoami" }, { headers: { authorization: "Bearer forged" } })).toMatchObject({ status: 401, body: { code: "UNAUTHENTICATED" } });
  });

  it("refuses bodies over 8 MiB with 413, wrong methods with 405; answers health and CORS preflights", async () => {
    harness = await startHarness();
    const huge = JSON.stringify({ path: "messages:send", args: { channel: "a", body: "x".repeat(MAX_HTTP_BODY_BYTES) } });
    expect(await call("/api/mutation", huge)).toMatchObject({ status: 413, body: { code: "LIMIT_EXCEEDED" } });
    expect(await chunkedUpload("/api/mutation", MAX_HTTP_BODY_BYTES + 1024)).toBe(413);
    const get = await fetch(`${harness.server.url}/api/query`);
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST, OPTIONS");
    const health = await fetch(`${harness.server.url}/api/health`);
    expect([health.status, await health.json()]).toEqual([200, { status: "ok" }]);
    const preflight = await fetch(`${harness.server.url}/api/mutation`, {
      method: "OPTIONS",
      headers: { origin: "http://example.com", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(/Authorization/);
    expect((await call("/api/query", { path: "messages:count" })).headers.get("access-control-allow-origin")).toBe("*");
    expect((await fetch(`${harness.server.url}/api/unknown`)).status).toBe(404);
    expect((await fetch(`${harness.server.url}/api/sync`)).status).toBe(426);
    expect(await harness.engine.runQuery("messages:count", {})).toBe(0);
  });
});

describe("app routes and static files", () => {
  it("serves httpAction routes with an action ctx and the caller's token", async () => {
    harness = await startHarness();
    const response = await fetch(`${harness.server.url}/webhook?x=1`, { method: "POST", body: "ping", headers: { authorization: "Bearer token-carol" } });
    expect(response.status).toBe(201);
    expect(response.headers.get("x-route")).toBe("webhook");
    expect(await response.json()).toEqual({ stored: "ping", who: "carol" });
    expect(await harness.engine.runQuery("messages:list", { channel: "webhook" })).toEqual(["ping"]);
    expect(await (await fetch(`${harness.server.url}/files/a/b.txt`)).text()).toBe("file a/b.txt");
    const wrongMethod = await fetch(`${harness.server.url}/webhook`);
    expect([wrongMethod.status, wrongMethod.headers.get("allow")]).toEqual([405, "POST"]);
    const broken = await fetch(`${harness.server.url}/broken`);
    expect([broken.status, await broken.json()]).toEqual([500, { status: "error", code: "INTERNAL", message: "Internal server error" }]);
    expect(harness.logs.join("\n")).toContain("route exploded");
    expect((await fetch(`${harness.server.url}/nowhere`)).status).toBe(404);
  });

  it("serves static files with an SPA fallback, and nothing outside the directory", async () => {
    harness = await startHarness({ staticDir });
    const index = await fetch(`${harness.server.url}/`);
    expect([index.status, index.headers.get("content-type"), await index.text()]).toEqual([200, "text/html; charset=utf-8", "<!doctype html><title>app</title>"]);
    const js = await fetch(`${harness.server.url}/assets/app.js`);
    expect([js.status, js.headers.get("content-type")]).toEqual([200, "text/javascript; charset=utf-8"]);
    expect(await (await fetch(`${harness.server.url}/rooms/42`)).text()).toContain("<title>app</title>");
    expect((await fetch(`${harness.server.url}/assets/missing.js`)).status).toBe(404);
    expect(await rawGet("/../../../etc/passwd")).not.toContain("root:");
    expect(await rawGet("/%2e%2e/%2e%2e/etc/passwd")).not.toContain("root:");
    // Routes and the API win over static files.
    expect((await fetch(`${harness.server.url}/files/x`)).status).toBe(200);
    expect((await fetch(`${harness.server.url}/api/health`)).status).toBe(200);
  });
});

/** A GET with the path sent verbatim (fetch would normalise the dots away). */
function rawGet(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = rawRequest({ host: "127.0.0.1", port: harness.server.port, path, method: "GET" }, (res) => {
      let text = "";
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => resolve(`${res.statusCode} ${text}`));
    });
    req.on("error", reject);
    req.end();
  });
}

/** A POST without Content-Length (chunked), so only counting the bytes can enforce the limit. */
function chunkedUpload(path: string, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = rawRequest({ host: "127.0.0.1", port: harness.server.port, path, method: "POST", headers: { "transfer-encoding": "chunked" } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", (error) => ((error as NodeJS.ErrnoException).code === "EPIPE" || (error as NodeJS.ErrnoException).code === "ECONNRESET" ? undefined : reject(error)));
    const piece = Buffer.alloc(64 * 1024, "x");
    for (let sent = 0; sent < bytes; sent += piece.length) req.write(piece);
    req.end();
  });
}

describe("a request aborted mid-body", () => {
  it("is one debug line, not a stack trace; an internal error keeps its stack", async () => {
    harness = await startHarness({ logLevel: "debug" });
    const { port } = harness.server;
    await new Promise<void>((resolve) => {
      const request = rawRequest({ host: "127.0.0.1", port, method: "POST", path: "/api/mutation", headers: { "content-type": "application/json", "content-length": "1000" } });
      request.on("error", () => resolve());
      request.write('{"path":"messages:send","args":');
      setTimeout(() => request.destroy(), 50);
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(harness.logs).toEqual(["[walkin] HTTP POST /api/mutation: the client went away before sending the whole request"]);

    harness.logs.length = 0;
    expect((await fetch(`${harness.server.url}/broken`)).status).toBe(500);
    expect(harness.logs.join("\n")).toMatch(/route exploded\n\s+at /);
  });

  it("logs nothing at the default level", async () => {
    harness = await startHarness();
    await new Promise<void>((resolve) => {
      const request = rawRequest({ host: "127.0.0.1", port: harness.server.port, method: "POST", path: "/api/query", headers: { "content-length": "1000" } });
      request.on("error", () => resolve());
      request.write("{");
      setTimeout(() => request.destroy(), 50);
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(harness.logs).toEqual([]);
  });
});

/**
 * Review 5 of the transport: what an HTTP action may hand back (a Response whose body it already
 * read, a Response made by another copy of the Fetch API); requests that offer a protocol switch
 * other than WebSocket (h2c); a static file download the client abandons.
 */
import { gzipSync } from "node:zlib";
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { createServer, get } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { fetch as undiciFetch, Headers as UndiciHeaders, Response as UndiciResponse } from "undici";
import { httpAction, httpRouter } from "../server/router.js";
import { startHarness, type Harness } from "./fixtures/harness.js";

let harness: Harness | null = null;
afterEach(async () => {
  await harness?.dispose();
  harness = null;
});

const url = (path: string) => `${harness!.server.url}${path}`;

/** Writes raw bytes to the server and resolves with all it answered once it closes the connection (each test's last request says Connection: close). */
function rawHttp(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(text));
    let received = "";
    socket.on("data", (data) => (received += data.toString("utf8")));
    socket.on("error", () => {});
    socket.on("close", () => resolve(received));
    setTimeout(() => socket.destroy(), 5_000).unref();
  });
}

describe("an HTTP action's Response", () => {
  it("whose body the handler already read is a clear 500 naming the mistake, not a 200 cut off midway", async () => {
    const http = httpRouter();
    http.route({
      path: "/proxy",
      method: "GET",
      handler: httpAction(async () => {
        const upstream = new Response("upstream text");
        await upstream.text(); // read to inspect it, then returned as it is
        return upstream;
      }),
    });
    http.route({ path: "/ok", method: "GET", handler: httpAction(async () => new Response("ok")) });
    harness = await startHarness({ http, exposeInternalErrors: true });
    const answer = await fetch(url("/proxy")).then(
      async (response) => ({ status: response.status, body: (await response.json()) as { code: string; message: string } }),
      (error: Error) => ({ status: 0, body: { code: "NONE", message: `the connection was cut: ${error.message}` } }),
    );
    expect(answer.status).toBe(500);
    expect(answer.body.code).toBe("MISUSE");
    expect(answer.body.message).toMatch(/GET \/proxy.*body.*already (read|used)/);
    expect(await (await fetch(url("/ok"))).text()).toBe("ok");
  });

  it("in production is a plain 500, and the log says which route and why", async () => {
    const http = httpRouter();
    http.route({
      path: "/used",
      method: "POST",
      handler: httpAction(async (_ctx, request) => {
        const answer = new Response(request.body);
        await answer.arrayBuffer();
        return answer;
      }),
    });
    harness = await startHarness({ http });
    const response = await fetch(url("/used"), { method: "POST", body: "payload" }).catch(() => null);
    expect(response?.status).toBe(500);
    expect(await response?.json()).toMatchObject({ code: "INTERNAL", message: "Internal server error" });
    expect(harness.logs.join("\n")).toMatch(/POST \/used.*body.*already (read|used)/);
  });

  it("made by another copy of the Fetch API (the undici package) is served like the global one's", async () => {
    const http = httpRouter();
    http.route({
      path: "/made",
      method: "GET",
      handler: httpAction(async () => {
        const headers = new UndiciHeaders({ "content-type": "text/plain", "x-kind": "undici" });
        headers.append("set-cookie", "a=1");
        headers.append("set-cookie", "b=2");
        return new UndiciResponse("made by undici", { status: 201, statusText: "Made", headers }) as unknown as Response;
      }),
    });
    harness = await startHarness({ http });
    const response = await fetch(url("/made"));
    expect({
      status: response.status,
      statusText: response.statusText,
      kind: response.headers.get("x-kind"),
      cookies: response.headers.getSetCookie(),
      body: await response.text(),
    }).toEqual({ status: 201, statusText: "Made", kind: "undici", cookies: ["a=1", "b=2"], body: "made by undici" });
  });

  it("straight from the undici package's fetch() reaches the client readable, though that fetch decoded its gzip body", async () => {
    const upstream = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "text/plain", "content-encoding": "gzip" });
      response.end(gzipSync("proxied through undici"));
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const { port } = upstream.address() as { port: number };
    try {
      const http = httpRouter();
      http.route({ path: "/proxy", method: "GET", handler: httpAction(async () => (await undiciFetch(`http://127.0.0.1:${port}/`)) as unknown as Response) });
      harness = await startHarness({ http });
      const response = await fetch(url("/proxy"));
      expect([response.status, await response.text()]).toEqual([200, "proxied through undici"]);
    } finally {
      await new Promise((resolve) => upstream.close(resolve));
    }
  });

  it("a value that is no Response still gets the clear MISUSE error", async () => {
    const http = httpRouter();
    http.route({ path: "/json", method: "GET", handler: httpAction(async () => ({ status: 200, body: "not a Response" }) as unknown as Response) });
    harness = await startHarness({ http, exposeInternalErrors: true });
    const response = await fetch(url("/json"));
    expect(response.status).toBe(500);
    expect(((await response.json()) as { message: string }).message).toMatch(/must return a Response/);
  });
});

describe("a request asking to upgrade to something other than a WebSocket", () => {
  /** What `curl --http2` sends on an http:// URL: the HTTP/1.1 request, offering to switch to h2c. */
  const h2cOffer = "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n";

  it("is served as the HTTP/1.1 request it is (an app route, /api/health), the offer ignored", async () => {
    const http = httpRouter();
    http.route({ path: "/hook", method: "GET", handler: httpAction(async (_ctx, request) => new Response(`hooked ${request.headers.get("upgrade") ?? "plain"}`)) });
    harness = await startHarness({ http });
    const route = await rawHttp(harness.server.port, `GET /hook?x=1 HTTP/1.1\r\nHost: localhost\r\n${h2cOffer}Connection: close\r\n\r\n`);
    expect(route.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
    expect(route).toMatch(/hooked plain/);
    const health = await rawHttp(harness.server.port, `GET /api/health HTTP/1.1\r\nHost: localhost\r\n${h2cOffer}Connection: close\r\n\r\n`);
    expect(health.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
    expect(health).toMatch(/\{"status":"ok"\}/);
  });

  it("with a body: a one-shot call runs with it, and the connection serves the next request", async () => {
    harness = await startHarness();
    const body = JSON.stringify({ path: "messages:send", args: { channel: "h2c", body: "hello" } });
    const call = `POST /api/mutation HTTP/1.1\r\nHost: localhost\r\n${h2cOffer}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const next = "GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    const answer = await rawHttp(harness.server.port, call + next);
    expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
    expect(answer).toMatch(/"status":"success","value":5/);
    expect(answer).toMatch(/\{"status":"ok"\}/);
    const listed = await fetch(url("/api/query"), { method: "POST", body: JSON.stringify({ path: "messages:list", args: { channel: "h2c" } }) });
    expect(await listed.json()).toMatchObject({ status: "success", value: ["hello"] });
  });

  it("with a body larger than the first packet, the HTTP action reads all of it", async () => {
    const http = httpRouter();
    http.route({ path: "/size", method: "POST", handler: httpAction(async (_ctx, request) => new Response(`${(await request.arrayBuffer()).byteLength}`)) });
    harness = await startHarness({ http });
    const body = "x".repeat(300_000);
    const answer = await rawHttp(harness.server.port, `POST /size HTTP/1.1\r\nHost: localhost\r\n${h2cOffer}Connection: close\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
    expect(answer.endsWith("300000") || /\r\n300000\r\n/.test(answer)).toBe(true);
  });

  it("a WebSocket upgrade is still one: to /api/sync it connects, elsewhere it gets 404", async () => {
    harness = await startHarness();
    const client = await harness.client();
    client.send({ type: "Ping" });
    await client.waitFor((message) => message.type === "Pong");
    const elsewhere = await rawHttp(harness.server.port, "GET /hook HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    expect(elsewhere.split("\r\n")[0]).toBe("HTTP/1.1 404 Not Found");
  });
});

describe("a static file download the client abandons", () => {
  /** The descriptors this process holds open on `path` (Linux: /proc/self/fd). */
  const openOn = (path: string) =>
    readdirSync("/proc/self/fd").filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === path;
      } catch {
        return false;
      }
    }).length;

  it.runIf(process.platform === "linux")("closes the file, instead of keeping it open for ever", async () => {
    const staticDir = mkdtempSync(join(tmpdir(), "walkin-static-abandoned-"));
    const file = join(staticDir, "video.bin");
    writeFileSync(file, Buffer.alloc(48 * 1024 * 1024, 1)); // far more than the socket buffers hold
    try {
      harness = await startHarness({ staticDir });
      await new Promise<void>((resolve, reject) => {
        const request = get(url("/video.bin"), (response) => {
          response.once("data", () => {
            request.destroy(); // the visitor closed the tab after the first bytes
            resolve();
          });
        });
        request.on("error", () => {});
        request.on("timeout", () => reject(new Error("no answer")));
      });
      // The server learns of the reset within moments; the file must then be closed.
      for (let waited = 0; openOn(file) > 0 && waited < 5_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(openOn(file)).toBe(0);
      expect(await (await fetch(url("/video.bin"), { method: "HEAD" })).headers.get("content-length")).toBe(String(48 * 1024 * 1024));
    } finally {
      rmSync(staticDir, { recursive: true, force: true });
    }
  });
});

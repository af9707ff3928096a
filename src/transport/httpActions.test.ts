/** HTTP actions: routing, the Request built, the Response written back. */
import { connect } from "node:net";
import { afterEach, describe, expect, it, onTestFinished } from "vitest";
import { httpAction, httpRouter } from "../server/router.js";
import { startHarness, sleep, type Harness } from "./fixtures/harness.js";

let harness: Harness | null = null;
afterEach(async () => {
  await harness?.dispose();
  harness = null;
});

const text = (body: string, init?: ResponseInit) => httpAction(async () => new Response(body, init));

function url(path: string): string {
  return `${harness!.server.url}${path}`;
}

/** Sends raw bytes and returns the raw answer (the connection is closed by the server or after `waitMs`). */
function raw(payload: string, waitMs = 500): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(harness!.server.port, "127.0.0.1");
    let out = "";
    socket.on("data", (chunk) => (out += chunk.toString("latin1")));
    socket.on("error", reject);
    socket.on("close", () => resolve(out));
    socket.write(payload);
    setTimeout(() => socket.destroy(), waitMs);
  });
}

describe("routing", () => {
  it("exact beats prefix, longest prefix wins, per method; query strings and trailing slashes", async () => {
    const http = httpRouter();
    http.route({ pathPrefix: "/a/", method: "GET", handler: text("prefix /a/") });
    http.route({ pathPrefix: "/a/b/", method: "GET", handler: text("prefix /a/b/") });
    http.route({ path: "/a/b/c", method: "GET", handler: text("exact /a/b/c") });
    http.route({ path: "/a/b/c", method: "POST", handler: text("exact POST") });
    harness = await startHarness({ http });
    expect(await (await fetch(url("/a/b/c?x=1"))).text()).toBe("exact /a/b/c");
    expect(await (await fetch(url("/a/b/c/"))).text()).toBe("prefix /a/b/");
    expect(await (await fetch(url("/a/b/d"))).text()).toBe("prefix /a/b/");
    expect(await (await fetch(url("/a/x"))).text()).toBe("prefix /a/");
    expect(await (await fetch(url("/a/b/c"), { method: "POST", body: "" })).text()).toBe("exact POST");
    expect((await fetch(url("/a"))).status).toBe(404);
    const put = await fetch(url("/a/b/c"), { method: "PUT", body: "" });
    expect([put.status, put.headers.get("allow")]).toEqual([405, "GET, HEAD, POST"]);
  });

  it("refuses duplicate routes", () => {
    const http = httpRouter();
    http.route({ path: "/x", method: "GET", handler: text("") });
    expect(() => http.route({ path: "/x", method: "GET", handler: text("") })).toThrow(/already routed/);
    http.route({ pathPrefix: "/x/", method: "GET", handler: text("") });
    expect(() => http.route({ pathPrefix: "/x/", method: "GET", handler: text("") })).toThrow(/already routed/);
  });

  it("HEAD on a GET route runs the GET handler and sends no body (as Convex does)", async () => {
    const http = httpRouter();
    http.route({ path: "/page", method: "GET", handler: text("hello", { headers: { "x-h": "1" } }) });
    harness = await startHarness({ http });
    const head = await fetch(url("/page"), { method: "HEAD" });
    expect([head.status, head.headers.get("x-h"), await head.text()]).toEqual([200, "1", ""]);
  });

  it("a request-target starting with // is not read as a host: //evil/page is not /page", async () => {
    const http = httpRouter();
    http.route({ path: "/page", method: "GET", handler: text("page") });
    http.route({ pathPrefix: "/", method: "GET", handler: httpAction(async (_ctx, request) => new Response(`catch-all ${new URL(request.url).pathname}`)) });
    harness = await startHarness({ http });
    const answer = await raw("GET //evil/page HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    expect(answer).toContain("catch-all //evil/page");
  });
});

describe("the Request", () => {
  it("has the method, URL with query, headers and body", async () => {
    const http = httpRouter();
    http.route({
      path: "/echo",
      method: "PUT",
      handler: httpAction(async (_ctx, request) =>
        Response.json({ method: request.method, url: request.url, h: request.headers.get("x-custom"), body: await request.text() }),
      ),
    });
    harness = await startHarness({ http });
    const answer = await (await fetch(url("/echo?a=1&b=%20"), { method: "PUT", body: "héllo", headers: { "x-custom": "v" } })).json();
    expect(answer).toEqual({ method: "PUT", url: `${harness.server.url}/echo?a=1&b=%20`, h: "v", body: "héllo" });
  });

  it("a Host header with credentials is the client's mistake, not a logged 500", async () => {
    const http = httpRouter();
    http.route({ path: "/page", method: "GET", handler: text("page") });
    harness = await startHarness({ http });
    const answer = await raw("GET /page HTTP/1.1\r\nHost: user:pw@localhost\r\nConnection: close\r\n\r\n");
    expect(answer.split("\r\n")[0]).not.toMatch(/ 500 /);
    // Today: "[walkin] HTTP GET request failed: TypeError: Request cannot be constructed from a URL that includes credentials…"
    expect(harness.logs).toEqual([]);
  });

  it("bodies over the limit get 413", async () => {
    const http = httpRouter();
    http.route({ path: "/up", method: "POST", handler: httpAction(async (_ctx, r) => new Response(String((await r.arrayBuffer()).byteLength))) });
    harness = await startHarness({ http });
    const big = await fetch(url("/up"), { method: "POST", body: new Uint8Array(8 * 1024 * 1024 + 1) });
    expect(big.status).toBe(413);
    const ok = await fetch(url("/up"), { method: "POST", body: new Uint8Array(1000) });
    expect(await ok.text()).toBe("1000");
  });
});

describe("the Response", () => {
  it("status, statusText, several set-cookie headers", async () => {
    const http = httpRouter();
    http.route({
      path: "/c",
      method: "GET",
      handler: httpAction(async () => {
        const headers = new Headers({ "x-a": "1" });
        headers.append("set-cookie", "a=1; Path=/");
        headers.append("set-cookie", "b=2; Path=/; HttpOnly");
        return new Response("teapot", { status: 418, statusText: "I'm a teapot", headers });
      }),
    });
    harness = await startHarness({ http });
    const answer = await fetch(url("/c"));
    expect([answer.status, answer.statusText, answer.headers.getSetCookie(), await answer.text()]).toEqual([418, "I'm a teapot", ["a=1; Path=/", "b=2; Path=/; HttpOnly"], "teapot"]);
  });

  it("a handler that throws gets a 500 without the message or stack, logged", async () => {
    const http = httpRouter();
    http.route({ path: "/boom", method: "GET", handler: httpAction(async () => { throw new Error("secret detail"); }) });
    harness = await startHarness({ http });
    const answer = await fetch(url("/boom"));
    const body = await answer.text();
    expect(answer.status).toBe(500);
    expect(body).not.toContain("secret detail");
    expect(body).not.toContain("at ");
    expect(harness.logs.join("\n")).toMatch(/secret detail\n\s+at /);
  });

  it("a handler returning a non-Response gets a clear 500 in dev, a plain one in production (the log says why)", async () => {
    const http = httpRouter();
    http.route({ path: "/bad", method: "GET", handler: httpAction((async () => "oops") as never) });
    harness = await startHarness({ http, exposeInternalErrors: true });
    const answer = await fetch(url("/bad"));
    expect(answer.status).toBe(500);
    expect(await answer.json()).toMatchObject({ code: "MISUSE", message: expect.stringContaining("must return a Response") });
    await harness.dispose();
    harness = await startHarness({ http });
    const inProduction = await fetch(url("/bad"));
    expect(inProduction.status).toBe(500);
    expect(await inProduction.json()).toEqual({ status: "error", code: "INTERNAL", message: "Internal server error" });
    expect(harness.logs.join("\n")).toContain("must return a Response");
  });

  it("streams a streaming body: the first chunk arrives before the stream ends", async () => {
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const http = httpRouter();
    http.route({
      path: "/stream",
      method: "GET",
      handler: httpAction(async () => {
        const encoder = new TextEncoder();
        const body = new ReadableStream<Uint8Array>({
          async start(controller) {
            controller.enqueue(encoder.encode("first\n"));
            await done;
            controller.enqueue(encoder.encode("last\n"));
            controller.close();
          },
        });
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      }),
    });
    harness = await startHarness({ http });
    try {
      const first = await Promise.race([
        fetch(url("/stream")).then(async (response) => {
          const reader = response.body!.getReader();
          const { value } = await reader.read();
          void reader.cancel();
          return new TextDecoder().decode(value);
        }),
        sleep(1500).then(() => "nothing within 1.5 s"),
      ]);
      expect(first).toBe("first\n");
    } finally {
      finish();
    }
  });

  it("a client that disconnects mid-stream stops the stream (it is cancelled) and the server keeps serving", async () => {
    let cancelled = false;
    let stopped = false;
    let pulls = 0;
    const http = httpRouter();
    http.route({
      path: "/forever",
      method: "GET",
      handler: httpAction(async () => {
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            pulls++;
            await sleep(5);
            if (stopped) throw new Error("test over");
            controller.enqueue(new TextEncoder().encode("tick\n"));
          },
          cancel() {
            cancelled = true;
          },
        });
        return new Response(body);
      }),
    });
    http.route({ path: "/ok", method: "GET", handler: text("ok") });
    harness = await startHarness({ http });
    onTestFinished(() => {
      stopped = true;
    });
    const controller = new AbortController();
    const response = fetch(url("/forever"), { signal: controller.signal }).then(() => "headers", () => "aborted");
    await sleep(300);
    controller.abort();
    await sleep(200);
    // The headers came at once (the body streams), the stream was cancelled when the client went
    // away, and the server stopped reading it.
    expect({ response: await response, cancelled }).toEqual({ response: "headers", cancelled: true });
    const before = pulls;
    await sleep(100);
    expect(pulls).toBe(before);
    expect(await (await fetch(url("/ok"))).text()).toBe("ok");
  });
});

describe("CORS preflights", () => {
  it("go to the app's OPTIONS route when it has one, otherwise get a permissive answer", async () => {
    const http = httpRouter();
    http.route({ path: "/p", method: "POST", handler: text("posted") });
    http.route({ path: "/p", method: "OPTIONS", handler: httpAction(async () => new Response(null, { status: 204, headers: { "access-control-allow-origin": "https://app.example" } })) });
    http.route({ path: "/q", method: "POST", handler: text("posted") });
    harness = await startHarness({ http });
    const mine = await fetch(url("/p"), { method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "POST" } });
    expect([mine.status, mine.headers.get("access-control-allow-origin")]).toEqual([204, "https://app.example"]);
    const auto = await fetch(url("/q"), { method: "OPTIONS", headers: { origin: "https://x.example", "access-control-request-method": "POST" } });
    expect([auto.status, auto.headers.get("access-control-allow-methods")]).toEqual([204, "POST, OPTIONS"]);
  });
});

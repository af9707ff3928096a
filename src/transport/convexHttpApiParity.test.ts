/**
 * Code written for Convex's HTTP API must work here with only its URL or import changed: raw
 * `fetch` calls in the shapes Convex documents (`format: "json"`, `errorMessage`, `errorData`,
 * `logLines`, `POST /api/run/<module>/<function>`), and `ConvexHttpClient` from
 * `walkin/browser`, both against one real server on loopback.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ConvexHttpClient, WalkinHttpClient } from "../browser/index.js";
import { anyApi, makeFunctionReference, mutation, query } from "../server/index.js";
import { WalkinError, isWalkinError, v } from "../values/index.js";
import { modules, openEngine } from "./fixtures/app.js";
import { startHarness, type Harness } from "./fixtures/harness.js";

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.dispose();
  harness = undefined;
});

/** The fixture app and a module with the values JSON cannot hold, one folder down. */
const withValues = {
  ...modules,
  "lib/values": {
    echo: query({
      args: { n: v.int64(), b: v.bytes() },
      handler: async (_ctx, { n, b }) => ({ next: n + 1n, bytes: b, size: b.byteLength }),
    }),
    refuse: mutation({
      args: { limit: v.int64() },
      handler: async (_ctx, { limit }) => {
        throw new WalkinError("over the limit", { data: { limit, bytes: new Uint8Array([1, 2]).buffer } });
      },
    }),
  },
};

/** Starts the server; returns its address. */
async function serve(): Promise<string> {
  harness = await startHarness({ engine: await openEngine(":memory:", { modules: withValues }) });
  return harness.server.url;
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${harness!.server.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function rejection(promise: Promise<unknown>): Promise<WalkinError> {
  return promise.then(
    () => expect.fail("the call succeeded"),
    (error: unknown) => {
      expect(isWalkinError(error)).toBe(true);
      return error as WalkinError;
    },
  );
}

describe("Convex's HTTP API over fetch", () => {
  it("answers in Convex's shapes, next to Walk-in's fields", async () => {
    await serve();
    expect(await post("/api/mutation", { path: "messages:send", args: { channel: "a", body: "hey" }, format: "json" })).toEqual({
      status: 200,
      body: { status: "success", value: 3, logLines: [] },
    });
    expect(await post("/api/query", { path: "messages:list", args: { channel: "a" }, format: "json" })).toEqual({
      status: 200,
      body: { status: "success", value: ["hey"], logLines: [] },
    });
    // An application error: Convex's errorMessage and errorData carry the message and data.
    const failed = await post("/api/mutation", { path: "messages:fail", args: {}, format: "json" });
    expect(failed).toEqual({
      status: 400,
      body: {
        status: "error",
        code: "APPLICATION",
        message: "nope",
        data: { reason: "testing", n: { $integer: "AQAAAAAAAAA=" } },
        errorMessage: "nope",
        errorData: { reason: "testing", n: { $integer: "AQAAAAAAAAA=" } },
        logLines: [],
      },
    });
    // An error without data has no errorData, as in Convex.
    const unknown = await post("/api/query", { path: "messages:nope", args: {}, format: "json" });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ status: "error", code: "UNKNOWN_FUNCTION", errorMessage: unknown.body.message, logLines: [] });
    expect(unknown.body).not.toHaveProperty("errorData");
    // Refusals before the function runs have the same shape.
    const badArgs = await post("/api/query", { path: "messages:list", args: { $integer: "??" } });
    expect(badArgs.body).toMatchObject({ code: "INVALID_ARGUMENT", errorMessage: badArgs.body.message, logLines: [] });
  });

  it("answers a wrong method on a call endpoint in the same error shape, with Allow", async () => {
    const url = await serve();
    for (const path of ["/api/query", "/api/run/messages/list"]) {
      const response = await fetch(`${url}${path}`);
      expect(response.status).toBe(405);
      expect(response.headers.get("allow")).toBe("POST, OPTIONS");
      const body = (await response.json()) as Record<string, unknown>;
      expect(body).toMatchObject({ status: "error", code: "MISUSE", errorMessage: body.message, logLines: [] });
    }
  });

  it("accepts format json, in the body or the URL, and refuses any other format", async () => {
    await serve();
    expect((await post("/api/query?format=json", { path: "messages:count", args: {} })).body).toMatchObject({ status: "success", value: 0 });
    const inBody = await post("/api/query", { path: "messages:count", args: {}, format: "convex_encoded_json" });
    expect(inBody).toMatchObject({ status: 400, body: { code: "INVALID_ARGUMENT", errorMessage: expect.stringContaining('"format" must be "json"') } });
    const inUrl = await post("/api/query?format=xml", { path: "messages:count", args: {} });
    expect(inUrl).toMatchObject({ status: 400, body: { code: "INVALID_ARGUMENT", message: expect.stringContaining('(got "xml")') } });
  });

  it("runs /api/run/<module>/<function> as the registry's type says", async () => {
    await serve();
    expect(await post("/api/run/messages/send", { args: { channel: "a", body: "hi" }, format: "json" })).toEqual({
      status: 200,
      body: { status: "success", value: 2, logLines: [] },
    });
    expect(await post("/api/run/messages/list", { args: { channel: "a" }, format: "json" })).toMatchObject({ status: 200, body: { value: ["hi"] } });
    expect(await post("/api/run/actions/wait", { args: { ms: 1, value: "done" } })).toMatchObject({ status: 200, body: { value: "done" } });
    expect(await post("/api/run/lib/values/echo", { args: { n: { $integer: "AQAAAAAAAAA=" }, b: { $bytes: "AQI=" } } })).toMatchObject({
      status: 200,
      body: { value: { next: { $integer: "AgAAAAAAAAA=" }, bytes: { $bytes: "AQI=" }, size: 2 } },
    });
    expect(await post("/api/run/auth/whoami", { args: {} }, { authorization: "Bearer token-dana" })).toMatchObject({ body: { value: "dana" } });
    expect(await post("/api/run/auth/whoami", { args: {} }, { authorization: "Bearer forged" })).toMatchObject({ status: 401, body: { code: "UNAUTHENTICATED" } });
    expect(await post("/api/run/messages/fail", { args: {} })).toMatchObject({ status: 400, body: { errorMessage: "nope", errorData: { reason: "testing" } } });

    // Internal functions are missing here as on /api/query: the same answer as for a name that does not exist.
    const missing = (name: string) => ({
      status: 404,
      body: { code: "UNKNOWN_FUNCTION", message: `Unknown function "messages:${name}". Module "messages" has no public function "${name}".` },
    });
    expect(await post("/api/run/messages/secret", { args: {} })).toMatchObject(missing("secret"));
    expect(await post("/api/run/messages/record", { args: { body: "x" } })).toMatchObject(missing("record"));
    expect(await post("/api/run/messages/nope", { args: {} })).toMatchObject(missing("nope"));
    expect(await post("/api/run/lib/secrets/read", { args: {} })).toMatchObject({ status: 404, body: { message: expect.stringContaining('There is no module "lib/secrets"') } });
    expect(await post("/api/run/messages/", { args: {} })).toMatchObject({
      status: 404,
      body: { code: "UNKNOWN_FUNCTION", message: expect.stringContaining("/api/run/messages/list") },
    });
    expect(await post("/api/run/messages/count", { args: {}, format: "xml" })).toMatchObject({ status: 400, body: { code: "INVALID_ARGUMENT" } });
    expect((await fetch(`${harness!.server.url}/api/run/messages/count`)).status).toBe(405);
    expect(await harness!.engine.runQuery("messages:list", { channel: "webhook" })).toEqual([]);
  });
});

describe("ConvexHttpClient from walkin/browser", () => {
  it("is WalkinHttpClient under Convex's name, and refuses a bad URL when constructed", () => {
    expect(ConvexHttpClient).toBe(WalkinHttpClient);
    expect(() => new ConvexHttpClient("127.0.0.1:3210")).toThrow(/not a URL|scheme/);
    expect(() => new ConvexHttpClient("not a url")).toThrow('WalkinHttpClient: "not a url" is not a URL: pass the server\'s address, like "http://127.0.0.1:3210"');
    expect(() => new ConvexHttpClient("ws://127.0.0.1:3210")).toThrow(/scheme ws:; HTTP calls need http:\/\/ or https:\/\//);
    expect(() => new ConvexHttpClient("https://api.example.com/?x=1")).toThrow(/query or fragment/);
    expect(new ConvexHttpClient("https://api.example.com/app/").url).toBe("https://api.example.com/app");
  });

  it("runs queries, mutations and actions; bigint and bytes round-trip", async () => {
    const url = await serve();
    const client = new ConvexHttpClient(`${url}/`);
    expect(await client.mutation(anyApi.messages!.send!, { channel: "a", body: "hello" })).toBe(5);
    expect(await client.query(anyApi.messages!.list!, { channel: "a" })).toEqual(["hello"]);
    expect(await client.action(anyApi.actions!.wait!, { ms: 1, value: "ok" })).toBe("ok");
    const echo = await client.query(makeFunctionReference<"query">("lib/values:echo"), { n: 2n ** 62n, b: new Uint8Array([0, 255, 7]).buffer });
    expect(echo).toEqual({ next: 2n ** 62n + 1n, bytes: new Uint8Array([0, 255, 7]).buffer, size: 3 });
    expect((echo as { bytes: unknown }).bytes).toBeInstanceOf(ArrayBuffer);
  });

  it("throws WalkinErrors: application data reaches .data, unknown functions say so", async () => {
    const url = await serve();
    const client = new ConvexHttpClient(url);
    const refused = await rejection(client.mutation(makeFunctionReference<"mutation">("lib/values:refuse"), { limit: 10n }));
    expect([refused.code, refused.message]).toEqual(["APPLICATION", "over the limit"]);
    expect(refused.data).toEqual({ limit: 10n, bytes: new Uint8Array([1, 2]).buffer });
    const unknown = await rejection(client.query(makeFunctionReference<"query">("messages:nope")));
    expect(unknown.code).toBe("UNKNOWN_FUNCTION");
    expect(unknown.message).toContain('Unknown function "messages:nope"');
    const internal = await rejection(client.query(makeFunctionReference<"query">("messages:secret")));
    expect(internal.code).toBe("UNKNOWN_FUNCTION");
    const wrongType = await rejection(client.mutation(makeFunctionReference<"mutation">("messages:list"), { channel: "a" }));
    expect(wrongType.code).toBe("WRONG_FUNCTION_TYPE");
    const crashed = await rejection(client.query(makeFunctionReference<"query">("messages:crash")));
    expect([crashed.code, crashed.message]).toEqual(["INTERNAL", "Internal server error"]);
  });

  it("sends the token from setAuth to ctx.auth until clearAuth", async () => {
    const url = await serve();
    const client = new ConvexHttpClient(url);
    expect(await client.query(anyApi.auth!.whoami!)).toBeNull();
    client.setAuth("token-erin");
    expect(await client.query(anyApi.auth!.whoami!)).toBe("erin");
    expect(await client.action(anyApi.actions!.whoami!)).toBe("erin");
    client.clearAuth();
    expect(await client.query(anyApi.auth!.whoami!)).toBeNull();
    expect(await new ConvexHttpClient(url, { auth: "token-finn" }).query(anyApi.auth!.whoami!)).toBe("finn");
    const forged = new ConvexHttpClient(url);
    forged.setAuth("forged");
    expect((await rejection(forged.query(anyApi.auth!.whoami!))).code).toBe("UNAUTHENTICATED");
    expect(() => forged.setAuth("")).toThrow(/non-empty string/);
  });

  it("runs one client's mutations in the order they were called", async () => {
    const url = await serve();
    const client = new ConvexHttpClient(url);
    // The first takes longer: without the queue, the second would commit first.
    const first = client.mutation(anyApi.log!.append!, { n: 1, delayMs: 60 });
    const failing = client.mutation(anyApi.messages!.fail!);
    const second = client.mutation(anyApi.log!.append!, { n: 2, delayMs: 0 });
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    expect((await rejection(failing)).message).toBe("nope");
    expect(await harness!.engine.runQuery("log:all", {})).toEqual([1, 2]);
  });

  it("rejects with DISCONNECTED when the server cannot be reached", async () => {
    // Nothing listens on port 1 of the loopback address.
    const gone = new ConvexHttpClient("http://127.0.0.1:1");
    const error = await rejection(gone.query(anyApi.messages!.count!));
    expect(error.code).toBe("DISCONNECTED");
    expect(error.message).toContain("could not reach http://127.0.0.1:1/api/query");
  });

  it("says so when the URL answers with something that is not Walk-in (a proxy's error page)", async () => {
    const proxy = createServer((_request, response) => response.writeHead(502, { "content-type": "text/html" }).end("<h1>Bad gateway</h1>"));
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const error = await rejection(new ConvexHttpClient(url).query(anyApi.messages!.count!));
      expect([error.code, error.message]).toEqual(["INTERNAL", `query messages:count: ${url}/api/query answered 502 without a JSON body. Is this the Walk-in server's address?`]);
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});

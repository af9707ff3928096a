/**
 * Review of walkin/nextjs: a page render waits for these calls, so a server that never answers
 * must end in a clear error after a time limit, and a server that cannot be reached must say
 * why (the network error's code), against real sockets on loopback.
 */
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { anyApi } from "../server/index.js";
import { fetchAction, fetchMutation, fetchQuery, preloadQuery } from "./index.js";

const listRef = anyApi.tasks!.list!;

/** Servers opened by a test, closed after it whatever happened. */
const toClose: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const close of toClose.splice(0)) await close();
});

/** A TCP server that accepts connections, reads what comes and never answers. */
async function silentServer(): Promise<{ url: string; requests: () => number; firstRequest: Promise<void> }> {
  const sockets = new Set<Socket>();
  let requests = 0;
  let requested!: () => void;
  const firstRequest = new Promise<void>((resolve) => (requested = resolve));
  const server: TcpServer = createTcpServer((socket) => {
    sockets.add(socket);
    socket.once("data", () => {
      requests++;
      requested();
    });
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  toClose.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests, firstRequest };
}

/** An HTTP server that sends its status and headers, then part of a JSON body, then nothing more. */
async function stallingServer(): Promise<string> {
  const server: HttpServer = createHttpServer((_request, response) => {
    response.writeHead(200, { "Content-Type": "application/json" });
    response.write('{"status":"success","val');
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  toClose.push(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The address of a port nothing listens on (a server opened, then closed). */
async function closedPort(): Promise<string> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

describe("a server that accepts the connection and never answers", () => {
  it("ends the call with DISCONNECTED naming the address and the limit, instead of hanging the render", async () => {
    const { url } = await silentServer();
    const error = await fetchQuery(listRef, {}, { url, timeoutMs: 50 }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "DISCONNECTED",
      message: `fetchQuery(tasks:list): ${url}/api/query did not answer within 50 ms (timeoutMs). Check that the server is up and not overloaded, or pass { timeoutMs } to wait longer.`,
    });
    const preload = await preloadQuery(listRef, {}, { url, timeoutMs: 50 }).catch((e: unknown) => e);
    expect(preload).toMatchObject({ code: "DISCONNECTED", message: expect.stringContaining("preloadQuery(tasks:list)") });
  });

  it("says a mutation or an action that timed out may still have run", async () => {
    const { url } = await silentServer();
    const mutation = await fetchMutation(anyApi.tasks!.add!, {}, { url, timeoutMs: 50 }).catch((e: unknown) => e);
    expect(mutation).toMatchObject({ code: "DISCONNECTED", message: expect.stringContaining("/api/mutation did not answer within 50 ms (timeoutMs). It may still have run") });
    const action = await fetchAction(anyApi.tasks!.run!, {}, { url, timeoutMs: 50 }).catch((e: unknown) => e);
    expect(action).toMatchObject({ code: "DISCONNECTED", message: expect.stringContaining("It may still have run") });
  });

  it("gives up after 30 seconds when no timeoutMs is given", async () => {
    const server = await silentServer();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const settled = fetchQuery(listRef, {}, { url: server.url }).catch((e: unknown) => e);
    // Not vi.waitFor: with fake timers it moves the clock while it waits.
    await server.firstRequest;
    await vi.advanceTimersByTimeAsync(29_999);
    let done = false;
    void settled.then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await settled).toMatchObject({ code: "DISCONNECTED", message: expect.stringContaining("did not answer within 30 s") });
  });

  it("also bounds reading the answer: headers sent, then a body that never ends", async () => {
    const url = await stallingServer();
    const error = await fetchQuery(listRef, {}, { url, timeoutMs: 50 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "DISCONNECTED", message: expect.stringContaining(`${url}/api/query did not answer within 50 ms`) });
  });
});

describe("the timeoutMs option", () => {
  it("refuses what is not a positive number of milliseconds, before sending anything", async () => {
    const { url, requests } = await silentServer();
    for (const timeoutMs of [0, -1, Number.NaN, "5000"]) {
      const error = await fetchQuery(listRef, {}, { url, timeoutMs: timeoutMs as number }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "MISUSE", message: expect.stringMatching(/^fetchQuery: timeoutMs must be a positive number of milliseconds \(Infinity to wait as long as the server takes\), got /) });
    }
    expect(requests()).toBe(0);
  });

  it("takes Infinity to wait as long as the server takes (no timer that would fire at once)", async () => {
    const url = await stallingServer();
    const controller = new AbortController();
    // The caller's own fetch still ends the call; with Infinity nothing else does.
    const abortable: typeof fetch = (input, init) => {
      setTimeout(() => controller.abort(), 50);
      return globalThis.fetch(input, { ...init, signal: AbortSignal.any([init!.signal!, controller.signal]) });
    };
    const error = await fetchQuery(listRef, {}, { url, timeoutMs: Infinity, fetch: abortable }).catch((e: unknown) => e);
    // Ended by the caller's abort, not reported as the time limit.
    expect(error).toMatchObject({ code: "INTERNAL" });
    expect((error as Error).message).not.toContain("did not answer within");
  });
});

describe("a server that cannot be reached", () => {
  it("says why: the network error's code, not only 'fetch failed'", async () => {
    const url = await closedPort();
    const error = await fetchQuery(listRef, {}, { url }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "DISCONNECTED", message: expect.stringContaining(`could not reach ${url}/api/query (fetch failed: connect ECONNREFUSED`) });
  });

  it("names a code the failure carries even when its message does not", async () => {
    // Stands in for the outside world: a DNS failure as undici reports it.
    const dnsFailure: typeof fetch = () => Promise.reject(new TypeError("fetch failed", { cause: Object.assign(new Error("lookup failed"), { code: "ENOTFOUND" }) }));
    const error = await fetchMutation(anyApi.tasks!.add!, {}, { url: "http://walkin.example", fetch: dnsFailure }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "DISCONNECTED", message: expect.stringContaining("could not reach http://walkin.example/api/mutation (fetch failed: ENOTFOUND: lookup failed)") });
  });
});

/**
 * `WalkinHttpClient`'s time limits (`timeoutMs` for queries and mutations, `actionTimeoutMs`
 * for actions, browser/deadline.ts): a server that accepts the request and never answers ends
 * the call with DISCONNECTED naming the call, the limit and the option to raise it, instead of
 * hanging the caller; a slow answer within the limit is waited for; a queued mutation's limit
 * starts when it is sent. Real sockets on loopback.
 */
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { anyApi } from "../server/index.js";
import { ConvexHttpClient, WalkinHttpClient } from "./index.js";
import { holdingServer as startHoldingServer } from "./fixtures/holdingServer.js";

const listRef = anyApi.tasks!.list!;
const addRef = anyApi.tasks!.add!;
const runRef = anyApi.tasks!.run!;

const toClose: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const close of toClose.splice(0)) await close();
});

/** A server that holds every answer (fixtures/holdingServer.ts), closed after the test. */
const holdingServer = () => startHoldingServer((close) => toClose.push(close));

describe("a server that accepts the request and never answers", () => {
  it("ends a query with DISCONNECTED naming the call, the address, the limit and how to raise it", async () => {
    const { url } = await holdingServer();
    const client = new WalkinHttpClient(url, { timeoutMs: 50 });
    const error = await client.query(listRef, {}).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "DISCONNECTED",
      message:
        `query tasks:list: ${url}/api/query did not answer within 50 ms (timeoutMs). Check that the server is up and not overloaded, ` +
        "or create the client with a longer limit: new WalkinHttpClient(url, { timeoutMs }).",
    });
  });

  it("says a mutation or an action that timed out may still have run; an action's limit is actionTimeoutMs", async () => {
    const { url } = await holdingServer();
    const client = new ConvexHttpClient(url, { timeoutMs: 50, actionTimeoutMs: 60 });
    const mutation = await client.mutation(addRef, {}).catch((e: unknown) => e);
    expect(mutation).toMatchObject({ code: "DISCONNECTED", message: expect.stringContaining("/api/mutation did not answer within 50 ms (timeoutMs). It may still have run on the server.") });
    const action = await client.action(runRef, {}).catch((e: unknown) => e);
    expect(action).toMatchObject({
      code: "DISCONNECTED",
      message: expect.stringContaining("/api/action did not answer within 60 ms (actionTimeoutMs). It may still have run on the server. Check that the server is up and not overloaded, or create the client with a longer limit: new WalkinHttpClient(url, { actionTimeoutMs })."),
    });
  });

  it("bounds calls made with the admin key too", async () => {
    const { url } = await holdingServer();
    const client = new WalkinHttpClient(url, { timeoutMs: 50 });
    client.setAdminAuth("admin-key-for-the-http-client-0123456789");
    const error = await client.query(listRef, {}).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "DISCONNECTED", message: expect.stringContaining(`admin query tasks:list: ${url}/api/admin/functions/run did not answer within 50 ms`) });
  });

  it("gives up on a query after 30 seconds by default (client made as Convex code makes it)", async () => {
    const server = await holdingServer();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const client = new ConvexHttpClient(server.url);
    let settled = false;
    const call = client
      .query(listRef, {})
      .catch((e: unknown) => e)
      .finally(() => (settled = true));
    await server.requested();
    await vi.advanceTimersByTimeAsync(29_999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await call).toMatchObject({ code: "DISCONNECTED", message: expect.stringContaining("did not answer within 30 s (timeoutMs)") });
  });

  it("lets an action run past 30 seconds by default, and gives up after 11 minutes", async () => {
    const server = await holdingServer();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const client = new WalkinHttpClient(server.url);
    let settled = false;
    const call = client
      .action(runRef, {})
      .catch((e: unknown) => e)
      .finally(() => (settled = true));
    await server.requested();
    await vi.advanceTimersByTimeAsync(11 * 60_000 - 1);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await call).toMatchObject({ code: "DISCONNECTED", message: expect.stringContaining("did not answer within 11 min (actionTimeoutMs)") });
  });
});

describe("a server that answers slowly, within the limit", () => {
  it("is waited for, and no timer is left once the answer is in", async () => {
    const server = await holdingServer();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const client = new WalkinHttpClient(server.url);
    const call = client.query(listRef, {});
    await server.requested();
    await vi.advanceTimersByTimeAsync(29_999);
    server.answer(["slow", "but in time"]);
    expect(await call).toEqual(["slow", "but in time"]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("starts a queued mutation's limit when it is sent, not while it waits behind the one before it", async () => {
    const server = await holdingServer();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const client = new WalkinHttpClient(server.url);
    const first = client.mutation(addRef, { n: 1 });
    const second = client.mutation(addRef, { n: 2 });
    await server.requested(1);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(server.bodies).toHaveLength(1); // the second waits in the queue
    server.answer("first");
    expect(await first).toBe("first");
    await server.requested(2);
    // 40 s after it was called, 20 s after it was sent: within its 30 s.
    await vi.advanceTimersByTimeAsync(20_000);
    server.answer("second");
    expect(await second).toBe("second");
    expect(server.bodies.map((body) => body.args)).toEqual([{ n: 1 }, { n: 2 }]);
  });
});

describe("the timeoutMs and actionTimeoutMs options", () => {
  it("refuse what is not a positive number of milliseconds when the client is made", () => {
    for (const [option, value] of [["timeoutMs", 0], ["timeoutMs", "30000"], ["actionTimeoutMs", -1], ["actionTimeoutMs", Number.NaN]] as const) {
      expect(() => new WalkinHttpClient("http://127.0.0.1:1", { [option]: value as number })).toThrow(
        expect.objectContaining({
          code: "MISUSE",
          message: expect.stringMatching(new RegExp(`^new WalkinHttpClient\\(url, options\\): ${option} must be a positive number of milliseconds \\(Infinity to wait as long as the server takes\\), got `)),
        }),
      );
    }
  });

  it("take Infinity to wait as long as the server takes (no timer that would fire at once)", async () => {
    const server = await holdingServer();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const client = new WalkinHttpClient(server.url, { timeoutMs: Infinity });
    const call = client.query(listRef, {});
    await server.requested();
    // setTimeout fires a delay past 2^31 - 1 ms at once: there must be no timer at all.
    expect(vi.getTimerCount()).toBe(0);
    server.answer("waited");
    expect(await call).toBe("waited");
  });
});

describe("a server that cannot be reached", () => {
  it("is named with the network error's code, not only 'fetch failed'", async () => {
    const probe = createTcpServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const error = await new WalkinHttpClient(url).query(listRef, {}).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "DISCONNECTED", message: expect.stringContaining(`query tasks:list: could not reach ${url}/api/query (fetch failed: connect ECONNREFUSED`) });
  });
});

describe("Node's own fetch limit on an answer's headers (5 minutes)", () => {
  it("is named, with how to raise it, rather than reported as a server that cannot be reached", async () => {
    // What Node 20's fetch rejects with once 300 s pass without the answer's headers (checked
    // against a real server that never answers: "fetch failed", cause UND_ERR_HEADERS_TIMEOUT).
    const headersTimeout = () =>
      Promise.reject(new TypeError("fetch failed", { cause: Object.assign(new Error("Headers Timeout Error"), { code: "UND_ERR_HEADERS_TIMEOUT" }) }));
    const client = new WalkinHttpClient("http://127.0.0.1:9", { fetch: headersTimeout as typeof fetch });
    const error = await client.action(runRef, {}).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "DISCONNECTED" });
    expect((error as Error).message).toContain("action tasks:run: Node's fetch stopped waiting for http://127.0.0.1:9/api/action after its own limit of 5 minutes");
    expect((error as Error).message).toContain("it may still have run on the server");
    expect((error as Error).message).toContain("headersTimeout: 0");
  });
});

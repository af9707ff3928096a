/**
 * `walkin/react`'s `fetchQuery` and `preloadQuery` have the same time limit as `walkin/nextjs`'s
 * (browser/deadline.ts): a server that accepts the request and never answers ends the call
 * with DISCONNECTED naming the function, the limit and `timeoutMs`, instead of hanging the
 * render; one that answers slowly but within the limit is waited for. Real sockets on loopback.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { anyApi } from "../server/index.js";
import { fetchQuery, preloadQuery } from "./index.js";
import { holdingServer as startHoldingServer } from "../browser/fixtures/holdingServer.js";

const listRef = anyApi.tasks!.list!;

const toClose: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const close of toClose.splice(0)) await close();
});

/** A server that holds every answer (browser/fixtures/holdingServer.ts), closed after the test. */
const holdingServer = () => startHoldingServer((close) => toClose.push(close));

describe("walkin/react's fetchQuery and preloadQuery against a server that never answers", () => {
  it("end with DISCONNECTED naming the function, the address, the limit and how to raise it", async () => {
    const { url } = await holdingServer();
    const error = await fetchQuery(listRef, {}, { url, timeoutMs: 50 }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "DISCONNECTED",
      message: `fetchQuery(tasks:list): ${url}/api/query did not answer within 50 ms (timeoutMs). Check that the server is up and not overloaded, or pass { timeoutMs } to wait longer.`,
    });
    const preload = await preloadQuery(listRef, {}, { url, timeoutMs: 50 }).catch((e: unknown) => e);
    expect(preload).toMatchObject({ code: "DISCONNECTED", message: expect.stringMatching(/^preloadQuery\(tasks:list\): .* did not answer within 50 ms \(timeoutMs\)/) });
  });

  it("gives up after 30 seconds when no timeoutMs is given", async () => {
    const server = await holdingServer();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    let settled = false;
    const call = fetchQuery(listRef, {}, { url: server.url })
      .catch((e: unknown) => e)
      .finally(() => (settled = true));
    await server.requested();
    await vi.advanceTimersByTimeAsync(29_999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await call).toMatchObject({ code: "DISCONNECTED", message: expect.stringContaining("did not answer within 30 s (timeoutMs)") });
  });
});

describe("a server that answers slowly, within the limit", () => {
  it("is waited for, and the limit's timer is gone once the answer is in", async () => {
    const server = await holdingServer();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const call = preloadQuery(listRef, {}, { url: server.url });
    await server.requested();
    await vi.advanceTimersByTimeAsync(29_999);
    server.answer(["slow", "but in time"]);
    expect(JSON.parse((await call)._valueJSON)).toEqual(["slow", "but in time"]);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("the timeoutMs option of walkin/react's calls", () => {
  it("refuses what is not a positive number of milliseconds, before sending anything", async () => {
    const { url, bodies } = await holdingServer();
    for (const timeoutMs of [0, -5, Number.NaN, "30000"]) {
      const error = await preloadQuery(listRef, {}, { url, timeoutMs: timeoutMs as number }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "MISUSE", message: expect.stringMatching(/^preloadQuery: timeoutMs must be a positive number of milliseconds \(Infinity to wait as long as the server takes\), got /) });
    }
    expect(bodies.length).toBe(0);
  });
});

/**
 * Review 5 of the browser client, against a real server on loopback: query identity by value
 * (args that differ only in key order are one query, as in Convex), listeners that stop
 * during a callback, and optimistic updates written as async functions.
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, defineSchema, defineTable, mutation, query, type ApiFromModules } from "../server/index.js";
import { v } from "../values/index.js";
import type { Logger } from "./connection.js";
import { cleanUp, connectClient, cutNetwork, route, serveApp, until, waitForState } from "./fixtures/liveClients.js";

const schema = defineSchema({
  messages: defineTable({ channel: v.string(), body: v.string() }).index("by_channel", ["channel"]),
});
const messages = {
  list: query({
    args: { channel: v.string(), limit: v.number() },
    handler: async (ctx, { channel, limit }) =>
      (await ctx.db.query("messages").withIndex("by_channel", (q) => q.eq("channel", channel)).take(limit)).map((m) => m.body),
  }),
  send: mutation({
    args: { channel: v.string(), body: v.string() },
    handler: async (ctx, args) => {
      await ctx.db.insert("messages", args);
    },
  }),
};
const api = anyApi as unknown as ApiFromModules<{ messages: typeof messages }>;

afterEach(cleanUp);

const start = () => serveApp({ schema, modules: { messages } });
const connect = (url: string, logger: Logger | false = false) => connectClient(url, { initialDelayMs: 5, maxDelayMs: 50 }, logger);

/** A logger that keeps what it was given, as text. */
function recordingLogger() {
  const warnings: string[] = [];
  const text = (args: unknown[]) => args.map((a) => (a instanceof Error ? a.message : String(a))).join(" ");
  return { warnings, logger: { log() {}, warn: (...args: unknown[]) => void warnings.push(text(args)) } satisfies Logger };
}

describe("args that differ only in key order are one query (Convex's client sorts them)", () => {
  it("an optimistic update that spells the args in another order than the watch still shows in it", async () => {
    const { server } = await start();
    const client = connect(server.url);
    const watch = client.watchQuery(api.messages.list, { channel: "a", limit: 10 });
    const stop = watch.onUpdate(() => {});
    await until(watch, (list) => list !== undefined);
    const sent = client.mutation(
      api.messages.send,
      { channel: "a", body: "hi" },
      {
        optimisticUpdate: (store) => {
          const list = store.getQuery(api.messages.list, { limit: 10, channel: "a" });
          if (list !== undefined) store.setQuery(api.messages.list, { limit: 10, channel: "a" }, [...list, "sending…"]);
        },
      },
    );
    expect(watch.localQueryResult()).toEqual(["sending…"]);
    await sent;
    expect(watch.localQueryResult()).toEqual(["hi"]);
    stop();
  });

  it("two watches whose args differ only in key order share one subscription and one result", async () => {
    const { server } = await start();
    const client = connect(server.url);
    const first = client.watchQuery(api.messages.list, { channel: "b", limit: 5 });
    const second = client.watchQuery(api.messages.list, { limit: 5, channel: "b" });
    const stopFirst = first.onUpdate(() => {});
    await until(first, (list) => list !== undefined);
    // Already there: the second watch is the same query, not a new one still loading.
    expect(second.localQueryResult()).toEqual([]);
    const stopSecond = second.onUpdate(() => {});
    stopFirst();
    await client.mutation(api.messages.send, { channel: "b", body: "still live" });
    expect(second.localQueryResult()).toEqual(["still live"]);
    stopSecond();
  });
});

describe("a listener stopped during another listener's callback", () => {
  it("is not called again, not even for the update being delivered", async () => {
    const { server } = await start();
    const client = connect(server.url);
    const watch = client.watchQuery(api.messages.list, { channel: "c", limit: 10 });
    const calls: string[] = [];
    let stopSecond = () => {};
    const stopFirst = watch.onUpdate(() => {
      calls.push("first");
      stopSecond();
    });
    stopSecond = watch.onUpdate(() => calls.push("second after it was stopped"));
    await until(watch, (list) => list !== undefined);
    expect(calls).not.toContain("second after it was stopped");
    stopFirst();
  });

  it("for connection-state listeners too", async () => {
    const { server } = await start();
    const client = connect(server.url);
    const calls: string[] = [];
    let stopSecond = () => {};
    const stopFirst = client.subscribeToConnectionState(() => {
      calls.push("first");
      stopSecond();
    });
    stopSecond = client.subscribeToConnectionState(() => calls.push("second after it was stopped"));
    await waitForState(client, (state) => state.isWebSocketConnected);
    expect(calls).toContain("first");
    expect(calls).not.toContain("second after it was stopped");
    stopFirst();
  });
});

describe("an optimistic update written as an async function", () => {
  it("is reported (what it sets after an await is lost), and its failure is logged, not left unhandled", async () => {
    const { server } = await start();
    const { warnings, logger } = recordingLogger();
    const client = connect(server.url, logger);
    const watch = client.watchQuery(api.messages.list, { channel: "d", limit: 10 });
    const stop = watch.onUpdate(() => {});
    await until(watch, (list) => list !== undefined);
    await client.mutation(
      api.messages.send,
      { channel: "d", body: "hi" },
      {
        optimisticUpdate: async () => {
          throw new Error("the update's own bug");
        },
      },
    );
    expect(warnings.some((w) => w.includes("returned a Promise") && w.includes("synchronous"))).toBe(true);
    expect(warnings.some((w) => w.includes("the update's own bug"))).toBe(true);
    stop();
  });
});

describe("connectionState() under Convex's field names", () => {
  it("has timeOfOldestInflightRequest: a Date while a request is in flight, one object while it stays the oldest, then null", async () => {
    const { server } = await start();
    const client = connect(server.url);
    await waitForState(client, (state) => state.isWebSocketConnected);
    expect(client.connectionState().timeOfOldestInflightRequest).toBeNull();

    route.lose = true; // the mutations stay in flight until the connection is replaced
    const first = client.mutation(api.messages.send, { channel: "e", body: "1" });
    const oneInFlight = client.connectionState();
    expect(oneInFlight.timeOfOldestInflightRequest).toBeInstanceOf(Date);
    expect(oneInFlight.timeOfOldestInflightRequest!.getTime()).toBe(oneInFlight.oldestInflightRequestAt);
    const second = client.mutation(api.messages.send, { channel: "e", body: "2" });
    const twoInFlight = client.connectionState();
    expect(twoInFlight).not.toBe(oneInFlight);
    expect(twoInFlight.timeOfOldestInflightRequest).toBe(oneInFlight.timeOfOldestInflightRequest);

    route.lose = false;
    cutNetwork();
    await Promise.all([first, second]);
    expect(client.connectionState().timeOfOldestInflightRequest).toBeNull();
  });
});

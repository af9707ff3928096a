/**
 * Review 6 of the browser client, against a real server on loopback: Convex's `client.url`,
 * `client.logger` and `prewarmQuery`; function paths spelled as Convex's client accepts them
 * (`"messages"` for the default export, `"dir/file.js:fn"` with the extension); and a closed
 * client that calls nobody back and leaves no timer behind.
 */
import { runInNewContext } from "node:vm";
import { setFlagsFromString } from "node:v8";
import { afterEach, describe, expect, it, vi } from "vitest";
import { anyApi, defineSchema, defineTable, makeFunctionReference, mutation, query, type ApiFromModules } from "../server/index.js";
import { v } from "../values/index.js";
import type { Logger } from "./connection.js";
import { cleanUp, connectClient, serveApp, until, waitForState } from "./fixtures/liveClients.js";
import { WalkinClient, WalkinHttpClient, type ConnectionState } from "./index.js";

const schema = defineSchema({
  messages: defineTable({ body: v.string() }),
});
const listBodies = query({ args: {}, handler: async (ctx) => (await ctx.db.query("messages").collect()).map((m) => m.body) });
const modules = {
  messages: {
    default: listBodies,
    list: listBodies,
    send: mutation({
      args: { body: v.string() },
      handler: async (ctx, args) => {
        await ctx.db.insert("messages", args);
      },
    }),
  },
  "lib/items": {
    count: query({ args: {}, handler: async (ctx) => (await ctx.db.query("messages").collect()).length }),
    add: mutation({
      args: { body: v.string() },
      handler: async (ctx, args) => {
        await ctx.db.insert("messages", args);
        return "added";
      },
    }),
  },
};
const api = anyApi as unknown as ApiFromModules<{ messages: (typeof modules)["messages"] }>;

/** Tokens "good:<name>" sign in as <name>. */
const authenticate = async (_ctx: unknown, token: string) =>
  token.startsWith("good:") ? { subject: token.slice(5), issuer: "test", tokenIdentifier: `test|${token.slice(5)}` } : null;

afterEach(cleanUp);

const start = () => serveApp({ schema, modules, authenticate });
const connect = (url: string) => connectClient(url, { initialDelayMs: 5, maxDelayMs: 50 });

/** How many timers are pending in this process (Node's own count). */
const pendingTimers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;

describe("Convex's client.url, client.logger and prewarmQuery", () => {
  it("url is the address the client was created with, and makes a working second client", async () => {
    const { server } = await start();
    const client = connect(server.url);
    expect(client.url).toBe(server.url);
    const second = connect(client.url);
    expect(await second.query(api.messages.list, {})).toEqual([]);
  });

  it("logger is the one given; omitted or true is the console, false one that prints nothing", async () => {
    const mine: Logger = { log() {}, warn() {} };
    const make = (logger?: boolean | Logger) => new WalkinClient("http://127.0.0.1:1", { skipConnect: true, logger });
    expect(make(mine).logger).toBe(mine);
    expect(make().logger).toBe(console);
    expect(make(true).logger).toBe(console);
    const quiet = make(false).logger;
    expect(quiet).not.toBe(console);
    const log = vi.spyOn(console, "log");
    const warn = vi.spyOn(console, "warn");
    quiet.log("x");
    quiet.warn("y");
    expect([log.mock.calls.length, warn.mock.calls.length]).toEqual([0, 0]);
    log.mockRestore();
    warn.mockRestore();
  });

  it("prewarmQuery subscribes to the query, and drops it once extendSubscriptionFor has passed", async () => {
    const { server } = await start();
    const client = connect(server.url);
    await client.mutation(api.messages.send, { body: "warm" });
    client.prewarmQuery({ query: api.messages.list, args: {}, extendSubscriptionFor: 200 });
    const watch = client.watchQuery(api.messages.list, {});
    // Nobody else watches it: its result can only come from the prewarmed subscription.
    await vi.waitFor(() => expect(watch.localQueryResult()).toEqual(["warm"]));
    // Then the subscription ends and the client forgets the result.
    await vi.waitFor(() => expect(watch.localQueryResult()).toBeUndefined(), { timeout: 5_000 });
  });

  it("prewarmQuery refuses an extendSubscriptionFor that is not a duration, and subscribes to nothing", async () => {
    const { server } = await start();
    const client = connect(server.url);
    const timers = pendingTimers();
    for (const bad of [-1, Number.NaN, "5000" as unknown as number]) {
      expect(() => client.prewarmQuery({ query: api.messages.list, extendSubscriptionFor: bad })).toThrow(
        expect.objectContaining({ code: "INVALID_ARGUMENT", message: expect.stringContaining("extendSubscriptionFor") }),
      );
    }
    expect(pendingTimers()).toBe(timers);
    const watch = client.watchQuery(api.messages.list, {});
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(watch.localQueryResult()).toBeUndefined();
  });
});

describe("function paths are read as Convex's client reads them", () => {
  it('"messages" is "messages:default": both spellings are one query with one result', async () => {
    const { server } = await start();
    const client = connect(server.url);
    await client.mutation(api.messages.send, { body: "hi" });
    const bare = client.watchQuery(makeFunctionReference<"query">("messages"));
    const stop = bare.onUpdate(() => {});
    await until(bare, (value) => value !== undefined);
    // Already there: the same query, not a second subscription still loading.
    expect(client.watchQuery(makeFunctionReference<"query">("messages:default")).localQueryResult()).toEqual(["hi"]);
    stop();
  });

  it("an optimistic update finds the query under either spelling", async () => {
    const { server } = await start();
    const client = connect(server.url);
    const watch = client.watchQuery(makeFunctionReference<"query">("messages:default"));
    const stop = watch.onUpdate(() => {});
    await until(watch, (value) => value !== undefined);
    const seen: unknown[] = [];
    const sent = client.mutation(
      api.messages.send,
      { body: "b" },
      {
        optimisticUpdate: (store) => {
          const bare = makeFunctionReference<"query", Record<string, never>, string[]>("messages.js");
          seen.push(store.getAllQueries(bare).map((q) => q.value));
          const list = store.getQuery(bare, {});
          if (list !== undefined) store.setQuery(bare, {}, [...list, "sending…"]);
        },
      },
    );
    expect(seen[0]).toEqual([[]]);
    expect(watch.localQueryResult()).toEqual(["sending…"]);
    await sent;
    expect(watch.localQueryResult()).toEqual(["b"]);
    stop();
  });

  it('"dir/file.js:fn" calls "dir/file:fn", over the socket and over HTTP', async () => {
    const { server } = await start();
    const client = connect(server.url);
    expect(await client.mutation(makeFunctionReference<"mutation">("lib/items.js:add"), { body: "x" })).toBe("added");
    expect(await client.query(makeFunctionReference<"query">("lib/items.js:count"), {})).toBe(1);
    const http = new WalkinHttpClient(server.url);
    expect(await http.query(makeFunctionReference<"query">("lib/items.js:count"), {})).toBe(1);
    expect(await http.mutation(makeFunctionReference<"mutation">("lib/items.js:add"), { body: "y" })).toBe("added");
  });

  it('a path written with "." for ":" still gets the server\'s hint', async () => {
    const { server } = await start();
    const client = connect(server.url);
    await expect(client.query(makeFunctionReference<"query">("messages.list"), {})).rejects.toMatchObject({
      code: "UNKNOWN_FUNCTION",
      message: expect.stringContaining('did you mean "messages:list"'),
    });
  });
});

describe("a closed client calls nobody back", () => {
  it("connection-state listeners and onChange hear nothing after close(), even when auth changes", async () => {
    const { server } = await start();
    const client = connect(server.url);
    const changes: boolean[] = [];
    client.setAuth(async () => "good:ada", (isAuthenticated) => changes.push(isAuthenticated));
    await waitForState(client, (s) => s.isWebSocketConnected && s.isAuthenticated);
    const states: ConnectionState[] = [];
    client.subscribeToConnectionState((state) => states.push(state));
    await client.close();
    const heard = [states.length, changes.length];
    client.clearAuth();
    const fetchToken = vi.fn(async () => "good:bob");
    client.setAuth(fetchToken, (isAuthenticated) => changes.push(isAuthenticated));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect([states.length, changes.length]).toEqual(heard);
    expect(fetchToken).not.toHaveBeenCalled();
  });

  it("close() lets go of the callbacks it will never call, those given after it included", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const { server } = await start();
    const client = connect(server.url);
    await waitForState(client, (s) => s.isWebSocketConnected);
    const register = (): WeakRef<object>[] => {
      const onUpdate = () => {};
      const onState = () => {};
      client.watchQuery(api.messages.list, {}).onUpdate(onUpdate);
      client.subscribeToConnectionState(onState);
      return [new WeakRef(onUpdate), new WeakRef(onState)];
    };
    const before = register();
    await client.close();
    const after = register();
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
    expect([...before, ...after].map((ref) => ref.deref())).toEqual([undefined, undefined, undefined, undefined]);
  });

  it("close() leaves no timer of the client pending (a prewarmed query's included)", async () => {
    const timers = pendingTimers();
    const client = new WalkinClient("http://127.0.0.1:1", { skipConnect: true, logger: false });
    client.prewarmQuery({ query: api.messages.list, args: {}, extendSubscriptionFor: 60_000 });
    expect(pendingTimers()).toBe(timers + 1);
    await client.close();
    expect(pendingTimers()).toBe(timers);
  });
});

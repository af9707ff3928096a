/**
 * The client against the real server: engine on SQLite, `startServer`, sockets from `ws`.
 * Nothing is mocked; network failures are real (sockets terminated, the server restarted).
 */
import { afterEach, describe, expect, it } from "vitest";
import { action, anyApi, defineSchema, defineTable, makeFunctionReference, mutation, query, type ApiFromModules } from "../server/index.js";
import type { WalkinServer } from "../transport/index.js";
import { WalkinError, isWalkinError, v } from "../values/index.js";
import { WalkinClient, type ConnectionState } from "./index.js";
import { cleanUp, connectClient, cutNetwork, serveApp, sockets, tempDatabaseFile, until, waitForState } from "./fixtures/liveClients.js";

const schema = defineSchema({
  messages: defineTable({ channel: v.string(), body: v.string() }).index("by_channel", ["channel"]),
  counters: defineTable({ name: v.string(), value: v.number() }).index("by_name", ["name"]),
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const messages = {
  list: query({
    args: { channel: v.string() },
    handler: async (ctx, { channel }) =>
      (await ctx.db.query("messages").withIndex("by_channel", (q) => q.eq("channel", channel)).collect()).map((m) => m.body),
  }),
  /** Reads every message, but its value changes only when the number of channels does. */
  channels: query({
    args: {},
    handler: async (ctx) => [...new Set((await ctx.db.query("messages").collect()).map((m) => m.channel))].sort(),
  }),
  send: mutation({
    args: { channel: v.string(), body: v.string() },
    handler: async (ctx, args) => {
      await ctx.db.insert("messages", args);
      return args.body;
    },
  }),
  sendThenFail: mutation({
    args: { channel: v.string(), body: v.string() },
    handler: async (ctx, args) => {
      await ctx.db.insert("messages", args);
      throw new WalkinError("refused", { data: { body: args.body, limit: 3n } });
    },
  }),
  huge: query({ args: { kb: v.number() }, handler: async (_ctx, { kb }) => "é".repeat(kb * 1024) }),
  broken: query({ args: {}, handler: async () => { throw new WalkinError("no access", { code: "UNAUTHENTICATED" }); } }),
};

const counters = {
  get: query({
    args: { name: v.string() },
    handler: async (ctx, { name }) => (await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", name)).unique())?.value ?? 0,
  }),
  /** Two counters always written together: no client may ever see them differ. */
  bumpPair: mutation({
    args: {},
    handler: async (ctx) => {
      for (const name of ["a", "b"]) {
        const c = await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", name)).unique();
        if (c) await ctx.db.patch(c._id, { value: c.value + 1 });
        else await ctx.db.insert("counters", { name, value: 1 });
      }
    },
  }),
};

const tasks = {
  wait: action({ args: { ms: v.number() }, handler: async (_ctx, { ms }) => (await sleep(ms), "waited") }),
  /** Sends through ctx.runMutation, then takes `ms` more before it returns. */
  sendThenWait: action({
    args: { channel: v.string(), body: v.string(), ms: v.number() },
    handler: async (ctx, { channel, body, ms }): Promise<string> => {
      const sent = await ctx.runMutation(anyApi.messages!.send!, { channel, body });
      await sleep(ms);
      return sent as string;
    },
  }),
  whoami: query({ args: {}, handler: async (ctx) => (await ctx.auth.getUserIdentity())?.subject ?? null }),
  /** Answers after `ms`: a query set change that includes it stays in progress that long. */
  slow: query({ args: { ms: v.number() }, handler: async (_ctx, { ms }) => (await sleep(ms), ms) }),
};

const modules = { messages, counters, tasks };
const api = anyApi as unknown as ApiFromModules<typeof modules>;

/** Tokens "good:<name>" sign in as <name> until revoked; anything else is refused. */
const revoked = new Set<string>();
const authenticate = async (_ctx: unknown, token: string) =>
  token.startsWith("good:") && !revoked.has(token) ? { subject: token.slice(5), issuer: "test", tokenIdentifier: `test|${token.slice(5)}` } : null;

afterEach(cleanUp);

const startBackend = (options: { filename?: string; port?: number; heartbeatMs?: number } = {}) => serveApp({ schema, modules, authenticate }, options);
const connect = (server: WalkinServer) => connectClient(server.url, { initialDelayMs: 10, maxDelayMs: 100 });

describe("WalkinClient against the real server", () => {
  it("keeps a watched query live and answers one-shot queries", async () => {
    const { server } = await startBackend();
    const client = connect(server);
    const writer = connect(server);
    const watch = client.watchQuery(api.messages.list, { channel: "a" });
    expect(watch.localQueryResult()).toBeUndefined();
    const seen: unknown[] = [];
    watch.onUpdate(() => seen.push(watch.localQueryResult()));
    await until(watch, (v) => v !== undefined);
    await writer.mutation(api.messages.send, { channel: "a", body: "hello" });
    await until(watch, (v) => v?.length === 1);
    expect(seen).toEqual([[], ["hello"]]);
    expect(await client.query(api.messages.list, { channel: "a" })).toEqual(["hello"]);
    expect(await writer.query(api.messages.list, { channel: "nobody" })).toEqual([]);
  });

  it("delivers each transition atomically across queries, one callback per transition", async () => {
    const { server } = await startBackend();
    const client = connect(server);
    const writer = connect(server);
    const a = client.watchQuery(api.counters.get, { name: "a" });
    const b = client.watchQuery(api.counters.get, { name: "b" });
    const observed: [unknown, unknown][] = [];
    const check = () => observed.push([a.localQueryResult(), b.localQueryResult()]);
    a.onUpdate(check);
    b.onUpdate(check);
    await until(a, (value) => value !== undefined);
    await until(b, (value) => value !== undefined);
    await Promise.all(Array.from({ length: 20 }, () => writer.mutation(api.counters.bumpPair, {})));
    await until(a, (value) => value === 20);
    const loaded = observed.filter(([x, y]) => x !== undefined && y !== undefined);
    for (const [x, y] of loaded) expect(x).toBe(y);
    expect(loaded.at(-1)).toEqual([20, 20]);
    // Both watches fire for a transition that changed both; never more than once each.
    expect(observed.length).toBeLessThanOrEqual(2 * 21 + 2);
  });

  it("reads its own writes: after await mutation, the watched query includes the write", async () => {
    const { server } = await startBackend();
    const client = connect(server);
    const watch = client.watchQuery(api.messages.list, { channel: "rw" });
    const stop = watch.onUpdate(() => {});
    for (let i = 0; i < 5; i++) {
      expect(await client.mutation(api.messages.send, { channel: "rw", body: `m${i}` })).toBe(`m${i}`);
      expect(watch.localQueryResult()).toContain(`m${i}`);
    }
    stop();
    // Also with no query subscribed at all (the server sends an empty Transition).
    await client.mutation(api.messages.send, { channel: "rw", body: "unwatched" });
    expect(client.connectionState().lastTransitionTs).not.toBeNull();
  });

  it("reads its own writes after an action too: after await action, the watched query includes what it wrote", async () => {
    const { server } = await startBackend();
    const client = connect(server);
    const watch = client.watchQuery(api.messages.list, { channel: "act" });
    const stop = watch.onUpdate(() => {});
    await until(watch, (value) => value !== undefined);
    for (let i = 0; i < 3; i++) {
      // A query added alongside keeps the connection's query set changing for 200 ms: the
      // server builds no Transition until it is done, and the action's answer comes first.
      const slow = client.watchQuery(api.tasks.slow, { ms: 200 + i });
      const stopSlow = slow.onUpdate(() => {});
      expect(await client.action(api.tasks.sendThenWait, { channel: "act", body: `a${i}`, ms: 0 })).toBe(`a${i}`);
      expect(watch.localQueryResult()).toContain(`a${i}`);
      stopSlow();
    }
    stop();
  });

  it("runs un-awaited mutations in order and resolves them in order", async () => {
    const { server } = await startBackend();
    const client = connect(server);
    const watch = client.watchQuery(api.messages.list, { channel: "order" });
    watch.onUpdate(() => {});
    const resolved: number[] = [];
    const bodies = Array.from({ length: 30 }, (_, i) => `${i}`);
    await Promise.all(bodies.map((body, i) => client.mutation(api.messages.send, { channel: "order", body }).then(() => resolved.push(i))));
    expect(resolved).toEqual(bodies.map((_, i) => i));
    expect(watch.localQueryResult()).toEqual(bodies);
  });

  it("paces a burst above the server's rate limit instead of being cut off", async () => {
    const { server } = await startBackend();
    const client = connect(server);
    const n = 450; // above the server's burst of 400 messages
    await Promise.all(Array.from({ length: n }, (_, i) => client.mutation(api.messages.send, { channel: "burst", body: `${i}` })));
    expect(await client.query(api.messages.list, { channel: "burst" })).toHaveLength(n);
    expect(client.connectionState().connectionCount).toBe(1);
  });

  it("re-sends unanswered mutations after a network cut and the server applies each once", async () => {
    const { server } = await startBackend();
    const client = connect(server);
    await waitForState(client, (s) => s.isWebSocketConnected);
    // Cut the network right after the 5th answer: the server is running the next mutation,
    // which commits but whose answer is lost, and has the rest queued.
    const socket = sockets.at(-1)!;
    let answers = 0;
    socket.on("message", (data) => {
      if (String(data).includes('"MutationResponse"') && ++answers === 5) socket.terminate();
    });
    const bodies = Array.from({ length: 40 }, (_, i) => `${i}`);
    const done = bodies.map((body) => client.mutation(api.messages.send, { channel: "cut", body }));
    await Promise.all(done);
    await waitForState(client, (s) => s.connectionCount === 2);
    expect(await client.query(api.messages.list, { channel: "cut" })).toEqual(bodies);
  });

  it("survives a server restart mid-stream on the same port and file: no mutation lost or duplicated", async () => {
    const filename = tempDatabaseFile("walkin-client-");
    const first = await startBackend({ filename });
    const port = first.server.port;
    const client = connect(first.server);
    const watch = client.watchQuery(api.messages.list, { channel: "restart" });
    watch.onUpdate(() => {});
    const bodies = Array.from({ length: 60 }, (_, i) => `${i}`);
    const done = bodies.map((body) => client.mutation(api.messages.send, { channel: "restart", body }));
    await done[5];
    await first.stop();
    await waitForState(client, (s) => !s.isWebSocketConnected);
    const second = await startBackend({ filename, port });
    await Promise.all(done);
    expect(watch.localQueryResult()).toEqual(bodies);
    const fresh = connect(second.server);
    expect(await fresh.query(api.messages.list, { channel: "restart" })).toEqual(bodies);
    // Reconnected to the second server. Waited for, not read at once: when every mutation was
    // answered before the first server stopped (a busy machine), nothing hurries the reconnect.
    await waitForState(client, (s) => s.connectionCount >= 2 && s.isWebSocketConnected);
  });

  it("rejects an action in flight when the connection drops, and runs actions after reconnecting", async () => {
    const { server } = await startBackend();
    const client = connect(server);
    expect(await client.action(api.tasks.wait, { ms: 1 })).toBe("waited");
    const pending = client.action(api.tasks.wait, { ms: 2_000 });
    await waitForState(client, (s) => s.inflightActions === 1);
    await sleep(20); // let it reach the server
    cutNetwork();
    const error = await pending.catch((e: unknown) => e);
    expect(isWalkinError(error) && error.code).toBe("DISCONNECTED");
    expect((error as Error).message).toMatch(/not retried/);
    expect(await client.action(api.tasks.wait, { ms: 1 })).toBe("waited");
  });

  it("shows an optimistic update at once and rolls it back when the mutation fails", async () => {
    const { server } = await startBackend();
    const client = connect(server);
    const watch = client.watchQuery(api.messages.list, { channel: "opt" });
    const seen: unknown[] = [];
    watch.onUpdate(() => seen.push(watch.localQueryResult()));
    await until(watch, (value) => value !== undefined);
    const optimisticUpdate = (store: import("./index.js").OptimisticLocalStore, args: { channel: string; body: string }) => {
      const list = store.getQuery(api.messages.list, { channel: args.channel });
      if (list) store.setQuery(api.messages.list, { channel: args.channel }, [...list, args.body]);
    };
    const failing = client.mutation(api.messages.sendThenFail, { channel: "opt", body: "nope" }, { optimisticUpdate });
    expect(watch.localQueryResult()).toEqual(["nope"]); // synchronously
    const error = await failing.catch((e: unknown) => e);
    expect(isWalkinError(error) && { message: error.message, code: error.code, data: error.data }).toEqual({
      message: "refused",
      code: "APPLICATION",
      data: { body: "nope", limit: 3n },
    });
    expect(watch.localQueryResult()).toEqual([]);

    // A successful one goes from optimistic to real without ever disappearing.
    seen.length = 0;
    await client.mutation(api.messages.send, { channel: "opt", body: "yes" }, { optimisticUpdate });
    expect(seen[0]).toEqual(["yes"]);
    for (const value of seen) expect(value).toEqual(["yes"]);
    expect(watch.localQueryResult()).toEqual(["yes"]);
  });

  it("keeps a result's object identity while its value is unchanged", async () => {
    const { server } = await startBackend();
    const client = connect(server);
    const watch = client.watchQuery(api.messages.channels, {});
    let calls = 0;
    watch.onUpdate(() => calls++);
    await client.mutation(api.messages.send, { channel: "x", body: "1" });
    const first = watch.localQueryResult();
    expect(first).toEqual(["x"]);
    const callsBefore = calls;
    await client.mutation(api.messages.send, { channel: "x", body: "2" }); // re-runs the query, same value
    expect(watch.localQueryResult()).toBe(first);
    expect(calls).toBe(callsBefore);
  });

  it("reassembles transitions the server split into chunks", async () => {
    const { server } = await startBackend();
    const client = connect(server);
    const value = await client.query(api.messages.huge, { kb: 1200 }); // ~2.4 MB of UTF-8
    expect(value.length).toBe(1200 * 1024);
  });

  it("surfaces query errors through localQueryResult and query()", async () => {
    const { server } = await startBackend();
    const client = connect(server);
    const error = await client.query(api.messages.broken, {}).catch((e: unknown) => e);
    expect(isWalkinError(error) && [error.code, error.message]).toEqual(["UNAUTHENTICATED", "no access"]);
    const watch = client.watchQuery(api.messages.broken, {});
    await new Promise<void>((resolve) => watch.onUpdate(resolve));
    expect(() => watch.localQueryResult()).toThrow("no access");
    await expect(client.mutation(makeFunctionReference<"mutation">("messages:nope"), {})).rejects.toMatchObject({ code: "UNKNOWN_FUNCTION" });
  });

  it("reports connection state changes", async () => {
    const { server } = await startBackend();
    const client = connect(server);
    const states: ConnectionState[] = [];
    client.subscribeToConnectionState((s) => states.push(s));
    expect(client.connectionState()).toMatchObject({ isWebSocketConnected: false, hasEverConnected: false, connectionCount: 0 });
    await waitForState(client, (s) => s.isWebSocketConnected);
    expect(client.connectionState()).toMatchObject({ hasEverConnected: true, connectionCount: 1, hasInflightRequests: false });
    const snapshot = client.connectionState();
    expect(client.connectionState()).toBe(snapshot); // stable while nothing changes
    const sent = client.mutation(api.messages.send, { channel: "s", body: "x" });
    expect(client.connectionState()).toMatchObject({ hasInflightRequests: true, inflightMutations: 1 });
    await sent;
    expect(client.connectionState()).toMatchObject({ hasInflightRequests: false, inflightMutations: 0 });
    expect(client.connectionState().lastTransitionTs).toBeGreaterThan(0);
    cutNetwork();
    await waitForState(client, (s) => !s.isWebSocketConnected);
    await waitForState(client, (s) => s.isWebSocketConnected && s.connectionCount === 2);
    expect(states.some((s) => !s.isWebSocketConnected && s.hasEverConnected)).toBe(true);
  });

  it("authenticates with setAuth, refreshes a refused token once, and signs out when refused again", async () => {
    const { server } = await startBackend();
    const client = connect(server);
    const who = client.watchQuery(api.tasks.whoami, {});
    who.onUpdate(() => {});
    await until(who, (value) => value === null);

    const changes: boolean[] = [];
    const calls: boolean[] = [];
    client.setAuth(async ({ forceRefreshToken }) => (calls.push(forceRefreshToken), forceRefreshToken ? "good:ada" : "stale"), (ok) => changes.push(ok));
    await until(who, (value) => value === "ada");
    expect(calls).toEqual([false, true]);
    expect(changes).toEqual([true]);
    expect(client.connectionState().isAuthenticated).toBe(true);
    // Mutations run as the signed-in user, also after a reconnect (the token is re-sent).
    cutNetwork();
    await waitForState(client, (s) => s.connectionCount === 2);
    expect(await client.query(api.tasks.whoami, {})).toBe("ada");

    const refused: boolean[] = [];
    client.setAuth(async () => "bad", (ok) => refused.push(ok));
    await waitForState(client, (s) => !s.isAuthenticated);
    await until(who, (value) => value === null);
    await sleep(20);
    expect(refused).toEqual([false]);

    client.setAuth(async () => "good:bob");
    await until(who, (value) => value === "bob");
    client.clearAuth();
    await until(who, (value) => value === null);
  });

  it("turns isAuthenticated false (and tells onChange) when the server stops accepting the token", async () => {
    const { server } = await startBackend({ heartbeatMs: 50 });
    const client = connect(server);
    const changes: boolean[] = [];
    const calls: boolean[] = [];
    client.setAuth(async ({ forceRefreshToken }) => (calls.push(forceRefreshToken), "good:cy"), (ok) => changes.push(ok));
    await waitForState(client, (s) => s.isAuthenticated);
    const states: ConnectionState[] = [];
    client.subscribeToConnectionState((state) => states.push(state));

    revoked.add("good:cy"); // what revoking or expiring an auth session does to the token
    await waitForState(client, (s) => !s.isAuthenticated && !s.hasInflightRequests);
    await until(client.watchQuery(api.tasks.whoami, {}), (value) => value === null);
    expect(calls).toEqual([false, true]); // asked once for a fresh token, which was refused too
    expect(changes).toEqual([true, false]);
    expect(states.at(-1)?.isAuthenticated).toBe(false);
  });

  it("holds queries made right after setAuth until the token is sent", async () => {
    const { server } = await startBackend();
    const client = connect(server);
    await waitForState(client, (s) => s.isWebSocketConnected);
    let release!: (token: string) => void;
    client.setAuth(() => new Promise((resolve) => (release = resolve)));
    const who = client.query(api.tasks.whoami, {});
    await sleep(30);
    release("good:eve");
    expect(await who).toBe("eve");
  });

  it("with skipConnect opens no socket and refuses calls", async () => {
    const client = new WalkinClient("http://127.0.0.1:1", { skipConnect: true, logger: false });
    const watch = client.watchQuery(api.messages.list, { channel: "a" });
    const stop = watch.onUpdate(() => {});
    expect(watch.localQueryResult()).toBeUndefined();
    stop();
    await expect(client.mutation(api.messages.send, { channel: "a", body: "x" })).rejects.toMatchObject({ code: "MISUSE" });
    await client.close();
  });

  it("close rejects pending calls and stops reconnecting", async () => {
    const backend = await startBackend();
    const client = connect(backend.server);
    await waitForState(client, (s) => s.isWebSocketConnected);
    await backend.stop();
    const pending = client.mutation(api.messages.send, { channel: "a", body: "x" }).catch((e: unknown) => e);
    await client.close();
    expect(await pending).toMatchObject({ code: "DISCONNECTED" });
    const reconnects = sockets.length;
    await sleep(150); // longer than the maximum backoff
    expect(sockets.length).toBe(reconnects);
    await expect(client.query(api.messages.list, { channel: "a" })).rejects.toMatchObject({ code: "DISCONNECTED" });
  });
});

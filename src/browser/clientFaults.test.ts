/**
 * The browser client's invariants: every call settles (also across close, reconnects
 * and auth changes), a mutation takes effect exactly once, as the user it was first sent as, and
 * resolves only once its write is visible, results never go back in time, optimistic layers
 * never outlive their mutation, queries asked for after `setAuth` run only as the new user, and
 * a token changed while the server checks the previous one never costs the connection.
 *
 * Two kinds of tests: against a scripted socket (exact message sequences) and against real
 * servers (engine on SQLite, `startServer`, sockets from `ws`), including two nodes on one
 * database file and a randomized run with network cuts and server restarts.
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, defineSchema, defineTable, mutation, query, type ApiFromModules } from "../server/index.js";
import { PROTOCOL_LIMITS } from "../transport/protocol.js";
import { v } from "../values/index.js";
import type { OptimisticLocalStore } from "./index.js";
import { cleanUp, connectClient, cutNetwork, route, serveApp, sockets, tempDatabaseFile, until, waitForState } from "./fixtures/liveClients.js";
import { settled, tick } from "./fixtures/promises.js";
import { closeScriptedClients, openScriptedClient, reconnectScripted, scriptedApi, sv } from "./fixtures/scriptedSocket.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------ real servers

const schema = defineSchema({
  messages: defineTable({ channel: v.string(), body: v.string(), caller: v.optional(v.string()) }).index("by_channel", ["channel"]),
});

/** The caller's subject, or "nobody" signed out. */
const callerOf = async (ctx: { auth: { getUserIdentity(): Promise<{ subject: string } | null> } }) => (await ctx.auth.getUserIdentity())?.subject ?? "nobody";

const messages = {
  list: query({
    args: { channel: v.string() },
    handler: async (ctx, { channel }) =>
      (await ctx.db.query("messages").withIndex("by_channel", (q) => q.eq("channel", channel)).collect()).map((m) => m.body),
  }),
  send: mutation({
    args: { channel: v.string(), body: v.string() },
    handler: async (ctx, args) => {
      await ctx.db.insert("messages", { ...args, caller: await callerOf(ctx) });
      return args.body;
    },
  }),
  /** `body@caller` of each message: who each mutation ran as. */
  callers: query({
    args: { channel: v.string() },
    handler: async (ctx, { channel }) =>
      (await ctx.db.query("messages").withIndex("by_channel", (q) => q.eq("channel", channel)).collect()).map((m) => `${m.body}@${m.caller}`),
  }),
};
const tasks = {
  /** Who the caller is; `tag` only makes distinct queries. */
  whoami: query({ args: { tag: v.optional(v.number()) }, handler: async (ctx) => (await ctx.auth.getUserIdentity())?.subject ?? null }),
};
const modules = { messages, tasks };
const api = anyApi as unknown as ApiFromModules<typeof modules>;

/** Tokens "good:<name>" sign in as <name>; anything else is refused. */
const authenticate = async (_ctx: unknown, token: string) =>
  token.startsWith("good:") ? { subject: token.slice(5), issuer: "test", tokenIdentifier: `test|${token.slice(5)}` } : null;

afterEach(async () => {
  await closeScriptedClients();
  await cleanUp();
});

const tempFile = () => tempDatabaseFile("walkin-client-faults-");
const startBackend = (options: { filename?: string; port?: number } = {}) => serveApp({ schema, modules, authenticate }, options);
const connect = (url: string) => connectClient(url, { initialDelayMs: 5, maxDelayMs: 50 });

/** Resolves with the promise's outcome, or "timeout" after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  return Promise.race([promise, sleep(ms).then(() => "timeout" as const)]);
}

// ------------------------------------------------------------------ tests

describe("every call settles", () => {
  it("a one-shot query still waiting for its result is rejected by close()", async () => {
    const { client, socket } = await openScriptedClient();
    socket.receive({ type: "Transition", startVersion: sv(0, 0, 0), endVersion: sv(1, 0, 1), modifications: [] });
    const pending = settled(client.query(scriptedApi.q.a, {}));
    await tick();
    await client.close();
    await tick(20);
    expect(pending.status).toBe("rejected");
    expect(pending.error).toMatchObject({ code: "DISCONNECTED" });
  });

  it("a mutation sent on a connection that drops is re-sent under the same ID and settles once", async () => {
    const { client, socket } = await openScriptedClient();
    socket.receive({ type: "Transition", startVersion: sv(0, 0, 0), endVersion: sv(1, 0, 1), modifications: [] });
    const first = settled(client.mutation(scriptedApi.m.send, { x: 1 }));
    const second = settled(client.mutation(scriptedApi.m.send, { x: 2 }));
    await tick();
    expect(socket.sent.filter((m) => m.type === "Mutation").map((m) => (m as { requestId: number }).requestId)).toEqual([0, 1]);
    socket.receive({ type: "MutationResponse", requestId: 0 as never, success: true, result: 1, ts: 2 });
    const next = await reconnectScripted();
    // Only the unanswered one is re-sent, with its original ID; the new connection's first sends start above it.
    expect(next.sent.filter((m) => m.type === "Mutation").map((m) => (m as { requestId: number }).requestId)).toEqual([1]);
    expect(next.sent[0]).toMatchObject({ newRequestsFrom: 2 });
    next.receive({ type: "MutationResponse", requestId: 1 as never, success: true, result: 2, ts: 3 });
    next.receive({ type: "Transition", startVersion: sv(0, 0, 0), endVersion: sv(1, 0, 3), modifications: [] });
    await tick();
    expect([first.status, second.status]).toEqual(["resolved", "resolved"]);
    // A late duplicate answer changes nothing.
    next.receive({ type: "MutationResponse", requestId: 1 as never, success: false, error: { code: "APPLICATION", message: "late" } });
    await tick();
    expect(second.status).toBe("resolved");
  });
});

describe("optimistic updates", () => {
  const setA = (value: string) => (store: OptimisticLocalStore) => store.setQuery(scriptedApi.q.a, {}, value);

  it("are rolled back when close() rejects their mutation", async () => {
    const { client, socket } = await openScriptedClient();
    const watch = client.watchQuery(scriptedApi.q.a, {});
    let notified = 0;
    watch.onUpdate(() => notified++);
    await tick();
    socket.receive({
      type: "Transition",
      startVersion: sv(0, 0, 0),
      endVersion: sv(2, 0, 1),
      modifications: [{ type: "QueryUpdated", queryId: 0 as never, value: "server" }],
    });
    const pending = client.mutation(scriptedApi.m.send, { x: 1 }, { optimisticUpdate: setA("optimistic") }).catch((e: unknown) => e);
    expect(watch.localQueryResult()).toBe("optimistic");
    const before = notified;
    await client.close();
    expect(await pending).toMatchObject({ code: "DISCONNECTED" });
    // The mutation failed: its edit must not stay on screen.
    expect(watch.localQueryResult()).toBe("server");
    expect(notified).toBeGreaterThan(before);
  });

  it("keep the remaining layers in call order when a middle one fails, and drop each at its commit", async () => {
    const { client, socket } = await openScriptedClient();
    const watch = client.watchQuery(scriptedApi.q.a, {});
    watch.onUpdate(() => {});
    await tick();
    socket.receive({
      type: "Transition",
      startVersion: sv(0, 0, 0),
      endVersion: sv(2, 0, 1),
      modifications: [{ type: "QueryUpdated", queryId: 0 as never, value: [] }],
    });
    const append = (tag: string) => (store: OptimisticLocalStore) => store.setQuery(scriptedApi.q.a, {}, [...((store.getQuery(scriptedApi.q.a, {}) as string[]) ?? []), tag]);
    const p1 = settled(client.mutation(scriptedApi.m.send, { x: 1 }, { optimisticUpdate: append("1") }));
    const p2 = settled(client.mutation(scriptedApi.m.send, { x: 2 }, { optimisticUpdate: append("2") }));
    const p3 = settled(client.mutation(scriptedApi.m.send, { x: 3 }, { optimisticUpdate: append("3") }));
    expect(watch.localQueryResult()).toEqual(["1", "2", "3"]);
    await tick();
    socket.receive({ type: "MutationResponse", requestId: 0 as never, success: true, result: null, ts: 5 });
    expect(watch.localQueryResult()).toEqual(["1", "2", "3"]); // committed, not yet visible: layer stays
    socket.receive({ type: "MutationResponse", requestId: 1 as never, success: false, error: { code: "APPLICATION", message: "no" } });
    expect(watch.localQueryResult()).toEqual(["1", "3"]);
    // A reconnect keeps the layers (1 committed, 3 re-sent) in order.
    const next = await reconnectScripted();
    expect(watch.localQueryResult()).toEqual(["1", "3"]);
    expect(next.sent.filter((m) => m.type === "Mutation").map((m) => (m as { requestId: number }).requestId)).toEqual([2]);
    next.receive({
      type: "Transition",
      startVersion: sv(0, 0, 0),
      endVersion: sv(1, 0, 5),
      modifications: [{ type: "QueryUpdated", queryId: 0 as never, value: ["1"] }],
    });
    expect(watch.localQueryResult()).toEqual(["1", "3"]); // 1 real now, 3 still optimistic
    next.receive({ type: "MutationResponse", requestId: 2 as never, success: true, result: null, ts: 6 });
    next.receive({
      type: "Transition",
      startVersion: sv(1, 0, 5),
      endVersion: sv(1, 0, 6),
      modifications: [{ type: "QueryUpdated", queryId: 0 as never, value: ["1", "3"] }],
    });
    await tick();
    expect([p1.status, p2.status, p3.status]).toEqual(["resolved", "rejected", "resolved"]);
    expect(watch.localQueryResult()).toEqual(["1", "3"]);
  });
});

describe("watches", () => {
  it("two watches of one query: stopping one keeps the other live", async () => {
    const { client, socket } = await openScriptedClient();
    const w1 = client.watchQuery(scriptedApi.q.a, {});
    const w2 = client.watchQuery(scriptedApi.q.a, {});
    const stop1 = w1.onUpdate(() => {});
    const seen2: unknown[] = [];
    w2.onUpdate(() => seen2.push(w2.localQueryResult()));
    await tick();
    socket.receive({
      type: "Transition",
      startVersion: sv(0, 0, 0),
      endVersion: sv(2, 0, 1),
      modifications: [{ type: "QueryUpdated", queryId: 0 as never, value: 1 }],
    });
    stop1();
    stop1(); // twice: must not take the other's subscription
    await tick();
    expect(socket.sent.some((m) => m.type === "ModifyQuerySet" && m.modifications.some((x) => x.type === "Remove"))).toBe(false);
    socket.receive({
      type: "Transition",
      startVersion: sv(2, 0, 1),
      endVersion: sv(2, 0, 2),
      modifications: [{ type: "QueryUpdated", queryId: 0 as never, value: 2 }],
    });
    expect(seen2).toEqual([1, 2]);
    expect(w2.localQueryResult()).toBe(2);
  });
});

describe("chunked Transitions and reconnects", () => {
  it("drops a half-received chunked Transition with the connection and accepts a fresh one after", async () => {
    const { client, socket } = await openScriptedClient();
    const watch = client.watchQuery(scriptedApi.q.a, {});
    watch.onUpdate(() => {});
    await tick();
    const text = (ts: number, value: string) =>
      JSON.stringify({
        type: "Transition",
        startVersion: sv(0, 0, 0),
        endVersion: sv(ts === 1 ? 2 : 1, 0, ts),
        modifications: [{ type: "QueryUpdated", queryId: 0, value }],
      });
    const old = text(1, "old");
    socket.receive({ type: "TransitionChunk", transitionId: 0, partNumber: 0, totalParts: 2, chunk: old.slice(0, 20) } as never);
    const next = await reconnectScripted();
    // The old socket's remaining part arrives late: ignored (the socket was replaced).
    socket.receive({ type: "TransitionChunk", transitionId: 0, partNumber: 1, totalParts: 2, chunk: old.slice(20) } as never);
    const fresh = text(3, "fresh");
    next.receive({ type: "TransitionChunk", transitionId: 0, partNumber: 0, totalParts: 2, chunk: fresh.slice(0, 30) } as never);
    next.receive({ type: "TransitionChunk", transitionId: 0, partNumber: 1, totalParts: 2, chunk: fresh.slice(30) } as never);
    expect(watch.localQueryResult()).toBe("fresh");
    expect(client.connectionState()).toMatchObject({ isWebSocketConnected: true, lastTransitionTs: 3 });
  });
});

describe("auth", () => {
  it("a query asked for while the first token is being fetched never runs signed out (connection opening meanwhile)", async () => {
    const { server } = await startBackend();
    const client = connect(server.url);
    let release!: (token: string) => void;
    client.setAuth(() => new Promise((resolve) => (release = resolve)));
    const who = client.watchQuery(api.tasks.whoami, {});
    const seen: unknown[] = [];
    who.onUpdate(() => seen.push(who.localQueryResult()));
    await waitForState(client, (s) => s.isWebSocketConnected);
    await sleep(50); // the token provider is slow: the socket opened first
    release("good:eve");
    await until(who, (value) => value === "eve");
    expect(seen).toEqual(["eve"]);
  });

  it("a query asked for after switching users never shows the previous user's result across a reconnect", async () => {
    const { server } = await startBackend();
    const client = connect(server.url);
    client.setAuth(async () => "good:ada");
    await waitForState(client, (s) => s.isAuthenticated);
    let release!: (token: string) => void;
    client.setAuth(() => new Promise((resolve) => (release = resolve)));
    const who = client.watchQuery(api.tasks.whoami, { tag: 1 });
    const seen: unknown[] = [];
    who.onUpdate(() => seen.push(who.localQueryResult()));
    await sleep(20);
    cutNetwork();
    await waitForState(client, (s) => s.isWebSocketConnected && s.connectionCount === 2);
    await sleep(50);
    release("good:bob");
    await until(who, (value) => value === "bob");
    expect(seen).toEqual(["bob"]);
  });
});

describe("a token the server would refuse", () => {
  it("is refused before it is sent when longer than the server accepts: signed out once, with the reason, on one connection", async () => {
    const { server } = await startBackend();
    const warnings: string[] = [];
    const logger = { log() {}, warn: (...args: unknown[]) => warnings.push(args.map(String).join(" ")) };
    const client = connectClient(server.url, { initialDelayMs: 5, maxDelayMs: 50 }, logger);
    const token = `good:${"a".repeat(PROTOCOL_LIMITS.maxTokenChars)}`; // one character over once prefixed
    const changes: boolean[] = [];
    client.setAuth(async () => token, (isAuthenticated) => changes.push(isAuthenticated));
    const who = client.watchQuery(api.tasks.whoami, {});
    expect(await within(until(who, (value) => value === null), 5_000)).not.toBe("timeout");
    await sleep(300); // sent, the token would have the server close every connection by now
    expect(changes).toEqual([false]);
    expect(client.connectionState()).toMatchObject({ isWebSocketConnected: true, connectionCount: 1, isAuthenticated: false });
    expect(warnings.join("\n")).toContain(`is ${token.length} characters long; the server accepts at most ${PROTOCOL_LIMITS.maxTokenChars}`);
    expect(warnings.join("\n")).not.toContain(token); // the token itself is a secret: never logged
  });
});

describe("order and exactly-once across a reconnect during a token fetch", () => {
  it("mutations lost with the connection are re-sent before those held for the token, each applied once and as its caller", async () => {
    const { server } = await startBackend();
    const client = connect(server.url);
    await waitForState(client, (s) => s.isWebSocketConnected);
    const bodies: string[] = [];
    const done: Promise<unknown>[] = [];
    const send = (body: string) => {
      bodies.push(body);
      const result = client.mutation(api.messages.send, { channel: "held", body });
      done.push(result);
      return result;
    };
    for (let i = 0; i < 3; i++) await send(`before${i}`);
    route.lose = true; // the connection died silently: what is sent now never arrives
    for (let i = 0; i < 10; i++) void send(`lost${i}`);
    await Promise.resolve(); // flushed: sent (as far as the client knows), unanswered
    let release!: (token: string) => void;
    client.setAuth(() => new Promise((resolve) => (release = resolve)));
    for (let i = 0; i < 5; i++) void send(`held${i}`); // held back until the token is sent
    cutNetwork();
    route.lose = false;
    await waitForState(client, (s) => s.isWebSocketConnected && s.connectionCount === 2);
    release("good:ann");
    expect(await within(Promise.all(done), 5_000)).not.toBe("timeout");
    expect(await client.query(api.messages.list, { channel: "held" })).toEqual(bodies);
    // Made signed out, the lost ones run signed out although the token came before their re-send.
    expect(await client.query(api.messages.callers, { channel: "held" })).toEqual(
      bodies.map((body) => `${body}@${body.startsWith("held") ? "ann" : "nobody"}`),
    );
  });

  it("a mutation made as ada and lost with the connection runs as ada, though bob's token came before its re-send", async () => {
    const { server } = await startBackend();
    const client = connect(server.url);
    client.setAuth(async () => "good:ada");
    await waitForState(client, (s) => s.isAuthenticated);
    await client.mutation(api.messages.send, { channel: "c", body: "first" });
    route.lose = true; // the connection died silently
    const fromAda = client.mutation(api.messages.send, { channel: "c", body: "from-ada" });
    await Promise.resolve();
    let release!: (token: string) => void;
    client.setAuth(() => new Promise((resolve) => (release = resolve)));
    const fromBob = client.mutation(api.messages.send, { channel: "c", body: "from-bob" }); // held for bob's token
    cutNetwork();
    route.lose = false;
    await waitForState(client, (s) => s.isWebSocketConnected && s.connectionCount === 2);
    release("good:bob");
    expect(await within(Promise.all([fromAda, fromBob]), 5_000)).not.toBe("timeout");
    expect(await client.query(api.messages.callers, { channel: "c" })).toEqual(["first@ada", "from-ada@ada", "from-bob@bob"]);
    expect(await client.query(api.tasks.whoami, {})).toBe("bob");
    expect(client.connectionState().connectionCount).toBe(2);
  });

  it("a mutation made signed in and lost with the connection runs signed in, though clearAuth() came before its re-send", async () => {
    const { server } = await startBackend();
    const client = connect(server.url);
    client.setAuth(async () => "good:ada");
    await waitForState(client, (s) => s.isAuthenticated);
    route.lose = true;
    const fromAda = client.mutation(api.messages.send, { channel: "c", body: "from-ada" });
    await Promise.resolve();
    client.clearAuth();
    const signedOut = client.mutation(api.messages.send, { channel: "c", body: "signed-out" });
    cutNetwork();
    route.lose = false;
    expect(await within(Promise.all([fromAda, signedOut]), 5_000)).not.toBe("timeout");
    expect(await client.query(api.messages.callers, { channel: "c" })).toEqual(["from-ada@ada", "signed-out@nobody"]);
    expect(await client.query(api.tasks.whoami, {})).toBeNull();
  });
});

describe("one Authenticate at a time", () => {
  it("a token set while a refused one is unanswered is numbered from the version the server kept", async () => {
    const { client, socket } = await openScriptedClient();
    socket.receive({ type: "Transition", startVersion: sv(0, 0, 0), endVersion: sv(1, 0, 1), modifications: [] });
    client.setAuth(async () => "bad");
    await tick();
    client.setAuth(async () => "good:bob");
    const sent = settled(client.mutation(scriptedApi.m.send, { x: 1 }));
    await tick();
    const authenticates = () => socket.sent.filter((m) => m.type === "Authenticate");
    // bob's token waits for the answer to the first, and so does the mutation made after it.
    expect(authenticates()).toEqual([{ type: "Authenticate", baseVersion: 0, token: "bad" }]);
    expect(socket.sent.some((m) => m.type === "Mutation")).toBe(false);
    socket.receive({ type: "AuthError", baseVersion: 0, error: { code: "UNAUTHENTICATED", message: "refused" } });
    await tick();
    // Refused: the server kept version 0, so bob's goes as base 0 (base 1 would be a protocol violation).
    expect(authenticates().at(-1)).toEqual({ type: "Authenticate", baseVersion: 0, token: "good:bob" });
    expect(socket.sent.at(-1)).toMatchObject({ type: "Mutation", requestId: 0 });
    socket.receive({ type: "Transition", startVersion: sv(1, 0, 1), endVersion: sv(1, 1, 2), modifications: [] });
    socket.receive({ type: "MutationResponse", requestId: 0 as never, success: true, result: null, ts: 2 });
    await tick();
    expect(sent.status).toBe("resolved");
    expect(client.connectionState().isAuthenticated).toBe(true);
  });

  it("a refused token then another, on a real server: one connection, no FatalError", async () => {
    const { server } = await startBackend();
    const client = connect(server.url);
    await waitForState(client, (s) => s.isWebSocketConnected);
    const watch = client.watchQuery(api.tasks.whoami, {});
    watch.onUpdate(() => {}); // live throughout (each `until` unsubscribes its own listener)
    await until(watch, (value) => value === null);
    client.setAuth(async () => "bad");
    await tick(); // "bad" sent; its AuthError takes a round trip to the server
    client.setAuth(async () => "good:bob"); // before the AuthError for "bad" arrives
    expect(await within(until(watch, (value) => value === "bob"), 5_000)).toBe("bob");
    expect(client.connectionState().connectionCount).toBe(1);
    expect(sockets.length).toBe(1);
  });
});

describe("read your writes across a reconnect", () => {
  it("a re-sent mutation settles on the Transition that restores its queries, not on the Authenticate's before it", async () => {
    const { client, socket } = await openScriptedClient();
    const watch = client.watchQuery(scriptedApi.q.a, {});
    const seen: unknown[] = [];
    watch.onUpdate(() => seen.push(watch.localQueryResult()));
    client.setAuth(async () => "token");
    await tick();
    socket.receive({ type: "Transition", startVersion: sv(0, 0, 0), endVersion: sv(1, 1, 1), modifications: [{ type: "QueryUpdated", queryId: 0 as never, value: [] }] });
    const append = (store: OptimisticLocalStore) => store.setQuery(scriptedApi.q.a, {}, [...((store.getQuery(scriptedApi.q.a, {}) as string[]) ?? []), "hi(opt)"]);
    const sent = settled(client.mutation(scriptedApi.m.send, { x: 1 }, { optimisticUpdate: append }));
    await tick();
    // It committed at 4, but the connection died before its answer came.
    const next = await reconnectScripted();
    // The re-sent mutation goes before the query set: the server answers it first (transport/connection.ts, `modifyQuerySet`).
    expect(next.sent.map((m) => m.type)).toEqual(["Connect", "Authenticate", "Mutation", "ModifyQuerySet"]);
    // The server answers the Authenticate first, with no queries (the query set comes next), at its newest ts...
    next.receive({ type: "Transition", startVersion: sv(0, 0, 0), endVersion: sv(0, 1, 4), modifications: [] });
    // ...then the re-sent mutation, from its receipt.
    next.receive({ type: "MutationResponse", requestId: 0 as never, success: true, result: null, ts: 4 });
    await tick();
    // What the query shows is still the old connection's result: the write is not in it.
    expect(sent.status).toBe("pending");
    expect(watch.localQueryResult()).toEqual(["hi(opt)"]);
    next.receive({ type: "Transition", startVersion: sv(0, 1, 4), endVersion: sv(1, 1, 4), modifications: [{ type: "QueryUpdated", queryId: 0 as never, value: ["hi"] }] });
    await tick();
    expect(sent.status).toBe("resolved");
    expect(watch.localQueryResult()).toEqual(["hi"]);
    expect(seen).toEqual([[], ["hi(opt)"], ["hi"]]); // the write never vanished from the screen
  });

  it("a restore split over several ModifyQuerySets completes only with the last one's Transition", async () => {
    const { client, socket } = await openScriptedClient();
    const tooManyForOneMessage = PROTOCOL_LIMITS.maxQueriesPerConnection + 1;
    for (let i = 0; i < tooManyForOneMessage; i++) client.watchQuery(scriptedApi.q.a, { i }).onUpdate(() => {});
    await tick();
    socket.receive({ type: "Transition", startVersion: sv(0, 0, 0), endVersion: sv(2, 0, 1), modifications: [] });
    const sent = settled(client.mutation(scriptedApi.m.send, { x: 1 }));
    await tick();
    const next = await reconnectScripted();
    expect(next.sent.filter((m) => m.type === "ModifyQuerySet").map((m) => (m as { newVersion: number }).newVersion)).toEqual([1, 2]);
    next.receive({ type: "Transition", startVersion: sv(0, 0, 0), endVersion: sv(1, 0, 3), modifications: [] });
    next.receive({ type: "MutationResponse", requestId: 0 as never, success: true, result: null, ts: 3 });
    await tick();
    expect(sent.status).toBe("pending"); // one query is not back yet
    next.receive({ type: "Transition", startVersion: sv(1, 0, 3), endVersion: sv(2, 0, 3), modifications: [] });
    await tick();
    expect(sent.status).toBe("resolved");
  });
});

describe("read your writes across nodes", () => {
  it("a mutation committed on node A whose Transition was lost settles after the client moves to node B", async () => {
    const filename = tempFile();
    const nodeA = await startBackend({ filename });
    const nodeB = await startBackend({ filename });
    route.url = nodeA.server.wsUrl;
    const client = connect(nodeA.server.url);
    const other = client.watchQuery(api.messages.list, { channel: "elsewhere" });
    other.onUpdate(() => {});
    await until(other, (value) => value !== undefined);
    // The connection dies between the MutationResponse and the Transition that makes the write visible.
    route.drop = (message) => message.type === "Transition";
    const done = client.mutation(api.messages.send, { channel: "moved", body: "hi" });
    await waitForState(client, (s) => s.inflightMutations === 1 && s.lastTransitionTs !== null);
    await sleep(100);
    route.drop = null;
    route.url = nodeB.server.wsUrl;
    cutNetwork();
    await waitForState(client, (s) => s.isWebSocketConnected && s.connectionCount === 2);
    expect(await within(done, 2_000)).toBe("hi");
    // Read your writes: the one-shot query sees it.
    expect(await client.query(api.messages.list, { channel: "moved" })).toEqual(["hi"]);
  });
});

describe("randomized: network cuts and server restarts", () => {
  it("every mutation applies exactly once and in order, resolves only once visible, and results never go back in time", async () => {
    const filename = tempFile();
    let backend = await startBackend({ filename });
    const port = backend.server.port;
    const client = connect(backend.server.url);
    const watch = client.watchQuery(api.messages.list, { channel: "r" });
    const lengths: number[] = [];
    watch.onUpdate(() => {
      const value = watch.localQueryResult();
      if (value) lengths.push(value.length);
    });
    await until(watch, (value) => value !== undefined);

    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const bodies: string[] = [];
    const done: Promise<void>[] = [];
    const violations: string[] = [];
    for (let step = 0; step < 100; step++) {
      const r = random();
      if (r < 0.65) {
        // One mutation, or a burst of them (so that cuts find several in flight and unsent).
        const count = r < 0.45 ? 1 : 1 + Math.floor(random() * 8);
        for (let i = 0; i < count; i++) {
          const body = `m${bodies.length}`;
          bodies.push(body);
          done.push(
            client.mutation(api.messages.send, { channel: "r", body }).then((result) => {
              if (result !== body) violations.push(`${body} resolved with ${String(result)}`);
              if (!watch.localQueryResult()?.includes(body)) violations.push(`${body} resolved before it was visible`);
            }),
          );
        }
      } else if (r < 0.75) {
        if (sockets.length > 0) cutNetwork();
      } else if (r < 0.85) {
        // Cut right after the next answer: the mutations behind it are running or queued on
        // the server, so some commit with their answer lost (the re-send must not apply them again).
        const socket = sockets.at(-1);
        socket?.on("message", (data) => {
          if (String(data).includes('"MutationResponse"')) socket.terminate();
        });
      } else if (r < 0.89) {
        // The connection dies silently: what the client sends for a while is lost, then the socket drops.
        route.lose = true;
        await sleep(Math.floor(random() * 10));
        route.lose = false;
        if (sockets.length > 0) cutNetwork();
      } else if (r < 0.93) {
        await backend.stop();
        await sleep(Math.floor(random() * 30));
        backend = await startBackend({ filename, port });
      } else {
        // A second, short-lived watch of the same query: stopping it must not stop the first.
        const extra = client.watchQuery(api.messages.list, { channel: "r" });
        const stop = extra.onUpdate(() => {});
        await sleep(1);
        stop();
      }
      await sleep(Math.floor(random() * 15));
    }
    const all = await within(Promise.all(done), 20_000);
    expect(all).not.toBe("timeout");
    expect(violations).toEqual([]);
    const final = await client.query(api.messages.list, { channel: "r" });
    expect(final).toEqual(bodies); // each exactly once, in call order
    for (let i = 1; i < lengths.length; i++) expect(lengths[i]!).toBeGreaterThanOrEqual(lengths[i - 1]!);
  });
});

// @vitest-environment jsdom
/**
 * The browser client and the session helpers at their edges, each case found in a review and
 * failing before its fix: a session call sent a microtask late (after a plain call made after
 * it), a mutation over the message limit re-sent forever, more live queries than one message
 * may carry after a reconnect, tabs sharing a localStorage session, uppercase session IDs, a
 * session cookie under an encoded key, and a session client's close. A real Walk-in server on
 * 127.0.0.1 (port 0) and real clients over real WebSockets (`ws`; jsdom only provides
 * `localStorage` and the page globals the session helpers read).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { WebSocket } from "ws";
import { anyApi, defineSchema, defineTable, mutation, query, type ApiFromModules } from "../server/index.js";
import { startLiveBackend, type LiveBackend } from "../testing/liveBackend.js";
import { v } from "../values/index.js";
import { SessionClient, cookieStore, createSessionIdSource, generateSessionId, memoryStore } from "../sessions/browser/index.js";
import { mutationWithSession, queryWithSession, readSessionIdCookie, sessionTables } from "../sessions/index.js";
import { WalkinClient } from "./index.js";
import { cleanUp, connectClient, cutNetwork, serveApp, waitForState } from "./fixtures/liveClients.js";
import { within } from "./fixtures/promises.js";

const schema = defineSchema({
  ...sessionTables,
  users: defineTable({ name: v.string() }),
  log: defineTable({ sessionId: v.optional(v.string()), entry: v.string() }),
});
const log = {
  append: mutation({
    args: { entry: v.string() },
    handler: async (ctx, { entry }) => {
      await ctx.db.insert("log", { entry: entry.slice(0, 40) });
      return entry.length;
    },
  }),
  appendForSession: mutation({
    args: { sessionId: v.string(), entry: v.string() },
    handler: async (ctx, { sessionId, entry }) => {
      await ctx.db.insert("log", { sessionId, entry });
    },
  }),
  all: query({ args: {}, handler: async (ctx) => (await ctx.db.query("log").collect()).map((l) => l.entry) }),
  forSession: query({
    args: { sessionId: v.string() },
    handler: async (ctx, { sessionId }) =>
      (await ctx.db.query("log").collect()).filter((l) => l.sessionId === sessionId).map((l) => l.entry),
  }),
};
const notes = {
  add: mutationWithSession({
    args: { text: v.string() },
    handler: async (ctx, { text }) => {
      await ctx.db.insert("log", { sessionId: ctx.sessionId, entry: text });
    },
  }),
  mine: queryWithSession({
    args: {},
    handler: async (ctx) =>
      (await ctx.db.query("log").collect()).filter((l) => l.sessionId === ctx.sessionId).map((l) => l.entry),
  }),
};
const rows = {
  get: query({ args: { i: v.number() }, handler: async (_ctx, { i }) => i }),
};
const modules = { log, notes, rows };
const api = anyApi as unknown as ApiFromModules<typeof modules>;

let backend: LiveBackend;
let client: WalkinClient;
beforeAll(async () => {
  backend = await startLiveBackend(schema, modules);
  client = backend.client();
});
afterAll(() => backend.close());

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of opened.splice(0)) await c.close();
  await cleanUp();
  localStorage.clear();
  sessionStorage.clear();
  vi.resetModules();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let n = 0;
const newSessions = () =>
  new SessionClient(client, createSessionIdSource({ store: memoryStore(`review-${++n}`), scope: "tab", channel: null }));

describe("SessionClient keeps the client's call order", () => {
  it("a session mutation called before a plain mutation of the same client runs first", async () => {
    const sessions = newSessions();
    const first = sessions.mutation(api.log.appendForSession, { entry: "first (session)" });
    const second = client.mutation(api.log.append, { entry: "second (plain)" });
    await Promise.all([first, second]);
    // docs/client.md: "A client's mutations run in the order it sent them."
    const entries = await client.query(api.log.all, {});
    expect(entries.filter((e) => e === "first (session)" || e === "second (plain)")).toEqual(["first (session)", "second (plain)"]);
  });

  it("a session mutation's optimistic update shows at once, as the client's does", async () => {
    const sessions = newSessions();
    const sessionId = sessions.source.current!;
    const watch = client.watchQuery(api.log.forSession, { sessionId });
    const stop = watch.onUpdate(() => {});
    while (watch.localQueryResult() === undefined) await sleep(5);
    const pending = sessions.mutation(api.log.appendForSession, { entry: "added" }, {
      optimisticUpdate: (store, args) => {
        const current = store.getQuery(api.log.forSession, { sessionId: args.sessionId }) ?? [];
        store.setQuery(api.log.forSession, { sessionId: args.sessionId }, [...current, `${args.entry} (pending)`]);
      },
    });
    pending.catch(() => {});
    // docs/client.md: "Optimistic updates change local results at once".
    expect(watch.localQueryResult()).toEqual(["added (pending)"]);
    await pending;
    expect(watch.localQueryResult()).toEqual(["added"]);
    stop();
  });
});

describe("a mutation the server cannot accept", () => {
  it("one over the server's message limit is rejected with a clear error instead of bricking the client", async () => {
    const walkin = new WalkinClient(backend.url, {
      webSocketConstructor: WebSocket as never,
      reconnect: { initialDelayMs: 5, maxDelayMs: 50 },
      logger: false,
    });
    opened.push(walkin);
    // 9 MiB of arguments: over maxClientMessageBytes (8 MiB); the server closes with 4001,
    // which docs/protocol.md says the client must answer by "not re-send that message".
    const big = walkin.mutation(api.log.append, { entry: "x".repeat(9 * 1024 * 1024) });
    const small = walkin.mutation(api.log.append, { entry: "small, sent after the big one" });
    big.catch(() => {});
    small.catch(() => {});
    const bigOutcome = await within(big, 3000);
    expect(bigOutcome).toMatchObject({ ok: false, error: { code: "LIMIT_EXCEEDED" } });
    // The calls behind it, and the connection, still work.
    expect(await within(small, 3000)).toEqual({ ok: true, value: "small, sent after the big one".length });
    expect(walkin.connectionState().connectionCount).toBe(1);
  });
});

describe("ConvexReactSessionClient with storage: localStorage", () => {
  it("two tabs share the session, as convex-helpers' client does with localStorage", async () => {
    // Two tabs of one browser: each tab loads its own copy of the module (its own tab ID), both
    // read the same localStorage and talk over a real BroadcastChannel.
    const TabA = (await import("../sessions/react/convexSessionClient.js")).ConvexReactSessionClient;
    vi.resetModules();
    const TabB = (await import("../sessions/react/convexSessionClient.js")).ConvexReactSessionClient;
    const options = { webSocketConstructor: WebSocket as never, logger: false as const, storage: localStorage };
    const a = new TabA(backend.url, options);
    opened.push(a);
    await sleep(20); // tab B is opened a moment later
    const b = new TabB(backend.url, options);
    opened.push(b);
    expect(b.getSessionId()).toBe(a.getSessionId());
    await sleep(100); // the tabs' BroadcastChannel messages
    // Per browser (localStorage): both tabs keep the one stored session.
    expect(b.getSessionId()).toBe(a.getSessionId());
    expect(localStorage.getItem("walkin-session-id")).toBe(a.getSessionId());
    await b.sessionMutation(api.log.appendForSession, { entry: "from tab B" });
    await expect(a.sessionQuery(api.log.forSession, {})).resolves.toEqual(["from tab B"]);
  });
});

describe("a session ID the server refuses", () => {
  const upper = "3B241101-E2BB-4255-8CAF-4136C566A962"; // a UUID v4, but session IDs are lowercase on the server

  it("a stored one is replaced (docs/sessions.md: a stored value that is not an ID is replaced), so session calls work", async () => {
    const key = `review-upper-${++n}`;
    memoryStore(key).set(upper);
    const sessions = new SessionClient(client, createSessionIdSource({ store: memoryStore(key), scope: "tab", channel: null }));
    const outcome = await within(sessions.mutation(api.notes.add, { text: "hello" }), 3000);
    expect(outcome).toEqual({ ok: true, value: null });
    await expect(sessions.query(api.notes.mine, {})).resolves.toEqual(["hello"]);
  });

  it("setSessionId refuses it at once with a clear error, instead of every later call failing on the server", () => {
    const sessions = newSessions();
    expect(() => sessions.setSessionId(upper)).toThrow(/setSessionId takes a session ID the client generated/);
  });
});

describe("a client holding more live queries than one message may carry", () => {
  it("reconnects after a network cut instead of being refused forever (docs/protocol.md: the extra ones get LIMIT_EXCEEDED)", async () => {
    const served = await serveApp({ schema, modules });
    const walkin = connectClient(served.server.url, { initialDelayMs: 5, maxDelayMs: 50 });
    // A long list where every row watches its own query, grown over time: 4000 rows, then 100 more.
    const watches = Array.from({ length: 4100 }, (_, i) => walkin.watchQuery(api.rows.get, { i }));
    for (const watch of watches.slice(0, 4000)) watch.onUpdate(() => {});
    await walkin.mutation(api.log.append, { entry: "first 4000 rows subscribed" });
    for (const watch of watches.slice(4000)) watch.onUpdate(() => {});
    await walkin.mutation(api.log.append, { entry: "100 more rows subscribed" });
    expect(watches[0]!.localQueryResult()).toBe(0);
    expect(() => watches[4099]!.localQueryResult()).toThrow(/at most 4096 queries/); // the documented limit

    cutNetwork(); // a network blip: the restart re-adds every query
    await waitForState(walkin, (s) => s.connectionCount >= 2);
    const after = walkin.mutation(api.log.append, { entry: "after the reconnect" });
    after.catch(() => {});
    expect(await within(after, 3000)).toEqual({ ok: true, value: "after the reconnect".length });
    expect(walkin.connectionState().connectionCount).toBe(2);
  }, 30_000);
});

describe("the session cookie under a custom storageKey", () => {
  it("a server render finds the ID that useCookieStorage wrote under a key with a colon", () => {
    // <SessionProvider useStorage={useCookieStorage} storageKey="shop:session"> writes this cookie;
    // the server render reads it with readSessionIdCookie(cookieHeader, "shop:session").
    const id = generateSessionId();
    cookieStore("shop:session").set(id);
    const cookieHeader = document.cookie; // what the browser sends with the page request
    expect(readSessionIdCookie(cookieHeader, "shop:session")).toBe(id);
  });
});

describe("ConvexReactSessionClient.close()", () => {
  it("releases what the client opened, so a Node script using it can exit", async () => {
    // A BroadcastChannel left open is a MessagePort that keeps Node's event loop alive: a script
    // (or a server render) ending with `await client.close()` never exits.
    const ports = () => process.getActiveResourcesInfo().filter((r) => r === "MessagePort").length;
    const { ConvexReactSessionClient } = await import("../sessions/react/convexSessionClient.js");
    const before = ports();
    const sessionClient = new ConvexReactSessionClient(backend.url, { webSocketConstructor: WebSocket as never, logger: false });
    await sessionClient.sessionMutation(api.notes.add, { text: "from a script" });
    await sessionClient.close();
    await sleep(20);
    expect(ports()).toBe(before);
  });
});

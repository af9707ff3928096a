/**
 * Actions (`action` / `internalAction`) as a Convex app uses them, on real parts: an Engine over
 * a SQLite file, and a real server with WalkinClient where what the client sees matters.
 *
 * Found wrong here, and fixed: an action that never settled kept its caller (and a shutdown, a
 * hot reload, the scheduler stopping) waiting forever, where Convex ends it after 10 minutes
 * (actionDeadline.ts); `server.close()` returned while actions still ran, so the engine closed
 * under them and their next ctx.runMutation failed, its write lost; an action whose result was
 * larger than a connection's send cap closed the client's connection (4009) instead of failing.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  action,
  anyApi,
  defineSchema,
  defineTable,
  httpAction,
  httpRouter,
  internalAction,
  internalMutation,
  internalQuery,
  mutation,
  query,
} from "../server/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { WalkinError, isWalkinError, v } from "../values/index.js";
import { cleanUp, connectClient, serveApp, tempDatabaseFile } from "../browser/fixtures/liveClients.js";
import { startServer } from "../transport/server.js";
import { Engine, type EngineOptions } from "./engine.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const schema = defineSchema({
  notes: defineTable({ body: v.string(), by: v.union(v.string(), v.null()) }),
});

const api = anyApi as any;

const notes = {
  add: internalMutation({
    args: { body: v.string() },
    handler: async (ctx, { body }) => ctx.db.insert("notes", { body, by: (await ctx.auth.getUserIdentity())?.subject ?? null }),
  }),
  list: internalQuery({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").collect()).map((n) => n.body) }),
  whoami: internalQuery({ args: {}, handler: async (ctx) => (await ctx.auth.getUserIdentity())?.subject ?? null }),
  drawAcrossAwait: query({
    args: {},
    handler: async () => {
      const first = [Date.now(), Math.random()];
      await sleep(30);
      return [...first, Date.now(), Math.random()];
    },
  }),
  authors: internalQuery({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").collect()).map((n) => n.by) }),
  count: query({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").collect()).length }),
  clockMutation: mutation({
    args: {},
    handler: async () => {
      const before = Date.now();
      await sleep(20);
      return Date.now() - before;
    },
  }),
};

const jobs = {
  whoami: internalAction({ args: {}, handler: async (ctx) => (await ctx.auth.getUserIdentity())?.subject ?? null }),
  /** Identity as seen in each kind of call the action makes, and read-after-write of its own mutation. */
  tour: action({
    args: { body: v.string() },
    handler: async (ctx, { body }) => {
      const self = (await ctx.auth.getUserIdentity())?.subject ?? null;
      const inQuery = await ctx.runQuery(api.notes.whoami, {});
      await ctx.runMutation(api.notes.add, { body });
      const afterWrite = await ctx.runQuery(api.notes.list, {});
      const inAction = await ctx.runAction(api.jobs.whoami, {});
      return { self, inQuery, afterWrite, inAction };
    },
  }),
  badReturn: action({ args: {}, returns: v.number(), handler: async () => "not a number" as unknown as number }),
  typed: action({ args: { n: v.number() }, returns: v.number(), handler: async (_ctx, { n }) => n * 2 }),
  fail: action({
    args: {},
    handler: async () => {
      throw new WalkinError("card declined", { data: { retry: false, amount: 12n } });
    },
  }),
  crash: action({
    args: {},
    handler: async () => {
      throw new Error("db password is hunter2");
    },
  }),
  clock: action({
    args: {},
    handler: async () => {
      const before = Date.now();
      await sleep(25);
      return { elapsed: Date.now() - before, randoms: [Math.random(), Math.random()] };
    },
  }),
  schedule: action({
    args: { body: v.string() },
    handler: async (ctx, { body }) => ctx.scheduler.runAfter(0, api.notes.add, { body }),
  }),
  fetchFrom: action({
    args: { url: v.string() },
    handler: async (_ctx, { url }) => {
      const response = await fetch(url, { method: "POST", body: "ping" });
      return { status: response.status, text: await response.text() };
    },
  }),
  writeAfter: action({
    args: { body: v.string(), ms: v.number() },
    handler: async (ctx, { body, ms }) => {
      await sleep(ms);
      await ctx.runMutation(api.notes.add, { body });
      return body;
    },
  }),
  never: action({ args: {}, handler: () => new Promise<never>(() => {}) }),
  /** Says it started, waits for the test to open the gate, then writes; tells `gate.onEnd` how that went. */
  gated: action({
    args: { body: v.string() },
    handler: async (ctx, { body }) => {
      gate.started();
      await gate.opened;
      try {
        await ctx.runMutation(api.notes.add, { body });
      } catch (error) {
        gate.onEnd(`failed ${(error as WalkinError).code}: ${(error as Error).message}`);
        throw error;
      }
      gate.onEnd(`wrote ${body}`);
      return body;
    },
  }),
  wrongKind: action({ args: {}, handler: async (ctx) => ctx.runQuery(api.notes.add, { body: "x" }) }),
  sparse: action({ args: {}, handler: async () => ({ kept: 1, gone: undefined, nested: { kept: 2, gone: undefined } }) }),
  big: action({ args: { mb: v.number() }, handler: async (_ctx, { mb }) => "x".repeat(mb * 1024 * 1024) }),
  callNever: action({ args: {}, handler: async (ctx) => ctx.runAction(api.jobs.never, {}) }),
  scheduleNever: mutation({ args: {}, handler: async (ctx) => void (await ctx.scheduler.runAfter(0, api.jobs.never, {})) }),
  states: query({ args: {}, handler: async (ctx) => (await ctx.db.system.query("_scheduled_functions").collect()).map((job) => job.state.kind) }),
};

/** The gate `jobs:gated` waits at: `reset` before each use. */
const gate = {
  started: () => {},
  onEnd: (_outcome: string) => {},
  opened: Promise.resolve(),
  open: () => {},
  reset() {
    const started = new Promise<void>((resolve) => (gate.started = resolve));
    gate.opened = new Promise<void>((resolve) => (gate.open = resolve));
    return started;
  },
};

const modules = { notes, jobs };

const authenticate: EngineOptions["authenticate"] = async (_ctx, token) =>
  token.startsWith("user:") ? { subject: token.slice(5), issuer: "test", tokenIdentifier: `test|${token.slice(5)}` } : null;

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await cleanUp();
});

async function openEngine(options: Partial<EngineOptions> = {}) {
  const engine = await Engine.open({
    storage: await openSqliteStorage({ filename: tempDatabaseFile("walkin-actions-") }),
    schema,
    modules,
    authenticate,
    logError: () => {},
    ...options,
  });
  cleanups.push(() => engine.close());
  return engine;
}

async function errorOf(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

describe("ctx.runQuery / runMutation / runAction from an action", () => {
  it("keep the caller's identity, reach internal functions, and a later runQuery sees a runMutation's commit", async () => {
    const engine = await openEngine();
    const result = await engine.runAction("jobs:tour", { body: "hello" }, { token: "user:ada", fromClient: true });
    expect(result).toEqual({ self: "ada", inQuery: "ada", afterWrite: ["hello"], inAction: "ada" });
    expect(await engine.runQuery("notes:count", {})).toBe(1);
  });

  it("a client cannot call an internal action, and sees a clear error", async () => {
    const engine = await openEngine();
    const error = await errorOf(engine.runAction("jobs:whoami", {}, { fromClient: true }));
    expect(isWalkinError(error)).toBe(true);
    expect(error.message).toContain("jobs:whoami");
    // The same action, called by an action, runs (as the tour above shows).
  });

  it("validates args and returns", async () => {
    const engine = await openEngine();
    expect(await engine.runAction("jobs:typed", { n: 2 })).toBe(4);
    const bad = await errorOf(engine.runAction("jobs:typed", { n: "2" }, { fromClient: true }));
    expect(bad.code).toBe("INVALID_ARGUMENT");
    expect(bad.message).toContain("args.n");
    const badReturn = await errorOf(engine.runAction("jobs:badReturn", {}));
    expect(isWalkinError(badReturn)).toBe(true);
  });

  it("Date.now and Math.random are real in actions, fixed in queries and mutations", async () => {
    const engine = await openEngine();
    const a = (await engine.runAction("jobs:clock", {})) as { elapsed: number; randoms: number[] };
    expect(a.elapsed).toBeGreaterThan(0);
    expect(a.randoms[0]).not.toBe(a.randoms[1]);
    expect(await engine.runMutation("notes:clockMutation", {})).toMatchObject({ value: 0 });
  });

  it("a query's Date.now and Math.random stay fixed across its awaits while actions draw from the real ones in between", async () => {
    const engine = await openEngine();
    const alone = (await engine.runQuery("notes:drawAcrossAwait", {})) as number[];
    const busy = Array.from({ length: 20 }, () => engine.runAction("jobs:clock", {}));
    const interleaved = (await engine.runQuery("notes:drawAcrossAwait", {})) as number[];
    const drawn = (await Promise.all(busy)) as Array<{ randoms: number[] }>;
    // [now, random, now after the await, random after the await]: the clock did not move, and
    // the random sequence (seeded by query, args and snapshot) is the one drawn without actions.
    expect(interleaved[2]).toBe(interleaved[0]);
    expect([interleaved[1], interleaved[3]]).toEqual([alone[1], alone[3]]);
    expect(new Set(drawn.flatMap((d) => d.randoms)).size).toBe(40);
  });

  it("a ctx call of the wrong kind names the function and its kind", async () => {
    const engine = await openEngine();
    const error = await errorOf(engine.runAction("jobs:wrongKind", {}));
    expect(error.code).toBe("WRONG_FUNCTION_TYPE");
    expect(error.message).toContain("notes:add");
  });

  it("ctx.scheduler.runAfter from an action runs the function", async () => {
    const engine = await openEngine();
    await engine.runAction("jobs:schedule", { body: "later" }, { token: "user:bo" });
    await expect.poll(() => engine.runQuery("notes:list", {})).toEqual(["later"]);
    // As in Convex, a scheduled function runs without the scheduler's identity.
    expect(await engine.runQuery("notes:authors", {})).toEqual([null]);
  });

  it("fetch against a local HTTP server", async () => {
    const server: Server = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk) => (body += chunk));
      request.on("end", () => response.end(`got ${body}`));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const engine = await openEngine();
    const { port } = server.address() as AddressInfo;
    expect(await engine.runAction("jobs:fetchFrom", { url: `http://127.0.0.1:${port}/` })).toEqual({ status: 200, text: "got ping" });
  });

  it("many concurrent actions each commit their write exactly once", async () => {
    const engine = await openEngine();
    const n = 60;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => engine.runAction("jobs:writeAfter", { body: `n${i}`, ms: i % 5 })));
    expect(results).toHaveLength(n);
    expect(((await engine.runQuery("notes:list", {})) as string[]).sort()).toEqual(Array.from({ length: n }, (_, i) => `n${i}`).sort());
  });
});

describe("actions over a real server", () => {
  it("errors reach the client with code, message and data; an unexpected one without its message", async () => {
    const { server } = await serveApp({ schema, modules, authenticate }, { filename: tempDatabaseFile("walkin-actions-") });
    const client = connectClient(server.url, { initialDelayMs: 10, maxDelayMs: 100 });
    const failed = await errorOf(client.action(api.jobs.fail, {}));
    expect(isWalkinError(failed)).toBe(true);
    expect({ code: failed.code, message: failed.message, data: failed.data }).toEqual({ code: "APPLICATION", message: "card declined", data: { retry: false, amount: 12n } });
    const invalid = await errorOf(client.action(api.jobs.typed, { n: "two" }));
    expect({ code: invalid.code, message: invalid.message }).toEqual({ code: "INVALID_ARGUMENT", message: expect.stringContaining("args.n: expected number, received string") });
    expect(await client.action(api.jobs.sparse, {})).toEqual({ kept: 1, nested: { kept: 2 } });
    const crashed = await errorOf(client.action(api.jobs.crash, {}));
    expect(crashed.code).toBe("INTERNAL");
    expect(String(crashed.message)).not.toContain("hunter2");
    expect(String(crashed.stack ?? "")).not.toContain("hunter2");
  });
});

describe("an action's result too large for one reply", () => {
  it("is refused with LIMIT_EXCEEDED, and the connection stays", async () => {
    const { server } = await serveApp({ schema, modules, authenticate }, { filename: tempDatabaseFile("walkin-actions-") });
    const client = connectClient(server.url, { initialDelayMs: 10, maxDelayMs: 100 });
    expect(await client.action(api.jobs.big, { mb: 1 })).toHaveLength(1024 * 1024);
    const error = await errorOf(client.action(api.jobs.big, { mb: 9 }));
    expect({ code: error.code, message: error.message }).toEqual({ code: "LIMIT_EXCEEDED", message: expect.stringMatching(/jobs:big returned .* bytes/) });
    expect(client.connectionState().connectionCount).toBe(1);
    expect(await client.action(api.jobs.typed, { n: 1 })).toBe(2);
  });
});

describe("shutdown and disconnects while actions run", () => {
  it("server close waits for a running action, whose write lands once before the engine closes", async () => {
    const filename = tempDatabaseFile("walkin-actions-");
    const backend = await serveApp({ schema, modules, authenticate }, { filename });
    const events: string[] = [];
    const close = backend.engine.close.bind(backend.engine);
    backend.engine.close = async () => {
      events.push("engine closing");
      await close();
    };
    gate.onEnd = (outcome) => events.push(outcome);
    const client = connectClient(backend.server.url, { initialDelayMs: 10, maxDelayMs: 100 });
    const started = gate.reset();
    const pending = client.action(api.jobs.gated, { body: "charged" }).catch((error: unknown) => error);
    await started;
    // As `walkin start` shuts down: the server, then the engine.
    const stopping = backend.stop();
    // The client loses its socket (its action was in flight: DISCONNECTED); the action goes on.
    expect(((await pending) as WalkinError).code).toBe("DISCONNECTED");
    await sleep(100);
    gate.open();
    await stopping;
    expect(events).toEqual(["wrote charged", "engine closing"]);
    const engine = await Engine.open({ storage: await openSqliteStorage({ filename }), schema, modules, runScheduler: false });
    cleanups.push(() => engine.close());
    expect(await engine.runQuery("notes:list", {})).toEqual(["charged"]);
  });

  it("a client that leaves mid-action: the action still writes once, the server stays up", async () => {
    const backend = await serveApp({ schema, modules, authenticate }, { filename: tempDatabaseFile("walkin-actions-") });
    const client = connectClient(backend.server.url, { initialDelayMs: 10, maxDelayMs: 100 });
    const started = gate.reset();
    const pending = client.action(api.jobs.gated, { body: "left" }).catch((error: unknown) => error);
    await started;
    client.close();
    expect(((await pending) as WalkinError).code).toBe("DISCONNECTED");
    gate.open();
    await expect.poll(() => backend.engine.runQuery("notes:list", {})).toEqual(["left"]);
    const other = connectClient(backend.server.url, { initialDelayMs: 10, maxDelayMs: 100 });
    expect(await other.query(api.notes.count, {})).toBe(1);
  });
});

describe("the action time limit", () => {
  it("an action that never settles fails with LIMIT_EXCEEDED, and what it does afterwards is refused", async () => {
    const engine = await openEngine({ actionTimeoutMs: 100 });
    const error = await errorOf(engine.runAction("jobs:never", {}));
    expect({ code: error.code, data: error.data }).toEqual({ code: "LIMIT_EXCEEDED", data: { limit: "actionTimeoutMs", max: 100 } });
    expect(error.message).toMatch(/jobs:never ran past the time limit of one action \(100 ms\).*ctx\.scheduler\.runAfter/);

    // Still running past its limit, it can no longer write.
    const ended = new Promise<string>((resolve) => (gate.onEnd = resolve));
    gate.reset();
    expect((await errorOf(engine.runAction("jobs:gated", { body: "too late" }))).code).toBe("LIMIT_EXCEEDED");
    gate.open();
    expect(await ended).toMatch(/^failed LIMIT_EXCEEDED/);
    expect(await engine.runQuery("notes:list", {})).toEqual([]);
    // An action that ends in time is unaffected.
    expect(await engine.runAction("jobs:typed", { n: 4 })).toBe(8);
  });

  it("an action called by an action ends no later than its caller", async () => {
    const engine = await openEngine({ actionTimeoutMs: 100 });
    expect((await errorOf(engine.runAction("jobs:callNever", {}))).code).toBe("LIMIT_EXCEEDED");
  });

  it("a client calling an action that never settles gets the error instead of waiting forever", async () => {
    const engine = await Engine.open({
      storage: await openSqliteStorage({ filename: tempDatabaseFile("walkin-actions-") }),
      schema, modules, authenticate, runScheduler: false, actionTimeoutMs: 100,
    });
    const server = await startServer({ engine, port: 0, log: () => {} });
    cleanups.push(() => engine.close(), () => server.close());
    const client = connectClient(server.url, { initialDelayMs: 10, maxDelayMs: 100 });
    const error = await errorOf(client.action(api.jobs.never, {}));
    expect(isWalkinError(error) && error.code).toBe("LIMIT_EXCEEDED");
  });

  it("a scheduled action that never settles is recorded as failed, and the engine still closes", async () => {
    const engine = await Engine.open({
      storage: await openSqliteStorage({ filename: tempDatabaseFile("walkin-actions-") }),
      schema, modules, authenticate, logError: () => {}, actionTimeoutMs: 100,
    });
    await engine.runMutation("jobs:scheduleNever", {});
    await expect.poll(() => engine.runQuery("jobs:states", {}), { timeout: 10_000 }).toEqual(["failed"]);
    await engine.close();
  });

  it("an HTTP action that never settles answers the limit's error, and the server still shuts down", async () => {
    const engine = await openEngine({ actionTimeoutMs: 100, runScheduler: false });
    const http = httpRouter();
    http.route({ path: "/hang", method: "POST", handler: httpAction(() => new Promise<never>(() => {})) });
    const server = await startServer({ engine, port: 0, http, log: () => {} });
    cleanups.push(() => server.close());
    const response = await fetch(`${server.url}/hang`, { method: "POST", body: "x" });
    const body = (await response.json()) as { code: string; message: string };
    expect(body.code).toBe("LIMIT_EXCEEDED");
    expect(body.message).toMatch(/^HTTP action POST \/hang ran past the time limit/);
    await server.close();
  });

  it("refuses a time limit that is not a positive number, saying what it takes", async () => {
    await expect(openEngine({ actionTimeoutMs: 0 })).rejects.toThrow(/actionTimeoutMs must be a positive number of milliseconds/);
  });
});

/**
 * What a client sees of the server's own bugs (a `returns` mismatch quoting the handler's data,
 * a write the schema refuses and a `unique()` that found two, naming documents) in production
 * and in dev; how deep actions may call actions; and that a server shutting down
 * starts no action that arrives after close() began.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { action, anyApi, httpAction, httpRouter, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { modules as fixtureModules, openEngine } from "./fixtures/app.js";
import { startHarness, type Harness } from "./fixtures/harness.js";
import { addQueries, isTransition, type RawClient } from "./fixtures/rawClient.js";
import type { ServerMessage } from "./protocol.js";

const SECRET = "hunter2-do-not-leak";

let harness: Harness | undefined;
let dir: string | undefined;
afterEach(async () => {
  await harness?.dispose();
  harness = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A server over `modules` on a real SQLite file; production unless `dev`. */
async function serve(modules: Record<string, Record<string, unknown>>, options: { dev?: boolean; http?: ReturnType<typeof httpRouter> } = {}): Promise<Harness> {
  dir = mkdtempSync(join(tmpdir(), "walkin-errs-"));
  const engine = await openEngine(join(dir, "app.db"), { modules: { ...fixtureModules, ...modules } as never });
  harness = await startHarness({ engine, exposeInternalErrors: options.dev ?? false, ...(options.http ? { http: options.http } : {}) });
  return harness;
}

// A user document whose `password` field the `returns` validator leaves out: the mismatch's
// message quotes the field, and it is the server's bug, not the caller's.
const user = { name: "Ada", password: SECRET };
const returnsUser = v.object({ name: v.string() });
const leaky = {
  users: {
    me: query({ args: {}, returns: returnsUser, handler: async () => user as never }),
    save: mutation({ args: {}, returns: returnsUser, handler: async () => user as never }),
    fetch: action({ args: {}, returns: returnsUser, handler: async () => user as never }),
    byName: query({ args: { name: v.string() }, handler: async (_ctx, { name }) => name }),
  },
};

const responseTo = (type: string, requestId: number) => (m: ServerMessage) => m.type === type && (m as { requestId?: number }).requestId === requestId;

/** The error each way of calling `users:*` gets: WebSocket query, mutation and action, the HTTP API, and an HTTP action. */
async function errorsOfEveryKind(h: Harness, client: RawClient): Promise<unknown[]> {
  client.send(addQueries(0, [[1, "users:me", {}]]));
  const initial = await client.waitFor((m) => isTransition(m) && m.endVersion.querySet === 1);
  const queried = isTransition(initial) && initial.modifications[0]?.type === "QueryFailed" ? initial.modifications[0].error : initial;
  client.send({ type: "Mutation", requestId: 1, udfPath: "users:save", args: {} });
  const mutated = await client.waitFor(responseTo("MutationResponse", 1));
  client.send({ type: "Action", requestId: 2, udfPath: "users:fetch", args: {} });
  const acted = await client.waitFor(responseTo("ActionResponse", 2));
  const overHttp = await fetch(`${h.server.url}/api/query`, { method: "POST", body: JSON.stringify({ path: "users:me", args: {} }) });
  const routed = await fetch(`${h.server.url}/me`);
  return [
    queried,
    (mutated as { error?: unknown }).error,
    (acted as { error?: unknown }).error,
    { status: overHttp.status, body: await overHttp.json() },
    { status: routed.status, body: await routed.json() },
  ];
}

function routes() {
  const http = httpRouter();
  http.route({ path: "/me", method: "GET", handler: httpAction(async (ctx) => Response.json(await ctx.runQuery(anyApi.users!.me!, {}))) });
  return http;
}

describe("a returns mismatch (the server's own bug)", () => {
  it("reaches clients as INTERNAL in production, quoting none of the returned data; the log has the detail", async () => {
    const h = await serve(leaky, { http: routes() });
    const client = await h.client();
    const internal = { code: "INTERNAL", message: "Internal server error" };
    expect(await errorsOfEveryKind(h, client)).toEqual([
      internal,
      internal,
      internal,
      // The HTTP API adds Convex's names for the same fields.
      { status: 500, body: { status: "error", ...internal, errorMessage: internal.message, logLines: [] } },
      { status: 500, body: { status: "error", ...internal } },
    ]);
    expect(JSON.stringify(client.messages)).not.toContain(SECRET);
    expect(JSON.stringify(client.messages)).not.toContain("password");
    const log = h.logs.join("\n");
    for (const context of ["query users:me failed", "mutation users:save failed", "action users:fetch failed", "query users:me (HTTP) failed", "HTTP action GET /me failed"]) {
      expect(log).toContain(context);
    }
    expect(log).toContain("does not match its returns validator");
    expect(log).toContain("password");
  });

  it("shows its message in dev", async () => {
    const h = await serve(leaky, { dev: true, http: routes() });
    const errors = await errorsOfEveryKind(h, await h.client());
    const misuse = { code: "MISUSE", message: expect.stringContaining("users:me returned a value that does not match its returns validator") };
    expect(errors[0]).toEqual(misuse);
    expect(errors[1]).toEqual({ ...misuse, message: expect.stringContaining("users:save returned") });
    expect(errors[2]).toEqual({ ...misuse, message: expect.stringContaining("users:fetch returned") });
    expect(errors[3]).toEqual({ status: 400, body: { status: "error", ...misuse, errorMessage: misuse.message, logLines: [] } });
    expect(errors[4]).toEqual({ status: 400, body: { status: "error", ...misuse } });
    expect(JSON.stringify(errors)).toContain("password");
  });

  it("leaves the errors a client caused as they were in production: bad args, an unknown function", async () => {
    const h = await serve(leaky);
    const client = await h.client();
    client.send(addQueries(0, [[1, "users:byName", { name: 42 }], [2, "users:nobody", {}]]));
    const initial = await client.waitFor((m) => isTransition(m) && m.endVersion.querySet === 1);
    const failed: Record<number, unknown> = isTransition(initial) ? Object.fromEntries(initial.modifications.map((m) => [m.queryId, m.type === "QueryFailed" ? m.error : m])) : {};
    const [badArgs, unknown] = [failed[1], failed[2]];
    expect(badArgs).toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringContaining("name") });
    expect(unknown).toMatchObject({ code: "UNKNOWN_FUNCTION", message: expect.stringContaining("users:nobody") });
    const overHttp = await fetch(`${h.server.url}/api/mutation`, { method: "POST", body: JSON.stringify({ path: "users:me", args: {} }) });
    expect(await overHttp.json()).toMatchObject({ code: "WRONG_FUNCTION_TYPE", message: expect.stringContaining("is a query") });
  });
});

describe("the app's data breaking its server code's assumptions: a write the schema refuses, two documents for unique()", () => {
  // Each writes into a channel the caller never sees, then fails on it: the engine's messages
  // name the hidden documents' IDs (and the schema's table and field).
  const dataBreaking = {
    hidden: {
      corrupt: mutation({
        args: {},
        handler: async (ctx) => {
          const id = await ctx.db.insert("messages", { channel: "staff-only", body: "payroll" });
          await ctx.db.patch(id, { body: 0 } as never);
        },
      }),
      twice: mutation({
        args: {},
        handler: async (ctx) => {
          await ctx.db.insert("messages", { channel: "staff-only", body: "payroll" });
          await ctx.db.insert("messages", { channel: "staff-only", body: "bonuses" });
          await ctx.db.query("messages").withIndex("by_channel", (q) => q.eq("channel", "staff-only")).unique();
        },
      }),
    },
  };

  /** The mutation's error over the WebSocket and over the HTTP API. */
  async function call(h: Harness, path: string): Promise<{ overSocket: unknown; overHttp: { status: number; body: unknown } }> {
    const client = await h.client();
    client.send({ type: "Mutation", requestId: 1, udfPath: path, args: {} });
    const answer = (await client.waitFor(responseTo("MutationResponse", 1))) as { error?: unknown };
    const response = await fetch(`${h.server.url}/api/mutation`, { method: "POST", body: JSON.stringify({ path, args: {} }) });
    return { overSocket: answer.error, overHttp: { status: response.status, body: await response.json() } };
  }

  it.each([
    ["hidden:corrupt", /Document "([^"]+)" does not match the schema of table "messages"/],
    ["hidden:twice", /unique\(\) found more than one document in "messages" \(([^ ]+) and/],
  ])("%s reaches clients as INTERNAL in production, naming no document; the log has the detail; nothing is written", async (path, detail) => {
    const h = await serve(dataBreaking);
    const internal = { code: "INTERNAL", message: "Internal server error" };
    const { overSocket, overHttp } = await call(h, path);
    expect(overSocket).toEqual(internal);
    expect(overHttp).toEqual({ status: 500, body: { status: "error", ...internal, errorMessage: internal.message, logLines: [] } });
    const log = h.logs.join("\n");
    expect(log).toContain(`mutation ${path} failed`);
    const hiddenId = detail.exec(log)?.[1];
    expect(hiddenId).toBeDefined();
    expect(JSON.stringify([overSocket, overHttp])).not.toContain(hiddenId!);
    expect(await h.engine.runQuery("messages:list", { channel: "staff-only" })).toEqual([]);
  });

  it("shows their codes and messages in dev", async () => {
    const h = await serve(dataBreaking, { dev: true });
    const violation = { code: "SCHEMA_VIOLATION", message: expect.stringMatching(/^Document "[^"]+" does not match the schema of table "messages": messages\.body: expected string/) };
    expect(await call(h, "hidden:corrupt")).toEqual({
      overSocket: violation,
      overHttp: { status: 400, body: { status: "error", ...violation, errorMessage: violation.message, logLines: [] } },
    });
    const notUnique = { code: "NOT_UNIQUE", message: expect.stringContaining('unique() found more than one document in "messages"') };
    expect(await call(h, "hidden:twice")).toEqual({
      overSocket: notUnique,
      overHttp: { status: 400, body: { status: "error", ...notUnique, errorMessage: notUnique.message, logLines: [] } },
    });
  });
});

describe("ctx.runAction nesting", () => {
  const nesting = {
    nest: {
      /** Calls itself `levels` more times below itself. */
      down: action({
        args: { levels: v.number() },
        handler: async (ctx, { levels }): Promise<number> => (levels === 0 ? 0 : 1 + (await ctx.runAction(anyApi.nest!.down!, { levels: levels - 1 }))),
      }),
    },
  };

  it("allows a chain 8 calls deep below the action called from outside", async () => {
    const h = await serve(nesting);
    expect(await h.engine.runAction("nest:down", { levels: 8 })).toBe(8);
  });

  it("fails one more with LIMIT_EXCEEDED naming the chain, instead of recursing until the time limit", async () => {
    const h = await serve(nesting);
    const failure = await h.engine.runAction("nest:down", { levels: 1_000 }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: "LIMIT_EXCEEDED", data: { limit: "maxCallDepth", max: 8 } });
    expect((failure as Error).message).toContain(`past the limit of 8: ${Array(10).fill("nest:down").join(" → ")}`);
  });
});

describe("an Action that arrives after close() began", () => {
  it("does not start; close() resolves once the action already running ends", async () => {
    let release = { action: () => {}, mutation: () => {} };
    const released = { action: new Promise<void>((r) => (release.action = r)), mutation: new Promise<void>((r) => (release.mutation = r)) };
    const started = { slow: 0, late: 0, mutation: 0 };
    const h = await serve({
      shut: {
        slow: action({ args: {}, handler: async () => void (started.slow++, await released.action) }),
        late: action({ args: {}, handler: async () => void started.late++ }),
        // Holds the connection's mutation queue, so its shutdown waits here while the late
        // Action arrives (a socket is closed only once its running mutation has answered).
        hold: mutation({ args: {}, handler: async () => void (started.mutation++, await released.mutation) }),
      },
    });
    const client = await h.client();
    const until = async (done: () => boolean) => {
      while (!done()) await new Promise((r) => setTimeout(r, 5));
    };
    client.send({ type: "Action", requestId: 1, udfPath: "shut:slow", args: {} });
    client.send({ type: "Mutation", requestId: 2, udfPath: "shut:hold", args: {} });
    await until(() => started.slow === 1 && started.mutation === 1);

    let closed = false;
    const closing = h.server.close().then(() => (closed = true));
    client.send({ type: "Action", requestId: 3, udfPath: "shut:late", args: {} });
    // The Pong answers a Ping sent after the Action: the server has read the Action by then.
    client.send({ type: "Ping" });
    await client.waitFor((m) => m.type === "Pong");
    release.mutation();
    expect(await client.closed).toMatchObject({ code: 4010 });
    expect(closed).toBe(false); // the first action still runs

    release.action();
    await closing;
    expect(started).toEqual({ slow: 1, late: 0, mutation: 1 });
    expect(client.messages.some(responseTo("ActionResponse", 3))).toBe(false);
    release = { action: () => {}, mutation: () => {} };
  });
});

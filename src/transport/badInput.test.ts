/**
 * Bad input over the HTTP API and the WebSocket protocol gets a clear error that says what was
 * wrong, and changes nothing, crashes nothing and leaks nothing. Each case here was found in a
 * review of both paths, and failed before its fix: a malformed request-target (which crashed
 * the server on a WebSocket upgrade), a body that is not UTF-8, a malformed Bearer header, a
 * message type that is not a string, `args: null` on a live query, a union of objects, and the
 * name of a module of internal functions.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Engine } from "../engine/engine.js";
import { defineSchema, defineTable, internalMutation, mutation } from "../server/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { v } from "../values/index.js";
import { modules as fixtureModules } from "./fixtures/app.js";
import { startHarness, sleep, type Harness } from "./fixtures/harness.js";
import { rawHttp } from "./fixtures/rawHttp.js";
import { addQueries, isTransition, type RawClient } from "./fixtures/rawClient.js";
import { CLOSE_CODES, type FatalErrorMessage, type ServerMessage } from "./protocol.js";

let harness: Harness | undefined;
afterEach(async () => {
  // Bounded: a server left with a socket it can never close would otherwise hang the hook.
  const h = harness;
  harness = undefined;
  if (h) await Promise.race([h.dispose(), sleep(5_000)]);
});

async function post(path: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const response = await fetch(`${harness!.server.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : new Uint8Array(body),
  });
  return { status: response.status, body: (await response.json()) as { status: string; code?: string; message?: string; value?: unknown } };
}

const isFatal = (m: ServerMessage): m is FatalErrorMessage => m.type === "FatalError";

describe("malformed request-targets", () => {
  it("a WebSocket upgrade to a malformed absolute URL is answered with a 4xx, without an exception escaping the upgrade handler", async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on("uncaughtException", onUncaught);
    try {
      harness = await startHarness();
      const answer = await rawHttp(
        harness.server.port,
        "GET http://[::1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      );
      await sleep(50);
      // Without a test runner's handler, that exception ends the server process.
      expect({ status: answer.split("\r\n")[0], uncaught: uncaught.map(String) }).toEqual({ status: expect.stringMatching(/^HTTP\/1\.1 4\d\d /), uncaught: [] });
    } finally {
      process.off("uncaughtException", onUncaught);
    }
    // And the server can still shut down (the socket is not left half-open for ever).
    const h = harness!;
    harness = undefined;
    const closed = await Promise.race([h.dispose().then(() => true), sleep(5_000).then(() => false)]);
    expect(closed).toBe(true);
  });

  it("an HTTP request to a malformed absolute URL gets a 400, not a logged internal error", async () => {
    harness = await startHarness();
    const answer = await rawHttp(harness.server.port, "GET http://[::1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect({ status: answer.split("\r\n")[0], logs: harness.logs.map((line) => line.split("\n")[0]) }).toEqual({
      status: expect.stringMatching(/^HTTP\/1\.1 400 /),
      logs: [],
    });
  });
});

describe("HTTP one-shot calls", () => {
  it("refuses a body that is not valid UTF-8 with 400 instead of storing U+FFFD in place of the bad bytes", async () => {
    harness = await startHarness();
    // "café" in Latin-1: the é is the lone byte 0xE9, which is not UTF-8.
    const body = Buffer.concat([Buffer.from('{"path":"messages:send","args":{"channel":"a","body":"caf'), Buffer.from([0xe9]), Buffer.from('"}}')]);
    const answer = await post("/api/mutation", body);
    expect(answer).toMatchObject({ status: 400, body: { status: "error", code: "INVALID_ARGUMENT", message: expect.stringMatching(/UTF-8/) } });
    expect(await harness.engine.runQuery("messages:count", {})).toBe(0);
  });

  it.each([
    ["an empty Bearer token", "Bearer"],
    ["a Bearer token with a space in it", "Bearer token-bob extra"],
  ])("refuses %s with 401 instead of running the call signed out", async (_name, authorization) => {
    harness = await startHarness();
    const answer = await post("/api/mutation", JSON.stringify({ path: "messages:send", args: { channel: "a", body: "x" } }), { authorization });
    expect(answer).toMatchObject({ status: 401, body: { status: "error", code: "UNAUTHENTICATED" } });
    expect(await harness.engine.runQuery("messages:count", {})).toBe(0);
  });
});

describe("the WebSocket protocol", () => {
  it.each([
    ["an object with a toString field", JSON.stringify({ type: { toString: 0 } })],
    ["deeply nested arrays", `{"type":${"[".repeat(20_000)}${"]".repeat(20_000)}}`],
  ])("a message whose type is %s gets a FatalError about its type, not a JavaScript error", async (_name, text) => {
    harness = await startHarness();
    const client: RawClient = await harness.client();
    client.send(text);
    const fatal = await client.waitFor(isFatal);
    expect(fatal.error.message).toMatch(/unknown message type/);
    expect(fatal.error.message).not.toMatch(/Cannot convert|Maximum call stack/);
    expect((await client.closed).code).toBe(CLOSE_CODES.protocolError);
  });

  it("a live query added with args null is refused as a mutation, an action or /api/query with args null are", async () => {
    harness = await startHarness();
    const overHttp = await post("/api/query", JSON.stringify({ path: "messages:count", args: null }));
    expect(overHttp).toMatchObject({ status: 400, body: { code: "INVALID_ARGUMENT", message: expect.stringMatching(/args: expected an object of named arguments, received null/) } });
    const client = await harness.client();
    client.send(addQueries(0, [[1, "messages:count", null]]));
    const transition = await client.waitFor(isTransition);
    expect(transition.modifications).toEqual([
      { type: "QueryFailed", queryId: 1, error: { code: "INVALID_ARGUMENT", message: expect.stringMatching(/args: expected an object of named arguments, received null/) } },
    ]);
  });
});

// ---------------------------------------------------------------- an app of our own

const shapes = {
  draw: mutation({
    args: {
      shape: v.union(
        v.object({ kind: v.string(), radius: v.number() }),
        v.object({ kind: v.string(), width: v.number(), height: v.number() }),
      ),
    },
    handler: async () => null,
  }),
};
/** A module holding only internal functions. */
const admin = { wipe: internalMutation({ args: {}, handler: async () => null }) };

async function startOwnApp(): Promise<Harness> {
  const engine = await Engine.open({
    storage: await openSqliteStorage({ filename: ":memory:" }),
    schema: defineSchema({ messages: defineTable({ channel: v.string(), body: v.string() }).index("by_channel", ["channel"]) }),
    modules: { ...fixtureModules, shapes, admin },
    runScheduler: false,
    logError: () => undefined,
  });
  return startHarness({ engine });
}

describe("validation and lookup errors", () => {
  it("a value matching no member of a union of objects is told which field is wrong, not 'expected object, received object'", async () => {
    harness = await startOwnApp();
    const answer = await post("/api/mutation", JSON.stringify({ path: "shapes:draw", args: { shape: { kind: "circle", radius: "5" } } }));
    expect(answer.status).toBe(400);
    expect(answer.body.code).toBe("INVALID_ARGUMENT");
    expect(answer.body.message).not.toMatch(/expected object, received object/);
    // Which member it is held against is the fix's choice; either way the message names the wrong field.
    expect(answer.body.message).toMatch(/radius/);
  });

  it("a module of internal functions only looks exactly like a missing module to clients", async () => {
    harness = await startOwnApp();
    const internal = await post("/api/mutation", JSON.stringify({ path: "admin:wipe", args: {} }));
    const missing = await post("/api/mutation", JSON.stringify({ path: "nothere:wipe", args: {} }));
    expect(internal.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(internal.body.message!.replaceAll("admin", "<module>")).toBe(missing.body.message!.replaceAll("nothere", "<module>"));
  });
});

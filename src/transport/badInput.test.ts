/**
 * Bad input of every kind: the offending connection gets a clear error (and, for protocol
 * violations, is closed), everyone else carries on, and nothing is written.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startHarness, sleep, type Harness } from "./fixtures/harness.js";
import { addQueries, isTransition, type RawClient } from "./fixtures/rawClient.js";
import { CLOSE_CODES, PROTOCOL_LIMITS, type FatalErrorMessage, type ServerMessage, type TransitionMessage } from "./protocol.js";

let harness: Harness;
let bystander: RawClient;

beforeEach(async () => {
  harness = await startHarness();
  bystander = await harness.client();
  bystander.send(addQueries(0, [[1, "messages:count", {}]]));
  await bystander.waitFor(isTransition);
});

afterEach(async () => {
  // The bystander is still connected and still live, and the bad input wrote nothing.
  expect(bystander.socket.readyState).toBe(bystander.socket.OPEN);
  expect(await harness.engine.runQuery("messages:count", {})).toBe(0);
  const from = bystander.messages.length;
  bystander.send({ type: "Mutation", requestId: 999, udfPath: "messages:send", args: { channel: "a", body: "after" } });
  await bystander.waitFor((m) => isTransition(m) && m.modifications.some((x) => x.type === "QueryUpdated" && x.value === 1), from);
  expect(bystander.violations).toEqual([]);
  await harness.dispose();
});

const isFatal = (m: ServerMessage): m is FatalErrorMessage => m.type === "FatalError";

async function expectFatal(client: RawClient, pattern: RegExp): Promise<void> {
  const fatal = await client.waitFor(isFatal);
  expect(fatal.error.message).toMatch(pattern);
  const closed = await client.closed;
  expect(closed.code).toBe(CLOSE_CODES.protocolError);
  expect(closed.reason).toMatch(pattern);
}

describe("protocol violations: FatalError, then close 4000", () => {
  it.each([
    ["invalid JSON", "{not json", /not valid JSON/],
    ["a JSON array", "[1,2]", /must be a JSON object/],
    ["an unknown type", JSON.stringify({ type: "Subscribe" }), /unknown message type "Subscribe"/],
    ["a wrong field type", JSON.stringify({ type: "Mutation", requestId: "1", udfPath: "messages:send", args: {} }), /requestId must be a non-negative integer/],
    ["a missing field", JSON.stringify({ type: "Action", requestId: 1, udfPath: "actions:wait" }), /args is missing/],
    ["a bad modification", JSON.stringify({ type: "ModifyQuerySet", baseVersion: 0, newVersion: 1, modifications: [{ type: "Replace" }] }), /type must be "Add" or "Remove"/],
    ["a second Connect", JSON.stringify({ type: "Connect", clientId: "again", connectionCount: 0 }), /only once/],
    ["a stale query-set version", JSON.stringify({ type: "ModifyQuerySet", baseVersion: 3, newVersion: 4, modifications: [] }), /baseVersion 3 does not match/],
    ["a stale identity version", JSON.stringify({ type: "Authenticate", baseVersion: 5, token: null }), /baseVersion 5 does not match/],
    ["too many modifications at once", JSON.stringify({ type: "ModifyQuerySet", baseVersion: 0, newVersion: 1, modifications: new Array(PROTOCOL_LIMITS.maxQueriesPerConnection + 1).fill({ type: "Remove", queryId: 1 }) }), /too many modifications/],
  ])("%s", async (_name, text, pattern) => {
    const client = await harness.client();
    client.send(text);
    await expectFatal(client, pattern);
  });

  it("a message before Connect", async () => {
    const client = await harness.client({ connect: false });
    client.send({ type: "Mutation", requestId: 1, udfPath: "messages:send", args: { channel: "a", body: "x" } });
    await expectFatal(client, /first message must be Connect, received Mutation/);
  });

  it("a binary message", async () => {
    const client = await harness.client();
    client.socket.send(Buffer.from(JSON.stringify({ type: "Ping" })), { binary: true });
    await expectFatal(client, /binary messages are not supported/);
  });

  it("adding a query id that is already in the set", async () => {
    const client = await harness.client();
    client.send(addQueries(0, [[1, "messages:count", {}]]));
    client.send(addQueries(1, [[1, "messages:count", {}]]));
    await expectFatal(client, /query 1 is already in the query set/);
  });
});

describe("limits", () => {
  it("closes with 4001 on a message over maxClientMessageBytes", async () => {
    const client = await harness.client();
    const body = "x".repeat(PROTOCOL_LIMITS.maxClientMessageBytes);
    client.send({ type: "Mutation", requestId: 1, udfPath: "messages:send", args: { channel: "a", body } });
    const closed = await client.closed;
    expect(closed.code).toBe(CLOSE_CODES.messageTooLarge);
    expect(closed.reason).toMatch(/message too large/);
  }, 20_000);

  it("closes with 4008 when a client floods", async () => {
    const client = await harness.client();
    for (let i = 0; i < PROTOCOL_LIMITS.messageBurst + 50; i++) client.send({ type: "Ping" });
    const closed = await client.closed;
    expect(closed.code).toBe(CLOSE_CODES.rateLimited);
    expect(closed.reason).toMatch(/rate limit/);
    // The burst (plus what refilled while sending) was answered; the rest was not.
    expect(client.messages.filter((m) => m.type === "Pong").length).toBeLessThan(PROTOCOL_LIMITS.messageBurst + 49);
  });

  it("refuses queries beyond maxQueriesPerConnection with QueryFailed, keeping the connection", async () => {
    const client = await harness.client();
    const max = PROTOCOL_LIMITS.maxQueriesPerConnection;
    client.send(addQueries(0, Array.from({ length: max }, (_, i) => [i + 1, "messages:list", { channel: "a" }] as [number, string, unknown])));
    const full = await client.waitFor((m): m is TransitionMessage => isTransition(m) && m.endVersion.querySet === 1, 0, 20_000);
    expect(full.modifications).toHaveLength(max);
    client.send(addQueries(1, [[max + 1, "messages:count", {}]]));
    const refused = await client.waitFor((m): m is TransitionMessage => isTransition(m) && m.endVersion.querySet === 2);
    expect(refused.modifications).toEqual([
      { type: "QueryFailed", queryId: max + 1, error: { code: "LIMIT_EXCEEDED", message: expect.stringMatching(/at most 4096 queries/) } },
    ]);
    // Making room works.
    client.send({ type: "ModifyQuerySet", baseVersion: 2, newVersion: 3, modifications: [{ type: "Remove", queryId: 1 }, { type: "Add", queryId: max + 2, udfPath: "messages:count", args: {} }] });
    const room = await client.waitFor((m): m is TransitionMessage => isTransition(m) && m.endVersion.querySet === 3);
    expect(room.modifications).toEqual([
      { type: "QueryRemoved", queryId: 1 },
      { type: "QueryUpdated", queryId: max + 2, value: 0 },
    ]);
  }, 30_000);
});

describe("per-request errors keep the connection", () => {
  it("unknown and internal functions, undecodable arguments", async () => {
    const client = await harness.client();
    client.send({ type: "Mutation", requestId: 1, udfPath: "messages:nope", args: {} });
    client.send({ type: "Mutation", requestId: 2, udfPath: "messages:record", args: { body: "sneaky" } });
    client.send({ type: "Action", requestId: 3, udfPath: "messages:record", args: { body: "sneaky" } });
    client.send({ type: "Mutation", requestId: 4, udfPath: "messages:send", args: { channel: { $integer: "???" }, body: "x" } });
    client.send({ type: "Mutation", requestId: 5, udfPath: "messages:send", args: [1] });
    client.send(addQueries(0, [[1, "messages:secret", {}]]));
    const answer = (type: string, id: number) => client.waitFor((m) => m.type === type && "requestId" in m && m.requestId === id);
    expect(await answer("MutationResponse", 1)).toMatchObject({ success: false, error: { code: "UNKNOWN_FUNCTION" } });
    expect(await answer("MutationResponse", 2)).toMatchObject({ success: false, error: { code: "UNKNOWN_FUNCTION" } });
    expect(await answer("ActionResponse", 3)).toMatchObject({ success: false, error: { code: "UNKNOWN_FUNCTION" } });
    expect(await answer("MutationResponse", 4)).toMatchObject({ success: false, error: { code: "INVALID_ARGUMENT" } });
    expect(await answer("MutationResponse", 5)).toMatchObject({ success: false, error: { code: "INVALID_ARGUMENT" } });
    const failed = await client.waitFor(isTransition);
    expect(failed.modifications).toMatchObject([{ type: "QueryFailed", queryId: 1, error: { code: "UNKNOWN_FUNCTION" } }]);
    await sleep(10);
    expect(client.socket.readyState).toBe(client.socket.OPEN);
    client.send({ type: "Ping" });
    await client.waitFor((m) => m.type === "Pong");
  });
});

/** The server-wide and per-address caps, against a real server; and the settings' validation. */
import { afterEach, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "./fixtures/harness.js";
import { addQueries, isTransition, type RawClient } from "./fixtures/rawClient.js";
import { limitsFromEnv, resolveLimits } from "./limits.js";
import { CLOSE_CODES, type ServerMessage, type StateModification, type TransitionMessage } from "./protocol.js";

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.dispose();
  harness = undefined;
});

const withQuerySet = (version: number) => (m: ServerMessage): m is TransitionMessage => isTransition(m) && m.endVersion.querySet === version;

/** Adds queries `ids` as the next query-set version and returns what the server said about each. */
async function add(client: RawClient, base: number, ids: number[]): Promise<Record<number, StateModification>> {
  client.send(addQueries(base, ids.map((id) => [id, "messages:list", { channel: `c${id}` }])));
  const transition = await client.waitFor(withQuerySet(base + 1));
  return Object.fromEntries(transition.modifications.map((m) => [m.queryId, m]));
}

const from = (ip: string) => ({ headers: { "x-forwarded-for": `10.0.0.9, ${ip}` } });

describe("global caps", () => {
  it("closes a connection over maxConnectionsPerIp with 4002, and takes a new one once one closed", async () => {
    harness = await startHarness({ limits: { maxConnectionsPerIp: 2 } });
    const [a] = [await harness.client(), await harness.client()];
    const third = await harness.client();
    expect(await third.closed).toEqual({ code: CLOSE_CODES.tooManyConnections, reason: "too many connections from your address (the limit is 2)" });
    a.socket.close();
    await a.closed;
    const fourth = await harness.client();
    expect(await add(fourth, 0, [1])).toMatchObject({ 1: { type: "QueryUpdated" } });
  });

  it("counts addresses from X-Forwarded-For only with trustProxy", async () => {
    harness = await startHarness({ limits: { maxConnectionsPerIp: 1, trustProxy: true } });
    await harness.client(from("1.1.1.1"));
    const other = await harness.client(from("2.2.2.2"));
    expect(await add(other, 0, [1])).toMatchObject({ 1: { type: "QueryUpdated" } });
    const same = await harness.client(from("1.1.1.1"));
    expect((await same.closed).code).toBe(CLOSE_CODES.tooManyConnections);
  });

  it("refuses a query over maxSubscriptionsPerIp or maxSubscriptions with LIMIT_EXCEEDED naming the limit, and counts removals back", async () => {
    harness = await startHarness({ limits: { maxSubscriptionsPerIp: 3, maxSubscriptions: 4, trustProxy: true } });
    const [a1, a2, b] = [await harness.client(from("1.1.1.1")), await harness.client(from("1.1.1.1")), await harness.client(from("2.2.2.2"))];
    expect(await add(a1, 0, [1, 2])).toMatchObject({ 1: { type: "QueryUpdated" }, 2: { type: "QueryUpdated" } });
    const perIp = await add(a2, 0, [1, 2]);
    expect(perIp[1]).toMatchObject({ type: "QueryUpdated" });
    expect(perIp[2]).toMatchObject({ type: "QueryFailed", error: { code: "LIMIT_EXCEEDED", data: { limit: "maxSubscriptionsPerIp", max: 3 } } });
    const server = await add(b, 0, [1, 2]);
    expect(server[1]).toMatchObject({ type: "QueryUpdated" });
    expect(server[2]).toMatchObject({ type: "QueryFailed", error: { code: "LIMIT_EXCEEDED", data: { limit: "maxSubscriptions", max: 4 } } });
    expect(harness.server.subscriptionCount()).toBe(4);

    a1.send({ type: "ModifyQuerySet", baseVersion: 1, newVersion: 2, modifications: [{ type: "Remove", queryId: 1 }] });
    await a1.waitFor(withQuerySet(2));
    expect(await add(a2, 1, [3])).toMatchObject({ 3: { type: "QueryUpdated" } });
    a2.socket.close();
    await a2.closed;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(harness.server.subscriptionCount()).toBe(2);
  });
});

describe("settings", () => {
  it("rejects settings that make no sense, saying which and why", () => {
    expect(() => resolveLimits({ maxSubscriptions: 0 })).toThrow("The server limit maxSubscriptions must be a positive integer, got 0.");
    expect(() => resolveLimits({ sendBufferBytes: 10, maxSendBufferBytes: 5 })).toThrow("maxSendBufferBytes (5) must be at least sendBufferBytes (10).");
    expect(() => resolveLimits({ maxConections: 3 } as never)).toThrow(/Unknown server limit "maxConections"/);
    expect(() => limitsFromEnv({ WALKIN_MAX_CONNECTIONS_PER_IP: "lots" })).toThrow('WALKIN_MAX_CONNECTIONS_PER_IP must be a positive integer, got "lots".');
    expect(limitsFromEnv({ WALKIN_MAX_SUBSCRIPTIONS: "10", WALKIN_TRUST_PROXY: "true", OTHER: "1" })).toEqual({ maxSubscriptions: 10, trustProxy: true });
  });
});

/**
 * The transport's invariants through a real server on loopback: identity versions
 * under congestion, subscription budgets given back, and a randomized protocol fuzz after
 * which the server must still serve a well-formed client.
 */
import { connect as tcpConnect } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { seededRandom } from "../storage/conformance/history.js";
import { openEngine } from "./fixtures/app.js";
import { startHarness, sleep, type Harness } from "./fixtures/harness.js";
import { rawHttp } from "./fixtures/rawHttp.js";
import { addQueries, isTransition, type RawClient } from "./fixtures/rawClient.js";
import { CLOSE_CODES, type MutationResponseMessage, type ServerMessage, type TransitionMessage } from "./protocol.js";

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.dispose();
  harness = undefined;
});

const KiB = 1024;
const isResponse = (requestId: number) => (m: ServerMessage): m is MutationResponseMessage => m.type === "MutationResponse" && m.requestId === requestId;

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await sleep(10);
  }
}

async function bump(writer: RawClient, requestId: number): Promise<void> {
  writer.send({ type: "Mutation", requestId, udfPath: "counters:bump", args: { name: "c" } });
  await writer.waitFor(isResponse(requestId), 0, 10_000);
}

/** A well-formed client still gets served: subscribe, mutate, see the write. */
async function expectServing(h: Harness): Promise<void> {
  const probe = await h.client();
  probe.send(addQueries(0, [[1, "messages:list", { channel: "probe-check" }]]));
  await probe.waitFor(isTransition);
  const from = probe.messages.length;
  probe.send({ type: "Mutation", requestId: 1, udfPath: "messages:send", args: { channel: "probe-check", body: "ok" } });
  await probe.waitFor((m) => isTransition(m) && m.modifications.some((x) => x.type === "QueryUpdated" && Array.isArray(x.value) && x.value.includes("ok")), from);
  probe.send({ type: "Ping" });
  await probe.waitFor((m) => m.type === "Pong", from);
  expect(probe.violations).toEqual([]);
  await probe.close();
}

describe("identity versions", () => {
  it("accepts a second Authenticate based on the first one's version while the socket is congested", async () => {
    // The browser client numbers Authenticates itself (localSyncState.setAuth: base n, then n+1)
    // without waiting for the Transition, exactly like ModifyQuerySet.
    harness = await startHarness({ limits: { sendBufferBytes: 64 * KiB, stallTimeoutMs: 600_000 } });
    const [reader, writer] = [await harness.client(), await harness.client()];
    reader.send(addQueries(0, [[1, "counters:padded", { name: "c", size: 256 * KiB }], [2, "auth:whoami", {}]]));
    await reader.waitFor(isTransition);
    reader.socket.pause();
    let n = 0;
    // Fill the queue past sendBufferBytes, then one more flush so the connection holds its Transitions.
    while (harness.server.maxQueuedBytes() < 64 * KiB) await bump(writer, ++n);
    await bump(writer, ++n);

    reader.send({ type: "Authenticate", baseVersion: 0, token: "token-alice" });
    reader.send({ type: "Authenticate", baseVersion: 1, token: "token-bob" });
    await sleep(300);
    reader.socket.resume();

    const final = await reader
      .waitFor((m): m is TransitionMessage => isTransition(m) && m.endVersion.identity === 2, 0, 10_000)
      .catch(() => null);
    expect(reader.messages.filter((m) => m.type === "FatalError")).toEqual([]);
    expect(final?.endVersion.identity).toBe(2);
    expect(reader.results().get(2)).toBe("bob");
    expect(reader.violations).toEqual([]);
  });

  it("accepts a second Authenticate based on the first one's version when nothing is congested", async () => {
    harness = await startHarness();
    const client = await harness.client();
    client.send(addQueries(0, [[2, "auth:whoami", {}]]));
    client.send({ type: "Authenticate", baseVersion: 0, token: "token-alice" });
    client.send({ type: "Authenticate", baseVersion: 1, token: "token-bob" });
    await client.waitFor((m): m is TransitionMessage => isTransition(m) && m.endVersion.identity === 2);
    expect(client.results().get(2)).toBe("bob");
    expect(client.violations).toEqual([]);
  });
});

// ---------------------------------------------------------------- randomized protocol fuzz

/** A seeded generator, so a failing seed can be replayed. */
const prng = seededRandom;

const PATHS = [
  "messages:list",
  "messages:count",
  "messages:send",
  "messages:fail",
  "messages:crash",
  "messages:secret",
  "messages.list",
  "auth:whoami",
  "actions:wait",
  "actions:fail",
  "counters:bump",
  "nope:nothing",
  "",
  "x".repeat(513),
];

function fuzzMessages(seed: number, count: number): Array<string | Buffer> {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const int = (max: number) => Math.floor(random() * max);
  const weirdNumber = () => pick([0, 1, 2, -1, 1.5, 2 ** 53, 2 ** 53 - 1, 1e308, -0, Number.MAX_SAFE_INTEGER, "1", null, true, [], {}]);
  /** A marker replaced by deeply nested arrays once stringified (JSON.stringify would overflow on them). */
  const deep = (depth: number): string => `__DEEP_${depth}__`;
  const args = (): unknown =>
    pick<() => unknown>([
      () => ({ channel: pick(["a", "b"]) }),
      () => ({ channel: "a", body: "fuzz" }),
      () => ({}),
      () => ({ name: "c" }),
      () => ({ ms: int(20), value: "v" }),
      () => ({ channel: 5 }),
      () => ({ channel: { $integer: "AAAAAAAAAAA=" } }),
      () => ({ $bytes: "!!!" }),
      () => ({ $integer: "not base64" }),
      () => ({ $float: "AAAAAAAA+H8=" }),
      () => ({ $weird: 1 }),
      () => null,
      () => [1, 2],
      () => "string",
      () => ({ channel: deep(5_000) }),
      () => ({ __proto__: { polluted: true }, channel: "a" }),
    ])();
  let querySet = 0;
  let identity = 0;
  let requestId = 0;
  const messages: Array<string | Buffer> = [];
  if (random() < 0.9) messages.push(JSON.stringify({ type: "Connect", clientId: `fuzz-${seed}`, connectionCount: 0, ...(random() < 0.3 ? { newRequestsFrom: int(3) } : {}), ...(random() < 0.3 ? { maxObservedTimestamp: weirdNumber() } : {}) }));
  for (let i = 0; i < count; i++) {
    const roll = random();
    if (roll < 0.3) {
      const base = random() < 0.95 ? querySet : int(5);
      const next = random() < 0.95 ? base + 1 + int(2) : weirdNumber();
      const modifications = Array.from({ length: int(6) }, () =>
        random() < 0.6
          ? { type: "Add", queryId: random() < 0.95 ? int(8) : weirdNumber(), udfPath: pick(PATHS), args: args() }
          : random() < 0.95
            ? { type: "Remove", queryId: int(10) }
            : { type: pick(["Replace", null, 3]), queryId: 1 },
      );
      messages.push(JSON.stringify({ type: "ModifyQuerySet", baseVersion: base, newVersion: next, modifications }));
      if (typeof next === "number") querySet = next;
    } else if (roll < 0.5) {
      messages.push(JSON.stringify({ type: pick(["Mutation", "Action"]), requestId: random() < 0.9 ? requestId++ : weirdNumber(), udfPath: pick(PATHS), args: args() }));
    } else if (roll < 0.6) {
      const base = random() < 0.9 ? identity : int(4);
      messages.push(JSON.stringify({ type: "Authenticate", baseVersion: base, token: pick(["token-alice", "token-bob", "bad", null, "", 5, "x".repeat(5000)]) }));
      identity = base + 1;
    } else if (roll < 0.75) {
      messages.push(JSON.stringify({ type: "Ping" }));
    } else {
      messages.push(
        pick<() => string | Buffer>([
          () => "{not json",
          () => "[]",
          () => "null",
          () => "1e999",
          () => JSON.stringify({ type: "Subscribe" }),
          () => JSON.stringify({ type: "Connect", clientId: "again", connectionCount: 0 }),
          () => JSON.stringify({ type: "Mutation", requestId: 1e300, udfPath: "messages:send", args: {} }),
          () => JSON.stringify({ type: "Mutation", requestId: 1, udfPath: "messages:send" }),
          () => JSON.stringify({ type: "ModifyQuerySet", baseVersion: 0, newVersion: 1, modifications: "all" }),
          () => Buffer.from(JSON.stringify({ type: "Ping" })),
          () => JSON.stringify({ type: { toString: 1 } }),
          () => `{"type":"Ping","x":${"[".repeat(3000)}${"]".repeat(3000)}}`,
        ])(),
      );
    }
  }
  return messages.map((m) => (typeof m === "string" ? m.replace(/"__DEEP_(\d+)__"/g, (_all, n: string) => `${"[".repeat(Number(n))}1${"]".repeat(Number(n))}`) : m));
}

describe("randomized protocol fuzz", () => {
  it("never crashes the server, keeps every Transition chain consistent, gives back every subscription, and serves a well-formed client afterwards", async () => {
    harness = await startHarness({ logLevel: "info" });
    const h = harness;
    const bystander = await h.client();
    bystander.send(addQueries(0, [[1, "messages:count", {}]]));
    await bystander.waitFor(isTransition);
    for (let round = 0; round < 6; round++) {
      const clients = await Promise.all(Array.from({ length: 8 }, () => h.client({ connect: false })));
      await Promise.all(
        clients.map(async (client, index) => {
          const seed = round * 100 + index;
          for (const message of fuzzMessages(seed, 40)) {
            if (client.socket.readyState !== client.socket.OPEN) break;
            if (typeof message === "string") client.socket.send(message);
            else client.socket.send(message, { binary: true });
            if (Math.random() < 0.2) await sleep(1);
          }
          await sleep(50);
          for (const m of client.messages) {
            if (m.type === "FatalError") {
              const closed = await client.closed;
              expect(closed.code, `seed ${seed}`).toBe(CLOSE_CODES.protocolError);
            }
          }
          expect(client.violations, `seed ${seed}`).toEqual([]);
        }),
      );
      for (const client of clients) client.socket.terminate();
    }
    await until(() => h.server.connectionCount() === 1);
    await expectServing(h);
    await until(() => h.server.connectionCount() === 1);
    expect(h.server.subscriptionCount()).toBe(1); // the bystander's
    expect(bystander.socket.readyState).toBe(bystander.socket.OPEN);
    expect(bystander.violations).toEqual([]);
    // Nothing reached the server's log as a bug (internal errors are always logged with their stack).
    expect(h.logs.filter((line) => !line.includes("secret internal detail") && !line.includes("action exploded"))).toEqual([]);
  });
});

/**
 * Well-formed traffic only, with a model of what the client sent: no FatalError, every
 * MutationResponse followed by a Transition at or after its ts, responses in order, and at
 * quiescence the client's results equal what the queries return now.
 */
describe("randomized well-formed traffic", () => {
  const QUERIES: Array<[string, unknown]> = [
    ["messages:list", { channel: "a" }],
    ["messages:list", { channel: "b" }],
    ["messages:count", {}],
    ["counters:padded", { name: "c", size: 10 }],
    ["log:all", {}],
    ["auth:whoami", {}],
    ["messages:crash", {}],
    ["nope:nothing", {}],
  ];

  async function runClient(h: Harness, seed: number, steps: number, options: { auth: boolean; congest: boolean } = { auth: true, congest: false }) {
    const random = prng(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const client = await h.client({ connect: { clientId: `wf-${seed}`, newRequestsFrom: 0 } });
    const live = new Map<number, [string, unknown]>();
    let querySet = 0;
    let identity = 0;
    let subject: string | null = null;
    let requestId = 0;
    let actionId = 0;
    const mutationIds: number[] = [];
    const actionIds: number[] = [];
    let pings = 0;
    for (let step = 0; step < steps; step++) {
      const roll = random();
      if (roll < 0.35) {
        const modifications: unknown[] = [];
        for (let k = Math.floor(random() * 4); k >= 0; k--) {
          const queryId = Math.floor(random() * 12);
          if (live.has(queryId) || random() < 0.2) {
            modifications.push({ type: "Remove", queryId });
            live.delete(queryId);
          } else {
            const [udfPath, args] = options.congest && random() < 0.3 ? (["counters:padded", { name: "c", size: 512 * KiB }] as [string, unknown]) : pick(QUERIES);
            modifications.push({ type: "Add", queryId, udfPath, args });
            live.set(queryId, [udfPath, args]);
          }
        }
        client.send({ type: "ModifyQuerySet", baseVersion: querySet, newVersion: querySet + 1, modifications });
        querySet += 1;
      } else if (roll < 0.65) {
        const [udfPath, args] = pick<[string, unknown]>([
          ["messages:send", { channel: "a", body: `m${seed}-${requestId}` }],
          ["messages:send", { channel: "b", body: `m${seed}-${requestId}` }],
          ["counters:bump", { name: "c" }],
          ["log:append", { n: requestId, delayMs: Math.floor(random() * 5) }],
          ["messages:fail", {}],
          ["messages:send", { channel: 1 }],
        ]);
        client.send({ type: "Mutation", requestId, udfPath, args });
        mutationIds.push(requestId++);
      } else if (roll < 0.75) {
        client.send({ type: "Action", requestId: actionId, udfPath: pick(["actions:wait", "actions:whoami"]), args: {} });
        actionIds.push(actionId++);
      } else if (roll < 0.85 && options.auth) {
        const token = pick(["token-alice", "token-bob", null, "bad"]);
        client.send({ type: "Authenticate", baseVersion: identity, token });
        if (token !== "bad") {
          identity += 1;
          subject = token === null ? null : token.slice(6);
        }
      } else {
        client.send({ type: "Ping" });
        pings += 1;
      }
      // Congested: stops reading for most of the run, with short catch-ups.
      if (options.congest) {
        if (step % 40 === 5) client.socket.pause();
        if (step % 40 === 35) client.socket.resume();
      }
      if (random() < 0.3) await sleep(Math.floor(random() * 3));
    }
    client.socket.resume();
    return { client, live, get querySet() { return querySet; }, get identity() { return identity; }, get subject() { return subject; }, mutationIds, actionIds, pings };
  }

  it.each([
    [1, false],
    [2, false],
    [3, false],
    [4, true],
    [5, true],
    [6, true],
  ])("seed group %i (congested: %s): consistent versions, read-your-writes, ordered responses, converged results", async (group, congest) => {
    harness = await startHarness(congest ? { limits: { sendBufferBytes: 32 * KiB, stallTimeoutMs: 600_000 } } : {});
    const h = harness;
    let peakQueued = 0;
    const sampler = setInterval(() => (peakQueued = Math.max(peakQueued, h.server.maxQueuedBytes())), 2);
    const runs = await Promise.all(Array.from({ length: 5 }, (_, i) => runClient(h, group * 1000 + i, 120, { auth: true, congest }))).finally(() => clearInterval(sampler));
    if (congest) expect(peakQueued).toBeGreaterThan(32 * KiB); // the hold/release path was exercised
    for (const run of runs) {
      const { client } = run;
      // Everything answered.
      for (const id of run.mutationIds) await client.waitFor(isResponse(id), 0, 10_000);
      for (const id of run.actionIds) await client.waitFor((m) => m.type === "ActionResponse" && m.requestId === id, 0, 10_000);
      await client.waitFor((m) => isTransition(m) && m.endVersion.querySet === run.querySet && m.endVersion.identity === run.identity, 0, 10_000);
    }
    // Quiescence: one more flush for everyone, then compare.
    const settle = await h.client();
    settle.send({ type: "Mutation", requestId: 0, udfPath: "messages:send", args: { channel: "z", body: "settle" } });
    await settle.waitFor(isResponse(0));
    await sleep(200);
    for (const run of runs) {
      const { client } = run;
      const seed = client.messages;
      expect(client.messages.filter((m) => m.type === "FatalError" || m.type === "AuthExpired")).toEqual([]);
      expect(client.violations).toEqual([]);
      expect(client.messages.filter((m) => m.type === "Pong")).toHaveLength(run.pings);
      // Responses in the order the mutations were sent.
      const responses = client.messages.filter((m): m is MutationResponseMessage => m.type === "MutationResponse");
      expect(responses.map((m) => m.requestId)).toEqual(run.mutationIds);
      // Read your writes: each successful response is followed by a Transition at or after its ts.
      for (const response of responses) {
        if (!response.success) continue;
        const at = seed.indexOf(response);
        expect(seed.slice(at + 1).some((m) => isTransition(m) && m.endVersion.ts >= response.ts), `response ${response.requestId}`).toBe(true);
      }
      // Converged: the client's results are the queries' current results.
      const results = client.results();
      expect([...results.keys()].sort((x, y) => x - y)).toEqual([...run.live.keys()].sort((x, y) => x - y));
      for (const [queryId, [udfPath, args]] of run.live) {
        const held = results.get(queryId);
        if (udfPath === "auth:whoami") expect(held, `query ${queryId} ${udfPath}`).toBe(run.subject);
        else if (udfPath === "messages:crash" || udfPath === "nope:nothing") expect(held).toMatchObject({ error: {} });
        else expect(held, `query ${queryId} ${udfPath}`).toEqual(await h.engine.runQuery(udfPath, args as never));
      }
    }
    expect(h.server.subscriptionCount()).toBe(runs.reduce((sum, run) => sum + run.live.size, 0));
    for (const run of runs) run.client.socket.terminate();
    settle.socket.terminate();
    await until(() => h.server.connectionCount() === 0);
    expect(h.server.subscriptionCount()).toBe(0);
  });

  it("hot reload in the middle of the traffic: versions continue, ts never goes back, every mutation answered in order, results converge on the new engine", async () => {
    const dir = mkdtempSync(join(tmpdir(), "walkin-probe-"));
    try {
      const filename = join(dir, "db.sqlite");
      harness = await startHarness({ engine: await openEngine(filename) });
      const h = harness;
      const traffic = Promise.all(Array.from({ length: 4 }, (_, i) => runClient(h, 7000 + i, 120)));
      await sleep(30);
      const next = await openEngine(filename);
      const old = h.engine;
      await h.server.setEngine(next);
      h.engine = next;
      await old.close();
      const runs = await traffic;
      for (const run of runs) {
        const { client } = run;
        for (const id of run.mutationIds) await client.waitFor(isResponse(id), 0, 10_000);
        await client.waitFor((m) => isTransition(m) && m.endVersion.querySet === run.querySet && m.endVersion.identity === run.identity, 0, 10_000);
      }
      const settle = await h.client();
      settle.send({ type: "Mutation", requestId: 0, udfPath: "messages:send", args: { channel: "z", body: "settle" } });
      await settle.waitFor(isResponse(0));
      await sleep(200);
      for (const run of runs) {
        const { client } = run;
        expect(client.messages.filter((m) => m.type === "FatalError")).toEqual([]);
        expect(client.violations).toEqual([]);
        const responses = client.messages.filter((m): m is MutationResponseMessage => m.type === "MutationResponse");
        expect(responses.map((m) => m.requestId)).toEqual(run.mutationIds);
        const results = client.results();
        for (const [queryId, [udfPath, args]] of run.live) {
          if (udfPath === "auth:whoami" || udfPath === "messages:crash" || udfPath === "nope:nothing") continue;
          expect(results.get(queryId), `query ${queryId} ${udfPath}`).toEqual(await h.engine.runQuery(udfPath, args as never));
        }
      }
    } finally {
      await harness?.dispose();
      harness = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------- refused connections

/** A WebSocket handshake written by hand, followed at once by `frames`: what a hostile peer controls. */
function rawUpgrade(port: number, frames: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, "127.0.0.1", () => {
      const request =
        "GET /api/sync HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
      socket.write(Buffer.concat([Buffer.from(request), frames]));
    });
    let received = "";
    socket.on("data", (data) => (received += data.toString("latin1")));
    socket.on("error", () => {});
    socket.on("close", () => resolve(received));
    setTimeout(() => socket.destroy(), 500);
  });
}

/** A masked client frame with a reserved opcode (0x3): `ws` rejects it with a receiver error. */
const INVALID_FRAME = Buffer.from([0x83, 0x80, 0, 0, 0, 0]);

describe("connections refused at the handshake", () => {
  it("survive a peer that sends an invalid frame right after the handshake (over maxConnectionsPerIp)", async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on("uncaughtException", onUncaught);
    try {
      harness = await startHarness({ limits: { maxConnectionsPerIp: 1 } });
      const first = await harness.client();
      first.send({ type: "Ping" });
      await first.waitFor((m) => m.type === "Pong");
      const answer = await rawUpgrade(harness.server.port, INVALID_FRAME);
      expect(answer).toContain("101 Switching Protocols");
      await sleep(100);
      expect(uncaught.map(String)).toEqual([]);
      // The first client and the server are still fine.
      const from = first.messages.length;
      first.send({ type: "Ping" });
      await first.waitFor((m) => m.type === "Pong", from);
    } finally {
      process.off("uncaughtException", onUncaught);
    }
  });

  it("survive a peer that sends an invalid frame to an accepted connection", async () => {
    harness = await startHarness();
    const answer = await rawUpgrade(harness.server.port, INVALID_FRAME);
    expect(answer).toContain("101 Switching Protocols");
    await until(() => harness!.server.connectionCount() === 0);
    await expectServing(harness);
  });
});

// ---------------------------------------------------------------- HTTP bad input

describe("HTTP bad input", () => {
  it("answers an HTTP route requested with a malformed Host header with a client error, not a logged internal error", async () => {
    harness = await startHarness();
    const answer = await rawHttp(harness.server.port, "GET /files/a.txt HTTP/1.1\r\nHost: bad host\r\nConnection: close\r\n\r\n");
    const status = answer.split("\r\n")[0]!;
    // A 4xx, or the route's answer: anything but an internal error with a stack in the log.
    expect({ status, serverError: /^HTTP\/1\.1 5/.test(status), logs: harness.logs.map((line) => line.split("\n")[0]) }).toMatchObject({ serverError: false, logs: [] });
  });

  it.each([
    ["not JSON", "{", 400],
    ["null", "null", 400],
    ["an array", "[]", 400],
    ["a numeric path", JSON.stringify({ path: 5 }), 400],
    ["undecodable args", JSON.stringify({ path: "messages:list", args: { $integer: "nope" } }), 400],
    ["args of the wrong type", JSON.stringify({ path: "messages:list", args: { channel: 1 } }), 400],
    ["args that are not an object", JSON.stringify({ path: "messages:list", args: [1] }), 400],
    ["a huge number", `{"path":"messages:list","args":{"channel":1e999}}`, 400],
    ["deeply nested args", `{"path":"messages:list","args":{"channel":${"[".repeat(100_000)}${"]".repeat(100_000)}}}`, 400],
    ["an internal function", JSON.stringify({ path: "messages:secret", args: {} }), 404],
  ])("POST /api/query with %s: a client error, no internal error", async (_name, body, status) => {
    harness = await startHarness();
    const response = await fetch(`${harness.server.url}/api/query`, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(response.status).toBe(status);
    expect(((await response.json()) as { status: string }).status).toBe("error");
    expect(harness.logs).toEqual([]);
    expect(await harness.engine.runQuery("messages:count", {})).toBe(0);
  });
});

// ---------------------------------------------------------------- control-frame floods

describe("a client that floods WebSocket pings and never reads", () => {
  // `ws` answers pings itself (auto-pong), outside the connection's accounting and rate limit;
  // it terminates a socket with too many pongs pending (maxPendingAutoPongs), which is what bounds this.
  it("cannot make the server queue more than maxSendBufferBytes for it (or is cut off)", async () => {
    const maxSendBufferBytes = 1024 * KiB;
    harness = await startHarness({ limits: { sendBufferBytes: 64 * KiB, maxSendBufferBytes, stallTimeoutMs: 600_000 } });
    const h = harness;
    const client = await h.client();
    client.socket.pause();
    const payload = Buffer.alloc(125, 1);
    let peak = 0;
    // 32 MiB of ping frames: every one makes the server queue a 127-byte pong.
    for (let batch = 0; batch < 64 && client.socket.readyState === client.socket.OPEN; batch++) {
      for (let i = 0; i < 4096; i++) client.socket.ping(payload);
      await new Promise((resolve) => setImmediate(resolve));
      peak = Math.max(peak, h.server.maxQueuedBytes());
      // Give the server time to read what was sent.
      while (client.socket.bufferedAmount > 1024 * KiB) await sleep(5);
      peak = Math.max(peak, h.server.maxQueuedBytes());
    }
    await sleep(200);
    peak = Math.max(peak, h.server.maxQueuedBytes());
    const open = h.server.connectionCount();
    expect({ peakQueuedBytes: peak, withinCap: peak <= maxSendBufferBytes + 4 * KiB || open === 0 }).toMatchObject({ withinCap: true });
  });
});

// ---------------------------------------------------------------- leaving mid-change

describe("a client that leaves while its queries are being subscribed", () => {
  it.each([
    ["a query-set change", false],
    ["an identity change", true],
  ])("during %s: every subscription is ended, in the server's counts and in the engine", async (_name, viaAuth) => {
    harness = await startHarness();
    const h = harness;
    const client = await h.client();
    // Distinct args so that each is its own live query in the engine; slow, so the change is in progress when the client leaves.
    const queries: Array<[number, string, unknown]> = Array.from({ length: 200 }, (_, i) => [i, "log:slowCount", { delayMs: 20 + (i % 7) }]);
    if (viaAuth) {
      client.send(addQueries(0, queries));
      await client.waitFor(isTransition, 0, 10_000);
      client.send({ type: "Authenticate", baseVersion: 0, token: "token-alice" });
    } else {
      client.send(addQueries(0, queries));
    }
    await sleep(15);
    client.socket.terminate();
    await until(() => h.server.connectionCount() === 0);
    await sleep(300); // the in-flight subscriptions resolve after the close
    expect(h.server.subscriptionCount()).toBe(0);
    expect(h.engine.subscriptions.size).toBe(0);
    await expectServing(h);
  });
});

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { query } from "../server/index.js";
import { v } from "../values/index.js";
import { modules, openEngine } from "./fixtures/app.js";
import { startHarness, sleep, type Harness } from "./fixtures/harness.js";
import { addQueries, isTransition, RawClient } from "./fixtures/rawClient.js";
import { startServer } from "./server.js";
import type { MutationResponseMessage, ServerMessage, TransitionMessage } from "./protocol.js";

let harness: Harness | undefined;
afterEach(async () => {
  for (const client of harness?.clients ?? []) expect(client.violations).toEqual([]);
  await harness?.dispose();
  harness = undefined;
});

const isResponse = (requestId: number) => (m: ServerMessage): m is MutationResponseMessage => m.type === "MutationResponse" && m.requestId === requestId;
const withQuerySet = (version: number) => (m: ServerMessage): m is TransitionMessage => isTransition(m) && m.endVersion.querySet === version;
const updates = (t: TransitionMessage) => Object.fromEntries(t.modifications.map((m) => [m.queryId, m.type === "QueryUpdated" ? m.value : m.type]));

describe("live queries", () => {
  it("pushes a change to every subscriber", async () => {
    harness = await startHarness();
    const [a, b] = [await harness.client(), await harness.client()];
    for (const client of [a, b]) client.send(addQueries(0, [[1, "messages:list", { channel: "a" }]]));
    const initial = await a.waitFor(withQuerySet(1));
    expect(initial.startVersion).toEqual({ querySet: 0, identity: 0, ts: 0 });
    expect(initial.modifications).toEqual([{ type: "QueryUpdated", queryId: 1, value: [] }]);
    await b.waitFor(withQuerySet(1));

    a.send({ type: "Mutation", requestId: 1, udfPath: "messages:send", args: { channel: "a", body: "hello" } });
    for (const client of [a, b]) {
      const update = await client.waitFor((m): m is TransitionMessage => isTransition(m) && m.modifications.length > 0, 1);
      expect(updates(update)).toEqual({ 1: ["hello"] });
    }
  });

  it("updates several queries in one Transition at one timestamp", async () => {
    harness = await startHarness();
    const client = await harness.client();
    client.send(addQueries(0, [[1, "messages:list", { channel: "a" }], [2, "messages:list", { channel: "b" }], [3, "messages:count", {}]]));
    const initial = await client.waitFor(withQuerySet(1));
    expect(updates(initial)).toEqual({ 1: [], 2: [], 3: 0 });
    const from = client.messages.length;
    client.send({ type: "Mutation", requestId: 1, udfPath: "messages:sendBoth", args: { body: "x" } });
    const response = await client.waitFor(isResponse(1), from);
    const changed = await client.waitFor((m): m is TransitionMessage => isTransition(m) && m.modifications.length > 0, from);
    expect(updates(changed)).toEqual({ 1: ["x"], 2: ["x"], 3: 2 });
    expect(response.success && changed.endVersion.ts).toBeGreaterThanOrEqual(response.success ? response.ts : Infinity);
  });

  it("never shows a subscriber half of a transaction, under concurrent writers", async () => {
    harness = await startHarness();
    const watcher = await harness.client();
    watcher.send(addQueries(0, [[1, "messages:list", { channel: "a" }], [2, "messages:list", { channel: "b" }]]));
    await watcher.waitFor(withQuerySet(1));
    const writers = [await harness.client(), await harness.client(), await harness.client()];
    const perWriter = 15;
    writers.forEach((writer, w) => {
      for (let i = 1; i <= perWriter; i++) writer.send({ type: "Mutation", requestId: i, udfPath: "messages:sendBoth", args: { body: `${w}.${i}` } });
    });
    for (const writer of writers) await writer.waitFor(isResponse(perWriter), 0, 15_000);
    const total = writers.length * perWriter;
    await watcher.waitFor((m) => isTransition(m) && (updates(m)[1] as unknown[] | undefined)?.length === total, 0, 15_000);
    // Replay what the client held after each Transition: both channels always agree.
    const held = new Map<number, unknown>();
    for (const transition of watcher.transitions()) {
      for (const mod of transition.modifications) if (mod.type === "QueryUpdated") held.set(mod.queryId, mod.value);
      expect(held.get(1)).toEqual(held.get(2));
    }
  });

  it("stops sending a removed query", async () => {
    harness = await startHarness();
    const client = await harness.client();
    client.send(addQueries(0, [[1, "messages:list", { channel: "a" }], [2, "messages:count", {}]]));
    await client.waitFor(withQuerySet(1));
    client.send({ type: "ModifyQuerySet", baseVersion: 1, newVersion: 2, modifications: [{ type: "Remove", queryId: 1 }] });
    const removed = await client.waitFor(withQuerySet(2));
    expect(removed.modifications).toEqual([{ type: "QueryRemoved", queryId: 1 }]);
    const from = client.messages.length;
    client.send({ type: "Mutation", requestId: 1, udfPath: "messages:send", args: { channel: "a", body: "hi" } });
    const changed = await client.waitFor((m): m is TransitionMessage => isTransition(m) && m.modifications.length > 0, from);
    expect(updates(changed)).toEqual({ 2: 1 });
  });

  it("reports a query's errors as QueryFailed without touching the other queries", async () => {
    harness = await startHarness();
    const client = await harness.client();
    client.send(
      addQueries(0, [
        [1, "messages:nope", {}],
        [2, "messages:secret", {}],
        [3, "messages:crash", {}],
        [4, "messages:list", { channel: 5 }],
        [5, "messages:list", { channel: { $integer: "not base64" } }],
        [6, "messages:count", {}],
      ]),
    );
    const initial = await client.waitFor(withQuerySet(1));
    const failed: Record<number, unknown> = Object.fromEntries(initial.modifications.map((m) => [m.queryId, m.type === "QueryFailed" ? m.error : m]));
    expect(failed[1]).toMatchObject({ code: "UNKNOWN_FUNCTION" });
    expect(failed[2]).toMatchObject({ code: "UNKNOWN_FUNCTION" });
    // Exactly what a missing export gets: no hint that an internal function of that name exists.
    expect(failed[2]).toEqual({ code: "UNKNOWN_FUNCTION", message: 'Unknown function "messages:secret". Module "messages" has no public query "secret".' });
    expect(failed[3]).toEqual({ code: "INTERNAL", message: "Internal server error" });
    expect(failed[4]).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(failed[5]).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(failed[6]).toEqual({ type: "QueryUpdated", queryId: 6, value: 0 });
    expect(harness.logs.join("\n")).toContain("secret internal detail"); // the stack is logged
  });

  it("sends internal errors' messages in dev mode", async () => {
    harness = await startHarness({ exposeInternalErrors: true });
    const client = await harness.client();
    client.send(addQueries(0, [[1, "messages:crash", {}]]));
    const initial = await client.waitFor(withQuerySet(1));
    expect(initial.modifications[0]).toMatchObject({ type: "QueryFailed", error: { code: "INTERNAL", message: "secret internal detail" } });
  });

  it("does not send Transitions to idle connections", async () => {
    harness = await startHarness();
    const idle = await harness.client();
    const busy = await harness.client();
    busy.send(addQueries(0, [[1, "messages:count", {}]]));
    await busy.waitFor(withQuerySet(1));
    for (let i = 1; i <= 5; i++) {
      busy.send({ type: "Mutation", requestId: i, udfPath: "messages:send", args: { channel: "a", body: `m${i}` } });
      await busy.waitFor(isResponse(i));
    }
    await busy.waitFor((m) => isTransition(m) && updates(m)[1] === 5);
    await sleep(20);
    expect(idle.messages).toEqual([]);
  });
});

describe("mutations", () => {
  it("follows every MutationResponse with a Transition at or after its ts (read your writes)", async () => {
    harness = await startHarness();
    const client = await harness.client();
    client.send(addQueries(0, [[1, "messages:list", { channel: "a" }]]));
    await client.waitFor(withQuerySet(1));
    const loner = await harness.client(); // no queries at all: still needs a Transition to resolve its mutation
    for (const c of [client, loner]) {
      for (let i = 1; i <= 10; i++) c.send({ type: "Mutation", requestId: i, udfPath: "messages:send", args: { channel: c === client ? "a" : "z", body: `m${i}` } });
    }
    for (const c of [client, loner]) {
      for (let i = 1; i <= 10; i++) {
        const response = await c.waitFor(isResponse(i));
        expect(response.success).toBe(true);
        if (!response.success) continue;
        const index = c.messages.indexOf(response);
        const after = await c.waitFor((m): m is TransitionMessage => isTransition(m) && m.endVersion.ts >= response.ts, index);
        expect(after.endVersion.ts).toBeGreaterThanOrEqual(response.ts);
      }
    }
    expect(client.results().get(1)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i + 1}`));
  });

  it("sends a MutationResponse and the Transition that includes it in one write, response first", async () => {
    harness = await startHarness();
    const client = await harness.client();
    client.send(addQueries(0, [[1, "messages:list", { channel: "a" }]]));
    await client.waitFor(withQuerySet(1));
    // Client and server share this process. Written apart (the response at commit, the
    // Transition at the engine's next flush), the client reads the response in one poll, an
    // event-loop turn passes, and the Transition comes in a later read. Written together, both
    // frames arrive in one read and are handled back to back, with no turn in between.
    const turns: Array<{ type: string; turn: number }> = [];
    let turn = 0;
    client.socket.on("message", (data) => {
      turns.push({ type: (JSON.parse(data.toString()) as ServerMessage).type, turn });
      setImmediate(() => turn++);
    });
    for (let i = 1; i <= 5; i++) {
      const from = client.messages.length;
      client.send({ type: "Mutation", requestId: i, udfPath: "messages:send", args: { channel: "a", body: `m${i}` } });
      const response = await client.waitFor(isResponse(i), from);
      const transition = await client.waitFor((m): m is TransitionMessage => isTransition(m) && m.endVersion.ts >= (response.success ? response.ts : Infinity), from);
      expect(client.messages.indexOf(transition)).toBe(client.messages.indexOf(response) + 1);
    }
    expect(turns.map((t) => t.type)).toEqual(Array.from({ length: 5 }, () => ["MutationResponse", "Transition"]).flat());
    for (let i = 0; i < turns.length; i += 2) expect(turns[i + 1]!.turn).toBe(turns[i]!.turn);
  });

  it("keeps a connection's MutationResponses in order when a failed mutation follows one waiting for its Transition", async () => {
    harness = await startHarness();
    const client = await harness.client();
    client.send({ type: "Mutation", requestId: 1, udfPath: "messages:send", args: { channel: "a", body: "ok" } });
    client.send({ type: "Mutation", requestId: 2, udfPath: "messages:send", args: { channel: 5 } });
    await client.waitFor(isResponse(2));
    const order = client.messages.filter((m) => m.type === "MutationResponse").map((m) => [(m as MutationResponseMessage).requestId, (m as MutationResponseMessage).success]);
    expect(order).toEqual([[1, true], [2, false]]);
  });

  it("answers a mutation at once while a query-set change is in progress (its Transition waits for that change)", async () => {
    harness = await startHarness();
    const client = await harness.client();
    client.send(addQueries(0, [[1, "log:slowCount", { delayMs: 300 }]]));
    client.send({ type: "Mutation", requestId: 1, udfPath: "log:append", args: { n: 1, delayMs: 0 } });
    const response = await client.waitFor(isResponse(1));
    expect(client.transitions()).toEqual([]); // the query-set change is still running
    const transition = await client.waitFor(withQuerySet(1));
    expect(transition.endVersion.ts).toBeGreaterThanOrEqual(response.success ? response.ts : Infinity);
  });

  it("runs one connection's mutations one at a time, in the order sent", async () => {
    harness = await startHarness();
    const client = await harness.client();
    const count = 8;
    // Earlier mutations sleep longer: run concurrently, they would commit in reverse.
    for (let n = 0; n < count; n++) client.send({ type: "Mutation", requestId: n + 1, udfPath: "log:append", args: { n, delayMs: (count - n) * 5 } });
    const responses = [];
    for (let n = 0; n < count; n++) responses.push(await client.waitFor(isResponse(n + 1)));
    const order = client.messages.filter((m) => m.type === "MutationResponse").map((m) => (m as MutationResponseMessage).requestId);
    expect(order).toEqual(Array.from({ length: count }, (_, n) => n + 1));
    const tss = responses.map((r) => (r.success ? r.ts : -1));
    expect([...tss].sort((x, y) => x - y)).toEqual(tss);
    expect(await harness.engine.runQuery("log:all", {})).toEqual(Array.from({ length: count }, (_, n) => n));
  });

  it("answers a failed mutation with its error and data", async () => {
    harness = await startHarness();
    const client = await harness.client();
    client.send({ type: "Mutation", requestId: 1, udfPath: "messages:fail", args: {} });
    client.send({ type: "Mutation", requestId: 2, udfPath: "messages:record", args: { body: "x" } });
    client.send({ type: "Mutation", requestId: 3, udfPath: "messages:send", args: { channel: "a" } });
    client.send({ type: "Mutation", requestId: 4, udfPath: "messages:send", args: { $bytes: 12 } });
    expect(await client.waitFor(isResponse(1))).toEqual({
      type: "MutationResponse",
      requestId: 1,
      success: false,
      error: { code: "APPLICATION", message: "nope", data: { reason: "testing", n: { $integer: "AQAAAAAAAAA=" } } },
    });
    expect(await client.waitFor(isResponse(2))).toMatchObject({ success: false, error: { code: "UNKNOWN_FUNCTION" } });
    expect(await client.waitFor(isResponse(3))).toMatchObject({ success: false, error: { code: "INVALID_ARGUMENT" } });
    expect(await client.waitFor(isResponse(4))).toMatchObject({ success: false, error: { code: "INVALID_ARGUMENT" } });
    expect(await harness.engine.runQuery("messages:count", {})).toBe(0);
  });

  it("applies a mutation re-sent after a reconnect once, and answers it with the recorded result", async () => {
    harness = await startHarness();
    const first = await harness.client({ connect: { clientId: "tab-1" } });
    first.send({ type: "Mutation", requestId: 7, udfPath: "messages:send", args: { channel: "a", body: "once" } });
    const original = await first.waitFor(isResponse(7));
    await first.close();
    const second = await harness.client({ connect: { clientId: "tab-1", connectionCount: 1 } });
    second.send({ type: "Mutation", requestId: 7, udfPath: "messages:send", args: { channel: "a", body: "once" } });
    const resent = await second.waitFor(isResponse(7));
    expect(resent).toMatchObject({ success: true, result: 4 });
    expect(original).toMatchObject({ success: true, result: 4 });
    expect(await harness.engine.runQuery("messages:list", { channel: "a" })).toEqual(["once"]);
    // Another client using the same request id is a different request.
    const other = await harness.client({ connect: { clientId: "tab-2" } });
    other.send({ type: "Mutation", requestId: 7, udfPath: "messages:send", args: { channel: "a", body: "other" } });
    await other.waitFor(isResponse(7));
    expect(await harness.engine.runQuery("messages:list", { channel: "a" })).toEqual(["once", "other"]);
    // The deduplicated answer is still followed by a Transition at or after its ts.
    if (resent.success) await second.waitFor((m) => isTransition(m) && m.endVersion.ts >= resent.ts);
  });

  it("skips the receipt lookup of mutations the client sends for the first time, and still applies every request once", async () => {
    harness = await startHarness();
    const lookups = vi.spyOn(harness.engine.storage, "getReceipt");
    const list = () => harness!.engine.runQuery("messages:list", { channel: "a" });
    const send = (client: RawClient, requestId: number, body: string) => {
      const from = client.messages.length;
      client.send({ type: "Mutation", requestId, udfPath: "messages:send", args: { channel: "a", body } });
      return client.waitFor(isResponse(requestId), from);
    };
    // Requests 5 and 6 are new on this connection (Connect.newRequestsFrom): no lookup.
    const first = await harness.client({ connect: { clientId: "tab-1", newRequestsFrom: 5 } });
    const five = await send(first, 5, "five");
    await send(first, 6, "six");
    expect(lookups).not.toHaveBeenCalled();
    // The same ID twice on one connection is not new: looked up, answered from the record.
    expect(await send(first, 6, "six")).toMatchObject({ success: true });
    expect(lookups).toHaveBeenCalledTimes(1);
    // A mutation below newRequestsFrom may be a re-send from an earlier connection: looked up.
    await send(first, 4, "four");
    expect(lookups).toHaveBeenCalledTimes(2);
    await first.close();

    // Reconnected: 5 is re-sent (below the new mark, looked up, answered from its record), 7 is new.
    const second = await harness.client({ connect: { clientId: "tab-1", connectionCount: 1, newRequestsFrom: 7 } });
    const recorded = { success: true, result: (five as { result: unknown }).result };
    expect(await send(second, 5, "five")).toMatchObject(recorded);
    await send(second, 7, "seven");
    expect(lookups).toHaveBeenCalledTimes(3);
    expect(await list()).toEqual(["five", "six", "four", "seven"]);

    // A client that calls a re-send new is still answered from the record (storage refuses the
    // receipt twice, and the re-run looks it up), and is not taken at its word again.
    const liar = await harness.client({ connect: { clientId: "tab-1", connectionCount: 2, newRequestsFrom: 0 } });
    expect(await send(liar, 5, "five")).toMatchObject(recorded);
    expect(await list()).toEqual(["five", "six", "four", "seven"]);
    const before = lookups.mock.calls.length;
    await send(liar, 8, "eight");
    expect(lookups.mock.calls.length).toBe(before + 1);
  });

  it("applies a mutation re-sent after a server restart once (file database)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "walkin-transport-"));
    try {
      const filename = join(dir, "app.sqlite");
      const before = await startHarness({ filename });
      const client = await before.client({ connect: { clientId: "survivor" } });
      client.send({ type: "Mutation", requestId: 1, udfPath: "messages:send", args: { channel: "a", body: "durable" } });
      expect(await client.waitFor(isResponse(1))).toMatchObject({ success: true, result: 7 });
      await before.server.close();
      expect((await client.closed).code).toBe(4010);
      await before.engine.close();

      harness = await startHarness({ filename });
      const again = await harness.client({ connect: { clientId: "survivor", connectionCount: 1 } });
      again.send({ type: "Mutation", requestId: 1, udfPath: "messages:send", args: { channel: "a", body: "durable" } });
      expect(await again.waitFor(isResponse(1))).toMatchObject({ success: true, result: 7 });
      expect(await harness.engine.runQuery("messages:list", { channel: "a" })).toEqual(["durable"]);
    } finally {
      await harness?.dispose();
      harness = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("actions", () => {
  it("runs actions concurrently and survives a client that leaves mid-action", async () => {
    harness = await startHarness();
    const client = await harness.client();
    client.send({ type: "Action", requestId: 1, udfPath: "actions:wait", args: { ms: 80, value: "slow" } });
    client.send({ type: "Action", requestId: 2, udfPath: "actions:wait", args: { ms: 1, value: "fast" } });
    client.send({ type: "Action", requestId: 3, udfPath: "actions:fail", args: {} });
    const fast = await client.waitFor((m) => m.type === "ActionResponse" && m.requestId === 2);
    const slow = await client.waitFor((m) => m.type === "ActionResponse" && m.requestId === 1);
    expect(client.messages.indexOf(fast)).toBeLessThan(client.messages.indexOf(slow));
    expect(slow).toEqual({ type: "ActionResponse", requestId: 1, success: true, result: "slow" });
    expect(await client.waitFor((m) => m.type === "ActionResponse" && m.requestId === 3)).toMatchObject({ success: false, error: { code: "INTERNAL", message: "Internal server error" } });

    const leaving = await harness.client();
    leaving.send({ type: "Action", requestId: 1, udfPath: "actions:wait", args: { ms: 50, value: "lost" } });
    await sleep(5);
    leaving.socket.terminate();
    await sleep(80);
    const after = await harness.client();
    after.send({ type: "Action", requestId: 1, udfPath: "actions:wait", args: { ms: 0, value: "still here" } });
    expect(await after.waitFor((m) => m.type === "ActionResponse")).toMatchObject({ success: true, result: "still here" });
  });
});

describe("auth", () => {
  it("re-runs every query as the new identity in one Transition, and uses the token for later calls", async () => {
    harness = await startHarness();
    const client = await harness.client();
    client.send(addQueries(0, [[1, "auth:whoami", {}], [2, "messages:count", {}]]));
    expect(updates(await client.waitFor(withQuerySet(1)))).toEqual({ 1: null, 2: 0 });

    client.send({ type: "Authenticate", baseVersion: 0, token: "token-alice" });
    client.send({ type: "Action", requestId: 1, udfPath: "actions:whoami", args: {} });
    const signedIn = await client.waitFor((m): m is TransitionMessage => isTransition(m) && m.endVersion.identity === 1);
    expect(updates(signedIn)).toEqual({ 1: "alice", 2: 0 });
    expect(await client.waitFor((m) => m.type === "ActionResponse")).toMatchObject({ result: "alice" });

    const from = client.messages.length;
    client.send({ type: "Authenticate", baseVersion: 1, token: "forged" });
    expect(await client.waitFor((m) => m.type === "AuthError", from)).toMatchObject({ baseVersion: 1, error: { code: "UNAUTHENTICATED" } });
    client.send({ type: "Action", requestId: 2, udfPath: "actions:whoami", args: {} });
    expect(await client.waitFor((m) => m.type === "ActionResponse" && m.requestId === 2)).toMatchObject({ result: "alice" });

    client.send({ type: "Authenticate", baseVersion: 1, token: null });
    const signedOut = await client.waitFor((m): m is TransitionMessage => isTransition(m) && m.endVersion.identity === 2);
    expect(updates(signedOut)).toEqual({ 1: null, 2: 0 });
    expect(harness.logs.join("\n")).not.toContain("token-alice");
  });

  it("refuses every token when the app has no authentication", async () => {
    const engine = await (await import("../engine/engine.js")).Engine.open({
      storage: await (await import("../storage/sqlite/index.js")).openSqliteStorage({ filename: ":memory:" }),
      modules,
      runScheduler: false,
    });
    harness = await startHarness({ engine });
    const client = await harness.client();
    client.send({ type: "Authenticate", baseVersion: 0, token: "token-alice" });
    expect(await client.waitFor((m) => m.type === "AuthError")).toMatchObject({ baseVersion: 0, error: { code: "UNAUTHENTICATED" } });
  });
});

describe("chunking", () => {
  it("splits a Transition larger than maxServerMessageBytes into chunks the client reassembles", async () => {
    harness = await startHarness();
    const client = await harness.client();
    const size = 1_500_000;
    const sizes: number[] = [];
    client.socket.on("message", (data: Buffer) => sizes.push(data.length));
    client.send(addQueries(0, [[1, "messages:big", { size }], [2, "messages:count", {}]]));
    const initial = await client.waitFor(withQuerySet(1), 0, 15_000);
    expect(client.chunkCount).toBeGreaterThan(1);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1024 * 1024);
    expect(updates(initial)).toEqual({ 1: "é😀x".repeat(Math.ceil(size / 4)), 2: 0 });
    // Small transitions afterwards are plain messages again.
    client.send({ type: "Mutation", requestId: 1, udfPath: "messages:send", args: { channel: "a", body: "b" } });
    await client.waitFor((m) => isTransition(m) && updates(m)[2] === 1);
  }, 30_000);
});

describe("server lifecycle", () => {
  it("hot reload re-subscribes every query on the new engine and sends a fresh Transition", async () => {
    harness = await startHarness();
    const client = await harness.client();
    client.send(addQueries(0, [[1, "messages:list", { channel: "a" }]]));
    const before = await client.waitFor(withQuerySet(1));
    const shout = { ...modules, messages: { ...modules.messages, list: query({ args: { channel: v.string() }, handler: async () => ["RELOADED"] }) } };
    const next = await openEngine(":memory:", { modules: shout });
    const old = harness.engine;
    await harness.server.setEngine(next);
    harness.engine = next;
    await old.close();
    const fresh = await client.waitFor((m): m is TransitionMessage => isTransition(m) && m !== before, 0);
    expect(updates(fresh)).toEqual({ 1: ["RELOADED"] });
    expect(fresh.endVersion.querySet).toBe(1);
    client.send({ type: "Mutation", requestId: 1, udfPath: "messages:send", args: { channel: "a", body: "on the new engine" } });
    expect(await client.waitFor(isResponse(1))).toMatchObject({ success: true });
    expect(await next.runQuery("messages:count", {})).toBe(1);
  });

  it("close() answers running mutations, then closes sockets with 4010", async () => {
    harness = await startHarness();
    const client = await harness.client();
    client.send({ type: "Mutation", requestId: 1, udfPath: "log:append", args: { n: 1, delayMs: 60 } });
    await sleep(20);
    expect(harness.server.connectionCount()).toBe(1);
    await harness.server.close();
    expect(client.messages.find(isResponse(1))).toMatchObject({ success: true, result: 1 });
    expect(await client.closed).toEqual({ code: 4010, reason: "server shutting down" });
    await expect(RawClient.open(harness.server.wsUrl)).rejects.toThrow();
    expect(await harness.engine.runQuery("log:all", {})).toEqual([1]);
  });

  it("drops a socket that stops answering pings, keeps one that answers", async () => {
    harness = await startHarness({ heartbeatMs: 40 });
    const dead = await harness.client({ autoPong: false });
    const alive = await harness.client();
    const closed = await dead.closed;
    expect(closed.code).toBe(1006);
    expect(alive.socket.readyState).toBe(alive.socket.OPEN);
    alive.send({ type: "Ping" });
    expect(await alive.waitFor((m) => m.type === "Pong")).toEqual({ type: "Pong" });
    expect(harness.server.connectionCount()).toBe(1);
  });

  it("serves on the port it reports", async () => {
    const engine = await openEngine();
    const server = await startServer({ engine, port: 0, log: () => undefined });
    try {
      expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
      expect(server.wsUrl).toBe(`ws://127.0.0.1:${server.port}/api/sync`);
      expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
    } finally {
      await server.close();
      await engine.close();
    }
  });
});

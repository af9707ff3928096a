/**
 * The client's wiring against a scripted socket, for sequences a real server produces only by
 * chance: a Transition lost with the connection, a Transition that does not continue the
 * previous one, a refused token.
 */
import { afterEach, describe, expect, it } from "vitest";
import { makeFunctionReference } from "../server/api.js";
import type { ClientMessage, ServerMessage } from "../transport/protocol.js";
import { WalkinClient } from "./client.js";

const api = {
  m: { send: makeFunctionReference<"mutation", { x: number }>("m:send") },
  q: { a: makeFunctionReference<"query">("q:a"), b: makeFunctionReference<"query">("q:b") },
};

class ScriptedSocket {
  static all: ScriptedSocket[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  readonly sent: ClientMessage[] = [];
  constructor(readonly url: string) {
    ScriptedSocket.all.push(this);
  }
  send(text: string) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    setTimeout(() => this.onclose?.({ code: 1000, reason: "" }), 0);
  }
  receive(message: ServerMessage) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
}
const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));
const v = (querySet: number, identity: number, ts: number) => ({ querySet, identity, ts });

async function openClient() {
  ScriptedSocket.all = [];
  const client = new WalkinClient("http://test", {
    webSocketConstructor: ScriptedSocket as unknown as typeof WebSocket,
    reconnect: { initialDelayMs: 1, maxDelayMs: 1 },
    logger: false,
  });
  clients.push(client);
  const socket = ScriptedSocket.all[0]!;
  socket.onopen!();
  await tick();
  return { client, socket };
}
const clients: WalkinClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
});

async function reconnect() {
  ScriptedSocket.all.at(-1)!.onclose!({ code: 1006, reason: "" });
  await tick(5);
  const socket = ScriptedSocket.all.at(-1)!;
  socket.onopen!();
  await tick();
  return socket;
}

describe("WalkinClient wiring", () => {
  it("settles a mutation whose Transition was lost with the connection, via the restart's Transition", async () => {
    const { client, socket } = await openClient();
    expect(socket.sent).toEqual([
      { type: "Connect", clientId: expect.stringMatching(/^[0-9a-f]{32}$/), connectionCount: 0, newRequestsFrom: 0 },
      { type: "ModifyQuerySet", baseVersion: 0, newVersion: 1, modifications: [] },
    ]);
    socket.receive({ type: "Transition", startVersion: v(0, 0, 0), endVersion: v(1, 0, 3), modifications: [] });
    let resolved = false;
    const done = client.mutation(api.m.send, { x: 1 }).then(() => (resolved = true));
    await tick();
    expect(socket.sent.at(-1)).toEqual({ type: "Mutation", requestId: 0, udfPath: "m:send", args: { x: 1 } });
    socket.receive({ type: "MutationResponse", requestId: 0 as never, success: true, result: null, ts: 4 });
    await tick();
    expect(resolved).toBe(false); // committed, but no Transition at ts 4 yet

    const next = await reconnect();
    // The committed mutation is not re-sent: the server has it.
    expect(next.sent.map((m) => m.type)).toEqual(["Connect", "ModifyQuerySet"]);
    // Request 0 was sent before: the new connection's first sends start at 1. The server must
    // hold the commit the mutation waits for (ts 4), not only the last Transition's (3).
    expect(next.sent[0]).toMatchObject({ connectionCount: 1, maxObservedTimestamp: 4, newRequestsFrom: 1 });
    next.receive({ type: "Transition", startVersion: v(0, 0, 0), endVersion: v(1, 0, 4), modifications: [] });
    await done;
  });

  it("reconnects when a Transition does not continue the previous one", async () => {
    const { client, socket } = await openClient();
    socket.receive({ type: "Transition", startVersion: v(0, 0, 0), endVersion: v(1, 0, 3), modifications: [] });
    socket.receive({ type: "Transition", startVersion: v(1, 0, 2), endVersion: v(1, 0, 5), modifications: [] });
    expect(client.connectionState().isWebSocketConnected).toBe(false);
    await tick(5);
    expect(ScriptedSocket.all).toHaveLength(2);
  });

  it("calls each watcher once per Transition, after every query of it is in place", async () => {
    const { client, socket } = await openClient();
    socket.receive({ type: "Transition", startVersion: v(0, 0, 0), endVersion: v(1, 0, 1), modifications: [] });
    const a = client.watchQuery(api.q.a, {});
    const b = client.watchQuery(api.q.b, {});
    const seen: unknown[] = [];
    a.onUpdate(() => seen.push(["a", a.localQueryResult(), b.localQueryResult()]));
    b.onUpdate(() => seen.push(["b", a.localQueryResult(), b.localQueryResult()]));
    await tick();
    expect(socket.sent.at(-1)).toMatchObject({ type: "ModifyQuerySet", baseVersion: 1, newVersion: 2 });
    socket.receive({
      type: "Transition",
      startVersion: v(1, 0, 1),
      endVersion: v(2, 0, 2),
      modifications: [
        { type: "QueryUpdated", queryId: 0 as never, value: 1 },
        { type: "QueryUpdated", queryId: 1 as never, value: 1 },
      ],
    });
    expect(seen).toEqual([
      ["a", 1, 1],
      ["b", 1, 1],
    ]);
  });

  it("undoes a refused Authenticate so the next one continues from the server's version", async () => {
    const { client, socket } = await openClient();
    socket.receive({ type: "Transition", startVersion: v(0, 0, 0), endVersion: v(1, 0, 1), modifications: [] });
    const changes: boolean[] = [];
    client.setAuth(async ({ forceRefreshToken }) => (forceRefreshToken ? "fresh" : "stale"), (ok) => changes.push(ok));
    await tick();
    expect(socket.sent.at(-1)).toEqual({ type: "Authenticate", baseVersion: 0, token: "stale" });
    socket.receive({ type: "AuthError", baseVersion: 0, error: { code: "UNAUTHENTICATED", message: "expired" } });
    await tick();
    expect(socket.sent.at(-1)).toEqual({ type: "Authenticate", baseVersion: 0, token: "fresh" });
    socket.receive({ type: "Transition", startVersion: v(1, 0, 1), endVersion: v(1, 1, 1), modifications: [] });
    expect(changes).toEqual([true]);
    expect(client.connectionState().isAuthenticated).toBe(true);
  });
});

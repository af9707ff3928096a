/**
 * The client's wiring against a scripted socket, for sequences a real server produces only by
 * chance: a Transition lost with the connection, a Transition that does not continue the
 * previous one, a refused token.
 */
import { afterEach, describe, expect, it } from "vitest";
import { tick } from "./fixtures/promises.js";
import { closeScriptedClients, openScriptedClient, reconnectScripted, ScriptedSocket, scriptedApi, sv } from "./fixtures/scriptedSocket.js";

afterEach(closeScriptedClients);

describe("WalkinClient wiring", () => {
  it("settles a mutation whose Transition was lost with the connection, via the restart's Transition", async () => {
    const { client, socket } = await openScriptedClient();
    expect(socket.sent).toEqual([
      { type: "Connect", clientId: expect.stringMatching(/^[0-9a-f]{32}$/), connectionCount: 0, newRequestsFrom: 0 },
      { type: "ModifyQuerySet", baseVersion: 0, newVersion: 1, modifications: [] },
    ]);
    socket.receive({ type: "Transition", startVersion: sv(0, 0, 0), endVersion: sv(1, 0, 3), modifications: [] });
    let resolved = false;
    const done = client.mutation(scriptedApi.m.send, { x: 1 }).then(() => (resolved = true));
    await tick();
    expect(socket.sent.at(-1)).toEqual({ type: "Mutation", requestId: 0, udfPath: "m:send", args: { x: 1 } });
    socket.receive({ type: "MutationResponse", requestId: 0 as never, success: true, result: null, ts: 4 });
    await tick();
    expect(resolved).toBe(false); // committed, but no Transition at ts 4 yet

    const next = await reconnectScripted();
    // The committed mutation is not re-sent: the server has it.
    expect(next.sent.map((m) => m.type)).toEqual(["Connect", "ModifyQuerySet"]);
    // Request 0 was sent before: the new connection's first sends start at 1. The server must
    // hold the commit the mutation waits for (ts 4), not only the last Transition's (3).
    expect(next.sent[0]).toMatchObject({ connectionCount: 1, maxObservedTimestamp: 4, newRequestsFrom: 1 });
    next.receive({ type: "Transition", startVersion: sv(0, 0, 0), endVersion: sv(1, 0, 4), modifications: [] });
    await done;
  });

  it("reconnects when a Transition does not continue the previous one", async () => {
    const { client, socket } = await openScriptedClient();
    socket.receive({ type: "Transition", startVersion: sv(0, 0, 0), endVersion: sv(1, 0, 3), modifications: [] });
    socket.receive({ type: "Transition", startVersion: sv(1, 0, 2), endVersion: sv(1, 0, 5), modifications: [] });
    expect(client.connectionState().isWebSocketConnected).toBe(false);
    await tick(5);
    expect(ScriptedSocket.all).toHaveLength(2);
  });

  it("calls each watcher once per Transition, after every query of it is in place", async () => {
    const { client, socket } = await openScriptedClient();
    socket.receive({ type: "Transition", startVersion: sv(0, 0, 0), endVersion: sv(1, 0, 1), modifications: [] });
    const a = client.watchQuery(scriptedApi.q.a, {});
    const b = client.watchQuery(scriptedApi.q.b, {});
    const seen: unknown[] = [];
    a.onUpdate(() => seen.push(["a", a.localQueryResult(), b.localQueryResult()]));
    b.onUpdate(() => seen.push(["b", a.localQueryResult(), b.localQueryResult()]));
    await tick();
    expect(socket.sent.at(-1)).toMatchObject({ type: "ModifyQuerySet", baseVersion: 1, newVersion: 2 });
    socket.receive({
      type: "Transition",
      startVersion: sv(1, 0, 1),
      endVersion: sv(2, 0, 2),
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
    const { client, socket } = await openScriptedClient();
    socket.receive({ type: "Transition", startVersion: sv(0, 0, 0), endVersion: sv(1, 0, 1), modifications: [] });
    const changes: boolean[] = [];
    client.setAuth(async ({ forceRefreshToken }) => (forceRefreshToken ? "fresh" : "stale"), (ok) => changes.push(ok));
    await tick();
    expect(socket.sent.at(-1)).toEqual({ type: "Authenticate", baseVersion: 0, token: "stale" });
    socket.receive({ type: "AuthError", baseVersion: 0, error: { code: "UNAUTHENTICATED", message: "expired" } });
    await tick();
    expect(socket.sent.at(-1)).toEqual({ type: "Authenticate", baseVersion: 0, token: "fresh" });
    socket.receive({ type: "Transition", startVersion: sv(1, 0, 1), endVersion: sv(1, 1, 1), modifications: [] });
    expect(changes).toEqual([true]);
    expect(client.connectionState().isAuthenticated).toBe(true);
  });
});

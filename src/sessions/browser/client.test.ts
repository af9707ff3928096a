/**
 * `SessionClient` against the real stack (Node, `ws`): calls carry the source's ID, and a watch
 * follows a refresh to the new ID.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WalkinClient } from "../../browser/index.js";
import { api, startSessionBackend } from "../react/fixtures/backend.js";
import { SessionClient } from "./client.js";
import { createSessionIdSource } from "./source.js";
import { memoryStore } from "./stores.js";

let backend: Awaited<ReturnType<typeof startSessionBackend>>;
let client: WalkinClient;
beforeAll(async () => {
  backend = await startSessionBackend();
  client = backend.client();
});
afterAll(() => backend.close());

let n = 0;
const newSessions = () =>
  new SessionClient(client, createSessionIdSource({ store: memoryStore(`client-test-${++n}`), scope: "tab", channel: null }));

function nextUpdate<T>(watch: { onUpdate(cb: () => void): () => void; localQueryResult(): T | undefined }, until: (v: T) => boolean) {
  return new Promise<T>((resolve, reject) => {
    const check = () => {
      try {
        const value = watch.localQueryResult();
        if (value !== undefined && until(value)) {
          queueMicrotask(() => stop());
          resolve(value);
        }
      } catch (error) {
        reject(error);
      }
    };
    const stop = watch.onUpdate(check);
  });
}

describe("SessionClient", () => {
  it("adds sessionId to queries, mutations and actions", async () => {
    const sessions = newSessions();
    await sessions.mutation(api.notes.add, { text: "one" });
    await expect(sessions.query(api.notes.list)).resolves.toEqual(["one"]);
    await expect(sessions.query(api.notes.filtered, { prefix: "o" })).resolves.toEqual(["one"]);
    await expect(sessions.action(api.notes.count)).resolves.toBe(1);
    await expect(client.query(api.notes.list, { sessionId: sessions.source.current! })).resolves.toEqual(["one"]);
    await expect(newSessions().query(api.notes.list)).resolves.toEqual([]);
  });

  it("a watch follows a refresh to the new ID; no call after it uses the old one", async () => {
    const sessions = newSessions();
    await sessions.mutation(api.notes.add, { text: "old session" });
    const watch = sessions.watchQuery(api.notes.list);
    const updates: (string[] | undefined)[] = [];
    const stop = watch.onUpdate(() => updates.push(watch.localQueryResult()));
    await nextUpdate(watch, (v) => v.length === 1);
    const oldId = sessions.source.current!;

    const newId = await sessions.source.refresh(async (to) => {
      await sessions.mutation(api.notes.add, { text: "still old" }); // runs with the old ID
      expect(sessions.source.current).toBe(oldId);
      await sessions.mutation(api.notes.transfer, { to });
    });
    expect(watch.localQueryResult()).toBeUndefined(); // the new ID's result has not arrived
    await sessions.mutation(api.notes.add, { text: "new" });
    await expect(nextUpdate(watch, (v) => v.length === 3)).resolves.toEqual(["old session", "still old", "new"]);
    await expect(client.query(api.notes.list, { sessionId: oldId })).resolves.toEqual([]);
    await expect(client.query(api.notes.list, { sessionId: newId })).resolves.toHaveLength(3);
    stop();
  });

  it("a rejected beforeUpdate keeps the watch on the old ID", async () => {
    const sessions = newSessions();
    await sessions.mutation(api.notes.add, { text: "kept" });
    const watch = sessions.watchQuery(api.notes.list);
    const stop = watch.onUpdate(() => {});
    await nextUpdate(watch, (v) => v.length === 1);
    await expect(sessions.source.refresh(() => Promise.reject(new Error("nope")))).rejects.toThrow("nope");
    expect(watch.localQueryResult()).toEqual(["kept"]);
    stop();
  });
});

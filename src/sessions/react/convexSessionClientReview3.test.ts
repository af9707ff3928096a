/**
 * `ConvexReactSessionClient` with an app-given `storage` that throws: like the ready stores, it
 * must fall back to memory instead of throwing out of the constructor (after the socket opened).
 * A real server on 127.0.0.1 and real sockets (`ws`).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { WebSocket } from "ws";
import { isSessionIdV4 } from "../browser/id.js";
import { ConvexReactSessionClient } from "./index.js";
import { api, startSessionBackend } from "./fixtures/backend.js";

let backend: Awaited<ReturnType<typeof startSessionBackend>>;
beforeAll(async () => {
  backend = await startSessionBackend();
});
afterAll(() => backend.close());

const quotaExceeded = () => {
  throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
};

describe("ConvexReactSessionClient with a storage that throws", () => {
  const storages = {
    // Safari's private mode of old, or a full quota: reads work, writes throw.
    "writes throw": { getItem: () => null, setItem: quotaExceeded },
    // A storage the page may not use at all.
    "reads and writes throw": { getItem: quotaExceeded, setItem: quotaExceeded },
  };
  for (const [name, storage] of Object.entries(storages)) {
    it(`${name}: the client is made, warns once, and keeps one session in memory`, async () => {
      const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
      try {
        const client = new ConvexReactSessionClient(backend.url, { webSocketConstructor: WebSocket as never, logger: false, storage });
        try {
          const id = client.getSessionId();
          expect(isSessionIdV4(id)).toBe(true);
          await client.sessionMutation(api.notes.add, { text: "kept in memory" });
          await expect(client.sessionQuery(api.notes.list, {})).resolves.toEqual(["kept in memory"]);
          expect(client.getSessionId()).toBe(id);
          expect(warn).toHaveBeenCalledTimes(1);
          expect(String(warn.mock.calls[0]![0])).not.toContain(id); // a session ID is a credential: never logged
        } finally {
          await client.close();
        }
      } finally {
        warn.mockRestore();
      }
    });
  }
});

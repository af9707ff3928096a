/**
 * A real backend for client tests: the engine on in-memory SQLite behind the real WebSocket and
 * HTTP server on a free loopback port, and real `WalkinClient`s connected to it over `ws`
 * (Node has no WebSocket of its own; jsdom's is not a network socket).
 *
 * @example
 * const backend = await startLiveBackend(schema, { messages });
 * const client = backend.client();
 * await client.mutation(api.messages.send, { body: "hi" });
 * await backend.close();
 */
import { WebSocket } from "ws";
import { WalkinClient } from "../browser/index.js";
import { Engine } from "../engine/engine.js";
import type { Modules } from "../engine/functions.js";
import type { SchemaDefinition } from "../server/schema.js";
import { openTestStorage, type TestStorageOption } from "./testStorage.js";
import { startServer } from "../transport/index.js";

export interface LiveBackend {
  url: string;
  engine: Engine;
  /** A connected client; closed by `close()`. */
  client(): WalkinClient;
  /** Stops the server (its clients start reconnecting); the engine stays open. */
  stopServer(): Promise<void>;
  /** Closes the clients, the server and the engine. */
  close(): Promise<void>;
}

export async function startLiveBackend(
  schema: SchemaDefinition<any> | null,
  modules: Modules,
  options: { storage?: TestStorageOption } = {},
): Promise<LiveBackend> {
  const engine = await Engine.open({ storage: await openTestStorage(options.storage), schema, modules, runScheduler: false });
  const server = await startServer({ engine, port: 0, log: () => {} });
  const clients: WalkinClient[] = [];
  let stopped: Promise<void> | undefined;
  const stopServer = () => (stopped ??= server.close());
  return {
    url: server.url,
    engine,
    client() {
      const client = new WalkinClient(server.url, { webSocketConstructor: WebSocket as never, logger: false });
      clients.push(client);
      return client;
    },
    stopServer,
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await stopServer();
      await engine.close();
    },
  };
}

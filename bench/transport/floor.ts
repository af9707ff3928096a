/**
 * The floors: raw `ws` servers on 127.0.0.1 doing the least any WebSocket backend must do for
 * the same traffic, with the library's defaults (no compression), as the Walk-in server uses.
 *
 * - Echo (round trip): parse the message, insert its document with better-sqlite3 into a file
 *   with the same pragmas as the engine's storage, send the message back.
 * - Broadcast (fan-out, memory): a subscriber's second message (its ModifyQuerySet) is answered
 *   with a payload the size of Walk-in's first Transition; a message on `/trigger` sends the
 *   update payload (a real Walk-in Transition text) to every subscriber.
 */
import Database from "better-sqlite3";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import type { Durability } from "../engine/workload.js";

export interface FloorServer {
  url: string;
  close(): Promise<void>;
}

function listen(): Promise<{ wss: WebSocketServer; url: string }> {
  return new Promise((resolve, reject) => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    wss.once("error", reject);
    wss.once("listening", () => resolve({ wss, url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}` }));
  });
}

function closeServer(wss: WebSocketServer): Promise<void> {
  for (const ws of wss.clients) ws.terminate();
  return new Promise((resolve) => wss.close(() => resolve()));
}

/** Opens a SQLite file as the engine's storage does: WAL, the same `synchronous`. */
export function openFloorDatabase(filename: string, synchronous: Durability): Database.Database {
  const db = new Database(filename);
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${synchronous === "full" ? "FULL" : "NORMAL"}`);
  db.exec(`
    CREATE TABLE docs (id INTEGER PRIMARY KEY, key TEXT NOT NULL, n REAL NOT NULL, payload TEXT NOT NULL);
    CREATE INDEX docs_by_key ON docs (key);
  `);
  return db;
}

/** Round-trip floor: each message is a Mutation-shaped JSON text; its document is committed, then the text echoed. */
export async function startEchoServer(filename: string, synchronous: Durability): Promise<FloorServer> {
  const db = openFloorDatabase(filename, synchronous);
  const insert = db.prepare("INSERT INTO docs (key, n, payload) VALUES (?, ?, ?)");
  const { wss, url } = await listen();
  wss.on("connection", (ws) => {
    ws.on("message", (data) => {
      const text = data.toString();
      const { args } = JSON.parse(text) as { args: { key: string; n: number; payload: string } };
      // Autocommit: the row is durable (per `synchronous`) when run() returns, as a commit is.
      insert.run(args.key, args.n, JSON.stringify(args.payload));
      ws.send(text);
    });
  });
  return {
    url,
    close: async () => {
      await closeServer(wss);
      db.close();
    },
  };
}

export interface BroadcastServer extends FloorServer {
  /** `${url}/trigger`: the connection whose messages start a broadcast. */
  triggerUrl: string;
  subscribers(): number;
  setPayloads(initial: string, update: string): void;
}

/** Fan-out and memory floor. The payloads are set (from Walk-in's real messages) before subscribers connect. */
export async function startBroadcastServer(): Promise<BroadcastServer> {
  const { wss, url } = await listen();
  const subscribers = new Set<WebSocket>();
  let initial = "";
  let update = "";
  wss.on("connection", (ws, request) => {
    if (request.url === "/trigger") {
      // The usual broadcast loop: the same string to every socket.
      ws.on("message", () => {
        for (const subscriber of subscribers) subscriber.send(update);
      });
      return;
    }
    subscribers.add(ws);
    let received = 0;
    ws.on("message", () => {
      if (++received === 2) ws.send(initial);
    });
    ws.on("close", () => subscribers.delete(ws));
  });
  return {
    url,
    triggerUrl: `${url}/trigger`,
    subscribers: () => subscribers.size,
    setPayloads(i, u) {
      initial = i;
      update = u;
    },
    close: () => closeServer(wss),
  };
}

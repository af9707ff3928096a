/**
 * A floor "node" for case 3 (started through bench/transport/child.ts): the least a process
 * serving live queries from a shared PostgreSQL can do. It LISTENs on one channel and, on
 * every notification, sends one fixed text (a real Walk-in update Transition, same size) to
 * every subscriber connected to it. A message on a `/trigger` connection runs `pg_notify` on
 * that channel (autocommit), so a trigger reaches the subscribers of every floor node through
 * PostgreSQL, as a mutation through one Walk-in node reaches the others' subscribers.
 *
 * Subscribers speak the same opening messages as Walk-in's (Connect, ModifyQuerySet) and get
 * the initial text after the second.
 *
 * Requests (see `../transport/child.ts`): start {url, channel} → {port}, payloads {initial,
 * update}, subscribers → count, cpu → ms of CPU used so far.
 */
import type { AddressInfo } from "node:net";
import pg from "pg";
import { WebSocketServer, type WebSocket } from "ws";
import { serveRequests } from "../transport/child.js";

let initial = "";
let update = "";
const subscribers = new Set<WebSocket>();

async function start(url: string, channel: string): Promise<{ port: number }> {
  const listener = new pg.Client({ connectionString: url });
  const notifier = new pg.Client({ connectionString: url });
  await Promise.all([listener.connect(), notifier.connect()]);
  listener.on("notification", () => {
    for (const subscriber of subscribers) subscriber.send(update);
  });
  await listener.query(`LISTEN ${channel}`);
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve, reject) => {
    wss.once("error", reject);
    wss.once("listening", () => resolve());
  });
  wss.on("connection", (ws, request) => {
    if (request.url === "/trigger") {
      ws.on("message", () => void notifier.query(`SELECT pg_notify('${channel}', '')`));
      return;
    }
    let received = 0;
    ws.on("message", () => {
      if (++received !== 2) return;
      subscribers.add(ws);
      ws.send(initial);
    });
    ws.on("close", () => subscribers.delete(ws));
  });
  return { port: (wss.address() as AddressInfo).port };
}

serveRequests(async (message) => {
  switch (message.op) {
    case "start":
      return start(message.url as string, message.channel as string);
    case "payloads":
      initial = message.initial as string;
      update = message.update as string;
      return null;
    case "subscribers":
      return subscribers.size;
    case "cpu": {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1000;
    }
    default:
      throw new Error(`unknown op ${message.op}`);
  }
});

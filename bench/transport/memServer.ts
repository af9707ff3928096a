/**
 * The server's process for the memory case (run with --expose-gc): either a Walk-in server
 * (engine on SQLite, synchronous=NORMAL) or the floor's raw `ws` server, alone in its process
 * so that its resident memory is its own. `measure` collects garbage, lets the process settle,
 * and reports `process.memoryUsage()`.
 *
 * Requests (see `child.ts`): start { kind, filename, initial }, measure, stop.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Engine } from "../../src/engine/engine.js";
import { startServer, type WalkinServer } from "../../src/transport/index.js";
import { openEngine, BENCH_LIMITS } from "./app.js";
import { serveRequests } from "./child.js";
import { startBroadcastServer, type BroadcastServer } from "./floor.js";

let walkin: { engine: Engine; server: WalkinServer } | null = null;
let floor: BroadcastServer | null = null;

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("memServer.ts needs node --expose-gc");

serveRequests(async (message) => {
  switch (message.op) {
    case "start": {
      if (message.kind === "walkin") {
        const engine = await openEngine(message.filename as string, "normal");
        const server = await startServer({ engine, port: 0, host: "127.0.0.1", log: () => {}, limits: BENCH_LIMITS });
        walkin = { engine, server };
        return { url: server.wsUrl, writerUrl: server.wsUrl };
      }
      floor = await startBroadcastServer();
      floor.setPayloads(message.initial as string, "");
      return { url: floor.url, writerUrl: floor.triggerUrl };
    }
    case "measure": {
      for (let i = 0; i < 3; i++) {
        gc();
        await sleep(100);
      }
      const connections = walkin ? walkin.server.connectionCount() : (floor?.subscribers() ?? 0);
      return { ...process.memoryUsage(), connections };
    }
    case "stop":
      if (walkin) {
        await walkin.server.close();
        await walkin.engine.close();
      }
      await floor?.close();
      return null;
    default:
      throw new Error(`unknown op ${message.op}`);
  }
});

/**
 * The server's process for the slow-reader run: a Walk-in server with its default limits,
 * alone in its process so that its memory is its own. Requests (see ../transport/child.ts):
 * start { filename, port?, limits?, logLevel?, quiet? } → { url }, stats { gc? } → memory and connection figures, stop.
 * Run with --expose-gc.
 */
import type { Engine } from "../../src/engine/engine.js";
import { startServer, type ServerLimits, type WalkinServer } from "../../src/transport/index.js";
import { serveRequests } from "../transport/child.js";
import { openEngine } from "./app.js";

let running: { engine: Engine; server: WalkinServer } | null = null;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("server.ts needs node --expose-gc");
/** Connections the server closed for not reading (4009), from its debug log. */
let slowCloses = 0;
/** Connections refused for their address (4002). */
let refusedConnections = 0;
/** Other debug lines (aborted requests, protocol errors), other log lines, and how many of those carry a stack. */
let debugLines = 0;
let logLines = 0;
let stackTraces = 0;

serveRequests(async (message) => {
  switch (message.op) {
    case "start": {
      const engine = await openEngine(message.filename as string);
      const log = (line: string) => {
        if (line.includes("closing a connection: client")) slowCloses++;
        else if (line.includes("refusing a connection")) refusedConnections++;
        else if (line.includes("[walkin] HTTP ") || line.includes("protocol error")) debugLines++;
        else {
          logLines++;
          if (/\n\s+at /.test(line)) stackTraces++;
          if (!message.quiet) console.log(line);
        }
      };
      const limits = (message.limits ?? {}) as Partial<ServerLimits>;
      const logLevel = (message.logLevel as "info" | "debug" | undefined) ?? "debug";
      const server = await startServer({ engine, port: (message.port as number | undefined) ?? 0, host: "127.0.0.1", log, logLevel, limits });
      running = { engine, server };
      return { url: server.url };
    }
    case "stats": {
      // With gc: what the server retains (the bound); without: what it holds, garbage included.
      if (message.gc) gc();
      const memory = process.memoryUsage();
      const server = running?.server;
      return {
        heapUsed: memory.heapUsed,
        external: memory.external,
        rss: memory.rss,
        connections: server?.connectionCount() ?? 0,
        subscriptions: server?.subscriptionCount() ?? 0,
        maxQueuedBytes: server?.maxQueuedBytes() ?? 0,
        slowCloses,
        refusedConnections,
        debugLines,
        logLines,
        stackTraces,
        rowsWritten: running ? await running.engine.runQuery("pings:count", {}) : 0,
      };
    }
    case "stop":
      if (running) {
        await running.server.close();
        await running.engine.close();
      }
      return null;
    default:
      throw new Error(`unknown op ${message.op}`);
  }
});

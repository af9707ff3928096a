/**
 * `startServer`: one port serving the sync WebSocket (`/api/sync`), the HTTP API and the app's
 * HTTP routes, over one engine (swappable for hot reload).
 *
 * Fan-out: the server listens to the engine's flushes once and tells every connection; a
 * connection with nothing new for its client sends nothing.
 *
 * Limits (`limits.ts`): each connection bounds the bytes queued for it; the server counts
 * connections per client address (one over the cap is closed with 4002 right after the
 * handshake, so browsers see why) and live queries in total and per address.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocket, WebSocketServer } from "ws";
import type { CallerRequest, Engine } from "../engine/engine.js";
import type { HttpRouter } from "../server/router.js";
import { callerRequestOf } from "./callerRequest.js";
import { Connection, type ConnectionHost } from "./connection.js";
import { EngineSwitch } from "./engineSwitch.js";
import type { ErrorReporting } from "./errors.js";
import { handleHttp, requestUrl, type DashboardHandler, type HttpContext } from "./http.js";
import { clientAddress, resolveLimits, ServerCounters, type ServerLimits } from "./limits.js";
import { CLOSE_CODES, PROTOCOL_LIMITS } from "./protocol.js";
import { ResultEncoder } from "./results.js";

export interface WalkinServerOptions {
  engine: Engine;
  /** 0 picks a free port (default 3210). */
  port?: number;
  /** Default "127.0.0.1". */
  host?: string;
  /** The routes of `functions/http.ts` (its default export). */
  http?: HttpRouter;
  /** Serves files from this directory for GET requests nothing else answered (SPA fallback to index.html). */
  staticDir?: string;
  /** Dev mode: send the messages of unexpected errors to clients (default: "Internal server error"). */
  exposeInternalErrors?: boolean;
  /** Where the server logs (default console.log). Tokens and arguments are never logged. */
  log?: (line: string) => void;
  /** Serves the dashboard and its admin API (see src/dashboard/api). */
  dashboard?: DashboardHandler;
  /** "debug" also logs routine events: aborted requests, slow clients dropped (default "info"). */
  logLevel?: "info" | "debug";
  /**
   * Interval of WebSocket pings and auth token re-checks; an idle socket that misses two pings
   * is dropped (default 15 000 ms).
   */
  heartbeatMs?: number;
  /** Backpressure and caps (see `ServerLimits` for each default). */
  limits?: Partial<ServerLimits>;
}

export interface WalkinServer {
  /** `http://host:port` */
  url: string;
  /** `ws://host:port/api/sync` */
  wsUrl: string;
  port: number;
  connectionCount(): number;
  /** Live queries over all connections (what `limits.maxSubscriptions` caps). */
  subscriptionCount(): number;
  /** The largest number of bytes queued for one connection right now (what the send-buffer limits bound). */
  maxQueuedBytes(): number;
  /** Hot reload: re-subscribes every connection's queries on `engine`; each client gets a fresh Transition. */
  setEngine(engine: Engine): Promise<void>;
  /** After `setEngine`: resolves once the queries and actions still running on `previous` have ended (then it may be closed). */
  retired(previous: Engine): Promise<void>;
  /**
   * Stops accepting, lets running mutations answer, closes sockets with 4010, then waits for
   * the actions (and one-shot queries) still running to end, so that their ctx.runMutation
   * calls land before the engine is closed (an action runs at most its time limit, 10 minutes
   * by default). Does not close the engine.
   */
  close(): Promise<void>;
}

const SYNC_PATH = "/api/sync";
const SHUTDOWN_GRACE_MS = 2_000;

/**
 * Starts serving an engine.
 *
 * @example
 * const server = await startServer({ engine, port: 0 });
 * const socket = new WebSocket(server.wsUrl);
 */
export async function startServer(options: WalkinServerOptions): Promise<WalkinServer> {
  const log = options.log ?? ((line: string) => console.log(line));
  const debug = options.logLevel === "debug" ? log : () => {};
  const reporting: ErrorReporting = { exposeInternalErrors: options.exposeInternalErrors ?? false, log, debug };
  const limits = resolveLimits(options.limits);
  const counters = new ServerCounters(limits);
  const engines = new EngineSwitch(options.engine);
  const connections = new Set<Connection>();
  const host: ConnectionHost = { engines, reporting, limits, results: new ResultEncoder(reporting), closed: (c) => connections.delete(c) };
  const httpContext: HttpContext = {
    engines,
    reporting,
    router: options.http ?? null,
    staticDir: options.staticDir ?? null,
    dashboard: options.dashboard ?? null,
    trustProxy: limits.trustProxy,
    closing: () => closing,
  };
  let closing = false;

  const announce = (ts: number) => {
    for (const connection of connections) {
      try {
        connection.flushed(ts);
      } catch (error) {
        log(`[walkin] sending a transition failed: ${(error as Error).stack}`);
      }
    }
  };
  let stopListening = options.engine.subscriptions.onFlush(announce);

  // Requests being answered: close() marks them so that their connections close after the answer.
  const answering = new Set<ServerResponse>();
  const httpServer = createServer((request, response) => {
    answering.add(response);
    response.once("close", () => answering.delete(response));
    void handleHttp(request, response, httpContext);
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: PROTOCOL_LIMITS.maxClientMessageBytes, WebSocket: SyncSocket });
  const accept = (ws: WebSocket, socket: Duplex, ip: string, request: CallerRequest) => {
    // A refused socket still reads until its close handshake ends, and `ws` emits a bad frame
    // as an 'error' event: unhandled, one peer's six bytes would end the whole process. An
    // accepted one gets its listener from Connection.
    ws.on("error", () => {});
    if (closing) return ws.close(CLOSE_CODES.serverShuttingDown, "server shutting down");
    if (!counters.connect(ip)) {
      debug(`[walkin] refusing a connection: its address has ${limits.maxConnectionsPerIp} open already`);
      return ws.close(CLOSE_CODES.tooManyConnections, `too many connections from your address (the limit is ${limits.maxConnectionsPerIp})`);
    }
    ws.once("close", () => counters.disconnect(ip));
    connections.add(new Connection(ws, host, request, counters.budgetFor(ip), socket));
  };
  // No closure made here may use `request` or `head`: closures of one scope share its
  // variables, and the socket's error handler lives as long as the connection, so it would
  // keep the whole upgrade request (headers and all) in memory for each idle client.
  httpServer.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    destroyOnError(socket);
    const path = requestUrl(request)?.pathname;
    if (closing || path !== SYNC_PATH) {
      const status = closing ? "503 Service Unavailable" : path === undefined ? "400 Bad Request" : "404 Not Found";
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
      return;
    }
    const ip = clientAddress(request, limits.trustProxy);
    const callerRequest = callerRequestOf(request);
    wss.handleUpgrade(request, socket, head, (ws) => accept(ws, socket, ip, callerRequest));
  });

  const heartbeat = setInterval(() => {
    for (const connection of connections) connection.heartbeat();
  }, options.heartbeatMs ?? 15_000);
  heartbeat.unref();

  const hostname = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(options.port ?? 3210, hostname, () => {
      httpServer.off("error", reject);
      resolve();
    });
  });
  const address = httpServer.address();
  const port = typeof address === "object" && address ? address.port : (options.port ?? 3210);
  const authority = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;

  return {
    url: `http://${authority}`,
    wsUrl: `ws://${authority}${SYNC_PATH}`,
    port,
    connectionCount: () => connections.size,
    subscriptionCount: () => counters.subscriptionCount,
    maxQueuedBytes: () => [...connections].reduce((max, connection) => Math.max(max, connection.queuedBytes), 0),
    async setEngine(engine) {
      await engines.swap(engine, () => {
        stopListening();
        stopListening = engine.subscriptions.onFlush(announce);
      });
      await Promise.all([...connections].map((connection) => connection.resubscribe()));
    },
    retired: (previous) => engines.drained(previous),
    async close() {
      if (closing) return;
      closing = true;
      clearInterval(heartbeat);
      const stopped = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      // A kept-alive connection whose answer is still to come (an action running) would sit idle
      // after it until the grace period cuts it, holding close() that long; closing it after its
      // answer also tells the client to open a new connection for its next request.
      for (const response of answering) if (!response.headersSent) response.setHeader("Connection", "close");
      await Promise.all([...connections].map((connection) => connection.shutdown("server shutting down")));
      await engines.idle();
      stopListening();
      httpServer.closeIdleConnections();
      // Sockets whose peer does not finish the close handshake are cut after a grace period.
      const cut = setTimeout(() => {
        for (const ws of wss.clients) ws.terminate();
        httpServer.closeAllConnections();
      }, SHUTDOWN_GRACE_MS);
      await stopped;
      clearTimeout(cut);
      // An action outlives its caller's socket (as when a client leaves mid-action): closing
      // the engine under it would fail its next ctx.runMutation, losing a write it was making
      // (a payment recorded after the card was charged). Bounded by the action time limit.
      await engines.drained(engines.current);
      wss.close();
    },
  };
}

/** A peer that resets mid-handshake must not crash the server. */
function destroyOnError(socket: Duplex): void {
  socket.on("error", () => socket.destroy());
}

/**
 * `ws` closes a socket whose message exceeds `maxPayload` with 1009; the protocol promises
 * 4001 (CLOSE_CODES.messageTooLarge) with a reason that states the limit.
 */
class SyncSocket extends WebSocket {
  override close(code?: number, reason?: string | Buffer): void {
    if (code === 1009) {
      super.close(CLOSE_CODES.messageTooLarge, `message too large: the limit is ${PROTOCOL_LIMITS.maxClientMessageBytes} bytes`);
      return;
    }
    super.close(code, reason);
  }
}

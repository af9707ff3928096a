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
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
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
    if (!isWebSocketUpgrade(request)) return serveAsHttp1(httpServer, request, socket, head);
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
  // File URLs (`ctx.storage.getUrl`) need an address a browser can reach, where WALKIN_URL does
  // not say one: a wildcard address is reached as localhost.
  const reachable = hostname === "0.0.0.0" || hostname === "::" ? `localhost:${port}` : authority;
  const servedAt = `http://${reachable}`;
  options.engine.files.servedAt ??= servedAt;

  return {
    url: `http://${authority}`,
    wsUrl: `ws://${authority}${SYNC_PATH}`,
    port,
    connectionCount: () => connections.size,
    subscriptionCount: () => counters.subscriptionCount,
    maxQueuedBytes: () => [...connections].reduce((max, connection) => Math.max(max, connection.queuedBytes), 0),
    async setEngine(engine) {
      engine.files.servedAt ??= servedAt;
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

function isWebSocketUpgrade(request: IncomingMessage): boolean {
  return request.headers.upgrade?.trim().toLowerCase() === "websocket";
}

/** The headers that offer a protocol switch, and the `Connection` options that name them. */
const UPGRADE_OFFER: ReadonlySet<string> = new Set(["upgrade", "http2-settings"]);

/**
 * Serves a request that offers to switch to another protocol than WebSocket (`Upgrade: h2c`,
 * sent by `curl --http2` and some HTTP clients on http:// URLs) as the HTTP/1.1 request it also
 * is: a server may ignore the offer (RFC 9110, section 7.8). Node hands every request that
 * carries `Upgrade` to the 'upgrade' listener once there is one (the sync socket's), without its
 * body, so such a request to an app route or /api/* got a bare 404. Instead, the request head is
 * written back without the offer, in front of the bytes still unread (`head` and the body that
 * follows), and the socket given to the HTTP server again as a new connection, which its
 * 'connection' event is documented to take.
 */
function serveAsHttp1(server: Server, request: IncomingMessage, socket: Duplex, head: Buffer): void {
  const lines = [`${request.method} ${request.url} HTTP/${request.httpVersion}`];
  const raw = request.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (UPGRADE_OFFER.has(lower)) continue;
    const value = lower === "connection" ? withoutUpgradeOptions(raw[i + 1]!) : raw[i + 1]!;
    if (value !== "") lines.push(`${name}: ${value}`);
  }
  // latin1: Node decoded the header bytes so; encoding them back so restores them exactly.
  socket.unshift(Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), head]));
  server.emit("connection", socket);
}

function withoutUpgradeOptions(connection: string): string {
  return connection
    .split(",")
    .map((option) => option.trim())
    .filter((option) => option !== "" && !UPGRADE_OFFER.has(option.toLowerCase()))
    .join(", ");
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

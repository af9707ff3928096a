/**
 * The one class that touches the WebSocket: opening it, reading and writing messages,
 * reconnecting with exponential backoff and full jitter, and a heartbeat that notices a
 * connection which died without a close (a laptop lid, a NAT that forgot us).
 *
 * State transitions (the socket field exists only in states where a socket is live):
 *
 *   idle ──start()──► connecting ──open──► open ──close / error / heartbeat timeout / restart()──► backoff
 *                        │  ▲                                                                      │
 *                        │  └───────────────────────── timer fires ◄───────────────────────────────┘
 *                        └── close / error ──► backoff
 *   any state ──stop()──► stopped (final)
 *
 * `onOpen` runs on every entry into `open`, `onClose` on every exit from it (never for a socket
 * that did not open), so the client pairs them to restore and to reset its state. The backoff
 * doubles per consecutive failure up to `maxDelayMs` and the actual delay is uniform in
 * [0, that] (full jitter: clients dropped together do not return together); it resets once a
 * connection carried a message from the server, so a server that accepts and drops at once
 * is not hammered.
 *
 * Faults back off on their own count. A fault is a connection ended because of what was said
 * on it: the server's FatalError, or a message this client cannot accept (`fault`). Whatever
 * caused it is usually sent again on the next connection (a token the server refuses, a
 * protocol mismatch), and the messages that came before the fault would reset the count
 * above, so that each reconnect would wait at most `initialDelayMs`, forever. So consecutive
 * faults double the delay too, and only a connection that stays open for a heartbeat
 * interval clears them.
 *
 * Heartbeat: checked every half interval. After an interval with nothing from the server the
 * client sends a Ping (the server answers Pong); if nothing at all arrives for an interval after
 * that Ping, two intervals of silence, the socket is presumed dead and replaced. Counting from
 * the Ping rather than from the last message keeps a background tab (whose timers browsers
 * slow to once a minute) from dropping a healthy connection on its first late tick.
 */
import { encodeMessage, parseServerMessage, type ClientMessage, type ServerMessage } from "../transport/protocol.js";
import { SendBudget } from "./sendBudget.js";

type Timer = ReturnType<typeof setTimeout>;

type ConnectionPhase =
  | { state: "idle" }
  | { state: "connecting"; socket: WebSocket }
  | { state: "open"; socket: WebSocket; heartbeat: Timer; openedAt: number; lastReceivedAt: number; pingSentAt: number | null }
  | { state: "backoff"; timer: Timer }
  | { state: "stopped" };

export interface Logger {
  log(...args: unknown[]): void;
  warn(...args: unknown[]): void;
}

export interface ConnectionOptions {
  url: string;
  webSocketConstructor: typeof WebSocket;
  initialDelayMs: number;
  maxDelayMs: number;
  heartbeatIntervalMs: number;
  logger: Logger;
  /** A new socket opened; `connectionCount` is how many opened before it. */
  onOpen(connectionCount: number): void;
  onMessage(message: ServerMessage): void;
  /** The open socket is gone (a reconnect is already scheduled unless stopped). */
  onClose(): void;
  /** Anything observable changed (for connection-state subscribers). */
  onStateChange(): void;
  random?: () => number;
  now?: () => number;
}

const NORMAL_CLOSURE = 1000;

export class Connection {
  private phase: ConnectionPhase = { state: "idle" };
  private opened = 0;
  private failures = 0;
  /** Consecutive connections ended by a fault (see the top of this file). */
  private faults = 0;
  private readonly random: () => number;
  private readonly now: () => number;
  /** The server's rate limit, mirrored: `canSend()` says whether a message that can wait should. */
  private readonly budget: SendBudget;

  constructor(private readonly options: ConnectionOptions) {
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.budget = new SendBudget(this.now);
  }

  start(): void {
    if (this.phase.state === "idle") this.connect();
  }

  /** Sends if the socket is open; false otherwise (the message is then the caller's to keep). */
  send(message: ClientMessage): boolean {
    return this.sendText(encodeMessage(message));
  }

  /** `send` for a message already encoded (a request's, encoded once when it was made: requestManager.ts). */
  sendText(text: string): boolean {
    if (this.phase.state !== "open") return false;
    try {
      this.phase.socket.send(text);
      this.budget.spend();
      return true;
    } catch (error) {
      this.restart(`send failed: ${(error as Error).message}`);
      return false;
    }
  }

  /** Drops the current socket (a dead peer, a failed send) and reconnects after a backoff. */
  restart(reason: string): void {
    const phase = this.phase;
    if (phase.state !== "open" && phase.state !== "connecting") return;
    this.options.logger.warn(`walkin: reconnecting (${reason})`);
    this.discard(phase.socket);
    this.lost(phase.state === "open");
  }

  /**
   * `restart` for a connection ended by what was said on it (the server's FatalError, a
   * message this client cannot accept): the next attempt backs off by the consecutive faults.
   */
  fault(reason: string): void {
    if (this.phase.state !== "open" && this.phase.state !== "connecting") return;
    this.faults++;
    this.restart(reason);
  }

  /** Closes for good; resolves once the socket has closed (or at most after a second). */
  stop(): Promise<void> {
    const phase = this.phase;
    if (phase.state === "backoff") clearTimeout(phase.timer);
    if (phase.state === "open") clearInterval(phase.heartbeat);
    this.phase = { state: "stopped" };
    if (phase.state !== "open" && phase.state !== "connecting") {
      this.options.onStateChange();
      return Promise.resolve();
    }
    const socket = phase.socket;
    const closed = new Promise<void>((resolve) => {
      const fallback = setTimeout(resolve, 1000);
      socket.onclose = () => {
        clearTimeout(fallback);
        resolve();
      };
    });
    socket.onopen = null;
    socket.onmessage = null;
    socket.onerror = () => {};
    try {
      socket.close(NORMAL_CLOSURE, "client closed");
    } catch {
      // Already closing.
    }
    if (phase.state === "open") this.options.onClose();
    this.options.onStateChange();
    return closed;
  }

  isOpen(): boolean {
    return this.phase.state === "open";
  }

  /** Open, and within the server's rate limit (else wait `msUntilCanSend()`). */
  canSend(): boolean {
    return this.phase.state === "open" && this.budget.canSpend();
  }

  msUntilCanSend(): number {
    return this.budget.msUntilAvailable();
  }

  /** How many sockets have opened so far. */
  connectionCount(): number {
    return this.opened;
  }

  /** Consecutive failed or unproductive attempts since the last healthy connection. */
  retries(): number {
    return Math.max(this.failures, this.faults);
  }

  private connect(): void {
    let socket: WebSocket;
    try {
      socket = new this.options.webSocketConstructor(this.options.url);
    } catch (error) {
      this.options.logger.warn(`walkin: cannot open a WebSocket to ${this.options.url}:`, error);
      this.lost(false);
      return;
    }
    this.phase = { state: "connecting", socket };
    socket.onopen = () => this.onOpen(socket);
    socket.onmessage = (event: MessageEvent) => this.onMessage(socket, event.data);
    socket.onerror = () => {
      // A close event always follows; the reconnect happens there.
    };
    socket.onclose = (event: CloseEvent) => this.onSocketClose(socket, event);
    this.options.onStateChange();
  }

  private onOpen(socket: WebSocket): void {
    if (this.phase.state !== "connecting" || this.phase.socket !== socket) return;
    const interval = this.options.heartbeatIntervalMs;
    const heartbeat = setInterval(() => this.checkHeartbeat(socket), Math.max(1, interval / 2));
    const now = this.now();
    this.phase = { state: "open", socket, heartbeat, openedAt: now, lastReceivedAt: now, pingSentAt: null };
    this.budget.reset();
    const connectionCount = this.opened++;
    this.options.onOpen(connectionCount);
    this.options.onStateChange();
  }

  private onMessage(socket: WebSocket, data: unknown): void {
    const phase = this.phase;
    if (phase.state !== "open" || phase.socket !== socket) return;
    phase.lastReceivedAt = this.now();
    phase.pingSentAt = null;
    this.failures = 0;
    if (typeof data !== "string") {
      this.fault("the server sent a binary message");
      return;
    }
    const parsed = parseServerMessage(data);
    if (!parsed.ok) {
      this.fault(`the server sent an invalid message: ${parsed.error}`);
      return;
    }
    this.options.onMessage(parsed.message);
  }

  private onSocketClose(socket: WebSocket, event: CloseEvent): void {
    const phase = this.phase;
    if ((phase.state !== "open" && phase.state !== "connecting") || phase.socket !== socket) return;
    if (phase.state === "open" && event.code !== NORMAL_CLOSURE) {
      this.options.logger.log(`walkin: connection closed (${event.code}${event.reason ? `: ${event.reason}` : ""}), reconnecting`);
    }
    this.lost(phase.state === "open");
  }

  private checkHeartbeat(socket: WebSocket): void {
    const phase = this.phase;
    if (phase.state !== "open" || phase.socket !== socket) return;
    const now = this.now();
    const interval = this.options.heartbeatIntervalMs;
    if (this.faults > 0 && now - phase.openedAt >= interval) {
      // Up for a heartbeat interval: whatever faulted the connections before this one is gone.
      this.faults = 0;
      this.options.onStateChange();
    }
    if (phase.pingSentAt !== null) {
      if (now - phase.pingSentAt >= interval) this.restart(`no message from the server for ${now - phase.lastReceivedAt} ms`);
      return;
    }
    if (now - phase.lastReceivedAt < interval) return;
    if (this.send({ type: "Ping" })) phase.pingSentAt = now;
  }

  /** The current socket is gone: schedule the next attempt. */
  private lost(wasOpen: boolean): void {
    if (this.phase.state === "open") clearInterval(this.phase.heartbeat);
    const ceiling = Math.min(this.options.maxDelayMs, this.options.initialDelayMs * 2 ** Math.min(this.retries(), 30));
    const delay = Math.floor(this.random() * ceiling);
    this.failures++;
    this.phase = { state: "backoff", timer: setTimeout(() => this.connect(), delay) };
    if (wasOpen) this.options.onClose();
    this.options.onStateChange();
  }

  private discard(socket: WebSocket): void {
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    // Some implementations (the `ws` package) throw on an 'error' event nobody listens to.
    socket.onerror = () => {};
    try {
      socket.close(NORMAL_CLOSURE, "client reconnecting");
    } catch {
      // Already closing.
    }
  }
}

/**
 * What one client, one address and the whole server may make the server hold: the settings
 * (`ServerLimits`, documented in docs/protocol.md#limits), their defaults, and the counters
 * that enforce the server-wide and per-address caps.
 *
 * The per-connection memory bound. A connection's outgoing bytes not yet handed to the
 * kernel (`bufferedAmount`) stay under `maxSendBufferBytes` plus one message: Transitions are
 * coalesced while more than `sendBufferBytes` are queued (the client gets one Transition to
 * the newest results once it catches up), and any other message that would take the queue
 * past `maxSendBufferBytes` closes the connection with CLOSE_CODES.clientTooSlow instead.
 */
import type { IncomingMessage } from "node:http";
import type { ErrorPayload } from "./protocol.js";

export interface ServerLimits {
  /** Bytes queued for a connection above which Transitions wait and coalesce (default 1 MiB). */
  sendBufferBytes: number;
  /** Bytes queued for a connection past which it is closed with 4009 (default 8 MiB). */
  maxSendBufferBytes: number;
  /** A connection with bytes queued and none written for this long is closed with 4009 (default 30 000 ms). */
  stallTimeoutMs: number;
  /** Live subscriptions over all connections (default 100 000; each costs about 2 KiB of heap and some work per commit). */
  maxSubscriptions: number;
  /** Open WebSocket connections from one client address (default 500). */
  maxConnectionsPerIp: number;
  /** Live subscriptions over the connections of one client address (default 10 000). */
  maxSubscriptionsPerIp: number;
  /**
   * Take the client address from the last entry of `X-Forwarded-For` (set by your reverse
   * proxy) instead of the socket's peer (default false). Behind a proxy without it, every
   * client has the proxy's address and shares one per-address budget.
   */
  trustProxy: boolean;
}

export const DEFAULT_LIMITS: Readonly<ServerLimits> = Object.freeze({
  sendBufferBytes: 1024 * 1024,
  maxSendBufferBytes: 8 * 1024 * 1024,
  stallTimeoutMs: 30_000,
  maxSubscriptions: 100_000,
  maxConnectionsPerIp: 500,
  maxSubscriptionsPerIp: 10_000,
  trustProxy: false,
});

/** `DEFAULT_LIMITS` with `overrides`; throws a clear error for a setting that makes no sense. */
export function resolveLimits(overrides: Partial<ServerLimits> = {}): ServerLimits {
  const limits: ServerLimits = { ...DEFAULT_LIMITS };
  for (const [name, value] of Object.entries(overrides) as [keyof ServerLimits, unknown][]) {
    if (value === undefined) continue;
    if (!(name in DEFAULT_LIMITS)) throw new Error(`Unknown server limit "${name}". The limits are: ${Object.keys(DEFAULT_LIMITS).join(", ")}.`);
    if (name === "trustProxy") {
      if (typeof value !== "boolean") throw new Error(`The server limit trustProxy must be true or false, got ${JSON.stringify(value)}.`);
      limits.trustProxy = value;
      continue;
    }
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
      throw new Error(`The server limit ${name} must be a positive integer, got ${JSON.stringify(value)}.`);
    }
    limits[name] = value;
  }
  if (limits.maxSendBufferBytes < limits.sendBufferBytes) {
    throw new Error(`maxSendBufferBytes (${limits.maxSendBufferBytes}) must be at least sendBufferBytes (${limits.sendBufferBytes}).`);
  }
  return limits;
}

/** Environment variables `walkin start` / `walkin dev` read, one per limit. */
export const LIMIT_ENV_VARS: Readonly<Record<keyof ServerLimits, string>> = Object.freeze({
  sendBufferBytes: "WALKIN_SEND_BUFFER_BYTES",
  maxSendBufferBytes: "WALKIN_MAX_SEND_BUFFER_BYTES",
  stallTimeoutMs: "WALKIN_STALL_TIMEOUT_MS",
  maxSubscriptions: "WALKIN_MAX_SUBSCRIPTIONS",
  maxConnectionsPerIp: "WALKIN_MAX_CONNECTIONS_PER_IP",
  maxSubscriptionsPerIp: "WALKIN_MAX_SUBSCRIPTIONS_PER_IP",
  trustProxy: "WALKIN_TRUST_PROXY",
});

/**
 * The limits set in `env`.
 *
 * @example
 * limitsFromEnv({ WALKIN_MAX_CONNECTIONS_PER_IP: "50" }) // { maxConnectionsPerIp: 50 }
 */
export function limitsFromEnv(env: Record<string, string | undefined>): Partial<ServerLimits> {
  const limits: Partial<ServerLimits> = {};
  for (const [name, variable] of Object.entries(LIMIT_ENV_VARS) as [keyof ServerLimits, string][]) {
    const text = env[variable]?.trim();
    if (!text) continue;
    if (name === "trustProxy") {
      if (text !== "true" && text !== "false") throw new Error(`${variable} must be "true" or "false", got "${text}".`);
      limits.trustProxy = text === "true";
      continue;
    }
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${variable} must be a positive integer, got "${text}".`);
    limits[name] = value;
  }
  return limits;
}

/** The address per-address caps count against. */
export function clientAddress(request: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const header = request.headers["x-forwarded-for"];
    const last = (Array.isArray(header) ? header.join(",") : (header ?? "")).split(",").pop()?.trim();
    if (last) return last;
  }
  return request.socket.remoteAddress ?? "unknown";
}

/** One address's share of the server's subscriptions, as a connection sees it. */
export interface SubscriptionBudget {
  /** Takes one subscription; the refusal to send the client when a cap is reached. */
  take(): ErrorPayload | null;
  /** Gives back `count` subscriptions. */
  give(count: number): void;
}

/**
 * Counts live subscriptions and connections, in total and per address. Counters of an
 * address are dropped when they reach zero, so the maps hold only addresses in use.
 */
export class ServerCounters {
  private subscriptions = 0;
  private readonly subscriptionsByIp = new Map<string, number>();
  private readonly connectionsByIp = new Map<string, number>();

  constructor(private readonly limits: ServerLimits) {}

  get subscriptionCount(): number {
    return this.subscriptions;
  }

  /** Counts a new connection from `ip`; false (nothing counted) if the address is at its cap. */
  connect(ip: string): boolean {
    const open = this.connectionsByIp.get(ip) ?? 0;
    if (open >= this.limits.maxConnectionsPerIp) return false;
    this.connectionsByIp.set(ip, open + 1);
    return true;
  }

  disconnect(ip: string): void {
    decrement(this.connectionsByIp, ip, 1);
  }

  /** `ip`'s share, for one connection (an object per connection: methods, no closures, as it is held by every idle client). */
  budgetFor(ip: string): SubscriptionBudget {
    return new AddressBudget(this, ip);
  }

  /** Takes one subscription for `ip`; the refusal to send the client when a cap is reached. */
  takeSubscription(ip: string): ErrorPayload | null {
    const { maxSubscriptions, maxSubscriptionsPerIp } = this.limits;
    if (this.subscriptions >= maxSubscriptions) {
      return refusal("maxSubscriptions", maxSubscriptions, `The server holds its maximum of ${maxSubscriptions} live queries. Try again later.`);
    }
    const mine = this.subscriptionsByIp.get(ip) ?? 0;
    if (mine >= maxSubscriptionsPerIp) {
      return refusal(
        "maxSubscriptionsPerIp",
        maxSubscriptionsPerIp,
        `Your address holds its maximum of ${maxSubscriptionsPerIp} live queries over all its connections. Remove queries you no longer display.`,
      );
    }
    this.subscriptions++;
    this.subscriptionsByIp.set(ip, mine + 1);
    return null;
  }

  giveSubscriptions(ip: string, count: number): void {
    if (count <= 0) return;
    this.subscriptions -= count;
    decrement(this.subscriptionsByIp, ip, count);
  }
}

class AddressBudget implements SubscriptionBudget {
  constructor(
    private readonly counters: ServerCounters,
    private readonly ip: string,
  ) {}

  take(): ErrorPayload | null {
    return this.counters.takeSubscription(this.ip);
  }

  give(count: number): void {
    this.counters.giveSubscriptions(this.ip, count);
  }
}

function refusal(limit: keyof ServerLimits, max: number, message: string): ErrorPayload {
  return { code: "LIMIT_EXCEEDED", message, data: { limit, max } };
}

function decrement(map: Map<string, number>, key: string, by: number): void {
  const left = (map.get(key) ?? 0) - by;
  if (left > 0) map.set(key, left);
  else map.delete(key);
}

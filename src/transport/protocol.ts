/**
 * The wire protocol: every message between a client and the server, as one union per
 * direction keyed on `type`, with parsers that validate untrusted input.
 *
 * Values inside messages (args, results, error data) use the JSON encoding of
 * `values/json.ts`, so int64, bytes and special floats survive the trip exactly.
 *
 * Session of a connection:
 *   client → Connect (clientId survives reconnects; the server dedupes mutations by it)
 *   client → Authenticate? (token or null), ModifyQuerySet, Mutation, Action, Ping ... in any order
 *   server → Transition (query results at one snapshot `ts`), MutationResponse, ActionResponse,
 *            AuthError, AuthExpired, Pong; FatalError then close on a protocol violation.
 *
 * Versions: the client numbers its query-set changes (`ModifyQuerySet.baseVersion → newVersion`)
 * and auth changes (`Authenticate.baseVersion`); a Transition says which query-set and identity
 * version its results reflect, so the client can tell which of its queries it answers.
 *
 * Read your writes: MutationResponse carries the commit `ts`; the client resolves the mutation
 * once it has applied a Transition with `endVersion.ts >= ts`.
 */
import type { JSONValue } from "../values/index.js";

/** Limits enforced by the server on incoming data (documented in docs/protocol.md). */
export const PROTOCOL_LIMITS = {
  /** Largest message a client may send, in bytes. */
  maxClientMessageBytes: 8 * 1024 * 1024,
  /** Transitions larger than this are split into TransitionChunk messages. */
  maxServerMessageBytes: 1024 * 1024,
  /** Queries one connection may subscribe to. */
  maxQueriesPerConnection: 4096,
  /** Messages per second a connection may send, sustained (token bucket). */
  messagesPerSecond: 200,
  /** Burst allowance of that bucket. */
  messageBurst: 400,
  /** Function path length. */
  maxPathLength: 512,
  /** Auth token length, in characters (`WalkinClient` refuses a longer token before sending it). */
  maxTokenChars: 4096,
} as const;

export type QueryId = number & { readonly __brand: "QueryId" };
export type RequestId = number & { readonly __brand: "RequestId" };

export interface StateVersion {
  /** The query-set version whose queries this state reflects. */
  querySet: number;
  /** The identity (auth) version it was computed under. */
  identity: number;
  /** The snapshot timestamp every result is valid at. */
  ts: number;
}

export interface ErrorPayload {
  message: string;
  /** A `WalkinErrorCode`. */
  code: string;
  /** Application data from `new WalkinError(message, { data })` (JSON-encoded value). */
  data?: JSONValue;
}

// ---------------------------------------------------------------- client → server

export interface ConnectMessage {
  type: "Connect";
  /** Random ID the client keeps across reconnects; scopes request IDs for deduplication. */
  clientId: string;
  /** How many times this client connected before (0 on first). */
  connectionCount: number;
  /** Highest timestamp the client has seen (lets the server avoid sending older snapshots). */
  maxObservedTimestamp?: number;
  /**
   * The client's promise that every mutation it sends on this connection with a `requestId` at
   * or above this number was never sent before, on any connection: the server then skips
   * looking for its receipt (re-sent ones, numbered below, are looked up as always).
   */
  newRequestsFrom?: number;
}

export type QuerySetModification =
  | { type: "Add"; queryId: QueryId; udfPath: string; args: JSONValue }
  | { type: "Remove"; queryId: QueryId };

export interface ModifyQuerySetMessage {
  type: "ModifyQuerySet";
  baseVersion: number;
  newVersion: number;
  modifications: QuerySetModification[];
}

export interface MutationMessage {
  type: "Mutation";
  /** Increasing per client; a mutation re-sent with the same ID is applied at most once. */
  requestId: RequestId;
  udfPath: string;
  args: JSONValue;
}

export interface ActionMessage {
  type: "Action";
  requestId: RequestId;
  udfPath: string;
  args: JSONValue;
}

export interface AuthenticateMessage {
  type: "Authenticate";
  baseVersion: number;
  /** An opaque auth token, or null to sign out. */
  token: string | null;
}

export interface PingMessage {
  type: "Ping";
}

export type ClientMessage =
  | ConnectMessage
  | ModifyQuerySetMessage
  | MutationMessage
  | ActionMessage
  | AuthenticateMessage
  | PingMessage;

// ---------------------------------------------------------------- server → client

export type StateModification =
  | { type: "QueryUpdated"; queryId: QueryId; value: JSONValue }
  | { type: "QueryFailed"; queryId: QueryId; error: ErrorPayload }
  | { type: "QueryRemoved"; queryId: QueryId };

export interface TransitionMessage {
  type: "Transition";
  startVersion: StateVersion;
  endVersion: StateVersion;
  modifications: StateModification[];
}

/** One piece of a Transition too large for one message; pieces arrive in order. */
export interface TransitionChunkMessage {
  type: "TransitionChunk";
  transitionId: number;
  partNumber: number;
  totalParts: number;
  /** A slice of the JSON text of the whole TransitionMessage. */
  chunk: string;
}

export type MutationResponseMessage =
  | { type: "MutationResponse"; requestId: RequestId; success: true; result: JSONValue; ts: number }
  | { type: "MutationResponse"; requestId: RequestId; success: false; error: ErrorPayload };

/** `ts`: the commit timestamp of the last mutation the action ran (it may have thrown after); absent if it ran none. */
export type ActionResponseMessage =
  | { type: "ActionResponse"; requestId: RequestId; success: true; result: JSONValue; ts?: number }
  | { type: "ActionResponse"; requestId: RequestId; success: false; error: ErrorPayload; ts?: number };

export interface AuthErrorMessage {
  type: "AuthError";
  /** The identity version that was refused. */
  baseVersion: number;
  error: ErrorPayload;
}

/**
 * The token the server accepted at `identityVersion` stopped resolving to a user (the auth
 * session was revoked or expired). Calls run signed out from then on; the client fetches a
 * fresh token or signs out (its `isAuthenticated` turns false).
 */
export interface AuthExpiredMessage {
  type: "AuthExpired";
  identityVersion: number;
  error: ErrorPayload;
}

export interface FatalErrorMessage {
  type: "FatalError";
  error: ErrorPayload;
}

export interface PongMessage {
  type: "Pong";
}

export type ServerMessage =
  | TransitionMessage
  | TransitionChunkMessage
  | MutationResponseMessage
  | ActionResponseMessage
  | AuthErrorMessage
  | AuthExpiredMessage
  | FatalErrorMessage
  | PongMessage;

/** WebSocket close codes the server uses (4000-4999 are application codes); see docs/protocol.md. */
export const CLOSE_CODES = {
  protocolError: 4000,
  messageTooLarge: 4001,
  /** The client's address has `maxConnectionsPerIp` connections open already. */
  tooManyConnections: 4002,
  rateLimited: 4008,
  /** The client did not read what was sent to it: over `maxSendBufferBytes` queued, or no progress for `stallTimeoutMs`. */
  clientTooSlow: 4009,
  serverShuttingDown: 4010,
} as const;

// ---------------------------------------------------------------- parsing

export type ParseResult<T> = { ok: true; message: T } | { ok: false; error: string };

/** Parses and validates a message from a client. Never throws. */
export function parseClientMessage(text: string): ParseResult<ClientMessage> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return fail("message is not valid JSON");
  }
  try {
    return { ok: true, message: checkClientMessage(raw) };
  } catch (error) {
    return fail((error as Error).message);
  }
}

/** Parses a message from the server (the client trusts the server, but still checks shape). */
export function parseServerMessage(text: string): ParseResult<ServerMessage> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return fail("message is not valid JSON");
  }
  if (!isObject(raw) || typeof raw.type !== "string") return fail("message has no type");
  switch (raw.type) {
    case "Transition":
    case "TransitionChunk":
    case "MutationResponse":
    case "ActionResponse":
    case "AuthError":
    case "AuthExpired":
    case "FatalError":
    case "Pong":
      return { ok: true, message: raw as unknown as ServerMessage };
    default:
      return fail(`unknown message type ${JSON.stringify(raw.type)}`);
  }
}

export function encodeMessage(message: ClientMessage | ServerMessage): string {
  return JSON.stringify(message);
}

function checkClientMessage(raw: unknown): ClientMessage {
  if (!isObject(raw)) throw new Error("message must be a JSON object");
  const type = raw.type;
  const message = raw as Record<string, unknown>;
  const where = `${typeof type === "string" ? type : "unknown"} message`;
  switch (type) {
    case "Connect":
      return {
        type,
        clientId: string(message, "clientId", where, 128),
        connectionCount: count(message, "connectionCount", where),
        ...(message.maxObservedTimestamp === undefined ? {} : { maxObservedTimestamp: count(message, "maxObservedTimestamp", where) }),
        ...(message.newRequestsFrom === undefined ? {} : { newRequestsFrom: count(message, "newRequestsFrom", where) }),
      };
    case "ModifyQuerySet": {
      const modifications = message.modifications;
      if (!Array.isArray(modifications)) throw new Error(`${where}: modifications must be an array`);
      if (modifications.length > PROTOCOL_LIMITS.maxQueriesPerConnection) throw new Error(`${where}: too many modifications`);
      return {
        type,
        baseVersion: count(message, "baseVersion", where),
        newVersion: count(message, "newVersion", where),
        modifications: modifications.map((m, i) => checkModification(m, `${where}: modifications[${i}]`)),
      };
    }
    case "Mutation":
    case "Action":
      return {
        type,
        requestId: count(message, "requestId", where) as RequestId,
        udfPath: string(message, "udfPath", where, PROTOCOL_LIMITS.maxPathLength),
        args: json(message, "args", where),
      };
    case "Authenticate": {
      const token = message.token;
      if (token !== null && (typeof token !== "string" || token.length === 0 || token.length > PROTOCOL_LIMITS.maxTokenChars)) {
        throw new Error(`${where}: token must be a non-empty string (at most ${PROTOCOL_LIMITS.maxTokenChars} characters) or null`);
      }
      return { type, baseVersion: count(message, "baseVersion", where), token: token as string | null };
    }
    case "Ping":
      return { type };
    default:
      throw new Error(`unknown message type ${typeof type === "string" ? JSON.stringify(type) : `(${type === null ? "null" : Array.isArray(type) ? "an array" : typeof type}, not a string)`}; expected one of Connect, ModifyQuerySet, Mutation, Action, Authenticate, Ping`);
  }
}

function checkModification(raw: unknown, where: string): QuerySetModification {
  if (!isObject(raw)) throw new Error(`${where} must be an object`);
  if (raw.type === "Add") {
    return {
      type: "Add",
      queryId: count(raw, "queryId", where) as QueryId,
      udfPath: string(raw, "udfPath", where, PROTOCOL_LIMITS.maxPathLength),
      args: json(raw, "args", where),
    };
  }
  if (raw.type === "Remove") return { type: "Remove", queryId: count(raw, "queryId", where) as QueryId };
  throw new Error(`${where}: type must be "Add" or "Remove"`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function string(message: Record<string, unknown>, field: string, where: string, max: number): string {
  const value = message[field];
  if (typeof value !== "string" || value.length === 0 || value.length > max) {
    throw new Error(`${where}: ${field} must be a non-empty string of at most ${max} characters`);
  }
  return value;
}

function count(message: Record<string, unknown>, field: string, where: string): number {
  const value = message[field];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${where}: ${field} must be a non-negative integer`);
  }
  return value;
}

function json(message: Record<string, unknown>, field: string, where: string): JSONValue {
  if (!(field in message)) throw new Error(`${where}: ${field} is missing`);
  return message[field] as JSONValue;
}

function fail(error: string): { ok: false; error: string } {
  return { ok: false, error };
}

/**
 * The engine's public types: what a caller passes it (`EngineOptions`, `Caller`), what it hands
 * back (`QueryOutcome`, `QueryRun`, `EngineStats`) and what observers and hooks see
 * (`FunctionRunTrace`, `MutationHooks`, `Authenticate`). Apart from engine.ts so that the
 * engine's file reads as the engine itself; engine.ts re-exports them all, and modules import
 * them from there.
 */
import type { Value } from "../values/index.js";
import type { SchemaDefinition } from "../server/schema.js";
import type { CallerRequest, UserIdentity } from "../server/registration.js";
import type { AuthenticateHook } from "../server/hooks.js";
import type { Storage, Timestamp } from "../storage/types.js";
import type { Modules } from "./functions.js";
import type { ReadSet } from "./readSet.js";
import type { Transaction } from "./transaction.js";

/** Who is calling a function. */
export interface Caller {
  /** A fixed identity (tests, trusted server code). */
  identity?: UserIdentity | null;
  /** An opaque auth token, checked inside each transaction by the `authenticate` hook. */
  token?: string | null;
  /** Calls from clients may not reach internal functions. */
  fromClient?: boolean;
  /** Where a client's call came from (absent for server-internal calls). */
  request?: CallerRequest;
  /** Who started the run, for observers (`observeRun`); absent: a WebSocket client if `fromClient`, else the server. */
  kind?: "client" | "http" | "scheduler" | "cron" | "dashboard";
  /**
   * The scheduled action whose run this is (or calls it made): while that job is canceled,
   * what this run schedules is canceled too (see `schedule` in scheduler.ts).
   */
  scheduledJob?: string;
}

/** One function run as `EngineOptions.observeRun` sees it; the engine fills `retries` and `error` as it goes. */
export interface FunctionRunTrace {
  type: "query" | "mutation" | "action";
  path: string;
  caller: Caller;
  /** Conflict retries so far (mutations). */
  retries: number;
  /** A query's failure (queries report errors as outcomes instead of throwing). */
  error: Error | null;
}

export type { CallerRequest };

/** Resolves a token to an identity, inside the calling transaction (reads are tracked). */
export type Authenticate = AuthenticateHook;

export interface EngineOptions {
  storage: Storage;
  /** The app's schema; without one, tables are created on first insert and not validated. */
  schema?: SchemaDefinition<any> | null;
  /** Module path → the module's exports (`{ messages: await import("./functions/messages") }`). */
  modules: Modules;
  authenticate?: Authenticate;
  /** Run scheduled functions and crons automatically (default true). */
  runScheduler?: boolean;
  /**
   * How long one action may run before its caller gets a LIMIT_EXCEEDED error and its later
   * ctx calls fail (actionDeadline.ts). Default 10 minutes, Convex's limit.
   */
  actionTimeoutMs?: number;
  /** Where unexpected errors go (default: console.error). */
  logError?: (message: string, error: unknown) => void;
  /** Wraps every function run (queries, mutations with their retries, actions): the dashboard's logs. */
  observeRun?: <T>(trace: FunctionRunTrace, run: () => Promise<T>) => Promise<T>;
  /** How long one storage call may take before it fails with an error naming it (default 30 s). */
  storageTimeoutMs?: number;
  /**
   * How long a mutation or query keeps trying while storage fails with nothing written (a
   * dropped connection, a database restarting), before its caller gets the error. Default 10 s.
   */
  storageRetryMs?: number;
  /**
   * For a storage shared with other engines (one that has `watchCommits`): how often to look
   * for their commits even without a notification, while a query is live. Default 200 ms
   * (with no live query, every 10 s: see otherEngines.ts).
   */
  pollIntervalMs?: number;
  /**
   * Bytes of storage answers kept to serve repeated reads without a storage call (see
   * readCache.ts). Default 64 MiB; 0 turns the cache off.
   */
  readCacheBytes?: number;
  /**
   * Bytes of decoded vectors kept for vector searches, so that a search does not parse every
   * document it scores again (see vectorCache.ts). Default 64 MiB; 0 keeps none.
   */
  vectorCacheBytes?: number;
  /**
   * How long a finished scheduled function (success, failed, canceled) stays in
   * `_scheduled_functions` before the scheduler deletes it. Default 7 days.
   */
  scheduledFunctionRetentionMs?: number;
  /** The largest file `ctx.storage` stores, by upload or `store()`, in bytes. Default 64 MiB (fileStore.ts). */
  maxFileBytes?: number;
}

export type QueryOutcome = { ok: true; value: Value } | { ok: false; error: Error };

export interface QueryRun {
  outcome: QueryOutcome;
  readSet: ReadSet;
  /** Whether the result depends on who called (the query asked for the identity). */
  readAuth: boolean;
  ts: Timestamp;
}

/** Bookkeeping that commits atomically with a mutation (see `executeMutation`). */
export interface MutationHooks {
  before?: (txn: Transaction) => Promise<boolean>;
  after?: (txn: Transaction, value: Value) => Promise<void>;
}

export interface EngineStats {
  commits: number;
  conflictRetries: number;
  queryRuns: number;
}

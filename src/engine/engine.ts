/**
 * The engine: runs queries, mutations and actions over a storage, keeps subscriptions live,
 * and owns the one commit path.
 *
 * Concurrency model (optimistic, serializable):
 *  1. A query or mutation reads at a snapshot `readTs` (the latest commit when it starts) and
 *     records its read set; a mutation buffers its writes.
 *  2. Commits go through one queue. For a committing mutation the engine checks the commit log
 *     for any commit after `readTs` whose write set overlaps the mutation's read set. None:
 *     the mutation gets the next timestamp and its writes reach storage atomically. Some: the
 *     mutation is re-run from scratch at a fresh snapshot, with backoff, up to a bound. A
 *     mutation that throws or writes nothing is checked the same way before its outcome is
 *     reported, where other engines share the storage (`conflictUnheardOf`).
 *  3. Every commit is offered to the subscriptions, which re-run exactly the live queries
 *     whose read sets it overlaps (found through an index of their read ranges).
 * Because every mutation's reads are proven unchanged at its commit timestamp, the history is
 * equivalent to running mutations one at a time in timestamp order.
 */
// The real timers, not the globals: a test that turns on fake timers (vi.useFakeTimers, as
// suites written for convex-test do) would otherwise stall commits and flushes for good.
import { randomBytes } from "node:crypto";
import { setImmediate, setTimeout } from "node:timers";
import { performance } from "node:perf_hooks";
import { walkinError, isWalkinError } from "../values/index.js";
import type { Value } from "../values/index.js";
import type { SchemaDefinition } from "../server/schema.js";
import { getFunctionName } from "../server/api.js";
import type { CallerRequest, RegisteredFunction, UserIdentity } from "../server/registration.js";
import { findEngineHooks, type AuthenticateHook } from "../server/hooks.js";
import type { DatabaseWriter } from "../server/database.js";
import type { AnyDataModel } from "../server/dataModel.js";
import { isSnapshotFenced, storageStoppedBy, type Storage, type Timestamp } from "../storage/types.js";
import { Catalog, indexDisplayName } from "./catalog.js";
import { buildIndexes } from "./indexBuilder.js";
import { reclaimRetiredIndexes } from "./reclaimIndexes.js";
import { CommitLog, type CommitRecord, type Conflict } from "./commitLog.js";
import { decodeWriteSet, tablesOfWriteSet } from "./writeSetCodec.js";
import { GroupCommitter, type CommitResult } from "./committer.js";
import { guardStorage, isStorageFailure } from "./storageGuard.js";
import { StorageRetry } from "./storageRetry.js";
import { createDatabaseReader, createDatabaseWriter } from "./database.js";
import { hashSeed, runDeterministic } from "./determinism.js";
import { FunctionRegistry, checkArgs, checkReturn, withoutUndefinedFields, type Modules } from "./functions.js";
import { LIMITS } from "./limits.js";
import type { ReadSet } from "./readSet.js";
import { ActiveSnapshots } from "./snapshots.js";
import { ReadCache, type CommitWrites } from "./readCache.js";
import { tableNumberOfId } from "./ids.js";
import { callSignature, laneOf, RetryLanes } from "./retryLanes.js";
import { CLAIM_INDEX, DEFERRED_MARK, DeferredWriteClaims, MARK_KEY, RELEASE_INDEX, laneBytes, lanesWritten } from "./deferredWrites.js";
import { followOtherEngines, type FollowingOtherEngines } from "./otherEngines.js";
import { incompleteIndexMessage, indexesSkippedBy } from "./mixedCode.js";
import { buildsIndexLackedBy, indexesMarkedLacked, markLackedIndexes } from "./indexBuilds.js";
import { CreationClock, Transaction } from "./transaction.js";
import { createScheduler, type SchedulerCtx } from "./scheduler.js";
import { ActionDeadline, checkActionTimeout } from "./actionDeadline.js";
import { SYSTEM_TABLES } from "./systemTables.js";
import { LegacyRequests, PRUNE_BATCH, findClientRequest, pruneReceipts, receiptAheadError, recordClientRequest, type ClientRequest, type RecordedRequest } from "./clientRequests.js";
import { Subscriptions } from "./subscriptions.js";
import { Crons } from "./cron.js";
import { FileStore } from "./fileStore.js";
import { actionStorage, MutationStorage, QueryStorage } from "./storageCtx.js";
import { vectorSearch } from "./vectorSearch.js";
import { VectorCache } from "./vectorCache.js";

/** How often expired request-deduplication records (receipts) are removed. */
const MAINTENANCE_INTERVAL_MS = 5 * 60_000;

/** How many times more attempts a mutation in a retry lane gets (see executeMutation). */
const LANE_RETRY_FACTOR = 4;

/**
 * History sweeps (see `maybePrune`) take at most this share of the time: after a sweep that
 * took d ms, the next starts no sooner than d / PRUNE_DUTY_CYCLE ms after it began.
 */
const PRUNE_DUTY_CYCLE = 0.05;
/** ...and never more often than this, nor less often than the maximum below while commits flow. */
const PRUNE_MIN_INTERVAL_MS = 1_000;
const PRUNE_MAX_INTERVAL_MS = 30_000;

/**
 * Past this many entries, the commit log is trimmed up to the oldest pinned snapshot even where
 * that passes the published one (see `maybePrune`).
 */
const COMMIT_LOG_SOFT_CAP = 4_096;

/** The ctx a mutation's handler gets (and one it calls through ctx.runMutation). */
interface MutationCtx {
  db: ReturnType<typeof createDatabaseWriter>;
  auth: { getUserIdentity(): Promise<UserIdentity | null> };
  scheduler: ReturnType<ReturnType<typeof createScheduler>["forTransaction"]>;
  storage: MutationStorage;
  runQuery(ref: unknown, args?: unknown): Promise<Value>;
  runMutation(ref: unknown, args?: unknown): Promise<Value>;
}

/**
 * One run of a handler inside a transaction, for the ctx.runQuery / ctx.runMutation calls it
 * makes: `chain` is the path of each function from the one called from outside down to this
 * one (the nesting limit, LIMITS.maxCallDepth), `unsettled` the calls it made that have not
 * settled yet (a handler that returns before they do fails: see `checkCallsSettled`).
 */
interface CallFrame {
  txn: Transaction;
  auth: MutationCtx["auth"];
  chain: readonly string[];
  /** Each call's promise, and the call as the error names it: `ctx.runQuery("path")` (made on the first call). */
  unsettled?: Map<Promise<Value>, string>;
  /** Settles when the last ctx.runMutation this frame started has settled (see `mutationCtx`). */
  mutationTurn?: Promise<unknown>;
}

/** What an action called with ctx.runAction inherits from its caller. */
interface ActionCall {
  /** The caller's time limit, which the called action shares. */
  deadline: ActionDeadline | null;
  /** The path of actions from the one called from outside down to the called one (the nesting limit). */
  chain: readonly string[];
}

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

export class Engine {
  readonly stats: EngineStats = { commits: 0, conflictRetries: 0, queryRuns: 0 };
  readonly functions: FunctionRegistry;
  readonly subscriptions: Subscriptions;
  private readonly commitLog: CommitLog;
  private readonly committer: GroupCommitter;
  private readonly snapshots = new ActiveSnapshots();
  private readonly retryLanes = new RetryLanes();
  /** Lanes that deferred writes must keep off (deferredWrites.ts). */
  private readonly deferredClaims = new DeferredWriteClaims();
  /** What transactions read through: storage, with repeated answers served from memory. */
  readonly reads: ReadCache;
  /** Vectors decoded by vector searches, by document version (vectorCache.ts). */
  readonly vectors: VectorCache;
  /** Paces calls that storage failed with nothing written (see StorageRetry). */
  readonly storageRetry: StorageRetry;
  private readonly creationClock = new CreationClock();
  private readonly commitListeners = new Set<(record: CommitRecord, tables: Set<string>) => void>();
  private commitsSincePrune = 0;
  private pruning: Promise<void> | null = null;
  private lastPruneStart = 0;
  /** How long after `lastPruneStart` the next sweep may start (see PRUNE_DUTY_CYCLE). */
  private pruneInterval = PRUNE_MIN_INTERVAL_MS;
  private maintenance: NodeJS.Timeout | undefined;
  private following: FollowingOtherEngines | undefined;
  /**
   * Whether other engines or processes may commit to this storage (it has `watchCommits`): this
   * engine then hears of their commits only some time after they land.
   */
  private readonly mayMissCommits: boolean;
  /** `storage.othersCommitMark()` as read before the last completed look at the log (see `catchUpWithOthers`). */
  private markAtRefresh: number | undefined;
  /** The refresh `learnPastFence` started, while it runs: one for every read refused meanwhile. */
  private pastFence: Promise<void> | null = null;
  private closed = false;
  /** Whether `logError` has reported the storage's stop (`StorageStoppedError`). */
  private storageStopLogged = false;
  /** Set by `handOver`. */
  private handedOver = false;
  /** Mutations of this engine between the start of a run and its commit decision (committer.ts, `schedule`). */
  private mutationsRunning = 0;
  /** Writes requested by the authenticate hook, by key, not yet run (see `writeLater`). */
  private readonly laterWrites = new Map<string, (db: DatabaseWriter<AnyDataModel>) => Promise<void>>();
  private readonly authenticate: Authenticate | undefined;
  readonly scheduler: ReturnType<typeof createScheduler>;
  /** `ctx.storage`'s files, kept in system tables (fileStore.ts). */
  readonly files: FileStore;
  /**
   * Whether this engine's next commit must first mark the indexes other nodes built that it
   * lacks (indexBuilds.ts, step 2): at start, and after it learned of such a build.
   */
  private lackedCheckWanted = true;
  /** How long one action may run (EngineOptions.actionTimeoutMs). */
  private readonly actionTimeoutMs: number;
  /** Set by `open` before the engine is used: whether `_client_requests` may still hold records. */
  private legacyRequests!: LegacyRequests;

  private constructor(
    readonly storage: Storage,
    readonly catalog: Catalog,
    private latest: Timestamp,
    private readonly options: EngineOptions,
  ) {
    this.functions = new FunctionRegistry(options.modules);
    this.actionTimeoutMs = checkActionTimeout(options.actionTimeoutMs);
    // `storage` is guarded and has no watch; the engine's caller's has one if it is shared.
    this.mayMissCommits = options.storage.watchCommits !== undefined;
    this.storageRetry = new StorageRetry(options.storageRetryMs ?? 10_000, () => this.closed);
    // The log knows nothing of commits before this engine opened; no snapshot is older.
    this.commitLog = new CommitLog(latest);
    const engine = this;
    this.committer = new GroupCommitter({
      storage,
      commitLog: this.commitLog,
      get latest() {
        return engine.latest;
      },
      set latest(ts: Timestamp) {
        engine.latest = ts;
      },
      get mutationsRunning() {
        return engine.mutationsRunning;
      },
      committed: (record, tables, own, writes) => this.onCommitted(record, tables, own, writes),
      lostTrack: () => {
        this.reads.clear();
        this.subscriptions.invalidateAll();
        // An index may have been built in the commits it cannot know (indexBuilds.ts, 2c).
        this.lackedCheckWanted = true;
      },
      holdsCommits: (record) => buildsIndexLackedBy(record.writes, catalog),
      get commitGate() {
        return engine.lackedIndexGate();
      },
      workWhileSyncing: (writeSets) => engine.subscriptions.wouldRerun(writeSets),
      durable: (ts) => this.subscriptions.onDurable(ts),
    });
    this.reads = new ReadCache(storage, {
      get latest() {
        return engine.latest;
      },
      byIdIndexOf: (id) => {
        const number = tableNumberOfId(id);
        const table = number === null ? undefined : catalog.tableOfNumber(number);
        return table?.indexes.get("by_id")?.id ?? null;
      },
    }, options.readCacheBytes);
    this.vectors = new VectorCache(options.vectorCacheBytes);
    this.subscriptions = new Subscriptions(this);
    const hooks = findEngineHooks(options.modules);
    this.authenticate = options.authenticate ?? hooks.authenticate;
    this.scheduler = createScheduler(this, Crons.fromModules(options.modules, hooks.crons), options.scheduledFunctionRetentionMs);
    this.files = new FileStore(this, options.maxFileBytes);
  }

  static async open(options: EngineOptions): Promise<Engine> {
    // Storage runs outside the handlers' sandbox, with timeouts and errors that name it.
    const storage = guardStorage(options.storage, { timeoutMs: options.storageTimeoutMs });
    // On a database other nodes share, read before the catalog: a commit after it may have
    // skipped an index the catalog lists as built (mixedCode.ts), and is checked below.
    const shared = options.storage.watchCommits !== undefined;
    const loadedAt = shared ? await storage.latestTimestamp() : 0;
    const { catalog, staleIndexes: newOrChanged, droppedIndexes } = await Catalog.open(storage, options.schema ?? null, SYSTEM_TABLES);
    // Indexes listed as built that a node lacking them may have written around since their
    // build (a canary that stopped): read at or after `loadedAt`, rebuilt (indexBuilds.ts, step 3).
    const listedBuilt = catalog.tables().flatMap((table) => [...table.indexes.values()]).filter((index) => !newOrChanged.some((stale) => stale.id === index.id));
    const staleIndexes = [...newOrChanged, ...await indexesMarkedLacked(storage, catalog, await storage.latestTimestamp(), listedBuilt)];
    // On a database other nodes share, an index this code no longer declares may be one a
    // newer node is using: leave its entries alone (see mixedCode.ts).
    const builtAt = new Map<string, Timestamp>();
    const latest = await buildIndexes(storage, catalog, await storage.latestTimestamp(), staleIndexes, droppedIndexes, { keepDropped: shared, builtAt });
    const engine = new Engine(storage, catalog, latest, options);
    if (shared) await engine.checkCommitsWhileOpening(loadedAt, latest, builtAt);
    // Entries of indexes retired at an earlier start, now that nothing may read them.
    await engine.reclaimRetiredIndexes().catch((error) => engine.logError("Reclaiming the entries of retired indexes failed", error));
    engine.legacyRequests = await engine.read((txn) => LegacyRequests.open(catalog, txn));
    engine.subscriptions.catchUp();
    const host = {
      get latest() {
        return engine.latest;
      },
      get closed() {
        return engine.closed;
      },
      get hasLiveQueries() {
        return engine.subscriptions.size > 0;
      },
      refresh: () => engine.refreshOnce(),
      logError: (message: string, error: unknown) => engine.logError(message, error),
    };
    const following = followOtherEngines(options.storage, host, options.pollIntervalMs ?? 200);
    engine.following = following;
    engine.subscriptions.onFirstLive(() => following.hurry());
    try {
      await engine.scheduler.start(options.runScheduler ?? true);
    } catch (error) {
      // This engine is never returned, so nobody could close it: stop what it started (the
      // caller owns and closes the storage).
      engine.closed = true;
      following.stop();
      await engine.scheduler.stop();
      throw error;
    }
    if (options.runScheduler ?? true) engine.startMaintenance();
    return engine;
  }

  get latestTimestamp(): Timestamp {
    return this.latest;
  }

  /**
   * Runs a query once at the latest snapshot. Not `async`: the first run is chained, and only a
   * failed one goes on to the retrying loop (an awaiting async layer costs every query a frame
   * and, with the determinism sandbox's async hooks on, a promise).
   */
  runQuery(path: string, args: unknown, caller: Caller = {}): Promise<Value> {
    const startedAt = performance.now();
    try {
      const fn = this.functions.resolve(path, "query", caller);
      const readTs = this.latest;
      const answer = this.executeQuery(fn, path, args, caller, readTs).then((run) =>
        run.outcome.ok ? run.outcome.value : this.retryQuery(fn, path, args, caller, run.outcome.error, startedAt));
      // Its snapshot may hold a commit storage has not made durable yet (Storage.whenDurable).
      return this.storage.whenDurable ? this.onceDurable(answer, () => readTs) : answer;
    } catch (error) {
      // An unknown function (or an observer that throws) rejects, as an async function would.
      return Promise.reject(error);
    }
  }

  /** After a failed run: again while the storage is failing and `storageRetryMs` allows, else the error. */
  private async retryQuery(fn: RegisteredFunction, path: string, args: unknown, caller: Caller, error: Error, startedAt: number): Promise<Value> {
    for (;;) {
      if (!isStorageFailure(error)) throw error;
      await this.learnPastFence(error);
      if (!(await this.storageRetry.wait(startedAt))) throw error;
      const run = await this.executeQuery(fn, path, args, caller, this.latest);
      if (run.outcome.ok) return run.outcome.value;
      error = run.outcome.error;
    }
  }

  /** Runs a mutation to commit, retrying on conflicts. Returns its value and commit timestamp. */
  async runMutation(path: string, args: unknown, caller: Caller = {}): Promise<{ value: Value; ts: Timestamp }> {
    const fn = this.functions.resolve(path, "mutation", caller);
    return this.executeMutation(fn, path, args, caller);
  }

  /**
   * Runs an action: not a transaction; it reads and writes through ctx.runQuery / runMutation.
   * `written.ts` is raised to the commit timestamp of each mutation it runs (nested actions
   * included), and stays raised if the action throws afterwards: a client shown it waits for
   * its queries to reach it, as after a mutation (transport/connection.ts, `runAction`).
   */
  async runAction(path: string, args: unknown, caller: Caller = {}, written: { ts: Timestamp } = { ts: 0 }, calledBy: ActionCall | null = null): Promise<Value> {
    const fn = this.functions.resolve(path, "action", caller);
    return this.observe("action", path, caller, async () => {
      const checkedArgs = checkArgs(fn, args, this.isIdOfTable, !caller.fromClient);
      // Bounded, as in Convex: one that never settles must not keep its caller (and a shutdown) waiting forever.
      const deadline = new ActionDeadline(`action ${path}`, this.actionTimeoutMs, calledBy?.deadline ?? null);
      const chain = calledBy?.chain ?? [path];
      const returned = await deadline.bound((async () => fn.handler(this.actionCtx(caller, written, deadline, chain), checkedArgs))());
      return checkReturn(fn, path, returned, this.isIdOfTable);
    });
  }

  /**
   * Runs an HTTP action's handler with an action ctx, under the same time limit as an action
   * (`what` names it in the limit's error: "HTTP action POST /hook").
   */
  runHttpAction<T>(what: string, caller: Caller, handler: (ctx: ReturnType<Engine["actionCtx"]>) => Promise<T>): Promise<T> {
    const deadline = new ActionDeadline(what, this.actionTimeoutMs);
    return deadline.bound((async () => handler(this.actionCtx(caller, undefined, deadline, [what])))());
  }

  private observe<T>(type: FunctionRunTrace["type"], path: string, caller: Caller, work: (trace: FunctionRunTrace) => Promise<T>): Promise<T> {
    const trace: FunctionRunTrace = { type, path, caller, retries: 0, error: null };
    return this.options.observeRun ? this.options.observeRun(trace, () => work(trace)) : work(trace);
  }

  /**
   * The ctx of an action (also of HTTP actions): auth, scheduler, and runQuery / runMutation /
   * runAction, which may call internal functions and keep the caller's identity. `chain` is
   * the path of actions from the one called from outside down to this one: ctx.runAction
   * nests at most LIMITS.maxCallDepth deep, as ctx.runQuery / ctx.runMutation do (an action
   * that calls itself would otherwise grow without bound until its time limit).
   */
  actionCtx(caller: Caller, written: { ts: Timestamp } = { ts: 0 }, deadline: ActionDeadline | null = null, chain: readonly string[] = []) {
    const inner: Caller = { ...caller, fromClient: false };
    // Past the action's time limit, each call fails instead of running (see actionDeadline.ts).
    const bounded = <A extends unknown[], R>(call: (...args: A) => Promise<R>) => (deadline ? deadline.guard(call) : call);
    const scheduler = this.scheduler.forAction(caller.scheduledJob);
    const storage = actionStorage(this);
    return {
      auth: { getUserIdentity: () => this.caughtUpIfHandedOver(() => this.identityOutsideTransaction(caller)) },
      request: caller.request ?? null,
      scheduler: { runAfter: bounded(scheduler.runAfter), runAt: bounded(scheduler.runAt), cancel: bounded(scheduler.cancel) },
      storage: {
        getUrl: bounded(storage.getUrl),
        getMetadata: bounded(storage.getMetadata),
        generateUploadUrl: bounded(storage.generateUploadUrl),
        delete: bounded(storage.delete),
        get: bounded(storage.get),
        store: bounded(storage.store),
      },
      // Results as a client would receive them: a field set to undefined is absent.
      runQuery: bounded(async (ref: unknown, a?: unknown) =>
        withoutUndefinedFields(await this.caughtUpIfHandedOver(() => this.runQuery(getFunctionName(ref as never), a ?? {}, inner)))),
      runMutation: bounded(async (ref: unknown, a?: unknown) => {
        const { value, ts } = await this.runMutation(getFunctionName(ref as never), a ?? {}, inner);
        if (ts > written.ts) written.ts = ts;
        return withoutUndefinedFields(value);
      }),
      vectorSearch: bounded((table: unknown, index: unknown, query: unknown) => vectorSearch(this, table, index, query)),
      runAction: bounded(async (ref: unknown, a?: unknown) => {
        const path = getFunctionName(ref as never);
        const nested = [...chain, path];
        const tooDeep = callDepthExceeded("runAction", nested);
        if (tooDeep) throw tooDeep;
        return withoutUndefinedFields(await this.runAction(path, a ?? {}, inner, written, { deadline, chain: nested }));
      }),
    };
  }

  /**
   * Runs `read` at the latest snapshot as an action's ctx.runQuery reads: after catching up if
   * this engine was handed over, with the snapshot held against pruning until `read` settles,
   * and answered once the snapshot is durable. For an action's reads that are not query
   * functions (ctx.vectorSearch, vectorSearch.ts).
   */
  readLatest<T>(read: (readTs: Timestamp) => Promise<T>): Promise<T> {
    return this.caughtUpIfHandedOver(() => {
      const readTs = this.latest;
      this.snapshots.hold(readTs);
      const answer = read(readTs).finally(() => this.snapshots.letGo(readTs));
      return this.storage.whenDurable ? this.onceDurable(answer, () => readTs) : answer;
    });
  }

  /**
   * `read`, after learning the serving engine's commits if this one was handed over (see
   * `handOver`): an old action's read must show every commit acknowledged before it began.
   */
  private caughtUpIfHandedOver<T>(read: () => Promise<T>): Promise<T> {
    return this.handedOver ? this.refreshRetrying().then(read) : read();
  }

  /**
   * Whether `caller`'s token resolves to a user: a transport deciding to accept it. A token not
   * known here may be one issued moments ago on another node (a client that signed in there and
   * came here), from a commit this engine has not learned yet. A refusal is final for a client
   * (it signs out and never uses the token again), so this looks once more after catching up
   * with storage. Only refusals pay for that.
   */
  async tokenResolves(caller: Caller): Promise<boolean> {
    if ((await this.identityOutsideTransaction(caller)) !== null) return true;
    await this.refreshRetrying();
    return (await this.identityOutsideTransaction(caller)) !== null;
  }

  /** Calls `listener` after every commit (used by the scheduler and transports). */
  onCommit(listener: (record: CommitRecord, tables: Set<string>) => void): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  readonly isIdOfTable = (table: string, id: string): boolean => this.catalog.isIdOfTable(table, id);

  /** Runs a query function at `readTs` and reports its outcome and read set (never throws). */
  executeQuery(fn: RegisteredFunction, path: string, args: unknown, caller: Caller, readTs: Timestamp): Promise<QueryRun> {
    // Unobserved (no dashboard), a query is just its run: no trace, no extra async step.
    if (!this.options.observeRun) return this.queryAt(fn, path, args, caller, readTs);
    return this.observe("query", path, caller, async (trace) => {
      const run = await this.queryAt(fn, path, args, caller, readTs);
      if (!run.outcome.ok) trace.error = run.outcome.error;
      return run;
    });
  }

  private async queryAt(fn: RegisteredFunction, path: string, args: unknown, caller: Caller, readTs: Timestamp): Promise<QueryRun> {
    this.snapshots.hold(readTs);
    const now = Date.now();
    const txn = new Transaction(this.reads, this.catalog, readTs, now, this.creationClock);
    const auth = this.authFor(txn, caller);
    this.stats.queryRuns += 1;
    try {
      const checkedArgs = checkArgs(fn, args, this.isIdOfTable, !caller.fromClient);
      const frame: CallFrame = { txn, auth: auth.api, chain: [path] };
      const ctx = this.queryCtx(frame);
      const seed = () => hashSeed(`${path}|${readTs}|${JSON.stringify(args ?? null, bigintSafe)}`);
      const result = await runDeterministic("query", now, seed, callHandler, fn, ctx, checkedArgs);
      checkCallsSettled(frame);
      if (txn.limitExceeded) throw txn.limitExceeded;
      const value = checkReturn(fn, path, result, this.isIdOfTable);
      return { outcome: { ok: true, value }, readSet: txn.readSet, readAuth: auth.used, ts: readTs };
    } catch (error) {
      return { outcome: { ok: false, error: asError(error) }, readSet: txn.readSet, readAuth: auth.used, ts: readTs };
    } finally {
      txn.closeOpenScans(); // before anyone reads the returned read set (transaction.ts, `scan`)
      this.snapshots.letGo(readTs);
    }
  }

  /**
   * Runs a mutation sent by a client, at most once per (clientId, requestId): the result is
   * recorded with the mutation's own commit, and a re-sent request gets that result back
   * without running again. `deduplicated` says which happened. See clientRequests.ts for why
   * two copies racing on different engines cannot both apply.
   */
  async runClientMutation(
    path: string,
    args: unknown,
    caller: Caller,
    request: ClientRequest,
  ): Promise<{ value: Value; ts: Timestamp; deduplicated: boolean }> {
    const fn = this.functions.resolve(path, "mutation", caller);
    // Only the very first run of a first send skips the lookup: every re-run (a conflict, a
    // refused receipt, a storage retry) looks (clientRequests.ts, "First sends", c).
    let lookUp = request.firstSend !== true;
    for (let caughtUp = false; ; caughtUp = true) {
      let previous: RecordedRequest | null = null;
      const outcome = await this.executeMutation(fn, path, args, caller, {
        before: async (txn) => {
          previous = await findClientRequest(this.storage, this.catalog, txn, request, this.legacyRequests, lookUp);
          lookUp = true;
          return previous === null;
        },
        after: async (txn, value) => recordClientRequest(txn, request, value),
      });
      const prior = previous as RecordedRequest | null;
      if (prior === null) return { ...outcome, deduplicated: false };
      // A skipped run commits nothing: outcome.ts is the snapshot it read at. Answered at the
      // receipt's ts, from which on every snapshot shows the mutation's writes: a later one made
      // a re-sent mutation's answer wait for commits it has nothing to do with, and after a
      // reconnect the results restored before that wait ended showed its write twice, once
      // more through its optimistic update (transport/connection.ts, `modifyQuerySet`).
      if (prior.ts <= outcome.ts) return { value: prior.result, ts: prior.ts, deduplicated: true };
      // The receipt's commit landed after that snapshot was taken (clientRequests.ts, step 5):
      // learn of it, then run again at a snapshot that includes it.
      if (caughtUp) throw receiptAheadError(this.storage.name, prior.ts, this.latest);
      await this.refreshRetrying();
    }
  }

  /**
   * Runs a mutation: handler at a fresh snapshot, then commit; on conflict, again with
   * exponential backoff and full jitter. `hooks.before` runs first in the same transaction
   * (returning false skips the handler and `after`) and `hooks.after` last, with the handler's value:
   * the scheduler and request deduplication use them to record their bookkeeping atomically
   * with the mutation's own writes.
   */
  executeMutation(fn: RegisteredFunction, path: string, args: unknown, caller: Caller, hooks: MutationHooks = {}): Promise<{ value: Value; ts: Timestamp }> {
    const outcome = this.observe("mutation", path, caller, (trace) => this.mutateWithRetries(fn, path, args, caller, hooks, trace));
    // Answered once its commit (or, writing nothing, its snapshot) is durable: see `onceDurable`.
    return this.storage.whenDurable ? this.onceDurable(outcome, (done) => done.ts) : outcome;
  }

  /**
   * `answer`, held until storage has made durable every commit it may show: through
   * `tsOf(value)`, or, when it fails, through the newest commit this engine knows of (an error
   * can tell of what the mutation read, "room not found" for one). Only for storages whose
   * commits become durable after `commitBatch` (`Storage.whenDurable`, SQLite under FULL), and
   * there only on the ways out of the engine: a mutation's or one-shot query's answer (to a
   * client, an HTTP caller, an action, which may act on it outside), a system mutation (the
   * scheduler's claim before an action starts), a published snapshot (subscriptions.ts).
   * Step by step, why nothing outside can see a commit a power loss could undo:
   *  1. A transaction inside may read a commit before it is durable, and commit after it.
   *  2. Its own commit is later in the log, so it becomes durable only with that one
   *     (walSync.ts, step 3), and it is answered only then: whatever it read is durable too.
   *  3. A one-shot query is answered once its snapshot is durable, a live query's result is
   *     published once the flush's snapshot is, and a failure once everything it could have
   *     read is.
   * A rejection of `whenDurable` (a failed sync) becomes the answer's error.
   */
  private async onceDurable<T>(answer: Promise<T>, tsOf: (value: T) => Timestamp): Promise<T> {
    let value: T;
    try {
      value = await answer;
    } catch (error) {
      await this.storage.whenDurable!(this.latest);
      throw error;
    }
    await this.storage.whenDurable!(tsOf(value));
    return value;
  }

  private async mutateWithRetries(
    fn: RegisteredFunction,
    path: string,
    args: unknown,
    caller: Caller,
    hooks: MutationHooks,
    trace: FunctionRunTrace,
  ): Promise<{ value: Value; ts: Timestamp }> {
    const checkedArgs = checkArgs(fn, args, this.isIdOfTable, !caller.fromClient);
    const startedAt = performance.now();
    let signature: string | undefined;
    const signatureOf = () => (signature ??= callSignature(path, caller.token ?? caller.identity?.tokenIdentifier ?? "", checkedArgs));
    // A call that lost lately starts in its lane (retryLanes.ts, "Repeat losers"). Nothing
    // remembered, no signature: the uncontended path does not compute one.
    let lane: string | null = this.retryLanes.remembers ? this.retryLanes.laneOfLoser(signatureOf()) : null;
    /** Claims this call made against deferred writes, by lane; its commit releases them (deferredWrites.ts). */
    const claimed: string[] = [];
    for (let attempt = 0; ; attempt++) {
      const once = async () => {
        // The snapshot stays pinned until the commit is decided, not just while the handler
        // runs. The commit is checked against every commit after readTs, and pruning keeps the
        // commit log (and storage history) from the oldest pinned snapshot on: unpinned while
        // the commit waits, the entries it must be checked against could be trimmed away first
        // (see commitLog.ts for the lost update that follows).
        const readTs = this.latest;
        const release = this.snapshots.pin(readTs);
        this.mutationsRunning += 1;
        try {
          const outcome = await this.runMutationOnce(fn, path, checkedArgs, caller, readTs, hooks);
          if (!outcome.ok) {
            // A storage failure decided nothing: it is retried below, as it was.
            const conflict = isStorageFailure(outcome.error) ? null : await this.conflictUnheardOf(outcome.txn, readTs);
            if (conflict === null) throw outcome.error;
            return { value: null, committed: { ok: false, conflict } satisfies CommitResult, readTs };
          }
          for (const claim of claimed) outcome.txn.markWrite(RELEASE_INDEX, laneBytes(claim));
          const committed = await this.commit(outcome.txn);
          // Nothing written, so the commit path checked nothing (it answers with the snapshot).
          const conflict = committed.ok && !outcome.txn.hasWrites ? await this.conflictUnheardOf(outcome.txn, readTs) : null;
          return { value: outcome.value, committed: conflict === null ? committed : { ok: false, conflict } satisfies CommitResult, readTs };
        } finally {
          this.mutationsRunning -= 1;
          release();
        }
      };
      let result: { value: Value; committed: CommitResult; readTs: Timestamp };
      try {
        result = lane === null ? await once() : await this.retryLanes.run(lane, once, signatureOf());
      } catch (error) {
        // Storage failed with nothing written (a dropped connection, a database restart):
        // run the mutation again once it is back, for up to storageRetryMs.
        if (!isStorageFailure(error)) throw this.releasingClaims(claimed, error);
        await this.learnPastFence(error);
        if (!(await this.storageRetry.wait(startedAt))) throw this.releasingClaims(claimed, error);
        attempt -= 1;
        continue;
      }
      const { value, committed, readTs } = result;
      if (committed.ok) return { value, ts: committed.ts };
      // In a lane a mutation no longer collides with its own node's retries, only with fresh
      // mutations and other nodes' lanes, so it is given more attempts: with three nodes
      // hammering one key, each lane head still wins about one round in three.
      const limit = lane === null ? LIMITS.maxMutationRetries : LIMITS.maxMutationRetries * LANE_RETRY_FACTOR;
      if (attempt >= limit) throw this.releasingClaims(claimed, conflictError(path, committed.conflict.indexId, attempt + 1));
      this.stats.conflictRetries += 1;
      trace.retries = attempt + 1;
      // Every re-run waits its turn in the lane of the key it lost on (retryLanes.ts): the
      // lane paces it, so there is no backoff.
      lane = laneOf(committed.conflict);
      // Lost to a deferred write (bookkeeping): from now on they keep off that key, on every
      // node, until this call ends (deferredWrites.ts, steps 2 and 3); again if it loses to one
      // once more (its claim lapsed, or that node lost track of it).
      if (committed.conflict.indexId !== null && this.deferredWroteSince(readTs, lane) && (await this.claimAgainstDeferredWrites(lane))) {
        claimed.push(lane);
      }
    }
  }

  private async runMutationOnce(
    fn: RegisteredFunction,
    path: string,
    args: Record<string, Value>,
    caller: Caller,
    readTs: Timestamp,
    hooks: MutationHooks,
  ): Promise<{ ok: true; value: Value; txn: Transaction } | { ok: false; error: unknown; txn: Transaction }> {
    const now = Date.now();
    const txn = new Transaction(this.reads, this.catalog, readTs, now, this.creationClock);
    const auth = this.authFor(txn, caller);
    const frame: CallFrame = { txn, auth: auth.api, chain: [path] };
    const ctx = this.mutationCtx(frame, createDatabaseWriter(txn, this.catalog), this.scheduler.forTransaction(txn, caller.scheduledJob));
    // Not derived from the call (as a query's is: its result is cached by snapshot): mutations
    // that run at once would share one sequence, and their "random" tokens would collide.
    const seed = () => randomBytes(4).readUInt32LE(0);
    let skipped = false;
    let value: Value;
    try {
      value = await runDeterministic("mutation", now, seed, async () => {
        if (hooks.before && !(await hooks.before(txn))) {
          skipped = true;
          return null;
        }
        const returned = await fn.handler(ctx, args);
        checkCallsSettled(frame);
        if (txn.limitExceeded) throw txn.limitExceeded; // caught inside, still the function's failure
        return checkReturn(fn, path, returned, this.isIdOfTable);
      });
    } catch (error) {
      // With its read set: a failure read from a stale snapshot is checked like a commit
      // (`conflictUnheardOf`).
      txn.closeOpenScans();
      return { ok: false, error, txn };
    }
    txn.closeOpenScans(); // before the commit checks the read set (transaction.ts, `scan`)
    if (!skipped) await hooks.after?.(txn, value);
    return { ok: true, value, txn };
  }

  /**
   * For a top-level mutation that threw or wrote nothing, which the commit path never checks:
   * the first commit after its snapshot over what it read, once this engine has heard of every
   * commit that landed before now; null if none. Only where the engine may not have heard of
   * them all; alone on its storage it answers null at no cost (every commit is its own).
   *
   * Why this gives strict serializability (a mutation M that starts after a mutation W has
   * returned, on any node, sees W or runs again), step by step:
   *  1. W returned, so W's commit was durable in storage, at some ts_W, before M started.
   *  2. M read at `readTs`, the newest commit this engine had heard of when M started. A node
   *     learns of other nodes' commits some time after they land, so ts_W may be above it.
   *  3. M's handler has finished, so its read set is complete; only now does the engine look at
   *     the log (`refreshOnce`: the committer's `commitsSince`, between batches). That look
   *     starts after M started, so after step 1: it learns W, and the commit log holds every
   *     commit in (readTs, latest], with ts_W <= latest (or a trim mark, which counts as a
   *     conflict).
   *  4. The log is checked against M's read set exactly as the commit path checks a writer's
   *     (`CommitLog.firstConflict`). An overlap: M runs again at a newer snapshot, which
   *     includes W, like a writer that lost. None: nothing M read changed up to `latest`, so
   *     M's outcome is the one it would have had reading at `latest`, after W: M takes its
   *     place in the serial order there, between its start and its answer.
   *  5. Only then is M's outcome reported. A mutation that wrote is checked by the commit path
   *     itself, under the commit lock, against every commit before its own (W included), and
   *     a nested ctx.runMutation is part of its caller's transaction, checked with it.
   * On a storage with a commit mark (SQLite across processes), a mark unchanged since the last
   * completed look replaces the look in step 3 (see `catchUpWithOthers` for why).
   *
   * Step 4 checks this engine's own commits after `readTs` too, though none of them had
   * answered its caller when M started. Passing over them would be wrong: an own commit O can
   * land in storage, be learned and read by another node's mutation W, and W return to its
   * client, all before this engine's committer has taken O into `latest` (O's acknowledgement
   * is delayed by the network, say). M must then come after W, so after O, yet it read
   * without O. So such a mutation may run again for a commit that landed while it ran, as a
   * writer does.
   */
  private async conflictUnheardOf(txn: Transaction, readTs: Timestamp): Promise<Conflict | null> {
    if (!this.mayMissCommits && !this.handedOver) return null;
    const mark = this.readCommitMark();
    if (mark === undefined || mark !== this.markAtRefresh) await this.refreshOnce();
    return this.commitLog.firstConflict(txn.readSet, readTs);
  }

  /** The ctx of a mutation's handler running in `frame` (the one called from outside, or one it called). */
  private mutationCtx(frame: CallFrame, db: MutationCtx["db"], scheduler: MutationCtx["scheduler"]): MutationCtx {
    return {
      db,
      auth: frame.auth,
      scheduler,
      storage: new MutationStorage(this.files, frame.txn),
      runQuery: (ref, a) => this.callQuery(frame, ref, a),
      runMutation: (ref, a) => this.track(frame, "runMutation", ref, (path, chain) => this.inMutationTurn(frame, () => this.mutationInTransaction(frame, db, scheduler, path, chain, a))),
    };
  }

  /**
   * Runs a ctx.runMutation of `frame` after the ones it started before have settled.
   *
   * Why one at a time: each called mutation undoes its writes by rolling the transaction back to
   * its savepoint. Two started together (`Promise.all([ctx.runMutation(a), ctx.runMutation(b)])`)
   * would interleave: a's savepoint, b's savepoint, a writes, b writes, a throws; rolling back to
   * a's savepoint would undo b's writes too, and b would still report success. Run in turn, b's
   * savepoint is taken after a has settled, so each undo covers exactly its own mutation's
   * writes. The order is the order of the calls.
   */
  private inMutationTurn(frame: CallFrame, run: () => Promise<Value>): Promise<Value> {
    const previous = frame.mutationTurn;
    const turn = previous === undefined ? run() : previous.then(run);
    frame.mutationTurn = turn.then(noop, noop);
    return turn;
  }

  /** The ctx of a query's handler running in `frame` (the one called from outside, or one it called). */
  private queryCtx(frame: CallFrame) {
    return {
      db: createDatabaseReader(frame.txn, this.catalog),
      auth: frame.auth,
      storage: new QueryStorage(this.files, frame.txn),
      runQuery: (ref: unknown, a?: unknown) => this.callQuery(frame, ref, a),
    };
  }

  /** `ctx.runQuery` of a query's or a mutation's handler running in `frame`. */
  private callQuery(frame: CallFrame, ref: unknown, args: unknown): Promise<Value> {
    return this.track(frame, "runQuery", ref, (path, chain) => this.queryInTransaction(frame, path, chain, args));
  }

  /**
   * Runs a call a handler made with ctx.runQuery / ctx.runMutation, after checking the nesting
   * limit (Convex's MAX_REACTOR_CALL_DEPTH: a function that calls itself without end fails here
   * rather than overflowing the stack), and counts it as unsettled in the caller's frame until
   * it settles.
   */
  private track(frame: CallFrame, kind: "runQuery" | "runMutation", ref: unknown, run: (path: string, chain: readonly string[]) => Promise<Value>): Promise<Value> {
    let path: string;
    try {
      path = getFunctionName(ref as never);
    } catch (error) {
      return Promise.reject(error);
    }
    const chain = [...frame.chain, path];
    const tooDeep = callDepthExceeded(kind, chain);
    if (tooDeep) return Promise.reject(tooDeep);
    const unsettled = (frame.unsettled ??= new Map());
    // The call leaves `unsettled` before its caller sees it settle, so a handler that awaited
    // its calls returns with none left.
    const promise = run(path, chain).finally(() => unsettled.delete(promise));
    unsettled.set(promise, `ctx.${kind}("${path}")`);
    return promise;
  }

  /**
   * `ctx.runQuery` in a query or a mutation: the query runs in the caller's transaction, as
   * Convex's does ("within the same transaction"): at its snapshot, seeing its pending writes
   * (in a mutation), its reads joining its read set, so a commit over what the query read
   * conflicts with a calling mutation as its own reads would (a split read-modify-write stays
   * serializable), and re-runs a live query that called it. Args and the return value are
   * checked by the query's validators and come back as across the wire (undefined fields
   * dropped). Internal queries may be called; the caller's identity is kept.
   */
  private async queryInTransaction(caller: CallFrame, path: string, chain: readonly string[], args: unknown): Promise<Value> {
    const { txn, auth } = caller;
    const fn = this.functions.resolve(path, "query");
    const checkedArgs = checkArgs(fn, args, this.isIdOfTable);
    const frame: CallFrame = { txn, auth, chain };
    const ctx = this.queryCtx(frame);
    const result = await callHandler(fn, ctx, checkedArgs);
    checkCallsSettled(frame);
    if (txn.limitExceeded) throw txn.limitExceeded;
    return withoutUndefinedFields(checkReturn(fn, path, result, this.isIdOfTable));
  }

  /**
   * `ctx.runMutation` in a mutation: Convex's sub-transaction. The called mutation runs in the
   * caller's transaction (same snapshot; each sees the other's writes; one commit, one conflict
   * check), behind a savepoint of the pending writes:
   *  1. args are checked first (a bad call writes nothing and needs no savepoint);
   *  2. the savepoint marks the writes staged so far;
   *  3. the handler runs and its return value is checked;
   *  4. if 3 threw, everything staged since 2 is undone and the error goes to the caller, which
   *     may catch it and go on (or not: then the whole transaction fails, as any error does).
   * Writes the caller makes while the called mutation runs (calls it did not await) are staged
   * after the savepoint, so they are undone with it: await each ctx.runMutation.
   */
  private async mutationInTransaction(
    caller: CallFrame,
    db: MutationCtx["db"],
    scheduler: MutationCtx["scheduler"],
    path: string,
    chain: readonly string[],
    args: unknown,
  ): Promise<Value> {
    const { txn } = caller;
    const fn = this.functions.resolve(path, "mutation");
    const checkedArgs = checkArgs(fn, args, this.isIdOfTable);
    const savepoint = txn.savepoint();
    let value: Value;
    try {
      // A ctx of its own (not the caller's object, which app code may have added fields to),
      // over the caller's transaction.
      const frame: CallFrame = { txn, auth: caller.auth, chain };
      const returned = await callHandler(fn, this.mutationCtx(frame, db, scheduler), checkedArgs);
      checkCallsSettled(frame);
      if (txn.limitExceeded) throw txn.limitExceeded;
      value = checkReturn(fn, path, returned, this.isIdOfTable);
    } catch (error) {
      txn.rollbackTo(savepoint);
      throw error;
    }
    txn.releaseSavepoint(savepoint);
    return withoutUndefinedFields(value);
  }

  /** Runs engine-internal work in a mutation transaction (scheduler bookkeeping, index builds). */
  async runSystemMutation<T>(work: (txn: Transaction, ctx: SchedulerCtx) => Promise<T>, { uncached = false } = {}): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      // `uncached`: reads that would only push the app's hot answers out of the read cache (a file's chunks).
      const txn = new Transaction(uncached ? this.storage : this.reads, this.catalog, this.latest, Date.now(), this.creationClock);
      const release = this.snapshots.pin(txn.readTs); // until the commit is decided, as in executeMutation
      let committed: CommitResult;
      let result: T;
      try {
        result = await work(txn, { db: createDatabaseReader(txn, this.catalog, { system: true }) });
        committed = await this.commit(txn);
      } finally {
        release();
      }
      if (committed.ok) {
        // The scheduler claims a job with one before its action starts: see `onceDurable`.
        await this.storage.whenDurable?.(committed.ts);
        return result;
      }
      if (attempt >= LIMITS.maxMutationRetries) throw conflictError("A system transaction", committed.conflict.indexId, attempt + 1);
      this.stats.conflictRetries += 1;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 2 ** Math.min(attempt, 7)));
    }
  }

  /**
   * Reads at the latest snapshot with system access (scheduler, tests). `uncached` reads straight
   * from storage: for what would only push the app's hot answers out of the read cache (a file's chunks).
   */
  async read<T>(work: (txn: Transaction) => Promise<T>, { uncached = false } = {}): Promise<T> {
    const txn = new Transaction(uncached ? this.storage : this.reads, this.catalog, this.latest, Date.now());
    const release = this.snapshots.pin(txn.readTs);
    try {
      return await work(txn);
    } finally {
      release();
    }
  }

  /**
   * `read`, for a result that leaves the engine without a function run (the dashboard's pages):
   * answered once its snapshot is durable, as a one-shot query is (`onceDurable`).
   */
  readDurable<T>(work: (txn: Transaction) => Promise<T>): Promise<T> {
    // `read` takes its snapshot at `latest` before its first await.
    const readTs = this.latest;
    const answer = this.read(work);
    return this.storage.whenDurable ? this.onceDurable(answer, () => readTs) : answer;
  }

  /**
   * Resolves once every commit through `ts` is durable (`Storage.whenDurable`; at once where
   * commits are durable when they land), for what shows a snapshot outside the engine without
   * `readDurable`: the dashboard's counts, and its note to the pages that a table changed.
   */
  async durableThrough(ts: Timestamp): Promise<void> {
    await this.storage.whenDurable?.(ts);
  }

  /** Commits a transaction (see committer.ts): its timestamp, or the index it conflicted on. */
  commit(txn: Transaction): Promise<CommitResult> {
    if (this.closed) return Promise.reject(walkinError("INTERNAL", "The engine is closed."));
    return this.committer.commit(txn);
  }

  /** After every durable commit, this engine's or one learned from storage, in timestamp order. */
  private onCommitted(record: CommitRecord, tables: Set<string>, own: boolean, writes?: CommitWrites): void {
    // First, before anything can read at the new timestamp: answers cached for the indexes
    // this commit touched are no longer the newest, or are carried across it (readCache.ts,
    // rules 1 and 5).
    this.reads.applyCommit(record.ts, record.writes, writes);
    this.deferredClaims.noteCommit(record.writes); // before anything reads at record.ts (deferredWrites.ts, step 2)
    if (own) this.stats.commits += 1;
    else {
      this.legacyRequests.noteCommit(tables);
      this.checkOtherNodesCode(record, tables);
      // It built an index this node lacks: marked before this node's next commit (indexBuilds.ts, 2b).
      if (buildsIndexLackedBy(record.writes, this.catalog)) this.lackedCheckWanted = true;
    }
    // A listener that throws (an app's, through `onCommit`) must not cost the others, the live
    // queries or the batch: this runs inside the committer's settle, and a throw there would
    // leave the batch's other mutations unanswered and reject a promise nobody awaits.
    for (const listener of this.commitListeners) {
      try {
        listener(record, tables);
      } catch (error) {
        this.logError(`A commit listener failed on commit ${record.ts}`, error);
      }
    }
    this.subscriptions.onCommit(record);
    this.maybePrune();
  }

  /**
   * Learns of the commits other engines sharing this database made since this one last looked,
   * and re-runs the live queries they touch. A storage outage is ridden out for up to
   * storageRetryMs, as a function run's is (a refresh writes nothing): a pooled connection
   * that a network cut left dead failed the first call after it.
   */
  refreshFromStorage(): Promise<void> {
    return this.refreshRetrying();
  }

  /**
   * `refreshFromStorage`, riding out a storage outage as a function run does: a refresh reads
   * and writes nothing, so it is tried again for up to storageRetryMs. Not trying again failed
   * a client's re-sent request at once on a dropped connection, though it had been applied
   * (its receipt was found; only catching up to it failed), and a read-your-writes catch-up.
   */
  private async refreshRetrying(): Promise<void> {
    const startedAt = performance.now();
    for (;;) {
      try {
        return await this.refreshOnce();
      } catch (error) {
        if (!isStorageFailure(error) || !(await this.storageRetry.wait(startedAt))) throw error;
      }
    }
  }

  /**
   * After a read that storage refused because other nodes may have pruned what its snapshot
   * sees (`SnapshotFencedError`: this node was cut off from a shared database for longer than
   * its snapshot floor counts, postgres/snapshotFloors.ts, "Fencing"): learns the commits since
   * `latest`, so that the next attempt, at `latest`, reads at or past the storage's fence.
   * Without it every attempt at the old `latest` was refused again until a poll happened to
   * catch up (every 10 s on a node with no live query), and a call could run out of
   * storageRetryMs first. One refresh for every read refused while it runs; a failed one
   * leaves the next attempt to fail and wait like any storage failure. Nothing for any other
   * error.
   */
  learnPastFence(error: unknown): Promise<void> {
    if (!isSnapshotFenced(error) || this.closed) return Promise.resolve();
    return (this.pastFence ??= this.refreshRetrying().catch(() => {}).finally(() => (this.pastFence = null)));
  }

  /**
   * One look at the log, noting the storage's commit mark read before it: every commit that
   * moved the mark up to that answer was in the log when the look read it.
   */
  private async refreshOnce(): Promise<void> {
    const mark = this.readCommitMark();
    await this.committer.refresh();
    if (mark !== undefined) this.markAtRefresh = mark;
  }

  /** `storage.othersCommitMark()`, or undefined (look at the log) where it has none or failed. */
  private readCommitMark(): number | undefined {
    try {
      return this.storage.othersCommitMark?.();
    } catch {
      return undefined;
    }
  }

  /**
   * Read-your-writes across processes for a one-shot call (over HTTP: transport/http.ts): a client
   * that wrote through another process, or another node, and then asks this one, sees its
   * write. The storage's notification of that commit may still be on its way (SQLite's watch
   * looks every 20 ms, or every second with no live query), so the call does not wait for it: where
   * the storage keeps a commit mark, a mark unchanged since the last look means no commit of
   * another engine can be missing, and the call goes on at once; a changed one (or none
   * known) costs one look at the log first. Step by step, for a commit C of another process
   * that landed before the call came:
   *  1. C moved the mark before the call read it here;
   *  2. if the mark read equals `markAtRefresh`, a look that read the mark after C (the same
   *     value) completed, and that look read the log after C: the engine knows C;
   *  3. otherwise the look started here reads the log after C.
   * A storage without a mark (PostgreSQL) answers nothing here: its notifications carry the
   * order, and a client that moves node carries the timestamp it saw (`catchUpTo`).
   */
  async catchUpWithOthers(): Promise<void> {
    if (!this.storage.othersCommitMark) return;
    const mark = this.readCommitMark();
    if (mark !== undefined && mark === this.markAtRefresh) return;
    await this.refreshRetrying();
  }

  /**
   * Removes the stored entries of indexes that no schema declares any more, if this engine is
   * alone on its storage now (reclaimIndexes.ts); answers the IDs reclaimed. Runs at start; a
   * hot reload calls it again once the previous version has stopped.
   */
  reclaimRetiredIndexes(): Promise<string[]> {
    return reclaimRetiredIndexes(this.storage, this.catalog);
  }

  /**
   * The indexes (as `table.index`) that another engine's commits left incomplete here, which
   * queries refuse until a start rebuilds them (mixedCode.ts).
   */
  incompleteIndexes(): string[] {
    return this.catalog.incompleteIndexes().map(indexDisplayName);
  }

  /**
   * Another engine on this database serves new calls from now on (a hot reload), and this one
   * only finishes the actions it started; its scheduler stops taking jobs. Their
   * `ctx.runQuery` and `ctx.auth.getUserIdentity` first learn the other engine's commits: a
   * storage tells an engine of others' commits some time after they land (SQLite's commit
   * watch, within 20 ms to a second; without `watchCommits`, only when it commits or refreshes),
   * so a retired engine read at its own last commit, missing what the serving engine had committed
   * and acknowledged before the read began (a revoked session still resolved, for one).
   */
  handOver(): void {
    this.handedOver = true;
    // Due jobs and crons are the serving engine's from now on. Run here, they would run the old
    // code: a job the new code scheduled may name a function this version lacks, and failed.
    // Jobs already running here finish (close waits for them).
    this.scheduler.stop().catch((error: unknown) => this.logError("Stopping the scheduler of the previous version failed", error));
  }

  /**
   * Read-your-writes across nodes: resolves once this engine has learned of every commit up to
   * `ts` (a timestamp a client saw on another node) and its live queries are published at it.
   * If storage itself is behind `ts` (the client saw another database), it stops waiting there.
   */
  async catchUpTo(ts: Timestamp): Promise<void> {
    if (this.latest < ts) await this.refreshRetrying();
    await this.subscriptions.waitPublished(Math.min(ts, this.latest));
  }

  /**
   * The commits in (`from`, `to`] landed while this engine loaded its catalog and built its
   * indexes, before it followed other nodes: checked like any other node's commit for indexes
   * they skipped, except the commits up to the build of an index this start built (`builtAt`:
   * its build checked the table's writes until then; a later commit, landing while the start
   * built other indexes, is checked like any other). Storage keeps the log from `from` on:
   * this storage's snapshot floor was taken before it.
   */
  private async checkCommitsWhileOpening(from: Timestamp, to: Timestamp, builtAt: Map<string, Timestamp>): Promise<void> {
    for (let since = from; since < to; ) {
      const view = await this.storage.commitsSince(since, 1_000);
      for (const commit of view.commits) {
        if (commit.ts > to) return;
        const writes = decodeWriteSet(commit.log);
        const record = { ts: commit.ts, writes };
        this.checkOtherNodesCode(record, tablesOfWriteSet(writes), (indexId) => commit.ts <= (builtAt.get(indexId) ?? 0));
      }
      if (view.commits.length === 0) return;
      since = view.commits[view.commits.length - 1]!.ts;
    }
  }

  /**
   * What the committer awaits before a batch (committer.ts, `commitGate`): the marks of indexes
   * other nodes built that this node lacks, when it may not have seen their latest build
   * (indexBuilds.ts, step 2); else null, at no cost. A failed check is tried again by the next
   * batch, which waits for it: a commit never lands before the marks it needs.
   */
  private lackedIndexGate(): Promise<void> | null {
    if (!this.lackedCheckWanted) return null;
    this.lackedCheckWanted = false;
    return markLackedIndexes(this.storage, this.catalog).catch((error: unknown) => {
      this.lackedCheckWanted = true;
      throw error;
    });
  }

  /** Another node's commit that skipped one of our indexes makes that index untrustworthy (mixedCode.ts). */
  private checkOtherNodesCode(record: CommitRecord, tables: Set<string>, ignore?: (indexId: string) => boolean): void {
    for (const indexId of indexesSkippedBy(record.writes, tables, this.catalog)) {
      if (ignore?.(indexId)) continue;
      this.logError(`Commit ${record.ts} by another node skipped index ${indexDisplayName(indexId)}`, new Error(incompleteIndexMessage(indexId)));
      void this.catalog.markIncomplete(indexId).catch((error) => this.logError(`Recording index ${indexDisplayName(indexId)} as unbuilt failed`, error));
    }
  }

  /** How many commits the engine's commit log holds now (for tests and monitoring). */
  get commitLogSize(): number {
    return this.commitLog.size;
  }

  /** Checks commits after `since` against a read set (for queries that just finished). */
  firstConflictSince(readSet: ReadSet, since: Timestamp) {
    return this.commitLog.firstConflict(readSet, since);
  }

  pinSnapshot(ts: Timestamp): () => void {
    return this.snapshots.pin(ts);
  }

  /** `ctx.auth` of one run; `used` says whether the run asked who its caller is. */
  private authFor(txn: Transaction, caller: Caller): { api: { getUserIdentity(): Promise<UserIdentity | null> }; used: boolean } {
    let identity: Promise<UserIdentity | null> | undefined;
    const auth = {
      api: {
        getUserIdentity: () => {
          auth.used = true;
          return (identity ??= this.resolveIdentity(txn, caller));
        },
      },
      used: false,
    };
    return auth;
  }

  private async resolveIdentity(txn: Transaction, caller: Caller): Promise<UserIdentity | null> {
    if (caller.identity !== undefined) return caller.identity;
    if (!caller.token || !this.authenticate) return null;
    const db = createDatabaseReader(txn, this.catalog, { system: true }) as never;
    return this.authenticate({ db, now: txn.now, writeLater: (key, work) => this.writeLater(key, work) }, caller.token);
  }

  /**
   * Runs `work` soon in its own system transaction; a second request under a pending key is
   * dropped. Queries cannot write, so the auth hook uses this to record that a session was
   * used; failures are logged, never surfaced to the call that asked.
   */
  private writeLater(key: string, work: (db: DatabaseWriter<AnyDataModel>) => Promise<void>): void {
    if (this.closed || this.laterWrites.has(key)) return;
    this.laterWrites.set(key, work);
    setImmediate(() => {
      if (this.closed) return;
      void this.runDeferredWrite(work)
        .catch((error) => this.logError("A deferred write failed", error))
        .finally(() => this.laterWrites.delete(key));
    });
  }

  /**
   * One deferred write: as a system mutation, but it gives way to mutations that lost to
   * deferred writes (deferredWrites.ts, step 1): it commits nothing while its engine knows a
   * claim on a key it writes, and a claim committed after its snapshot makes it conflict.
   */
  private async runDeferredWrite(work: (db: DatabaseWriter<AnyDataModel>) => Promise<void>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const txn = new Transaction(this.reads, this.catalog, this.latest, Date.now(), this.creationClock);
      const release = this.snapshots.pin(txn.readTs);
      let committed: CommitResult;
      try {
        await work(createDatabaseWriter(txn, this.catalog) as never);
        if (!txn.hasWrites) return;
        for (const lane of lanesWritten(txn.buildWrites().writeSet)) {
          if (this.deferredClaims.isClaimed(lane)) return;
          txn.readSet.addPoint(CLAIM_INDEX, laneBytes(lane));
        }
        txn.markWrite(DEFERRED_MARK, MARK_KEY);
        committed = await this.commit(txn);
      } finally {
        release();
      }
      if (committed.ok) return;
      if (attempt >= LIMITS.maxMutationRetries) throw conflictError("A deferred write", committed.conflict.indexId, attempt + 1);
      this.stats.conflictRetries += 1;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 2 ** Math.min(attempt, 7)));
    }
  }

  /** Whether a deferred write committed after `since` wrote a key of `lane`. */
  private deferredWroteSince(since: Timestamp, lane: string): boolean {
    return this.commitLog.someAfter(since, (writes) => writes.has(DEFERRED_MARK) && lanesWritten(writes).has(lane));
  }

  /**
   * Claims `lane` against deferred writes (deferredWrites.ts, step 2): a commit that reads
   * nothing, so it cannot conflict. False if it failed (storage): the call goes on unclaimed.
   */
  private async claimAgainstDeferredWrites(lane: string): Promise<boolean> {
    const txn = new Transaction(this.reads, this.catalog, this.latest, Date.now(), this.creationClock);
    txn.markWrite(CLAIM_INDEX, laneBytes(lane));
    const release = this.snapshots.pin(txn.readTs); // until the commit is decided, as in executeMutation
    try {
      return (await this.commit(txn)).ok;
    } catch (error) {
      this.logError("Claiming a key against deferred writes failed", error);
      return false;
    } finally {
      release();
    }
  }

  /** Releases the claims of a mutation that fails with `error` (deferredWrites.ts, step 4; they would lapse anyway); returns `error`. */
  private releasingClaims(lanes: string[], error: unknown): unknown {
    if (lanes.length === 0) return error;
    const txn = new Transaction(this.reads, this.catalog, this.latest, Date.now(), this.creationClock);
    for (const lane of lanes) txn.markWrite(RELEASE_INDEX, laneBytes(lane));
    const release = this.snapshots.pin(txn.readTs);
    void this.commit(txn)
      .catch((failure) => this.logError("Releasing claims against deferred writes failed (they lapse)", failure))
      .finally(release);
    return error;
  }

  private identityOutsideTransaction(caller: Caller): Promise<UserIdentity | null> {
    return this.read((txn) => this.resolveIdentity(txn, caller));
  }

  /**
   * Trims the commit log and, now and then, storage history. A history sweep may walk many
   * stored versions (PostgreSQL's walks them all; SQLite's mostly the keys written since the
   * last, plus a slice of a full pass now and then), so at most one runs at a time, and sweeps
   * are spaced by their own cost:
   * after one that took d ms (its busy time, when the storage reports it: see `PruneReport`)
   * the next waits until d / PRUNE_DUTY_CYCLE ms after its start
   * (within [PRUNE_MIN_INTERVAL_MS, PRUNE_MAX_INTERVAL_MS]). A small database is swept every
   * second or so, which keeps its file from filling with versions nobody can read (measured by
   * `bench/engine`, case h); a large one is swept less often, and sweeping never takes more
   * than about 5% of the time, however fast commits come.
   */
  private maybePrune(): void {
    // Finding the oldest snapshot in use walks the subscriptions: done every 256 commits, or
    // when a sweep is due (a cheap clock check on every commit).
    const now = performance.now();
    const sweepDue = this.pruning === null && now - this.lastPruneStart >= this.pruneInterval;
    if (++this.commitsSincePrune < 256 && !sweepDue) return;
    this.commitsSincePrune = 0;
    const oldest = this.snapshots.oldest(this.subscriptions.oldestPublished(this.latest));
    this.commitLog.trim(oldest);
    // No read comes below the oldest snapshot in use (a sweep at it is safe now), so storage
    // may drop what only such reads could see between sweeps (Storage.raiseReadFloor).
    this.storage.raiseReadFloor?.(oldest);
    // The log is kept from the published snapshot on only so that a query subscribed now (it
    // runs at that snapshot) can be checked against the commits since without a re-run. Only
    // flushes move that snapshot, and they need an event-loop turn: a loop that awaits mutation
    // after mutation, with queries live, would grow the log (about 1 KB a commit) for as long as
    // it runs. Past the cap the log is kept only for the pinned snapshots, which running
    // transactions and flushes need to decide conflicts; a query subscribed at an older
    // published snapshot then finds its history trimmed, counts that as a conflict
    // (`CommitLog.firstConflict`) and runs again at the next flush.
    if (this.commitLog.size > COMMIT_LOG_SOFT_CAP) this.commitLog.trim(this.snapshots.oldest(this.latest));
    if (!sweepDue) return;
    this.lastPruneStart = now;
    this.pruning = this.storage
      .pruneHistory(oldest)
      .then(
        // A storage that yields between steps reports its own busy time: the wall time of such
        // a sweep is mostly other work, and spacing sweeps by it let history pile up (bench/engine
        // case h: 200k versions between sweeps instead of about a second's worth).
        (report) => report?.busyMs ?? performance.now() - now,
        (error) => {
          this.logError("History pruning failed", error);
          return performance.now() - now;
        },
      )
      .then((took) => {
        this.pruneInterval = Math.min(PRUNE_MAX_INTERVAL_MS, Math.max(PRUNE_MIN_INTERVAL_MS, took / PRUNE_DUTY_CYCLE));
        this.pruning = null;
      });
  }

  /** Periodic housekeeping that no request triggers: expiring request-deduplication records. */
  private startMaintenance(): void {
    const run = async () => {
      await this.pruneClientRequests(Date.now());
    };
    this.maintenance = setInterval(() => void run().catch((error) => this.logError("Maintenance failed", error)), MAINTENANCE_INTERVAL_MS);
    this.maintenance.unref?.();
  }

  /**
   * Removes client request records older than the retention window as of `now`: receipts, and
   * the legacy table's records while it has any. Resolves with how many of each went.
   */
  async pruneClientRequests(now: number): Promise<{ receipts: number; legacy: number }> {
    const receipts = await pruneReceipts(this.storage, now, () => this.closed);
    let legacy = 0;
    while (this.legacyRequests.mayHaveRecords && !this.closed) {
      const result = await this.runSystemMutation((txn) => this.legacyRequests.prune(this.catalog, txn, now));
      this.legacyRequests.afterPrune(result);
      legacy += result.removed;
      if (result.removed < PRUNE_BATCH) break;
    }
    return { receipts, legacy };
  }

  /**
   * Reports a failure nobody is waiting on (background work: the scheduler, crons, pruning,
   * housekeeping). A storage that has stopped (`StorageStoppedError`: SQLite after a failed sync
   * of its log) refuses every call until the process restarts, so every loop would fail again
   * on each of its turns, the scheduler once a second, each time with the same error. Such a
   * failure is reported once, saying that it will not be repeated; the callers of functions
   * still get the error with each call.
   */
  logError(message: string, error: unknown): void {
    if (storageStoppedBy(error) !== undefined) {
      if (this.storageStopLogged) return;
      this.storageStopLogged = true;
      message += " (the storage has stopped: background work fails the same way until the process restarts, and is not reported again)";
    }
    (this.options.logError ?? ((m, e) => console.error(`[walkin] ${m}:`, e)))(message, error);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.maintenance);
    this.following?.stop();
    await this.scheduler.stop();
    this.subscriptions.close();
    await this.committer.idle();
    await this.pruning;
    this.closed = true;
    await this.storage.close();
  }
}

function conflictError(what: string, indexId: string | null, attempts: number): Error {
  const cause = indexId === null
    ? "its snapshot kept falling behind the commit history the server keeps (the server was very busy or the storage slow)"
    : `concurrent writes to table "${indexId.split(".")[0]}"`;
  return walkinError("CONFLICT", `${what} kept conflicting with ${cause} and gave up after ${attempts} attempts. ` +
    `Reduce contention on that data (e.g. shard a hot counter across documents).`);
}

function asError(error: unknown): Error {
  if (error instanceof Error || isWalkinError(error)) return error as Error;
  return walkinError("APPLICATION", `A function threw a non-Error value: ${String(error)}`);
}

/**
 * The nesting limit's error for a call whose `chain` runs from the function called from
 * outside down to the callee, or null within the limit (Convex's MAX_REACTOR_CALL_DEPTH).
 */
function callDepthExceeded(kind: "runQuery" | "runMutation" | "runAction", chain: readonly string[]): Error | null {
  if (chain.length - 1 <= LIMITS.maxCallDepth) return null;
  return walkinError("LIMIT_EXCEEDED",
    `ctx.${kind}("${chain.at(-1)}") would nest ${chain.length - 1} calls deep, past the limit of ${LIMITS.maxCallDepth}: ${chain.join(" → ")}. ` +
    `A function that calls itself needs a base case that stops it; to repeat work, loop inside one function ` +
    `(or call a plain helper function instead of ctx.${kind}).`,
    { limit: "maxCallDepth", max: LIMITS.maxCallDepth });
}

/** Ends a turn of `inMutationTurn` whichever way the called mutation settled. */
function noop(): void {}

function bigintSafe(_key: string, value: unknown) {
  return typeof value === "bigint" ? `${value}n` : value;
}

/**
 * After a handler returned: fails the run if a ctx.runQuery / ctx.runMutation call it made is
 * still running (not awaited). Such a call would go on reading and writing a transaction that
 * has moved on: its writes would land in the commit or be lost depending on timing, and a
 * called mutation's savepoint would no longer nest. The failure sticks to the transaction
 * (`limitExceeded`), so a caller that catches it still commits nothing.
 */
function checkCallsSettled(frame: CallFrame): void {
  const { unsettled } = frame;
  if (unsettled === undefined || unsettled.size === 0) return;
  // Whatever such a call ends with comes after the function's own failure, reported below: not
  // an unhandled rejection, which would take the process down.
  for (const promise of unsettled.keys()) promise.catch(() => {});
  const calls = [...unsettled.values()].join(", ");
  throw (frame.txn.limitExceeded ??= walkinError("MISUSE",
    `${frame.chain.at(-1)} returned while ${calls}, which it made, was still running, so it fails (a mutation commits nothing). ` +
    `Await every ctx.runQuery and ctx.runMutation call (typescript-eslint's no-floating-promises rule finds those that are not).`));
}

/** Calls a function's handler as a method of the function (as app code would), without a closure per run. */
function callHandler(fn: RegisteredFunction, ctx: unknown, args: Record<string, Value>): unknown {
  return (fn.handler as (ctx: unknown, args: Record<string, Value>) => unknown)(ctx, args);
}

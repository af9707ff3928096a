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
import { setTimeout } from "node:timers";
import { performance } from "node:perf_hooks";
import { walkinError, isWalkinError } from "../values/index.js";
import type { Value } from "../values/index.js";
import { getFunctionName } from "../server/api.js";
import type { RegisteredFunction, UserIdentity } from "../server/registration.js";
import { findEngineHooks } from "../server/hooks.js";
import { storageStoppedBy, type Storage, type Timestamp } from "../storage/types.js";
import { Catalog, indexDisplayName } from "./catalog.js";
import { buildIndexes } from "./indexBuilder.js";
import { reclaimRetiredIndexes } from "./reclaimIndexes.js";
import { CommitLog, type CommitRecord, type Conflict } from "./commitLog.js";
import { GroupCommitter, type CommitResult } from "./committer.js";
import { guardStorage, isStorageFailure } from "./storageGuard.js";
import { StorageRetry } from "./storageRetry.js";
import { createDatabaseReader, createDatabaseWriter } from "./database.js";
import { TransactionContexts, callDepthExceeded, callHandler, checkCallsSettled, type CallFrame } from "./transactionCtx.js";
import { hashSeed, runDeterministic } from "./determinism.js";
import { FunctionRegistry, checkArgs, checkReturn, withoutUndefinedFields } from "./functions.js";
import { LIMITS } from "./limits.js";
import type { ReadSet } from "./readSet.js";
import { ActiveSnapshots } from "./snapshots.js";
import { ReadCache, type CommitWrites } from "./readCache.js";
import { tableNumberOfId } from "./ids.js";
import { callSignature, laneOf, RetryLanes } from "./retryLanes.js";
import { RELEASE_INDEX, laneBytes } from "./deferredWrites.js";
import { DeferredWriter } from "./deferredWriter.js";
import { conflictError } from "./conflictError.js";
import { CatchUp } from "./catchUp.js";
import { followOtherEngines, type FollowingOtherEngines } from "./otherEngines.js";
import { IndexWatch } from "./indexWatch.js";
import { buildsIndexLackedBy, indexesMarkedLacked } from "./indexBuilds.js";
import { CreationClock, Transaction } from "./transaction.js";
import { createScheduler, type SchedulerCtx } from "./scheduler.js";
import { ActionDeadline, checkActionTimeout } from "./actionDeadline.js";
import { SYSTEM_TABLES } from "./systemTables.js";
import { LegacyRequests, findClientRequest, receiptAheadError, recordClientRequest, type ClientRequest, type RecordedRequest } from "./clientRequests.js";
import { Subscriptions } from "./subscriptions.js";
import { Housekeeping } from "./housekeeping.js";
import { Crons } from "./cron.js";
import { FileStore } from "./fileStore.js";
import { actionStorage } from "./storageCtx.js";
import { vectorSearch } from "./vectorSearch.js";
import { VectorCache } from "./vectorCache.js";
import type { Authenticate, Caller, EngineOptions, EngineStats, FunctionRunTrace, MutationHooks, QueryRun } from "./engineTypes.js";

/** How many times more attempts a mutation in a retry lane gets (see executeMutation). */
const LANE_RETRY_FACTOR = 4;

/** What an action called with ctx.runAction inherits from its caller. */
interface ActionCall {
  /** The caller's time limit, which the called action shares. */
  deadline: ActionDeadline | null;
  /** The path of actions from the one called from outside down to the called one (the nesting limit). */
  chain: readonly string[];
}

// The engine's public types live in engineTypes.ts; modules import them from here.
export type { Authenticate, Caller, CallerRequest, EngineOptions, EngineStats, FunctionRunTrace, MutationHooks, QueryOutcome, QueryRun } from "./engineTypes.js";

export class Engine {
  readonly stats: EngineStats = { commits: 0, conflictRetries: 0, queryRuns: 0 };
  readonly functions: FunctionRegistry;
  readonly subscriptions: Subscriptions;
  private readonly commitLog: CommitLog;
  private readonly committer: GroupCommitter;
  private readonly snapshots = new ActiveSnapshots();
  private readonly retryLanes = new RetryLanes();
  /** The authenticate hook's deferred writes, and the claims that make them give way (deferredWriter.ts). */
  private readonly deferredWrites: DeferredWriter;
  /** What transactions read through: storage, with repeated answers served from memory. */
  readonly reads: ReadCache;
  /** Vectors decoded by vector searches, by document version (vectorCache.ts). */
  readonly vectors: VectorCache;
  /** Paces calls that storage failed with nothing written (see StorageRetry). */
  readonly storageRetry: StorageRetry;
  private readonly creationClock = new CreationClock();
  /** The ctx of query and mutation handlers, and the calls they make through it (transactionCtx.ts). */
  private readonly contexts = new TransactionContexts(this);
  private readonly commitListeners = new Set<(record: CommitRecord, tables: Set<string>) => void>();
  /** Trimming the commit log, sweeping storage history, expiring receipts (housekeeping.ts). */
  private readonly housekeeping: Housekeeping;
  private following: FollowingOtherEngines | undefined;
  /**
   * Whether other engines or processes may commit to this storage (it has `watchCommits`): this
   * engine then hears of their commits only some time after they land.
   */
  private readonly mayMissCommits: boolean;
  /** Learning other engines' commits from storage (catchUp.ts). */
  private readonly catchUp: CatchUp;
  private closed = false;
  /** Whether `logError` has reported the storage's stop (`StorageStoppedError`). */
  private storageStopLogged = false;
  /** Set by `handOver`. */
  private handedOver = false;
  /** Mutations of this engine between the start of a run and its commit decision (committer.ts, `schedule`). */
  private mutationsRunning = 0;
  private readonly authenticate: Authenticate | undefined;
  readonly scheduler: ReturnType<typeof createScheduler>;
  /** `ctx.storage`'s files, kept in system tables (fileStore.ts). */
  readonly files: FileStore;
  /** What other nodes' commits mean for this node's indexes (indexWatch.ts). */
  private readonly indexWatch: IndexWatch;
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
    this.indexWatch = new IndexWatch({ storage, catalog, logError: (message, error) => this.logError(message, error) });
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
        this.indexWatch.wantLackedCheck();
      },
      holdsCommits: (record) => buildsIndexLackedBy(record.writes, catalog),
      get commitGate() {
        return engine.indexWatch.lackedIndexGate();
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
    this.deferredWrites = new DeferredWriter({
      reads: this.reads,
      catalog,
      commitLog: this.commitLog,
      snapshots: this.snapshots,
      creationClock: this.creationClock,
      get latest() {
        return engine.latest;
      },
      get closed() {
        return engine.closed;
      },
      stats: this.stats,
      commit: (txn) => this.commit(txn),
      logError: (message, error) => this.logError(message, error),
    });
    this.subscriptions = new Subscriptions(this);
    this.catchUp = new CatchUp({
      storage,
      get latest() {
        return engine.latest;
      },
      get closed() {
        return engine.closed;
      },
      storageRetry: this.storageRetry,
      lookAtLog: () => this.committer.refresh(),
      waitPublished: (ts) => this.subscriptions.waitPublished(ts),
    });
    const hooks = findEngineHooks(options.modules);
    this.authenticate = options.authenticate ?? hooks.authenticate;
    this.scheduler = createScheduler(this, Crons.fromModules(options.modules, hooks.crons), options.scheduledFunctionRetentionMs);
    this.files = new FileStore(this, options.maxFileBytes);
    this.housekeeping = new Housekeeping({
      storage,
      catalog,
      commitLog: this.commitLog,
      snapshots: this.snapshots,
      subscriptions: this.subscriptions,
      get latest() {
        return engine.latest;
      },
      get closed() {
        return engine.closed;
      },
      get legacyRequests() {
        return engine.legacyRequests;
      },
      runSystemMutation: (work) => this.runSystemMutation(work),
      logError: (message, error) => this.logError(message, error),
    });
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
    if (shared) await engine.indexWatch.checkCommitsWhileOpening(loadedAt, latest, builtAt);
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
      refresh: () => engine.catchUp.refreshOnce(),
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
    if (options.runScheduler ?? true) engine.housekeeping.startMaintenance();
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
      await this.catchUp.learnPastFence(error);
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
    return this.handedOver ? this.catchUp.refreshRetrying().then(read) : read();
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
    await this.catchUp.refreshRetrying();
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
      const ctx = this.contexts.queryCtx(frame);
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
      await this.catchUp.refreshRetrying();
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
        if (!isStorageFailure(error)) throw this.deferredWrites.releasing(claimed, error);
        await this.catchUp.learnPastFence(error);
        if (!(await this.storageRetry.wait(startedAt))) throw this.deferredWrites.releasing(claimed, error);
        attempt -= 1;
        continue;
      }
      const { value, committed, readTs } = result;
      if (committed.ok) return { value, ts: committed.ts };
      // In a lane a mutation no longer collides with its own node's retries, only with fresh
      // mutations and other nodes' lanes, so it is given more attempts: with three nodes
      // hammering one key, each lane head still wins about one round in three.
      const limit = lane === null ? LIMITS.maxMutationRetries : LIMITS.maxMutationRetries * LANE_RETRY_FACTOR;
      if (attempt >= limit) throw this.deferredWrites.releasing(claimed, conflictError(path, committed.conflict.indexId, attempt + 1));
      this.stats.conflictRetries += 1;
      trace.retries = attempt + 1;
      // Every re-run waits its turn in the lane of the key it lost on (retryLanes.ts): the
      // lane paces it, so there is no backoff.
      lane = laneOf(committed.conflict);
      // Lost to a deferred write (bookkeeping): from now on they keep off that key, on every
      // node, until this call ends (deferredWrites.ts, steps 2 and 3); again if it loses to one
      // once more (its claim lapsed, or that node lost track of it).
      if (committed.conflict.indexId !== null && this.deferredWrites.wroteSince(readTs, lane) && (await this.deferredWrites.claim(lane))) {
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
    const ctx = this.contexts.mutationCtx(frame, createDatabaseWriter(txn, this.catalog), this.scheduler.forTransaction(txn, caller.scheduledJob));
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
    if (!this.catchUp.markUnchanged()) await this.catchUp.refreshOnce();
    return this.commitLog.firstConflict(txn.readSet, readTs);
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
    this.deferredWrites.claims.noteCommit(record.writes); // before anything reads at record.ts (deferredWrites.ts, step 2)
    if (own) this.stats.commits += 1;
    else {
      this.legacyRequests.noteCommit(tables);
      this.indexWatch.checkOtherNodesCode(record, tables);
      // It built an index this node lacks: marked before this node's next commit (indexBuilds.ts, 2b).
      if (buildsIndexLackedBy(record.writes, this.catalog)) this.indexWatch.wantLackedCheck();
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
    this.housekeeping.maybePrune();
  }

  /**
   * Learns of the commits other engines sharing this database made since this one last looked,
   * and re-runs the live queries they touch. A storage outage is ridden out for up to
   * storageRetryMs, as a function run's is (a refresh writes nothing): a pooled connection
   * that a network cut left dead failed the first call after it.
   */
  refreshFromStorage(): Promise<void> {
    return this.catchUp.refreshRetrying();
  }

  /**
   * After a read that storage refused because other nodes may have pruned what its snapshot
   * sees (`SnapshotFencedError`): learns the commits since `latest`, so that the next attempt
   * reads at or past the storage's fence (catchUp.ts, `learnPastFence`, says why and how).
   */
  learnPastFence(error: unknown): Promise<void> {
    return this.catchUp.learnPastFence(error);
  }

  /**
   * Read-your-writes across processes for a one-shot call (over HTTP: transport/http.ts): a
   * client that wrote through another process, or another node, and then asks this one, sees
   * its write, at the cost of one look at the log only where the storage's commit mark moved
   * since the last (catchUp.ts, `catchUpWithOthers`, says why that is enough).
   */
  catchUpWithOthers(): Promise<void> {
    return this.catchUp.catchUpWithOthers();
  }

  /**
   * Read-your-writes across nodes: resolves once this engine has learned of every commit up to
   * `ts` (a timestamp a client saw on another node) and its live queries are published at it.
   * If storage itself is behind `ts` (the client saw another database), it stops waiting there.
   */
  catchUpTo(ts: Timestamp): Promise<void> {
    return this.catchUp.catchUpTo(ts);
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
    return this.authenticate({ db, now: txn.now, writeLater: (key, work) => this.deferredWrites.writeLater(key, work) }, caller.token);
  }

  private identityOutsideTransaction(caller: Caller): Promise<UserIdentity | null> {
    return this.read((txn) => this.resolveIdentity(txn, caller));
  }

  /**
   * Removes client request records older than the retention window as of `now`: receipts, and
   * the legacy table's records while it has any. Resolves with how many of each went.
   */
  pruneClientRequests(now: number): Promise<{ receipts: number; legacy: number }> {
    return this.housekeeping.pruneClientRequests(now);
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
    this.housekeeping.stopMaintenance();
    this.following?.stop();
    await this.scheduler.stop();
    this.subscriptions.close();
    await this.committer.idle();
    await this.housekeeping.sweeping;
    this.closed = true;
    await this.storage.close();
  }
}

function asError(error: unknown): Error {
  if (error instanceof Error || isWalkinError(error)) return error as Error;
  return walkinError("APPLICATION", `A function threw a non-Error value: ${String(error)}`);
}

function bigintSafe(_key: string, value: unknown) {
  return typeof value === "bigint" ? `${value}n` : value;
}

/**
 * Live queries: the cache of query results that commits keep up to date.
 *
 * Each distinct (function, args) — and identity, when the query read it — is one `LiveQuery`,
 * however many subscribers it has: identical subscriptions share one execution and one
 * result. A commit marks dirty exactly the live queries whose read sets it overlaps, found
 * through an interval index of every live query's read ranges (`readRangeIndex.ts`), so a
 * commit costs nothing for the live queries it does not touch; a flush
 * then re-runs all of them at one snapshot `ts`, and publishes `ts`: from then on every live
 * query's result is known to be valid at `ts` (the clean ones were not touched by any commit
 * up to `ts`). Subscribers hear about results that changed, and `onFlush` listeners (the
 * transport) learn that a consistent snapshot `ts` is complete. Commits that land during a
 * flush are handled by the next one, so a burst of commits costs one re-run per query.
 */
// The real timers, not the globals: a test that turns on fake timers (vi.useFakeTimers, as
// suites written for convex-test do) would otherwise stall commits and flushes for good.
import { setImmediate, setTimeout } from "node:timers";
import { createHash } from "node:crypto";
import { isWalkinError, type Value } from "../values/index.js";
import { encodeValueToString } from "../values/json.js";
import { sharedJsonOf, sharedJsonText } from "../values/sharedJson.js";
import type { RegisteredFunction } from "../server/registration.js";
import { isSnapshotFenced, storageStoppedBy, type Timestamp } from "../storage/types.js";
import type { CommitRecord } from "./commitLog.js";
import { ReadRangeIndex } from "./readRangeIndex.js";
import type { WriteSet } from "./readSet.js";
import { isStorageFailure } from "./storageGuard.js";
import type { Caller, Engine, QueryOutcome, QueryRun } from "./engine.js";

/** How soon queries that storage failed run again. */
const STORAGE_RETRY_FLUSH_MS = 250;

export type QueryListener = (outcome: QueryOutcome, ts: Timestamp) => void;

export interface QuerySubscription {
  /** The result, valid at `ts` (a consistent snapshot with every other live query). */
  readonly outcome: QueryOutcome;
  readonly ts: Timestamp;
  unsubscribe(): void;
}

class LiveQuery {
  run!: QueryRun;
  fingerprint = "";
  /** On `Subscriptions.dirtyQueries` while true: set through `markDirty` only. */
  dirty = false;
  refs = 0;
  /** When it became live: flushes re-run dirty queries in this order. */
  order = 0;
  /** Its subscribers, each once (two subscriptions with the same listener are two entries). */
  readonly subscribers = new Set<Subscriber>();

  constructor(
    readonly key: string,
    readonly baseKey: string,
    readonly fn: RegisteredFunction,
    readonly path: string,
    readonly args: unknown,
    readonly caller: Caller,
  ) {}

  /** Stores a run; true if the result differs from the previous one. */
  update(run: QueryRun): boolean {
    this.run = run;
    // The wire text, which the transport then reuses (sharedJson.ts).
    const fingerprint = run.outcome.ok ? `ok:${sharedJsonText(sharedJsonOf(run.outcome))}` : errorFingerprint(run.outcome.error);
    const changed = fingerprint !== this.fingerprint;
    this.fingerprint = fingerprint;
    return changed;
  }
}

/**
 * One subscription: its listener, the caller it subscribed as, and the live query that serves
 * it now. That query changes when a split by identity moves the subscriber to its own
 * (`splitByIdentity`), and `unsubscribe` must reach the query it is in at that moment: the
 * query it subscribed to would drop nothing, and the one that holds it would keep notifying
 * it, and stay live, forever.
 */
interface Subscriber {
  readonly listener: QueryListener;
  readonly caller: Caller;
  /** `identityOf(caller)`, computed once: a split groups by it, and it may hash a token. */
  readonly identity: string;
  query: LiveQuery;
}

/**
 * Who must hear a query's new result after a flush: all its subscribers, or those of `only`
 * (a group moved into it) that are still among them when the flush tells them.
 */
interface Notice {
  query: LiveQuery;
  only?: Subscriber[];
}

export class Subscriptions {
  private readonly live = new Map<string, LiveQuery>();
  /** The read ranges of every live query's current run, by index (kept with `live`: `makeLive`, `unlive`, `rerun`). */
  private readonly readRanges = new ReadRangeIndex<LiveQuery>();
  /** The queries marked dirty since the last flush took them, each once. */
  private dirtyQueries: LiveQuery[] = [];
  /** How many queries have become live so far: the next one's `order`. */
  private madeLive = 0;
  private readonly inflight = new Map<string, Promise<LiveQuery>>();
  private readonly flushListeners = new Set<(ts: Timestamp) => void>();
  /** Called when a query goes live while none was (the engine then follows other engines closely). */
  private firstLive: () => void = () => {};
  private flushWaiters: Array<() => void> = [];
  private published: Timestamp;
  private flushScheduled = false;
  private flushing = false;
  private closed = false;
  /**
   * Why no snapshot can be published any more: the storage stopped (a failed sync of its log,
   * `StorageStoppedError`) with commits that were never made durable, so a subscriber waiting
   * for a flush would wait for good. It is told this error instead.
   */
  private stopped: Error | undefined;

  constructor(private readonly engine: Engine) {
    this.published = engine.latestTimestamp;
  }

  /** Called once the engine is ready: nothing is live yet, so everything up to now is published. */
  catchUp(): void {
    if (this.live.size === 0) this.published = this.engine.latestTimestamp;
  }

  /** The timestamp at which every live query's result is currently known valid. */
  get publishedTimestamp(): Timestamp {
    return this.published;
  }

  /** Number of distinct live queries (shared subscriptions count once). */
  get size(): number {
    return this.live.size;
  }

  /**
   * Subscribes to a query. Resolves with a result valid at the current published snapshot;
   * `listener` then hears every later change (never the initial result).
   */
  async subscribe(path: string, args: unknown, caller: Caller, listener: QueryListener): Promise<QuerySubscription> {
    const fn = this.engine.functions.resolve(path, "query", caller);
    const identity = identityOf(caller);
    let query: LiveQuery;
    for (;;) {
      query = await this.obtain(fn, path, args === undefined ? {} : args, caller, identity);
      while (query.dirty && !this.closed) {
        if (this.stopped !== undefined) {
          this.release(query);
          throw this.stopped;
        }
        await this.nextFlush();
      }
      if (this.live.get(query.key) === query || this.closed) break;
      this.release(query); // replaced while we waited (split per identity): look it up again
    }
    const subscriber: Subscriber = { listener, caller, identity, query };
    query.subscribers.add(subscriber);
    let active = true;
    return {
      outcome: query.run.outcome,
      ts: this.published,
      unsubscribe: () => {
        if (!active) return;
        active = false;
        subscriber.query.subscribers.delete(subscriber);
        this.release(subscriber.query);
      },
    };
  }

  /** Calls `listener` whenever a query goes live while none was. */
  onFirstLive(listener: () => void): void {
    this.firstLive = listener;
  }

  /** Called after every flush with the snapshot it published. */
  onFlush(listener: (ts: Timestamp) => void): () => void {
    this.flushListeners.add(listener);
    return () => this.flushListeners.delete(listener);
  }

  /**
   * Whether a commit of these writes would leave live queries to re-run: ones the writes touch,
   * or ones already waiting for the next flush. The committer asks before each batch
   * (`CommitterHost.workWhileSyncing`, committer.ts): only then is there work to do while storage syncs.
   */
  wouldRerun(writeSets: Iterable<WriteSet>): boolean {
    return this.dirtyQueries.length > 0 || this.readRanges.touchesAny(writeSets);
  }

  onCommit(record: CommitRecord): void {
    this.readRanges.touched(record.writes, this.markDirty);
    // With nothing live and nothing being created, every live result is (vacuously) valid at
    // the new commit: publish it now rather than at the next flush. A flush needs an event-loop
    // turn, and a script that awaits mutation after mutation never gives one; meanwhile the
    // engine keeps every commit after `published` in its commit log (`oldestPublished`), about
    // 1 KB each. Not while a query is being created: it runs at the `published` it read, and
    // its result is checked against the commits since only once it is live.
    // Not a commit storage has yet to make durable: `onDurable` publishes that once it is.
    if (this.live.size === 0 && this.inflight.size === 0 && !this.engine.storage.whenDurable) this.published = Math.max(this.published, record.ts);
    this.scheduleFlush();
  }

  /**
   * This engine's commits through `ts` are durable (storages with `Storage.whenDurable` only):
   * with nothing live, published now, for the reason `onCommit` gives. A script awaiting
   * mutation after mutation under FULL, each synced on the spot, still gives no event-loop turn.
   */
  onDurable(ts: Timestamp): void {
    if (this.live.size === 0 && this.inflight.size === 0) this.published = Math.max(this.published, ts);
  }

  /** Resolves once every live query is published at `ts` or later. */
  async waitPublished(ts: Timestamp): Promise<void> {
    while (this.published < ts && !this.closed) await this.nextFlush();
  }

  /** Commits happened that cannot be known (see `CommitterHost.lostTrack`): re-run every live query. */
  invalidateAll(): void {
    for (const query of this.live.values()) this.markDirty(query);
    this.scheduleFlush();
  }

  oldestPublished(fallback: Timestamp): Timestamp {
    return Math.min(this.published, fallback);
  }

  close(): void {
    this.closed = true;
    for (const wake of this.flushWaiters.splice(0)) wake();
  }

  /** Finds or creates the live query for these arguments, holding a reference to it. */
  private async obtain(fn: RegisteredFunction, path: string, args: unknown, caller: Caller, identity: string): Promise<LiveQuery> {
    // A live query's arguments are checked once, when it is created, by its creator's rules:
    // server code may pass what a client may not (a session digest, which a client sending it
    // back must be refused). So a client never joins a query server code created, nor the reverse.
    const trust = caller.fromClient ? "client" : "server";
    const baseKey = `${path}\u0000${trust}\u0000${encodeValueToString(args as Value)}`;
    const identityKey = `${baseKey}\u0000${identity}`;
    for (;;) {
      const existing = this.live.get(baseKey) ?? this.live.get(identityKey);
      if (existing) {
        existing.refs += 1;
        return existing;
      }
      const pending = this.inflight.get(identityKey);
      if (pending) {
        await pending;
        continue; // now live under one of the two keys (or already released: run again)
      }
      const creation = this.create(fn, path, args, caller, baseKey, identityKey);
      this.inflight.set(identityKey, creation);
      try {
        const query = await creation;
        query.refs += 1;
        return query;
      } finally {
        this.inflight.delete(identityKey);
      }
    }
  }

  private async create(fn: RegisteredFunction, path: string, args: unknown, caller: Caller, baseKey: string, identityKey: string) {
    let ts = this.published;
    let unpin = this.engine.pinSnapshot(ts);
    try {
      // Storage failing the run (a dropped connection, a restart) is ridden out for up to
      // storageRetryMs, as a one-shot query does.
      const startedAt = performance.now();
      let run = await this.engine.executeQuery(fn, path, args, caller, ts);
      while (storageFailed(run) && (await this.engine.storageRetry.wait(startedAt))) {
        // Storage refuses `ts` for good (a fenced snapshot: catchUp.ts, `learnPastFence`): once
        // the engine has learned the commits since, run at the snapshot published since, as a
        // query created now would. At `ts` every attempt was refused until storageRetryMs ran
        // out (10 s by default), and only then did the query go live and run at a newer one.
        if (!run.outcome.ok && isSnapshotFenced(run.outcome.error)) {
          await this.engine.learnPastFence(run.outcome.error);
          const published = this.published;
          if (published > ts) {
            const unpinOlder = unpin;
            unpin = this.engine.pinSnapshot(published);
            unpinOlder();
            ts = published;
          }
        }
        run = await this.engine.executeQuery(fn, path, args, caller, ts);
      }
      const key = run.readAuth ? identityKey : baseKey;
      const raced = this.live.get(key);
      if (raced) return raced;
      const query = new LiveQuery(key, baseKey, fn, path, args, caller);
      query.update(run);
      // Commits since the snapshot were not offered to this query while it ran: check them now.
      if (this.engine.firstConflictSince(run.readSet, ts) !== null) {
        this.markDirty(query);
        this.scheduleFlush();
      }
      this.makeLive(query);
      // Still failing: its subscribers get the error now, as a one-shot caller would, and it
      // runs again until storage answers. Left as it was, it stayed failed for good: its read
      // set is empty or partial, so no commit would ever mark it dirty. Marked later, not now,
      // or `subscribe` would wait for a flush that storage keeps failing.
      if (storageFailed(run)) this.retryLater([query]);
      return query;
    } finally {
      unpin();
    }
  }

  /** Re-runs `queries` (those still live) in a flush shortly. */
  private retryLater(queries: LiveQuery[]): void {
    setTimeout(() => {
      for (const query of queries) if (this.live.get(query.key) === query) this.markDirty(query);
      this.scheduleFlush();
    }, STORAGE_RETRY_FLUSH_MS).unref?.();
  }

  private release(query: LiveQuery): void {
    query.refs -= 1;
    if (query.refs <= 0) this.unlive(query);
  }

  /** Adds `query` to the live set, its current run's read ranges to the index. */
  private makeLive(query: LiveQuery): void {
    query.order = ++this.madeLive;
    this.live.set(query.key, query);
    this.readRanges.set(query, query.run.readSet);
    if (this.live.size === 1) this.firstLive();
  }

  /** Takes `query` out of the live set (not a newer query under its key) and its ranges out of the index. */
  private unlive(query: LiveQuery): void {
    if (this.live.get(query.key) === query) this.live.delete(query.key);
    this.readRanges.delete(query);
  }

  /** Marks `query` for the next flush (an arrow: `onCommit` hands it to the index as is). */
  private readonly markDirty = (query: LiveQuery): void => {
    if (query.dirty) return;
    query.dirty = true;
    this.dirtyQueries.push(query);
  };

  private nextFlush(): Promise<void> {
    this.scheduleFlush();
    return new Promise((resolve) => this.flushWaiters.push(resolve));
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing) {
      this.scheduleFlush();
      return;
    }
    this.flushing = true;
    try {
      const ts = this.engine.latestTimestamp;
      // In the order they became live, as when flushes found them by walking `live`. A query
      // released since it was marked is still here: `rerun` skips it.
      const dirty = this.dirtyQueries.sort((a, b) => a.order - b.order);
      this.dirtyQueries = [];
      for (const query of dirty) query.dirty = false;
      const unpin = this.engine.pinSnapshot(ts);
      let changed: Notice[];
      const unavailable: LiveQuery[] = [];
      try {
        const reruns = await Promise.all(dirty.map((query) => this.rerun(query, ts, unavailable)));
        changed = reruns.flat();
      } finally {
        unpin();
      }
      // A query whose result is already a storage error (one created during an outage) claims
      // nothing at `ts`: it runs again shortly on its own, and does not hold the others back.
      // Held back by it, one query whose storage call always fails stopped every live query.
      const holding = unavailable.filter((query) => !storageFailed(query.run));
      if (holding.length > 0) {
        // Storage failed some re-runs (a dropped connection, a restart). Publishing `ts` now
        // would claim their old results are valid at it, so publish nothing: every query of
        // this flush runs again shortly, and the ones already updated are told as changed then
        // (all subscribers of a query a group moved into, which some of them already know).
        for (const { query } of changed) query.fingerprint = "";
        for (const query of [...dirty, ...changed.map((notice) => notice.query)]) this.markDirty(query);
        setTimeout(() => this.scheduleFlush(), STORAGE_RETRY_FLUSH_MS).unref?.();
        return;
      }
      // Published only once storage has made `ts` durable (Storage.whenDurable; engine.ts,
      // `onceDurable`): the re-runs above overlapped the sync. Then one macrotask more, so that
      // the mutations answered by the same sync have queued their answers, and each leaves
      // with the Transition that shows its write (transport/connection.ts, `offerTransition`).
      const durable = this.engine.storage.whenDurable?.(ts) ?? null;
      if (durable !== null) {
        await durable;
        await new Promise((resolve) => setImmediate(resolve));
      }
      // Marked later, not now: the end of this flush would start the next one at once.
      if (unavailable.length > 0) this.retryLater(unavailable);
      // Never backwards: `onCommit` may have published a newer commit while nothing was live.
      this.published = Math.max(this.published, ts);
      // One failing listener (a transport bug) must not starve the others or stall flushes.
      // A group moved into a query that changed in this same flush hears it with all the others.
      const toldAll = changed.some((notice) => notice.only !== undefined) ? new Set(changed.filter((notice) => notice.only === undefined).map((notice) => notice.query)) : null;
      for (const { query, only } of changed) {
        if (only !== undefined && toldAll!.has(query)) continue;
        // A moved subscriber may have left while other queries of this flush ran.
        const told = only?.filter((subscriber) => query.subscribers.has(subscriber)) ?? [...query.subscribers];
        for (const { listener } of told) this.notify(() => listener(query.run.outcome, ts));
      }
      const published = this.published;
      for (const listener of this.flushListeners) this.notify(() => listener(published));
      for (const wake of this.flushWaiters.splice(0)) wake();
      if (this.engine.latestTimestamp > ts || this.dirtyQueries.length > 0) this.scheduleFlush();
    } catch (error) {
      this.engine.logError("Re-running live queries failed", error);
      const stopped = storageStoppedBy(error);
      if (stopped !== undefined) {
        this.stopped = stopped;
        for (const wake of this.flushWaiters.splice(0)) wake(); // they find `stopped` and fail
      }
    } finally {
      this.flushing = false;
    }
  }

  private notify(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.engine.logError("A subscription listener threw", error);
    }
  }

  /** Re-runs one dirty query at `ts`; returns who must hear of a changed result. */
  private async rerun(query: LiveQuery, ts: Timestamp, unavailable: LiveQuery[]): Promise<Notice[]> {
    if (this.live.get(query.key) !== query) return [];
    const run = await this.engine.executeQuery(query.fn, query.path, query.args, query.caller, ts);
    if (!run.outcome.ok && isStorageFailure(run.outcome.error)) {
      // Refused at `ts` for good (a fenced snapshot): the retry's flush runs at a newer `latest`.
      void this.engine.learnPastFence(run.outcome.error);
      unavailable.push(query);
      return [];
    }
    if (this.engine.firstConflictSince(run.readSet, ts) !== null) this.markDirty(query);
    if (run.readAuth && query.key === query.baseKey) return this.splitByIdentity(query, run, ts, unavailable);
    const changed = query.update(run);
    // Released while it ran: it is out of the index, and must stay out.
    if (this.live.get(query.key) === query) this.readRanges.set(query, run.readSet);
    return changed ? [{ query }] : [];
  }

  /**
   * A shared query just read the caller's identity, so its result may differ per caller and
   * must no longer be shared: each group of its subscribers with the same identity moves to a
   * live query of its own, run as that identity (the run we have serves the group it ran as).
   *
   * The awaits come first and the moves after, with no await between them, because
   * subscribers come and go while the runs are awaited:
   * 1. While a group's run is awaited, the shared query stays live, so a new subscriber may
   *    join it, perhaps with an identity not run yet: runs go on until every identity among
   *    its subscribers at that moment has one. A subscriber that leaves meanwhile leaves the
   *    shared query, as it would any other, and is in no group.
   * 2. A run that storage failed leaves the shared query live and as it was: the flush runs it
   *    again shortly (`unavailable`).
   * 3. Then, at once: the shared query leaves the live set, its subscribers are grouped as they
   *    are now, and each group goes to its identity's key. A query may already be live there:
   *    one that read the identity when it was made and no longer does (a query keeps the key
   *    it was made under), or one whose creation began before the shared query was live. The
   *    group joins it rather than replacing it (whose subscribers would never hear of a
   *    change again), and hears its result if that differs from the one the group has.
   */
  private async splitByIdentity(shared: LiveQuery, run: QueryRun, ts: Timestamp, unavailable: LiveQuery[]): Promise<Notice[]> {
    const runs = new Map<string, QueryRun>([[identityOf(shared.caller), run]]);
    // A Set's iterator also visits what is added to it while it runs (and skips what is
    // deleted), so this one pass reaches the subscribers who join during its awaits.
    for (const subscriber of shared.subscribers) {
      if (runs.has(subscriber.identity)) continue;
      const own = await this.engine.executeQuery(shared.fn, shared.path, shared.args, subscriber.caller, ts);
      if (!own.outcome.ok && isStorageFailure(own.outcome.error)) {
        void this.engine.learnPastFence(own.outcome.error);
        unavailable.push(shared);
        return [];
      }
      runs.set(subscriber.identity, own);
    }
    this.unlive(shared);
    const groups = new Map<string, Subscriber[]>();
    for (const subscriber of shared.subscribers) {
      if (!groups.has(subscriber.identity)) groups.set(subscriber.identity, []);
      groups.get(subscriber.identity)!.push(subscriber);
    }
    // Each subscriber's reference moves with it. The shared query keeps the references of
    // callers still inside `subscribe`, which find it no longer live and release it there.
    shared.subscribers.clear();
    const notices: Notice[] = [];
    for (const [identity, members] of groups) {
      shared.refs -= members.length;
      const key = `${shared.baseKey}\u0000${identity}`;
      const raced = this.live.get(key);
      const query = raced ?? new LiveQuery(key, shared.baseKey, shared.fn, shared.path, shared.args, members[0]!.caller);
      query.refs += members.length;
      for (const subscriber of members) {
        subscriber.query = query;
        query.subscribers.add(subscriber);
      }
      const own = runs.get(identity)!;
      if (raced !== undefined) {
        // Its run may be older than `ts`: a query whose creation ran at an older snapshot and
        // ended during this flush, with commits since that it has yet to re-run for. The
        // flush is about to publish `ts`, so the group must not be handed that older result:
        // the split's run as the same identity at `ts` is as good as that re-run, and takes
        // its place (telling every subscriber whose result it changes).
        if (raced.run.ts < ts) {
          const changed = raced.update(own);
          this.readRanges.set(raced, own.readSet);
          if (this.engine.firstConflictSince(own.readSet, ts) !== null) this.markDirty(raced);
          if (changed) {
            notices.push({ query: raced });
            continue;
          }
        }
        if (raced.fingerprint !== shared.fingerprint) notices.push({ query: raced, only: members });
        continue;
      }
      if (this.engine.firstConflictSince(own.readSet, ts) !== null) this.markDirty(query);
      query.fingerprint = shared.fingerprint;
      const updated = query.update(own);
      this.makeLive(query);
      if (updated) notices.push({ query });
    }
    return notices;
  }
}

/**
 * What a failed run tells its subscribers: a WalkinError reaches clients with its code and data
 * (transport/errors.ts), so an error whose data changed under the same message is a new result.
 */
function errorFingerprint(error: Error): string {
  if (!isWalkinError(error)) return `error:${error.message}`;
  let data = "";
  try {
    if (error.data !== undefined) data = encodeValueToString(error.data);
  } catch {
    data = "?"; // not sendable: the transport leaves it out too
  }
  return `error:${error.code}:${JSON.stringify(error.message)}:${data}`;
}

/** Whether storage failed the run with nothing decided (it says nothing of the query's result). */
function storageFailed(run: QueryRun): boolean {
  return !run.outcome.ok && isStorageFailure(run.outcome.error);
}

/** A cache key for the caller: never the raw token. */
function identityOf(caller: Caller): string {
  if (caller.token) return `token:${createHash("sha256").update(caller.token).digest("base64url")}`;
  if (caller.identity) return `identity:${caller.identity.tokenIdentifier}`;
  return "anonymous";
}

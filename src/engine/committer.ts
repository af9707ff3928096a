/**
 * The one commit path, with group commit.
 *
 * Transactions that finish in the same turn of the event loop are committed together: the
 * committer waits one macrotask (`setImmediate`) so that every handler that is ready to commit
 * gets to ask, then takes them all in arrival order and hands them to `storage.commitBatch`.
 * Batches are strictly sequential.
 *
 * Conflicts are decided inside the storage's commit lock, by the planner below, in this order:
 *  1. The storage takes its commit lock and shows the planner every commit after the newest
 *     one this engine knew of (`host.latest`): commits by other engines sharing the database.
 *  2. Each waiting transaction is checked against every commit after its snapshot: the
 *     engine's commit log covers (readTs, host.latest], the storage's view covers
 *     (host.latest, view.latest], and the transactions accepted earlier in the batch follow.
 *     A snapshot older than either log remembers conflicts (the log cannot prove it clean).
 *  3. Accepted transactions take the timestamps after `view.latest`, in order, and the storage
 *     writes them atomically with one fsync before it releases the lock.
 * Because nothing can commit between the view and the write, timestamp order is commit order,
 * and every accepted transaction's reads are proven unchanged as of its own timestamp.
 *
 * Outcomes are exact. A refused transaction takes no timestamp and is re-run by the engine.
 * When storage cannot tell whether the batch landed (`CommitOutcomeUnknownError`), the
 * committer asks `findCommits` by the commit IDs before it answers anyone, so a mutation is
 * never applied twice and never reported committed when it was not.
 */
// The real timers, not the globals: a test that turns on fake timers (vi.useFakeTimers, as
// suites written for convex-test do) would otherwise stall commits and flushes for good.
import { setImmediate, setTimeout } from "node:timers";
import { walkinError } from "../values/index.js";
import { isCommitOutcomeUnknown, isRepeatedReceipt, storageStoppedBy, type Commit, type CommitLogView, type Storage, type Timestamp } from "../storage/types.js";
import type { CommitLog, CommitRecord, Conflict } from "./commitLog.js";
import type { ReadSet, WriteSet } from "./readSet.js";
import type { Transaction, TransactionWrites } from "./transaction.js";
import { decodeWriteSet, encodeWriteSet, tablesOfWriteSet } from "./writeSetCodec.js";
import { isStorageFailure, markStorageFailure } from "./storageGuard.js";

export type CommitResult = { ok: true; ts: Timestamp } | { ok: false; conflict: Conflict };

/** Upper bound on one batch, so one storage write stays short. */
const MAX_BATCH = 256;

/** Attempts at a batch whose storage call failed before its planner ran (nothing was written). */
const UNPLANNED_RETRIES = 4;

/** Commits read per `commitsSince` call when catching up. */
const REFRESH_PAGE = 1_000;

/** How long an unknown commit outcome is chased before the mutations waiting on it fail. */
const RESOLVE_ATTEMPTS = 12;

interface Waiting {
  txn: Transaction;
  writes: TransactionWrites;
  id: string;
  log: Uint8Array;
  resolve: (result: CommitResult) => void;
  reject: (error: unknown) => void;
}

/** What the planner decided inside the commit lock; applied once the storage call is over. */
interface Plan {
  view: CommitLogView;
  learned: CommitRecord[];
  accepted: Array<{ item: Waiting; ts: Timestamp }>;
  refused: Array<{ item: Waiting; conflict: Conflict }>;
}

export interface CommitterHost {
  readonly storage: Storage;
  readonly commitLog: CommitLog;
  /** The newest commit this engine knows of: every commit up to it is in `commitLog` (or trimmed). */
  latest: Timestamp;
  /**
   * Called for each commit, this engine's or learned from storage, in timestamp order, once
   * durable; with what it wrote when it is this engine's.
   */
  committed(record: CommitRecord, tables: Set<string>, own: boolean, writes?: TransactionWrites): void;
  /** Commits in (`latest`, `through`] happened but cannot be known: every live result is suspect. */
  lostTrack(through: Timestamp): void;
  /**
   * How many mutations are running now (their handler, or waiting for their commit): once as
   * many transactions wait here, no other can join the batch (see `schedule`).
   */
  readonly mutationsRunning?: number;
  /**
   * Whether a commit learned from another engine obliges this one to do something before its
   * own next commit lands (it built an index this engine lacks: indexBuilds.ts, 2b). A batch
   * whose plan learns such a commit is refused whole, and runs again after `commitGate`.
   */
  holdsCommits?(record: CommitRecord): boolean;
  /**
   * What must be done before the next batch goes to storage, or null (the common case: no
   * wait). Read before each batch; a rejection fails that batch with its error.
   */
  readonly commitGate?: Promise<void> | null;
  /**
   * Whether the engine would have work to do while a batch of these writes is made durable
   * (live queries they touch, or others waiting, to re-run): then a storage with `whenDurable`
   * is asked to sync in the background (`CommitOptions.durableLater`), else it syncs before
   * `commitBatch` resolves. Asked before the planner runs, with every write of the batch: the
   * planner may refuse some, and a background sync with nothing to do meanwhile is only slower,
   * never wrong (the answers wait for `whenDurable` either way).
   *
   * Why not whenever a query is live: a sync on the thread pool costs the waiting caller two
   * thread wake-ups on top of the sync (the pool thread's, then the main thread's when it
   * ends), which only pays when the main thread has re-runs to do meanwhile. Sequential inserts
   * that touched none of 10,000 live queries (case (l) under FULL) waited for the pool on every
   * commit and ran at 0.29–0.36 of the floor, where the same inserts with no live query, synced
   * on the main thread (case (a)), ran at 0.50–0.56.
   */
  workWhileSyncing?(writeSets: WriteSet[]): boolean;
  /** Called once this engine's commits through `ts` are durable (storages with `whenDurable` only). */
  durable?(ts: Timestamp): void;
}

export class GroupCommitter {
  private waiting: Waiting[] = [];
  private refreshes: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  private scheduled = false;
  private running: Promise<void> | null = null;
  private readonly idPrefix = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  private counter = 0;

  constructor(private readonly host: CommitterHost) {}

  commit(txn: Transaction): Promise<CommitResult> {
    if (!txn.hasWrites) return Promise.resolve({ ok: true, ts: txn.readTs });
    // Built before the lock is taken: nothing here depends on the timestamp.
    const writes = txn.buildWrites();
    const id = `${this.idPrefix}-${++this.counter}`;
    const log = encodeWriteSet(writes.writeSet);
    return new Promise((resolve, reject) => {
      this.waiting.push({ txn, writes, id, log, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once everything asked so far has been committed or refused. */
  async idle(): Promise<void> {
    while (this.running || this.scheduled || this.waiting.length > 0 || this.refreshes.length > 0) {
      await (this.running ?? new Promise((resolve) => setImmediate(resolve)));
    }
  }

  /**
   * Learns of the commits other engines sharing the database made since this one last looked
   * (`storage.commitsSince`). It runs in the commit queue, between batches: a view read while a
   * batch was in flight could list this engine's own commits as someone else's.
   */
  refresh(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.refreshes.push({ resolve, reject });
      this.schedule();
    });
  }

  /**
   * Starts the next batch after one macrotask, so that handlers finishing in the same turn of
   * the event loop join it, or at once (a microtask) when every running mutation is already
   * waiting here: then nothing else could join, and the turn would only add latency (about 4
   * µs of a 55 µs one-document insert, measured by bench/engine case (a), sequential). A
   * mutation that starts later simply goes into the next batch.
   */
  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    const running = this.host.mutationsRunning;
    const nobodyElse = running !== undefined && this.refreshes.length === 0 && this.waiting.length >= running;
    (nobodyElse ? queueMicrotask : setImmediate)(() => {
      this.scheduled = false;
      this.running = this.drain().finally(() => {
        this.running = null;
        if (this.waiting.length > 0 || this.refreshes.length > 0) this.schedule();
      });
    });
  }

  private async drain(): Promise<void> {
    while (this.waiting.length > 0 || this.refreshes.length > 0) {
      if (this.refreshes.length > 0) await this.runRefresh(this.refreshes.splice(0));
      if (this.waiting.length > 0) {
        const gate = this.host.commitGate;
        if (gate != null && !(await this.passGate(gate))) continue;
        await this.commitBatch(this.waiting.splice(0, MAX_BATCH));
      }
    }
  }

  /** Waits for `commitGate`; if it failed, fails the waiting transactions with its error (nothing was written). */
  private async passGate(gate: Promise<void>): Promise<boolean> {
    try {
      await gate;
      return true;
    } catch (error) {
      const failure = walkinError("INTERNAL", `Storage ${this.host.storage.name} failed to commit: ${messageOf(error)}`, undefined, error);
      // Nothing was written: the engine may run them again once storage is back.
      if (isStorageFailure(error)) markStorageFailure(failure);
      for (const item of this.waiting.splice(0, MAX_BATCH)) item.reject(failure);
      return false;
    }
  }

  private async runRefresh(asked: Array<{ resolve: () => void; reject: (error: unknown) => void }>): Promise<void> {
    try {
      for (;;) {
        const view = await this.host.storage.commitsSince(this.host.latest, REFRESH_PAGE);
        this.apply(this.learn(view), view);
        if (view.commits.length < REFRESH_PAGE) break;
      }
      for (const { resolve } of asked) resolve();
    } catch (error) {
      for (const { reject } of asked) reject(error);
    }
  }

  private async commitBatch(batch: Waiting[]): Promise<void> {
    const { host } = this;
    let plan: Plan | undefined;
    // Only a storage that can say when a commit is durable may make it durable later.
    const durableLater = host.storage.whenDurable !== undefined && host.workWhileSyncing?.(batch.map((item) => item.writes.writeSet)) === true;
    for (let attempt = 0; ; attempt++) {
      // This attempt's own: a view an earlier attempt's planner refused says nothing about how
      // this one ended (it may have landed, or its outcome be unknown and need findCommits).
      let refusedView: unknown;
      // An attempt given up on (it timed out before its planner ran) may still reach the lock
      // later: its planner must then decide nothing, or the retry below would apply the batch
      // a second time. The planner runs synchronously, so this flag cannot race with it.
      let abandoned = false;
      try {
        await host.storage.commitBatch(host.latest, (view) => {
          if (abandoned) throw new Error("this commit attempt was given up after a timeout; its batch was retried");
          try {
            plan = this.plan(batch, view);
          } catch (error) {
            refusedView = error; // storage broke its contract: trying again will not help
            throw error;
          }
          return plan.accepted.map(({ item, ts }) => toCommit(item, ts));
        }, durableLater ? { durableLater } : undefined);
        break;
      } catch (error) {
        // The planner never ran, so storage never held the lock for this batch: nothing was
        // decided or written (a dropped connection, a timeout on the way in). Try again. A
        // planner that ran and refused the view is not retried: storage broke its contract.
        if (plan === undefined) abandoned = true;
        // A storage that stopped (a failed log sync) refuses every commit until a restart.
        const stopped = storageStoppedBy(error) !== undefined;
        if (plan === undefined && refusedView === undefined && !stopped && attempt < UNPLANNED_RETRIES) {
          await new Promise((resolve) => setTimeout(resolve, 20 * 2 ** attempt));
          continue;
        }
        await this.settleFailed(batch, plan, refusedView ?? error, refusedView === undefined && !stopped);
        return;
      }
    }
    if (plan === undefined) {
      const error = walkinError("INTERNAL", `Storage ${host.storage.name} finished commitBatch without calling its planner.`);
      for (const item of batch) item.reject(error);
      return;
    }
    this.settle(plan, true, durableLater);
  }

  /** Decides the batch against what storage shows (runs inside the commit lock; no side effects). */
  private plan(batch: Waiting[], view: CommitLogView): Plan {
    const { host } = this;
    const learned = this.learn(view);
    const plan: Plan = { view, learned, accepted: [], refused: [] };
    const learnedWrites = learned.map((record) => record.writes);
    // Another engine built an index this one lacks since this one last looked: nothing in the
    // batch lands before this engine has marked it (indexBuilds.ts, 2b). Runs again after the
    // gate, like after a conflict. Other engines' commits cost one lookup each; own ones nothing.
    const held = learned.length > 0 && host.holdsCommits !== undefined && learned.some((record) => host.holdsCommits!(record));
    // Every transaction is refused on a gap in the log (the log cannot prove it clean), or held.
    const refuseAll: Conflict | null = view.trimmedThrough > host.latest
      ? { ts: view.trimmedThrough, indexId: null }
      : held ? { ts: view.latest, indexId: null } : null;
    // The keys written by the transactions accepted so far in this batch, all in one write set:
    // each later one is checked against them with one lookup per index, not one per commit.
    const acceptedWrites: WriteSet = new Map();
    const accepted = [acceptedWrites];
    let ts = view.latest;
    const last = batch[batch.length - 1];
    for (const item of batch) {
      const readSet = item.txn.readSet;
      const conflict: Conflict | null = refuseAll ??
        (host.commitLog.firstConflict(readSet, item.txn.readTs) ??
          firstOverlap(readSet, learnedWrites, view.latest) ??
          firstOverlap(readSet, accepted, view.latest));
      if (conflict !== null) {
        plan.refused.push({ item, conflict });
        continue;
      }
      ts += 1;
      plan.accepted.push({ item, ts });
      // The last transaction's keys would be checked against nothing: a batch of one (every
      // sequential mutation) merges no keys at all.
      if (item === last) break;
      for (const [indexId, keys] of item.writes.writeSet) {
        const merged = acceptedWrites.get(indexId);
        if (merged === undefined) acceptedWrites.set(indexId, [...keys]);
        else for (const key of keys) merged.push(key);
      }
    }
    return plan;
  }

  /**
   * The commits in `view` this engine has not seen, decoded and checked. Throws (so the storage
   * writes nothing) if the storage's answer breaks its contract.
   */
  private learn(view: CommitLogView): CommitRecord[] {
    const { host } = this;
    const name = host.storage.name;
    if (view.latest < host.latest) {
      throw walkinError("INTERNAL", `Storage ${name} says its latest commit is ${view.latest}, but this engine already saw ` +
        `${host.latest}: timestamps went backwards. Was the database replaced or restored from a backup while running?`);
    }
    const learned: CommitRecord[] = [];
    let previous = host.latest;
    for (const commit of view.commits) {
      if (commit.ts <= host.latest) continue;
      if (commit.ts <= previous || commit.ts > view.latest) {
        throw walkinError("INTERNAL", `Storage ${name} listed commit ${commit.ts} out of order (after ${previous}, latest ` +
          `${view.latest}); commits must come in increasing timestamp order.`);
      }
      learned.push({ ts: commit.ts, writes: decodeWriteSet(commit.log) });
      previous = commit.ts;
    }
    return learned;
  }

  /** Applies what a plan learned about other engines' commits, then answers its transactions. */
  private settle(plan: Plan, landed: boolean, durableLater = false): void {
    const { host } = this;
    this.apply(plan.learned, plan.view);
    if (landed) {
      for (const { item, ts } of plan.accepted) {
        host.commitLog.append({ ts, writes: item.writes.writeSet });
        host.latest = ts;
        host.committed({ ts, writes: item.writes.writeSet }, item.writes.tables, true, item.writes);
      }
      // Durable now, or (`durableLater`) once storage says so: answers wait for that where
      // the batch leaves the engine (engine.ts, `onceDurable`); a failure reaches them there.
      const last = plan.accepted.at(-1);
      if (last !== undefined && host.storage.whenDurable) {
        const durable = durableLater ? host.storage.whenDurable(last.ts) : null;
        if (durable === null) host.durable?.(last.ts);
        else durable.then(() => host.durable?.(last.ts), () => {});
      }
    }
    for (const { item, conflict } of plan.refused) item.resolve({ ok: false, conflict });
    for (const { item, ts } of plan.accepted) {
      // Not landed (the outcome was unknown and storage says it did not land): never applied,
      // so running it again is safe. It re-runs like a conflict.
      item.resolve(landed ? { ok: true, ts } : { ok: false, conflict: { ts: plan.view.latest, indexId: null } });
    }
  }

  private apply(learned: CommitRecord[], view?: CommitLogView): void {
    const { host } = this;
    if (view && view.latest > host.latest && view.trimmedThrough > host.latest) {
      host.commitLog.trim(view.trimmedThrough);
      host.lostTrack(view.trimmedThrough);
    }
    for (const record of learned) {
      if (record.ts <= host.latest) continue;
      host.commitLog.append(record);
      host.latest = record.ts;
      host.committed(record, tablesOfWriteSet(record.writes), false);
    }
    // Every commit up to view.latest is now either in the log or behind its trim mark.
    if (view && view.latest > host.latest) host.latest = view.latest;
  }

  /** The storage call threw: find out what happened before answering anyone. */
  private async settleFailed(batch: Waiting[], plan: Plan | undefined, error: unknown, retryable: boolean): Promise<void> {
    const name = this.host.storage.name;
    if (plan !== undefined && plan.accepted.length > 0 && isRepeatedReceipt(error)) {
      // Storage refused a receipt it already holds, writing nothing: a request re-sent though
      // its client called it a first send (clientRequests.ts, "First sends", c). Each of the
      // batch's mutations runs again at once, like after a conflict, and the re-sent one then
      // finds its receipt: no storage-outage wait for the others in its batch.
      this.settle(plan, false);
      return;
    }
    if (plan === undefined || plan.accepted.length === 0 || !isCommitOutcomeUnknown(error)) {
      // Nothing was written: what the planner learned is still true (those commits are
      // durable); the transactions it accepted fail with the storage's error.
      if (plan) this.settle({ ...plan, accepted: [] }, false);
      // Nothing was written, so the engine may run these mutations again once storage is back.
      const failure = walkinError("INTERNAL", `Storage ${name} failed to commit: ${messageOf(error)}`, undefined, error);
      if (retryable) markStorageFailure(failure);
      for (const { item } of plan?.accepted ?? batch.map((item) => ({ item }))) item.reject(failure);
      return;
    }
    const ids = plan.accepted.map(({ item }) => item.id);
    let found: Map<string, Timestamp> | undefined;
    // A storage that stopped (a failed log sync) answers nothing until a restart: asking again
    // would only hold the callers for the whole backoff (about 15 s).
    let stopped = storageStoppedBy(error);
    for (let attempt = 0; attempt < RESOLVE_ATTEMPTS && found === undefined && stopped === undefined; attempt++) {
      try {
        found = await this.host.storage.findCommits(ids);
      } catch (lookupError) {
        stopped = storageStoppedBy(lookupError);
        if (stopped === undefined) await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 2_000)));
      }
    }
    // "Not found" is final only while the log still holds the batch's timestamps (storage
    // forgets the IDs of trimmed commits). This engine's own trims never reach them: its
    // snapshot pins hold its floor below every commit it is deciding. But another engine on the
    // same database trims at its own floor, which may be past this batch by now (two engines on
    // one SQLite file, as in a hot reload), and its commits since may have moved the log on:
    //  1. the batch lands at T; the call fails with an unknown outcome;
    //  2. the other engine commits and trims its log through its oldest snapshot, >= T;
    //  3. findCommits finds none of the batch's IDs.
    // Taken as "not landed", each mutation ran again and was applied twice. So after a "not
    // found", ask how far the log was trimmed: a trim mark is set in the transaction that
    // deletes the rows, and it only rises, so reading it after findCommits tells whether that
    // answer could have missed the batch.
    // (The batch lands whole: had it landed, its last commit would be in a log trimmed below it.)
    if (found !== undefined && found.size === 0 && !(await this.logStillHolds(plan.accepted[plan.accepted.length - 1]!.ts))) found = undefined;
    if (found === undefined) {
      // Still unknown: answer "failed" without claiming either way. The next batch's view will
      // list these commits if they landed, and the engine learns them as it would another's.
      if (plan) this.settle({ ...plan, accepted: [] }, false);
      const failure =
        stopped !== undefined
          ? walkinError("INTERNAL", `Storage ${name} stopped while committing, so whether the commit landed is not known ` +
              `until it restarts: ${stopped.message}`, undefined, error)
          : walkinError("INTERNAL", `Storage ${name} lost the connection while committing, and whether the ` +
              `commit landed could not be found out; it may or may not have been applied.`, undefined, error);
      for (const { item } of plan.accepted) item.reject(failure);
      return;
    }
    const landed = found.size > 0;
    // A batch lands whole, so one ID found means all landed. IDs missing beside found ones can
    // be the batch's first commits, trimmed from the log since by another engine (as above):
    // if every missing one comes before every found one and the log no longer holds the last
    // of them, they landed at their planned timestamps. Otherwise storage broke atomicity.
    if (landed && found.size < plan.accepted.length) {
      const missing = plan.accepted.filter(({ item }) => !found.has(item.id));
      const lastMissing = Math.max(...missing.map(({ ts }) => ts));
      if (lastMissing < Math.min(...found.values()) && !(await this.logStillHolds(lastMissing))) {
        for (const { item, ts } of missing) found.set(item.id, ts);
      }
    }
    const wrong = plan.accepted.find(({ item, ts }) => (found.get(item.id) ?? ts) !== ts || found.has(item.id) !== landed);
    if (wrong !== undefined) {
      const failure = walkinError("INTERNAL", `Storage ${name} reports a batch that landed in part or at other timestamps; ` +
        `commitBatch must be atomic.`);
      // The commits the planner learned are still true, and the mutations it refused run again
      // like after any conflict: left out here, their callers would wait forever.
      this.settle({ ...plan, accepted: [] }, false);
      for (const { item } of plan.accepted) item.reject(failure);
      return;
    }
    this.settle(plan, landed);
  }

  /** Whether the log still holds the commit at `ts` if it landed (false when that cannot be told). */
  private async logStillHolds(ts: Timestamp): Promise<boolean> {
    for (let attempt = 0; attempt < RESOLVE_ATTEMPTS; attempt++) {
      try {
        return (await this.host.storage.commitsSince(ts - 1, 1)).trimmedThrough < ts;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 2_000)));
      }
    }
    return false;
  }
}

function toCommit(item: Waiting, ts: Timestamp): Commit {
  const { documents, indexes, receipts } = item.writes;
  return { ts, id: item.id, documents, indexes, log: item.log, receipts };
}

function firstOverlap(readSet: ReadSet, writeSets: WriteSet[], ts: Timestamp): Conflict | null {
  for (const writes of writeSets) {
    const overlap = readSet.firstOverlap(writes);
    if (overlap !== null) return { ts, ...overlap };
  }
  return null;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

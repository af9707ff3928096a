/**
 * How the engine calls its storage: every call outside the handlers' determinism sandbox, with
 * a deadline, and with errors that name the storage and the operation.
 *
 * - **Outside the sandbox.** Handlers await storage reads, so without this a driver would run
 *   with the handler's frozen `Date.now` and refused `fetch`: its timeouts would never fire and
 *   a networked driver could not connect.
 * - **Deadlines.** A storage that hangs fails the call after `timeoutMs` instead of holding a
 *   transaction (and its snapshot pin) forever. A commit that times out may still land, so its
 *   error is `CommitOutcomeUnknownError`: the committer then asks storage what happened.
 * - **Clear errors.** "Storage sqlite:/data/app.sqlite: scan failed: …", with the driver's
 *   error kept as `cause`; a clock that goes backwards is reported as such.
 *
 * One watchdog timer per storage checks the deadlines, rather than one timer per call: reads
 * are the engine's hottest path.
 */
// The real interval, not the global: a storage call's time limit is real time, and fake timers
// advanced while a call is in flight (vi.runAllTimers) would expire it at once.
import { clearInterval, setInterval } from "node:timers";
import { walkinError } from "../values/index.js";
import {
  CommitOutcomeUnknownError,
  isCommitOutcomeUnknown,
  isRepeatedReceipt,
  markedCause,
  storageStoppedBy,
  RepeatedReceiptError,
  type CommitBatchResult,
  type CommitLogView,
  type CommitOptions,
  type CommitPlanner,
  type DocumentVersion,
  type IndexEntry,
  type IndexVersion,
  type PruneReport,
  type ScanRequest,
  type Storage,
  type StoredReceipt,
  type Timestamp,
  type ReclaimGuard,
} from "../storage/types.js";
import { CallList, type Listed } from "./callList.js";
import { outsideSandbox } from "./determinism.js";

export const DEFAULT_STORAGE_TIMEOUT_MS = 30_000;

const STORAGE_FAILURE = Symbol.for("walkin.engine.storageFailure");

/**
 * Marks `error` as a storage call that failed with nothing written (a read, or a commit that
 * storage promises did not land): safe to try again once storage is back.
 */
export function markStorageFailure<E extends Error>(error: E): E {
  (error as unknown as Record<symbol, boolean>)[STORAGE_FAILURE] = true;
  return error;
}

/** Whether `error` (or its cause) is a storage failure that left nothing written. */
export function isStorageFailure(error: unknown): boolean {
  return markedCause(error, STORAGE_FAILURE) !== undefined;
}

/**
 * A call the watchdog watches: data only, no closure of its own (one is made per storage call,
 * reads included); `expire` words its error when the deadline passes. It is its own link in
 * the list of calls in flight (`callList.ts` says why not a Set).
 */
interface InFlight extends Listed {
  deadline: number;
  operation: string;
  timeoutMs: number;
  onTimeout: ((message: string) => Error) | undefined;
  reject: (error: unknown) => void;
}

interface CallOptions {
  timeoutMs?: number;
  onTimeout?: (message: string) => Error;
}

const NO_OPTIONS: CallOptions = {};
/** A commit that timed out may still land: its outcome is unknown, not failed. */
const COMMIT_OPTIONS: CallOptions = { onTimeout: (message) => new CommitOutcomeUnknownError(message) };
/** A sweep walks all history in small steps: it may rightly take longer than any read. */
const NO_DEADLINE: CallOptions = { timeoutMs: Infinity };

/** Wraps `storage` for the engine (see the module comment). Closing it closes `storage`. */
export function guardStorage(storage: Storage, options: { timeoutMs?: number | undefined } = {}): Storage {
  return new GuardedStorage(storage, options.timeoutMs ?? DEFAULT_STORAGE_TIMEOUT_MS);
}

class GuardedStorage implements Storage {
  readonly name: string;
  private readonly inFlight = new CallList<InFlight>();
  private watchdog: NodeJS.Timeout | undefined;
  private latestSeen = 0;

  constructor(
    private readonly inner: Storage,
    private readonly timeoutMs: number,
  ) {
    if (!(timeoutMs > 0)) throw new RangeError(`storageTimeoutMs must be a positive number of milliseconds, got ${timeoutMs}.`);
    this.name = inner.name;
    if (inner.othersCommitMark) this.othersCommitMark = () => inner.othersCommitMark!();
    if (inner.whenDurable) this.whenDurable = (ts) => inner.whenDurable!(ts);
    if (inner.currentTime) this.currentTime = () => this.call("currentTime", () => inner.currentTime!());
  }

  async latestTimestamp(): Promise<Timestamp> {
    const latest = await this.call("latestTimestamp", () => this.inner.latestTimestamp());
    if (!Number.isSafeInteger(latest) || latest < this.latestSeen) {
      throw walkinError("INTERNAL", `Storage ${this.name}: latestTimestamp returned ${latest} after ${this.latestSeen}: ` +
        `timestamps went backwards (was the database replaced or restored while running?).`);
    }
    this.latestSeen = latest;
    return latest;
  }

  getDocument(id: string, readTs: Timestamp): Promise<DocumentVersion | null> {
    return this.call("getDocument", () => this.inner.getDocument(id, readTs));
  }

  scan(request: ScanRequest): Promise<IndexEntry[]> {
    return this.call("scan", () => this.inner.scan(request));
  }

  scanVersions(request: ScanRequest): Promise<IndexVersion[]> {
    return this.call("scanVersions", () => this.inner.scanVersions(request));
  }

  /** Forwarded as is: no deadline (a sync takes what the disk takes) and nothing to name. */
  whenDurable?: (ts: Timestamp) => Promise<void> | null;

  commitBatch(since: Timestamp, plan: CommitPlanner, options?: CommitOptions): Promise<CommitBatchResult> {
    return this.call("commitBatch", () => this.inner.commitBatch(since, plan, options), COMMIT_OPTIONS);
  }

  commitsSince(since: Timestamp, limit: number): Promise<CommitLogView> {
    return this.call("commitsSince", () => this.inner.commitsSince(since, limit));
  }

  findCommits(ids: readonly string[]): Promise<Map<string, Timestamp>> {
    return this.call("findCommits", () => this.inner.findCommits(ids));
  }

  dropIndex(indexId: string): Promise<void> {
    return this.call("dropIndex", () => this.inner.dropIndex(indexId));
  }

  reclaimIndex(indexId: string, guard: ReclaimGuard): Promise<boolean> {
    return this.call("reclaimIndex", () => this.inner.reclaimIndex(indexId, guard));
  }

  pruneHistory(ts: Timestamp): Promise<void | PruneReport> {
    return this.call("pruneHistory", () => this.inner.pruneHistory(ts), NO_DEADLINE);
  }

  /** `Storage.othersCommitMark`, passed through when the storage has it (synchronous, no I/O to time out). */
  readonly othersCommitMark?: () => number;

  /** `Storage.currentTime`, passed through (with a deadline) when the storage has it. */
  readonly currentTime?: () => Promise<number>;

  raiseReadFloor(ts: Timestamp): void {
    // Synchronous bookkeeping, no I/O: nothing to time out.
    this.inner.raiseReadFloor?.(ts);
  }

  getMeta(key: string): Promise<string | null> {
    return this.call("getMeta", () => this.inner.getMeta(key));
  }

  setMeta(key: string, value: string): Promise<void> {
    return this.call("setMeta", () => this.inner.setMeta(key, value));
  }

  getReceipt(key: string): Promise<StoredReceipt | null> {
    return this.call("getReceipt", () => this.inner.getReceipt(key));
  }

  pruneReceipts(writtenBefore: number, limit: number): Promise<number> {
    return this.call("pruneReceipts", () => this.inner.pruneReceipts(writtenBefore, limit));
  }

  async close(): Promise<void> {
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    await outsideSandbox(() => this.inner.close());
  }

  private call<T>(operation: string, run: () => Promise<T>, options: CallOptions = NO_OPTIONS): Promise<T> {
    return outsideSandbox(
      () =>
        new Promise<T>((resolve, reject) => {
          const timeoutMs = options.timeoutMs ?? this.timeoutMs;
          const entry: InFlight = { deadline: Date.now() + timeoutMs, operation, timeoutMs, onTimeout: options.onTimeout, reject, prev: null, next: null, listed: false };
          if (Number.isFinite(timeoutMs)) this.track(entry);
          let pending: Promise<T>;
          try {
            pending = run();
          } catch (error) {
            pending = Promise.reject(error);
          }
          pending.then(
            (value) => {
              this.inFlight.remove(entry);
              resolve(value);
            },
            (error: unknown) => {
              this.inFlight.remove(entry);
              reject(this.describe(operation, error));
            },
          );
        }),
    );
  }

  private describe(operation: string, error: unknown): Error {
    const message = `Storage ${this.name}: ${operation} failed: ${error instanceof Error ? error.message : String(error)}`;
    if (isCommitOutcomeUnknown(error)) return new CommitOutcomeUnknownError(message, { cause: error });
    // Nothing written, but no outage: the committer re-runs the batch at once (committer.ts).
    if (isRepeatedReceipt(error)) return new RepeatedReceiptError(message, { cause: error });
    // Stopped until a restart (a failed log sync): trying again cannot help, so not marked.
    if (storageStoppedBy(error)) return walkinError("INTERNAL", message, undefined, error);
    return markStorageFailure(walkinError("INTERNAL", message, undefined, error));
  }

  private expire({ operation, timeoutMs, onTimeout, reject }: InFlight): void {
    const message = `Storage ${this.name}: ${operation} did not finish within ${timeoutMs} ms.`;
    reject(onTimeout?.(message) ?? markStorageFailure(walkinError("INTERNAL", message)));
  }

  private track(entry: InFlight): void {
    this.inFlight.add(entry);
    if (this.watchdog !== undefined) return;
    const every = Math.max(5, Math.min(1_000, this.timeoutMs / 4));
    this.watchdog = setInterval(() => {
      const now = Date.now();
      for (const call of this.inFlight.removeWhere((call) => call.deadline <= now)) this.expire(call);
      if (this.inFlight.size === 0) {
        clearInterval(this.watchdog);
        this.watchdog = undefined;
      }
    }, every);
    this.watchdog.unref?.();
  }
}

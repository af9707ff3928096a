/**
 * `withLatency`: a storage that answers like one across a network. Every call waits before it
 * reaches the wrapped storage, and a commit also waits after it landed before its caller hears
 * of it: the window in which other readers already see a commit its writer does not know has
 * landed, which a networked database always has and an in-process SQLite never does.
 *
 * For tests: run the engine (or a storage's own conformance suite) at a real database's
 * latency, so that nothing can be correct only because storage answers at once.
 */
// The real timer, not the global: the network's delay is real time, and a test that turns on
// fake timers (vi.useFakeTimers, as suites written for convex-test do) would stall every call.
import { setTimeout } from "node:timers";
import type { CommitBatchResult, CommitLogView, CommitOptions, CommitPlanner, DocumentVersion, IndexEntry, IndexVersion, PruneReport, ReclaimGuard, ScanRequest, Storage, StoredReceipt, Timestamp } from "./types.js";

/** A delay in milliseconds: fixed, or `[min, max]` drawn uniformly for each call. */
export type Delay = number | readonly [number, number];

export interface LatencyOptions {
  /** Before each read (documents, scans, the clock, the log, metadata, receipts). Default `[0, 3]`. */
  read?: Delay;
  /** Each commit: half before it reaches storage, half after it landed. Default `4`. */
  commit?: Delay;
  /** The random source for jitter (default `Math.random`); seed it to replay a run. */
  random?: () => number;
}

/**
 * Wraps `storage` so that every call takes time.
 *
 * @example
 * import { openSqliteStorage } from "walkin/storage/sqlite";
 * import { withLatency } from "walkin/storage";
 * const storage = withLatency(await openSqliteStorage({ filename: ":memory:" }), { read: [0, 3], commit: 4 });
 */
export function withLatency(storage: Storage, options: LatencyOptions = {}): Storage {
  return new LatencyStorage(storage, options.read ?? [0, 3], options.commit ?? 4, options.random ?? Math.random);
}

class LatencyStorage implements Storage {
  readonly name: string;

  constructor(
    private readonly inner: Storage,
    private readonly read: Delay,
    private readonly commit: Delay,
    private readonly random: () => number,
  ) {
    this.name = `${inner.name} (with latency)`;
    if (inner.whenDurable) this.whenDurable = (ts) => inner.whenDurable!(ts);
  }

  whenDurable?: (ts: Timestamp) => Promise<void> | null;

  private wait(delay: Delay, share = 1): Promise<void> {
    const ms = (typeof delay === "number" ? delay : delay[0] + (delay[1] - delay[0]) * this.random()) * share;
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  private async afterRead<T>(call: () => Promise<T>): Promise<T> {
    await this.wait(this.read);
    return call();
  }

  latestTimestamp(): Promise<Timestamp> {
    return this.afterRead(() => this.inner.latestTimestamp());
  }

  getDocument(id: string, readTs: Timestamp): Promise<DocumentVersion | null> {
    return this.afterRead(() => this.inner.getDocument(id, readTs));
  }

  scan(request: ScanRequest): Promise<IndexEntry[]> {
    return this.afterRead(() => this.inner.scan(request));
  }

  scanVersions(request: ScanRequest): Promise<IndexVersion[]> {
    return this.afterRead(() => this.inner.scanVersions(request));
  }

  async commitBatch(since: Timestamp, plan: CommitPlanner, options?: CommitOptions): Promise<CommitBatchResult> {
    await this.wait(this.commit, 0.5);
    const result = await this.inner.commitBatch(since, plan, options);
    await this.wait(this.commit, 0.5);
    return result;
  }

  commitsSince(since: Timestamp, limit: number): Promise<CommitLogView> {
    return this.afterRead(() => this.inner.commitsSince(since, limit));
  }

  findCommits(ids: readonly string[]): Promise<Map<string, Timestamp>> {
    return this.afterRead(() => this.inner.findCommits(ids));
  }

  dropIndex(indexId: string): Promise<void> {
    return this.afterRead(() => this.inner.dropIndex(indexId));
  }

  reclaimIndex(indexId: string, guard: ReclaimGuard): Promise<boolean> {
    return this.afterRead(() => this.inner.reclaimIndex(indexId, guard));
  }

  pruneHistory(ts: Timestamp): Promise<void | PruneReport> {
    return this.afterRead(() => this.inner.pruneHistory(ts));
  }

  raiseReadFloor(ts: Timestamp): void {
    // A promise about later reads, not a call across the network: it holds at once.
    this.inner.raiseReadFloor?.(ts);
  }

  getMeta(key: string): Promise<string | null> {
    return this.afterRead(() => this.inner.getMeta(key));
  }

  setMeta(key: string, value: string): Promise<void> {
    return this.afterRead(() => this.inner.setMeta(key, value));
  }

  getReceipt(key: string): Promise<StoredReceipt | null> {
    return this.afterRead(() => this.inner.getReceipt(key));
  }

  pruneReceipts(writtenBefore: number, limit: number): Promise<number> {
    return this.afterRead(() => this.inner.pruneReceipts(writtenBefore, limit));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * Where an engine case's time goes: the main thread's time inside the SQLite storage, split
 * into commits and the writing of pending versions, against everything else (the engine, its
 * awaits, the benchmark's loop). `run.ts` prints it under the table for (a), so that every run
 * says how far the storage alone would let the ratio go.
 *
 * The SQLite storage does its work synchronously inside each call (better-sqlite3 is
 * synchronous), so the time from a call to its return is that work. The exception is a commit
 * that waits for the background checkpointer's pause (checkpointer.ts): its wait returns early
 * and the rest of the commit runs later, untimed. The wait is idle time, not storage work (the
 * worker thread copies the log meanwhile, and the event loop is free), but a caller that waits
 * for its commit waits it out, so it is timed on its own (`restartWaits`), once per pause.
 * Pending versions are written inside a commit (when enough have piled up) or from their own
 * timer: both are counted as versions, never as commit time. The engine's planner, which a
 * commit calls under its write lock, is counted on its own.
 *
 * The wrappers cost two `performance.now()` calls per storage call (about 0.1 µs).
 *
 * It also sums the process's garbage collections that started while its calls were timed
 * (`garbageCollection`), from Node's `gc` performance entries: they pause whatever runs,
 * storage or engine, so they are a share of the whole, not a third part. A long-lived
 * container that keeps short-lived objects alive through young collections shows up here
 * first (`pendingVersions.ts`, "Why new maps").
 */
import { constants, performance, PerformanceObserver } from "node:perf_hooks";
import type { SqliteStorage } from "../../src/storage/sqlite/index.js";

export interface StorageTime {
  /** Milliseconds in `commitBatch`, less the versions written inside it and the engine's planner. */
  commit: number;
  /**
   * Milliseconds in the engine's planner, which `commitBatch` calls under its write lock: the
   * engine's conflict check and its commits' timestamps. Engine work, not storage work.
   */
  planner: number;
  /** Milliseconds writing pending versions (inside commits and from their timer). */
  versions: number;
  /** Milliseconds in every other call: reads, history pruning, receipts. */
  other: number;
  /**
   * Milliseconds the main connection's writes were paused for the checkpointer to start the
   * write-ahead log over (from the pause's start to its end): idle, not part of `storage`.
   */
  restartWaits: number;
}

/**
 * `time` spread over `ops` operations, in microseconds each, with the storage's total (commit,
 * versions and other calls; the planner is the engine's work and is not in it).
 */
export function perOperation(time: StorageTime, ops: number): StorageTime & { storage: number } {
  const us = (ms: number) => (ms * 1000) / ops;
  const each = {
    commit: us(time.commit),
    planner: us(time.planner),
    versions: us(time.versions),
    other: us(time.other),
    restartWaits: us(time.restartWaits),
  };
  return { ...each, storage: each.commit + each.versions + each.other };
}

/** Garbage collections of this process, as Node reports them (start and duration in ms). */
interface Collection {
  start: number;
  duration: number;
  young: boolean;
}

const collections: Collection[] = [];
function record(entries: PerformanceEntry[]): void {
  for (const entry of entries) {
    const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
    collections.push({ start: entry.startTime, duration: entry.duration, young: kind === constants.NODE_PERFORMANCE_GC_MINOR });
  }
}
// Entries arrive asynchronously; `garbageCollection` takes the ones not delivered yet.
const gcObserver = new PerformanceObserver((list) => record(list.getEntries()));
gcObserver.observe({ entryTypes: ["gc"] });

/** Garbage collection while a StorageClock was on: total milliseconds, and how many collections of each kind. */
export interface CollectionTime {
  ms: number;
  young: number;
  full: number;
}

/** `gc` spread over `ops` operations, as the benchmarks print it ("garbage collection 2.1 µs (40 young-generation and 0 full collections)"). */
export function describeCollections(gc: CollectionTime, ops: number, us: (value: number) => string): string {
  return `garbage collection ${us((gc.ms * 1000) / ops)} (${gc.young} young-generation and ${gc.full} full collections)`;
}

export class StorageClock {
  readonly time: StorageTime = { commit: 0, planner: 0, versions: 0, other: 0, restartWaits: 0 };
  private timing = false;
  private openedAt = 0;
  /** The [start, end] of every stretch the clock was on (performance.now() ms). */
  private readonly windows: Array<[number, number]> = [];
  /** Nesting depth, so that a call made inside another (versions inside a commit) is not counted twice. */
  private depth = 0;
  /** Versions and planner time spent inside the outermost call in progress. */
  private nested = 0;

  /** Whether calls are being timed: only while the case's measured rounds run. */
  get on(): boolean {
    return this.timing;
  }

  set on(value: boolean) {
    if (value === this.timing) return;
    this.timing = value;
    if (value) this.openedAt = performance.now();
    else this.windows.push([this.openedAt, performance.now()]);
  }

  /** The garbage collections that started while the clock was on. */
  garbageCollection(): CollectionTime {
    record(gcObserver.takeRecords());
    const windows = this.timing ? [...this.windows, [this.openedAt, performance.now()] as [number, number]] : this.windows;
    const total: CollectionTime = { ms: 0, young: 0, full: 0 };
    for (const collection of collections) {
      if (!windows.some(([start, end]) => collection.start >= start && collection.start < end)) continue;
      total.ms += collection.duration;
      if (collection.young) total.young++;
      else total.full++;
    }
    return total;
  }

  /** Wraps `storage`'s methods in place (the engine calls them through the same object). */
  constructor(storage: SqliteStorage) {
    const methods = ["commitBatch", "writePendingVersions", "getDocument", "scan", "latestTimestamp", "pruneHistory", "getReceipt", "commitsSince"] as const;
    for (const name of methods) {
      const original = (storage[name] as (...args: unknown[]) => unknown).bind(storage);
      const kind: keyof StorageTime = name === "commitBatch" ? "commit" : name === "writePendingVersions" ? "versions" : "other";
      (storage as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => this.timed(kind, () => original(...args));
    }
    const commitBatch = storage.commitBatch;
    storage.commitBatch = (since, plan, options) => commitBatch(since, (view) => this.timed("planner", () => plan(view)), options);
    const checkpointer = storage.checkpointer;
    if (checkpointer !== null) {
      // Every write that comes during a pause gets the same promise: time each pause once.
      const pauseForRestart = checkpointer.pauseForRestart.bind(checkpointer);
      let timing: Promise<void> | null = null;
      checkpointer.pauseForRestart = () => {
        const pause = pauseForRestart();
        if (this.on && pause !== timing) {
          timing = pause;
          const started = performance.now();
          const stop = () => {
            if (this.on) this.time.restartWaits += performance.now() - started;
          };
          pause.then(stop, stop);
        }
        return pause;
      };
    }
  }

  private timed<T>(kind: keyof StorageTime, call: () => T): T {
    if (!this.on) return call();
    const started = performance.now();
    this.depth++;
    try {
      return call();
    } finally {
      this.depth--;
      const took = performance.now() - started;
      if (kind === "versions" || kind === "planner") {
        this.time[kind] += took;
        if (this.depth > 0) this.nested += took;
      } else if (this.depth === 0) {
        this.time[kind] += took - this.nested;
      }
      if (this.depth === 0) this.nested = 0;
    }
  }
}

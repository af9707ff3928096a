/**
 * The storage interface: everything the engine needs from a database, and nothing more.
 *
 * Storage is a multi-version store. Every commit gets a timestamp (a positive integer, strictly
 * increasing, chosen by the engine) and writes new *versions* of documents and index entries at
 * that timestamp; nothing is updated in place. A read names a snapshot timestamp and sees, for
 * each document and each index key, the newest version at or before it. That is what lets a
 * query run against one consistent snapshot while mutations keep committing, without holding a
 * database transaction open across the handler's `await`s.
 *
 * Storage knows nothing of validators, schemas or JSON shapes: documents are opaque strings and
 * index keys are opaque byte strings whose `memcmp` order is the order of the values they
 * encode (see `values/indexKey.ts`). That keeps every backend small: SQLite and PostgreSQL both
 * compare BLOB/bytea with memcmp, so a range scan over a real SQL index is the whole job.
 *
 * Every method may take milliseconds (a network round trip) and is always called outside the
 * determinism sandbox of app handlers: an implementation sees the real clock and may use timers,
 * sockets and `fetch`.
 *
 * ## Several engines on one database
 *
 * Several engines (the old and new engine of a hot reload, or the nodes of a cluster) may share
 * one database. What each implementation must guarantee so that they stay serializable:
 *
 * - **One commit order.** `commitBatch` runs its planner under a lock that excludes every other
 *   writer until the batch is durable, so commit order, timestamp order and visibility order
 *   are the same: once a reader sees timestamp T, it sees every commit at or before T.
 * - **Nothing missed.** The view a planner gets lists every commit after `since`, unless the
 *   log was trimmed past it, which `trimmedThrough` says (the engine then treats its older
 *   snapshots as conflicting, never as clean).
 * - **Exact outcomes.** An error from `commitBatch` means nothing was written, except
 *   `CommitOutcomeUnknownError`; `findCommits` then gives the final answer.
 * - **Stable snapshots.** A read at `readTs` returns the same answer every time while `readTs`
 *   is at or above every `pruneHistory` timestamp given so far. Each engine prunes at its own
 *   oldest snapshot, so a storage shared across processes must prune only below the oldest
 *   snapshot of every engine using it (PostgreSQL: `postgres/snapshotFloors.ts`).
 *
 * Implementations must pass `storage/conformance.ts` (exported as `storageConformanceSuite`
 * from `walkin/storage`).
 */

/** A commit timestamp. 0 means "before anything was committed". */
export type Timestamp = number;

/** A stored document version. `body === null` is a tombstone (the document was deleted). */
export interface DocumentVersion {
  id: string;
  table: string;
  ts: Timestamp;
  body: string | null;
}

/** One write of a document: a new version at the commit's timestamp. */
export interface DocumentWrite {
  id: string;
  table: string;
  /** The encoded document, or `null` to delete it. */
  body: string | null;
  /**
   * A hint for history pruning: `true` promises that no version of this document is stored at
   * any timestamp (a brand-new ID), so this write supersedes nothing and a storage may leave it
   * out of its pruning bookkeeping. Absent or `false`: unknown. A storage may ignore it; a wrong
   * hint may only leave garbage behind, never change what any read returns.
   */
  fresh?: boolean;
}

/**
 * One write to an index. Index keys are unique within an index (the engine appends the document
 * ID to every key), so an entry is identified by `(indexId, key)`.
 */
export interface IndexWrite {
  indexId: string;
  key: Uint8Array;
  /** The document the key points at; `null` removes the entry. */
  docId: string | null;
  /** As `DocumentWrite.fresh`: `true` promises no version of this `(indexId, key)` is stored. */
  fresh?: boolean;
}

/**
 * One atomic write. It may write each document and each `(indexId, key)` at most once; a
 * commit that repeats one is rejected whole.
 */
export interface Commit {
  ts: Timestamp;
  /**
   * A unique ID for this commit, chosen by its writer and stored with it in the commit log. After
   * an unknown outcome (`CommitOutcomeUnknownError`) the writer asks `findCommits` whether it
   * landed, so that nothing is ever applied twice or reported committed when it was not.
   */
  id: string;
  documents: DocumentWrite[];
  indexes: IndexWrite[];
  /**
   * Opaque bytes stored in the commit log with the commit and handed back, unchanged, to every
   * writer that reads the log (`commitBatch`'s view, `commitsSince`). The engine puts the index
   * keys the commit wrote here: that is how an engine learns what another one changed.
   */
  log: Uint8Array;
  /**
   * Receipts written with this commit (see `Receipt`), atomically with its documents: the commit
   * lands with all of them or none. Keys are unique across the whole store: a batch that writes
   * a key already stored, or one key twice, is rejected whole (nothing written), like a commit
   * that writes a document twice.
   */
  receipts?: readonly Receipt[];
}

/**
 * A small non-versioned record written atomically with a commit and read back by key: the engine
 * keeps the outcome of each client request in one (exactly-once mutations), so that recording it
 * costs one row rather than a document version and its index entries. Not part of any snapshot:
 * `getReceipt` sees every receipt of every commit that has landed, whatever the reader's
 * snapshot, and the receipt's `ts` says which commit wrote it.
 */
export interface Receipt {
  /** Unique across the store. At most 1,024 bytes. */
  key: string;
  body: string;
}

/** A stored receipt: its body and the timestamp of the commit that wrote it. */
export interface StoredReceipt {
  ts: Timestamp;
  body: string;
}

/** A commit as the commit log remembers it. */
export interface LoggedCommit {
  ts: Timestamp;
  id: string;
  log: Uint8Array;
}

/**
 * What a writer sees of the database while it holds the commit lock (see `commitBatch`), and
 * what `commitsSince` answers.
 */
export interface CommitLogView {
  /** The newest committed timestamp. */
  latest: Timestamp;
  /**
   * The logged commits after the requested timestamp, up to `latest`, in timestamp order; the
   * ones at or before `trimmedThrough` are missing (the log was trimmed past them).
   */
  commits: LoggedCommit[];
  /** The log was trimmed through this timestamp: it holds no commit at or before it. */
  trimmedThrough: Timestamp;
}

/**
 * Decides what a batch writes, given the commits that landed since the writer last looked.
 * Called exactly once per `commitBatch`, synchronously, while the storage holds its commit lock:
 * no other commit can land between what it is shown and what it returns. It returns the commits
 * to write, with increasing timestamps all above `view.latest` (possibly none).
 */
export type CommitPlanner = (view: CommitLogView) => readonly Commit[];

/** What a `commitBatch` did: the view its planner saw, and the commits it wrote. */
export interface CommitBatchResult {
  view: CommitLogView;
  written: readonly Commit[];
}

/** What a `pruneHistory` sweep cost, when the storage can tell. */
export interface PruneReport {
  /** Milliseconds the sweep kept the storage (and, for an in-process storage, this thread) busy. */
  busyMs: number;
}

/** One end of a key range. Keys compare bytewise (memcmp; a prefix sorts first). */
export interface KeyBound {
  key: Uint8Array;
  inclusive: boolean;
}

/** A key range; a missing bound is unbounded on that side. */
export interface KeyRange {
  lower?: KeyBound;
  upper?: KeyBound;
}

/**
 * An index entry at a snapshot with the version of the document it points at, but not the
 * document's body (`Storage.scanVersions`).
 */
export interface IndexVersion {
  key: Uint8Array;
  id: string;
  table: string;
  ts: Timestamp;
}

/** An index entry at a snapshot, joined with the document version it points at. */
export interface IndexEntry {
  key: Uint8Array;
  doc: DocumentVersion & { body: string };
}

export interface ScanRequest {
  indexId: string;
  range: KeyRange;
  order: "asc" | "desc";
  /** Snapshot: see entries and documents as of this timestamp. */
  readTs: Timestamp;
  /** At most this many entries. */
  limit: number;
}

const OUTCOME_UNKNOWN = Symbol.for("walkin.storage.commitOutcomeUnknown");

/**
 * Thrown by `commitBatch` when the batch may or may not have landed: the connection was lost
 * after COMMIT was sent, a timeout fired while the database was committing. Any other error
 * from `commitBatch` promises that nothing of the batch was written. The writer resolves an
 * unknown outcome with `findCommits` before it answers anyone.
 */
/** How `commitBatch` may write. */
export interface CommitOptions {
  /**
   * The caller has other work to do while the batch is made durable (live queries to re-run),
   * and will wait for `whenDurable` before it shows the batch to anyone: the storage may resolve
   * once the batch is visible, and make it durable in the background. Without it (the default,
   * and what a wrapper that passes on only `since` and `plan` sends), a batch is durable before
   * `commitBatch` resolves: a sync handed to another thread and waited for costs a caller with
   * nothing else to do more than the sync itself (bench/README.md, journal 2026-12-06 05:10).
   * Passed only to a storage that has `whenDurable`.
   */
  durableLater?: boolean;
}

export class CommitOutcomeUnknownError extends Error {
  readonly [OUTCOME_UNKNOWN] = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CommitOutcomeUnknownError";
  }
}

const REPEATED_RECEIPT = Symbol.for("walkin.storage.repeatedReceipt");

/**
 * Thrown by `commitBatch` for a batch that writes a receipt key already stored, or one key
 * twice: nothing of the batch was written. A writer may run the batch's transactions again;
 * each then finds the receipt that is stored (clientRequests.ts, "First sends").
 */
export class RepeatedReceiptError extends Error {
  readonly [REPEATED_RECEIPT] = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RepeatedReceiptError";
  }
}

const STOPPED = Symbol.for("walkin.storage.stopped");

/**
 * Thrown by a storage that can take no more calls until the process restarts: SQLite after a
 * failed sync of its log under synchronous=FULL (sqlite/walSync.ts), when nothing after the
 * failure can be promised durable. Unlike an outage (a dropped connection), waiting does not
 * help, so the engine fails each call at once with the storage's message instead of trying
 * again for `storageRetryMs`, and does not ask `findCommits` about a batch it cannot answer for.
 */
export class StorageStoppedError extends Error {
  readonly [STOPPED] = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageStoppedError";
  }
}

const SNAPSHOT_FENCED = Symbol.for("walkin.storage.snapshotFenced");

/**
 * Thrown by a read at a snapshot that a storage shared across nodes can no longer answer for:
 * this node stopped holding back the others' pruning for a while (PostgreSQL: its snapshot
 * floor lapsed while it was cut off from the database, `postgres/snapshotFloors.ts`), so they
 * may have pruned history that snapshot reads. Reads at newer snapshots are answered. Nothing
 * was read or written; the engine learns the commits since and reads again at a newer
 * snapshot (catchUp.ts, `learnPastFence`).
 */
export class SnapshotFencedError extends Error {
  readonly [SNAPSHOT_FENCED] = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SnapshotFencedError";
  }
}

/** Whether `error` is or was caused by a `SnapshotFencedError` (works across copies of this module). */
export function isSnapshotFenced(error: unknown): boolean {
  return markedCause(error, SNAPSHOT_FENCED) !== undefined;
}

/**
 * The first of `error` and the errors it was caused by (up to three `cause`s deep: the engine
 * wraps storage errors) that carries `marker` set to true, or undefined. Markers are
 * `Symbol.for` symbols, so this works across copies of the module that set them.
 */
export function markedCause(error: unknown, marker: symbol): Error | undefined {
  for (let e = error, depth = 0; typeof e === "object" && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as Record<symbol, unknown>)[marker] === true) return e as Error;
  }
  return undefined;
}

/** The `StorageStoppedError` that `error` is or was caused by, or undefined. */
export function storageStoppedBy(error: unknown): Error | undefined {
  return markedCause(error, STOPPED);
}

/** Whether an error says a batch repeated a receipt key (works across copies of this module). */
export function isRepeatedReceipt(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as Record<symbol, unknown>)[REPEATED_RECEIPT] === true;
}

/** Whether an error says a commit's outcome is unknown (works across copies of this module). */
export function isCommitOutcomeUnknown(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as Record<symbol, unknown>)[OUTCOME_UNKNOWN] === true;
}

/** What `Storage.reclaimIndex` checks, in its transaction, before it removes anything. */
export interface ReclaimGuard {
  metaKey: string;
  /** Called with the metadata value as of the transaction (null when unset); false keeps the entries. */
  allows(value: string | null): boolean;
}

export interface Storage {
  /** A short name for logs and errors, e.g. "sqlite:/path/to/db". */
  readonly name: string;

  /** The timestamp of the newest commit, or 0 for an empty store. Durable across restarts. */
  latestTimestamp(): Promise<Timestamp>;

  /** The newest version of a document at or before `readTs`; `null` if absent or deleted then. */
  getDocument(id: string, readTs: Timestamp): Promise<DocumentVersion | null>;

  /**
   * Live index entries in `range` as of `readTs`, in key order (`asc`) or reverse (`desc`),
   * each joined with its document as of `readTs`. Uses a real index: cost is proportional to
   * the entries returned, not to the size of the table. An entry whose document does not exist
   * at `readTs` (which the engine never produces) is skipped and not counted. `limit` >= 1.
   * Reads at a `readTs` below the last `pruneHistory` (or `raiseReadFloor`) timestamp are undefined.
   */
  scan(request: ScanRequest): Promise<IndexEntry[]>;

  /**
   * `scan` without the documents' bodies: the same entries, in the same order, each with its
   * document's ID, table and version at `readTs`. For a reader that may already hold what it
   * needs of each version (vector search's decoded vectors, engine/vectorCache.ts): a large
   * body is most of what a scan reads (an overflow chain in SQLite, TOAST in PostgreSQL), and
   * telling a live document from a tombstone needs none of it.
   */
  scanVersions(request: ScanRequest): Promise<IndexVersion[]>;

  /**
   * The one way to write: an atomic, durable batch of commits decided under the commit lock.
   *
   * 1. Take the commit lock: from here until step 5 no other writer, in this process or any
   *    other sharing the database, can commit.
   * 2. Read the newest timestamp and the logged commits after `since` (the newest commit this
   *    writer already knows of), and call `plan` once, synchronously, with that view.
   * 3. Check what `plan` returned: timestamps strictly increasing and all above `view.latest`,
   *    each document and index entry written at most once per commit. If not, write nothing and
   *    throw an error that says which rule was broken.
   * 4. Write every document and index version and a commit-log row (`ts`, `id`, `log`) per
   *    commit, and advance the clock to the last timestamp.
   * 5. Commit durably and release the lock: when the promise resolves, the batch survives the
   *    process being killed, and every later read, here or on another connection, sees it.
   *
   * All or nothing. Throws `CommitOutcomeUnknownError` when the batch may have landed; any other
   * error means nothing was written. When `plan` returns no commits, nothing is written.
   */
  commitBatch(since: Timestamp, plan: CommitPlanner, options?: CommitOptions): Promise<CommitBatchResult>;

  /**
   * The logged commits after `since`, in timestamp order, at most `limit` of them (`view.latest`
   * is then the last one returned's timestamp when more remain). How an engine learns of other
   * engines' commits between its own.
   */
  commitsSince(since: Timestamp, limit: number): Promise<CommitLogView>;

  /**
   * Which of these commit IDs landed, with their timestamps. Waits for any commit in flight
   * (it takes the commit lock, or otherwise makes sure no commit that could still land is
   * pending), so a "not found" answer is final. IDs of commits at or before `trimmedThrough`
   * may be forgotten: after a "not found" the engine reads `trimmedThrough` (`commitsSince`),
   * and if the log was trimmed past the commit (another engine sharing the database trims at
   * its own floor) it reports the outcome as unknown rather than guess.
   */
  findCommits(ids: readonly string[]): Promise<Map<string, Timestamp>>;

  /**
   * Optional, for storages that several engines share across processes or machines: calls
   * `listener` soon after any writer commits (PostgreSQL: LISTEN/NOTIFY; SQLite: a look at
   * `PRAGMA data_version` every 20 ms, or every second while every listener is `idle`), with the commit's
   * timestamp when the storage knows it (none after a reconnect). Notifications may be
   * late, merged or lost; an engine whose storage has this method also polls `commitsSince`
   * (every `pollIntervalMs` while a query is live, every 10 s otherwise: `otherEngines.ts`),
   * so a storage that may have lost one should call the listener once it could have (after
   * a reconnect, say). Returns a function that stops watching. `idle`: this listener can
   * wait (an engine with no live query), so a storage that polls may look less often; an
   * engine that changes pace subscribes anew before it stops the old subscription.
   * An engine treats a storage with this method as shared: it never drops an index at start,
   * since another engine may still read it (`indexBuilder.ts`).
   */
  watchCommits?(listener: (latest?: Timestamp) => void, options?: { idle?: boolean }): () => void;

  /**
   * Optional, for a storage with `watchCommits` that can tell cheaply and synchronously: a
   * number that differs from an earlier answer whenever another connection or process has
   * committed in between (SQLite: `PRAGMA data_version`, about a microsecond). A storage may
   * answer a different number without a commit (the engine then looks for nothing), never the
   * same one after a commit. Before a one-shot call, the engine compares it with the answer
   * it read before its last look at the log, and looks again if they differ: a commit that
   * landed before the call came is then in its snapshot, even if no notification came yet.
   */
  othersCommitMark?(): number;

  /**
   * Optional, with `CommitOptions.durableLater`: `null` when every commit through `ts` (this
   * storage's own, or one it showed the engine from another writer) would survive a power loss,
   * else a promise that resolves once it would, or rejects if it cannot be made so (SQLite
   * under `synchronous: "full"`: `sqlite/walSync.ts`). An engine whose storage has this method
   * shows no commit to anything outside it (an answer, a published snapshot, a one-shot query's
   * result, a scheduled action's start) before this says it is durable; inside, transactions
   * may read it at once. A storage without it makes each commit durable before `commitBatch`
   * resolves, whatever the options.
   */
  whenDurable?(ts: Timestamp): Promise<void> | null;

  /**
   * Removes every entry of an index (all versions). Used when an index is dropped or its
   * definition changed and it is about to be rebuilt.
   */
  dropIndex(indexId: string): Promise<void>;

  /**
   * Removes every entry of an index as `dropIndex` does, but only if no other engine can be
   * reading this database and the metadata value `guard.metaKey`, read in the same transaction,
   * passes `guard.allows`; answers whether it removed them. An engine that opens the database
   * afterwards finds the entries gone; one that has it open (another node, another process on
   * the file, the other engine of a hot reload) makes this a no-op. For indexes an engine's
   * schema stopped declaring on a shared database, where `dropIndex` could take entries from
   * under an engine still reading them (`reclaimIndexes.ts`). Whenever a storage cannot be
   * sure it is alone it answers false and keeps them; with no other connection open it must
   * be sure (the conformance suite checks both). A storage may delete a large index a
   * batch at a time, each in a transaction with both checks; it answers true only once every
   * entry is gone, and false if a check stopped it part way (the engine tries again later).
   */
  reclaimIndex(indexId: string, guard: ReclaimGuard): Promise<boolean>;

  /**
   * Garbage-collects history: removes versions that no snapshot at or after `ts` can see
   * (versions superseded at or before `ts`, and tombstones at or before `ts`), and the
   * commit-log rows at or before `ts` (`trimmedThrough` becomes `ts`). Reads at `readTs >= ts`
   * must return exactly what they returned before, also while pruning runs, whatever `fresh`
   * hints the commits carried (right or wrong: a wrong one may only leave garbage behind).
   * The log is trimmed by every call; the versions may be removed over several calls (the
   * SQLite storage spreads its walk of a big table over many: `sqlite/prune.ts`), but each
   * call leaves a small store written through this one storage object, with right hints,
   * exactly pruned (the conformance suite counts versions).
   *
   * May resolve with a `PruneReport`. An implementation that works in small steps and yields
   * between them (so reads and commits are never held up) should: the engine spaces sweeps by
   * their cost, and the time a sweep spends waiting behind other work is not cost.
   */
  pruneHistory(ts: Timestamp): Promise<void | PruneReport>;

  /**
   * Optional. Says what `pruneHistory(ts)` says of reads, that none will come at a `readTs`
   * below `ts` from now on, without asking for a sweep: the engine says it more often than it
   * sweeps (about every 256 commits). The storage may then drop whatever `pruneHistory(ts)`
   * would, whenever it likes: the SQLite storage drops the superseded versions of a document
   * when a commit writes it again, in that commit's transaction, on the page the write dirties
   * anyway. A `ts` below one given before changes nothing. Synchronous, and never throws. A
   * storage shared by several engines must keep to the same rule as for `pruneHistory`.
   */
  raiseReadFloor?(ts: Timestamp): void;

  /**
   * Optional, for a storage that nodes on several machines share: the database server's clock,
   * in milliseconds since the epoch. Node clocks may differ by seconds; the scheduler judges due
   * times and action leases by this one clock instead (`engine/scheduler.ts`, "Clocks").
   */
  currentTime?(): Promise<number>;

  /**
   * Small durable key/value metadata (the table and index registry). Not versioned, and not
   * atomic with commits: the engine records an index as built only after its entries are
   * committed, and rebuilds any index not recorded.
   */
  getMeta(key: string): Promise<string | null>;
  setMeta(key: string, value: string): Promise<void>;

  /**
   * The receipt stored under `key` (see `Receipt`), or `null`. Sees every commit that landed
   * before the call (on any connection, in any process sharing the database), never a commit
   * that has not: a commit's receipts become visible together with it. Not versioned: the
   * answer does not depend on any snapshot, so a caller compares `ts` with its own.
   */
  getReceipt(key: string): Promise<StoredReceipt | null>;

  /**
   * Deletes up to `limit` receipts written before `writtenBefore` (milliseconds since the epoch,
   * by the clock of the process that committed them), oldest first, and resolves with how many
   * it deleted: fewer than `limit` means none older is left. Each call is one short transaction,
   * so pruning a large backlog never holds up commits for long. Receipts are never deleted
   * otherwise (`pruneHistory` leaves them alone).
   */
  pruneReceipts(writtenBefore: number, limit: number): Promise<number>;

  close(): Promise<void>;
}

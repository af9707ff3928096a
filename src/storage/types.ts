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
 * Implementations must pass `storage/conformance.ts`.
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
}

/**
 * One atomic write. It may write each document and each `(indexId, key)` at most once; a
 * commit that repeats one is rejected whole.
 */
export interface Commit {
  ts: Timestamp;
  documents: DocumentWrite[];
  indexes: IndexWrite[];
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
   * Reads at a `readTs` below the last `pruneHistory` timestamp are undefined.
   */
  scan(request: ScanRequest): Promise<IndexEntry[]>;

  /**
   * Writes every document and index version of `commit` atomically and durably: when the
   * promise resolves, the commit survives the process being killed. Either all of it is
   * visible to later reads or none of it. `commit.ts` must exceed every earlier commit's.
   */
  commit(commit: Commit): Promise<void>;

  /**
   * Group commit: writes several commits, in increasing timestamp order, in one atomic and
   * durable step (one fsync for all of them). All or none: if any is invalid, nothing is
   * written. Same rules as `commit` for each.
   */
  commitBatch(commits: readonly Commit[]): Promise<void>;

  /**
   * Removes every entry of an index (all versions). Used when an index is dropped or its
   * definition changed and it is about to be rebuilt.
   */
  dropIndex(indexId: string): Promise<void>;

  /**
   * Garbage-collects history: removes versions that no snapshot at or after `ts` can see
   * (versions superseded at or before `ts`, and tombstones at or before `ts`).
   * Reads at `readTs >= ts` must return exactly what they returned before.
   */
  pruneHistory(ts: Timestamp): Promise<void>;

  /**
   * Small durable key/value metadata (the table and index registry). Not versioned, and not
   * atomic with commits: the engine records an index as built only after its entries are
   * committed, and rebuilds any index not recorded.
   */
  getMeta(key: string): Promise<string | null>;
  setMeta(key: string, value: string): Promise<void>;

  close(): Promise<void>;
}

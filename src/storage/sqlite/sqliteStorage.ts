/**
 * `SqliteStorage`: the `Storage` interface on an embedded SQLite database (better-sqlite3).
 *
 * This module owns the statements for documents, commits and metadata, and wires in the scan
 * (`scan.ts`), pruning (`prune.ts`), schema (`schema.ts`) and background checkpoint
 * (`checkpointer.ts`) modules. better-sqlite3 is
 * synchronous, so every method does its work synchronously and returns a settled promise: the
 * interface is async only so that a network database can implement it too. Because nothing
 * awaits in the middle of a read or a commit, each one runs alone on the connection and sees
 * one consistent state. Other connections (another engine in this process during a hot
 * reload, another process) are excluded from commits by SQLite's write lock, which
 * `BEGIN IMMEDIATE` takes before the commit log is read: that lock is the commit lock of the
 * storage contract.
 *
 * ## The newest timestamp
 *
 * A commit does not write the newest timestamp anywhere of its own: its commit-log row (key
 * `ts`, written in the commit's transaction) already says it, and updating a clock row as well
 * cost one more page in the write-ahead log per commit (about 12% of a one-document insert).
 * The newest timestamp is
 *
 *     latest = max(clock.log_carried_ts, max(commit_log.ts))
 *
 * where `max(commit_log.ts)` is one seek to the last row of the log (`ts` is its rowid), and
 * `clock.log_carried_ts` only matters once pruning has deleted the log's newest rows. Why
 * `latest` never goes back, for any reader on any connection, across restarts:
 *
 * 1. It is a function of the committed database state only, so every reader that sees the same
 *    state computes the same value, in this process or another, before or after a restart, and
 *    a crash leaves the state of some committed transaction (WAL). It is enough that no write
 *    transaction lowers it.
 * 2. A commit inserts log rows with timestamps above the `latest` its planner was shown
 *    (`checkPlannedCommits`), under the write lock taken before that view was read: it raises
 *    `latest` to its last timestamp and touches nothing else in the formula.
 * 3. `log_carried_ts` is only ever set to `max(itself, max(commit_log.ts))` (prune.ts), so it
 *    never falls.
 * 4. The only statement that deletes log rows (prune.ts) runs in the same transaction as, and
 *    after, the update of 3: the newest logged timestamp is in the clock before any row is
 *    gone, so the maximum of the two is unchanged by the deletion. Other connections see the
 *    carry and the deletion together or neither (one transaction), and a kill between them
 *    rolls both back.
 * 5. Two engines on one file (a hot reload) are two connections: each of their write
 *    transactions is one of 2-4, serialized by SQLite's write lock, so each keeps `latest`
 *    monotone whichever engine runs it.
 *
 * A commit reads the formula only when another connection may have committed since this
 * connection's last commit; otherwise it knows the answer already (`logSince` says why).
 *
 * A Walk-in from before this layout would read the clock column alone and see an old value;
 * the migration that renamed the column bumped the schema version, so it refuses the file.
 *
 * ## Deferred versions
 *
 * Every B-tree a commit touches costs it at least a page in the write-ahead log. So a batch of
 * one to three small commits writes only their log rows, each holding its whole commit
 * (`writes`: documents, index entries, receipts), and the versions of many such commits are
 * written to their tables later in one transaction, where they share pages: after 64 commits
 * or 1 MiB, 5 ms after a commit, before a sweep, a `stats`, a `dropIndex`, a `pruneReceipts`
 * and at close. A bigger batch writes its versions, and all pending ones, in its own
 * transaction. Until written, versions are served from memory (`pendingVersions.ts`). Why
 * every read sees exactly the committed state, on every connection:
 *
 * 1. `clock.materialized_through` = M says: every commit at or before M has all its versions
 *    in the tables, and every commit after M has them only in its log row. Versions are
 *    written in timestamp order, in one transaction that also raises M to the last of them,
 *    and a commit after M never writes to the tables (it is logged, or it writes everything
 *    pending first, in the same transaction, and then raises M past itself).
 * 2. Each connection's overlay holds the commits after M that it knows of, in timestamp order:
 *    its own go in right after their transaction commits (nothing runs between the two: this
 *    code is synchronous), and other connections' are loaded from their log rows.
 * 3. A read first compares `PRAGMA data_version` with the value at its last load. It changes
 *    whenever another connection commits; then the overlay drops what is at or before M and
 *    loads the log rows after what it holds, in one read transaction. A read at snapshot T can
 *    only ask for a T this engine learned from a statement that ran after the commit at T, so
 *    data_version has changed since any load that missed that commit. A read at a T no later
 *    than the overlay's `loadedThrough` skips the check (it costs a read transaction of its
 *    own, about as much as a point read): every commit at or before `loadedThrough` was, when
 *    it was reached, in the overlay or in the tables (a load takes every log row there is, and
 *    this connection's own commits are planned after a load under the write lock), and no
 *    commit can land at or before it later, since timestamps are taken in order under that
 *    lock. Receipts are not read at a snapshot, so `getReceipt` always checks.
 * 4. A version in the overlay is newer than every version of its document or key in the
 *    tables (1 and 2), so a read takes the overlay's newest version at or before T when there
 *    is one and the tables' otherwise; scans merge the two in key order (`scan.ts`). A commit
 *    that is in both (another connection wrote it meanwhile) has the same versions in both.
 * 5. A commit checks under the write lock, after loading the overlay (3), what the tables'
 *    keys would refuse later: a document or index key twice in one commit, a receipt key that
 *    is stored or pending. So writing the versions never fails on a key.
 * 6. The log row is written and synced in the commit's own transaction: a crash loses no
 *    acknowledged commit, and opening the file loads what is after M (2) and writes it soon.
 * 7. Nothing deletes a log row after M (`prune.ts` trims at most through M), and the history
 *    sweep runs only after the pending versions are written, over the tables alone.
 */
import type Database from "better-sqlite3";
import { CommitOutcomeUnknownError } from "../types.js";
import type {
  Commit,
  CommitBatchResult,
  CommitLogView,
  CommitOptions,
  CommitPlanner,
  DocumentVersion,
  IndexEntry,
  IndexVersion,
  IndexWrite,
  LoggedCommit,
  StoredReceipt,
  ScanRequest,
  Storage,
  Timestamp,
  ReclaimGuard,
} from "../types.js";
import { checkLogLimit, checkPlannedCommits, checkPruneReceipts, repeatedReceiptError, repeatedWriteError } from "../plannedCommits.js";
import { DEFAULT_HISTORY_SWEEP, DEFAULT_PRUNE_BATCH_SIZE, Pruner, type HistorySweepOptions, type SqlitePruneReport } from "./prune.js";
import { Scanner } from "./scan.js";
import { IndexTables } from "./indexTables.js";
import { openDatabase, type SqliteSynchronous } from "./schema.js";
import { Checkpointer, DEFAULT_CHECKPOINTER, type CheckpointerOptions } from "./checkpointer.js";
import { loggedPages, writtenPages } from "./walPages.js";
import { PendingVersions } from "./pendingVersions.js";
import { decodeWrites, encodeWrites, type PendingCommit } from "./logWrites.js";
import { entryGroup } from "./dirtyGroups.js";
import { VersionWriter } from "./versionWriter.js";
import { compareBytes } from "../../values/compare.js";
import { CommitWatch } from "./commitWatch.js";
import { FileFloors, isPrivate } from "./fileFloors.js";
import { WalSync } from "./walSync.js";

export interface SqliteStorageOptions {
  /** A file path, or `":memory:"` for a private in-memory database (tests). */
  filename: string;
  /** Durability of each commit; see `SqliteSynchronous`. Default `"full"`. */
  synchronous?: SqliteSynchronous;
  /** Rows examined per pruning transaction. Default 1000. */
  pruneBatchSize?: number;
  /** How history sweeps spread their work over `pruneHistory` calls (see `prune.ts`); defaults are for production. */
  historySweep?: Partial<HistorySweepOptions>;
  /**
   * Checkpoint the write-ahead log from a worker thread rather than inside commits (see
   * `checkpointer.ts`). Default: on under `synchronous: "normal"`, off under `"full"`, where
   * the longer log it leaves costs commits more than it saves them (`checkpointer.ts`, "Only
   * under synchronous=NORMAL"). Ignored for `":memory:"`. `false` leaves it to SQLite's
   * automatic checkpoint, in the commit that fills the log.
   */
  backgroundCheckpoints?: boolean | Partial<CheckpointerOptions>;
  /**
   * When a commit's documents and index entries are written to their tables (see "Deferred
   * versions"). By default a commit writes only its log row, and the versions of many commits
   * are written together later. `false` writes them in the commit's own transaction.
   */
  deferredVersions?: false | Partial<DeferredVersionsOptions>;
}

/** How long versions may wait in the log before they are written to their tables. */
export interface DeferredVersionsOptions {
  /** Write them once this many commits are waiting. Default 64. */
  maxCommits: number;
  /** ...or once the waiting commits hold about this many bytes. Default 1 MiB. */
  maxBytes: number;
  /** ...or this many milliseconds after a commit, whatever comes first. Default 5. */
  delayMs: number;
  /**
   * A batch of at least this many commits (the group commit of concurrent mutations) writes its
   * versions, and every pending one, in its own transaction: its commits share the tables'
   * pages already, and logging them first would only add work. Default 4.
   */
  inlineBatchCommits: number;
  /** ...and so does a batch that writes at least this many rows (documents, index entries, receipts). Default 32. */
  inlineBatchRows: number;
}

export const DEFAULT_DEFERRED_VERSIONS: DeferredVersionsOptions = { maxCommits: 64, maxBytes: 1 << 20, delayMs: 5, inlineBatchCommits: 4, inlineBatchRows: 32 };

/**
 * Versions that stay in the log until `writePendingVersions()` is called: for tests and tools
 * that look at what is in the log and what is in the tables at a moment of their choosing.
 */
export const VERSIONS_KEPT_IN_LOG: DeferredVersionsOptions = { maxCommits: 1e6, maxBytes: 1e12, delayMs: 1e9, inlineBatchCommits: 1e6, inlineBatchRows: 1e6 };

/**
 * Past this many times the limits, a commit is refused rather than logged: the versions cannot
 * be written (a full disk, say), and the overlay in memory must not grow without bound.
 */
const PENDING_HARD_LIMIT_FACTOR = 16;

interface DocumentRow {
  id: string;
  ts: number;
  table_name: string;
  body: string | null;
}

/**
 * Opens (creating and migrating if needed) a SQLite database as Walk-in storage.
 *
 * @example
 * const storage = await openSqliteStorage({ filename: "data/app.sqlite" });
 * await storage.commitBatch(0, (view) => [
 *   { ts: view.latest + 1, id: "c1", documents: [{ id: "u1", table: "users", body: "{}" }], indexes: [], log: new Uint8Array() },
 * ]);
 * await storage.getDocument("u1", 1); // { id: "u1", table: "users", ts: 1, body: "{}" }
 */
export async function openSqliteStorage(options: SqliteStorageOptions): Promise<SqliteStorage> {
  const synchronous = options.synchronous ?? "full";
  // Checked before the file is opened: bad options change nothing on disk.
  const deferred = checkDeferredVersions(options.deferredVersions);
  const background = checkBackgroundCheckpoints(options.backgroundCheckpoints ?? synchronous === "normal");
  const db = openDatabase(options.filename, synchronous);
  try {
    const wal = db.pragma("journal_mode", { simple: true }) === "wal";
    const checkpointer = background !== null && wal ? new Checkpointer(db, synchronous, background) : null;
    const sweep = { ...DEFAULT_HISTORY_SWEEP, ...options.historySweep };
    // Under FULL the storage syncs the log itself (walSync.ts): right after each COMMIT, or in
    // the background for a caller that asked (`durableLater`); the connection only appends.
    const syncLog = synchronous === "full" && wal && !isPrivate(db.name);
    if (syncLog) db.pragma("synchronous = NORMAL");
    const logSync = syncLog ? (latest: Timestamp, name: string) => WalSync.open(options.filename, name, latest) : null;
    return new SqliteStorage(db, options.pruneBatchSize ?? DEFAULT_PRUNE_BATCH_SIZE, checkpointer, sweep, deferred, logSync);
  } catch (error) {
    db.close();
    throw error;
  }
}

/** Entries `reclaimIndex` deletes per write transaction. */
const RECLAIM_BATCH_ROWS = 5_000;

export class SqliteStorage implements Storage {
  readonly name: string;
  /**
   * The connection, for tests and operational tools (backups, pragmas). Writing through it
   * bypasses the storage's invariants. Versions may still be waiting in the log rather than in
   * their tables: `writePendingVersions()` first to see them there.
   */
  readonly db: Database.Database;

  /** Null for an in-memory database, or when background checkpoints are off. */
  readonly checkpointer: Checkpointer | null;
  private readonly scanner: Scanner;
  private readonly pruner: Pruner;
  private readonly selectClock: Database.Statement<[], { latest: number; trimmedThrough: number }>;
  private readonly selectLog: Database.Statement<[number, number, number], { ts: number; id: string; log: Buffer }>;
  private readonly insertLog: Database.Statement<[number, string, Uint8Array, Uint8Array | null]>;
  private readonly selectLoggedIds: Database.Statement<[string], { ts: number; id: string }>;
  private readonly selectDocument: Database.Statement<[string, number], DocumentRow>;
  /** Writes versions to their tables (a materialization's, or a batch's written inline). */
  private readonly versions: VersionWriter;
  /** The newest `raiseReadFloor` or `pruneHistory` timestamp: no read comes below it. */
  private readFloor: Timestamp = 0;
  /** The other connections on the same file, in this process or another, whose floors bound this one's pruning. */
  private readonly floors: FileFloors;
  /** Tells the engine of other connections' commits (`watchCommits`). */
  private readonly commitWatch: CommitWatch;
  /**
   * Another process, or another engine of this one, may commit to the file: the listener hears
   * of it within a few milliseconds (`commitWatch.ts`), without the commit's timestamp. Absent
   * for an in-memory database, which no other connection can open: an engine on it then knows
   * it is alone (it drops the entries of indexes its schema no longer declares, for one).
   */
  readonly watchCommits?: (listener: (latest?: Timestamp) => void, options?: { idle?: boolean }) => () => void;
  /** `Storage.othersCommitMark`: this connection's `PRAGMA data_version` (present with `watchCommits`). */
  readonly othersCommitMark?: () => number;
  /** The read floor the log was last trimmed through between sweeps (`trimLogToFloor`). */
  private logTrimmedToFloor: Timestamp = 0;
  private readonly indexTables: IndexTables;
  private readonly selectMeta: Database.Statement<[string], string>;
  private readonly upsertMeta: Database.Statement<[string, string]>;
  private readonly selectReceipt: Database.Statement<[string], StoredReceipt>;
  private readonly deleteOldReceipts: Database.Statement<[number, number]>;
  private readonly countDocuments: Database.Statement<[], number>;
  private readonly commitTransaction: Database.Transaction<(since: Timestamp, plan: CommitPlanner) => LoggedBatch>;
  /** The versions logged but not yet in their tables (see "Deferred versions"). */
  private readonly pending: PendingVersions;
  private readonly selectDataVersion: Database.Statement<[], number>;
  private readonly selectMaterialized: Database.Statement<[], number>;
  private readonly selectWrites: Database.Statement<[number], { ts: number; id: string; writes: Uint8Array | string | null }>;
  private readonly markMaterialized: Database.Statement<[number]>;
  private readonly loadPending: Database.Transaction<() => void>;
  private readonly materializeTransaction: Database.Transaction<() => { commits: PendingCommit[]; trimmedLog: boolean }>;
  /** `PRAGMA data_version` when the overlay was last brought up to date with the file. */
  private seenDataVersion = -1;
  /**
   * The clock as this connection's last commit left it, with `PRAGMA data_version` as of that
   * commit, which tells the next commit whether it may skip reading the log (`logSince`).
   */
  private ownClock: { dataVersion: number; latest: Timestamp; trimmedThrough: Timestamp } | null = null;
  private materializeTimer: NodeJS.Timeout | null = null;
  /** Under synchronous=FULL: what syncs the log (walSync.ts); `whenDurable` is set with it. */
  private readonly logSync: WalSync | null = null;
  whenDurable?: (ts: Timestamp) => Promise<void> | null;

  /** Use `openSqliteStorage`; this takes an already opened and migrated connection. */
  constructor(
    db: Database.Database,
    pruneBatchSize: number,
    checkpointer: Checkpointer | null = null,
    historySweep: HistorySweepOptions = DEFAULT_HISTORY_SWEEP,
    /** `null`: versions are written in their commit's transaction. */
    private readonly deferred: DeferredVersionsOptions | null = DEFAULT_DEFERRED_VERSIONS,
    /** Under synchronous=FULL: opens the log's sync (walSync.ts), given the newest commit and this storage's name. */
    logSync: ((latest: Timestamp, name: string) => WalSync) | null = null,
  ) {
    this.db = db;
    this.checkpointer = checkpointer;
    this.name = `sqlite:${db.name}`;
    this.indexTables = new IndexTables(db);
    this.scanner = new Scanner(this.indexTables);
    // See "The newest timestamp" above. The scalar max() is NULL if either side is, hence the
    // coalesce for an empty log.
    this.selectClock = db.prepare(
      `SELECT max(log_carried_ts, coalesce((SELECT max(ts) FROM commit_log), 0)) AS latest,
         log_trimmed_through AS trimmedThrough
       FROM clock WHERE singleton = 1`,
    );
    // Whatever is stored now was written before this storage could watch the writes: the first
    // sweep makes a full pass over it (prune.ts).
    this.pruner = new Pruner(db, this.indexTables, pruneBatchSize, historySweep, this.selectClock.get()!.latest);
    this.selectLog = db.prepare("SELECT ts, id, log FROM commit_log WHERE ts > ? AND ts <= ? ORDER BY ts LIMIT ?");
    this.insertLog = db.prepare("INSERT INTO commit_log (ts, id, log, writes) VALUES (?, ?, ?, ?)");
    // No index on id: this runs only after an unknown commit outcome, over a pruned log.
    this.selectLoggedIds = db.prepare("SELECT ts, id FROM commit_log WHERE id IN (SELECT value FROM json_each(?))");
    this.selectDocument = db.prepare(
      "SELECT id, ts, table_name, body FROM documents WHERE id = ? AND ts <= ? ORDER BY ts DESC LIMIT 1",
    );
    this.versions = new VersionWriter(db, this.indexTables);
    this.selectMeta = db.prepare<[string], string>("SELECT value FROM meta WHERE key = ?").pluck();
    this.upsertMeta = db.prepare(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    );
    this.selectReceipt = db.prepare("SELECT ts, body FROM receipts WHERE key = ?");
    this.deleteOldReceipts = db.prepare(
      "DELETE FROM receipts WHERE key IN (SELECT key FROM receipts WHERE written_at < ? ORDER BY written_at LIMIT ?)",
    );
    this.countDocuments = db.prepare<[], number>("SELECT count(*) FROM documents").pluck();
    this.selectDataVersion = db.prepare<[], number>("PRAGMA data_version").pluck();
    this.selectMaterialized = db.prepare<[], number>("SELECT materialized_through FROM clock WHERE singleton = 1").pluck();
    this.selectWrites = db.prepare("SELECT ts, id, writes FROM commit_log WHERE ts > ? ORDER BY ts");
    this.markMaterialized = db.prepare("UPDATE clock SET materialized_through = max(materialized_through, ?) WHERE singleton = 1");
    this.pending = new PendingVersions(this.selectMaterialized.get()!);
    // The clock and the rows from one snapshot (inside a commit or a materialization, a savepoint).
    this.loadPending = db.transaction(() => {
      const through = this.selectMaterialized.get()!;
      this.pending.dropThrough(through);
      for (const row of this.selectWrites.iterate(Math.max(this.pending.loadedThrough, through))) {
        if (row.writes === null) {
          throw new Error(`Walk-in storage ${this.name}: commit ${row.ts} is logged without its versions and not in its tables; the file is damaged.`);
        }
        this.pending.add(decodeWrites(row.ts, row.id, row.writes));
      }
    });
    this.commitTransaction = db.transaction((since: Timestamp, plan: CommitPlanner) => {
      // Under the write lock: the overlay holds every commit of every connection that is not in
      // the tables yet, which the receipt check and a materialization below depend on.
      const dataVersion = this.syncPending();
      const view = this.logSince(since, dataVersion);
      const written = plan(view);
      checkPlannedCommits(written, view.latest, this.name);
      const writtenAt = Date.now();
      const logged: PendingCommit[] = [];
      const defer = this.deferred !== null && written.length < this.deferred.inlineBatchCommits && rowsOf(written) < this.deferred.inlineBatchRows;
      if (defer) {
        this.checkRepeats(written);
        // Each commit's log row is what moves the newest timestamp (see above), and it holds
        // the whole commit: that row is all a commit writes.
        for (const commit of written) {
          const writes = encodeWrites(commit, writtenAt);
          this.insertLog.run(commit.ts, commit.id, commit.log, writes);
          logged.push({ commit, writtenAt, bytes: writes.length });
        }
      } else {
        // Everything logged before must reach the tables first (materialized_through covers
        // every commit below it), then this batch's versions go in with their log rows.
        for (const commit of written) this.insertLog.run(commit.ts, commit.id, commit.log, null);
        this.versions.write([...this.pending.all(), ...written.map((commit) => ({ commit, writtenAt, bytes: 0 }))], this.pruneFloor());
        const newest = written[written.length - 1]?.ts ?? this.pending.all()[this.pending.size - 1]?.commit.ts;
        if (newest !== undefined) this.markMaterialized.run(newest);
      }
      const trimmedLog = !defer && this.trimLogToFloor();
      return { result: { view, written }, logged, deferred: defer, dataVersion, trimmedLog };
    });
    this.materializeTransaction = db.transaction(() => {
      this.syncPending();
      const commits = [...this.pending.all()];
      this.versions.write(commits, this.pruneFloor());
      if (commits.length > 0) this.markMaterialized.run(commits[commits.length - 1]!.commit.ts);
      return { commits, trimmedLog: this.trimLogToFloor() };
    });
    // Commits logged before a crash (or by a connection that closed without writing them) are
    // served from the overlay until they are written.
    this.syncPending();
    if (this.pending.size > 0) this.scheduleMaterialize();
    // An engine reads only at or after the latest commit it found when it opened (as on
    // PostgreSQL, postgres/snapshotFloors.ts, step 1), so that bounds this connection's reads
    // for the others until its engine promises more. Its own pruning still starts from 0: a
    // caller without an engine may read any timestamp it has not pruned. Registered first and
    // read after (processFloors.ts, step 1): another process never prunes above it.
    let openedAt = Infinity;
    // A connection closed without `close` (a tool, a test's crash) reads nothing more.
    const floorOf = () => (db.open ? Math.max(this.readFloor, openedAt) : Infinity);
    const background = this.checkpointer;
    this.floors = FileFloors.join({
      db,
      get readFloor() {
        return floorOf();
      },
      get mayWriteNow() {
        return !background?.writeShouldWait;
      },
    });
    openedAt = this.selectClock.get()!.latest;
    if (logSync !== null) {
      const sync = logSync(this.selectClock.get()!.latest, this.name);
      this.logSync = sync;
      this.whenDurable = (ts) => sync.whenDurable(ts);
    }
    this.commitWatch = new CommitWatch(db);
    if (!isPrivate(db.name)) {
      this.watchCommits = (listener, options) => this.commitWatch.add(listener, options?.idle ?? false);
      this.othersCommitMark = () => this.selectDataVersion.get()!;
    }
  }

  async latestTimestamp(): Promise<Timestamp> {
    // One statement: the clock row and the log's last row come from one snapshot.
    return this.selectClock.get()!.latest;
  }

  async getDocument(id: string, readTs: Timestamp): Promise<DocumentVersion | null> {
    this.syncPendingFor(readTs);
    const pending = this.pending.document(id, readTs);
    if (pending !== undefined) return pending.body === null ? null : { ...pending };
    return this.tableDocument(id, readTs);
  }

  async scan(request: ScanRequest): Promise<IndexEntry[]> {
    this.syncPendingFor(request.readTs);
    return this.scanner.scan(request, this.pending, (id, readTs) => this.tableDocument(id, readTs));
  }

  async scanVersions(request: ScanRequest): Promise<IndexVersion[]> {
    this.syncPendingFor(request.readTs);
    return this.scanner.versions(request, this.pending, (id, readTs) => this.tableDocument(id, readTs));
  }

  async commitBatch(since: Timestamp, plan: CommitPlanner, options?: CommitOptions): Promise<CommitBatchResult> {
    // Before the write lock, not inside it: the background checkpointer asks for a moment with
    // no write in progress, in which it copies the whole log, so this commit starts it over.
    // Nothing is committed after a failed sync (walSync.ts): it could not be promised durable.
    this.logSync?.checkUsable();
    if (this.checkpointer?.writeShouldWait) await this.checkpointer.pauseForRestart();
    this.catchUpBeforeCommit();
    // BEGIN IMMEDIATE takes the write lock before the log is read, so the planner's view stays
    // true until the batch is written, even if another connection shares the file. With
    // synchronous=FULL the COMMIT returns only after the write-ahead log is on disk: one fsync
    // for the whole batch.
    let batch: LoggedBatch;
    try {
      batch = this.commitTransaction.immediate(since, plan);
    } catch (error) {
      // The index tables the batch created were rolled back with it.
      this.indexTables.settle(false);
      if (isPrimaryKeyViolation(error)) {
        // The message names the table whose key clashed ("UNIQUE constraint failed: receipts.key").
        throw /\breceipts\./.test((error as Error).message) ? repeatedReceiptError(this.name, null, error) : repeatedWriteError(this.name, error);
      }
      throw error;
    }
    // The batch landed. From here on nothing may throw (an error would say it did not).
    this.indexTables.settle(true);
    const { view, written } = batch.result;
    const latest = written.length > 0 ? written[written.length - 1]!.ts : view.latest;
    if (this.logSync !== null && written.length > 0) this.syncLog(latest, options?.durableLater === true);
    // A batch that trimmed the log read it before: the next commit reads it again.
    this.ownClock = batch.trimmedLog ? null : { dataVersion: batch.dataVersion, latest, trimmedThrough: view.trimmedThrough };
    if (!batch.deferred) {
      // Before anything else: every version that reached the tables is recorded for the
      // history sweep (dirtyGroups.ts, "Why no garbage is forgotten").
      const commits = [...this.pending.all().map((pending) => pending.commit), ...written];
      this.afterMaterialized(commits, writtenPages(commits, written));
      return batch.result;
    }
    const limits = this.deferred!;
    for (const pending of batch.logged) this.pending.add(pending);
    this.checkpointer?.afterCommit(loggedPages(batch.logged));
    if (this.pending.size >= limits.maxCommits || this.pending.bytes >= limits.maxBytes) {
      // Errors are left for the next trigger: the batch is logged, and reads see it.
      try {
        this.writePendingVersions();
      } catch {
        this.scheduleMaterialize();
      }
    } else if (this.pending.size > 0) {
      this.scheduleMaterialize();
    }
    return batch.result;
  }

  /**
   * Writes the versions of every commit that is logged but not yet in its tables (this
   * connection's and other connections'), in one transaction. Runs on its own after commits
   * (see "Deferred versions"); call it directly to see every version in the tables through
   * `db`, as tests and tools that read them do.
   *
   * `syncOwn` (the timer's call, see `scheduleMaterialize`): under synchronous=FULL, sync the
   * log after this transaction, on the thread pool (walSync.ts), in the pause after a commit:
   * the next commit's sync would otherwise write its pages too while its caller waits.
   * Otherwise it is not synced on its own: the log rows are, and they are all these versions
   * are made of. If a crash loses this transaction, it loses materialized_through with it, and
   * opening the file writes the versions again; the next commit's sync covers it otherwise.
   */
  writePendingVersions(syncOwn = false): void {
    if (this.materializeTimer !== null) clearTimeout(this.materializeTimer);
    this.materializeTimer = null;
    // Also with deferredVersions false: other connections, or a crash, may have left some.
    if (!this.db.open) return;
    this.syncPending();
    if (this.pending.size === 0) return;
    let commits: PendingCommit[];
    try {
      const materialized = this.materializeTransaction.immediate();
      commits = materialized.commits;
      if (materialized.trimmedLog) this.ownClock = null;
    } catch (error) {
      this.indexTables.settle(false);
      throw error;
    }
    this.indexTables.settle(true);
    if (syncOwn) this.logSync?.syncInBackground();
    const written = commits.map((pending) => pending.commit);
    this.afterMaterialized(written, writtenPages(written, []));
  }

  /**
   * Under synchronous=FULL (walSync.ts): syncs the log through the batch just written, here and
   * now, or (`durableLater`, the caller will wait for `whenDurable`) on the thread pool while
   * the caller goes on. A failed sync leaves the batch in the log but not known to be on disk:
   * its outcome is unknown, and `findCommits` cannot settle it either (the storage refuses
   * everything after a failed sync).
   */
  private syncLog(latest: Timestamp, durableLater: boolean): void {
    const sync = this.logSync!;
    sync.committed(latest);
    if (durableLater) {
      sync.whenDurable(latest)?.catch(() => {}); // the engine hears of a failure through its own whenDurable
      return;
    }
    try {
      sync.syncNow();
    } catch (error) {
      throw new CommitOutcomeUnknownError(`Walk-in storage ${this.name}: the batch reached the log, but syncing the log failed; it may or may not survive a restart.`, { cause: error });
    }
  }

  async commitsSince(since: Timestamp, limit: number): Promise<CommitLogView> {
    checkLogLimit(limit);
    // One read transaction, so the clock and the log rows come from the same snapshot.
    return this.db.transaction(() => this.readLog(since, limit))();
  }

  async findCommits(ids: readonly string[]): Promise<Map<string, Timestamp>> {
    // After a failed sync nothing here can say what is on disk (walSync.ts).
    this.logSync?.checkUsable();
    // Taking the write lock waits out any commit in flight on another connection.
    const rows = this.db.transaction(() => this.selectLoggedIds.all(JSON.stringify(ids))).immediate();
    return new Map(rows.map((row) => [row.id, row.ts]));
  }

  async dropIndex(indexId: string): Promise<void> {
    // Logged entries of the index go to its table first, so that none is written after the delete.
    this.writePendingVersions();
    // One statement, so a rebuild that starts right after never has its new entries deleted.
    // The table stays (tables are never dropped: see indexTables.ts).
    this.indexTables.find(indexId)?.statement<[], unknown>("drop", (table) => `DELETE FROM ${table}`).run();
  }

  async reclaimIndex(indexId: string, guard: ReclaimGuard): Promise<boolean> {
    this.writePendingVersions();
    // A batch at a time, each in a write transaction of its own with the checks (FileFloors.alone
    // says why they hold through it), and a turn of the event loop between batches: deleting a
    // large index at once would hold the file's write lock, and this process, for as long as
    // it took. Stopping between batches is safe: the index is not listed as built, so an
    // engine that declares it rebuilds it over whatever entries are left.
    const batch = this.db.transaction(() => {
      if (!this.floors.alone() || !guard.allows(this.selectMeta.get(guard.metaKey) ?? null)) return "kept";
      // Versions logged since the write above (by a process gone by now) would reach the
      // index's table after this delete: leave it for another time.
      this.syncPending();
      if (this.pending.size > 0) return "kept";
      const table = this.indexTables.find(indexId);
      if (table === null) return "done";
      const deleted = table
        .statement<[number], unknown>("reclaim batch", (name) => `DELETE FROM ${name} WHERE (key, ts) IN (SELECT key, ts FROM ${name} LIMIT ?)`)
        .run(RECLAIM_BATCH_ROWS).changes;
      return deleted < RECLAIM_BATCH_ROWS ? "done" : "more";
    });
    for (;;) {
      const outcome = batch.immediate();
      if (outcome !== "more") return outcome === "done";
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  raiseReadFloor(ts: Timestamp): void {
    if (ts > this.readFloor) this.readFloor = ts;
  }

  async pruneHistory(ts: Timestamp): Promise<SqlitePruneReport> {
    this.raiseReadFloor(ts);
    // The sweep reads the tables, and the log is trimmed only below what they hold.
    this.writePendingVersions();
    // The prune trims the log, a step at a time: a commit after any step reads it.
    this.ownClock = null;
    // Not below another connection's floor on this file (fileFloors.ts).
    return this.pruner.prune(this.floors.below(ts), () => (this.ownClock = null));
  }

  async getMeta(key: string): Promise<string | null> {
    return this.selectMeta.get(key) ?? null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.upsertMeta.run(key, value);
  }

  async getReceipt(key: string): Promise<StoredReceipt | null> {
    this.syncPending();
    const pending = this.pending.receipt(key);
    if (pending !== undefined) return { ...pending };
    return this.selectReceipt.get(key) ?? null;
  }

  async pruneReceipts(writtenBefore: number, limit: number): Promise<number> {
    checkPruneReceipts(writtenBefore, limit);
    this.writePendingVersions();
    return this.deleteOldReceipts.run(writtenBefore, limit).changes;
  }

  /** How many versions are stored (all snapshots), e.g. to watch history grow and get pruned. */
  async stats(): Promise<{ documents: number; indexEntries: number }> {
    this.writePendingVersions();
    // One read transaction: both counts from the same state.
    return this.db.transaction(() => {
      let indexEntries = 0;
      for (const table of this.indexTables.all()) {
        indexEntries += table.statement<[], number>("count", (name) => `SELECT count(*) FROM ${name}`, "pluck").get()!;
      }
      return { documents: this.countDocuments.get()!, indexEntries };
    })();
  }

  async close(): Promise<void> {
    this.commitWatch.stop();
    try {
      this.writePendingVersions();
    } catch {
      // They stay in the log, and the next open serves and writes them.
    }
    // Synced before the file closes: the last commits must not wait on the thread pool.
    this.logSync?.close();
    try {
      // The worker first: it closes its connection before the main one does the final checkpoint.
      await this.checkpointer?.close();
    } finally {
      // Whatever failed, nothing reads through this storage once close was called: its floor
      // must not hold the other connections' pruning back. It leaves while the database is
      // still open: the process's last connection on the file deletes the process's row of
      // read floors through it (fileFloors.ts).
      try {
        this.floors.leave();
      } finally {
        if (this.db.open) this.db.close();
      }
    }
  }

  /** Where this connection may prune: its own floor, or another connection's on the file if lower. */
  private pruneFloor(): Timestamp {
    return this.floors.below(this.readFloor);
  }

  /**
   * A commit's view of the log, under the write lock, with `dataVersion` just read. When no
   * other connection has committed since this connection's last commit (`PRAGMA data_version`
   * is unchanged: it changes with every commit of another connection, never with this one's),
   * the only writes to the log and the clock since were this connection's own: that commit,
   * which left the newest timestamp at `ownClock.latest`, and pruning, which forgets `ownClock`
   * before it trims. So for a planner that has seen every commit through that timestamp
   * (`since >= latest`), the log holds nothing new, and reading it (a statement of about 4 µs,
   * 3% of a one-document insert under synchronous=NORMAL) would only say so.
   */
  private logSince(since: Timestamp, dataVersion: number): CommitLogView {
    const own = this.ownClock;
    if (own !== null && own.dataVersion === dataVersion && since >= own.latest) {
      return { latest: own.latest, commits: [], trimmedThrough: own.trimmedThrough };
    }
    return this.readLog(since, Number.MAX_SAFE_INTEGER);
  }

  /** The clock and the log after `since` (at most `limit` rows), read in the caller's transaction. */
  private readLog(since: Timestamp, limit: number): CommitLogView {
    const clock = this.selectClock.get()!;
    const commits: LoggedCommit[] = since >= clock.latest
      ? []
      : this.selectLog.all(since, clock.latest, limit).map((row) => ({ ts: row.ts, id: row.id, log: new Uint8Array(row.log) }));
    const latest = commits.length === limit ? commits[commits.length - 1]!.ts : clock.latest;
    return { latest, commits, trimmedThrough: clock.trimmedThrough };
  }

  /** The newest version of `id` at or before `readTs` in the documents table (not the overlay). */
  private tableDocument(id: string, readTs: Timestamp): DocumentVersion | null {
    const row = this.selectDocument.get(id, readTs);
    if (row === undefined || row.body === null) return null;
    return { id: row.id, table: row.table_name, ts: row.ts, body: row.body };
  }

  /**
   * Brings the overlay up to date with the file. Cheap when nothing changed: `PRAGMA
   * data_version` changes only when another connection has committed, and this connection's
   * own commits go into the overlay as they land. The version is read before the load, so a
   * commit that lands during the load is loaded again by the next call, never missed.
   * Answers the version it read.
   */
  private syncPending(): number {
    const version = this.selectDataVersion.get()!;
    if (version === this.seenDataVersion) return version;
    this.loadPending();
    this.seenDataVersion = version;
    return version;
  }

  /** `syncPending` for a read at `readTs`: skipped when the overlay already covers it (header, 3). */
  private syncPendingFor(readTs: Timestamp): void {
    if (readTs > this.pending.loadedThrough) this.syncPending();
  }

  /**
   * A step of the commit log's trim toward the read floor, in the caller's write transaction (a
   * materialization, or a batch that writes its versions inline). The floor is what a sweep
   * would trim through (`Storage.raiseReadFloor` allows it), and it rises about every 256
   * commits, so each step finds a few hundred rows, written moments ago: their pages are still
   * in the page cache, and deleting them costs about 1 µs a row (0.29 ms a step on average in
   * the auth benchmark, 13 ms at the longest of 154). Left to the sweep, the same rows were a
   * second old and cost 2.6–12.7 µs a row (`bench/statementTimes.ts`, 2026-12-04). Answers
   * whether rows went (this connection's view of the log is then out of date). If the
   * transaction rolls back after a step that reached the floor, the rows stay until the floor
   * rises again or a sweep trims them: only how soon they go depends on it.
   */
  private trimLogToFloor(): boolean {
    const floor = this.pruneFloor();
    if (floor <= this.logTrimmedToFloor) return false;
    const { done, deleted } = this.pruner.trimLogWithin(floor);
    if (done) this.logTrimmedToFloor = floor;
    return deleted > 0;
  }

  /** Refuses a commit while the overlay is far past its limits and cannot be written out. */
  private catchUpBeforeCommit(): void {
    const limits = this.deferred;
    if (limits === null) return;
    if (this.pending.size < PENDING_HARD_LIMIT_FACTOR * limits.maxCommits && this.pending.bytes < PENDING_HARD_LIMIT_FACTOR * limits.maxBytes) return;
    try {
      this.writePendingVersions();
    } catch (error) {
      throw new Error(
        `Walk-in storage ${this.name}: the documents of ${this.pending.size} logged commits cannot be written to their tables ` +
          `(${(error as Error).message}), so no new commit is taken until they can. Nothing was written.`,
        { cause: error },
      );
    }
  }

  /**
   * Writes the pending versions `delayMs` after a commit, with their own fsync under FULL
   * (`writePendingVersions(true)`). Why: the log is one file, and an fsync writes every page of
   * it that is not on disk yet. Unsynced, this transaction's pages (three or four for a small
   * batch: documents, index entries, the clock) would be written by the next commit's fsync,
   * on that commit's latency, though no commit needs them. The timer fires when the event loop
   * is free, mostly in the pause before the next commit, so its own fsync is paid there. A
   * round trip under FULL, one call every 6.7 ms (bench/transport), took 1.02–1.22 ms at the
   * median against 1.21–1.31 ms with the versions left to the next commit's fsync. Writes on
   * a commit's path (64 commits or 1 MiB pending, see `commitBatch`) stay unsynced: there an
   * fsync of their own would add to that commit's latency.
   */
  private scheduleMaterialize(): void {
    if (this.materializeTimer !== null || this.deferred === null) return;
    const write = () => {
      try {
        this.writePendingVersions(true);
      } catch {
        // Retried after the next commit; past the hard limit, commits are refused with the cause.
      }
    };
    this.materializeTimer = setTimeout(() => {
      this.materializeTimer = null;
      // Not in the middle of a pause for the log to start over (checkpointer.ts): after it.
      if (this.checkpointer?.writeShouldWait) void this.checkpointer.pauseForRestart().then(write);
      else write();
    }, this.deferred.delayMs);
    this.materializeTimer.unref();
  }

  /**
   * Bookkeeping once `commits` are in their tables (right after their transaction), which wrote
   * about `pages` pages to the write-ahead log (the checkpointer's cadence goes by it).
   */
  private afterMaterialized(commits: readonly Commit[], pages: number): void {
    if (commits.length === 0) return;
    this.pruner.recordWritten(commits);
    this.pending.dropThrough(commits[commits.length - 1]!.ts);
    this.checkpointer?.afterCommit(pages);
  }

  /**
   * What the tables' primary keys would refuse when the versions are written later: a document
   * or an index key written twice in one commit, a receipt key written twice or already stored.
   * Refused now, with nothing written, as the storage contract says.
   */
  private checkRepeats(commits: readonly Commit[]): void {
    const receipts = new Set<string>();
    for (const commit of commits) {
      if (hasRepeat(commit.documents, (doc) => doc.id, (a, b) => a.id === b.id)) throw repeatedWriteError(this.name, null);
      if (hasRepeat(commit.indexes, (entry) => entryGroup(entry.indexId, entry.key), sameEntryGroup)) {
        throw repeatedWriteError(this.name, null);
      }
      for (const { key } of commit.receipts ?? []) {
        if (receipts.has(key) || this.pending.receipt(key) !== undefined || this.selectReceipt.get(key) !== undefined) {
          throw repeatedReceiptError(this.name, key);
        }
        receipts.add(key);
      }
    }
  }
}

/** A batch as `commitTransaction` returns it: the result, and (deferred) what goes into the overlay. */
interface LoggedBatch {
  result: CommitBatchResult;
  logged: PendingCommit[];
  /** False: the batch wrote its versions (and every pending one) in its own transaction. */
  deferred: boolean;
  /** `PRAGMA data_version` under the batch's write lock. */
  dataVersion: number;
  /** The batch also trimmed the commit log toward the read floor (`trimLogToFloor`). */
  trimmedLog: boolean;
}

/** The rows a batch's versions take in their tables. */
function rowsOf(commits: readonly Commit[]): number {
  let rows = 0;
  for (const commit of commits) rows += commit.documents.length + commit.indexes.length + (commit.receipts?.length ?? 0);
  return rows;
}

function checkDeferredVersions(given: unknown): DeferredVersionsOptions | null {
  if (given === false) return null;
  if (given !== undefined && (typeof given !== "object" || given === null || Array.isArray(given))) {
    throw new TypeError(`openSqliteStorage: deferredVersions must be false or an object of limits (maxCommits, maxBytes, delayMs, ...), got ${JSON.stringify(given)}.`);
  }
  const options = { ...DEFAULT_DEFERRED_VERSIONS, ...(given as Partial<DeferredVersionsOptions> | undefined) };
  for (const [name, value] of Object.entries(options)) {
    if (!(typeof value === "number" && value >= (name === "delayMs" ? 0 : 1))) {
      throw new RangeError(`openSqliteStorage: deferredVersions.${name} must be a number >= ${name === "delayMs" ? 0 : 1}, got ${String(value)}.`);
    }
  }
  return options;
}

/** The worker's options, or null for none; a typo or a bad value is an error, not a silent default. */
function checkBackgroundCheckpoints(given: unknown): CheckpointerOptions | null {
  if (given === false) return null;
  if (given === true) return DEFAULT_CHECKPOINTER;
  if (typeof given !== "object" || given === null || Array.isArray(given)) {
    throw new TypeError(`openSqliteStorage: backgroundCheckpoints must be true, false or an object of settings (passPages, restartPages, backstopPages, idleMs), got ${JSON.stringify(given)}.`);
  }
  for (const [name, value] of Object.entries(given)) {
    if (!Object.hasOwn(DEFAULT_CHECKPOINTER, name)) {
      throw new TypeError(`openSqliteStorage: backgroundCheckpoints has no setting "${name}"; the settings are ${Object.keys(DEFAULT_CHECKPOINTER).join(", ")}.`);
    }
    if (!(Number.isInteger(value) && (value as number) >= 1)) {
      throw new RangeError(`openSqliteStorage: backgroundCheckpoints.${name} must be a whole number >= 1, got ${String(value)}.`);
    }
  }
  return { ...DEFAULT_CHECKPOINTER, ...(given as Partial<CheckpointerOptions>) };
}

/**
 * Every version in a commit has the commit's new ts, so a key clash is a write repeated in it:
 * an entry table's or receipt's primary key, or the unique (id, ts) index of documents (schema.ts).
 */
function isPrimaryKeyViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "SQLITE_CONSTRAINT_PRIMARYKEY" || code === "SQLITE_CONSTRAINT_UNIQUE";
}

/** Up to this many writes, a commit's writes are compared pair by pair instead of through a Set. */
const PAIRWISE_REPEATS = 8;

/**
 * Whether two of `items` are the same write. Most commits write a handful of documents and
 * entries: comparing those pair by pair allocates nothing, where building a Set of group names
 * (a string per entry, its key converted byte by byte) was 2% of a one-document insert.
 */
function hasRepeat<T>(items: readonly T[], name: (item: T) => string, same: (a: T, b: T) => boolean): boolean {
  if (items.length <= 1) return false;
  if (items.length > PAIRWISE_REPEATS) return new Set(items.map(name)).size !== items.length;
  for (let i = 1; i < items.length; i++) {
    for (let j = 0; j < i; j++) if (same(items[i]!, items[j]!)) return true;
  }
  return false;
}

function sameEntryGroup(a: IndexWrite, b: IndexWrite): boolean {
  return a.indexId === b.indexId && compareBytes(a.key, b.key) === 0;
}

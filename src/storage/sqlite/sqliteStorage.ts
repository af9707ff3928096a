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
 * A Walk-in from before this layout would read the clock column alone and see an old value;
 * the migration that renamed the column bumped the schema version, so it refuses the file.
 */
import type Database from "better-sqlite3";
import type {
  Commit,
  CommitBatchResult,
  CommitLogView,
  CommitPlanner,
  DocumentVersion,
  IndexEntry,
  LoggedCommit,
  StoredReceipt,
  ScanRequest,
  Storage,
  Timestamp,
} from "../types.js";
import { checkLogLimit, checkPlannedCommits, checkPruneReceipts, repeatedReceiptError, repeatedWriteError } from "../plannedCommits.js";
import { DEFAULT_HISTORY_SWEEP, DEFAULT_PRUNE_BATCH_SIZE, Pruner, type HistorySweepOptions, type SqlitePruneReport } from "./prune.js";
import { Scanner } from "./scan.js";
import { IndexTables } from "./indexTables.js";
import { toBuffer } from "../sqlBounds.js";
import { openDatabase, type SqliteSynchronous } from "./schema.js";
import { Checkpointer, DEFAULT_CHECKPOINTER, type CheckpointerOptions } from "./checkpointer.js";

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
   * `checkpointer.ts`). Default true; ignored for `":memory:"`. `false` leaves it to SQLite's
   * automatic checkpoint, in the commit that fills the log.
   */
  backgroundCheckpoints?: boolean | Partial<CheckpointerOptions>;
}

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
  const db = openDatabase(options.filename, synchronous);
  try {
    const background = options.backgroundCheckpoints ?? true;
    const checkpointer =
      background !== false && db.pragma("journal_mode", { simple: true }) === "wal"
        ? new Checkpointer(db, synchronous, { ...DEFAULT_CHECKPOINTER, ...(background === true ? {} : background) })
        : null;
    const sweep = { ...DEFAULT_HISTORY_SWEEP, ...options.historySweep };
    return new SqliteStorage(db, options.pruneBatchSize ?? DEFAULT_PRUNE_BATCH_SIZE, checkpointer, sweep);
  } catch (error) {
    db.close();
    throw error;
  }
}

export class SqliteStorage implements Storage {
  readonly name: string;
  /**
   * The connection, for tests and operational tools (backups, pragmas). Writing through it
   * bypasses the storage's invariants.
   */
  readonly db: Database.Database;

  /** Null for an in-memory database, or when background checkpoints are off. */
  readonly checkpointer: Checkpointer | null;
  private readonly scanner: Scanner;
  private readonly pruner: Pruner;
  private readonly selectClock: Database.Statement<[], { latest: number; trimmedThrough: number }>;
  private readonly selectLog: Database.Statement<[number, number, number], { ts: number; id: string; log: Buffer }>;
  private readonly insertLog: Database.Statement<[number, string, Buffer]>;
  private readonly selectLoggedIds: Database.Statement<[string], { ts: number; id: string }>;
  private readonly selectDocument: Database.Statement<[string, number], DocumentRow>;
  private readonly insertDocument: Database.Statement<[string, number, string, string | null]>;
  private readonly indexTables: IndexTables;
  private readonly selectMeta: Database.Statement<[string], string>;
  private readonly upsertMeta: Database.Statement<[string, string]>;
  private readonly insertReceipt: Database.Statement<[string, number, number, string]>;
  private readonly selectReceipt: Database.Statement<[string], StoredReceipt>;
  private readonly deleteOldReceipts: Database.Statement<[number, number]>;
  private readonly countDocuments: Database.Statement<[], number>;
  private readonly commitTransaction: Database.Transaction<(since: Timestamp, plan: CommitPlanner) => CommitBatchResult>;

  /** Use `openSqliteStorage`; this takes an already opened and migrated connection. */
  constructor(
    db: Database.Database,
    pruneBatchSize: number,
    checkpointer: Checkpointer | null = null,
    historySweep: HistorySweepOptions = DEFAULT_HISTORY_SWEEP,
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
    this.insertLog = db.prepare("INSERT INTO commit_log (ts, id, log) VALUES (?, ?, ?)");
    // No index on id: this runs only after an unknown commit outcome, over a pruned log.
    this.selectLoggedIds = db.prepare("SELECT ts, id FROM commit_log WHERE id IN (SELECT value FROM json_each(?))");
    this.selectDocument = db.prepare(
      "SELECT id, ts, table_name, body FROM documents WHERE id = ? AND ts <= ? ORDER BY ts DESC LIMIT 1",
    );
    this.insertDocument = db.prepare("INSERT INTO documents (id, ts, table_name, body) VALUES (?, ?, ?, ?)");
    this.selectMeta = db.prepare<[string], string>("SELECT value FROM meta WHERE key = ?").pluck();
    this.upsertMeta = db.prepare(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    );
    this.insertReceipt = db.prepare("INSERT INTO receipts (key, ts, written_at, body) VALUES (?, ?, ?, ?)");
    this.selectReceipt = db.prepare("SELECT ts, body FROM receipts WHERE key = ?");
    this.deleteOldReceipts = db.prepare(
      "DELETE FROM receipts WHERE key IN (SELECT key FROM receipts WHERE written_at < ? ORDER BY written_at LIMIT ?)",
    );
    this.countDocuments = db.prepare<[], number>("SELECT count(*) FROM documents").pluck();
    this.commitTransaction = db.transaction((since: Timestamp, plan: CommitPlanner) => {
      const view = this.readLog(since, Number.MAX_SAFE_INTEGER);
      const written = plan(view);
      checkPlannedCommits(written, view.latest, this.name);
      // Each commit's log row is what moves the newest timestamp (see above).
      for (const commit of written) this.writeCommit(commit);
      return { view, written };
    });
  }

  async latestTimestamp(): Promise<Timestamp> {
    // One statement: the clock row and the log's last row come from one snapshot.
    return this.selectClock.get()!.latest;
  }

  async getDocument(id: string, readTs: Timestamp): Promise<DocumentVersion | null> {
    const row = this.selectDocument.get(id, readTs);
    if (row === undefined || row.body === null) return null;
    return { id: row.id, table: row.table_name, ts: row.ts, body: row.body };
  }

  async scan(request: ScanRequest): Promise<IndexEntry[]> {
    return this.scanner.scan(request);
  }

  async commitBatch(since: Timestamp, plan: CommitPlanner): Promise<CommitBatchResult> {
    // BEGIN IMMEDIATE takes the write lock before the log is read, so the planner's view stays
    // true until the batch is written, even if another connection shares the file. With
    // synchronous=FULL the COMMIT returns only after the write-ahead log is on disk: one fsync
    // for the whole batch.
    let result: CommitBatchResult;
    try {
      result = this.commitTransaction.immediate(since, plan);
    } catch (error) {
      // The index tables the batch created were rolled back with it.
      this.indexTables.settle(false);
      if (isPrimaryKeyViolation(error)) {
        // The message names the table whose key clashed ("UNIQUE constraint failed: receipts.key").
        throw /\breceipts\./.test((error as Error).message) ? repeatedReceiptError(this.name, null, error) : repeatedWriteError(this.name, error);
      }
      throw error;
    }
    // The batch landed. From here on nothing may throw (an error would say it did not), and
    // before anything else: every commit that landed is recorded for the history sweep
    // (dirtyGroups.ts, "Why no garbage is forgotten").
    this.pruner.recordWritten(result.written);
    this.indexTables.settle(true);
    if (this.checkpointer !== null && result.written.length > 0) {
      // An estimate: a leaf per row written (in different B-trees), one for the log row, and
      // about half a page more per row for splits (one-document inserts measure ~7 pages).
      let pages = 0;
      for (const commit of result.written) {
        const rows = commit.documents.length + commit.indexes.length + 2 * (commit.receipts?.length ?? 0);
        pages += 2 + Math.ceil(1.5 * rows);
      }
      this.checkpointer.afterCommit(pages);
    }
    return result;
  }

  async commitsSince(since: Timestamp, limit: number): Promise<CommitLogView> {
    checkLogLimit(limit);
    // One read transaction, so the clock and the log rows come from the same snapshot.
    return this.db.transaction(() => this.readLog(since, limit))();
  }

  async findCommits(ids: readonly string[]): Promise<Map<string, Timestamp>> {
    // Taking the write lock waits out any commit in flight on another connection.
    const rows = this.db.transaction(() => this.selectLoggedIds.all(JSON.stringify(ids))).immediate();
    return new Map(rows.map((row) => [row.id, row.ts]));
  }

  async dropIndex(indexId: string): Promise<void> {
    // One statement, so a rebuild that starts right after never has its new entries deleted.
    // The table stays (tables are never dropped: see indexTables.ts).
    this.indexTables.find(indexId)?.statement<[], unknown>("drop", (table) => `DELETE FROM ${table}`).run();
  }

  pruneHistory(ts: Timestamp): Promise<SqlitePruneReport> {
    return this.pruner.prune(ts);
  }

  async getMeta(key: string): Promise<string | null> {
    return this.selectMeta.get(key) ?? null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.upsertMeta.run(key, value);
  }

  async getReceipt(key: string): Promise<StoredReceipt | null> {
    return this.selectReceipt.get(key) ?? null;
  }

  async pruneReceipts(writtenBefore: number, limit: number): Promise<number> {
    checkPruneReceipts(writtenBefore, limit);
    return this.deleteOldReceipts.run(writtenBefore, limit).changes;
  }

  /** How many versions are stored (all snapshots), e.g. to watch history grow and get pruned. */
  async stats(): Promise<{ documents: number; indexEntries: number }> {
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
    // The worker first: it closes its connection before the main one does the final checkpoint.
    await this.checkpointer?.close();
    if (this.db.open) this.db.close();
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

  private writeCommit(commit: Commit): void {
    for (const doc of commit.documents) this.insertDocument.run(doc.id, commit.ts, doc.table, doc.body);
    for (const entry of commit.indexes) this.indexTables.forWrite(entry.indexId).insert(toBuffer(entry.key), commit.ts, entry.docId);
    this.insertLog.run(commit.ts, commit.id, toBuffer(commit.log));
    if (commit.receipts === undefined || commit.receipts.length === 0) return;
    const writtenAt = Date.now();
    for (const receipt of commit.receipts) this.insertReceipt.run(receipt.key, commit.ts, writtenAt, receipt.body);
  }
}

/** Every version in a commit has the commit's new ts, so a key clash is a write repeated in it. */
function isPrimaryKeyViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}

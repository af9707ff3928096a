/**
 * `SqliteStorage`: the `Storage` interface on an embedded SQLite database (better-sqlite3).
 *
 * This module owns the statements for documents, commits and metadata, and wires in the scan
 * (`scan.ts`), pruning (`prune.ts`) and schema (`schema.ts`) modules. better-sqlite3 is
 * synchronous, so every method does its work synchronously and returns a settled promise: the
 * interface is async only so that a network database can implement it too. Because nothing
 * awaits in the middle of a read or a commit, each one runs alone on the connection and sees
 * one consistent state.
 */
import type Database from "better-sqlite3";
import type { Commit, DocumentVersion, IndexEntry, ScanRequest, Storage, Timestamp } from "../types.js";
import { DEFAULT_PRUNE_BATCH_SIZE, Pruner } from "./prune.js";
import { Scanner, toBuffer } from "./scan.js";
import { openDatabase, type SqliteSynchronous } from "./schema.js";

export interface SqliteStorageOptions {
  /** A file path, or `":memory:"` for a private in-memory database (tests). */
  filename: string;
  /** Durability of each commit; see `SqliteSynchronous`. Default `"full"`. */
  synchronous?: SqliteSynchronous;
  /** Rows examined per pruning transaction. Default 1000. */
  pruneBatchSize?: number;
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
 * await storage.commit({ ts: 1, documents: [{ id: "u1", table: "users", body: "{}" }], indexes: [] });
 * await storage.getDocument("u1", 1); // { id: "u1", table: "users", ts: 1, body: "{}" }
 */
export async function openSqliteStorage(options: SqliteStorageOptions): Promise<SqliteStorage> {
  const db = openDatabase(options.filename, options.synchronous ?? "full");
  try {
    return new SqliteStorage(db, options.pruneBatchSize ?? DEFAULT_PRUNE_BATCH_SIZE);
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

  private readonly scanner: Scanner;
  private readonly pruner: Pruner;
  private readonly selectLatest: Database.Statement<[], number>;
  private readonly updateLatest: Database.Statement<[number]>;
  private readonly selectDocument: Database.Statement<[string, number], DocumentRow>;
  private readonly insertDocument: Database.Statement<[string, number, string, string | null]>;
  private readonly insertEntry: Database.Statement<[string, Buffer, number, string | null]>;
  private readonly deleteIndex: Database.Statement<[string]>;
  private readonly selectMeta: Database.Statement<[string], string>;
  private readonly upsertMeta: Database.Statement<[string, string]>;
  private readonly countVersions: Database.Statement<[], { documents: number; indexEntries: number }>;
  private readonly commitTransaction: Database.Transaction<(commits: readonly Commit[]) => void>;

  /** Use `openSqliteStorage`; this takes an already opened and migrated connection. */
  constructor(db: Database.Database, pruneBatchSize: number) {
    this.db = db;
    this.name = `sqlite:${db.name}`;
    this.scanner = new Scanner(db);
    this.pruner = new Pruner(db, pruneBatchSize);
    this.selectLatest = db.prepare<[], number>("SELECT latest_ts FROM clock WHERE singleton = 1").pluck();
    this.updateLatest = db.prepare("UPDATE clock SET latest_ts = ? WHERE singleton = 1");
    this.selectDocument = db.prepare(
      "SELECT id, ts, table_name, body FROM documents WHERE id = ? AND ts <= ? ORDER BY ts DESC LIMIT 1",
    );
    this.insertDocument = db.prepare("INSERT INTO documents (id, ts, table_name, body) VALUES (?, ?, ?, ?)");
    this.insertEntry = db.prepare("INSERT INTO index_entries (index_id, key, ts, doc_id) VALUES (?, ?, ?, ?)");
    this.deleteIndex = db.prepare("DELETE FROM index_entries WHERE index_id = ?");
    this.selectMeta = db.prepare<[string], string>("SELECT value FROM meta WHERE key = ?").pluck();
    this.upsertMeta = db.prepare(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    );
    this.countVersions = db.prepare(
      "SELECT (SELECT count(*) FROM documents) AS documents, (SELECT count(*) FROM index_entries) AS indexEntries",
    );
    this.commitTransaction = db.transaction((commits: readonly Commit[]) => {
      for (const commit of commits) this.writeCommit(commit);
    });
  }

  async latestTimestamp(): Promise<Timestamp> {
    return this.selectLatest.get()!;
  }

  async getDocument(id: string, readTs: Timestamp): Promise<DocumentVersion | null> {
    const row = this.selectDocument.get(id, readTs);
    if (row === undefined || row.body === null) return null;
    return { id: row.id, table: row.table_name, ts: row.ts, body: row.body };
  }

  async scan(request: ScanRequest): Promise<IndexEntry[]> {
    return this.scanner.scan(request);
  }

  async commit(commit: Commit): Promise<void> {
    return this.commitBatch([commit]);
  }

  async commitBatch(commits: readonly Commit[]): Promise<void> {
    for (const commit of commits) {
      if (!Number.isSafeInteger(commit.ts) || commit.ts < 1) {
        throw new Error(`Walk-in storage: commit timestamp must be a positive integer, got ${commit.ts}.`);
      }
    }
    // BEGIN IMMEDIATE takes the write lock up front, so the timestamp check and the inserts see
    // the same database even if another process shares the file. With synchronous=FULL the
    // COMMIT returns only after the write-ahead log is on disk: one fsync for the whole batch.
    try {
      this.commitTransaction.immediate(commits);
    } catch (error) {
      if (isPrimaryKeyViolation(error)) {
        throw new Error(
          `Walk-in storage: a commit writes the same document or index entry twice; ` +
            `a commit may write each at most once. Nothing was written.`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  async dropIndex(indexId: string): Promise<void> {
    // One statement, so a rebuild that starts right after never has its new entries deleted.
    this.deleteIndex.run(indexId);
  }

  async pruneHistory(ts: Timestamp): Promise<void> {
    await this.pruner.prune(ts);
  }

  async getMeta(key: string): Promise<string | null> {
    return this.selectMeta.get(key) ?? null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.upsertMeta.run(key, value);
  }

  /** How many versions are stored (all snapshots), e.g. to watch history grow and get pruned. */
  async stats(): Promise<{ documents: number; indexEntries: number }> {
    return this.countVersions.get()!;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  private writeCommit(commit: Commit): void {
    const latest = this.selectLatest.get()!;
    if (commit.ts <= latest) {
      throw new Error(
        `Walk-in storage: commit timestamp ${commit.ts} is not greater than the latest commit's ` +
          `(${latest}); timestamps must strictly increase. Is another process writing to ${this.name}?`,
      );
    }
    for (const doc of commit.documents) this.insertDocument.run(doc.id, commit.ts, doc.table, doc.body);
    for (const entry of commit.indexes) this.insertEntry.run(entry.indexId, toBuffer(entry.key), commit.ts, entry.docId);
    this.updateLatest.run(commit.ts);
  }
}

/** Every version in a commit has the commit's new ts, so a key clash is a write repeated in it. */
function isPrimaryKeyViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}

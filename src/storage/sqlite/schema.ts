/**
 * Opening a SQLite database for Walk-in: connection settings (journal mode, durability) and the
 * schema with its migrations. Everything that depends on the on-disk layout starts here.
 */
import Database from "better-sqlite3";
import { splitIndexEntries } from "./indexTables.js";

/**
 * How hard a commit waits for the disk before it is acknowledged.
 *
 * - `"full"` (the default): the write-ahead log is synced (fdatasync) before any commit is
 *   acknowledged or shown to anyone, so an acknowledged commit survives `kill -9` *and* a power
 *   loss or kernel crash. The storage does that sync itself rather than inside SQLite's COMMIT
 *   (right after it, or off the main thread while live queries re-run: walSync.ts); the
 *   connection's own `synchronous` pragma then reads NORMAL.
 * - `"normal"`: the log is fsynced only at checkpoints. An acknowledged commit is in the OS page
 *   cache, so it survives the process being killed (`kill -9`, a crash of Node) but the last
 *   commits can be lost if the machine loses power. Faster; opt in only if that trade is fine.
 */
export type SqliteSynchronous = "full" | "normal";

/** How long a write waits for another connection's lock before failing with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5_000;

/** One step of the schema: SQL, or a function for a step that depends on what the database holds. */
export type Migration = string | ((db: Database.Database) => void);

/**
 * The schema, one entry per version: `MIGRATIONS[n]` takes a database from `user_version` n to
 * n + 1. A new layout is a new entry appended here, never an edit of an old one, so every
 * database in the field can be brought forward step by step.
 */
export const MIGRATIONS: readonly Migration[] = [
  `
  -- Every version of every document. A NULL body is a tombstone. The primary key (id, ts) is the
  -- whole access path: "newest version of id at or before ts" is one backward seek.
  CREATE TABLE documents (
    id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    table_name TEXT NOT NULL,
    body TEXT,
    PRIMARY KEY (id, ts)
  ) WITHOUT ROWID;

  -- Every version of every index entry. A NULL doc_id means the entry was removed at ts.
  -- Keys are BLOBs, which SQLite compares with memcmp (a shorter prefix first): exactly the order
  -- of the encoded index keys, so range scans are range seeks on this primary key.
  CREATE TABLE index_entries (
    index_id TEXT NOT NULL,
    key BLOB NOT NULL,
    ts INTEGER NOT NULL,
    doc_id TEXT,
    PRIMARY KEY (index_id, key, ts)
  ) WITHOUT ROWID;

  -- The engine's small key/value registry (getMeta/setMeta). Not versioned.
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

  -- The newest commit timestamp, in its own single-row table rather than in meta so that no
  -- engine metadata key can ever collide with it.
  CREATE TABLE clock (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    latest_ts INTEGER NOT NULL
  );
  INSERT INTO clock (singleton, latest_ts) VALUES (1, 0);
  `,
  `
  -- The commit log: one row per commit, written in the commit's own transaction. Its id lets a
  -- writer that lost track of a commit find out whether it landed; its log bytes (the index
  -- keys written, engine-encoded) are how an engine learns what other engines on this file
  -- changed. Rows at or before log_trimmed_through have been pruned.
  CREATE TABLE commit_log (
    ts INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    log BLOB NOT NULL
  );
  ALTER TABLE clock ADD COLUMN log_trimmed_through INTEGER NOT NULL DEFAULT 0;
  -- A database from before the log existed has no rows for its commits: say so.
  UPDATE clock SET log_trimmed_through = latest_ts;
  `,
  `
  -- Commits stop writing the clock row (one page less per commit): the newest timestamp is
  -- max(clock.log_carried_ts, max(commit_log.ts)), and pruning the log carries the newest logged
  -- timestamp into the clock before it deletes rows (sqliteStorage.ts, "The newest timestamp").
  -- The rename makes the column say what it now holds, and the version bump keeps a Walk-in that
  -- still trusts the column alone from opening the file and reading a stale clock.
  ALTER TABLE clock RENAME COLUMN latest_ts TO log_carried_ts;
  `,
  `
  -- Receipts (Storage.getReceipt): small records written in a commit's own transaction and read
  -- by key, not versioned. The engine keeps each client request's outcome here instead of in a
  -- versioned system table: one row and one age-index entry per commit instead of a document
  -- version and three index entries. written_at (ms since the epoch) is what pruneReceipts goes by.
  -- A Walk-in from before this version would not know to look here, so the version bump keeps it
  -- from opening the file.
  CREATE TABLE receipts (
    key TEXT PRIMARY KEY,
    ts INTEGER NOT NULL,
    written_at INTEGER NOT NULL,
    body TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX receipts_by_age ON receipts (written_at);
  `,
  // Each index's entries in a B-tree of their own (indexTables.ts says why); the version bump
  // keeps a Walk-in that still reads index_entries from opening the file.
  splitIndexEntries,
  `
  -- Deferred versions (sqliteStorage.ts): a commit writes only its log row, which holds the whole
  -- commit in writes; its documents, index entries and receipts are written to their tables
  -- later, many commits at a time. materialized_through says how far the tables are complete:
  -- every commit at or before it is in them, every later one only in its log row. Rows logged
  -- before this version are all in their tables. A Walk-in that knows only version 5 would not
  -- look in the log for versions, so the version bump keeps it from opening the file.
  ALTER TABLE commit_log ADD COLUMN writes TEXT;
  ALTER TABLE clock ADD COLUMN materialized_through INTEGER NOT NULL DEFAULT 0;
  UPDATE clock SET materialized_through = max(log_carried_ts, coalesce((SELECT max(ts) FROM commit_log), 0));
  `,
  `
  -- Log rows' writes become a BLOB in a binary layout (logWrites.ts) instead of JSON text. The
  -- column keeps its declared type: SQLite stores a BLOB as one whatever the column says, and
  -- rows logged before this version (TEXT) are still read. A Walk-in that knows only version 6
  -- would parse the new rows as JSON and call the file damaged, so the version bump keeps it
  -- from opening the file.
  SELECT 1;
  `,
  `
  -- The read floors of the processes that have this file open, one row each (processFloors.ts):
  -- a connection prunes history and trims the log only below every fresh row's floor, so one
  -- process's pruning never takes a version another process's snapshot still reads. seen_at is
  -- ms since the epoch; host and pid let a row of a process that died on this host stop counting
  -- at once. A Walk-in that knows only version 7 would prune under these rows, so the version
  -- bump keeps it from opening the file.
  CREATE TABLE read_floors (
    instance TEXT PRIMARY KEY,
    floor INTEGER NOT NULL,
    seen_at INTEGER NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  `
  -- Documents move out of a WITHOUT ROWID table into a rowid table with their (id, ts) key in an
  -- index of its own. A WITHOUT ROWID table keeps each row in its key's B-tree, and SQLite reads
  -- a cell's whole payload, overflow pages included, to compare keys while it seeks: once a body
  -- passed about 1 KB (a fourth of a page), every seek on the way to a version read every body it
  -- passed. Measured raw on 5,000 documents of 5 KB (bench/README.md, journal 2026-12-07 20:25):
  -- a scan of 500 of them took 44-49 ms against 4 ms here, an insert 172-174 µs against 73-76;
  -- with documents of 150 bytes both layouts are within 10%. The index holds only (id, ts), so
  -- "newest version of id at or before ts" is still one backward seek, in a small tree, and the
  -- body is read once, by rowid, for the version found. The rows are copied in key order and
  -- the index built after them. Every statement on documents reads as before. Receipts move the
  -- same way, for the same reason: a mutation's result is their body (an insert of a 1 KB one
  -- took 213-232 µs against 75-85, a lookup 49-59 against 10-13).
  CREATE TABLE documents_by_rowid (
    id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    table_name TEXT NOT NULL,
    body TEXT
  );
  INSERT INTO documents_by_rowid (id, ts, table_name, body) SELECT id, ts, table_name, body FROM documents ORDER BY id, ts;
  DROP TABLE documents;
  ALTER TABLE documents_by_rowid RENAME TO documents;
  CREATE UNIQUE INDEX documents_versions ON documents (id, ts);
  CREATE TABLE receipts_by_rowid (
    key TEXT NOT NULL,
    ts INTEGER NOT NULL,
    written_at INTEGER NOT NULL,
    body TEXT NOT NULL
  );
  INSERT INTO receipts_by_rowid (key, ts, written_at, body) SELECT key, ts, written_at, body FROM receipts ORDER BY key;
  DROP TABLE receipts;
  ALTER TABLE receipts_by_rowid RENAME TO receipts;
  CREATE UNIQUE INDEX receipts_keys ON receipts (key);
  CREATE INDEX receipts_by_age ON receipts (written_at);
  `,
];

/** Applies one migration step to `db` (inside the caller's transaction). */
export function applyMigration(db: Database.Database, migration: Migration): void {
  if (typeof migration === "string") db.exec(migration);
  else migration(db);
}

/** The schema version this code reads and writes (SQLite's `user_version`). */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Opens (creating if needed) a database file, sets up the connection and migrates the schema. */
export function openDatabase(filename: string, synchronous: SqliteSynchronous): Database.Database {
  const db = new Database(filename, { timeout: BUSY_TIMEOUT_MS });
  try {
    // WAL lets readers proceed while a commit is being written and makes each commit one
    // sequential append. An in-memory database has no file to log to, so it keeps its default.
    if (filename !== ":memory:") db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${synchronous === "full" ? "FULL" : "NORMAL"}`);
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    migrate(db, filename);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

function migrate(db: Database.Database, filename: string): void {
  db.transaction(() => {
    const version = db.pragma("user_version", { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `Walk-in storage: ${filename} has schema version ${version}, but this version of Walk-in ` +
          `only knows up to ${SCHEMA_VERSION}. Upgrade Walk-in to open it.`,
      );
    }
    for (let v = version; v < SCHEMA_VERSION; v++) applyMigration(db, MIGRATIONS[v]!);
    // user_version is part of the database header, so it commits atomically with the schema.
    if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

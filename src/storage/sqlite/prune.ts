/**
 * History garbage collection for the SQLite storage (`pruneHistory`).
 *
 * A version is garbage once no snapshot at or after the prune timestamp P can see it:
 * - a version superseded by a newer version of the same id/key with ts <= P (every snapshot
 *   >= P sees that newer one or something newer still), and
 * - a tombstone / removed entry with ts <= P that is the newest version <= P: snapshots >= P
 *   read "absent" there, and once the older versions beneath it are gone too (they are all
 *   superseded by it) absent is still what they read.
 * Both rules look only at versions <= P, so commits landing between batches cannot make an
 * earlier decision wrong.
 *
 * The tables are walked in primary-key order in batches of about `batchSize` rows, one short
 * write transaction each, yielding to the event loop in between so scans and commits are never
 * held up for long. A batch always ends on a group boundary (a whole id, a whole index key),
 * because whether a version is garbage depends on the other versions of its group.
 */
import type Database from "better-sqlite3";
import { performance } from "node:perf_hooks";
import type { PruneReport } from "../types.js";
import type { IndexTables } from "./indexTables.js";

export const DEFAULT_PRUNE_BATCH_SIZE = 1_000;

interface DocumentCursor {
  from: string;
}
interface EntryCursor {
  fromKey: Buffer;
}

export class Pruner {
  private readonly documentBoundary: Database.Statement<[DocumentCursor], string>;
  private readonly deleteDocuments: Database.Statement<[DocumentCursor & { to: string; pruneTs: number }]>;
  private readonly deleteLastDocuments: Database.Statement<[DocumentCursor & { pruneTs: number }]>;
  private readonly trimLog: Database.Transaction<(pruneTs: number) => void>;

  private readonly entryBoundarySql: (table: string) => string;
  private readonly deleteEntriesSql: (table: string) => string;
  private readonly deleteLastEntriesSql: (table: string) => string;

  constructor(
    private readonly db: Database.Database,
    private readonly indexTables: IndexTables,
    batchSize: number,
  ) {
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`Walk-in storage: pruneBatchSize must be a positive integer, got ${batchSize}.`);
    }
    // The batch size is spliced into the SQL rather than bound: a bound OFFSET would make SQLite
    // re-prepare the statement on every run.
    const offset = `LIMIT 1 OFFSET ${batchSize}`;
    const garbageDocument = `ts <= @pruneTs AND (body IS NULL OR EXISTS (
      SELECT 1 FROM documents AS newer
      WHERE newer.id = old.id AND newer.ts > old.ts AND newer.ts <= @pruneTs))`;
    const garbageEntry = (table: string) => `ts <= @pruneTs AND (doc_id IS NULL OR EXISTS (
      SELECT 1 FROM ${table} AS newer
      WHERE newer.key = old.key AND newer.ts > old.ts AND newer.ts <= @pruneTs))`;

    // The first id of a group starting about batchSize rows past the current group.
    this.documentBoundary = db
      .prepare<[DocumentCursor], string>(`SELECT id FROM documents WHERE id > @from ORDER BY id, ts ${offset}`)
      .pluck();
    this.deleteDocuments = db.prepare(
      `DELETE FROM documents AS old WHERE id >= @from AND id < @to AND ${garbageDocument}`,
    );
    this.deleteLastDocuments = db.prepare(`DELETE FROM documents AS old WHERE id >= @from AND ${garbageDocument}`);
    // The same per index table (indexTables.ts), prepared on each table when first swept.
    this.entryBoundarySql = (table) => `SELECT key FROM ${table} WHERE key > @fromKey ORDER BY key, ts ${offset}`;
    this.deleteEntriesSql = (table) =>
      `DELETE FROM ${table} AS old WHERE key >= @fromKey AND key < @toKey AND ${garbageEntry(table)}`;
    this.deleteLastEntriesSql = (table) => `DELETE FROM ${table} AS old WHERE key >= @fromKey AND ${garbageEntry(table)}`;
    // The log's rows are what say the newest timestamp (sqliteStorage.ts, "The newest
    // timestamp"): before deleting any, carry the newest one into the clock, in the same
    // transaction, so that deleting the whole log can never move the newest timestamp back.
    const carryLatest = db.prepare(
      `UPDATE clock SET log_carried_ts = max(log_carried_ts, coalesce((SELECT max(ts) FROM commit_log), 0))
       WHERE singleton = 1`,
    );
    const deleteLog = db.prepare("DELETE FROM commit_log WHERE ts <= ?");
    // After the carry, log_carried_ts is the newest timestamp: the log is never marked trimmed
    // past a commit that has not happened yet.
    const markTrimmed = db.prepare(
      "UPDATE clock SET log_trimmed_through = max(log_trimmed_through, min(?, log_carried_ts)) WHERE singleton = 1",
    );
    this.trimLog = db.transaction((pruneTs: number) => {
      carryLatest.run();
      deleteLog.run(pruneTs);
      markTrimmed.run(pruneTs);
    });
  }

  /** Sweeps history through `pruneTs`; reports the time spent in its own steps (not in the yields between them). */
  async prune(pruneTs: number): Promise<PruneReport> {
    let busyMs = 0;
    let stepStart = performance.now();
    const yieldToEventLoop = async () => {
      busyMs += performance.now() - stepStart;
      await new Promise((resolve) => setImmediate(resolve));
      stepStart = performance.now();
    };
    // The log first, in one transaction with its trim mark: a writer reading the log sees either
    // the rows or the mark that says they are gone, never neither.
    this.trimLog.immediate(pruneTs);
    // '' is the smallest TEXT and the empty BLOB the smallest BLOB: the cursors start before
    // every row.
    let documents: DocumentCursor | null = { from: "" };
    while (documents !== null && this.db.open) {
      const to = this.documentBoundary.get(documents);
      if (to === undefined) {
        this.deleteLastDocuments.run({ ...documents, pruneTs });
        documents = null;
      } else {
        this.deleteDocuments.run({ ...documents, to, pruneTs });
        documents = { from: to };
      }
      await yieldToEventLoop();
    }
    for (const table of this.db.open ? this.indexTables.all() : []) {
      const boundary = table.statement<[EntryCursor], Buffer>("prune boundary", this.entryBoundarySql, "pluck");
      const deleteEntries = table.statement<[EntryCursor & { toKey: Buffer; pruneTs: number }], unknown>("prune delete", this.deleteEntriesSql);
      const deleteLastEntries = table.statement<[EntryCursor & { pruneTs: number }], unknown>("prune delete last", this.deleteLastEntriesSql);
      let entries: EntryCursor | null = { fromKey: Buffer.alloc(0) };
      while (entries !== null && this.db.open) {
        const to = boundary.get(entries);
        if (to === undefined) {
          deleteLastEntries.run({ ...entries, pruneTs });
          entries = null;
        } else {
          deleteEntries.run({ ...entries, toKey: to, pruneTs });
          entries = { fromKey: to };
        }
        await yieldToEventLoop();
      }
    }
    // If the storage was closed mid-way the loops stop: pruning is only ever an optimisation,
    // and whatever was deleted so far was garbage.
    busyMs += performance.now() - stepStart;
    return { busyMs };
  }
}

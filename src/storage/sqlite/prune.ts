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

export const DEFAULT_PRUNE_BATCH_SIZE = 1_000;

interface DocumentCursor {
  from: string;
}
interface EntryCursor {
  fromIndex: string;
  fromKey: Buffer;
}

export class Pruner {
  private readonly documentBoundary: Database.Statement<[DocumentCursor], string>;
  private readonly deleteDocuments: Database.Statement<[DocumentCursor & { to: string; pruneTs: number }]>;
  private readonly deleteLastDocuments: Database.Statement<[DocumentCursor & { pruneTs: number }]>;
  private readonly entryBoundary: Database.Statement<[EntryCursor], { index_id: string; key: Buffer }>;
  private readonly deleteEntries: Database.Statement<[EntryCursor & { toIndex: string; toKey: Buffer; pruneTs: number }]>;
  private readonly deleteLastEntries: Database.Statement<[EntryCursor & { pruneTs: number }]>;
  private readonly trimLog: Database.Transaction<(pruneTs: number) => void>;

  constructor(
    private readonly db: Database.Database,
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
    const garbageEntry = `ts <= @pruneTs AND (doc_id IS NULL OR EXISTS (
      SELECT 1 FROM index_entries AS newer
      WHERE newer.index_id = old.index_id AND newer.key = old.key
        AND newer.ts > old.ts AND newer.ts <= @pruneTs))`;

    // The first id of a group starting about batchSize rows past the current group.
    this.documentBoundary = db
      .prepare<[DocumentCursor], string>(`SELECT id FROM documents WHERE id > @from ORDER BY id, ts ${offset}`)
      .pluck();
    this.deleteDocuments = db.prepare(
      `DELETE FROM documents AS old WHERE id >= @from AND id < @to AND ${garbageDocument}`,
    );
    this.deleteLastDocuments = db.prepare(`DELETE FROM documents AS old WHERE id >= @from AND ${garbageDocument}`);
    this.entryBoundary = db.prepare(
      `SELECT index_id, key FROM index_entries WHERE (index_id, key) > (@fromIndex, @fromKey)
       ORDER BY index_id, key, ts ${offset}`,
    );
    this.deleteEntries = db.prepare(
      `DELETE FROM index_entries AS old
       WHERE (index_id, key) >= (@fromIndex, @fromKey) AND (index_id, key) < (@toIndex, @toKey) AND ${garbageEntry}`,
    );
    this.deleteLastEntries = db.prepare(
      `DELETE FROM index_entries AS old WHERE (index_id, key) >= (@fromIndex, @fromKey) AND ${garbageEntry}`,
    );
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
    let entries: EntryCursor | null = { fromIndex: "", fromKey: Buffer.alloc(0) };
    while (entries !== null && this.db.open) {
      const to = this.entryBoundary.get(entries);
      if (to === undefined) {
        this.deleteLastEntries.run({ ...entries, pruneTs });
        entries = null;
      } else {
        this.deleteEntries.run({ ...entries, toIndex: to.index_id, toKey: to.key, pruneTs });
        entries = { fromIndex: to.index_id, fromKey: to.key };
      }
      await yieldToEventLoop();
    }
    // If the storage was closed mid-way the loops stop: pruning is only ever an optimisation,
    // and whatever was deleted so far was garbage.
    busyMs += performance.now() - stepStart;
    return { busyMs };
  }
}

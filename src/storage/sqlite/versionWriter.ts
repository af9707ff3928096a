/**
 * Writes commits' versions to their tables: each document's version, each index entry's, each
 * receipt. Rows are buffered per table and written many to a statement (`rowWriter.ts`), always
 * inside the caller's write transaction: the versions of a materialization, or of a commit
 * written inline (`sqliteStorage.ts`, "Deferred versions").
 *
 * ## Pruning on write
 *
 * A document written before (not hinted `fresh`) first loses the versions that no read can see
 * any more, those superseded at or before the read floor: what a sweep at the floor would
 * delete of it (`garbage.ts`).
 *
 * Why on write: a document rewritten often (a counter, a rate-limit bucket) otherwise piles up
 * a sweep interval's versions (a second or more) on pages of its own, so each of its writes
 * dirties a page no other write shares: one more frame in the write-ahead log per document per
 * commit. Deleted here, its few live versions share a page with its neighbours, which this
 * write dirties anyway. Safe for the sweep's reasons: no read comes below the floor
 * (`Storage.raiseReadFloor`), and nothing the rule deletes can be seen at or above it. The
 * document stays recorded for the sweep: the version written now is garbage later.
 *
 * ## Order
 *
 * Rows of different tables may reach SQLite in any order: the transaction commits them
 * together, and no statement here reads what another writes, with one exception. The delete
 * above reads the document's stored versions, so every version added before it must be in the
 * table when it runs: otherwise a document written by several pending commits would keep
 * versions that writing them one commit at a time deletes. So the buffered documents are
 * flushed before each delete. Step by step, for a document stored at ts 1 and written by
 * pending commits at 2, 3, 4 and 5 under a floor of 5: the delete before 3 sees 2 and drops
 * 1, the one before 4 sees 3 and drops 2, the one before 5 drops 3, leaving 4 and 5. With the
 * buffer flushed only at the end, every delete would see version 1 alone and drop nothing
 * (`versionWriter.test.ts`).
 */
import type Database from "better-sqlite3";
import type { Timestamp } from "../types.js";
import type { PendingCommit } from "./logWrites.js";
import { SWEEP_DOCUMENT_SQL } from "./dirtyGroups.js";
import type { IndexTable, IndexTables } from "./indexTables.js";
import { RowWriter } from "./rowWriter.js";

export class VersionWriter {
  private readonly documents: RowWriter;
  private readonly receipts: RowWriter;
  /** One document's versions superseded at `pruneTs` (see "Pruning on write"). */
  private readonly deleteSuperseded: Database.Statement<[{ id: string; pruneTs: number }]>;

  constructor(
    db: Database.Database,
    private readonly indexTables: IndexTables,
  ) {
    this.documents = new RowWriter(db, "documents", ["id", "ts", "table_name", "body"]);
    this.receipts = new RowWriter(db, "receipts", ["key", "ts", "written_at", "body"]);
    this.deleteSuperseded = db.prepare(SWEEP_DOCUMENT_SQL);
  }

  /**
   * Writes the versions of `commits` (in timestamp order), pruning on write at `pruneTs` (0:
   * none). Inside a write transaction: on an error, part of them may be written, and the caller
   * rolls back.
   */
  write(commits: Iterable<PendingCommit>, pruneTs: Timestamp): void {
    const entryTables: IndexTable[] = [];
    try {
      for (const { commit, writtenAt } of commits) {
        for (const doc of commit.documents) {
          if (pruneTs > 0 && doc.fresh !== true) {
            this.documents.flush(); // see "Order"
            this.deleteSuperseded.run({ id: doc.id, pruneTs });
          }
          this.documents.add(doc.id, commit.ts, doc.table, doc.body);
        }
        for (const entry of commit.indexes) {
          const table = this.indexTables.forWrite(entry.indexId);
          if (table.rows.buffered === 0) entryTables.push(table);
          table.rows.add(entry.key, commit.ts, entry.docId);
        }
        for (const receipt of commit.receipts ?? []) this.receipts.add(receipt.key, commit.ts, writtenAt, receipt.body);
      }
      this.documents.flush();
      for (const table of entryTables) table.rows.flush();
      this.receipts.flush();
    } catch (error) {
      // Nothing buffered for this transaction may be written by the next one.
      this.documents.discard();
      for (const table of entryTables) table.rows.discard();
      this.receipts.discard();
      throw error;
    }
  }
}

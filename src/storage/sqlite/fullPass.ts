/**
 * The full pass of the SQLite history sweep (see `prune.ts`): every stored version of every
 * document, then of every index entry, in primary-key order, one batch of about `batchSize`
 * rows per `step`, each index in its own table (`indexTables.ts`). It finds the garbage the write-set sweep cannot know of: what was written
 * before this storage was opened, or through another connection to the same file.
 *
 * Its cursor lives between steps, and between `pruneHistory` calls: a pass over a big table is
 * spread over many calls, each one a few batches, so the engine's spacing of sweeps by their
 * busy time applies to it too. That a step runs at a later prune timestamp than the one before
 * changes nothing (`garbage.ts`: each deletion at P is right on its own).
 *
 * A pass walks the rows that were there when it started, and no further: up to the greatest
 * document id, and in each index up to its greatest key, as they were at its start. Rows
 * written since are the write-set sweep's, and new documents and index entries mostly land at
 * the end of their key range (document IDs start with their creation time): a pass that
 * followed them could chase a busy table's inserts for as long as they came.
 *
 * A batch always ends on a group boundary (a whole id, a whole index key), because whether a
 * version is garbage depends on the other versions of its group. A batch stays within one
 * index, so a small index is a short batch of its own.
 */
import type Database from "better-sqlite3";
import { GARBAGE_DOCUMENT, garbageEntry } from "./garbage.js";
import type { IndexTable, IndexTables } from "./indexTables.js";

/** One index as the pass found it at its start: its table and greatest key. */
interface IndexExtent {
  table: IndexTable;
  end: Buffer;
}

type EntryBounds = { from: Buffer; end: Buffer };

/** Where the pass is: at a document id, at a key of the `index`th index of `indexes`, or not running. */
type Position = { document: string } | { index: number; key: Buffer } | null;

export class FullPass {
  private position: Position = null;
  /** The greatest document id at the pass's start (null: there were none). */
  private documentsEnd: string | null = null;
  private indexes: IndexExtent[] = [];
  private readonly lastDocument: Database.Statement<[], string | null>;
  private readonly documentBoundary: Database.Statement<[{ from: string; end: string }], string>;
  private readonly deleteDocuments: Database.Statement<[{ from: string; to: string; pruneTs: number }]>;
  private readonly deleteLastDocuments: Database.Statement<[{ from: string; end: string; pruneTs: number }]>;
  /** The entry tables' statements, prepared on each table when the pass first reaches it. */
  private readonly entrySql: Record<"lastKey" | "boundary" | "delete" | "deleteLast", (table: string) => string>;

  constructor(
    db: Database.Database,
    private readonly indexTables: IndexTables,
    batchSize: number,
  ) {
    this.lastDocument = db.prepare<[], string | null>("SELECT max(id) FROM documents").pluck();
    // The batch size is spliced into the SQL rather than bound: a bound OFFSET would make SQLite
    // re-prepare the statement on every run.
    const offset = `LIMIT 1 OFFSET ${batchSize}`;
    // The first id of a group starting about batchSize rows past the current group.
    this.documentBoundary = db
      .prepare<[{ from: string; end: string }], string>(
        `SELECT id FROM documents WHERE id > @from AND id <= @end ORDER BY id, ts ${offset}`,
      )
      .pluck();
    this.deleteDocuments = db.prepare(`DELETE FROM documents AS old WHERE id >= @from AND id < @to AND ${GARBAGE_DOCUMENT}`);
    this.deleteLastDocuments = db.prepare(
      `DELETE FROM documents AS old WHERE id >= @from AND id <= @end AND ${GARBAGE_DOCUMENT}`,
    );
    this.entrySql = {
      lastKey: (table) => `SELECT max(key) FROM ${table}`,
      boundary: (table) => `SELECT key FROM ${table} WHERE key > @from AND key <= @end ORDER BY key, ts ${offset}`,
      delete: (table) => `DELETE FROM ${table} AS old WHERE key >= @from AND key < @to AND ${garbageEntry(table)}`,
      deleteLast: (table) => `DELETE FROM ${table} AS old WHERE key >= @from AND key <= @end AND ${garbageEntry(table)}`,
    };
  }

  get running(): boolean {
    return this.position !== null;
  }

  /** Starts a pass over the rows stored now (a no-op while one is running). */
  start(): void {
    if (this.position !== null) return;
    this.documentsEnd = this.lastDocument.get() ?? null;
    this.indexes = [];
    for (const table of this.indexTables.all()) {
      const end = table.statement<[], Buffer | null>("full pass last key", this.entrySql.lastKey, "pluck").get() ?? null;
      if (end !== null) this.indexes.push({ table, end });
    }
    // '' is the smallest TEXT: the cursor starts before every document.
    this.position = this.documentsEnd === null ? this.indexFrom(0) : { document: "" };
  }

  /** Sweeps the next batch at `pruneTs`: one statement, so one short transaction. */
  step(pruneTs: number): void {
    const position = this.position;
    if (position === null) return;
    if ("document" in position) {
      const [from, end] = [position.document, this.documentsEnd!];
      const to = this.documentBoundary.get({ from, end });
      if (to === undefined) {
        this.deleteLastDocuments.run({ from, end, pruneTs });
        this.position = this.indexFrom(0);
      } else {
        this.deleteDocuments.run({ from, to, pruneTs });
        this.position = { document: to };
      }
      return;
    }
    const { table, end } = this.indexes[position.index]!;
    const { entrySql } = this;
    const to = table.statement<[EntryBounds], Buffer>("full pass boundary", entrySql.boundary, "pluck").get({ from: position.key, end });
    if (to === undefined) {
      table.statement<[EntryBounds & { pruneTs: number }], unknown>("full pass delete last", entrySql.deleteLast).run({ from: position.key, end, pruneTs });
      this.position = this.indexFrom(position.index + 1);
    } else {
      table.statement<[{ from: Buffer; to: Buffer; pruneTs: number }], unknown>("full pass delete", entrySql.delete).run({ from: position.key, to, pruneTs });
      this.position = { index: position.index, key: to };
    }
  }

  /** The start of the `index`th index, or the end of the pass. */
  private indexFrom(index: number): Position {
    // The empty BLOB is the smallest BLOB.
    return index < this.indexes.length ? { index, key: Buffer.alloc(0) } : null;
  }
}

/**
 * One B-tree per index: the entries of each index live in a table of their own
 * (`entries_<n>`, primary key (key, ts)), registered by index ID in `index_tables`.
 *
 * Why not one table for every index, keyed (index_id, key, ts): the engine's busiest indexes
 * grow at their end (`by_id` and `by_creation_time` under time-ordered IDs, any index on a
 * timestamp), and the end of one index's range in a shared B-tree is the middle of the tree,
 * on a leaf it shares with the start of the next index. SQLite keeps appending into that shared
 * leaf and rebalancing it with its neighbours, so a one-document insert rewrote 4.3 index leaves
 * and 0.7 interior pages for 3 index entries (measured from the write-ahead log's frame
 * headers). With a B-tree per index, every append lands at the true end of its own tree: 7.1
 * pages per insert instead of 8.2, and each page written is one more frame for the commit's
 * fsync under synchronous=FULL. `dropIndex` also becomes one table's DELETE.
 *
 * Tables are created by the first commit that writes an index, inside that commit's write
 * transaction, so the registry row, the table and the entries land together or not at all.
 * Every connection caches what it has seen registered; a table is never dropped or renumbered
 * (dropping an index deletes its rows), so a cached answer stays true. A miss is asked of the
 * registry again each time: another connection (the other engine of a hot reload) may have
 * created the table since.
 */
import type Database from "better-sqlite3";
import { RowWriter } from "./rowWriter.js";

/** The columns and key of an index's entry table; a NULL doc_id means the entry was removed at ts. */
export function entriesTableSql(name: string): string {
  return `CREATE TABLE ${name} (
    key BLOB NOT NULL,
    ts INTEGER NOT NULL,
    doc_id TEXT,
    PRIMARY KEY (key, ts)
  ) WITHOUT ROWID`;
}

/** The name of the entry table numbered `n`: an identifier that needs no quoting. */
export function entriesTableName(n: number): string {
  return `entries_${n}`;
}

/** One index's table, with the statements on it that this connection has prepared so far. */
export class IndexTable {
  readonly name: string;
  private writer: RowWriter | undefined;
  /** Prepared statements of other modules (scans, pruning), by a name of their choosing. */
  private readonly statements = new Map<string, Database.Statement>();

  constructor(
    private readonly db: Database.Database,
    readonly indexId: string,
    readonly number: number,
  ) {
    this.name = entriesTableName(number);
  }

  /** Where entry versions are written: `add(key, ts, docId)`, then `flush` in the write transaction (`versionWriter.ts`). */
  get rows(): RowWriter {
    return (this.writer ??= new RowWriter(this.db, this.name, ["key", "ts", "doc_id"]));
  }

  /**
   * A statement on this table, prepared the first time it is asked for: `sql` gets the table's
   * name; `rows` "raw" returns rows as arrays, "pluck" the first column.
   */
  statement<P extends unknown[] | object, R>(purpose: string, sql: (table: string) => string, rows?: "raw" | "pluck"): Database.Statement<P, R> {
    let statement = this.statements.get(purpose);
    if (statement === undefined) {
      statement = this.db.prepare(sql(this.name));
      if (rows === "raw") statement.raw();
      else if (rows === "pluck") statement.pluck();
      this.statements.set(purpose, statement);
    }
    return statement as Database.Statement<P, R>;
  }
}

export class IndexTables {
  private readonly known = new Map<string, IndexTable>();
  /** Tables created by the write transaction in progress: forgotten again if it rolls back. */
  private createdNow: string[] = [];
  private readonly selectNumber: Database.Statement<[string], number>;
  private readonly selectNextNumber: Database.Statement<[], number>;
  private readonly register: Database.Statement<[string, number]>;
  private readonly selectAll: Database.Statement<[], { index_id: string; number: number }>;

  constructor(private readonly db: Database.Database) {
    this.selectNumber = db.prepare<[string], number>("SELECT number FROM index_tables WHERE index_id = ?").pluck();
    this.selectNextNumber = db.prepare<[], number>("SELECT coalesce(max(number), 0) + 1 FROM index_tables").pluck();
    this.register = db.prepare("INSERT INTO index_tables (index_id, number) VALUES (?, ?)");
    this.selectAll = db.prepare("SELECT index_id, number FROM index_tables ORDER BY number");
  }

  /** The table of `indexId`, or null if no commit has written that index yet. */
  find(indexId: string): IndexTable | null {
    const known = this.known.get(indexId);
    if (known !== undefined) return known;
    const number = this.selectNumber.get(indexId);
    return number === undefined ? null : this.remember(indexId, number);
  }

  /**
   * The table of `indexId`, created if needed. Only inside a write transaction, which must end
   * with `settle`: the registry row and the table are part of it.
   */
  forWrite(indexId: string): IndexTable {
    const found = this.find(indexId);
    if (found !== null) return found;
    // Under the write lock: no other connection can register a number between these two steps.
    const number = this.selectNextNumber.get()!;
    this.register.run(indexId, number);
    this.db.exec(entriesTableSql(entriesTableName(number)));
    this.createdNow.push(indexId);
    return this.remember(indexId, number);
  }

  /** Ends the write transaction that `forWrite` ran in: a rolled-back one created nothing. */
  settle(committed: boolean): void {
    if (!committed) for (const indexId of this.createdNow) this.known.delete(indexId);
    this.createdNow = [];
  }

  /** Every index table, in the order they were created (pruning and statistics walk them all). */
  all(): IndexTable[] {
    return this.selectAll.all().map((row) => this.known.get(row.index_id) ?? this.remember(row.index_id, row.number));
  }

  private remember(indexId: string, number: number): IndexTable {
    const table = new IndexTable(this.db, indexId, number);
    this.known.set(indexId, table);
    return table;
  }
}

/**
 * Schema 5's migration: moves every index's entries out of the shared `index_entries` table
 * into a table of its own. Runs inside the migration's transaction, so a crash leaves the old
 * layout whole.
 */
export function splitIndexEntries(db: Database.Database): void {
  db.exec("CREATE TABLE index_tables (index_id TEXT PRIMARY KEY, number INTEGER NOT NULL UNIQUE) WITHOUT ROWID");
  const indexIds = db.prepare<[], string>("SELECT DISTINCT index_id FROM index_entries ORDER BY index_id").pluck().all();
  const register = db.prepare("INSERT INTO index_tables (index_id, number) VALUES (?, ?)");
  indexIds.forEach((indexId, i) => {
    const name = entriesTableName(i + 1);
    register.run(indexId, i + 1);
    db.exec(entriesTableSql(name));
    db.prepare(`INSERT INTO ${name} (key, ts, doc_id) SELECT key, ts, doc_id FROM index_entries WHERE index_id = ? ORDER BY key, ts`).run(indexId);
  });
  db.exec("DROP TABLE index_entries");
}

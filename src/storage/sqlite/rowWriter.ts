/**
 * Many rows into one table with few statements: rows are buffered, then written by INSERTs of
 * up to 64 rows each (`INSERT ... VALUES (?, ?), (?, ?), ...`).
 *
 * Why: writing pending versions is row after row into a few tables (a document, its index
 * entries, a receipt per client mutation), and each `run` of a one-row INSERT pays the
 * statement's fixed cost (binding, stepping, resetting, crossing from JavaScript) for one
 * B-tree insert. Measured (bench/engine `alone.ts storage normal`, four alternating pairs on
 * 2026-12-04): 39.0–40.8 µs per replayed insert commit with multi-row INSERTs against
 * 41.1–42.6 µs row by row, about 2 µs of the 10–13 µs an insert's versions take.
 *
 * Rows go in the order they were added. A row that breaks a constraint fails its statement,
 * and with it the caller's transaction, exactly as a one-row INSERT would (the same SQLite
 * error, naming the table): callers run `flush` inside the transaction that must not be
 * partly written.
 */
import type Database from "better-sqlite3";

/** Rows per statement, largest first: a flush takes as many of each as fit, so at most a few statements are partial. */
const CHUNK_ROWS = [64, 8, 1] as const;

export class RowWriter {
  private readonly width: number;
  /** The buffered rows' values, row after row. */
  private values: unknown[] = [];
  /** One statement per chunk size, prepared on first use. */
  private readonly statements = new Map<number, Database.Statement<unknown[]>>();

  constructor(
    private readonly db: Database.Database,
    private readonly table: string,
    private readonly columns: readonly string[],
  ) {
    this.width = columns.length;
  }

  get buffered(): number {
    return this.values.length / this.width;
  }

  /** Buffers one row: its values in the order of `columns`. */
  add(...row: unknown[]): void {
    if (row.length !== this.width) {
      throw new RangeError(`RowWriter(${this.table}): a row has ${this.width} values (${this.columns.join(", ")}), got ${row.length}.`);
    }
    for (const value of row) this.values.push(value);
  }

  /** Drops the buffered rows unwritten (the transaction they were for failed). */
  discard(): void {
    this.values = [];
  }

  /** Writes the buffered rows and empties the buffer (also when a statement fails). */
  flush(): void {
    const values = this.values;
    if (values.length === 0) return;
    this.values = [];
    const rows = values.length / this.width;
    let at = 0;
    for (const size of CHUNK_ROWS) {
      for (; rows - at >= size; at += size) {
        const chunk = size === rows ? values : values.slice(at * this.width, (at + size) * this.width);
        this.statement(size).run(chunk);
      }
    }
  }

  private statement(rows: number): Database.Statement<unknown[]> {
    let statement = this.statements.get(rows);
    if (statement === undefined) {
      const row = `(${new Array<string>(this.width).fill("?").join(", ")})`;
      statement = this.db.prepare(`INSERT INTO ${this.table} (${this.columns.join(", ")}) VALUES ${new Array<string>(rows).fill(row).join(", ")}`);
      this.statements.set(rows, statement);
    }
    return statement;
  }
}

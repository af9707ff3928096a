/**
 * Index range scans at a snapshot: the SQL, the bounds encoding and the row mapping.
 *
 * How a scan reads (one statement, served entirely by the primary keys):
 *
 * 1. The inner query walks the index's entry table (`indexTables.ts`) by its primary key
 *    (key, ts) over the key range, keeping only versions with ts <= readTs. `GROUP BY key` with `max(ts)` collapses the
 *    versions of each key; SQLite documents that a bare column next to a single max() takes its
 *    value from the row holding the max, so `doc_id` is the entry's state as of readTs, and
 *    `HAVING doc_id IS NOT NULL` drops entries removed by then. The rows already arrive in key
 *    order, so the grouping streams (no temporary B-tree) and runs backwards for `desc`.
 * 2. Each live entry is joined to its document's newest version at or before readTs (one seek
 *    on documents' (id, ts) key); a tombstone there means the document is gone at readTs.
 * 3. No bound LIMIT: binding LIMIT as a parameter cost about 10 µs per run when measured (SQLite
 *    appears to re-prepare such a statement whenever it is rebound), more than a whole point
 *    scan. Instead the caller iterates and stops after `limit` rows; the statement produces
 *    rows lazily, so nothing past the limit is read. Point reads are the exception (below,
 *    "Point reads"): their limit is written into the SQL.
 *
 * Measured against the alternatives on 10k entries: a correlated `ts = (SELECT max(ts) ...)`
 * filter on every entry row was as fast on point scans but up to ~30% slower on ranges with
 * several versions per key; deduplicating versions in JavaScript was up to 3.5x slower.
 * `sqlite.test.ts` checks the query plans (primary-key searches only, no sorting).
 *
 * `scanVersions` runs the same statement with NULL in place of the body (`withBodies` false):
 * `documents.body IS NOT NULL` still tells a live document from a tombstone, and SQLite answers
 * it from the row's header, without reading a body that spilled onto overflow pages (measured
 * raw on 5,000 rows of 5 KB bodies: 5–8 ms for the versions against 54–70 ms with the bodies).
 */
import type Database from "better-sqlite3";
import type { DocumentVersion, IndexEntry, IndexVersion, ScanRequest } from "../types.js";
import { compareBytes } from "../../values/indexKey.js";
import { sqlBounds } from "../sqlBounds.js";
import type { IndexTables } from "./indexTables.js";
import type { PendingEntry, PendingVersions } from "./pendingVersions.js";

/** key, id, ts, table_name, body (null from the statements without bodies): rows come as arrays (`raw()`), about 25% faster than objects. */
type ScanRow = [key: Buffer, id: string, ts: number, table: string, body: string | null];

/** An entry as a scan reads it: its document's body is null in a scan without bodies (`versions`). */
interface ScannedEntry {
  key: Uint8Array;
  doc: DocumentVersion;
}

interface ScanParams {
  readTs: number;
  lower: Uint8Array;
  upper?: Uint8Array;
}

/**
 * The scan statement on one index's entry table, for one order, with or without an upper bound
 * (4 variants per index), and with a LIMIT written into it for a point read (`POINT_LIMITS`).
 */
export function scanSql(table: string, order: "asc" | "desc", upperBounded: boolean, limit?: number, withBodies = true): string {
  const direction = order === "asc" ? "ASC" : "DESC";
  return `
    SELECT live.key, documents.id, documents.ts, documents.table_name, ${withBodies ? "documents.body" : "NULL"}
    FROM (
      SELECT key, doc_id, max(ts)
      FROM ${table}
      WHERE key >= @lower ${upperBounded ? "AND key < @upper" : ""}
        AND ts <= @readTs
      GROUP BY key
      HAVING doc_id IS NOT NULL
      ORDER BY key ${direction}
    ) AS live
    JOIN documents ON documents.id = live.doc_id AND documents.ts = (
      SELECT max(version.ts) FROM documents AS version
      WHERE version.id = live.doc_id AND version.ts <= @readTs
    )
    WHERE documents.body IS NOT NULL
    ORDER BY live.key ${direction}${limit === undefined ? "" : ` LIMIT ${limit}`}`;
}

/**
 * Point reads: the limits of `first()` (1) and `unique()` (2, to see a second match). A scan
 * with one of them and nothing pending in its range runs a statement of its own with the limit
 * written into the SQL, and takes its rows in one call (`all()`) instead of stepping an
 * iterator from JavaScript: better-sqlite3 then makes no iterator object and crosses into
 * SQLite once instead of three times (two rows, then the reset). Measured raw on a 10k-entry
 * table, the live-entry statement for one key took 8.4–9.6 µs that way against 10.7–12.6 µs
 * iterated, eight alternating rounds; with 16 or 256 rows the two ways were within the noise,
 * so longer reads keep the iterator, which also stops reading where the caller does. At most
 * 2 × 4 more statements per index (`VARIANTS`), prepared on first use like the others.
 */
const POINT_LIMITS: readonly number[] = [1, 2];

/** A statement's name for `IndexTable.statement`: its variant, then its point limit if it has one (at `POINT_LIMITS`' index + 1). */
function variantNames(order: "asc" | "desc", bound: "bounded" | "open"): readonly string[] {
  const name = `scan ${order} ${bound}`;
  return [name, ...POINT_LIMITS.map((limit) => `${name} limit ${limit}`)];
}

/** The statement names, by order and upper bound (`variantNames`). */
const VARIANTS = {
  asc: { bounded: variantNames("asc", "bounded"), open: variantNames("asc", "open") },
  desc: { bounded: variantNames("desc", "bounded"), open: variantNames("desc", "open") },
} as const;

/** Scans, with their statements prepared per index table the first time each variant runs. */
export class Scanner {
  constructor(private readonly tables: IndexTables) {}

  /**
   * The live entries of `request`'s range at its snapshot, from the entry table merged with the
   * versions still pending in the log (`pendingVersions.ts`). `tableDocument` reads a document
   * from the documents table, for a pending entry whose document was not written with it (an
   * index backfill).
   */
  scan(request: ScanRequest, pending: PendingVersions, tableDocument: (id: string, readTs: number) => DocumentVersion | null): IndexEntry[] {
    // Every body is a string here: the statement keeps rows whose `documents.body IS NOT NULL`,
    // and the overlay leaves out tombstones.
    return this.merged(request, pending, tableDocument, true) as IndexEntry[];
  }

  /** `scan` without the bodies (`Storage.scanVersions`): the same entries, from the statements that select NULL for them. */
  versions(request: ScanRequest, pending: PendingVersions, tableDocument: (id: string, readTs: number) => DocumentVersion | null): IndexVersion[] {
    return this.merged(request, pending, tableDocument, false).map(({ key, doc }) => ({ key, id: doc.id, table: doc.table, ts: doc.ts }));
  }

  private merged(request: ScanRequest, pending: PendingVersions, tableDocument: (id: string, readTs: number) => DocumentVersion | null, withBodies: boolean): ScannedEntry[] {
    const { limit, readTs } = request;
    if (!(limit >= 0)) {
      throw new RangeError(`Walk-in storage: scan limit must be a number >= 0, got ${limit}.`);
    }
    const entries: ScannedEntry[] = [];
    if (limit === 0) return entries;
    const overlay = pending.entriesIn(request.indexId, request.range, readTs, request.order);
    const patchDocuments = pending.hasDocuments;
    if (withBodies && overlay.length === 0 && POINT_LIMITS.includes(limit)) {
      const point = this.pointRead(request, patchDocuments ? pending : null);
      if (point !== null) return point;
    }
    // The overlay's entries interleave with the table's rows in scan order. A key in both is the
    // overlay's: its version is the newer one (pendingVersions.ts).
    let next = 0;
    const emitOverlay = (entry: PendingEntry) => {
      if (entry.docId === null) return;
      const doc = pending.document(entry.docId, readTs) ?? tableDocument(entry.docId, readTs);
      if (doc !== null && doc.body !== null) entries.push({ key: entry.key, doc: { id: doc.id, table: doc.table, ts: doc.ts, body: doc.body } });
    };
    const before = request.order === "asc" ? (a: Uint8Array, b: Uint8Array) => compareBytes(a, b) < 0 : (a: Uint8Array, b: Uint8Array) => compareBytes(a, b) > 0;
    const read = this.statementFor(request, undefined, withBodies);
    for (const row of read?.statement.iterate(read.params) ?? []) {
      const key = row[0];
      while (next < overlay.length && entries.length < limit && before(overlay[next]!.key, key)) emitOverlay(overlay[next++]!);
      if (entries.length >= limit) break;
      if (next < overlay.length && compareBytes(overlay[next]!.key, key) === 0) {
        emitOverlay(overlay[next++]!);
      } else {
        const entry = tableEntry(row, patchDocuments ? pending : null, readTs);
        if (entry !== null) entries.push(entry);
      }
      // Leaving the loop early resets the statement, so SQLite stops reading there.
      if (entries.length >= limit) break;
    }
    while (next < overlay.length && entries.length < limit) emitOverlay(overlay[next++]!);
    return entries;
  }

  /**
   * A point read with nothing pending in its range (`POINT_LIMITS`): the table's rows in one
   * call. `null` when that is not the answer: a pending version deleted a row's document while
   * the statement stopped at the limit, so the row after it, unread, may be one to return.
   */
  private pointRead(request: ScanRequest, pending: PendingVersions | null): ScannedEntry[] | null {
    const read = this.statementFor(request, request.limit);
    if (read === null) return [];
    const rows = read.statement.all(read.params);
    const entries: ScannedEntry[] = [];
    for (const row of rows) {
      const entry = tableEntry(row, pending, request.readTs);
      if (entry !== null) entries.push(entry);
      else if (rows.length === request.limit) return null;
    }
    return entries;
  }

  /**
   * The statement for the request's variant, with a written LIMIT if `limit` is given, and its
   * parameters; `null` for an index no commit has written (it has no table yet).
   */
  private statementFor(request: ScanRequest, limit?: number, withBodies = true): { statement: Database.Statement<[ScanParams], ScanRow>; params: ScanParams } | null {
    const table = this.tables.find(request.indexId);
    if (table === null) return null;
    const { lower, upper } = sqlBounds(request.range);
    const params: ScanParams = { readTs: request.readTs, lower };
    if (upper !== undefined) params.upper = upper;
    const { order } = request;
    const bounded = upper !== undefined;
    const names = VARIANTS[order === "asc" ? "asc" : "desc"][bounded ? "bounded" : "open"];
    // A limit outside POINT_LIMITS would find the name of the statement without one (-1 + 1).
    const at = limit === undefined ? 0 : POINT_LIMITS.indexOf(limit) + 1;
    if (at === 0 && limit !== undefined) throw new RangeError(`Walk-in storage: no point-read statement for limit ${limit}.`);
    const purpose = withBodies ? names[at]! : `${names[at]!} versions`;
    return { statement: table.statement<[ScanParams], ScanRow>(purpose, (name) => scanSql(name, order, bounded, limit, withBodies), "raw"), params };
  }
}

/**
 * A row of the entry table as the entry it gives at `readTs`: its document replaced by a newer
 * version pending in the log (a write that left this key alone), if `pending` has one; `null`
 * if that version deleted the document.
 */
function tableEntry([key, id, ts, table, body]: ScanRow, pending: PendingVersions | null, readTs: number): ScannedEntry | null {
  // A plain Uint8Array view (no copy), so callers never see Buffer's different semantics.
  const view = new Uint8Array(key.buffer, key.byteOffset, key.byteLength);
  const newer = pending === null ? undefined : pending.document(id, readTs);
  if (newer === undefined) return { key: view, doc: { id, table, ts, body } };
  return newer.body === null ? null : { key: view, doc: { id, table: newer.table, ts: newer.ts, body: newer.body } };
}

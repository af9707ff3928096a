/**
 * Index range scans at a snapshot on PostgreSQL: the SQL and the bounds encoding.
 *
 * How a scan reads (one prepared statement per order and bound shape, four in all):
 *
 * 1. The inner query walks `index_entries` over the key range, keeping versions with
 *    ts <= readTs. `DISTINCT ON (key)` with `ORDER BY key, ts DESC` keeps each key's newest such
 *    version: its `doc_id` is the entry's state as of readTs. The rows come in that order from an
 *    index (ascending: `index_entries_newest_first` (index_id, key, ts DESC); descending: the
 *    primary key (index_id, key, ts) walked backwards gives key DESC, ts DESC), so the Unique
 *    node streams and nothing is sorted.
 * 2. Entries removed by readTs (`doc_id IS NULL`) are dropped after DISTINCT ON (a filter inside
 *    it would wrongly fall back to an older, live version of the key).
 * 3. A LATERAL subquery fetches each live entry's document, newest version <= readTs: one
 *    backward seek on documents' primary key. A tombstone there hides the entry.
 * 4. LIMIT stops the whole pipeline after `limit` rows: nothing past it is read.
 *
 * `postgres.test.ts` checks with EXPLAIN that every shape uses the indexes (no Seq Scan, no Sort).
 *
 * `scanVersions` runs the same statement without the body (`withBodies` false): the LATERAL
 * subquery answers `body IS NOT NULL` instead, which PostgreSQL reads from the row without
 * fetching a body that was moved out of line (TOAST, past about 2 KB).
 */

/** The scan statement for one order, with or without an upper bound. `s` is the quoted schema. */
export function scanSql(s: string, order: "asc" | "desc", upperBounded: boolean, withBodies = true): string {
  const direction = order === "asc" ? "ASC" : "DESC";
  // $1 index id, $2 lower bound (inclusive), $3 readTs, $4 limit, $5 upper bound (exclusive).
  return `
    SELECT live.key, doc.id, doc.ts, doc.table_name${withBodies ? ", doc.body" : ""}
    FROM (
      SELECT DISTINCT ON (key) key, doc_id
      FROM ${s}.index_entries
      WHERE index_id = $1 AND key >= $2 ${upperBounded ? "AND key < $5" : ""} AND ts <= $3
      ORDER BY key ${direction}, ts DESC
    ) AS live
    CROSS JOIN LATERAL (
      SELECT id, ts, table_name, ${withBodies ? "body" : "body IS NOT NULL AS live"} FROM ${s}.documents
      WHERE id = live.doc_id AND ts <= $3
      ORDER BY ts DESC
      LIMIT 1
    ) AS doc
    WHERE live.doc_id IS NOT NULL AND ${withBodies ? "doc.body IS NOT NULL" : "doc.live"}
    ORDER BY live.key ${direction}
    LIMIT $4`;
}

/** A plain Uint8Array over a Buffer's bytes, so callers never see Buffer's different semantics. */
export function toBytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

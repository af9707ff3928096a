/**
 * History garbage collection for the PostgreSQL storage (`pruneHistory`). The rules are the
 * SQLite storage's (see `sqlite/garbage.ts`): a version is garbage once no snapshot at or after
 * the prune timestamp P can see it,
 * - a version superseded by a newer version of the same id/key with ts <= P, and
 * - a tombstone / removed entry with ts <= P that is the newest version <= P (the versions
 *   beneath it go in the same statement, being superseded by it).
 * Both rules look only at versions <= P, so commits landing between batches cannot make an
 * earlier decision wrong.
 *
 * The tables are walked in primary-key order in batches of about `batchSize` rows, each batch
 * one short DELETE over a primary-key range (never a statement over the whole table, which
 * would hold locks and bloat a transaction for as long as the table is big). A batch always
 * ends on a group boundary (a whole id, a whole index key): whether a version is garbage
 * depends on the other versions of its group.
 *
 * Every sweep walks the whole tables, and the `fresh` hints of writes (types.ts) are ignored:
 * on a database that many nodes write, one node's write sets say little about where the
 * garbage is. (The SQLite storage sweeps its own write sets: `sqlite/dirtyGroups.ts`.)
 */
import type pg from "pg";
import { BEGIN_READ_COMMITTED } from "./connect.js";

export const DEFAULT_PRUNE_BATCH_SIZE = 1_000;

export class Pruner {
  private readonly sql: Record<
    "trimLog" | "documentBoundary" | "deleteDocuments" | "deleteLastDocuments" | "entryBoundary" | "deleteEntries" | "deleteLastEntries",
    string
  >;

  constructor(
    private readonly pool: pg.Pool,
    s: string,
    private readonly isClosed: () => boolean,
    batchSize: number,
    lockTimeoutMs: number,
  ) {
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`Walk-in storage: pruneBatchSize must be a positive integer, got ${batchSize}.`);
    }
    const garbageDocument = `ts <= $P AND (body IS NULL OR EXISTS (
      SELECT 1 FROM ${s}.documents AS newer
      WHERE newer.id = old.id AND newer.ts > old.ts AND newer.ts <= $P))`;
    const garbageEntry = `ts <= $P AND (doc_id IS NULL OR EXISTS (
      SELECT 1 FROM ${s}.index_entries AS newer
      WHERE newer.index_id = old.index_id AND newer.key = old.key AND newer.ts > old.ts AND newer.ts <= $P))`;
    this.sql = {
      // The clock row first: it is the commit lock, so the trim waits for a commit in flight, and a
      // writer reading the log sees either the rows or the mark that says they are gone. The
      // integer is checked before it is spliced in (a simple-protocol query takes no parameters).
      trimLog: `${BEGIN_READ_COMMITTED}; SET LOCAL lock_timeout = ${lockTimeoutMs};
        UPDATE ${s}.clock SET log_trimmed_through = GREATEST(log_trimmed_through, LEAST($P, latest_ts)) WHERE singleton = 1;
        DELETE FROM ${s}.commit_log WHERE ts <= $P;
        COMMIT`,
      // The first id of a group starting about batchSize rows past the current one.
      documentBoundary: `SELECT id FROM ${s}.documents WHERE id > $1 ORDER BY id, ts OFFSET ${batchSize} LIMIT 1`,
      deleteDocuments: `DELETE FROM ${s}.documents AS old WHERE id >= $1 AND id < $2 AND ${garbageDocument.replaceAll("$P", "$3")}`,
      deleteLastDocuments: `DELETE FROM ${s}.documents AS old WHERE id >= $1 AND ${garbageDocument.replaceAll("$P", "$2")}`,
      entryBoundary: `SELECT index_id, key FROM ${s}.index_entries WHERE (index_id, key) > ($1, $2)
        ORDER BY index_id, key, ts OFFSET ${batchSize} LIMIT 1`,
      deleteEntries: `DELETE FROM ${s}.index_entries AS old
        WHERE (index_id, key) >= ($1, $2) AND (index_id, key) < ($3, $4) AND ${garbageEntry.replaceAll("$P", "$5")}`,
      deleteLastEntries: `DELETE FROM ${s}.index_entries AS old
        WHERE (index_id, key) >= ($1, $2) AND ${garbageEntry.replaceAll("$P", "$3")}`,
    };
  }

  async prune(pruneTs: number): Promise<void> {
    if (!Number.isSafeInteger(pruneTs) || pruneTs < 0) {
      throw new RangeError(`Walk-in storage: pruneHistory needs a timestamp that is an integer >= 0, got ${pruneTs}.`);
    }
    // The log first, in one transaction with its trim mark.
    const client = await this.pool.connect();
    try {
      await client.query(this.sql.trimLog.replaceAll("$P", String(pruneTs)));
      client.release();
    } catch (error) {
      client.release(error as Error); // an aborted transaction: discard the connection
      throw error;
    }
    const query = (name: keyof Pruner["sql"], values: unknown[]) =>
      this.pool.query({ name: `walkin_prune_${name}`, text: this.sql[name], values });

    // '' is the smallest text and the empty bytea the smallest bytea: the cursors start before
    // every row.
    let from: string | null = "";
    while (from !== null && !this.isClosed()) {
      const to: string | undefined = (await query("documentBoundary", [from])).rows[0]?.id;
      if (to === undefined) {
        await query("deleteLastDocuments", [from, pruneTs]);
        from = null;
      } else {
        await query("deleteDocuments", [from, to, pruneTs]);
        from = to;
      }
    }
    let entry: { index_id: string; key: Buffer } | null = { index_id: "", key: Buffer.alloc(0) };
    while (entry !== null && !this.isClosed()) {
      const to: { index_id: string; key: Buffer } | undefined = (await query("entryBoundary", [entry.index_id, entry.key])).rows[0];
      if (to === undefined) {
        await query("deleteLastEntries", [entry.index_id, entry.key, pruneTs]);
        entry = null;
      } else {
        await query("deleteEntries", [entry.index_id, entry.key, to.index_id, to.key, pruneTs]);
        entry = to;
      }
    }
    // If the storage was closed mid-way the loops stop: pruning is only an optimisation, and
    // whatever was deleted so far was garbage.
  }
}

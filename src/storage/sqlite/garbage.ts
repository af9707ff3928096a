/**
 * What history pruning deletes in the SQLite storage, as SQL conditions on a version `old` of a
 * group (a document id, an index entry's key in its index's table) at the prune timestamp `@pruneTs` (P).
 *
 * A version is garbage once no snapshot at or after P can see it:
 * - a version superseded by a newer version of the same id/key with ts <= P (every snapshot
 *   >= P sees that newer one or something newer still), and
 * - a tombstone / removed entry with ts <= P that is the newest version <= P: snapshots >= P
 *   read "absent" there, and once the older versions beneath it are gone too (they are all
 *   superseded by it) absent is still what they read.
 * Both rules look only at versions <= P, so commits landing between two deletions (or two
 * `pruneHistory` calls at P and P' >= P) cannot make an earlier decision wrong: what a deletion
 * at P removed, no snapshot >= P could see, whatever was written after it.
 */

export const GARBAGE_DOCUMENT = `ts <= @pruneTs AND (body IS NULL OR EXISTS (
  SELECT 1 FROM documents AS newer
  WHERE newer.id = old.id AND newer.ts > old.ts AND newer.ts <= @pruneTs))`;

/** The same for an index entry, in the index's own entry table (`indexTables.ts`). */
export function garbageEntry(table: string): string {
  return `ts <= @pruneTs AND (doc_id IS NULL OR EXISTS (
  SELECT 1 FROM ${table} AS newer
  WHERE newer.key = old.key AND newer.ts > old.ts AND newer.ts <= @pruneTs))`;
}

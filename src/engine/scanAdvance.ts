/**
 * Carrying a cached scan answer across one of this engine's own commits (readCache.ts, rule 5).
 *
 * After a commit, a live query over the index it wrote is re-run at once, and its cached scan
 * answer is dead (rule 1): without this, every re-run reads storage again, although the engine
 * holds everything that changed. The commit's own writes (documents with their bodies, index
 * entries with their keys) are exactly what turns the answer at the snapshot before the commit
 * into the answer at the commit's timestamp:
 *
 * 1. An entry whose document the commit rewrote gets the new version (same key: an index key
 *    that changed shows up as a removal and an insertion, step 2).
 * 2. Each index write inside the part of the range the answer covers is applied: a removal
 *    takes its entry out, an insertion puts the new entry (its document from the commit) in
 *    key order. The answer covers the whole range if it held fewer entries than its limit
 *    (storage had no more), otherwise the range up to its last entry: writes beyond that
 *    cannot change the first `limit` entries, and an insertion before it pushes the last one
 *    out.
 *
 * Whatever the commit could have changed but this cannot account for gives up (null) and the
 * answer is dropped as before: a removal from an answer cut at its limit (the entry that
 * would move up is not at hand), an insertion whose document the commit did not write, a
 * removal of an entry that is not there, an entry left pointing at a deleted document.
 */
import { rangeContains } from "../storage/keyRange.js";
import type { DocumentWrite, IndexEntry, IndexWrite, ScanRequest, Timestamp } from "../storage/types.js";
import { compareBytes } from "../values/indexKey.js";
import { keptVersion } from "./keptVersions.js";

/** What one of this engine's commits wrote, for `advanceScan`. */
export interface OwnCommitWrites {
  /** The documents written, by ID. */
  documents: ReadonlyMap<string, DocumentWrite>;
  /** The index entries written, by index. */
  indexes: ReadonlyMap<string, readonly IndexWrite[]>;
}

/**
 * The answer to `request` at `ts`, given the `entries` it had just before and what the commit
 * at `ts` wrote; `entries` itself if nothing in it changed, null if it cannot be told.
 * `entries` is never modified (cached arrays are shared).
 */
export function advanceScan(request: ScanRequest, entries: readonly IndexEntry[], ts: Timestamp, commit: OwnCommitWrites): IndexEntry[] | null {
  const { limit } = request;
  // Copied before its first change (`entries` is shared, so `result === entries` means not yet),
  // with no closure to do it: this runs for every cached answer of every index a commit writes.
  let result = entries as IndexEntry[];
  // 1. New versions of documents already in the answer.
  for (let i = 0; i < result.length; i++) {
    const write = commit.documents.get(result[i]!.doc.id);
    if (write === undefined || write.body === null) continue; // a deletion comes with its removals (step 2)
    if (result === entries) result = entries.slice();
    result[i] = { key: result[i]!.key, doc: keptVersion(write.id, write.table, ts, write.body) };
  }
  // 2. The index writes inside the covered part of the range.
  const sign = request.order === "asc" ? 1 : -1;
  const writes = commit.indexes.get(request.indexId);
  for (let w = 0; writes !== undefined && w < writes.length; w++) {
    const write = writes[w]!;
    if (!rangeContains(request.range, write.key)) continue;
    const complete = result.length < limit;
    const last = result[result.length - 1];
    // Past the last entry of an answer cut at its limit: outside what it covers.
    if (!complete && (last === undefined || sign * compareBytes(write.key, last.key) > 0)) continue;
    const at = position(result, write.key, sign);
    const found = at < result.length && compareBytes(result[at]!.key, write.key) === 0;
    if (write.docId === null) {
      if (!found || !complete) return null;
      if (result === entries) result = entries.slice();
      result.splice(at, 1);
      continue;
    }
    const doc = commit.documents.get(write.docId);
    if (found || doc === undefined || doc.body === null) return null;
    if (result === entries) result = entries.slice();
    result.splice(at, 0, { key: write.key, doc: keptVersion(doc.id, doc.table, ts, doc.body) });
    if (result.length > limit) result.pop();
  }
  // Every deleted document must have left the answer with its removal.
  for (const entry of result) if (commit.documents.get(entry.doc.id)?.body === null) return null;
  return result;
}

/** Where `key` is or would go in `entries`, ordered by `sign` (1 ascending, -1 descending). */
function position(entries: readonly IndexEntry[], key: Uint8Array, sign: number): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sign * compareBytes(entries[middle]!.key, key) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * How many pages a transaction added to the write-ahead log, estimated from what it wrote. The
 * background checkpointer (`checkpointer.ts`) runs a pass every `passPages` pages by this count,
 * so an estimate that errs high makes it run its passes, each with its fsyncs, more often than
 * SQLite's own cadence of a pass per 1,000 pages: counting a page and a half per row, as the
 * storage did before, it ran them four to nine times as often.
 *
 * Measured by the log's growth with nothing checkpointing, in frames per one-document insert
 * with 3 index entries (these estimates in brackets): each logged alone and their versions
 * written 64 at a time 1.98 (1.80); each in its own transaction 8.0 (9.0); in batches of 32
 * 0.87 (1.28). `deferredVersions.test.ts` checks all three against the log's growth.
 */
import type { Commit } from "../types.js";
import type { PendingCommit } from "./logWrites.js";

/** SQLite's default page size, which Walk-in's files keep. */
const PAGE_BYTES = 4096;

/** A row's timestamp, cell header and pointer, about. */
const ROW_OVERHEAD_BYTES = 16;

/**
 * Pages written by a transaction that wrote the versions of `commits` and the log rows of
 * `logged`: a page and a half per B-tree it touched (its last leaf, and now and then a split),
 * and a page per 750 bytes of rows (rows appended together share leaves, which SQLite keeps
 * far from full).
 */
export function writtenPages(commits: readonly Commit[], logged: readonly Commit[]): number {
  const trees = new Set<string>();
  let bytes = 0;
  if (logged.length > 0) trees.add(" log");
  for (const commit of logged) bytes += ROW_OVERHEAD_BYTES + commit.id.length + commit.log.byteLength;
  for (const commit of commits) {
    if (commit.documents.length > 0) trees.add(" documents");
    for (const doc of commit.documents) bytes += ROW_OVERHEAD_BYTES + doc.id.length + (doc.body?.length ?? 0);
    for (const entry of commit.indexes) {
      trees.add(entry.indexId);
      bytes += ROW_OVERHEAD_BYTES + entry.key.byteLength + (entry.docId?.length ?? 0);
    }
    for (const receipt of commit.receipts ?? []) {
      trees.add(" receipts");
      bytes += ROW_OVERHEAD_BYTES + receipt.key.length + receipt.body.length;
    }
  }
  return Math.ceil(1.5 * trees.size + bytes / 750);
}

/**
 * Pages written by a transaction that wrote only these commits' log rows (each with its whole
 * commit): each rewrites the log's last leaf, and a row longer than a page overflows.
 */
export function loggedPages(logged: readonly PendingCommit[]): number {
  let pages = 0;
  for (const { bytes } of logged) pages += Math.ceil((bytes + 1) / PAGE_BYTES);
  return pages;
}

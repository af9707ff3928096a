/**
 * Versions that are logged but not yet written to their tables ("pending"), and how reads see
 * them.
 *
 * A commit on the SQLite storage writes one row: its commit-log row, which holds the whole
 * commit (documents, index entries, receipts) in its `writes` column. The documents and index
 * entries are written to their own tables later, many commits in one transaction
 * (`sqliteStorage.ts`, "Deferred versions"). Until then this overlay answers for them: every
 * read consults it first, and a version here always wins over the tables, because every
 * version here is newer than every version the tables hold for the same document or key (the
 * tables are written in timestamp order, and only up to `clock.materialized_through`).
 *
 * Each connection keeps its own overlay: its own commits go in as they land, other
 * connections' commits are loaded from their log rows (`writes`) when SQLite says the file
 * changed, and commits are dropped once the clock says they are in the tables. A commit can be
 * in the overlay and in the tables at once (another connection wrote it meanwhile): the copies
 * are identical, so a read gives the same answer from either.
 */
import type { DocumentVersion, KeyRange, StoredReceipt, Timestamp } from "../types.js";
import type { PendingCommit } from "./logWrites.js";
import { rangeContains } from "../keyRange.js";
import { compareBytes } from "../../values/indexKey.js";

/** One version of an index entry in the overlay. */
interface EntryVersion {
  ts: Timestamp;
  key: Uint8Array;
  docId: string | null;
}

/** An index entry as of a snapshot: the document it points at, or `null` if removed by then. */
export interface PendingEntry {
  key: Uint8Array;
  docId: string | null;
}

export class PendingVersions {
  /** In timestamp order. */
  private commits: PendingCommit[] = [];
  // The three maps are replaced, never cleared, when every pending commit is dropped: see
  // `dropThrough`, "Why new maps".
  /** Each document's pending versions, oldest first. */
  private documents = new Map<string, DocumentVersion[]>();
  /** Per index, each key's pending versions (oldest first), by the key's bytes as a latin1 string. */
  private entries = new Map<string, Map<string, EntryVersion[]>>();
  private receipts = new Map<string, StoredReceipt>();
  /** Every commit at or before this is in the overlay or in the tables. */
  loadedThrough: Timestamp;
  bytes = 0;

  constructor(loadedThrough: Timestamp) {
    this.loadedThrough = loadedThrough;
  }

  get size(): number {
    return this.commits.length;
  }

  /** The pending commits, oldest first. */
  all(): readonly PendingCommit[] {
    return this.commits;
  }

  /** Adds a commit newer than every one here (commits land, and are loaded, in timestamp order). */
  add(pending: PendingCommit): void {
    const { commit } = pending;
    const last = this.commits[this.commits.length - 1];
    if (last !== undefined && last.commit.ts >= commit.ts) {
      throw new Error(`Walk-in storage bug: pending commit ${commit.ts} is not newer than ${last.commit.ts}`);
    }
    this.commits.push(pending);
    this.bytes += pending.bytes;
    this.loadedThrough = Math.max(this.loadedThrough, commit.ts);
    for (const doc of commit.documents) {
      const version: DocumentVersion = { id: doc.id, table: doc.table, ts: commit.ts, body: doc.body };
      const versions = this.documents.get(doc.id);
      if (versions === undefined) this.documents.set(doc.id, [version]);
      else versions.push(version);
    }
    for (const entry of commit.indexes) {
      let keys = this.entries.get(entry.indexId);
      if (keys === undefined) this.entries.set(entry.indexId, (keys = new Map()));
      const name = keyName(entry.key);
      const version: EntryVersion = { ts: commit.ts, key: entry.key, docId: entry.docId };
      const versions = keys.get(name);
      if (versions === undefined) keys.set(name, [version]);
      else versions.push(version);
    }
    for (const receipt of commit.receipts ?? []) this.receipts.set(receipt.key, { ts: commit.ts, body: receipt.body });
  }

  /**
   * Forgets the commits at or before `ts`: the tables hold them now.
   *
   * Why new maps rather than `clear()` when everything goes (every 64 commits or so): the
   * versions in the overlay live a few milliseconds, so they should die in V8's young
   * generation, which costs nothing to collect. But the maps themselves live as long as the
   * storage, in the old generation, and V8's `Map.prototype.clear` leaves the old hash table
   * (still holding every entry) for the next full collection, giving the map a fresh table,
   * itself in the old generation. A young-generation collection treats every pointer from the
   * old generation as live without asking whether its holder is (it cannot know before a full
   * collection), so each cleared table kept its batch of versions alive through the next two
   * young collections, and V8 then moved them to the old generation, where only the full
   * collection about once a second freed them. Measured in case (a) of bench/engine under
   * synchronous=NORMAL: about 1 MB promoted per young collection (one every 40 ms) and 2.5-3.6
   * ms per collection; with new maps, which die young with their contents, 17-18 KB and
   * 0.8-1.2 ms. Case (a)'s ratio, alternating with the code before, was ahead in nine of
   * eleven pairs (0.53-0.56 against 0.44-0.46 in the first three; bench/README.md, journal,
   * 2026-12-04 10:00-11:10).
   */
  dropThrough(ts: Timestamp): void {
    // Raised first, even when nothing here is dropped: the caller says every commit at or
    // before `ts` is in the tables, which is what `loadedThrough` promises. Both callers
    // hold that: a load drops through `materialized_through`, and a batch written straight to
    // its tables (too big to defer, or deferral off) drops through its last commit, having
    // loaded the log under the write lock first. Raised only when something was dropped, as
    // before, it stood still after a batch written to the tables with nothing pending, so
    // every read after it (until the next small commit) paid the `data_version` check, a
    // read transaction of its own: 19% of a point read in case (d) of bench/engine at 1M
    // documents, whose documents are loaded in big batches (bench/README.md, journal,
    // 2026-12-04 12:00-13:00).
    this.loadedThrough = Math.max(this.loadedThrough, ts);
    let n = 0;
    while (n < this.commits.length && this.commits[n]!.commit.ts <= ts) n++;
    if (n === 0) return;
    if (n === this.commits.length) {
      // The usual case (writing the pending versions writes them all): every version and
      // receipt here came from a dropped commit, so nothing is left to pick out key by key.
      // New maps, not clear() (see above).
      this.commits = [];
      this.bytes = 0;
      this.documents = new Map();
      this.entries = new Map();
      this.receipts = new Map();
      return;
    }
    const dropped = this.commits.slice(0, n);
    this.commits = this.commits.slice(n);
    for (const { commit, bytes } of dropped) {
      this.bytes -= bytes;
      for (const doc of commit.documents) dropOldest(this.documents, doc.id, ts);
      for (const entry of commit.indexes) {
        const keys = this.entries.get(entry.indexId);
        if (keys === undefined) continue;
        dropOldest(keys, keyName(entry.key), ts);
        if (keys.size === 0) this.entries.delete(entry.indexId);
      }
      for (const receipt of commit.receipts ?? []) {
        if ((this.receipts.get(receipt.key)?.ts ?? Infinity) <= ts) this.receipts.delete(receipt.key);
      }
    }
  }

  /**
   * The newest pending version of document `id` at or before `readTs`; `undefined` if there is
   * none (the tables answer). A version with a `null` body is a deletion.
   */
  document(id: string, readTs: Timestamp): DocumentVersion | undefined {
    const versions = this.documents.get(id);
    if (versions === undefined) return undefined;
    for (let i = versions.length - 1; i >= 0; i--) if (versions[i]!.ts <= readTs) return versions[i];
    return undefined;
  }

  get hasDocuments(): boolean {
    return this.documents.size > 0;
  }

  /**
   * The pending entries of `indexId` in `range` as of `readTs` (each key's newest version at or
   * before it, removals included), sorted in scan order.
   */
  entriesIn(indexId: string, range: KeyRange, readTs: Timestamp, order: "asc" | "desc"): PendingEntry[] {
    const keys = this.entries.get(indexId);
    if (keys === undefined) return [];
    const found: PendingEntry[] = [];
    for (const versions of keys.values()) {
      let version: EntryVersion | undefined;
      for (let i = versions.length - 1; i >= 0; i--) {
        if (versions[i]!.ts <= readTs) {
          version = versions[i];
          break;
        }
      }
      if (version !== undefined && rangeContains(range, version.key)) found.push({ key: version.key, docId: version.docId });
    }
    found.sort(order === "asc" ? (a, b) => compareBytes(a.key, b.key) : (a, b) => compareBytes(b.key, a.key));
    return found;
  }

  receipt(key: string): StoredReceipt | undefined {
    return this.receipts.get(key);
  }
}

/** Drops the versions at or before `ts` from the front of `map.get(name)`, and the name once empty. */
function dropOldest<T extends { ts: Timestamp }>(map: Map<string, T[]>, name: string, ts: Timestamp): void {
  const versions = map.get(name);
  if (versions === undefined) return;
  let n = 0;
  while (n < versions.length && versions[n]!.ts <= ts) n++;
  if (n === versions.length) map.delete(name);
  else if (n > 0) versions.splice(0, n);
}

/** A key's bytes as a string, to use it as a Map key (latin1 maps every byte to one character). */
function keyName(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
}

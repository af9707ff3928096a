/**
 * A reference storage for the conformance suite: the `Storage` semantics written as plainly as
 * possible (lists of versions, filtered on every read), to compare real backends against.
 */
import type { TestCommit } from "./context.js";
import type { DocumentVersion, IndexEntry, IndexVersion, ScanRequest, Timestamp } from "../types.js";
import { rangeContains } from "../keyRange.js";

/** memcmp order: the first differing byte decides; otherwise the shorter key sorts first. */
export function compareBytes(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

interface EntryVersion {
  indexId: string;
  key: Uint8Array;
  ts: Timestamp;
  docId: string | null;
}

const entryGroup = (e: { indexId: string; key: Uint8Array }) => `${e.indexId}\u0000${e.key.join()}`;

export class ReferenceStorage {
  private documents: DocumentVersion[] = [];
  private entries: EntryVersion[] = [];
  /** Every document id and index entry ever written, pruned or not. */
  private readonly everWritten = new Set<string>();
  latest: Timestamp = 0;

  apply(commit: TestCommit): void {
    for (const d of commit.documents) {
      this.documents.push({ id: d.id, table: d.table, ts: commit.ts, body: d.body });
      this.everWritten.add(`document ${d.id}`);
    }
    for (const e of commit.indexes) {
      this.entries.push({ indexId: e.indexId, key: Uint8Array.from(e.key), ts: commit.ts, docId: e.docId });
      this.everWritten.add(`entry ${entryGroup(e)}`);
    }
    this.latest = commit.ts;
  }

  /** Whether no version of this document or index entry was ever written: a write of it may be hinted `fresh`. */
  isNew(write: { id: string } | { indexId: string; key: Uint8Array }): boolean {
    return !this.everWritten.has("id" in write ? `document ${write.id}` : `entry ${entryGroup(write)}`);
  }

  getDocument(id: string, readTs: Timestamp): DocumentVersion | null {
    const newest = newestPerGroup(this.documents.filter((d) => d.id === id && d.ts <= readTs), () => "")[0];
    return newest === undefined || newest.body === null ? null : { ...newest };
  }

  scan(request: ScanRequest): IndexEntry[] {
    const visible = this.entries.filter((e) => e.indexId === request.indexId && e.ts <= request.readTs);
    const live: IndexEntry[] = [];
    for (const e of newestPerGroup(visible, (v) => v.key.join())) {
      if (e.docId === null || !rangeContains(request.range, e.key)) continue;
      const doc = this.getDocument(e.docId, request.readTs);
      if (doc !== null && doc.body !== null) live.push({ key: e.key, doc: { ...doc, body: doc.body } });
    }
    live.sort((a, b) => compareBytes(a.key, b.key) * (request.order === "asc" ? 1 : -1));
    return live.slice(0, request.limit);
  }

  scanVersions(request: ScanRequest): IndexVersion[] {
    return this.scan(request).map(({ key, doc }) => ({ key, id: doc.id, table: doc.table, ts: doc.ts }));
  }

  /** Drops what `pruneHistory(ts)` must drop, to predict the version counts left afterwards. */
  prune(ts: Timestamp): void {
    this.documents = pruned(this.documents, (d) => d.id, (d) => d.body === null, ts);
    this.entries = pruned(this.entries, entryGroup, (e) => e.docId === null, ts);
  }

  versionCounts(): { documents: number; indexEntries: number } {
    return { documents: this.documents.length, indexEntries: this.entries.length };
  }
}

/** The newest version of each group. */
function newestPerGroup<V extends { ts: Timestamp }>(versions: V[], group: (v: V) => string): V[] {
  const newest = new Map<string, V>();
  for (const v of versions) {
    const g = group(v);
    const current = newest.get(g);
    if (current === undefined || v.ts > current.ts) newest.set(g, v);
  }
  return [...newest.values()];
}

function pruned<V extends { ts: Timestamp }>(
  versions: V[],
  group: (v: V) => string,
  isDeletion: (v: V) => boolean,
  ts: Timestamp,
): V[] {
  const newestAtTs = new Map(newestPerGroup(versions.filter((v) => v.ts <= ts), group).map((v) => [group(v), v]));
  return versions.filter((v) => {
    if (v.ts > ts) return true;
    const survivor = newestAtTs.get(group(v))!;
    return v === survivor && !isDeletion(v);
  });
}

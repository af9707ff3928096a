/**
 * Builds indexes that are new, or whose definition changed, from their table's documents,
 * before the engine serves anything. Each index is written in one commit after the current
 * latest timestamp, which also records the build in `_index_builds` (indexBuilds.ts); the
 * catalog lists it as built only once its entries are durable, so a crash mid-build leaves it
 * unrecorded and it is built again at the next start.
 */
import { isCommitOutcomeUnknown, type CommitPlanner, type IndexWrite, type Storage, type Timestamp } from "../storage/types.js";
import { indexDisplayName, isBuiltInIndex, isPlainIndex, type Catalog, type IndexInfo } from "./catalog.js";
import { indexKeyOf, type Doc } from "./documents.js";
import { searchKeysOf } from "./search.js";
import { vectorKeysOf } from "./vector.js";
import { compareBytes } from "../values/indexKey.js";
import { Transaction } from "./transaction.js";
import { decodeWriteSet, encodeWriteSet } from "./writeSetCodec.js";
import { INDEX_BUILDS_BY_ID, readIndexBuilds, recordBuild } from "./indexBuilds.js";

/**
 * Drops `dropped` and rebuilds `stale`; returns the new latest timestamp, and sets in `builtAt`
 * the timestamp of each index's build commit.
 *
 * With `keepDropped` (a shared database, where other nodes may be serving these indexes), it
 * drops nothing. A stale index is then rebuilt over its old entries in one commit that writes
 * every document's entry and removes the old entries whose key no longer matches their
 * document: readers see the old index until that commit and the whole new one from it, never
 * an index emptied by a drop while the backfill scans the table.
 *
 * The built-in indexes (`by_id`, `by_creation_time`) are never dropped: every commit that
 * writes their table writes them, so they are always complete. Dropped with a table that left
 * the schema, its documents would vanish from every query when the table came back (a get by
 * ID still finding them), as nothing would backfill them.
 */
export async function buildIndexes(
  storage: Storage,
  catalog: Catalog,
  latest: Timestamp,
  stale: IndexInfo[],
  dropped: string[],
  { keepDropped = false, builtAt }: { keepDropped?: boolean; builtAt?: Map<string, Timestamp> } = {},
): Promise<Timestamp> {
  const drop = keepDropped ? [] : [...dropped, ...stale.map((index) => index.id)];
  for (const id of drop.filter((id) => !isBuiltInIndex(id))) await storage.dropIndex(id);
  for (const index of stale) {
    // Built-in indexes are written with every document from the table's first insert, so
    // "stale" only means "newly registered" for them: there is nothing to backfill.
    if (index.name === "by_id" || index.name === "by_creation_time") continue;
    const table = catalog.lookup(index.id.slice(0, index.id.lastIndexOf(".")), { system: true })!;
    const byCreationTime = table.indexes.get("by_creation_time")!;
    // Backfill from a snapshot, then commit the entries only if no commit since that snapshot
    // wrote to the table (another engine sharing the database may be running): otherwise a
    // document written in between could be missing from the new index. Then try again.
    for (let attempt = 0; ; attempt++) {
      const writes: IndexWrite[] = [];
      const txn = new Transaction(storage, catalog, latest, Date.now());
      for await (const { doc } of txn.scan(byCreationTime, {}, "asc")) {
        // Not hinted `fresh` (storage/types.ts): the index was dropped above, but another engine
        // sharing the database may be writing entries of it meanwhile.
        for (const key of keysOf(index, doc)) writes.push({ indexId: index.id, key, docId: doc._id as string });
      }
      if (keepDropped) {
        // Not dropped: entries kept from before whose document has another key now (or, in a
        // search index, no longer has that word) go in the same commit.
        // A search index lists a document once per word (a vector index once per filter field):
        // its keys are kept for the next ones (a bounded number of documents' worth).
        const searchKeys = new Map<string, Set<string>>();
        for await (const { key, doc } of txn.scan(index, {}, "asc")) {
          if (isPlainIndex(index)) {
            if (compareBytes(key, indexKeyOf(index, doc)) !== 0) writes.push({ indexId: index.id, key, docId: null });
            continue;
          }
          const id = doc._id as string;
          let keys = searchKeys.get(id);
          if (keys === undefined) {
            if (searchKeys.size >= 1_024) searchKeys.clear();
            searchKeys.set(id, (keys = new Set(keysOf(index, doc).map(hexOf))));
          }
          if (!keys.has(hexOf(key))) writes.push({ indexId: index.id, key, docId: null });
        }
      }
      // The same commit records the build (indexBuilds.ts, step 1): made even for an empty
      // table, so that a node lacking the index learns of it and marks it before it writes.
      // The record is read at `recordAt`: when another build or a mark lands first, it is read
      // again further on (it must not overwrite what it did not see), without a new scan.
      const snapshot = latest;
      let recordAt = snapshot;
      let raced = false;
      let lost = false;
      for (let recorded = 0; ; recorded++) {
        const recordTxn = new Transaction(storage, catalog, recordAt, Date.now());
        await recordBuild(recordTxn, await readIndexBuilds(recordTxn), index.id);
        const record = recordTxn.buildWrites();
        const writeSet = new Map(record.writeSet);
        writeSet.set(index.id, writes.map((write) => write.key)); // listed even without keys: it names the index built
        const log = encodeWriteSet(writeSet);
        const id = `index-build-${index.id}-${Date.now()}-${attempt}-${recorded}`;
        let recordRaced = false;
        const landedAt = await commitOrFind(storage, id, snapshot, (view) => {
          raced = view.trimmedThrough > snapshot;
          recordRaced = false;
          for (const commit of view.commits) {
            if (commit.ts <= snapshot) continue;
            const written = decodeWriteSet(commit.log);
            if (written.has(byCreationTime.id)) raced = true;
            if (commit.ts > recordAt && written.has(INDEX_BUILDS_BY_ID)) recordRaced = true;
          }
          if (raced || recordRaced) return [];
          return [{ ts: view.latest + 1, id, documents: record.documents, indexes: [...writes, ...record.indexes], log }];
        });
        if (landedAt === null) {
          lost = true; // an unknown outcome that did not land: build again
          break;
        }
        latest = landedAt;
        if (raced || !recordRaced) break;
        recordAt = landedAt;
        if (recorded >= 64) throw new Error(`Recording the build of index ${indexDisplayName(index.id)} kept racing with other builds; try again.`);
      }
      if (lost) continue;
      if (!raced) {
        // Its entries hold every write to the table up to here, and only up to here.
        builtAt?.set(index.id, latest);
        break;
      }
      if (attempt >= 16) throw new Error(`Building index ${indexDisplayName(index.id)} kept racing with writes to its table; try again when writes are quieter.`);
    }
  }
  await catalog.markIndexesBuilt(stale, dropped, { keptEntries: keepDropped });
  return latest;
}


/**
 * Commits one planned batch; returns the latest timestamp afterwards, or `null` if the outcome
 * was unknown and the commit did not land. An unknown outcome is resolved with `findCommits`.
 */
export async function commitOrFind(storage: Storage, id: string, since: Timestamp, plan: CommitPlanner): Promise<Timestamp | null> {
  try {
    const { view, written } = await storage.commitBatch(since, plan);
    return written[written.length - 1]?.ts ?? view.latest;
  } catch (error) {
    if (!isCommitOutcomeUnknown(error)) throw error;
    return (await storage.findCommits([id])).get(id) ?? null;
  }
}

const hexOf = (key: Uint8Array) => Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("hex");

/** A document's entries in an index: its one key, a search index's key per word (search.ts), or a vector index's (vector.ts). */
function keysOf(index: IndexInfo, doc: Doc): Uint8Array[] {
  if (index.search) return searchKeysOf(index, doc);
  return index.vector ? vectorKeysOf(index, doc) : [indexKeyOf(index, doc)];
}

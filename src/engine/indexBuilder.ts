/**
 * Builds indexes that are new, or whose definition changed, from their table's documents,
 * before the engine serves anything. Each index is written in one commit after the current
 * latest timestamp; the catalog records it as built only once its entries are durable, so a
 * crash mid-build leaves it unrecorded and it is built again at the next start.
 */
import type { Storage, Timestamp } from "../storage/types.js";
import type { Catalog, IndexInfo } from "./catalog.js";
import { indexKeyOf } from "./documents.js";
import { Transaction } from "./transaction.js";

/** Drops `dropped` and rebuilds `stale`; returns the new latest timestamp. */
export async function buildIndexes(
  storage: Storage,
  catalog: Catalog,
  latest: Timestamp,
  stale: IndexInfo[],
  dropped: string[],
): Promise<Timestamp> {
  for (const id of [...dropped, ...stale.map((index) => index.id)]) await storage.dropIndex(id);
  for (const index of stale) {
    // Built-in indexes are written with every document from the table's first insert, so
    // "stale" only means "newly registered" for them: there is nothing to backfill.
    if (index.name === "by_id" || index.name === "by_creation_time") continue;
    const table = catalog.lookup(index.id.slice(0, index.id.lastIndexOf(".")), { system: true })!;
    const writes = [];
    const txn = new Transaction(storage, catalog, latest, Date.now());
    for await (const { doc } of txn.scan(table.indexes.get("by_creation_time")!, {}, "asc")) {
      writes.push({ indexId: index.id, key: indexKeyOf(index, doc), docId: doc._id });
    }
    if (writes.length > 0) {
      latest += 1;
      await storage.commit({ ts: latest, documents: [], indexes: writes });
    }
  }
  await catalog.markIndexesBuilt(stale, dropped);
  return latest;
}

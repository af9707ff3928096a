/**
 * Reclaiming the entries of indexes that no schema declares any more, on a shared database.
 *
 * At start an engine never drops an index its schema stopped declaring when other engines may
 * share the database (indexBuilder.ts): another node, another process on the SQLite file, or
 * the previous version during a hot reload may still read it. The index is taken off the
 * registry's built list and put on its retired list instead, and its entries stay. This takes
 * them away once nothing can read them, step by step:
 *
 *  1. The registry is persisted first (Catalog.markIndexesBuilt): the index is no longer listed
 *     as built, so an engine that reads the registry from then on and declares the index
 *     rebuilds it rather than trusting its entries.
 *  2. `storage.reclaimIndex` checks, in the transaction that deletes the entries, that no other
 *     engine has the database open (an engine registers before it reads anything: see the
 *     storages) and that the registry still lists the index as retired and not as built.
 *     An engine open now makes it a no-op. One that opened, rebuilt the index and closed since
 *     step 1 has listed it as built, and the guard keeps its entries.
 *  3. Reclaimed indexes leave the retired list. A crash before this step only makes the next
 *     start reclaim an index that has no entries.
 * An index that is not reclaimed (another engine was open) stays retired for a later start,
 * or for `Engine.reclaimRetiredIndexes` once the other engine has gone (a hot reload calls it
 * when the old version has stopped).
 */
import type { Storage } from "../storage/types.js";
import { REGISTRY_KEY, type Catalog } from "./catalog.js";

/** Reclaims what it can of `catalog`'s retired indexes; answers the IDs it reclaimed. */
export async function reclaimRetiredIndexes(storage: Storage, catalog: Catalog): Promise<string[]> {
  const reclaimed: string[] = [];
  for (const id of catalog.retiredIndexes()) {
    const guard = { metaKey: REGISTRY_KEY, allows: (registry: string | null) => stillRetired(registry, id) };
    // False: another engine is open, or the index is no longer retired. Either way it is kept.
    if (await storage.reclaimIndex(id, guard)) reclaimed.push(id);
  }
  if (reclaimed.length > 0) await catalog.forgetRetired(reclaimed);
  return reclaimed;
}

function stillRetired(stored: string | null, id: string): boolean {
  if (stored === null) return false;
  const registry = JSON.parse(stored) as { indexes?: Record<string, unknown>; retired?: string[] };
  return registry.retired?.includes(id) === true && !Object.hasOwn(registry.indexes ?? {}, id);
}

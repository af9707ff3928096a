/**
 * Nodes running different code on one database (a rolling deploy): what keeps that safe.
 *
 * Every commit's write set holds, for each document it wrote, the keys of every index its node
 * knows on that table (see readSet.ts). So when this node learns of another node's commit that
 * wrote table T (keys in `T.by_id`) but no key of an index `T.x` this node has, the other node
 * runs code without `T.x` and the documents it wrote are missing from it, or listed under their
 * old values. Reading `T.x` would give wrong results, silently. Instead:
 *
 *  1. the index is marked incomplete on this node: queries that use it fail with an error that
 *     says why and what to do, and no wrong result is ever served from it;
 *  2. it is marked unbuilt in the stored catalog, so the next start of a node that declares it
 *     rebuilds it from the documents (once every node runs the same code, restart them).
 * Writes keep maintaining the index meanwhile. An index whose fields differ between the two
 * versions of the code is two indexes with two IDs (catalog.ts, "Index IDs"), so the same rule
 * covers it: each version refuses its definition once the other's commits skip it. (The
 * reverse, a node that does not know an index another one built, never reads it, and
 * `buildIndexes` never drops an index on a shared database; but its writes skip the index, so
 * it records that before they land, for the nodes declaring the index that start later:
 * indexBuilds.ts.)
 */
import { indexDisplayName, type Catalog } from "./catalog.js";
import type { WriteSet } from "./readSet.js";

/** Indexes of `catalog` that a commit wrote documents of their table without maintaining. */
export function indexesSkippedBy(writes: WriteSet, tables: Set<string>, catalog: Catalog): string[] {
  const skipped: string[] = [];
  for (const name of tables) {
    const table = catalog.tables().find((t) => t.name === name);
    if (!table || !writes.has(`${name}.by_id`)) continue;
    for (const index of table.indexes.values()) {
      if (index.name === "by_id" || index.name === "by_creation_time") continue;
      if (!writes.has(index.id) && !catalog.isIncomplete(index.id)) skipped.push(index.id);
    }
  }
  return skipped;
}

/** The error a query on an incomplete index gets. */
export function incompleteIndexMessage(indexId: string): string {
  return `Index "${indexDisplayName(indexId)}" is incomplete on this node: another node running code without this index, or with other fields for it, wrote to its ` +
    `table, so its entries cannot be trusted. Finish the deploy so that every node runs the same code, then restart ` +
    `the nodes: the index is rebuilt when a node starts. (Until then, queries that use it fail rather than give ` +
    `wrong results.)`;
}

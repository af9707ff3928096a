/**
 * Builds of indexes, and the nodes lacking them, recorded in the commit log: what keeps a node
 * that starts later from trusting an index that nodes without it wrote around (a canary).
 *
 * mixedCode.ts covers nodes that declare an index while nodes lacking it write its table. Not
 * a canary: a node builds index X at start and stops, nodes lacking X keep writing X's table T
 * (so X misses those writes), and a node declaring X that starts later finds X listed as built.
 * It must rebuild X instead. So the build and the lack are both recorded, as documents of the
 * system table `_index_builds` ({ index, lacked }) written by commits: serializable, in the one
 * log every node follows, and read at a snapshot like any document.
 *
 *  1. Build. The commit that writes X's entries (indexBuilder.ts) also sets X's document to
 *     `lacked: false` (creating it), and is refused if any commit since the build's snapshot
 *     wrote T (the build starts again) or since the document was read wrote `_index_builds`
 *     (it is read again): a build never undoes a mark, nor creates a second document, unseen.
 *  2. Mark. A node L whose catalog has T but not X sets X's document to `lacked: true` (OCC: in
 *     a commit refused if any commit since its read wrote `_index_builds`) before its next
 *     commit lands, whenever it may not have seen X's latest build:
 *     a. after it starts (its first commit waits for the check, `IndexWatch.lackedIndexGate`, indexWatch.ts);
 *     b. after it learns another node's commit that built an index it lacks (`buildsIndexLackedBy`),
 *        from a refresh or inside the plan of its own batch: the plan refuses that batch, so
 *        it runs again after the mark (committer.ts, `holdsCommits` and `commitGate`);
 *     c. after it lost track of the log (`lostTrack`: it could not see what was built).
 *     The check reads every document at the storage's latest timestamp, which is at or past
 *     everything L learned; a build after that read is learned by the plan of L's next batch
 *     (b) at the latest, since a plan sees every commit after L's latest.
 *  3. Start. A node N declaring X, listed as built, reads X's document at a snapshot S taken
 *     after its `loadedAt` (engine.ts): `lacked: true` makes X stale, rebuilt at start (which
 *     is 1 again). No document (a database from before these records): trusted, as before.
 *
 * Why N cannot miss a write c to T by a node L lacking X (c skips X), step by step:
 *  - c > loadedAt_N: N checks c as before (mixedCode.ts): in `checkCommitsWhileOpening` (indexWatch.ts) if
 *    it lands while N opens (unless N rebuilt X at start after c: then X includes it), then
 *    as N follows the log. X becomes incomplete on N, never read wrong.
 *  - c <= loadedAt_N <= S. Let R be the last build of X at or before S (a commit of step 1).
 *    . c < R: R's entries were computed from a snapshot at or after c, or R would have been
 *      refused (c wrote T after the build's snapshot): R includes c.
 *    . c > R: look at L's latest when the plan of c's batch runs. If it is below R, the plan
 *      sees R and refuses the batch (2b); c lands in a later batch, after the check below.
 *      Else R is at or below it, and a check ran before c's batch at a snapshot at or past R:
 *      L's start check (2a) if L started after R; else L learned R through the log (2b) or
 *      jumped past it (2c), and either wants a check before its next batch. A check that sees
 *      `lacked: false` marks, so a mark M with R < M < c <= S exists, unless a mark after R
 *      was there already. Either way X's document at S says `lacked: true` (only a build sets
 *      it back, and R is the last one up to S): N rebuilds X.
 *  - A writer still running while N starts: its commits after N's rebuild R' follow R', so L
 *    learns R' before they land (2b) and marks again; N, running, sees them skip X (first case).
 *  - A rebuild while L still runs: the same (2b). Marks and builds are OCC commits on one
 *    document each, so none undoes another unseen. Once no lacking node runs, the next start
 *    rebuilds X and its document stays `lacked: false`: trusted from then on.
 * What remains: nodes of releases before these records never mark, and builds by them left no
 * document (trusted as before); see docs/scaling.md.
 */
import type { Storage, Timestamp } from "../storage/types.js";
import type { Catalog, IndexInfo } from "./catalog.js";
import type { Doc } from "./documents.js";
import { commitOrFind } from "./indexBuilder.js";
import { Transaction } from "./transaction.js";
import type { WriteSet } from "./readSet.js";
import { decodeWriteSet, encodeWriteSet } from "./writeSetCodec.js";

export const INDEX_BUILDS_TABLE = "_index_builds";
/** Written by every commit that writes an `_index_builds` document: a build or a mark. */
export const INDEX_BUILDS_BY_ID = `${INDEX_BUILDS_TABLE}.by_id`;

/** Attempts at a mark that keeps racing with other builds and marks. */
const MARK_ATTEMPTS = 16;

/** Every index's build document, by index ID, as of `txn`'s snapshot (a few documents: one per index built). */
export async function readIndexBuilds(txn: Transaction): Promise<Map<string, Doc>> {
  const table = txn.catalog.lookup(INDEX_BUILDS_TABLE, { system: true })!;
  const builds = new Map<string, Doc>();
  for await (const { doc } of txn.scan(table.indexes.get("by_creation_time")!, {}, "asc")) builds.set(doc.index as string, doc);
  return builds;
}

/** Stages, in the build's transaction, X's document saying it is built and lacked by no node (step 1). */
export async function recordBuild(txn: Transaction, builds: Map<string, Doc>, indexId: string): Promise<void> {
  const existing = builds.get(indexId);
  if (existing === undefined) await txn.insertSystem(INDEX_BUILDS_TABLE, { index: indexId, lacked: false });
  else if (existing.lacked !== false) await txn.patch(existing._id, { lacked: false }, { system: true });
}

/** Of `declared`, the indexes some node lacking them marked since their last build (step 3): stale. */
export async function indexesMarkedLacked(storage: Storage, catalog: Catalog, snapshot: Timestamp, declared: IndexInfo[]): Promise<IndexInfo[]> {
  const builds = await readIndexBuilds(new Transaction(storage, catalog, snapshot, Date.now()));
  return declared.filter((index) => builds.get(index.id)?.lacked === true);
}

/**
 * Whether a commit another node made built an index this node lacks (step 2b): it wrote an
 * `_index_builds` document and the entries of an index of a table this node has, not its own.
 * One map lookup for any other commit.
 */
export function buildsIndexLackedBy(writes: WriteSet, catalog: Catalog): boolean {
  if (!writes.has(INDEX_BUILDS_BY_ID)) return false;
  for (const indexId of writes.keys()) if (catalog.lacksIndex(indexId)) return true;
  return false;
}

/**
 * Marks `lacked: true` every index built and not marked since whose table this node has and
 * that it lacks (step 2). Resolves once the marks are durable (or nothing was to mark).
 */
export async function markLackedIndexes(storage: Storage, catalog: Catalog): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const snapshot = await storage.latestTimestamp();
    const txn = new Transaction(storage, catalog, snapshot, Date.now());
    for (const [indexId, doc] of await readIndexBuilds(txn)) {
      if (doc.lacked === false && catalog.lacksIndex(indexId)) await txn.patch(doc._id, { lacked: true }, { system: true });
    }
    if (!txn.hasWrites) return;
    const { documents, indexes, writeSet } = txn.buildWrites();
    const id = `index-lacked-${Date.now()}-${Math.random().toString(36).slice(2, 10)}-${attempt}`;
    let raced = false;
    const landedAt = await commitOrFind(storage, id, snapshot, (view) => {
      // A build or another mark since the read: this one would be decided on an old document.
      raced = view.trimmedThrough > snapshot ||
        view.commits.some((commit) => commit.ts > snapshot && decodeWriteSet(commit.log).has(INDEX_BUILDS_BY_ID));
      if (raced) return [];
      return [{ ts: view.latest + 1, id, documents, indexes, log: encodeWriteSet(writeSet) }];
    });
    if (landedAt !== null && !raced) return;
    if (attempt >= MARK_ATTEMPTS) {
      throw new Error("Recording that this node lacks an index other nodes built kept racing with index builds; try again.");
    }
  }
}

/**
 * The write-set part of the SQLite history sweep (see `prune.ts`): garbage only ever appears
 * in a group (a document id, an index entry: its index and key) that a commit wrote to, so the storage
 * remembers, for each group its own commits wrote, the newest timestamp written, and a sweep
 * deletes the garbage of those groups only, one primary-key seek each. Its cost follows the
 * writes, not the size of the tables.
 *
 * A write hinted `fresh` (types.ts: no version of its group is stored) supersedes nothing, so it
 * is not remembered; if a later write supersedes it, that write is. A fresh deletion is
 * remembered all the same: a tombstone is garbage itself once the prune timestamp passes it.
 *
 * ## Why no garbage is forgotten
 *
 * A group leaves the map only when a sweep at P has deleted its garbage and every version this
 * storage wrote of it is at or before P. Step by step:
 *
 * 1. Every commit this storage lands is recorded: `SqliteStorage.commitBatch` records the
 *    groups of the commits it wrote right after their transaction committed, before anything
 *    that could throw, and a group's timestamp is set to the commit's (the newest: timestamps
 *    only grow).
 * 2. A sweep step is synchronous (better-sqlite3 is): for each group it reads the newest
 *    timestamp t from the map, deletes the group's garbage at P, and removes the group from the
 *    map if t <= P. No commit of this process can land, nor be recorded, between the read of t
 *    and the removal, so the removal never drops the record of a newer write. (Were there an
 *    `await` in between, a commit at t2 > P could record the group there, and the removal
 *    would erase that record and leave the garbage t2 makes to the next full pass.)
 * 3. If t <= P, this storage wrote no version of the group above P, and after the deletion
 *    nothing in it is garbage at P. Nothing becomes garbage at a later P' either until a newer
 *    version is written: both rules (`garbage.ts`) compare a version only with the newer
 *    versions of its group. A newer version comes with a commit, which records the group
 *    again (1), or through another connection (see below).
 * 4. If t > P, the group stays: its versions above P may become garbage at a later P'.
 * 5. Commits that land while a sweep yields between steps either come before the step that
 *    reads their group (which then sees their t, step 2), or after it (and record the group
 *    again, step 1). A sweep visits the groups present when it started, at most once each.
 *
 * Commits through other connections (another engine on the same file) are not recorded: the
 * full pass (`fullPass.ts`) finds their garbage. So it does when the map grows past its cap
 * (`maxGroups`): then it is emptied, `forgottenThrough` says up to which timestamp, and the
 * pruner schedules a full pass, which keeps the memory bounded whatever the writes.
 */
import type Database from "better-sqlite3";
import type { Commit, Timestamp } from "../types.js";
import { toBuffer } from "../sqlBounds.js";
import { GARBAGE_DOCUMENT, garbageEntry } from "./garbage.js";
import type { IndexTables } from "./indexTables.js";

/** Deletes one document's garbage: a seek on the primary key (id, ts). */
export const SWEEP_DOCUMENT_SQL = `DELETE FROM documents AS old WHERE id = @id AND ${GARBAGE_DOCUMENT}`;
/** Deletes one index entry's garbage: a seek on the primary key (key, ts) of its index's table. */
export const sweepEntrySql = (table: string) => `DELETE FROM ${table} AS old WHERE key = @key AND ${garbageEntry(table)}`;

/** One table's part of a sweep: the groups it still has to visit. */
interface SweepPart {
  groups: Map<string, Timestamp>;
  iterator: IterableIterator<[string, Timestamp]>;
  left: number;
  sweepGroup: (group: string, pruneTs: number) => void;
}

/** A sweep of the groups recorded when it started: `step` until it is `done`. */
export interface DirtySweep {
  readonly done: boolean;
  /** Sweeps up to a batch of groups in one transaction; returns how many. */
  step(): number;
}

export class DirtyGroups {
  /** Document id → the newest timestamp written. */
  private readonly documents = new Map<string, Timestamp>();
  /** `entryGroup(indexId, key)` → the newest timestamp written. */
  private readonly entries = new Map<string, Timestamp>();
  /** The newest timestamp of a group forgotten on an overflow (0: none): only a full pass finds their garbage. */
  forgottenThrough: Timestamp = 0;
  private readonly sweepDocument: Database.Statement<[{ id: string; pruneTs: number }]>;
  private readonly inTransaction: Database.Transaction<(step: () => number) => number>;

  constructor(
    db: Database.Database,
    private readonly indexTables: IndexTables,
    private readonly batchSize: number,
    private readonly maxGroups: number,
  ) {
    this.sweepDocument = db.prepare(SWEEP_DOCUMENT_SQL);
    this.inTransaction = db.transaction((step: () => number) => step());
  }

  /** How many groups are remembered. */
  get size(): number {
    return this.documents.size + this.entries.size;
  }

  /** Remembers the groups `commits` wrote; called as they land (see "Why no garbage is forgotten", 1). */
  record(commits: readonly Commit[]): void {
    for (const commit of commits) {
      for (const doc of commit.documents) {
        if (doc.fresh !== true || doc.body === null) this.documents.set(doc.id, commit.ts);
      }
      for (const entry of commit.indexes) {
        if (entry.fresh !== true || entry.docId === null) this.entries.set(entryGroup(entry.indexId, entry.key), commit.ts);
      }
    }
    if (this.size > this.maxGroups) {
      this.documents.clear();
      this.entries.clear();
      this.forgottenThrough = commits[commits.length - 1]!.ts;
    }
  }

  /** A sweep at `pruneTs` of the groups remembered now. */
  sweep(pruneTs: number): DirtySweep {
    const part = (groups: Map<string, Timestamp>, sweepGroup: SweepPart["sweepGroup"]): SweepPart => ({
      groups,
      iterator: groups.entries(),
      left: groups.size,
      sweepGroup,
    });
    const parts = [
      part(this.documents, (id, at) => this.sweepDocument.run({ id, pruneTs: at })),
      part(this.entries, (group, at) => this.sweepEntry(group, at)),
    ];
    const batchSize = this.batchSize;
    // Synchronous from reading a group's newest timestamp to removing it (step 2 above).
    const step = () => {
      let swept = 0;
      for (const p of parts) {
        while (p.left > 0 && swept < batchSize) {
          // A live iterator: it sees a group's timestamp as of now. Groups added since the sweep
          // started come after the ones it started with, and `left` stops before them.
          const next = p.iterator.next();
          if (next.done === true) {
            p.left = 0; // emptied while the sweep yielded (the map overflowed)
            break;
          }
          p.left--;
          const [group, newest] = next.value;
          p.sweepGroup(group, pruneTs);
          swept++;
          if (newest <= pruneTs) p.groups.delete(group);
        }
      }
      return swept;
    };
    return {
      get done() {
        return parts.every((p) => p.left === 0);
      },
      step: () => this.inTransaction.immediate(step),
    };
  }

  /** Deletes the garbage of one index entry's versions (none to delete if its index has no table). */
  private sweepEntry(group: string, pruneTs: number): void {
    const { indexId, key } = parseEntryGroup(group);
    this.indexTables.find(indexId)?.statement<[{ key: Buffer; pruneTs: number }], unknown>("sweep entry", sweepEntrySql).run({ key, pruneTs });
  }
}

/**
 * One string per `(indexId, key)`, for a Map key: the index ID's length, then the ID, then the
 * key's bytes one character each (latin1 maps every byte to one character and back).
 */
export function entryGroup(indexId: string, key: Uint8Array): string {
  return `${indexId.length}:${indexId}${toBuffer(key).toString("latin1")}`;
}

function parseEntryGroup(group: string): { indexId: string; key: Buffer } {
  const colon = group.indexOf(":");
  const idEnd = colon + 1 + Number(group.slice(0, colon));
  return { indexId: group.slice(colon + 1, idEnd), key: Buffer.from(group.slice(idEnd), "latin1") };
}

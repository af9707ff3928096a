/**
 * What other nodes' commits mean for this node's indexes, where nodes running different code
 * share one database (a rolling deploy, a canary): a commit that skipped one of this node's
 * indexes makes it incomplete (mixedCode.ts), and an index another node built that this node
 * lacks is marked before this node's next commit lands (indexBuilds.ts, step 2). Apart from
 * engine.ts because it only watches: the engine hands it the commits it learns (and, at start,
 * those that landed while it opened), and the committer awaits its gate before each batch.
 */
import type { Storage, Timestamp } from "../storage/types.js";
import { indexDisplayName, type Catalog } from "./catalog.js";
import type { CommitRecord } from "./commitLog.js";
import { markLackedIndexes } from "./indexBuilds.js";
import { incompleteIndexMessage, indexesSkippedBy } from "./mixedCode.js";
import { decodeWriteSet, tablesOfWriteSet } from "./writeSetCodec.js";

/** What the watch needs of its engine. */
export interface IndexWatchHost {
  readonly storage: Storage;
  readonly catalog: Catalog;
  logError(message: string, error: unknown): void;
}

export class IndexWatch {
  /**
   * Whether this engine's next commit must first mark the indexes other nodes built that it
   * lacks (indexBuilds.ts, step 2): at start, and after it learned of such a build.
   */
  private lackedCheckWanted = true;

  constructor(private readonly host: IndexWatchHost) {}

  /** Makes this engine's next commit first mark the indexes other nodes built that it lacks (see `lackedIndexGate`). */
  wantLackedCheck(): void {
    this.lackedCheckWanted = true;
  }

  /**
   * The commits in (`from`, `to`] landed while this engine loaded its catalog and built its
   * indexes, before it followed other nodes: checked like any other node's commit for indexes
   * they skipped, except the commits up to the build of an index this start built (`builtAt`:
   * its build checked the table's writes until then; a later commit, landing while the start
   * built other indexes, is checked like any other). Storage keeps the log from `from` on:
   * this storage's snapshot floor was taken before it.
   */
  async checkCommitsWhileOpening(from: Timestamp, to: Timestamp, builtAt: Map<string, Timestamp>): Promise<void> {
    for (let since = from; since < to; ) {
      const view = await this.host.storage.commitsSince(since, 1_000);
      for (const commit of view.commits) {
        if (commit.ts > to) return;
        const writes = decodeWriteSet(commit.log);
        const record = { ts: commit.ts, writes };
        this.checkOtherNodesCode(record, tablesOfWriteSet(writes), (indexId) => commit.ts <= (builtAt.get(indexId) ?? 0));
      }
      if (view.commits.length === 0) return;
      since = view.commits[view.commits.length - 1]!.ts;
    }
  }

  /**
   * What the committer awaits before a batch (committer.ts, `commitGate`): the marks of indexes
   * other nodes built that this node lacks, when it may not have seen their latest build
   * (indexBuilds.ts, step 2); else null, at no cost. A failed check is tried again by the next
   * batch, which waits for it: a commit never lands before the marks it needs.
   */
  lackedIndexGate(): Promise<void> | null {
    if (!this.lackedCheckWanted) return null;
    this.lackedCheckWanted = false;
    return markLackedIndexes(this.host.storage, this.host.catalog).catch((error: unknown) => {
      this.lackedCheckWanted = true;
      throw error;
    });
  }

  /** Another node's commit that skipped one of our indexes makes that index untrustworthy (mixedCode.ts). */
  checkOtherNodesCode(record: CommitRecord, tables: Set<string>, ignore?: (indexId: string) => boolean): void {
    for (const indexId of indexesSkippedBy(record.writes, tables, this.host.catalog)) {
      if (ignore?.(indexId)) continue;
      this.host.logError(`Commit ${record.ts} by another node skipped index ${indexDisplayName(indexId)}`, new Error(incompleteIndexMessage(indexId)));
      void this.host.catalog.markIncomplete(indexId).catch((error) => this.host.logError(`Recording index ${indexDisplayName(indexId)} as unbuilt failed`, error));
    }
  }
}

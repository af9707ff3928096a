/**
 * The one commit path, with group commit.
 *
 * Transactions that finish in the same turn of the event loop are committed together: the
 * committer waits one macrotask (`setImmediate`) so that every handler that is ready to commit
 * gets to ask, then takes them all in arrival order. Each is checked for conflicts against the
 * commit log *and* against the transactions accepted before it in the same batch, gets the
 * next timestamp, and the accepted ones reach storage in one atomic write: one fsync for the
 * batch instead of one per mutation. A conflicting one is answered "retry" and takes no
 * timestamp. Batches are strictly sequential, so timestamps follow commit order exactly.
 */
import type { Storage, Timestamp } from "../storage/types.js";
import type { CommitLog, CommitRecord } from "./commitLog.js";
import type { ReadSet, WriteSet } from "./readSet.js";
import type { Transaction } from "./transaction.js";

export type CommitResult = { ok: true; ts: Timestamp } | { ok: false; indexId: string };

/** Upper bound on one batch, so one storage write stays short. */
const MAX_BATCH = 256;

interface Waiting {
  txn: Transaction;
  resolve: (result: CommitResult) => void;
  reject: (error: unknown) => void;
}

export interface CommitterHost {
  readonly storage: Storage;
  readonly commitLog: CommitLog;
  latest: Timestamp;
  /** Called for each commit, in timestamp order, once it is durable. */
  committed(record: CommitRecord, tables: Set<string>): void;
}

export class GroupCommitter {
  private waiting: Waiting[] = [];
  private scheduled = false;
  private running: Promise<void> | null = null;

  constructor(private readonly host: CommitterHost) {}

  commit(txn: Transaction): Promise<CommitResult> {
    if (!txn.hasWrites) return Promise.resolve({ ok: true, ts: txn.readTs });
    return new Promise((resolve, reject) => {
      this.waiting.push({ txn, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once everything asked so far has been committed or refused. */
  async idle(): Promise<void> {
    while (this.running || this.scheduled || this.waiting.length > 0) {
      await (this.running ?? new Promise((resolve) => setImmediate(resolve)));
    }
  }

  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.running = this.drain().finally(() => {
        this.running = null;
        if (this.waiting.length > 0) this.schedule();
      });
    });
  }

  private async drain(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, MAX_BATCH);
      await this.commitBatch(batch);
    }
  }

  private async commitBatch(batch: Waiting[]): Promise<void> {
    const { host } = this;
    const accepted: Array<{ item: Waiting; ts: Timestamp; built: ReturnType<Transaction["buildCommit"]> }> = [];
    let ts = host.latest;
    for (const item of batch) {
      const conflict =
        host.commitLog.firstConflict(item.txn.readSet, item.txn.readTs)?.indexId ??
        firstOverlap(item.txn.readSet, accepted.map((a) => a.built.writeSet));
      if (conflict !== null) {
        item.resolve({ ok: false, indexId: conflict });
        continue;
      }
      ts += 1;
      accepted.push({ item, ts, built: item.txn.buildCommit(ts) });
    }
    if (accepted.length === 0) return;
    try {
      await host.storage.commitBatch(accepted.map((a) => a.built.commit));
    } catch (error) {
      // Another engine on the same database committed past us (during a hot reload the old
      // engine may finish its last writes after this one opened). Catch up and let these
      // mutations re-run at a snapshot that includes those writes. Anything else is a failure.
      const stored = await host.storage.latestTimestamp().catch(() => -1);
      if (stored > host.latest) {
        host.latest = stored;
        for (const { item, built } of accepted) item.resolve({ ok: false, indexId: [...built.writeSet.keys()][0] ?? "?.by_id" });
      } else {
        for (const { item } of accepted) item.reject(error);
      }
      return;
    }
    host.latest = ts;
    for (const { item, ts: committedTs, built } of accepted) {
      host.committed({ ts: committedTs, writes: built.writeSet }, built.tables);
      item.resolve({ ok: true, ts: committedTs });
    }
  }
}

function firstOverlap(readSet: ReadSet, writeSets: WriteSet[]): string | null {
  for (const writes of writeSets) {
    const indexId = readSet.overlaps(writes);
    if (indexId !== null) return indexId;
  }
  return null;
}

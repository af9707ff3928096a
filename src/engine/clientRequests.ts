/**
 * Exactly-once mutations from clients. A client numbers its mutations; the result of each is
 * stored under (clientId, requestId) as a storage receipt (`Storage.getReceipt`), written in the
 * same commit as the mutation's writes. So either the mutation committed and its result is on
 * record, or neither happened: a request re-sent after a dropped connection or a server restart
 * is answered from the record, never applied twice. Receipts older than a day are removed by
 * `pruneReceipts`, which the engine runs every few minutes (a client that stays offline longer
 * than that and then re-sends an unacknowledged mutation would have it applied again; a day is
 * far beyond any reconnect).
 *
 * A receipt is one small non-versioned row. The versioned system table `_client_requests` that
 * held these records before (a document version and three index entries per mutation) is still
 * read while it has records, so that a request answered before an upgrade is not applied again
 * after it, and pruned until it is empty (`LegacyRequests`).
 *
 * ## Two copies of one request racing
 *
 * A re-send after a reconnect can reach another engine (a hot reload's new engine, another
 * node) while the first copy is still committing. Receipts have no snapshots, so what keeps the
 * second copy from also applying is the commit check every mutation goes through
 * (committer.ts), fed with a key that stands for the request:
 *
 *  1. Each copy, as the first step of its transaction at snapshot `readTs`, records a point
 *     read of `(RECEIPT_INDEX, key)` in its read set, then asks storage for the receipt.
 *  2. A copy that finds no receipt runs the mutation and commits with the receipt, and its
 *     commit's write set (kept in the commit log, the `log` bytes every engine reads) holds
 *     `(RECEIPT_INDEX, key)`.
 *  3. Say copy A commits at `tA` first. Copy B found no receipt, so B's lookup ran before A's
 *     commit landed (storage shows a receipt from the moment its commit is visible), and B's
 *     `readTs`, a timestamp committed before that lookup, is below `tA`.
 *  4. B's commit is checked against every commit after its `readTs` (in the commit lock:
 *     nothing can land in between), so against A's: the key overlaps B's read, B is refused
 *     and re-runs at a fresh snapshot, where step 1 finds A's receipt. Two copies in one batch
 *     are caught the same way (B is checked against the commits accepted before it).
 *  5. A copy that finds a receipt with `ts <= readTs` answers from it. One that finds a receipt
 *     with `ts > readTs` (A landed after B's snapshot was taken) must not answer at its stale
 *     snapshot, whose ts the client would wait on without seeing A's writes, and must not
 *     treat it as absent either: `Engine.runClientMutation` catches up with storage and runs
 *     again, as after a conflict.
 *
 * Steps 1-4 are the same reasoning that makes any read-then-write serializable; the key only
 * gives the receipt, which is not in any index, a place in read and write sets. Storage keeps
 * receipt keys unique as a second line: a copy that got past step 4 would have its whole batch
 * rejected with nothing written (every mutation in it re-run), never a second receipt.
 * (`clientRequests.test.ts` races two engines on one database through each step.)
 *
 * ## First sends
 *
 * Almost every request arrives once, and its lookup finds nothing: a storage read per
 * mutation (a network round trip on PostgreSQL) spent on re-sends that did not happen. So a
 * client says, when it connects, from which request ID on everything it sends is new
 * (`Connect.newRequestsFrom`; re-sends after a reconnect are numbered below), and the first
 * run of such a request records the reads of step 1 but does not look the receipt up
 * (`findClientRequest` with `lookUp` false). Why that answers exactly as the lookup would:
 *
 *  a. Request IDs name one request of one client (`clientId` is random per client), and a
 *     client numbers its requests upwards: an ID at or above `newRequestsFrom` was not sent on
 *     an earlier connection. The connection also checks that each such ID is above every
 *     mutation ID it received before (`Connection.isFirstSend`), so one sent twice on the same
 *     connection is looked up.
 *  b. So no commit can hold the request's receipt yet, and the lookup would have found nothing.
 *  c. A client that breaks its word (or a bug) cannot make a request apply twice: its receipt
 *     key is in the commit, and storage refuses a receipt key it already holds (the second
 *     line above), writing nothing. The committer re-runs that batch's mutations like
 *     conflicts (`GroupCommitter.settleFailed`), and a re-run always looks the receipt up: it
 *     finds the first copy's and answers from it. The other mutations of the batch only run
 *     again. Records in the legacy table have no such guard, so while it may hold any, every
 *     request is looked up.
 */
import { walkinError, type Value } from "../values/index.js";
import { encodeIndexKey } from "../values/indexKey.js";
import { decodeValueFromString, encodeValueToString } from "../values/json.js";
import type { Storage, Timestamp } from "../storage/types.js";
import type { Catalog } from "./catalog.js";
import { documentSize } from "./documents.js";
import { LIMITS } from "./limits.js";
import { QueryImpl } from "./query.js";
import { prefixRange } from "./readSet.js";
import type { Transaction } from "./transaction.js";

export const CLIENT_REQUEST_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Records removed per transaction or storage call; a full batch means there may be more. */
export const PRUNE_BATCH = 512;

/**
 * The key a client request stands under in read and write sets (see the module comment). No
 * index of that name exists: the table part starts with "_" (no app table can be named so) and
 * is no table of the catalog, so nothing but the conflict check ever looks at it.
 */
export const RECEIPT_INDEX = "_receipts.by_client_request";

/** The legacy table of client request records (before receipts). */
const LEGACY_TABLE = "_client_requests";

export interface ClientRequest {
  clientId: string;
  requestId: number;
  /**
   * The client says this request was never sent before (see "First sends"): its first run
   * skips the receipt lookup. Absent or false: looked up.
   */
  firstSend?: boolean;
}

/** A request found on record: its result and the timestamp of the commit that recorded it. */
export interface RecordedRequest {
  result: Value;
  ts: Timestamp;
}

/** The storage receipt key of a request: unambiguous whatever characters the client ID holds. */
export function receiptKey(request: ClientRequest): string {
  return JSON.stringify([request.clientId, request.requestId]);
}

/**
 * Looks a request up, recording the reads that make a racing copy conflict (module comment,
 * step 1): the receipt's key, and the request's range in the legacy table, which an engine of
 * the previous version (a rolling deploy on PostgreSQL) may still write.
 */
export async function findClientRequest(
  storage: Storage,
  catalog: Catalog,
  txn: Transaction,
  request: ClientRequest,
  legacy: LegacyRequests,
  lookUp = true,
): Promise<RecordedRequest | null> {
  const key = receiptKey(request);
  txn.readSet.addPoint(RECEIPT_INDEX, encodeIndexKey([key]));
  const legacyIndex = catalog.lookup(LEGACY_TABLE, { system: true })!.indexes.get("by_client_request")!;
  const legacyRange = prefixRange(encodeIndexKey([request.clientId, request.requestId]));
  txn.readSet.add(legacyIndex.id, legacyRange);
  // A first send has no receipt yet ("First sends", b): the reads above are all it needs.
  // Not while the legacy table may hold records: nothing would refuse a second one there (c).
  if (!lookUp && !legacy.mayHaveRecords) return null;
  const receipt = await storage.getReceipt(key);
  if (receipt !== null) return { result: decodeValueFromString(receipt.body), ts: receipt.ts };
  if (!legacy.mayHaveRecords) return null;
  const table = catalog.lookup(LEGACY_TABLE, { system: true })!;
  const record = await new QueryImpl(txn, table)
    .withIndex("by_client_request", (q) => q.eq("clientId", request.clientId).eq("requestId", request.requestId))
    .first();
  // Read at the transaction's snapshot: on record as of readTs.
  return record ? { result: (record.result ?? null) as Value, ts: txn.readTs } : null;
}

/**
 * Records a request's result as a receipt of the transaction's commit (module comment, step 2).
 * The result is kept as long as a document could be (it was one, in the legacy table).
 */
export function recordClientRequest(txn: Transaction, request: ClientRequest, result: Value): void {
  const key = receiptKey(request);
  const body = encodeValueToString(result);
  // Measured as a document is (documentSize), not as its JSON text, in which bytes are base64
  // and some characters escaped; the size is at most 9 times the text's, so a result whose text
  // is under a ninth of the limit is under it, and is not measured.
  const size = Buffer.byteLength(body) * 9 <= LIMITS.maxDocumentBytes ? 0 : documentSize(result);
  if (size > LIMITS.maxDocumentBytes) {
    throw walkinError("LIMIT_EXCEEDED", `A mutation called by a client returned ${size} bytes (counted as a document's ` +
      `values are); the limit is ${LIMITS.maxDocumentBytes} (1 MiB), since the result is kept to answer a re-sent ` +
      `request. Return less (e.g. IDs) and read the rest with a query.`);
  }
  txn.writeReceipt({ key, body }, RECEIPT_INDEX, encodeIndexKey([key]));
}

/**
 * Deletes receipts older than the retention window, `PRUNE_BATCH` at a time, until none is left
 * or `stopped()`; resolves with how many.
 */
export async function pruneReceipts(storage: Storage, now: number, stopped: () => boolean): Promise<number> {
  let removed = 0;
  while (!stopped()) {
    const batch = await storage.pruneReceipts(now - CLIENT_REQUEST_RETENTION_MS, PRUNE_BATCH);
    removed += batch;
    if (batch < PRUNE_BATCH) break;
  }
  return removed;
}

/**
 * Whether the legacy table `_client_requests` may still hold records, so that lookups read it
 * only while it might (a database written by a Walk-in from before receipts), and the state
 * that keeps that answer safe:
 *
 * - at open, it is true if the table has any record at the latest snapshot;
 * - it turns true when this engine learns of a commit by another engine that wrote the table
 *   (an engine of the previous version on a shared database), before any transaction can read
 *   at that commit's timestamp (`noteCommit` runs as the commit is applied);
 * - it turns false only when a prune transaction found the table empty at its snapshot and no
 *   such commit was learned since that snapshot was taken (`generation`), so no record the
 *   table gained after the snapshot is missed.
 */
export class LegacyRequests {
  private generation = 0;

  private constructor(private records: boolean) {}

  static async open(catalog: Catalog, txn: Transaction): Promise<LegacyRequests> {
    const table = catalog.lookup(LEGACY_TABLE, { system: true })!;
    const any = await new QueryImpl(txn, table).withIndex("by_creation_time", (q) => q).first();
    return new LegacyRequests(any !== null);
  }

  get mayHaveRecords(): boolean {
    return this.records;
  }

  /** A commit, this engine's or another's, touched these tables. */
  noteCommit(tables: Set<string>): void {
    if (!tables.has(LEGACY_TABLE)) return;
    this.records = true;
    this.generation += 1;
  }

  /**
   * Deletes legacy records older than the retention window, a bounded batch per call, in `txn`;
   * resolves with how many. Call `afterPrune` with the answer once `txn` has committed.
   */
  async prune(catalog: Catalog, txn: Transaction, now: number): Promise<{ removed: number; emptyAt: number | null }> {
    const generation = this.generation;
    if (!this.records) return { removed: 0, emptyAt: null };
    const table = catalog.lookup(LEGACY_TABLE, { system: true })!;
    const old = await new QueryImpl(txn, table)
      .withIndex("by_creation_time", (q) => q.lt("_creationTime", now - CLIENT_REQUEST_RETENTION_MS))
      .take(PRUNE_BATCH);
    for (const record of old) await txn.delete(record._id, { system: true });
    // Our own deletions are visible to this read: empty means nothing is left once it commits.
    const left = await new QueryImpl(txn, table).withIndex("by_creation_time", (q) => q).first();
    return { removed: old.length, emptyAt: left === null ? generation : null };
  }

  /** After a prune's transaction committed: forget the table if it was found empty (see above). */
  afterPrune(result: { emptyAt: number | null }): void {
    if (result.emptyAt !== null && result.emptyAt === this.generation) this.records = false;
  }
}

/** The error for storage that keeps answering with a receipt newer than everything it lists. */
export function receiptAheadError(storageName: string, receiptTs: Timestamp, latest: Timestamp): Error {
  return walkinError("INTERNAL", `Storage ${storageName} has a client request receipt at timestamp ${receiptTs}, but its ` +
    `commit log ends at ${latest}: a receipt must only be visible once its commit is.`);
}

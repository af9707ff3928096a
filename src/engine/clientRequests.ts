/**
 * Exactly-once mutations from clients. A client numbers its mutations; the result of each is
 * stored under (clientId, requestId) in `_client_requests`, in the same transaction as the
 * mutation's writes. So either the mutation committed and its result is on record, or
 * neither happened: a request re-sent after a dropped connection or a server restart is
 * answered from the record, never applied twice. Records older than a day are removed by
 * `pruneClientRequests`, which the engine runs every few minutes (a client that stays offline longer than that and then re-sends an
 * unacknowledged mutation would have it applied again; a day is far beyond any reconnect).
 */
import type { Value } from "../values/index.js";
import type { Catalog } from "./catalog.js";
import { QueryImpl } from "./query.js";
import type { Transaction } from "./transaction.js";

export const CLIENT_REQUEST_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Records removed per transaction; a full batch means there may be more. */
export const PRUNE_BATCH = 512;

export async function findClientRequest(
  catalog: Catalog,
  txn: Transaction,
  request: { clientId: string; requestId: number },
): Promise<{ result: Value } | null> {
  const table = catalog.lookup("_client_requests", { system: true })!;
  const record = await new QueryImpl(txn, table)
    .withIndex("by_client_request", (q) => q.eq("clientId", request.clientId).eq("requestId", request.requestId))
    .first();
  return record ? { result: (record.result ?? null) as Value } : null;
}

export async function recordClientRequest(txn: Transaction, request: { clientId: string; requestId: number }, result: Value): Promise<void> {
  await txn.insertSystem("_client_requests", { clientId: request.clientId, requestId: request.requestId, result });
}

/** Deletes records older than the retention window, a bounded batch per call. */
export async function pruneClientRequests(catalog: Catalog, txn: Transaction, now: number): Promise<number> {
  const table = catalog.lookup("_client_requests", { system: true })!;
  const old = await new QueryImpl(txn, table)
    .withIndex("by_creation_time", (q) => q.lt("_creationTime", now - CLIENT_REQUEST_RETENTION_MS))
    .take(PRUNE_BATCH);
  for (const record of old) await txn.delete(record._id, { system: true });
  return old.length;
}

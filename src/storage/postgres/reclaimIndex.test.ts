/**
 * PostgreSQL's reclaimIndex (snapshotFloors.ts, `whileAlone`): its lock on snapshot_floors is
 * bounded by lock_timeout like every lock the storage takes. A lock request that waited would
 * queue every node's registration behind it, so no node could start while it waited.
 */
import pg from "pg";
import { afterEach, expect, it } from "vitest";
import { commit, entry, put } from "../conformance/context.js";
import { openTestSchema } from "./testDatabase.js";
import type { PostgresStorage } from "./postgresStorage.js";
import { quoteIdentifier } from "./schema.js";

const LOCK_TIMEOUT_MS = 300;
const allow = { metaKey: "registry", allows: () => true };
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

/** Whether `promise` settles within `ms`. */
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([
    promise.then(() => true, () => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms)),
  ]);
}

it("reclaimIndex gives up after lockTimeoutMs when its DELETE waits for a lock, and a node opening meanwhile is not held up", async () => {
  const target = await openTestSchema({ lockTimeoutMs: LOCK_TIMEOUT_MS });
  cleanups.push(target.drop, () => target.storage.close());
  await commit(target.storage, { ts: 1, documents: [put("a", "a")], indexes: [entry("old", [1], "a")] });

  // Anything holding a lock the reclaim needs: here a row lock on one of the entries (a prune
  // batch, a stuck session); the same holds for a conflicting lock on snapshot_floors.
  const other = new pg.Client({ connectionString: target.url });
  await other.connect();
  cleanups.push(() => other.end());
  await other.query(`BEGIN; SELECT 1 FROM ${quoteIdentifier(target.schema)}.index_entries WHERE index_id = 'old' FOR UPDATE`);
  cleanups.push(() => other.query("ROLLBACK"));

  const reclaim = target.storage.reclaimIndex("old", allow);
  reclaim.catch(() => {});
  // It fails after lock_timeout, as every lock-taking transaction of the storage does, rather
  // than wait with the floors table locked.
  const gaveUp = await settlesWithin(reclaim, LOCK_TIMEOUT_MS * 6);

  // A node starting now registers in snapshot_floors before it reads anything: it must not
  // wait behind the reclaim's lock.
  let second: PostgresStorage | undefined;
  const opening = target.open().then((storage) => (second = storage));
  cleanups.push(async () => {
    await other.query("ROLLBACK").catch(() => {});
    await opening.catch(() => {});
    await second?.close();
  });
  const opened = await settlesWithin(opening, 3_000);

  expect({ gaveUp, opened }).toEqual({ gaveUp: true, opened: true });
});

/**
 * Pruning on write (`versionWriter.ts`): a document written again after the read
 * floor rose loses, in that commit, the versions no read at or above the floor can see. Reads
 * staying exact is the conformance suite's ("reads at or above the read floor stay exact");
 * this checks that the versions really go, and only those.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { commit, fresh, put, remove } from "../conformance/context.js";
import { openSqliteStorage, type SqliteStorage } from "./sqliteStorage.js";

let dir: string;
let storage: SqliteStorage;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "walkin-prune-on-write-"));
  storage = await openSqliteStorage({ filename: path.join(dir, "walkin.sqlite") });
});
afterEach(async () => {
  await storage.close();
  await rm(dir, { recursive: true, force: true });
});

/** The timestamps of a document's stored versions, oldest first (pending ones written first). */
function versionsOf(id: string): number[] {
  storage.writePendingVersions();
  return storage.db.prepare<[string], number>("SELECT ts FROM documents WHERE id = ? ORDER BY ts").pluck().all(id);
}

it("drops a rewritten document's versions superseded at the floor, keeping what reads at or above it see", async () => {
  await commit(storage, { ts: 1, documents: [fresh(put("counter", "1")), fresh(put("other", "x"))], indexes: [] });
  for (let ts = 2; ts <= 10; ts++) await commit(storage, { ts, documents: [put("counter", String(ts))], indexes: [] });
  expect(versionsOf("counter")).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

  storage.raiseReadFloor(7);
  await commit(storage, { ts: 11, documents: [put("counter", "11")], indexes: [] });
  // A read at 7 sees version 7; 1-6 are superseded at or before 7 and go with this write.
  expect(versionsOf("counter")).toEqual([7, 8, 9, 10, 11]);
  expect((await storage.getDocument("counter", 7))?.body).toBe("7");
  expect((await storage.getDocument("counter", 9))?.body).toBe("9");
  // A document this commit did not write keeps its history for the sweep.
  expect(versionsOf("other")).toEqual([1]);
});

it("leaves everything when the floor is lower, and drops a tombstoned past only as a sweep would", async () => {
  await commit(storage, { ts: 1, documents: [put("a", "1")], indexes: [] });
  await commit(storage, { ts: 2, documents: [put("a", "2")], indexes: [] });
  await commit(storage, { ts: 3, documents: [remove("a")], indexes: [] });
  storage.raiseReadFloor(2);
  storage.raiseReadFloor(1); // never back
  await commit(storage, { ts: 4, documents: [put("a", "4")], indexes: [] });
  // At floor 2 only version 1 is superseded; the tombstone at 3 is above the floor.
  expect(versionsOf("a")).toEqual([2, 3, 4]);
  expect((await storage.getDocument("a", 2))?.body).toBe("2");
  expect(await storage.getDocument("a", 3)).toBeNull();

  storage.raiseReadFloor(3);
  await commit(storage, { ts: 5, documents: [put("a", "5")], indexes: [] });
  // At 3, version 2 is superseded and the tombstone is the newest: reads at 3 and 4 see
  // "absent" and version 4 without them.
  expect(versionsOf("a")).toEqual([4, 5]);
  expect(await storage.getDocument("a", 3)).toBeNull();
  expect((await storage.getDocument("a", 4))?.body).toBe("4");
});

it("does nothing for a write hinted fresh (nothing of it is stored to supersede)", async () => {
  await commit(storage, { ts: 1, documents: [put("a", "1")], indexes: [] });
  await commit(storage, { ts: 2, documents: [put("a", "2")], indexes: [] });
  storage.raiseReadFloor(2);
  // A wrong hint: pruning on write skips it, so garbage stays (the sweep's to find), and reads hold.
  await commit(storage, { ts: 3, documents: [fresh(put("a", "3"))], indexes: [] });
  expect(versionsOf("a")).toEqual([1, 2, 3]);
  expect((await storage.getDocument("a", 2))?.body).toBe("2");
});

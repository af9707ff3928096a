/**
 * A review of `Storage.scanVersions` (types.ts) against `scan`: the same entries, in the same
 * order and limits, each with the version `scan` answers, on SQLite (with versions pending in
 * the log and in the tables, two connections on one file, an index backfilled over documents
 * already in the tables) and on PostgreSQL; and the promise vector search builds on (a page
 * read without bodies, then with them: vectorSearch.ts, `readPage`), that the same request at
 * the same snapshot answers the same entries whatever commits, writes of pending versions and
 * pruning at that snapshot run between the two calls. Here, among the PostgreSQL tests, because
 * it needs the server for its PostgreSQL half.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { commit, entry, put, remove, type TestCommit } from "../conformance/context.js";
import { seededChoices } from "../conformance/history.js";
import { ReferenceStorage } from "../conformance/model.js";
import { openSqliteStorage, VERSIONS_KEPT_IN_LOG, type SqliteStorage } from "../sqlite/sqliteStorage.js";
import { createTestDatabase } from "./testDatabase.js";
import { openPostgresStorage } from "./postgresStorage.js";
import type { IndexEntry, IndexVersion, KeyRange, ScanRequest, Storage } from "../types.js";

/** Entries as plain data, keys as number arrays, bodies left out: what both methods answer. */
const fromScan = (entries: IndexEntry[]) => entries.map(({ key, doc }) => ({ key: Array.from(key), id: doc.id, table: doc.table, ts: doc.ts }));
const fromVersions = (versions: IndexVersion[]) => versions.map(({ key, id, table, ts }) => ({ key: Array.from(key), id, table, ts }));

const INDEX = "v";
/** Bodies past SQLite's overflow threshold and PostgreSQL's TOAST one, and small ones. */
const body = (n: number, large: boolean) => (large ? `${n}:${"x".repeat(9_000)}` : `${n}`);

/**
 * A random history of the kinds that make a scan's answer depend on more than one table:
 * documents rewritten with their entries left alone, entries moved, documents deleted with
 * and without their entries (the engine never leaves one, the contract allows it), and
 * entries written alone for documents stored before (a backfill). `live` maps each document
 * not deleted to its key (null: none).
 */
function randomCommit(choices: ReturnType<typeof seededChoices>, ts: number, live: Map<string, number | null>): TestCommit {
  const documents: TestCommit["documents"] = [];
  const indexes: TestCommit["indexes"] = [];
  const touchedDocs = new Set<string>();
  const touchedKeys = new Set<number>();
  const ids = [...live.keys()];
  const freeKey = () => {
    for (let tries = 0; tries < 20; tries++) {
      const key = choices.int(40);
      if (!touchedKeys.has(key) && ![...live.values()].includes(key)) return key;
    }
    return null;
  };
  for (let n = 1 + choices.int(3); n > 0; n--) {
    const kind = choices.pick(["insert", "insert", "insert", "rewrite", "rewrite", "move", "delete", "deleteLeavingEntry", "backfill"] as const);
    const id = kind === "insert" ? `d${ts}_${n}` : choices.pick(ids.length > 0 ? ids : ["none"]);
    if (touchedDocs.has(id)) continue;
    const key = live.get(id);
    switch (kind) {
      case "insert": {
        const k = freeKey();
        if (k === null) break;
        documents.push(put(id, body(ts, choices.next() < 0.5)));
        indexes.push(entry(INDEX, [k], id));
        live.set(id, k);
        touchedKeys.add(k);
        break;
      }
      case "rewrite":
        if (key === undefined) break;
        documents.push(put(id, body(ts, choices.next() < 0.5)));
        break;
      case "move": {
        const k = freeKey();
        if (key === undefined || key === null || k === null || touchedKeys.has(key)) break;
        documents.push(put(id, body(ts, false)));
        indexes.push(entry(INDEX, [key], null), entry(INDEX, [k], id));
        touchedKeys.add(key).add(k);
        live.set(id, k);
        break;
      }
      case "delete":
        if (key === undefined || (key !== null && touchedKeys.has(key))) break;
        documents.push(remove(id));
        if (key !== null) {
          indexes.push(entry(INDEX, [key], null));
          touchedKeys.add(key);
        }
        live.delete(id);
        break;
      case "deleteLeavingEntry":
        if (key === undefined) break;
        documents.push(remove(id));
        live.delete(id);
        break;
      case "backfill": {
        // An entry written again, alone, for a document whose versions are elsewhere.
        if (key === undefined || key === null || touchedKeys.has(key)) break;
        indexes.push(entry(INDEX, [key], id));
        touchedKeys.add(key);
        break;
      }
    }
    touchedDocs.add(id);
  }
  return { ts, documents, indexes };
}

/** Every request shape a caller makes: both orders, open and bounded ranges, limits 0, 1, 2 (point reads), 3 and more. */
function requests(readTs: number): ScanRequest[] {
  const ranges: KeyRange[] = [
    {},
    { lower: { key: Uint8Array.of(10), inclusive: true } },
    { lower: { key: Uint8Array.of(10), inclusive: false }, upper: { key: Uint8Array.of(30), inclusive: false } },
    { upper: { key: Uint8Array.of(25), inclusive: true } },
  ];
  const out: ScanRequest[] = [];
  for (const range of ranges) {
    for (const order of ["asc", "desc"] as const) {
      for (const limit of [0, 1, 2, 3, 256]) out.push({ indexId: INDEX, range, order, readTs, limit });
    }
  }
  return out;
}

/** Compares scanVersions with scan, and both with the model, for every request shape at every snapshot. */
async function compareAll(readers: Storage[], model: ReferenceStorage, latest: number, where: string): Promise<void> {
  for (let readTs = Math.max(1, latest - 4); readTs <= latest; readTs++) {
    for (const request of requests(readTs)) {
      const expected = fromVersions(model.scanVersions(request));
      for (const [n, reader] of readers.entries()) {
        const at = `${where}, reader ${n}, at ${readTs}, ${request.order}, limit ${request.limit}, range ${JSON.stringify(request.range)}`;
        const versions = fromVersions(await reader.scanVersions(request));
        expect(versions, at).toEqual(fromScan(await reader.scan(request)));
        expect(versions, at).toEqual(expected);
      }
    }
  }
}

describe("SQLite: scanVersions answers what scan answers", () => {
  let dir: string;
  const opened: Storage[] = [];
  afterEach(async () => {
    for (const storage of opened.splice(0)) await storage.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`in random histories with versions pending, in the tables, and read by a second connection (seed ${seed})`, async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), "walkin-scanversions-"));
      const filename = path.join(dir, "review.sqlite");
      const writer = await openSqliteStorage({ filename, deferredVersions: VERSIONS_KEPT_IN_LOG });
      const reader = await openSqliteStorage({ filename, deferredVersions: VERSIONS_KEPT_IN_LOG });
      opened.push(writer, reader);
      const choices = seededChoices(seed);
      const model = new ReferenceStorage();
      const live = new Map<string, number | null>();
      for (let ts = 1; ts <= 40; ts++) {
        const one = randomCommit(choices, ts, live);
        await commit(writer, one, ts - 1);
        model.apply(one);
        // Some versions reach the tables, from either connection; others stay in the log.
        const step = choices.int(6);
        if (step === 0) writer.writePendingVersions();
        if (step === 1) reader.writePendingVersions();
        if (ts % 8 === 0) await compareAll([writer, reader], model, ts, `seed ${seed}, after ${ts}`);
      }
      writer.writePendingVersions();
      await compareAll([writer, reader], model, 40, `seed ${seed}, all in the tables`);
    });
  }
});

/**
 * Vector search's promise (vectorSearch.ts, `readPage`): a page read with `scanVersions`, then
 * the same request with `scan`, answers the same entries, whatever `between` runs in between
 * (commits after the snapshot, pending versions written to their tables, history pruned at the
 * snapshot itself, which is as far as an engine holding it lets pruning go). Each request reads
 * at a new snapshot, taken after new commits, so that each one finds versions still pending
 * (SQLite) that `between` may move.
 */
async function samePageAcross(storage: Storage, seed: number, between: (readTs: number, next: () => TestCommit) => Promise<void>): Promise<void> {
  const choices = seededChoices(seed);
  const model = new ReferenceStorage();
  const live = new Map<string, number | null>();
  let ts = await storage.latestTimestamp();
  const next = () => {
    const one = randomCommit(choices, ++ts, live);
    model.apply(one);
    return one;
  };
  for (let n = 0; n < 20; n++) await commit(storage, next(), ts - 1);
  for (const shape of requests(0)) {
    for (let n = 0; n < 3; n++) await commit(storage, next(), ts - 1);
    // The snapshot's newest commits, whatever the random ones did: two documents with entries,
    // then one rewritten with its entry left alone and the other deleted with its entry left.
    const [a, b] = [`p${ts}a`, `p${ts}b`];
    const key = 100 + 2 * (ts % 70);
    const tail: TestCommit[] = [
      { ts: ts + 1, documents: [put(a, body(ts, true)), put(b, body(ts, true))], indexes: [entry(INDEX, [key], a), entry(INDEX, [key + 1], b)] },
      { ts: ts + 2, documents: [put(a, body(ts + 2, true)), remove(b)], indexes: [] },
    ];
    for (const one of tail) {
      model.apply(one);
      await commit(storage, one, ++ts - 1);
    }
    const request = { ...shape, readTs: ts };
    const versions = fromVersions(await storage.scanVersions(request));
    await between(request.readTs, next);
    const where = `seed ${seed}, at ${request.readTs}, ${request.order}, limit ${request.limit}, range ${JSON.stringify(request.range)}`;
    expect(versions, where).toEqual(fromVersions(model.scanVersions(request)));
    expect(fromScan(await storage.scan(request)), where).toEqual(versions);
  }
}

describe("SQLite: the same request at the same snapshot answers the same entries", () => {
  let dir: string;
  const opened: Storage[] = [];
  afterEach(async () => {
    for (const storage of opened.splice(0)) await storage.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** What runs between the two reads of a page: always a commit (of the reader or another connection on the file), then `then`. */
  const variants: Record<string, (readTs: number, reader: SqliteStorage, other: SqliteStorage) => Promise<void>> = {
    "a commit": async () => {},
    "the pending versions written by the other connection": async (_, __, other) => other.writePendingVersions(),
    "the pending versions written by the reader": async (_, reader) => reader.writePendingVersions(),
    // A sweep writes the pending versions first, then prunes: both connections at the snapshot.
    "history pruned at the snapshot": async (readTs, reader, other) => {
      for (const storage of [other, reader]) {
        storage.raiseReadFloor(readTs);
        await storage.pruneHistory(readTs);
      }
    },
  };
  for (const [name, then] of Object.entries(variants)) {
    for (const seed of [11, 12]) {
      it(`across ${name} (seed ${seed})`, async () => {
        dir = await mkdtemp(path.join(os.tmpdir(), "walkin-scanversions-"));
        const filename = path.join(dir, "review.sqlite");
        // A full pass on every sweep, so that each connection also prunes what the other wrote.
        const options = { filename, deferredVersions: VERSIONS_KEPT_IN_LOG, historySweep: { fullPassIntervalMs: 0 } };
        const reader = await openSqliteStorage(options);
        const other = await openSqliteStorage(options);
        opened.push(reader, other);
        let turn = 0;
        await samePageAcross(reader, seed, async (readTs, next) => {
          const one = next();
          await commit(turn++ % 2 === 0 ? reader : other, one, one.ts - 1);
          await then(readTs, reader, other);
        });
      });
    }
  }
});

describe("PostgreSQL: scanVersions", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  const opened: Storage[] = [];
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterEach(async () => {
    for (const storage of opened.splice(0)) await storage.close();
  });
  afterAll(async () => {
    await database?.drop();
  });
  const open = async (schema: string) => {
    const storage = await openPostgresStorage({ url: database.url, schema, poolSize: 4 });
    opened.push(storage);
    return storage;
  };

  it("answers what scan answers in random histories, with large bodies", async () => {
    const storage = await open("scan_versions_random");
    const choices = seededChoices(21);
    const model = new ReferenceStorage();
    const live = new Map<string, number | null>();
    for (let ts = 1; ts <= 30; ts++) {
      const one = randomCommit(choices, ts, live);
      await commit(storage, one, ts - 1);
      model.apply(one);
    }
    await compareAll([storage], model, 30, "PostgreSQL");
  });

  it("answers the same entries for the same request at the same snapshot across commits and pruning at the snapshot", async () => {
    const storage = await open("scan_versions_same_page");
    await samePageAcross(storage, 22, async (readTs, next) => {
      const one = next();
      await commit(storage, one, one.ts - 1);
      await storage.pruneHistory(readTs);
    });
  });
});

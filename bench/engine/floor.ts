/**
 * The floors: the same work done with raw better-sqlite3 on a file in the same directory with
 * the same pragmas (journal_mode=WAL and the same `synchronous`), and nothing else. No layer
 * on SQLite can commit a write or look up a row by a secondary index cheaper than this, so
 * walkin/floor is the share of SQLite's own speed the engine keeps.
 */
import Database from "better-sqlite3";
import { syncLoop, type Subject } from "./measure.js";
import { keyOf, payloadOf, shuffledKeys, type Durability } from "./workload.js";

/** A floor side, plus a final correctness check where the case has one. */
export interface FloorSubject extends Subject {
  check?(): boolean;
}

function open(filename: string, synchronous: Durability): Database.Database {
  const db = new Database(filename);
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${synchronous === "full" ? "FULL" : "NORMAL"}`);
  // The payload column holds JSON text, as the engine's storage holds whole documents as JSON,
  // so reading a row back costs a JSON.parse as decoding a document does.
  db.exec(`
    CREATE TABLE docs (id INTEGER PRIMARY KEY, key TEXT NOT NULL, n REAL NOT NULL, payload TEXT NOT NULL);
    CREATE INDEX docs_by_key ON docs (key);
    CREATE TABLE counters (id INTEGER PRIMARY KEY, name TEXT NOT NULL, value INTEGER NOT NULL);
    CREATE INDEX counters_by_name ON counters (name);
  `);
  return db;
}

function prepareInsert(db: Database.Database): (i: number) => void {
  const insert = db.prepare("INSERT INTO docs (key, n, payload) VALUES (?, ?, ?)");
  return (i) => insert.run(keyOf(i), i, JSON.stringify(payloadOf(i)));
}

/** (a) One autocommit INSERT per operation: each acknowledged row is committed. */
export function floorInsert(filename: string, synchronous: Durability): FloorSubject {
  const db = open(filename, synchronous);
  return { run: syncLoop(prepareInsert(db)), close: () => db.close() };
}

/** Loads rows 0..n-1 in transactions of 10,000. */
function seed(db: Database.Database, insert: (i: number) => void, rows: number): void {
  const load = db.transaction((first: number) => {
    for (let i = first; i < Math.min(first + 10_000, rows); i++) insert(i);
  });
  for (let first = 0; first < rows; first += 10_000) load(first);
}

/**
 * Group commit: `batch` inserts per transaction; one operation of this subject is one whole
 * transaction (the caller multiplies). Not a floor (it acknowledges writes a batch at a time)
 * but the ceiling a server could reach by committing concurrent clients' writes together.
 */
export function groupCommitInsert(filename: string, synchronous: Durability, batch: number): FloorSubject {
  const db = open(filename, synchronous);
  const insert = prepareInsert(db);
  const insertBatch = db.transaction((first: number) => {
    for (let i = first; i < first + batch; i++) insert(i);
  });
  return { run: syncLoop((i) => insertBatch(i * batch)), close: () => db.close() };
}

/** (b) A prepared point lookup on the secondary index, the row materialised, payload parsed. */
export function floorLookup(filename: string, synchronous: Durability, docs: number, nextKey: () => number): FloorSubject {
  const db = open(filename, synchronous);
  seed(db, prepareInsert(db), docs);
  return { ...lookupLoop(db, nextKey), close: () => db.close() };
}

function lookupLoop(db: Database.Database, nextKey: () => number): Omit<FloorSubject, "close"> {
  const select = db.prepare<[string], { id: number; key: string; n: number; payload: string }>(
    "SELECT id, key, n, payload FROM docs WHERE key = ?",
  );
  let missing = 0;
  return {
    run: syncLoop(() => {
      const key = keyOf(nextKey());
      const row = select.get(key);
      const doc = row && { ...row, payload: JSON.parse(row.payload) as string };
      if (doc?.key !== key) missing++;
    }),
    check: () => missing === 0,
  };
}

/** (d): the floors of `walkinSized`, sharing one file of `docs` rows (lookups first, then inserts). */
export function floorSized(filename: string, synchronous: Durability, docs: number): { lookup: FloorSubject; insert: FloorSubject } {
  const db = open(filename, synchronous);
  const insert = prepareInsert(db);
  seed(db, insert, docs);
  return {
    lookup: { ...lookupLoop(db, shuffledKeys(docs)), close: () => undefined },
    insert: { run: syncLoop((i) => insert(docs + i)), close: () => db.close() },
  };
}

/** (c) `UPDATE ... SET value = value + 1` in its own transaction, on one of `k` counters. */
export function floorIncrement(filename: string, synchronous: Durability, k: number): FloorSubject {
  const db = open(filename, synchronous);
  const insert = db.prepare("INSERT INTO counters (name, value) VALUES (?, 0)");
  for (let c = 0; c < k; c++) insert.run(`counter-${c}`);
  const update = db.prepare("UPDATE counters SET value = value + 1 WHERE name = ?");
  const increment = db.transaction((name: string) => update.run(name));
  let done = 0;
  return {
    run: syncLoop((i) => {
      increment(`counter-${i % k}`);
      done++;
    }),
    check: () => db.prepare<[], number>("SELECT sum(value) FROM counters").pluck().get() === done,
    close: () => db.close(),
  };
}

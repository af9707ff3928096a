/**
 * The floors: the same work done with raw better-sqlite3 on the same kind of file with the same
 * pragmas (journal_mode=WAL and the same `synchronous`), and nothing else. No engine can do
 * a durable write or an index lookup on SQLite cheaper than this, so walkin/floor is the share
 * of SQLite's speed the engine keeps.
 */
import Database from "better-sqlite3";
import { measureSync, type Measurement, type Timing } from "./measure.js";
import { keyOf, payloadOf, type Durability } from "./workload.js";

function open(filename: string, synchronous: Durability): Database.Database {
  const db = new Database(filename);
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${synchronous === "full" ? "FULL" : "NORMAL"}`);
  // The payload is stored as JSON text (as the engine stores whole documents), so reading a
  // row back costs a JSON.parse, like decoding a document does.
  db.exec(`
    CREATE TABLE docs (id INTEGER PRIMARY KEY, key TEXT NOT NULL, n REAL NOT NULL, payload TEXT NOT NULL);
    CREATE INDEX docs_by_key ON docs (key);
    CREATE TABLE counters (id INTEGER PRIMARY KEY, name TEXT NOT NULL, value INTEGER NOT NULL);
    CREATE INDEX counters_by_name ON counters (name);
  `);
  return db;
}

/** (a) One autocommit INSERT per operation: each acknowledged row is committed. */
export function floorInsert(filename: string, synchronous: Durability, timing: Timing): Measurement {
  const db = open(filename, synchronous);
  try {
    const insert = db.prepare("INSERT INTO docs (key, n, payload) VALUES (?, ?, ?)");
    return measureSync(timing, (i) => insert.run(keyOf(i), i, JSON.stringify(payloadOf(i))));
  } finally {
    db.close();
  }
}

/**
 * Group commit: `batch` inserts per transaction. Not a floor (it acknowledges a batch at once),
 * but the ceiling a server could reach by committing concurrent clients' writes together.
 */
export function groupCommitInsert(filename: string, synchronous: Durability, timing: Timing, batch: number): Measurement {
  const db = open(filename, synchronous);
  try {
    const insert = db.prepare("INSERT INTO docs (key, n, payload) VALUES (?, ?, ?)");
    const insertBatch = db.transaction((first: number) => {
      for (let i = first; i < first + batch; i++) insert.run(keyOf(i), i, JSON.stringify(payloadOf(i)));
    });
    const m = measureSync(timing, (i) => insertBatch(i * batch));
    return { ...m, ops: m.ops * batch, opsPerSecond: m.opsPerSecond * batch, p50: null, p99: null };
  } finally {
    db.close();
  }
}

/** (b) A prepared point lookup on the secondary index, row materialised, payload parsed. */
export function floorLookup(filename: string, synchronous: Durability, timing: Timing, docs: number, nextKey: () => number): Measurement {
  const db = open(filename, synchronous);
  try {
    const insert = db.prepare("INSERT INTO docs (key, n, payload) VALUES (?, ?, ?)");
    db.transaction(() => {
      for (let i = 0; i < docs; i++) insert.run(keyOf(i), i, JSON.stringify(payloadOf(i)));
    })();
    const select = db.prepare<[string], { id: number; key: string; n: number; payload: string }>(
      "SELECT id, key, n, payload FROM docs WHERE key = ?",
    );
    let missing = 0;
    const m = measureSync(timing, () => {
      const row = select.get(keyOf(nextKey()));
      // Materialise the row as an object with its payload decoded, as a document would be.
      const doc = row && { ...row, payload: JSON.parse(row.payload) as string };
      if (!doc || doc.payload.length === 0) missing++;
    });
    if (missing > 0) throw new Error(`floor lookup: ${missing} keys not found`);
    return m;
  } finally {
    db.close();
  }
}

/** (c) `UPDATE ... SET value = value + 1` in its own transaction, on one of `k` counters. */
export function floorIncrement(
  filename: string,
  synchronous: Durability,
  timing: Timing,
  k: number,
): Measurement & { sumOk: boolean } {
  const db = open(filename, synchronous);
  try {
    const insert = db.prepare("INSERT INTO counters (name, value) VALUES (?, 0)");
    for (let c = 0; c < k; c++) insert.run(`counter-${c}`);
    const update = db.prepare("UPDATE counters SET value = value + 1 WHERE name = ?");
    let done = 0;
    const increment = db.transaction((name: string) => update.run(name));
    const m = measureSync(timing, (i) => {
      increment(`counter-${i % k}`);
      done++;
    });
    const sum = db.prepare<[], number>("SELECT sum(value) FROM counters").pluck().get()!;
    return { ...m, sumOk: sum === done };
  } finally {
    db.close();
  }
}

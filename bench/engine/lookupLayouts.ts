/**
 * Where case (d)'s lookup among 1M documents spends its SQL time, piece by piece, and whether
 * two other layouts of the `documents` table would change it (bench/README.md, journal
 * 2026-12-04 16:40–18:05):
 *
 *   node --import tsx --import ./bench/compiled.mjs bench/engine/lookupLayouts.ts [docs] [rounds]
 *
 * (default 1,000,000 documents, 3 rounds; about two minutes, most of it seeding). The
 * documents are seeded through the engine, as case (d) seeds them, then the file is read with
 * raw better-sqlite3:
 *
 * - the storage's scan statement for `.unique()` on `by_key` (it stops after two rows);
 * - its two halves on their own: the index entry's live version, and a document's newest
 *   version by ID; and a bare `LIMIT 1` seek into the entry table;
 * - the scan and its first half with the live version found by a correlated `max(ts)` per
 *   entry row instead of `GROUP BY`;
 * - the same scan over two copies of the documents that keep bodies out of the (id, ts) tree
 *   (`documents` is WITHOUT ROWID, so its interior pages hold whole rows and the tree is
 *   deep): a rowid table reached through a unique (id, ts) index, and an (id, ts) tree that
 *   points into a table of bodies; and what writing versions 64 to a transaction costs in each;
 * - the floor: case (d)'s raw lookup on a table of the same size (floor.ts).
 *
 * Each figure is the mean µs per lookup over 40,000 random keys a round, with its ratio to the
 * floor's lookup in the same round, or per written version with its ratio to today's layout.
 * Measurements only: nothing here is a target.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { scanSql } from "../../src/storage/sqlite/scan.js";
import { floorSized } from "./floor.js";
import { Recorder } from "./measure.js";
import { walkinSized } from "./walkin.js";
import { keyOf } from "./workload.js";

const docs = Number(process.argv[2] ?? 1_000_000);
const rounds = Number(process.argv[3] ?? 3);
const LOOKUPS = 40_000;
const dir = mkdtempSync(join(tmpdir(), "walkin-layouts-"));

try {
  console.log(`seeding ${docs.toLocaleString("en-US")} documents through the engine and into the floor's table (files in ${dir})`);
  const seeded = await walkinSized(join(dir, "walkin.sqlite"), "normal", docs);
  await seeded.lookup.close();
  await seeded.insert.close();
  const floor = floorSized(join(dir, "floor.sqlite"), "normal", docs);

  const db = new Database(join(dir, "walkin.sqlite"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  // A declared index's ID is its name, or its name and a digest of its fields (catalog.ts, "Index IDs").
  const number = db.prepare<[], number>("SELECT number FROM index_tables WHERE index_id = 'docs.by_key' OR index_id LIKE 'docs.by\\_key@%' ESCAPE '\\'").pluck().get();
  if (number === undefined) throw new Error("no entry table for docs.by_key in the seeded file");
  const table = `entries_${number}`;
  console.log("copying the documents into the two other layouts");
  db.exec(`
    CREATE TABLE documents_rowid (id TEXT NOT NULL, ts INTEGER NOT NULL, table_name TEXT NOT NULL, body TEXT);
    INSERT INTO documents_rowid SELECT id, ts, table_name, body FROM documents ORDER BY id, ts;
    CREATE UNIQUE INDEX documents_rowid_by_version ON documents_rowid (id, ts);
    CREATE TABLE bodies (n INTEGER PRIMARY KEY, body TEXT);
    INSERT INTO bodies (n, body) SELECT row_number() OVER (ORDER BY id, ts), body FROM documents;
    CREATE TABLE versions (id TEXT NOT NULL, ts INTEGER NOT NULL, table_name TEXT NOT NULL, body_n INTEGER NOT NULL, PRIMARY KEY (id, ts)) WITHOUT ROWID;
    INSERT INTO versions SELECT id, ts, table_name, row_number() OVER (ORDER BY id, ts) FROM documents ORDER BY id, ts;
  `);

  type Bounds = { lower: Buffer; upper: Buffer; readTs: number };
  /** The bounds of `eq("key", keyOf(i))` on `by_key`: the key's encoded prefix up to the next prefix. */
  const boundsOf = (i: number): Bounds => {
    const text = Buffer.from(keyOf(i));
    const prefix = (last: number) => Buffer.concat([Buffer.from([0x30]), text, Buffer.from([0, last])]);
    return { lower: prefix(0), upper: prefix(1), readTs: Number.MAX_SAFE_INTEGER };
  };
  const firstTwo = (statement: Database.Statement<[Bounds]>) => (bounds: Bounds) => {
    const rows: unknown[] = [];
    for (const row of statement.iterate(bounds)) if (rows.push(row) >= 2) break;
    return rows;
  };
  const today = scanSql(table, "asc", true);
  const rowidLayout = today.replaceAll("documents", "documents_rowid");
  const bodiesLayout = `
    SELECT live.key, versions.id, versions.ts, versions.table_name, bodies.body
    FROM (
      SELECT key, doc_id, max(ts) FROM ${table}
      WHERE key >= @lower AND key < @upper AND ts <= @readTs
      GROUP BY key HAVING doc_id IS NOT NULL ORDER BY key ASC
    ) AS live
    JOIN versions ON versions.id = live.doc_id AND versions.ts = (
      SELECT max(version.ts) FROM versions AS version WHERE version.id = live.doc_id AND version.ts <= @readTs)
    JOIN bodies ON bodies.n = versions.body_n
    WHERE bodies.body IS NOT NULL
    ORDER BY live.key ASC`;
  const liveEntry = `SELECT key, doc_id, max(ts) FROM ${table} WHERE key >= @lower AND key < @upper AND ts <= @readTs GROUP BY key HAVING doc_id IS NOT NULL`;
  // The live version found by a correlated max(ts) per entry row instead of GROUP BY: one more
  // seek per version, no aggregation (scan.ts measured it slower on ranges of many versions).
  const correlatedLive = `
    SELECT e.key, e.doc_id FROM ${table} AS e
    WHERE e.key >= @lower AND e.key < @upper AND e.doc_id IS NOT NULL
      AND e.ts = (SELECT max(v.ts) FROM ${table} AS v WHERE v.key = e.key AND v.ts <= @readTs)
    ORDER BY e.key ASC`;
  const correlated = `
    SELECT live.key, documents.id, documents.ts, documents.table_name, documents.body
    FROM (${correlatedLive}) AS live
    JOIN documents ON documents.id = live.doc_id AND documents.ts = (
      SELECT max(version.ts) FROM documents AS version WHERE version.id = live.doc_id AND version.ts <= @readTs)
    WHERE documents.body IS NOT NULL
    ORDER BY live.key ASC`;
  const bareSeek = db.prepare<[Bounds]>(`SELECT doc_id FROM ${table} WHERE key >= @lower AND key < @upper LIMIT 1`).raw();
  const byId = db.prepare<[string, number]>("SELECT id, ts, table_name, body FROM documents WHERE id = ? AND ts <= ? ORDER BY ts DESC LIMIT 1").raw();
  const ids = db.prepare<[], string>("SELECT id FROM documents").pluck().all();
  const scans = {
    "scan statement, today's layout": firstTwo(db.prepare<[Bounds]>(today).raw()),
    "scan statement, rowid table + (id, ts) index": firstTwo(db.prepare<[Bounds]>(rowidLayout).raw()),
    "scan statement, (id, ts) tree + table of bodies": firstTwo(db.prepare<[Bounds]>(bodiesLayout).raw()),
    "scan statement, live version by a correlated max(ts)": firstTwo(db.prepare<[Bounds]>(correlated).raw()),
    "its first half: the entry's live version": firstTwo(db.prepare<[Bounds]>(liveEntry).raw()),
    "the same by a correlated max(ts)": firstTwo(db.prepare<[Bounds]>(correlatedLive).raw()),
    "a bare LIMIT 1 seek into the entry table": (bounds: Bounds) => bareSeek.get(bounds),
  };
  // Every layout must give the same answer before any of them is timed.
  for (let i = 0; i < 100; i++) {
    const bounds = boundsOf(Math.floor(Math.random() * docs));
    const answers = Object.values(scans).slice(0, 4).map((scan) => JSON.stringify(scan(bounds)));
    if (answers.some((answer) => answer !== answers[0]) || (scans["scan statement, today's layout"](bounds) as unknown[]).length !== 1) {
      throw new Error(`the layouts disagree on key ${bounds.lower.toString("hex")}`);
    }
  }

  const floorMeanUs = () => {
    const recorder = new Recorder();
    void floor.lookup.run(1_500, recorder);
    return (recorder.seconds * 1e6) / recorder.ops;
  };
  const meanUs = (op: (i: number) => unknown) => {
    const keys = Array.from({ length: LOOKUPS }, () => Math.floor(Math.random() * docs));
    const start = process.hrtime.bigint();
    for (let i = 0; i < LOOKUPS; i++) op(keys[i]!);
    return Number(process.hrtime.bigint() - start) / LOOKUPS / 1000;
  };
  const line = (label: string, us: number, against: string, againstUs: number) =>
    console.log(`${label.padEnd(54)} ${us.toFixed(1).padStart(6)} µs   ${against}/this ${(againstUs / us).toFixed(2)}`);

  const body = db.prepare<[], string>("SELECT body FROM documents LIMIT 1").pluck().get()!;
  const insertToday = db.prepare("INSERT INTO documents (id, ts, table_name, body) VALUES (?, 1, 'docs', ?)");
  const insertRowid = db.prepare("INSERT INTO documents_rowid (id, ts, table_name, body) VALUES (?, 1, 'docs', ?)");
  const insertBody = db.prepare("INSERT INTO bodies (body) VALUES (?)");
  const insertVersion = db.prepare("INSERT INTO versions (id, ts, table_name, body_n) VALUES (?, 1, 'docs', ?)");
  const writers: Record<string, (id: string) => unknown> = {
    "writing a version, today's layout": (id) => insertToday.run(id, body),
    "writing a version, rowid table + (id, ts) index": (id) => insertRowid.run(id, body),
    "writing a version, (id, ts) tree + table of bodies": (id) => insertVersion.run(id, insertBody.run(body).lastInsertRowid),
  };
  let written = 0;

  for (let round = 1; round <= rounds; round++) {
    const floorUs = floorMeanUs();
    console.log(`\nround ${round}: the floor's lookup (case (d), raw) ${floorUs.toFixed(1)} µs`);
    for (const [label, scan] of Object.entries(scans)) line(label, meanUs((i) => scan(boundsOf(i))), "floor", floorUs);
    line("its second half: a document's newest version by ID", meanUs((i) => byId.get(ids[i]!, Number.MAX_SAFE_INTEGER)), "floor", floorUs);
    // Writes compare with today's layout, measured first in the same round.
    let todayUs = 0;
    for (const [label, write] of Object.entries(writers)) {
      // New IDs after every existing one, as time-ordered IDs are: appended, as pending versions are.
      const batches = 300;
      const start = process.hrtime.bigint();
      for (let b = 0; b < batches; b++) {
        db.transaction(() => {
          for (let i = 0; i < 64; i++) write(`zz${String(++written).padStart(12, "0")}`);
        })();
      }
      const us = Number(process.hrtime.bigint() - start) / (batches * 64) / 1000;
      todayUs ||= us;
      line(label, us, "today", todayUs);
    }
  }
  db.close();
  floor.insert.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

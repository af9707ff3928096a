/**
 * Vector search (docs/vector-search.md) against its floor, the least any exact search must do:
 * raw better-sqlite3 on a file with the same pragmas reading each candidate's vector (a BLOB of
 * float64s, under an index on the filter field) and scoring it by cosine in JavaScript:
 *
 *   node --import tsx --import ./bench/compiled.mjs bench/engine/vector.ts [docs] [dimensions]
 *
 * (default 5,000 documents of 256 dimensions in 10 genres; about a minute.) Three cases, each
 * measured alternately as `compare` does:
 *
 * - search one genre, the 10 nearest: `ctx.vectorSearch(..., { filter: q.eq("genre", g) })` in
 *   an action (a tenth of the documents scored), against a SELECT of that genre's vectors;
 * - search every document, the 10 nearest;
 * - insert, sequential: one document with its vector a mutation, against one INSERT.
 *
 * Walk-in reads each document whole (its JSON, the vector among its fields) where the floor
 * reads the vector's bytes, and takes the vector from its cache of decoded vectors
 * (src/engine/vectorCache.ts) where it has read that version before, as the repeated searches
 * here have after the first; `BENCH_VECTOR_CACHE_BYTES=0` measures searches that parse every
 * document instead. Measurements only: nothing here is a target.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Engine } from "../../src/engine/engine.js";
import { openSqliteStorage } from "../../src/storage/sqlite/index.js";
import { action, defineSchema, defineTable, mutation } from "../../src/server/index.js";
import { v } from "../../src/values/index.js";
import { seededRandom } from "../../src/storage/conformance/history.js";
import { asyncLoop, compare, syncLoop, type Timing } from "./measure.js";
import { table, type Row } from "./report.js";

const docs = Number(process.argv[2] ?? 5_000);
const dimensions = Number(process.argv[3] ?? 256);
const timing: Timing = {
  warmupMs: Number(process.env.BENCH_WARMUP_MS ?? 300),
  durationMs: Number(process.env.BENCH_DURATION_MS ?? 1600),
  rounds: Number(process.env.BENCH_ROUNDS ?? 4),
};

/** `BENCH_VECTOR_CACHE_BYTES=0` measures searches that decode every document (the engine's vector cache off). */
function vectorCacheBytes(): number | undefined {
  const bytes = process.env.BENCH_VECTOR_CACHE_BYTES;
  if (bytes === undefined) return undefined;
  console.log(`vector cache: ${bytes} bytes`);
  return Number(bytes);
}

const next = seededRandom(7);
const vector = () => Array.from({ length: dimensions }, () => next() * 2 - 1);
const genreOf = (i: number) => `genre${i % 10}`;

// ---------------------------------------------------------------- Walk-in

const fields = { title: v.string(), genre: v.string(), embedding: v.array(v.float64()) };
const schema = defineSchema({
  movies: defineTable(fields).vectorIndex("by_embedding", { vectorField: "embedding", dimensions, filterFields: ["genre"] }),
});
const modules = {
  movies: {
    add: mutation({ args: fields, handler: (ctx, movie) => ctx.db.insert("movies", movie) }),
    addMany: mutation({
      args: { movies: v.array(v.object(fields)) },
      handler: async (ctx, { movies }) => {
        for (const movie of movies) await ctx.db.insert("movies", movie);
      },
    }),
    nearest: action({
      args: { vector: v.array(v.float64()), genre: v.optional(v.string()) },
      handler: (ctx, { vector, genre }) =>
        ctx.vectorSearch("movies", "by_embedding", { vector, limit: 10, ...(genre === undefined ? {} : { filter: (q) => q.eq("genre", genre) }) }),
    }),
  },
};

// ---------------------------------------------------------------- the floor

function floorDatabase(filename: string): Database.Database {
  const db = new Database(filename);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec(`
    CREATE TABLE movies (id INTEGER PRIMARY KEY, title TEXT NOT NULL, genre TEXT NOT NULL, embedding BLOB NOT NULL);
    CREATE INDEX movies_genre ON movies (genre);
  `);
  return db;
}

const bytesOf = (numbers: number[]) => Buffer.from(new Float64Array(numbers).buffer);

/** The floor's search: every candidate's vector scored, the best 10 kept. */
function nearestRaw(rows: Iterable<{ id: number; embedding: Buffer }>, query: number[]): Array<{ id: number; score: number }> {
  const queryNorm = Math.hypot(...query);
  const best: Array<{ id: number; score: number }> = [];
  for (const { id, embedding } of rows) {
    const values = new Float64Array(embedding.buffer, embedding.byteOffset, dimensions);
    let dot = 0;
    let squares = 0;
    for (let i = 0; i < dimensions; i++) {
      dot += query[i]! * values[i]!;
      squares += values[i]! * values[i]!;
    }
    const score = dot / (queryNorm * Math.sqrt(squares));
    if (best.length === 10 && score <= best[9]!.score) continue;
    best.push({ id, score });
    best.sort((a, b) => b.score - a.score);
    if (best.length > 10) best.pop();
  }
  return best;
}

const dir = mkdtempSync(join(tmpdir(), "walkin-vector-bench-"));
try {
  console.log(`seeding ${docs.toLocaleString("en-US")} documents of ${dimensions} dimensions on both sides (synchronous=NORMAL, files in ${dir})`);
  const engine = await Engine.open({
    storage: await openSqliteStorage({ filename: join(dir, "walkin.sqlite"), synchronous: "normal" }),
    schema,
    modules,
    runScheduler: false,
    vectorCacheBytes: vectorCacheBytes(),
  });
  const db = floorDatabase(join(dir, "floor.sqlite"));
  const insertRow = db.prepare<[string, string, Buffer]>("INSERT INTO movies (title, genre, embedding) VALUES (?, ?, ?)");
  for (let start = 0; start < docs; start += 200) {
    const batch = Array.from({ length: Math.min(200, docs - start) }, (_, i) => ({ title: `movie ${start + i}`, genre: genreOf(start + i), embedding: vector() }));
    await engine.runMutation("movies:addMany", { movies: batch });
    db.transaction(() => batch.forEach(({ title, genre, embedding }) => insertRow.run(title, genre, bytesOf(embedding))))();
  }
  const byGenre = db.prepare<[string]>("SELECT id, embedding FROM movies WHERE genre = ?");
  const all = db.prepare("SELECT id, embedding FROM movies");
  const queries = Array.from({ length: 64 }, vector);

  const rows: Row[] = [];
  const run = async (label: string, walkin: (i: number) => Promise<unknown>, floor: (i: number) => void) => {
    const result = await compare(timing, { run: asyncLoop(1, walkin), close: () => {} }, { run: syncLoop(floor), close: () => {} });
    rows.push({ label, ...result });
  };
  await run(
    `search one genre (${Math.round(docs / 10)} scored), 10 nearest`,
    (i) => engine.runAction("movies:nearest", { vector: queries[i % 64]!, genre: genreOf(i) }),
    (i) => nearestRaw(byGenre.iterate(genreOf(i)) as Iterable<{ id: number; embedding: Buffer }>, queries[i % 64]!),
  );
  await run(
    `search every document (${docs} scored), 10 nearest`,
    (i) => engine.runAction("movies:nearest", { vector: queries[i % 64]! }),
    (i) => nearestRaw(all.iterate() as Iterable<{ id: number; embedding: Buffer }>, queries[i % 64]!),
  );
  await run(
    "insert, sequential, into a vector index",
    (i) => engine.runMutation("movies:add", { title: `new ${i}`, genre: genreOf(i), embedding: queries[i % 64]! }),
    (i) => insertRow.run(`new ${i}`, genreOf(i), bytesOf(queries[i % 64]!)),
  );
  console.log(table(rows));
  await engine.close();
  db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

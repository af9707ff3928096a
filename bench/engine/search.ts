/**
 * Full-text search (docs/search.md) against its floor, SQLite's own full-text index (FTS5)
 * through raw better-sqlite3 on a file with the same pragmas:
 *
 *   node --import tsx --import ./bench/compiled.mjs bench/engine/search.ts [docs]
 *
 * (default 10,000 messages of 6–20 words each from a 5,000-word vocabulary in which a few
 * words are common and most are rare, in 20 channels; about a minute.) Three cases, each
 * measured alternately as `compare` does:
 *
 * - insert, sequential: one message a mutation into a table with a search index (its words'
 *   index entries written in the same commit), against one INSERT into a table and its FTS5
 *   index in one transaction;
 * - search one word in one channel, the 10 most relevant: `withSearchIndex(...).eq("channel")
 *   .take(10)` run as a query, against `MATCH` with the channel, `ORDER BY rank LIMIT 10`;
 * - search two words, the last as a prefix, in every channel, the 10 most relevant.
 *
 * Words are drawn so that each query word is one a few percent of the messages have: a search
 * finds some hundreds of messages and ranks them. Measurements only: nothing here is a target.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Engine } from "../../src/engine/engine.js";
import { openSqliteStorage } from "../../src/storage/sqlite/index.js";
import { defineSchema, defineTable, mutation, query } from "../../src/server/index.js";
import { v } from "../../src/values/index.js";
import { seededRandom } from "../../src/storage/conformance/history.js";
import { asyncLoop, compare, syncLoop, type Timing } from "./measure.js";
import { table, type Row } from "./report.js";

const docs = Number(process.argv[2] ?? 10_000);
const timing: Timing = {
  warmupMs: Number(process.env.BENCH_WARMUP_MS ?? 300),
  durationMs: Number(process.env.BENCH_DURATION_MS ?? 1600),
  rounds: Number(process.env.BENCH_ROUNDS ?? 4),
};

// ---------------------------------------------------------------- the messages

const next = seededRandom(42);
const syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qui", "do", "fe", "gu", "ho"];
const vocabulary = Array.from({ length: 5_000 }, (_, i) => {
  let word = "";
  for (let n = i + 1; n > 0; n = Math.floor(n / syllables.length)) word += syllables[n % syllables.length];
  return word;
});
/** A word by rank: the first ones common, the rest rare (a Zipf-like skew). */
const word = () => vocabulary[Math.floor(vocabulary.length * next() ** 3)]!;
const sentence = () => Array.from({ length: 6 + Math.floor(next() * 15) }, word).join(" ");
const channelOf = (i: number) => `channel${i % 20}`;
/** Query words ranked about 60th–200th: each in a few percent of the messages. */
const queryWord = (i: number) => vocabulary[60 + (i % 140)]!;

// ---------------------------------------------------------------- Walk-in

const fields = { body: v.string(), channel: v.string() };
const schema = defineSchema({
  messages: defineTable(fields).searchIndex("search_body", { searchField: "body", filterFields: ["channel"] }),
});
const modules = {
  messages: {
    send: mutation({ args: fields, handler: (ctx, message) => ctx.db.insert("messages", message) }),
    sendMany: mutation({
      args: { messages: v.array(v.object(fields)) },
      handler: async (ctx, { messages }) => {
        for (const message of messages) await ctx.db.insert("messages", message);
      },
    }),
    inChannel: query({
      args: { text: v.string(), channel: v.string() },
      handler: (ctx, { text, channel }) => ctx.db.query("messages").withSearchIndex("search_body", (q) => q.search("body", text).eq("channel", channel)).take(10),
    }),
    everywhere: query({
      args: { text: v.string() },
      handler: (ctx, { text }) => ctx.db.query("messages").withSearchIndex("search_body", (q) => q.search("body", text)).take(10),
    }),
  },
};

// ---------------------------------------------------------------- the floor: FTS5

function floorDatabase(filename: string): Database.Database {
  const db = new Database(filename);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec(`
    CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT NOT NULL, channel TEXT NOT NULL);
    CREATE VIRTUAL TABLE messages_fts USING fts5(body, channel UNINDEXED, content='messages', content_rowid='id');
  `);
  return db;
}

const dir = mkdtempSync(join(tmpdir(), "walkin-search-bench-"));
try {
  console.log(`seeding ${docs.toLocaleString("en-US")} messages on both sides (synchronous=NORMAL, files in ${dir})`);
  const engine = await Engine.open({ storage: await openSqliteStorage({ filename: join(dir, "walkin.sqlite"), synchronous: "normal" }), schema, modules, runScheduler: false });
  const db = floorDatabase(join(dir, "floor.sqlite"));
  const insertRow = db.prepare<[string, string]>("INSERT INTO messages (body, channel) VALUES (?, ?)");
  const insertFts = db.prepare<[number | bigint, string, string]>("INSERT INTO messages_fts (rowid, body, channel) VALUES (?, ?, ?)");
  const insertFloor = db.transaction((body: string, channel: string) => {
    const { lastInsertRowid } = insertRow.run(body, channel);
    insertFts.run(lastInsertRowid, body, channel);
  });
  for (let start = 0; start < docs; start += 500) {
    const batch = Array.from({ length: Math.min(500, docs - start) }, (_, i) => ({ body: sentence(), channel: channelOf(start + i) }));
    await engine.runMutation("messages:sendMany", { messages: batch });
    db.transaction(() => batch.forEach(({ body, channel }) => insertFloor(body, channel)))();
  }
  const inChannel = db.prepare<[string, string]>(
    "SELECT m.id, m.body, m.channel FROM messages_fts JOIN messages AS m ON m.id = messages_fts.rowid WHERE messages_fts MATCH ? AND m.channel = ? ORDER BY rank LIMIT 10",
  );
  const everywhere = db.prepare<[string]>(
    "SELECT m.id, m.body, m.channel FROM messages_fts JOIN messages AS m ON m.id = messages_fts.rowid WHERE messages_fts MATCH ? ORDER BY rank LIMIT 10",
  );
  const matched = (db.prepare<[string]>("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?").pluck().get(queryWord(0)) as number) ?? 0;
  console.log(`a query word is in ${matched} of ${docs} messages (${((100 * matched) / docs).toFixed(1)}%)`);

  const rows: Row[] = [];
  const run = async (label: string, walkin: (i: number) => Promise<unknown>, floor: (i: number) => void) => {
    const result = await compare(timing, { run: asyncLoop(1, walkin), close: () => {} }, { run: syncLoop(floor), close: () => {} });
    rows.push({ label, ...result });
  };
  await run(
    "search, one word in one channel, top 10",
    (i) => engine.runQuery("messages:inChannel", { text: queryWord(i), channel: channelOf(i) }),
    (i) => inChannel.all(`"${queryWord(i)}"`, channelOf(i)),
  );
  await run(
    "search, two words (last a prefix), top 10",
    (i) => engine.runQuery("messages:everywhere", { text: `${queryWord(i)} ${queryWord(i + 7).slice(0, 3)}` }),
    (i) => everywhere.all(`"${queryWord(i)}" OR "${queryWord(i + 7).slice(0, 3)}" *`),
  );
  await run(
    "insert, sequential, into a search index",
    (i) => engine.runMutation("messages:send", { body: sentence(), channel: channelOf(i) }),
    (i) => insertFloor(sentence(), channelOf(i)),
  );
  console.log(table(rows));
  await engine.close();
  db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

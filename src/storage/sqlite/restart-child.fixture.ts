/**
 * Child process for the log-restart test (sqlite.test.ts): a plain script, as a user's would
 * be, that awaits one large commit after another on the file at argv[2], then prints
 * `{"commits":…,"walPages":…,"earlySyncs":…}` and exits. Run as its own process because Node
 * exits a program whose event loop has nothing left to wait for, even in the middle of an
 * `await`: a commit paused for the background checkpointer must keep it running (a test
 * runner would).
 */
import { statSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { commit } from "../conformance/context.js";
import { openSqliteStorage } from "./sqliteStorage.js";

const [filename] = process.argv.slice(2);
if (filename === undefined) throw new Error("usage: restart-child.fixture.ts <filename>");
// idleMs is also how long a commit waits for the worker's pass in a pause: copying the ~2,000
// pages appended since its last pass, and syncing, took up to 145 ms on the shared VM.
const storage = await openSqliteStorage({
  filename,
  synchronous: "normal",
  backgroundCheckpoints: { passPages: 50, restartPages: 400, backstopPages: 100_000, idleMs: 250 },
});
// Each commit is about 77 pages: its log row, then its versions.
const body = JSON.stringify({ text: "x".repeat(150_000) });
const write = (ts: number) => commit(storage, { ts, documents: [{ id: `d${ts}`, table: "t", body }], indexes: [] }, ts - 1);
// The worker thread starts once a pass is due, which this commit and the writing of its versions
// (5 ms later) make so: wait until it has copied pages into the database file, which only a
// checkpoint does.
const fileBytes = statSync(filename).size;
let ts = 1;
await write(ts);
while (statSync(filename).size <= fileBytes) await sleep(10);
const commits = ts + 400;
while (ts < commits) await write(++ts);
// The log file keeps its high-water mark: the longest the log ever was.
const walPages = statSync(`${filename}-wal`).size / (4096 + 24);
const earlySyncs = storage.checkpointer!.earlySyncs;
await storage.close();
console.log(JSON.stringify({ commits: ts, walPages, earlySyncs }));

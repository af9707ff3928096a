/**
 * Child process for processFloors.test.ts: another process on the same SQLite file, as a
 * script of a user's or a second server would be. It
 * opens the file at argv[2], prints `opened <latest> <pid>` (the pid as this process sees it,
 * which differs from the parent's view when it runs in a PID namespace of its own), then answers
 * lines on stdin:
 *   `read <id> <ts>`    prints `doc <body>` (or `doc null`), the document as of `ts`;
 *   `commit <from> <to>` commits `d` = `v<ts>` at each ts of from..to, prints `committed`;
 *   `prune <ts>`         prunes everything this process may at `ts`, prints `pruned`;
 *   `lock <ms>`          holds the file's write lock for `ms` on a connection of its own (as a
 *                        long commit would), prints `locked` once it holds it, `unlocked` after;
 *   `floor <ts>`         promises to read nothing below `ts` (`raiseReadFloor`), prints `floor`;
 *   `close`              closes the storage, prints `closed` and exits.
 */
import { createInterface } from "node:readline";
import Database from "better-sqlite3";
import { commit, put } from "../conformance/context.js";
import { openSqliteStorage } from "./sqliteStorage.js";

const [filename] = process.argv.slice(2);
if (filename === undefined) throw new Error("usage: reader-child.fixture.ts <filename>");
const storage = await openSqliteStorage({ filename, synchronous: "normal" });
console.log(`opened ${await storage.latestTimestamp()} ${process.pid}`);
for await (const line of createInterface({ input: process.stdin })) {
  const [command, a, b] = line.split(" ");
  if (command === "read") {
    const doc = await storage.getDocument(a!, Number(b));
    console.log(`doc ${doc?.body ?? "null"}`);
  } else if (command === "commit") {
    for (let ts = Number(a); ts <= Number(b); ts++) await commit(storage, { ts, documents: [put("d", `v${ts}`)], indexes: [] }, ts - 1);
    console.log("committed");
  } else if (command === "prune") {
    storage.raiseReadFloor(Number(a));
    for (let pass = 0; pass < 5; pass++) await storage.pruneHistory(Number(a));
    console.log("pruned");
  } else if (command === "lock") {
    const db = new Database(filename, { timeout: 5_000 });
    db.exec("BEGIN IMMEDIATE");
    console.log("locked");
    setTimeout(() => {
      db.exec("COMMIT");
      db.close();
      console.log("unlocked");
    }, Number(a));
  } else if (command === "floor") {
    storage.raiseReadFloor(Number(a));
    console.log("floor");
  } else if (command === "close") {
    await storage.close();
    console.log("closed");
    process.exit(0);
  }
}

/**
 * Child process for processFloors.test.ts: another process on the same SQLite file, as a
 * script of a user's or a second server would be. It opens the file at argv[2], prints
 * `opened <latest>`, then answers lines on stdin:
 *   `read <id> <ts>`  prints `doc <body>` (or `doc null`), the document as of `ts`;
 *   `floor <ts>`      promises to read nothing below `ts` (`raiseReadFloor`), prints `floor`;
 *   `close`           closes the storage, prints `closed` and exits.
 */
import { createInterface } from "node:readline";
import { openSqliteStorage } from "./sqliteStorage.js";

const [filename] = process.argv.slice(2);
if (filename === undefined) throw new Error("usage: reader-child.fixture.ts <filename>");
const storage = await openSqliteStorage({ filename, synchronous: "normal" });
console.log(`opened ${await storage.latestTimestamp()}`);
for await (const line of createInterface({ input: process.stdin })) {
  const [command, a, b] = line.split(" ");
  if (command === "read") {
    const doc = await storage.getDocument(a!, Number(b));
    console.log(`doc ${doc?.body ?? "null"}`);
  } else if (command === "floor") {
    storage.raiseReadFloor(Number(a));
    console.log("floor");
  } else if (command === "close") {
    await storage.close();
    console.log("closed");
    process.exit(0);
  }
}

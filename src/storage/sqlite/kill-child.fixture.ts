/**
 * Child process for the kill -9 durability test (sqlite.test.ts): opens the storage at argv[2]
 * with the durability mode of argv[3] and commits forever, printing "committed <ts>" the moment
 * each commit's promise resolves. The parent kills it with SIGKILL at a random point; every ts
 * printed must still be there when the file is reopened.
 */
import { commit } from "../conformance/context.js";
import { openSqliteStorage } from "./sqliteStorage.js";

const [filename, synchronous] = process.argv.slice(2);
if (filename === undefined || (synchronous !== "full" && synchronous !== "normal")) {
  throw new Error("usage: kill-child.fixture.ts <filename> full|normal");
}
// Background checkpoints every few commits, so that kills also land in the middle of the
// worker's checkpoints and of the pauses for log restarts.
const storage = await openSqliteStorage({
  filename,
  synchronous,
  backgroundCheckpoints: { passPages: 6, restartPages: 20, backstopPages: 1_000, idleMs: 5 },
});
for (let ts = (await storage.latestTimestamp()) + 1; ; ts++) {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, ts);
  await commit(storage, {
    ts,
    documents: [{ id: `doc${ts}`, table: "writes", body: JSON.stringify({ ts }) }],
    indexes: [{ indexId: "byTs", key, docId: `doc${ts}` }],
  }, ts - 1);
  // On Linux, writes to a pipe are synchronous: the line has left the process when this returns.
  process.stdout.write(`committed ${ts}\n`);
}

/**
 * The two halves of case (a), sequential inserts, each on its own, to tell the engine's cost
 * from the storage's (bench/README.md, "Where the rest goes"):
 *
 *   node --import tsx --import ./bench/compiled.mjs bench/engine/alone.ts storage normal 40000
 *   node --import tsx --import ./bench/compiled.mjs bench/engine/alone.ts engine normal 3
 *
 * - `storage MODE COMMITS`: the engine runs sequential inserts until it has made COMMITS
 *   commits, which are captured as its planner returns them; then they are replayed on a fresh
 *   file through `commitBatch` alone, each at the next timestamp, with no engine. What the
 *   replay takes per commit is the storage's work for one insert, pending versions included.
 * - `engine MODE SECONDS`: the same inserts through the engine for SECONDS, over a storage whose
 *   commits write nothing: the planner runs and its commits are answered as landed, so the
 *   engine does all of its own work and none of the storage's. Reads still go to the real file
 *   (an insert reads nothing).
 *
 * Each prints its mean time per operation; with PROFILE=file.cpuprofile, also a CPU profile of
 * the measured part only (sampled every 50 µs), for `hotspots.ts`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { openSqliteStorage, type SqliteStorage } from "../../src/storage/sqlite/index.js";
import type { Commit, CommitBatchResult, CommitPlanner } from "../../src/storage/types.js";
import { asyncLoop, Recorder } from "./measure.js";
import { profiled } from "./profiled.js";
import { engineOver } from "./walkin.js";
import { keyOf, payloadOf, type Durability } from "./workload.js";

const [which = "storage", mode = "normal", amount = which === "storage" ? "40000" : "3"] = process.argv.slice(2);
if (which !== "storage" && which !== "engine") throw new Error(`the first argument is storage or engine, got ${which}`);
if (mode !== "full" && mode !== "normal") throw new Error(`mode must be full or normal, got ${mode}`);
const synchronous: Durability = mode;
const dir = mkdtempSync(join(tmpdir(), "walkin-alone-"));

/** The inserts of case (a), one at a time, through `storage`'s engine. */
async function inserts(storage: SqliteStorage) {
  const engine = await engineOver(storage);
  const run = asyncLoop(1, (i) => engine.runMutation("docs:insert", { key: keyOf(i), n: i, payload: payloadOf(i) }));
  return { run, close: () => engine.close() };
}

async function storageAlone(count: number): Promise<void> {
  const captured: Commit[] = [];
  const source = await openSqliteStorage({ filename: join(dir, "source.sqlite"), synchronous });
  const commitBatch = source.commitBatch.bind(source);
  source.commitBatch = (since, plan) =>
    commitBatch(since, (view) => {
      const written = plan(view);
      captured.push(...written);
      return written;
    });
  const engine = await inserts(source);
  while (captured.length < count) await engine.run(200, null);
  await engine.close();

  const replay = await openSqliteStorage({ filename: join(dir, "replay.sqlite"), synchronous });
  try {
    let latest = await replay.latestTimestamp();
    const ms = await profiled(async () => {
      const started = performance.now();
      for (const [i, commit] of captured.entries()) {
        const { written } = await replay.commitBatch(latest, (view) => [{ ...commit, ts: view.latest + 1, id: `replay-${i}` }]);
        latest = written[0]!.ts;
      }
      replay.writePendingVersions();
      return performance.now() - started;
    });
    console.log(`storage alone (${mode}): ${captured.length} of the engine's insert commits replayed, ${((ms * 1000) / captured.length).toFixed(1)} µs per commit`);
  } finally {
    await replay.close();
  }
}

async function engineAlone(seconds: number): Promise<void> {
  const storage = await openSqliteStorage({ filename: join(dir, "engine.sqlite"), synchronous });
  const engine = await inserts(storage);
  let latest = await storage.latestTimestamp();
  // From here on commits are planned and answered as landed, and nothing is written.
  storage.commitBatch = async (_since: number, plan: CommitPlanner): Promise<CommitBatchResult> => {
    const view = { latest, commits: [], trimmedThrough: 0 };
    const written = plan(view);
    if (written.length > 0) latest = written[written.length - 1]!.ts;
    return { view, written };
  };
  try {
    await engine.run(500, null);
    const recorder = new Recorder();
    await profiled(async () => engine.run(seconds * 1000, recorder));
    const m = recorder.result();
    console.log(`engine alone (${mode}): ${Math.round(m.opsPerSecond)} inserts/s, ${(1e6 / m.opsPerSecond).toFixed(1)} µs mean, p50 ${(m.p50! * 1000).toFixed(1)} µs`);
  } finally {
    await engine.close();
  }
}

try {
  if (which === "storage") await storageAlone(Number(amount));
  else await engineAlone(Number(amount));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Walk-in engine throughput benchmark: `npm run bench`.
 *
 * For each durability mode of the SQLite storage it runs (a) single-document insert mutations,
 * sequential and with 32 in flight, (b) index point lookups, (c) read-modify-write increments
 * under contention, each interleaved with its raw better-sqlite3 floor, on real files in a
 * temporary directory, and prints one table per mode. bench/README.md explains the figures.
 *
 * More cases run only when asked for: (d) how (a) and (b) grow with the table, at each size of
 * BENCH_SIZES (default 10k and 1M documents; a few minutes), (h) history: BENCH_HISTORY_UPDATES
 * (default 1M) updates to 1,000 documents, printing the database's size on disk as they go
 * (pruning must keep it bounded), and (l) sequential inserts while BENCH_LIVE_QUERIES (default
 * 10k) live queries watch other documents (a commit must not pay for the queries it leaves
 * alone), against the floor's inserts into a table of as many documents.
 *
 * Environment: BENCH_DURATION_MS (measured time per side and case, default 1600),
 * BENCH_WARMUP_MS (default 300), BENCH_ROUNDS (alternations, default 4), BENCH_MODES
 * ("full,normal"), BENCH_CASES (any of "a,b,c,d,h,l"; default "a,b,c"), BENCH_SIZES,
 * BENCH_HISTORY_UPDATES, BENCH_LIVE_QUERIES.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { floorIncrement, floorInsert, floorLookup, floorSized, groupCommitInsert, type FloorSubject } from "./floor.js";
import { compare, Recorder, type Measurement, type Timing } from "./measure.js";
import { table, type Row } from "./report.js";
import { describeCollections, perOperation, type CollectionTime, type StorageTime } from "./storageClock.js";
import { walkinHistory, walkinIncrement, walkinInsert, walkinLookup, walkinSized, type WalkinSubject } from "./walkin.js";
import { shuffledKeys, type Durability } from "./workload.js";

const CLIENTS = 32;
const LOOKUP_DOCS = 10_000;

const timing: Timing = {
  durationMs: Number(process.env.BENCH_DURATION_MS ?? 1_600),
  warmupMs: Number(process.env.BENCH_WARMUP_MS ?? 300),
  rounds: Number(process.env.BENCH_ROUNDS ?? 4),
};
const modes = (process.env.BENCH_MODES ?? "full,normal").split(",");
const cases = new Set((process.env.BENCH_CASES ?? "a,b,c").split(","));
for (const mode of modes) {
  if (mode !== "full" && mode !== "normal") throw new Error(`BENCH_MODES: unknown mode "${mode}" (use full and/or normal)`);
}
for (const name of cases) {
  if (!["a", "b", "c", "d", "h", "l"].includes(name)) throw new Error(`BENCH_CASES: unknown case "${name}" (use any of a,b,c,d,h,l)`);
}
const sizes = (process.env.BENCH_SIZES ?? "10000,1000000").split(",").map(Number);
const historyUpdates = Number(process.env.BENCH_HISTORY_UPDATES ?? 1_000_000);
const liveQueries = Number(process.env.BENCH_LIVE_QUERIES ?? 10_000);
if (!(Number.isInteger(liveQueries) && liveQueries >= 0)) throw new Error(`BENCH_LIVE_QUERIES: expected a whole number >= 0, got "${process.env.BENCH_LIVE_QUERIES}"`);

/** Lines printed under the current mode's table: where each timed row's time went. */
const splits: string[] = [];

/**
 * Where one operation's time went, for a row whose Walk-in side times its storage: the mean
 * time per operation (1 / throughput, what the ratio compares) split into the storage's share
 * and the rest, and the ratio the storage alone would allow (the floor's mean time over the
 * storage's), however fast the engine around it became.
 */
function split(label: string, walkin: Measurement, floor: Measurement, time: StorageTime, gc: CollectionTime): string {
  const part = perOperation(time, walkin.ops);
  const mean = (m: Measurement) => 1e6 / m.opsPerSecond;
  const us = (value: number) => `${value.toFixed(1)} µs`;
  return (
    `${label}, mean per operation: walkin ${us(mean(walkin))} = storage ${us(part.storage)} (commit ${us(part.commit)}, ` +
    `writing pending versions ${us(part.versions)}, other calls ${us(part.other)}) + commits waiting for the checkpointer to ` +
    `start the log over ${us(part.restartWaits)} + engine and the rest ${us(mean(walkin) - part.storage - part.restartWaits)} ` +
    `(of it the planner, in the commit's lock, ${us(part.planner)}); of the whole, ${describeCollections(gc, walkin.ops, us)}; ` +
    `floor ${us(mean(floor))}. ` +
    `The storage alone would allow a ratio of at most ${(mean(floor) / part.storage).toFixed(2)}.`
  );
}

/** Runs one row: both sides interleaved, then their checks; closes both whatever happens. */
async function row(label: string, open: () => Promise<[WalkinSubject, FloorSubject]>): Promise<Row> {
  const [walkin, floor] = await open();
  try {
    const before = { ...walkin.engine.stats };
    const result = await compare(timing, walkin, floor);
    const notes: string[] = [];
    const commits = walkin.engine.stats.commits - before.commits;
    const retries = walkin.engine.stats.conflictRetries - before.conflictRetries;
    if (retries > 0 || label.startsWith("(c)")) notes.push(`retries/commit ${(retries / Math.max(commits, 1)).toFixed(2)}`);
    if (result.walkin.failures > 0) notes.push(`${result.walkin.failures} failed`);
    if (walkin.storageClock && result.walkin.ops > 0) splits.push(split(label, result.walkin, result.floor, walkin.storageClock.time, walkin.storageClock.garbageCollection()));
    const walkinCheck = walkin.check ? await walkin.check() : null;
    const floorOk = floor.check ? floor.check() : null;
    if (walkinCheck || floorOk !== null) {
      const ok = (walkinCheck?.ok ?? true) && (floorOk ?? true);
      notes.push(`check ${ok ? "OK" : "FAIL"}`);
      if (!ok) {
        notes.push(`(walkin: ${walkinCheck?.detail ?? "-"}; floor ${floorOk ? "OK" : "FAIL"})`);
        process.exitCode = 1;
      }
    }
    return { label, ...result, note: notes.join(", ") };
  } finally {
    await walkin.close();
    await floor.close();
  }
}

async function runMode(dir: string, mode: Durability): Promise<void> {
  let file = 0;
  const fresh = () => join(dir, `${mode}-${file++}.sqlite`);
  const rows: Row[] = [];

  if (cases.has("a")) {
    rows.push(await row("(a) insert, sequential", async () => [await walkinInsert(fresh(), mode, 1), floorInsert(fresh(), mode)]));
    rows.push(
      await row(`(a) insert, ${CLIENTS} in flight`, async () => [await walkinInsert(fresh(), mode, CLIENTS), floorInsert(fresh(), mode)]),
    );
  }
  if (cases.has("b")) {
    rows.push(
      await row(`(b) index lookup, ${LOOKUP_DOCS / 1000}k docs`, async () => [
        await walkinLookup(fresh(), mode, LOOKUP_DOCS, shuffledKeys(LOOKUP_DOCS)),
        floorLookup(fresh(), mode, LOOKUP_DOCS, shuffledKeys(LOOKUP_DOCS)),
      ]),
    );
  }
  if (cases.has("c")) {
    for (const k of [1, 8]) {
      rows.push(
        await row(`(c) increment, K=${k}, ${CLIENTS} in flight`, async () => [
          await walkinIncrement(fresh(), mode, CLIENTS, k),
          floorIncrement(fresh(), mode, k),
        ]),
      );
    }
  }

  if (cases.has("d")) {
    for (const docs of sizes) {
      const label = docs >= 1e6 ? `${docs / 1e6}M` : `${docs / 1e3}k`;
      const walkin = await walkinSized(fresh(), mode, docs);
      const floor = floorSized(fresh(), mode, docs);
      rows.push(await row(`(d) index lookup, ${label} docs`, async () => [walkin.lookup, floor.lookup]));
      rows.push(await row(`(d) insert, sequential, into ${label}`, async () => [walkin.insert, floor.insert]));
    }
  }

  if (cases.has("l")) {
    const label = liveQueries >= 1e3 ? `${liveQueries / 1e3}k` : String(liveQueries);
    rows.push(
      await row(`(l) insert, sequential, ${label} live queries`, async () => [
        await walkinInsert(fresh(), mode, 1, { seedDocs: liveQueries, liveQueries }),
        floorSized(fresh(), mode, liveQueries).insert,
      ]),
    );
  }

  console.log(`\n== synchronous=${mode.toUpperCase()}, journal_mode=WAL (p50/p99: walkin / floor) ==`);
  console.log(table(rows));
  for (const line of splits.splice(0)) console.log(line);
  if (cases.has("a")) {
    const group = groupCommitInsert(fresh(), mode, CLIENTS);
    const recorder = new Recorder();
    try {
      await group.run(timing.warmupMs, null);
      await group.run(timing.durationMs / 4, recorder);
    } finally {
      await group.close();
    }
    // Each recorded operation is one transaction of CLIENTS inserts.
    const opsPerSecond = Math.round(recorder.result().opsPerSecond * CLIENTS).toLocaleString("en-US");
    console.log(`ceiling, not a floor: raw SQLite committing ${CLIENTS} inserts per transaction = ${opsPerSecond} ops/s (group commit)`);
  }
}

/** (h): updates to 1,000 documents; the file must stop growing once pruning keeps up. */
async function runHistory(dir: string, mode: Durability): Promise<void> {
  const docs = 1_000;
  console.log(`\n== (h) history, synchronous=${mode.toUpperCase()}: ${historyUpdates.toLocaleString("en-US")} updates to ${docs} documents, 100 per mutation ==`);
  const samples = await walkinHistory(join(dir, `${mode}-history.sqlite`), mode, { docs, updates: historyUpdates, perMutation: 100, samples: 10 });
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1).padStart(7)} MB`;
  console.log("   updates | seconds |   database |        WAL | stored versions (documents + index entries)");
  for (const s of samples) {
    console.log(`${s.updates.toLocaleString("en-US").padStart(10)} | ${s.seconds.toFixed(1).padStart(7)} | ${mb(s.fileBytes)} | ${mb(s.walBytes)} | ${s.storedVersions.toLocaleString("en-US")}`);
  }
  const half = samples.filter((s) => s.updates >= historyUpdates / 2);
  const grew = half.length > 1 ? half[half.length - 1]!.fileBytes - half[0]!.fileBytes : 0;
  console.log(`database file grew ${(grew / 1e6).toFixed(1)} MB over the second half of the updates (bounded: about 0 once pruning keeps up)`);
}

const started = performance.now();
const dir = mkdtempSync(join(tmpdir(), "walkin-bench-"));
console.log(`Walk-in engine benchmark: node ${process.version}, engine code ${process.env.WALKIN_BENCH_CODE ?? "TypeScript sources under tsx (slower: see bench/compiled.mjs)"}, files in ${dir}`);
// Other processes taking CPU lower every figure; the ratios hold up better (see measure.ts).
const machine = () => `load average ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} cores`;
console.log(`${machine()} at start`);
console.log(
  `each case, each side: ${timing.warmupMs} ms warm-up, then ${timing.durationMs} ms measured in ${timing.rounds} rounds alternating with the other side`,
);
try {
  for (const mode of modes) {
    if (["a", "b", "c", "d", "l"].some((name) => cases.has(name))) await runMode(dir, mode as Durability);
    if (cases.has("h")) await runHistory(dir, mode as Durability);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log("\ntarget: (a) and (b) at ≥ 0.50 of the floor");
console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s, ${machine()} at the end`);

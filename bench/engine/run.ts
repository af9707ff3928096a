/**
 * Walk-in engine throughput benchmark: `npm run bench`.
 *
 * For each durability mode of the SQLite storage it runs (a) single-document insert mutations,
 * sequential and from 32 concurrent clients, (b) index point lookups, (c) read-modify-write
 * increments under contention, and the raw better-sqlite3 floor of each, on real files in a
 * temporary directory, and prints one table per mode. See bench/README.md to read it.
 *
 * Environment: BENCH_DURATION_MS (measured window per case, default 2000), BENCH_WARMUP_MS
 * (default 300), BENCH_MODES (comma-separated, default "full,normal").
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { floorIncrement, floorInsert, floorLookup, groupCommitInsert } from "./floor.js";
import type { Timing } from "./measure.js";
import { table, type Row } from "./report.js";
import { walkinIncrement, walkinInsert, walkinLookup } from "./walkin.js";
import { shuffledKeys, type Durability } from "./workload.js";

const CLIENTS = 32;
const LOOKUP_DOCS = 10_000;

const timing: Timing = {
  durationMs: Number(process.env.BENCH_DURATION_MS ?? 2_000),
  warmupMs: Number(process.env.BENCH_WARMUP_MS ?? 300),
};
/** The floors of (c) are cheap and steady: half the window is plenty. */
const shortTiming: Timing = { ...timing, durationMs: timing.durationMs / 2 };
const modes = (process.env.BENCH_MODES ?? "full,normal").split(",") as Durability[];
for (const mode of modes) {
  if (mode !== "full" && mode !== "normal") throw new Error(`BENCH_MODES: unknown mode "${mode}" (full, normal)`);
}

async function runMode(dir: string, mode: Durability): Promise<void> {
  let file = 0;
  const fresh = () => join(dir, `${mode}-${file++}.sqlite`);
  const rows: Row[] = [];

  const insertFloor = floorInsert(fresh(), mode, timing);
  rows.push({ label: "(a) insert, sequential", walkin: await walkinInsert(fresh(), mode, timing, 1), floor: insertFloor });
  rows.push({
    label: `(a) insert, ${CLIENTS} clients`,
    walkin: await walkinInsert(fresh(), mode, timing, CLIENTS),
    floor: insertFloor,
    note: "floor: same autocommit floor",
  });

  rows.push({
    label: `(b) index lookup (${LOOKUP_DOCS / 1000}k docs)`,
    walkin: await walkinLookup(fresh(), mode, timing, LOOKUP_DOCS, shuffledKeys(LOOKUP_DOCS)),
    floor: floorLookup(fresh(), mode, timing, LOOKUP_DOCS, shuffledKeys(LOOKUP_DOCS)),
  });

  for (const k of [1, 8]) {
    const walkin = await walkinIncrement(fresh(), mode, timing, CLIENTS, k);
    const floor = floorIncrement(fresh(), mode, shortTiming, k);
    const ok = walkin.sumOk && floor.sumOk;
    rows.push({
      label: `(c) increment, K=${k}, ${CLIENTS} clients`,
      walkin,
      floor,
      note: `retries/commit ${walkin.retriesPerCommit.toFixed(2)}, gave up ${walkin.failures}, sum ${ok ? "OK" : "FAIL"}` +
        (ok ? "" : ` (${walkin.detail}; floor ${floor.sumOk ? "OK" : "FAIL"})`),
    });
    if (!ok) process.exitCode = 1;
  }

  const group = groupCommitInsert(fresh(), mode, shortTiming, CLIENTS);
  console.log(`\n== synchronous=${mode.toUpperCase()} (journal_mode=WAL), latency columns: walkin / floor ==`);
  console.log(table(rows));
  console.log(
    `ceiling (not a floor): raw SQLite committing ${CLIENTS} inserts per transaction = ${Math.round(group.opsPerSecond).toLocaleString("en-US")} ops/s` +
      ` (what group commit of concurrent clients could reach)`,
  );
}

const started = performance.now();
const dir = mkdtempSync(join(tmpdir(), "walkin-bench-"));
console.log(`Walk-in engine benchmark — node ${process.version}, files in ${dir}`);
console.log(`each case: ${timing.warmupMs} ms warm-up + ${timing.durationMs} ms measured`);
try {
  for (const mode of modes) await runMode(dir, mode);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log("\ntarget: (a) and (b) at ≥ 0.50 of the floor");
console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);

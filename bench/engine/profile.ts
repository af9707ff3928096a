/**
 * Runs one engine case alone for a CPU profile, so the profile holds nothing else:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/walkin-prof --import tsx bench/engine/profile.ts insert normal
 *   node --import tsx bench/engine/hotspots.ts /tmp/walkin-prof/*.cpuprofile
 *
 * Cases: insert (a, sequential), insert32 (a, 32 clients), lookup (b), increment (c, K=1).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Measurement } from "./measure.js";
import { walkinIncrement, walkinInsert, walkinLookup } from "./walkin.js";
import { shuffledKeys, type Durability } from "./workload.js";

const [which = "insert", mode = "normal", seconds = "5"] = process.argv.slice(2);
if (mode !== "full" && mode !== "normal") throw new Error(`mode must be full or normal, got ${mode}`);
const timing = { warmupMs: 300, durationMs: Number(seconds) * 1000 };
const dir = mkdtempSync(join(tmpdir(), "walkin-profile-"));
const file = join(dir, "profile.sqlite");
const cases: Record<string, () => Promise<Measurement>> = {
  insert: () => walkinInsert(file, mode as Durability, timing, 1),
  insert32: () => walkinInsert(file, mode as Durability, timing, 32),
  lookup: () => walkinLookup(file, mode as Durability, timing, 10_000, shuffledKeys(10_000)),
  increment: () => walkinIncrement(file, mode as Durability, timing, 32, 1),
};
const run = cases[which];
if (!run) throw new Error(`unknown case ${which}: ${Object.keys(cases).join(", ")}`);
try {
  const m = await run();
  console.log(`${which} (${mode}): ${Math.round(m.opsPerSecond)} ops/s, p50 ${m.p50?.toFixed(3)} ms, p99 ${m.p99?.toFixed(3)} ms`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

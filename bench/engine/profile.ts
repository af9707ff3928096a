/**
 * Runs one engine case alone (no floor) for a CPU profile, so the profile holds nothing else:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/walkin-prof --import tsx bench/engine/profile.ts lookup normal 5
 *   node --import tsx bench/engine/hotspots.ts /tmp/walkin-prof/CPU.*.0.001.cpuprofile
 *   PROFILE=/tmp/lookup1m.cpuprofile node --import tsx bench/engine/profile.ts lookup1m normal 8
 *
 * (The `.1.002` profile is tsx's loader thread.) Arguments: case, mode, seconds. Cases:
 * insert (a, sequential), insert32 (a, 32 in flight), lookup (b), lookup1m ((d): lookups of
 * random keys among 1M documents, whose loading takes about half a minute; profile it with
 * PROFILE=file, which covers the measured run only, not the load), increment (c, K=1), and
 * served: sequential inserts into a table of 20,000 documents, each call after an event-loop
 * turn as in a server, so that work the engine leaves to the event loop (history pruning)
 * competes with the calls; run.ts's tight loops never give it that turn.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Recorder } from "./measure.js";
import { profiled } from "./profiled.js";
import { walkinIncrement, walkinInsert, walkinLookup, type WalkinSubject } from "./walkin.js";
import { shuffledKeys, type Durability } from "./workload.js";

const [which = "insert", mode = "normal", seconds = "5"] = process.argv.slice(2);
if (mode !== "full" && mode !== "normal") throw new Error(`mode must be full or normal, got ${mode}`);
const dir = mkdtempSync(join(tmpdir(), "walkin-profile-"));
const file = join(dir, "profile.sqlite");
const durability: Durability = mode;
const cases: Record<string, () => Promise<WalkinSubject>> = {
  insert: () => walkinInsert(file, durability, 1),
  insert32: () => walkinInsert(file, durability, 32),
  lookup: () => walkinLookup(file, durability, 10_000, shuffledKeys(10_000)),
  lookup1m: () => walkinLookup(file, durability, 1_000_000, shuffledKeys(1_000_000)),
  increment: () => walkinIncrement(file, durability, 32, 1),
  served: () => walkinInsert(file, durability, 1, { turnPerCall: true, seedDocs: 20_000 }),
};
const open = cases[which];
if (!open) throw new Error(`unknown case ${which}: ${Object.keys(cases).join(", ")}`);
const subject = await open();
try {
  const recorder = new Recorder();
  await subject.run(300, null);
  await profiled(async () => subject.run(Number(seconds) * 1000, recorder));
  const m = recorder.result();
  console.log(`${which} (${mode}): ${Math.round(m.opsPerSecond)} ops/s, p50 ${m.p50?.toFixed(3)} ms, p99 ${m.p99?.toFixed(3)} ms`);
} finally {
  await subject.close();
  rmSync(dir, { recursive: true, force: true });
}

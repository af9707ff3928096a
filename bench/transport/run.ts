/**
 * Walk-in transport benchmark: `npm run bench:transport`.
 *
 * (1) round trip of a mutation with read-your-writes, under synchronous=FULL and NORMAL;
 * (2) fan-out of one change to N subscribers in another process; (3) server memory per idle
 * subscribed client, the server alone in its process. Each figure is printed next to a raw
 * `ws` (+ better-sqlite3) floor measured in the same run, with the ratio and the target.
 * Method and fairness of each floor: bench/transport/README.md. All traffic is on 127.0.0.1;
 * every loop and wait is bounded.
 *
 * Environment: TRANSPORT_CASES (any of "roundtrip,fanout,memory"), TRANSPORT_MODES
 * ("full,normal"), TRANSPORT_RT_OPS (minimum measured round trips per side, default 500),
 * TRANSPORT_RT_MS (minimum measured time per side, default 1200), TRANSPORT_RT_INTERVAL_MS
 * (how far apart round trips start, default 6.67: see CALL_INTERVAL_MS), TRANSPORT_FANOUT_N
 * ("100,1000,10000"), TRANSPORT_FANOUT_WARMUP (fan-out trials per side before the recorded
 * ones, default 5), TRANSPORT_MEMORY_N (10000).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { Timing } from "../engine/measure.js";
import type { Durability } from "../engine/workload.js";
import { Child, fdLimits } from "./child.js";
import { fanOut } from "./fanOut.js";
import { memory } from "./memory.js";
import { kb, ms, table, type Row } from "./report.js";
import { CALL_INTERVAL_MS, roundTrip } from "./roundTrip.js";

const list = (value: string) => value.split(",").map((item) => item.trim()).filter(Boolean);
const cases = new Set(list(process.env.TRANSPORT_CASES ?? "roundtrip,fanout,memory"));
const modes = list(process.env.TRANSPORT_MODES ?? "full,normal");
const fanOutNs = list(process.env.TRANSPORT_FANOUT_N ?? "100,1000,10000").map(Number);
const memoryN = Number(process.env.TRANSPORT_MEMORY_N ?? 10_000);
const rtOps = Number(process.env.TRANSPORT_RT_OPS ?? 500);
const rtIntervalMs = Number(process.env.TRANSPORT_RT_INTERVAL_MS ?? CALL_INTERVAL_MS);
if (!(rtIntervalMs >= 0)) throw new Error(`TRANSPORT_RT_INTERVAL_MS must be a number of milliseconds >= 0, got ${process.env.TRANSPORT_RT_INTERVAL_MS}`);
const fanOutWarmup = Number(process.env.TRANSPORT_FANOUT_WARMUP ?? 5);
if (!Number.isInteger(fanOutWarmup) || fanOutWarmup < 1) {
  throw new Error(`TRANSPORT_FANOUT_WARMUP must be a whole number of trials >= 1, got ${process.env.TRANSPORT_FANOUT_WARMUP}`);
}
const rtTiming: Timing = { warmupMs: 300, durationMs: Number(process.env.TRANSPORT_RT_MS ?? 1_200), rounds: 4 };
for (const name of cases) {
  if (!["roundtrip", "fanout", "memory"].includes(name)) throw new Error(`TRANSPORT_CASES: unknown case "${name}" (use roundtrip, fanout, memory)`);
}
for (const mode of modes) {
  if (mode !== "full" && mode !== "normal") throw new Error(`TRANSPORT_MODES: unknown mode "${mode}" (use full and/or normal)`);
}
for (const n of [...fanOutNs, memoryN]) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`connection counts must be positive integers, got ${n}`);
}

const TARGETS = { roundTripP50: 2, fanOutAt1000: 1.5, memory: 2 };
const rows: Row[] = [];
const problems: string[] = [];
const started = performance.now();
const machine = () => `load average ${loadavg().map((l) => l.toFixed(2)).join(" ")} on ${availableParallelism()} cores`;
const dir = mkdtempSync(join(tmpdir(), "walkin-bench-transport-"));

console.log(`Walk-in transport benchmark: node ${process.version}, Walk-in code ${process.env.WALKIN_BENCH_CODE ?? "TypeScript sources under tsx (slower: see bench/compiled.mjs)"}, files in ${dir}`);
console.log(`${machine()} at start`);

let clients: Child | null = null;
try {
  if (cases.has("roundtrip")) {
    for (const mode of modes as Durability[]) {
      const result = await roundTrip(dir, mode, rtTiming, rtOps, rtIntervalMs);
      const label = `round trip, synchronous=${mode.toUpperCase()}`;
      const spacing = rtIntervalMs === CALL_INTERVAL_MS ? "" : `, ${rtIntervalMs} ms apart`;
      const samples = `${result.walkin.ops} / ${result.floor.ops} calls${spacing}`;
      if (result.missedWrites > 0) problems.push(`${label}: ${result.missedWrites} mutations resolved before the watched result held their write`);
      rows.push({
        label: `${label}, p50`,
        walkin: ms(result.walkin.p50!),
        floor: ms(result.floor.p50!),
        ratio: result.walkin.p50! / result.floor.p50!,
        target: TARGETS.roundTripP50,
        notes: `${samples}; read-your-writes ${result.missedWrites === 0 ? "OK" : `FAIL (${result.missedWrites})`}`,
      });
      rows.push({ label: `${label}, p99`, walkin: ms(result.walkin.p99!), floor: ms(result.floor.p99!), ratio: result.walkin.p99! / result.floor.p99!, target: null });
    }
  }

  if (cases.has("fanout") || cases.has("memory")) {
    clients = Child.start("clients.ts", "clients process");
    const childSoft = (await clients.request<{ soft: number }>({ op: "limits" })).soft;
    const own = fdLimits();
    // The server side of every connection is in this process (fan-out) or a server child (memory,
    // started with the same raised limit); the client side is in the clients process.
    const fdRoom = Math.min(own.soft, childSoft) - 100;
    console.log(`open files: this process soft ${own.soft} / hard ${own.hard}, clients process soft ${childSoft} (raised to the hard limit where allowed)`);
    const fits = (n: number, what: string) => {
      if (n + 1 <= fdRoom) return true;
      problems.push(`${what}: skipped N=${n}: the open-file limit allows about ${fdRoom} sockets per process (raise ulimit -n)`);
      return false;
    };

    if (cases.has("fanout")) {
      const ns = fanOutNs.filter((n) => fits(n, "fan-out"));
      for (const result of await fanOut(dir, clients, ns, fdRoom, fanOutWarmup)) {
        const ok = result.queryRuns.every((runs) => runs === 1);
        if (!ok) problems.push(`fan-out N=${result.n}: the query ran ${result.queryRuns.join(", ")} times for the trials' mutations (want 1 each)`);
        if (result.lost > 0) problems.push(`fan-out N=${result.n}: ${result.lost} subscriber sockets closed during the trials`);
        const spread = (r: [number, number]) => `${ms(r[0])}–${ms(r[1])}`;
        rows.push({
          label: `fan-out N=${result.n.toLocaleString("en-US")}, send → last client`,
          walkin: ms(result.walkinLast),
          floor: ms(result.floorLast),
          ratio: result.walkinLast / result.floorLast,
          target: result.n === 1_000 ? TARGETS.fanOutAt1000 : null,
          notes:
            `median of ${result.trials}${result.interleaved ? " alternating" : ""}, range ${spread(result.walkinRange)} / ${spread(result.floorRange)}; ` +
            `first client ${ms(result.walkinFirst)} / ${ms(result.floorFirst)}; query runs per mutation ${ok ? "1" : `FAIL ${result.queryRuns.join(",")}`} ` +
            `(subscribing ${result.subscribeRuns}); ${result.bytes} B Transition; connect+subscribe ${(result.openMs.walkin / 1000).toFixed(1)} s / ${(result.openMs.floor / 1000).toFixed(1)} s`,
        });
      }
    }

    if (cases.has("memory") && fits(memoryN, "memory")) {
      const result = await memory(dir, clients, memoryN);
      rows.push({
        label: `memory per idle subscribed client, N=${memoryN.toLocaleString("en-US")} (server RSS)`,
        walkin: kb(result.walkin.rss),
        floor: kb(result.floor.rss),
        ratio: result.walkin.rss / result.floor.rss,
        target: TARGETS.memory,
        notes: `JS heap ${kb(result.walkin.heapUsed)} / ${kb(result.floor.heapUsed)}, external ${kb(result.walkin.external)} / ${kb(result.floor.external)} per client`,
      });
    }
  }
} finally {
  await clients?.stop();
  rmSync(dir, { recursive: true, force: true });
}

console.log("\n(walkin / floor in the notes column; every figure is lower-is-better)");
console.log(table(rows));
for (const problem of problems) console.log(`! ${problem}`);
if (problems.some((problem) => !problem.includes("skipped"))) process.exitCode = 1;
console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s, ${machine()} at the end`);

/**
 * Shared harness of the auth benchmark: N concurrent clients each calling `op` in a loop, and
 * the table that puts every side's throughput next to a baseline row's (bench/auth/run.ts).
 *
 * Each client awaits its op before starting the next, as one visitor would, so "clients" is
 * the number of operations in flight. Latency is per op, start to resolve, including any wait
 * behind other clients (that wait is what a visitor sees).
 */
import { performance } from "node:perf_hooks";
import type { CollectionTime, StorageTime } from "../engine/storageClock.js";

export interface Result {
  name: string;
  ops: number;
  seconds: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** The main thread's milliseconds in storage during the measured run, for a side that times it. */
  storage?: StorageTime;
  /** Garbage collection during the measured run, for a side that times its storage. */
  gc?: CollectionTime;
}

/** Stops after `durationMs` (no new op starts after it) or after `totalOps` ops, whichever is given. */
export type Stop = { clients: number; durationMs: number } | { clients: number; totalOps: number };

export async function runConcurrent(name: string, op: (clientIndex: number) => Promise<void>, stop: Stop): Promise<Result> {
  const { latencies, seconds } = await runOps(op, stop);
  return summarize(name, latencies, seconds);
}

/** The ops of one run: every op's latency (ms) and the run's wall time (s), drain included. */
export async function runOps(op: (clientIndex: number) => Promise<void>, stop: Stop): Promise<{ latencies: number[]; seconds: number }> {
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = "durationMs" in stop ? started + stop.durationMs : Infinity;
  const maxOps = "totalOps" in stop ? stop.totalOps : Infinity;
  let begun = 0;

  async function client(index: number): Promise<void> {
    while (begun < maxOps && performance.now() < deadline) {
      begun++;
      const t0 = performance.now();
      await op(index); // a throw ends the run: a failed op must not pass as a fast one
      latencies.push(performance.now() - t0);
    }
  }
  await Promise.all(Array.from({ length: stop.clients }, (_, i) => client(i)));
  // Throughput over the whole run, including the last ops that end after the deadline.
  return { latencies, seconds: (performance.now() - started) / 1000 };
}

/** Throughput and percentiles of `latencies` (ms) measured over `seconds` (sorts `latencies`). */
export function summarize(name: string, latencies: number[], seconds: number): Result {
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { name, ops: latencies.length, seconds, opsPerSec: latencies.length / seconds, p50Ms: pct(0.5), p99Ms: pct(0.99) };
}

/** Prints one line per row, then "row / floor = ratio" for every row but the floor. */
export function printTable(rows: Result[], floorName: string): void {
  const num = (n: number) => Math.round(n).toLocaleString("en-US");
  const ms = (n: number) => `${n.toFixed(2)} ms`;
  const cells = rows.map((r) => [r.name, num(r.ops), r.seconds.toFixed(2), num(r.opsPerSec), ms(r.p50Ms), ms(r.p99Ms)]);
  const header = ["side", "ops", "seconds", "ops/s", "p50", "p99"];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join(" | ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  for (const c of cells) console.log(line(c));

  const floor = rows.find((r) => r.name === floorName);
  if (!floor) return;
  for (const r of rows) {
    if (r !== floor) console.log(`${r.name} / ${floor.name} = ${(r.opsPerSec / floor.opsPerSec).toFixed(1)}x throughput`);
  }
}

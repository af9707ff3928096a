/**
 * Measurement: time-bounded operation loops, latency percentiles, and the interleaving of an
 * engine run with its floor.
 *
 * Shared 2-core machines drift by tens of percent within seconds (other tenants, the disk's
 * fsync latency), so measuring the engine for 2 s and then the floor for 2 s would mostly
 * measure the drift. Instead both sides warm up, then alternate in short rounds and each
 * side's figure is its operations over its own measured time: the drift hits both alike and
 * the ratio holds still.
 *
 * Time comes from `performance.now()`: the engine fixes `Date.now` inside functions, never
 * `performance`.
 */
import { performance } from "node:perf_hooks";

export interface Timing {
  /** Warm-up per side in ms (JIT, SQLite page cache, statements); results discarded. */
  warmupMs: number;
  /** Measured time per side in ms, split into `rounds` alternating slices. */
  durationMs: number;
  rounds: number;
}

export interface Measurement {
  ops: number;
  seconds: number;
  opsPerSecond: number;
  /** Per-operation latency in ms (null when nothing completed). */
  p50: number | null;
  p99: number | null;
  /** Operations that threw (e.g. a mutation that gave up after too many conflict retries). */
  failures: number;
}

/** Collects one side's operations, failures, time and latencies across rounds. */
export class Recorder {
  ops = 0;
  failures = 0;
  seconds = 0;
  /** Called as each measured operation starts, where the loop supports it (bench/transport/timeline.ts). */
  onStart?: () => void;
  private latencies = new Float64Array(1 << 16);
  private count = 0;

  latency(ms: number): void {
    if (this.count === this.latencies.length) {
      const grown = new Float64Array(this.count * 2);
      grown.set(this.latencies);
      this.latencies = grown;
    }
    this.latencies[this.count++] = ms;
    this.ops++;
  }

  result(): Measurement {
    const sorted = this.latencies.slice(0, this.count).sort();
    const at = (p: number) => (this.count === 0 ? null : sorted[Math.min(this.count - 1, Math.floor(p * this.count))]!);
    return { ops: this.ops, seconds: this.seconds, opsPerSecond: this.ops / this.seconds, p50: at(0.5), p99: at(0.99), failures: this.failures };
  }
}

/** One side of a comparison: something that can run its operation for a while. */
export interface Subject {
  /** Runs operations for about `ms`; records them unless `recorder` is null (warm-up). */
  run(ms: number, recorder: Recorder | null): Promise<void> | void;
  close(): unknown;
}

/**
 * A synchronous operation in a tight loop: the raw SQLite floors (better-sqlite3 is
 * synchronous, so awaiting would only add cost).
 */
export function syncLoop(op: (i: number) => void): Subject["run"] {
  let i = 0;
  return (ms, recorder) => {
    const start = performance.now();
    const end = start + ms;
    let now = start;
    while (now < end) {
      op(i++);
      const after = performance.now();
      recorder?.latency(after - now);
      now = after;
    }
    if (recorder) recorder.seconds += (now - start) / 1000;
  };
}

/**
 * An async operation with `clients` in flight. With 1 it is a plain sequential loop. With
 * more, operations start in waves of `clients`, all in the same tick, and the next wave starts
 * when the whole wave has settled (`Promise.all`), so handlers interleave at every `await`:
 * the case optimistic concurrency control exists for.
 *
 * Why waves rather than free-running clients: the SQLite storage is synchronous, so
 * free-running clients would chain on the microtask queue for the whole window and starve
 * every timer (a mutation backing off after a conflict would not run again until the window
 * ends); and clients hopping through a macrotask before each operation (as requests from
 * sockets do) would run every mutation start-to-commit alone, so nothing would ever contend.
 *
 * With `turnPerCall` (sequential only), each call first waits for a turn of the event loop
 * (`setImmediate`), as a request read from a socket would: work the engine leaves to the event
 * loop (history pruning) then competes with the calls, as it does in a server.
 *
 * The clock is checked between operations (between waves); the last one is waited for and
 * counted. An operation that throws counts as a failure.
 */
export function asyncLoop(clients: number, op: (i: number) => Promise<unknown>, turnPerCall = false): Subject["run"] {
  let i = 0;
  return async (ms, recorder) => {
    const start = performance.now();
    const end = start + ms;
    const one = async () => {
      const before = performance.now();
      try {
        await op(i++);
        recorder?.latency(performance.now() - before);
      } catch {
        if (recorder) recorder.failures++;
      }
    };
    if (clients === 1) {
      while (performance.now() < end) {
        if (turnPerCall) await new Promise((resolve) => setImmediate(resolve));
        await one();
      }
    } else {
      while (performance.now() < end) await Promise.all(Array.from({ length: clients }, one));
    }
    if (recorder) recorder.seconds += (performance.now() - start) / 1000;
  };
}

/** Warms both sides up, then alternates them in `timing.rounds` rounds. Closes neither. */
export async function compare(timing: Timing, walkin: Subject, floor: Subject): Promise<{ walkin: Measurement; floor: Measurement }> {
  await walkin.run(timing.warmupMs, null);
  await floor.run(timing.warmupMs, null);
  const recorders = { walkin: new Recorder(), floor: new Recorder() };
  const slice = timing.durationMs / timing.rounds;
  for (let round = 0; round < timing.rounds; round++) {
    // Alternate who goes first, so neither side always follows the other's disk activity.
    const order = round % 2 === 0 ? (["walkin", "floor"] as const) : (["floor", "walkin"] as const);
    for (const side of order) await (side === "walkin" ? walkin : floor).run(slice, recorders[side]);
  }
  return { walkin: recorders.walkin.result(), floor: recorders.floor.result() };
}

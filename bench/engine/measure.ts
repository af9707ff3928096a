/**
 * Time-bounded measurement loops and latency percentiles, shared by every case.
 *
 * Every case runs a warm-up (JIT, SQLite page cache, prepared statements) whose results are
 * thrown away, then a measured window of fixed wall-clock length. Time comes from
 * `performance.now()`: the engine patches `Date.now` inside functions, never `performance`.
 */
import { performance } from "node:perf_hooks";

export interface Timing {
  /** Warm-up length in ms (results discarded). */
  warmupMs: number;
  /** Measured window in ms. */
  durationMs: number;
}

export interface Measurement {
  ops: number;
  seconds: number;
  opsPerSecond: number;
  /** Per-operation latency in ms, or null when the case does not time single operations. */
  p50: number | null;
  p99: number | null;
  /** Operations that threw (e.g. gave up after too many conflict retries). */
  failures: number;
}

/** Grows without reallocating per sample; latencies in ms. */
class Samples {
  private data = new Float64Array(1 << 16);
  length = 0;

  push(value: number): void {
    if (this.length === this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = value;
  }

  percentile(p: number): number | null {
    if (this.length === 0) return null;
    const sorted = this.data.slice(0, this.length).sort();
    return sorted[Math.min(this.length - 1, Math.floor((p / 100) * this.length))]!;
  }
}

function result(ops: number, failures: number, seconds: number, samples: Samples | null): Measurement {
  return {
    ops,
    seconds,
    opsPerSecond: ops / seconds,
    p50: samples ? samples.percentile(50) : null,
    p99: samples ? samples.percentile(99) : null,
    failures,
  };
}

/**
 * A synchronous operation in a tight loop (the raw SQLite floors: better-sqlite3 is
 * synchronous, so nothing is gained by awaiting). `op(i)` gets a running counter.
 */
export function measureSync(timing: Timing, op: (i: number) => void): Measurement {
  let i = 0;
  const warmupEnd = performance.now() + timing.warmupMs;
  while (performance.now() < warmupEnd) op(i++);
  const samples = new Samples();
  const start = performance.now();
  const end = start + timing.durationMs;
  let ops = 0;
  for (let now = start; now < end; ) {
    op(i++);
    const after = performance.now();
    samples.push(after - now);
    now = after;
    ops++;
  }
  return result(ops, 0, (performance.now() - start) / 1000, samples);
}

/**
 * Runs `op` with `clients` operations in flight. With `clients = 1` it is a plain sequential
 * loop. With more, operations start in waves of `clients`, all in the same tick, and the next
 * wave starts when the whole wave has settled (`Promise.all`): the handlers interleave at
 * every `await`, which is the case optimistic concurrency control exists for.
 *
 * Why waves and not free-running clients: the SQLite storage is synchronous, so free-running
 * clients chain on the microtask queue for the whole window and starve every timer — a
 * mutation backing off after a conflict would not run again until the window ends. And if
 * each client hopped through a macrotask instead (as a request from a socket does), every
 * mutation would run start-to-commit alone and nothing would ever contend.
 *
 * The window is checked between waves; the last wave is waited for, counted and timed. An
 * operation that throws counts as a failure.
 */
export async function measureClients(
  timing: Timing,
  clients: number,
  op: (i: number) => Promise<unknown>,
): Promise<Measurement> {
  let i = 0;
  const run = async (windowMs: number, samples: Samples | null) => {
    const end = performance.now() + windowMs;
    let ops = 0;
    let failures = 0;
    const one = async () => {
      const before = performance.now();
      try {
        await op(i++);
        samples?.push(performance.now() - before);
        ops++;
      } catch {
        failures++;
      }
    };
    if (clients === 1) {
      while (performance.now() < end) await one();
    } else {
      while (performance.now() < end) await Promise.all(Array.from({ length: clients }, one));
    }
    return { ops, failures };
  };
  await run(timing.warmupMs, null);
  const samples = new Samples();
  const start = performance.now();
  const { ops, failures } = await run(timing.durationMs, samples);
  return result(ops, failures, (performance.now() - start) / 1000, samples);
}

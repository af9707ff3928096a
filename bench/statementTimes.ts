/**
 * Where the SQLite time goes, statement by statement: loaded before any benchmark (or any
 * script) with `--import`, it times every better-sqlite3 `run`, `get`, `all` and `iterate` in
 * the process and, at exit, prints to stderr the statements that took longest in all, each
 * with its count, mean, median (of a sample of its runs), longest single run and rows changed:
 *
 *   node --import tsx --import ./bench/compiled.mjs --import ./bench/statementTimes.ts \
 *     bench/auth/side.ts walkin NORMAL /tmp/auth-side
 *
 * A CPU profile lumps all of SQLite into the JavaScript function that called it; this tells a
 * COMMIT from a one-row INSERT and a sweep's DELETE, and shows the single statement that stalls
 * everything (its longest run). Each timed call costs two `performance.now()` and a map update:
 * a few percent on a benchmark's figures, so use it to find where time goes, not to measure.
 * `STATEMENT_TIMES_TOP` sets how many statements are printed (default 20).
 */
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";
import type BetterSqlite3 from "better-sqlite3";

const Database = createRequire(import.meta.url)("better-sqlite3") as typeof BetterSqlite3;

interface Times {
  calls: number;
  ms: number;
  longestMs: number;
  changes: number;
  /** A uniform sample of the calls' times (reservoir sampling), for the median: a mean hides a few long runs among many short ones. */
  sample: number[];
}

/** Calls kept per statement for its median. */
const SAMPLE_SIZE = 4096;

const bySql = new Map<string, Times>();

function timesOf(method: string, source: string): Times {
  const key = `${method} ${source.replace(/\s+/g, " ").trim()}`;
  let times = bySql.get(key);
  if (times === undefined) bySql.set(key, (times = { calls: 0, ms: 0, longestMs: 0, changes: 0, sample: [] }));
  return times;
}

function record(times: Times, ms: number, changes = 0): void {
  times.calls += 1;
  times.ms += ms;
  times.longestMs = Math.max(times.longestMs, ms);
  times.changes += changes;
  if (times.sample.length < SAMPLE_SIZE) times.sample.push(ms);
  else {
    const slot = Math.floor(Math.random() * times.calls);
    if (slot < SAMPLE_SIZE) times.sample[slot] = ms;
  }
}

function median(sample: number[]): number {
  const sorted = [...sample].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? 0;
}

type StatementMethod = (this: BetterSqlite3.Statement, ...params: unknown[]) => unknown;
const memory = new Database(":memory:");
const prototype = Object.getPrototypeOf(memory.prepare("SELECT 1")) as Record<string, StatementMethod>;
memory.close();

for (const method of ["run", "get", "all"]) {
  const original = prototype[method]!;
  prototype[method] = function (this: BetterSqlite3.Statement, ...params: unknown[]) {
    const start = performance.now();
    let result: unknown;
    try {
      result = original.apply(this, params);
      return result;
    } finally {
      const changes = method === "run" ? ((result as { changes?: number } | undefined)?.changes ?? 0) : 0;
      record(timesOf(method, this.source), performance.now() - start, changes);
    }
  };
}

// `iterate` hands rows out lazily: the time is the statement's own, row by row, not the caller's
// between rows. Returning (breaking out of a loop) is passed on, which resets the statement.
const iterate = prototype.iterate!;
prototype.iterate = function* (this: BetterSqlite3.Statement, ...params: unknown[]) {
  const times = timesOf("iterate", this.source);
  let ms = 0;
  const rows = iterate.apply(this, params) as IterableIterator<unknown>;
  try {
    for (;;) {
      const start = performance.now();
      const next = rows.next();
      ms += performance.now() - start;
      if (next.done) return;
      yield next.value;
    }
  } finally {
    rows.return?.();
    record(times, ms);
  }
};

process.on("exit", () => {
  const top = Number(process.env.STATEMENT_TIMES_TOP ?? 20);
  const all = [...bySql].sort((a, b) => b[1].ms - a[1].ms);
  const totalMs = all.reduce((sum, [, times]) => sum + times.ms, 0);
  const lines = [`SQLite statements: ${totalMs.toFixed(0)} ms in all (bench/statementTimes.ts)`];
  lines.push(`${"total ms".padStart(9)} ${"calls".padStart(8)} ${"mean µs".padStart(8)} ${"p50 µs".padStart(7)} ${"longest ms".padStart(10)} ${"changes".padStart(8)}  statement`);
  for (const [sql, times] of all.slice(0, top)) {
    const mean = (1000 * times.ms) / times.calls;
    lines.push(
      `${times.ms.toFixed(0).padStart(9)} ${String(times.calls).padStart(8)} ${mean.toFixed(1).padStart(8)} ${(1000 * median(times.sample)).toFixed(1).padStart(7)} ${times.longestMs.toFixed(1).padStart(10)} ${String(times.changes).padStart(8)}  ${sql.slice(0, 140)}`,
    );
  }
  process.stderr.write(`${lines.join("\n")}\n`);
});

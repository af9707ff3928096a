/**
 * One side of the auth benchmark, one setting, in a process of its own (bench/auth/run.ts
 * starts it): fresh database (in a new directory inside the one given, removed at the end),
 * warm-up (not recorded), measured run, close; prints the result as one JSON line.
 *
 * Why a process per side: what one side turns on process-wide would otherwise tax the other.
 * Better Auth keeps its request and endpoint context in AsyncLocalStorage, whose promise hooks
 * (Node 20) stay on for the rest of the process once used and make every promise slower;
 * Walk-in, measured after it in one process, ran up to 20% slower for it (bench/README.md,
 * "A process per side"). Heaps and JIT state are not shared either.
 *
 * With `--sliced` (how run.ts starts it), the measured run comes in slices the runner asks for,
 * so that the two sides' slices can alternate: after the warm-up the side prints
 * `{"ready":true}`, then reads commands from stdin, one a line:
 *   `run <ms> <settleMs>`  runs the clients for <ms>, then stays idle for <settleMs> so that
 *                          its own leftover background work (Walk-in's deferred versions and
 *                          checkpoints) runs before the other side's slice, on this side's
 *                          clock; prints `{"ops":N,"seconds":S}` for the slice, settle included;
 *   `end`                  prints the result of all slices together and exits.
 *
 * Usage: node --import tsx bench/auth/side.ts <better-auth|walkin> <FULL|NORMAL> <dir> [--sliced]
 * with CLIENTS, SECONDS (unsliced only) and WARMUP_MS as for run.ts, and
 * PROFILE=file.cpuprofile for a CPU profile of the measured run only (`../engine/profiled.ts`).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { runConcurrent, runOps, summarize, type Result } from "./harness.js";
import { profiled } from "../engine/profiled.js";
import type { AuthSubject, Synchronous } from "./betterAuth.js";

const [name, synchronous, dir, flag] = process.argv.slice(2) as [string, Synchronous, string, string | undefined];
if (!dir || (synchronous !== "FULL" && synchronous !== "NORMAL") || (flag !== undefined && flag !== "--sliced")) {
  throw new Error("usage: side.ts <better-auth|walkin> <FULL|NORMAL> <dir> [--sliced]");
}
const clients = Number(process.env.CLIENTS ?? 32);
const durationMs = Number(process.env.SECONDS ?? 5) * 1000;
const warmupMs = Number(process.env.WARMUP_MS ?? 1000);

/** The specifiers are variables so that the type checker does not require walkin.ts to exist. */
async function setupOf(side: string): Promise<(opts: { synchronous: Synchronous; dir: string }) => Promise<AuthSubject>> {
  if (side === "better-auth") return (await import("./betterAuth.js")).setupBetterAuth;
  if (side === "walkin") {
    const specifier = "./walkin.js";
    const mod = (await import(specifier)) as { setupWalkin?: (opts: { synchronous: Synchronous; dir: string }) => Promise<AuthSubject> };
    if (typeof mod.setupWalkin !== "function") throw new Error("bench/auth/walkin.ts does not export setupWalkin");
    return mod.setupWalkin;
  }
  throw new Error(`unknown side "${side}" (use better-auth or walkin)`);
}

// A directory of its own inside `dir`, removed at the end: run by hand with the same `dir`
// twice, a side would otherwise reopen the database the last run left (a side's file name is
// fixed), and measure a bigger database each time.
mkdirSync(dir, { recursive: true });
const own = mkdtempSync(join(dir, `${name}-${synchronous.toLowerCase()}-`));
try {
  const subject = await (await setupOf(name))({ synchronous, dir: own });
  try {
    await runConcurrent(name, subject.op, { clients, durationMs: warmupMs });
    const result = flag === "--sliced" ? await runSlices(subject) : await runWhole(subject);
    console.log(JSON.stringify(result));
  } finally {
    await subject.close();
  }
} finally {
  rmSync(own, { recursive: true, force: true });
}

async function runWhole(subject: AuthSubject): Promise<Result> {
  if (subject.storageClock) subject.storageClock.on = true;
  const result = await profiled(() => runConcurrent(name, subject.op, { clients, durationMs }));
  if (subject.storageClock) {
    subject.storageClock.on = false;
    result.storage = subject.storageClock.time;
    result.gc = subject.storageClock.garbageCollection();
  }
  return result;
}

async function runSlices(subject: AuthSubject): Promise<Result> {
  const latencies: number[] = [];
  let seconds = 0;
  console.log(JSON.stringify({ ready: true }));
  await profiled(async () => {
    for await (const line of createInterface({ input: process.stdin })) {
      const [command, ms, settle] = line.trim().split(" ");
      if (command === "end") break;
      const sliceMs = Number(ms);
      const settleMs = Number(settle);
      if (command !== "run" || !(sliceMs > 0) || !(settleMs >= 0)) throw new Error(`side.ts: expected "run <ms> <settleMs>" or "end", got "${line}"`);
      if (subject.storageClock) subject.storageClock.on = true;
      const slice = await runOps(subject.op, { clients, durationMs: sliceMs });
      const settleStart = performance.now();
      await sleep(settleMs);
      if (subject.storageClock) subject.storageClock.on = false;
      const sliceSeconds = slice.seconds + (performance.now() - settleStart) / 1000;
      for (const latency of slice.latencies) latencies.push(latency);
      seconds += sliceSeconds;
      console.log(JSON.stringify({ ops: slice.latencies.length, seconds: sliceSeconds }));
    }
  });
  const result = summarize(name, latencies, seconds);
  if (subject.storageClock) {
    result.storage = subject.storageClock.time;
    result.gc = subject.storageClock.garbageCollection();
  }
  return result;
}

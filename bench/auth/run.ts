/**
 * Auth benchmark: `node --import tsx bench/auth/run.ts`.
 *
 * Many concurrent clients each repeat "anonymous sign-in, then one authenticated mutation"
 * (a new visitor's first write). Better Auth with its anonymous plugin (betterAuth.ts) is the
 * baseline; Walk-in's own auth (walkin.ts, once it exists) is measured in the same run, on the
 * same machine, on the same SQLite with the same durability, and printed as a ratio against
 * it. Target: Walk-in at ≥ 10x Better Auth's throughput.
 *
 * For each `synchronous` setting (FULL, then NORMAL; always journal_mode=WAL) each side gets a
 * fresh database in its own temporary directory and a process of its own (side.ts says why),
 * and warms up there alone. The measured time then comes in slices that alternate between the
 * two sides in the order ABBA ABBA ... (`alternation` says why), and each side's figure is its
 * slices together.
 *
 * Environment: CLIENTS (concurrent clients, default 32), SECONDS (measured time per side and
 * setting, default 5), SLICE_MS (default 1000), SETTLE_MS (idle time after each slice, counted
 * in it, default 50), WARMUP_MS (default 1000), AUTH_MODES ("FULL,NORMAL").
 */
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Synchronous } from "./betterAuth.js";
import { printTable, type Result } from "./harness.js";
import { describeCollections, perOperation, type StorageTime } from "../engine/storageClock.js";

const clients = Number(process.env.CLIENTS ?? 32);
const durationMs = Number(process.env.SECONDS ?? 5) * 1000;
const warmupMs = Number(process.env.WARMUP_MS ?? 1000);
const sliceMs = Number(process.env.SLICE_MS ?? 1000);
const settleMs = Number(process.env.SETTLE_MS ?? 50);
// Checked here: a NaN would otherwise run no slice at all and print NaN figures.
const knobs = [
  ["CLIENTS", clients > 0 && Number.isInteger(clients), "a whole number > 0"],
  ["SECONDS", durationMs > 0, "a number > 0"],
  ["WARMUP_MS", warmupMs >= 0, "a number >= 0"],
  ["SLICE_MS", sliceMs > 0, "a number > 0"],
  ["SETTLE_MS", settleMs >= 0, "a number >= 0"],
] as const;
for (const [variable, valid, rule] of knobs) {
  if (!valid) throw new Error(`${variable} must be ${rule}, got "${process.env[variable]}"`);
}
const slices = Math.max(1, Math.round(durationMs / sliceMs));
const modes = (process.env.AUTH_MODES ?? "FULL,NORMAL").toUpperCase().split(",") as Synchronous[];
for (const mode of modes) {
  if (mode !== "FULL" && mode !== "NORMAL") throw new Error(`AUTH_MODES: unknown setting "${mode}" (use FULL and/or NORMAL)`);
}

/**
 * Walk-in's side is written separately (bench/auth/walkin.ts exporting `setupWalkin`, same
 * signature as `setupBetterAuth`); until that file exists the runner measures Better Auth alone.
 */
const hasWalkin = existsSync(fileURLToPath(new URL("./walkin.ts", import.meta.url)));
const sideScript = fileURLToPath(new URL("./side.ts", import.meta.url));

/**
 * One side, one setting, in a process of its own (side.ts, `--sliced`): fresh database and
 * warm-up (not recorded) when started, then measured slices on request. The child runs with
 * this process's loader flags, so it measures the same code (the sources, or dist/ through
 * bench/compiled.mjs).
 */
class SideProcess {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly lines: AsyncIterator<string>;
  /** Everything the child printed, for the error if it fails. */
  private output = "";

  constructor(
    readonly name: string,
    private readonly synchronous: Synchronous,
    root: string,
  ) {
    const dir = join(root, `${synchronous.toLowerCase()}-${name}`);
    mkdirSync(dir);
    this.child = spawn(process.execPath, [...process.execArgv, sideScript, name, synchronous, dir, "--sliced"], { stdio: ["pipe", "pipe", "inherit"] });
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  /** The next JSON line the child prints (other lines are kept for the error message). */
  async next<T>(): Promise<T> {
    for (;;) {
      const { value, done } = await this.lines.next();
      if (done) {
        const code = this.child.exitCode ?? (await new Promise((resolve) => this.child.once("close", resolve)));
        throw new Error(`the ${this.name} side (${this.synchronous}) exited with ${String(code)}:\n${this.output}`);
      }
      this.output += `${value}\n`;
      if (value.startsWith("{")) return JSON.parse(value) as T;
    }
  }

  /** One measured slice: `sliceMs` of operations, then `settleMs` idle, both on this side's clock. */
  async slice(): Promise<{ ops: number; seconds: number }> {
    this.child.stdin.write(`run ${sliceMs} ${settleMs}\n`);
    return this.next();
  }

  /** All slices together; the child exits. */
  async end(): Promise<Result> {
    this.child.stdin.end("end\n");
    const result = await this.next<Result>();
    await new Promise((resolve) => (this.child.exitCode === null ? this.child.once("close", resolve) : resolve(null)));
    return result;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill();
  }
}

/**
 * Both sides' measured slices, alternating. Why: this VM's speed moves by up to 2x from one
 * minute to the next. Run one side after the other and a slow minute lands on one side only;
 * the ratio swung by up to 40% between runs of one set that way (9.9x to 13.2x under NORMAL on
 * 2026-12-03). With slices of a second, each side's total spans the same minutes as the
 * other's, and the order ABBA (then again) puts each side first as often as second, so a
 * steady drift over the run favours neither. `SETTLE_MS` of idle time ends every slice, on the
 * clock of the side that ran it: whatever background work it left (Walk-in's pending
 * versions, its checkpoints) runs then, not in the other side's slice. Both sides get the same
 * settle, which lowers both throughputs alike and leaves the ratio as it was.
 * Answers each side's result and the ratio of each adjacent pair of slices (walkin / floor).
 */
async function alternation(synchronous: Synchronous, root: string): Promise<{ rows: Result[]; pairRatios: number[] }> {
  const started: SideProcess[] = [];
  try {
    // One at a time, so that each warms up alone.
    for (const name of sides) {
      const side = new SideProcess(name, synchronous, root);
      started.push(side);
      await side.next<{ ready: true }>();
    }
    const pairRatios: number[] = [];
    for (let i = 0; i < slices; i++) {
      const order = i % 2 === 0 ? started : [...started].reverse();
      const rates = new Map<string, number>();
      for (const side of order) {
        const { ops, seconds } = await side.slice();
        rates.set(side.name, ops / seconds);
      }
      if (rates.has("walkin")) pairRatios.push(rates.get("walkin")! / rates.get("better-auth")!);
    }
    const rows: Result[] = [];
    for (const side of started) rows.push(await side.end());
    return { rows, pairRatios };
  } finally {
    for (const side of started) side.kill();
  }
}

/**
 * Where Walk-in's time went, per operation: the mean (1 / throughput, all clients together) split
 * into the main thread's time in the SQLite storage and the rest (engine, auth, harness), as
 * bench/engine/run.ts does for case (a).
 */
function split(walkin: Result, time: StorageTime): string {
  const part = perOperation(time, walkin.ops);
  const mean = 1e6 / walkin.opsPerSec;
  const us = (value: number) => `${value.toFixed(0)} µs`;
  return (
    `walkin, mean per operation: ${us(mean)} = storage ${us(part.storage)} (commits ${us(part.commit)}, writing pending versions ` +
    `${us(part.versions)}, other calls ${us(part.other)}) + commits waiting for the checkpointer to start the log over ` +
    `${us(part.restartWaits)} + engine, auth and the rest ${us(mean - part.storage - part.restartWaits)} ` +
    `(of it the planner, in the commits' lock, ${us(part.planner)})` +
    (walkin.gc ? `; of the whole, ${describeCollections(walkin.gc, walkin.ops, us)}` : "")
  );
}

const sides = hasWalkin ? ["better-auth", "walkin"] : ["better-auth"];

const root = mkdtempSync(join(tmpdir(), "walkin-auth-bench-"));
// Other processes taking CPU lower every figure; compare ratios across runs, not absolutes.
const machine = () => `load average ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} cores`;
console.log(`Auth benchmark: node ${process.version}, Walk-in code ${process.env.WALKIN_BENCH_CODE ?? "TypeScript sources under tsx (slower: see bench/compiled.mjs)"}, files in ${root}, ${machine()} at start`);
console.log(`op = anonymous sign-in + getSession from its cookie + insert one message row`);
console.log(`${clients} concurrent clients; each side, each setting: ${warmupMs} ms warm-up, then ${durationMs} ms measured`);
console.log(`each side in a process of its own (bench/auth/side.ts); measured in ${slices} slices of ${sliceMs} ms + ${settleMs} ms settle per side, alternating ABBA`);
if (!hasWalkin) console.log("bench/auth/walkin.ts not found: measuring Better Auth only");

try {
  for (const synchronous of modes) {
    const { rows, pairRatios } = await alternation(synchronous, root);
    console.log(`\n== synchronous=${synchronous}, journal_mode=WAL, ${clients} clients ==`);
    printTable(rows, "better-auth");
    if (pairRatios.length > 1) {
      const sorted = [...pairRatios].sort((a, b) => a - b);
      const x = (ratio: number) => `${ratio.toFixed(1)}x`;
      console.log(`slice pairs, walkin / better-auth: median ${x(sorted[sorted.length >> 1]!)}, range ${x(sorted[0]!)}–${x(sorted[sorted.length - 1]!)}`);
    }
    const walkin = rows.find((r) => r.name === "walkin");
    const floor = rows[0]!;
    if (walkin) console.log(`target ≥ 10x: ${walkin.opsPerSec >= 10 * floor.opsPerSec ? "met" : "MISSED"}`);
    if (walkin?.storage) console.log(split(walkin, walkin.storage));
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
console.log(`\n${machine()} at the end`);

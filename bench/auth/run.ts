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
 * fresh database in its own temporary directory, a warm-up, then a measured run, in a process
 * of its own (side.ts says why).
 *
 * Environment: CLIENTS (concurrent clients, default 32), SECONDS (measured time per side and
 * setting, default 5), WARMUP_MS (default 1000), AUTH_MODES ("FULL,NORMAL").
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Synchronous } from "./betterAuth.js";
import { printTable, type Result } from "./harness.js";
import { perOperation, type StorageTime } from "../engine/storageClock.js";

const clients = Number(process.env.CLIENTS ?? 32);
const durationMs = Number(process.env.SECONDS ?? 5) * 1000;
const warmupMs = Number(process.env.WARMUP_MS ?? 1000);
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
 * One side, one setting, in a process of its own (side.ts says why): fresh database, warm-up
 * (not recorded), measured run, close. The child runs with this process's loader flags, so
 * it measures the same code (the sources, or dist/ through bench/compiled.mjs).
 */
async function measure(name: string, synchronous: Synchronous, root: string): Promise<Result> {
  const dir = join(root, `${synchronous.toLowerCase()}-${name}`);
  mkdirSync(dir);
  const child = spawn(process.execPath, [...process.execArgv, sideScript, name, synchronous, dir], { stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  const line = output.trim().split("\n").pop() ?? "";
  if (code !== 0 || !line.startsWith("{")) throw new Error(`the ${name} side (${synchronous}) exited with ${code}:\n${output}`);
  return JSON.parse(line) as Result;
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
    `(of it the planner, in the commits' lock, ${us(part.planner)})`
  );
}

const sides = hasWalkin ? ["better-auth", "walkin"] : ["better-auth"];

const root = mkdtempSync(join(tmpdir(), "walkin-auth-bench-"));
// Other processes taking CPU lower every figure; compare ratios across runs, not absolutes.
const machine = () => `load average ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} cores`;
console.log(`Auth benchmark: node ${process.version}, Walk-in code ${process.env.WALKIN_BENCH_CODE ?? "TypeScript sources under tsx (slower: see bench/compiled.mjs)"}, files in ${root}, ${machine()} at start`);
console.log(`op = anonymous sign-in + getSession from its cookie + insert one message row`);
console.log(`${clients} concurrent clients; each side, each setting: ${warmupMs} ms warm-up, then ${durationMs} ms measured`);
console.log("each side in a process of its own, one after the other (bench/auth/side.ts)");
if (!hasWalkin) console.log("bench/auth/walkin.ts not found: measuring Better Auth only");

try {
  for (const synchronous of modes) {
    const rows: Result[] = [];
    for (const name of sides) rows.push(await measure(name, synchronous, root));
    console.log(`\n== synchronous=${synchronous}, journal_mode=WAL, ${clients} clients ==`);
    printTable(rows, "better-auth");
    const walkin = rows.find((r) => r.name === "walkin");
    const floor = rows[0]!;
    if (walkin) console.log(`target ≥ 10x: ${walkin.opsPerSec >= 10 * floor.opsPerSec ? "met" : "MISSED"}`);
    if (walkin?.storage) console.log(split(walkin, walkin.storage));
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
console.log(`\n${machine()} at the end`);

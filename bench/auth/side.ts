/**
 * One side of the auth benchmark, one setting, in a process of its own (bench/auth/run.ts
 * starts it): fresh database, warm-up (not recorded), measured run, close; prints the result
 * as one JSON line.
 *
 * Why a process per side: what one side turns on process-wide would otherwise tax the other.
 * Better Auth keeps its request and endpoint context in AsyncLocalStorage, whose promise hooks
 * (Node 20) stay on for the rest of the process once used and make every promise slower;
 * Walk-in, measured after it in one process, ran up to 20% slower for it (bench/README.md,
 * "A process per side"). Heaps and JIT state are not shared either.
 *
 * Usage: node --import tsx bench/auth/side.ts <better-auth|walkin> <FULL|NORMAL> <dir>
 * with CLIENTS, SECONDS and WARMUP_MS as for run.ts, and PROFILE=file.cpuprofile for a CPU
 * profile of the measured run only (`../engine/profiled.ts`).
 */
import { runConcurrent } from "./harness.js";
import { profiled } from "../engine/profiled.js";
import type { AuthSubject, Synchronous } from "./betterAuth.js";

const [name, synchronous, dir] = process.argv.slice(2) as [string, Synchronous, string];
if (!dir || (synchronous !== "FULL" && synchronous !== "NORMAL")) throw new Error("usage: side.ts <better-auth|walkin> <FULL|NORMAL> <dir>");
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

const subject = await (await setupOf(name))({ synchronous, dir });
try {
  await runConcurrent(name, subject.op, { clients, durationMs: warmupMs });
  if (subject.storageClock) subject.storageClock.on = true;
  const result = await profiled(() => runConcurrent(name, subject.op, { clients, durationMs }));
  if (subject.storageClock) {
    subject.storageClock.on = false;
    result.storage = subject.storageClock.time;
  }
  console.log(JSON.stringify(result));
} finally {
  await subject.close();
}

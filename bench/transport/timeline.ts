/**
 * Where a round trip's time goes, step by step: runs the round trip of `roundTrip.ts` (paced
 * as in the benchmark, client and server in this process) on Walk-in's side and then on the
 * floor's, marks each step as it happens, and prints the median time of each step from the
 * call's start, with the median gap since the step before:
 *
 *   node --import tsx --import ./bench/compiled.mjs bench/transport/timeline.ts normal 3
 *
 * Arguments: mode (full or normal), seconds per side, and optionally the interval between call
 * starts in ms (default: the benchmark's pacing, `CALL_INTERVAL_MS`). `0` runs the calls back
 * to back, as hot as they get: a call after any idle pause, even under a millisecond, took
 * about 3.5 times as long on both sides here, so the two intervals tell the cost of the code
 * from the cost of waking up to run it. Below the benchmark's pacing the client would meet
 * its send budget and the server its message rate limit (`PROTOCOL_LIMITS`, read by both when
 * a connection starts), so this process lifts that limit first: in this process only, and
 * for this measurement only. The marks come from wrapping, in this
 * process only, the methods each step goes through: `ws`'s send and message events (both ends,
 * told apart by the socket's server flag), the client's `mutation`, the engine's client
 * mutation and query runs, its commit queue, the live-query flush, and the storage's receipt
 * lookup and commit;
 * on the floor's side, better-sqlite3's statement `run` (its insert). Each wrapper costs a
 * `performance.now()` and an array push, so the totals run a little above the benchmark's.
 * A step that did not happen in a call (a flush that found nothing to do) is left out of that
 * call's medians; the last column says in how many calls each step was seen.
 *
 * With TIMELINE_PROFILE=N, V8's sampling profiler also runs through the measured calls, and
 * each step is followed by the N functions most often on the CPU in the gap before it (every
 * sample is placed between two marks of its call by its timestamp): which code a slow step
 * runs, and how much of it is waiting ("(idle)": the event loop polling) or collecting garbage.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import Database from "better-sqlite3";
import { WebSocket } from "ws";
import { WalkinClient } from "../../src/browser/index.js";
import { GroupCommitter } from "../../src/engine/committer.js";
import { Engine } from "../../src/engine/engine.js";
import { Subscriptions } from "../../src/engine/subscriptions.js";
import { SqliteStorage } from "../../src/storage/sqlite/index.js";
import { Recorder } from "../engine/measure.js";
import { startProfiler, type CpuProfile } from "../engine/profiled.js";
import type { Durability } from "../engine/workload.js";
import { PROTOCOL_LIMITS } from "../../src/transport/index.js";
import { CALL_INTERVAL_MS, floorRoundTrip, walkinRoundTrip } from "./roundTrip.js";

const [mode = "normal", seconds = "3", interval = String(CALL_INTERVAL_MS)] = process.argv.slice(2);
if (mode !== "full" && mode !== "normal") throw new Error(`mode must be full or normal, got ${mode}`);
const intervalMs = Number(interval);
if (!(intervalMs >= 0)) throw new Error(`the interval must be a number of milliseconds >= 0, got ${interval}`);
if (intervalMs < CALL_INTERVAL_MS) {
  // Both ends read the limit when a connection starts: no connection exists yet.
  Object.assign(PROTOCOL_LIMITS as { messagesPerSecond: number; messageBurst: number }, { messagesPerSecond: 1e9, messageBurst: 1e9 });
}

/** The marks of the call in progress: step name → µs since the call started (first time seen). */
let current: Map<string, number> | null = null;
let callStart = 0;
/** The call's start on the monotonic clock V8's profiler stamps its samples with (µs). */
let callStartClock = 0;
const calls: Array<Map<string, number>> = [];
/** Each measured call's start on that clock, in the order of `calls`. */
const callStarts: number[] = [];

function mark(step: string): void {
  if (current !== null && !current.has(step)) current.set(step, (performance.now() - callStart) * 1000);
}
function startCall(): void {
  callStart = performance.now();
  callStartClock = Number(process.hrtime.bigint() / 1000n);
  current = new Map();
}
function endCall(): void {
  if (current === null) return;
  mark("call settled");
  calls.push(current);
  callStarts.push(callStartClock);
  current = null;
}

type Method = (this: unknown, ...args: unknown[]) => unknown;

/** Wraps `target[name]` so that `before` and `after` are marked around each call (after its promise settles, if it returns one). */
function around(target: object, name: string, before: string | ((self: unknown) => string), after?: string | ((self: unknown) => string)): void {
  const methods = target as Record<string, Method>;
  const original = methods[name]!;
  methods[name] = function (this: unknown, ...args: unknown[]) {
    mark(typeof before === "string" ? before : before(this));
    const result = original.apply(this, args);
    if (after !== undefined) {
      const label = typeof after === "string" ? after : after(this);
      if (result instanceof Promise) void result.then(() => mark(label), () => mark(label));
      else mark(label);
    }
    return result;
  };
}

const side = (socket: unknown) => ((socket as { _isServer?: boolean })._isServer ? "server" : "client");
around(WebSocket.prototype, "send", (socket) => `${side(socket)} sends`);
const emit = (WebSocket.prototype as unknown as Record<string, Method>).emit!;
(WebSocket.prototype as unknown as Record<string, Method>).emit = function (this: unknown, event: unknown, ...args: unknown[]) {
  if (event !== "message") return emit.call(this, event, ...args);
  mark(`${side(this)} receives`);
  const result = emit.call(this, event, ...args);
  mark(`${side(this)} handled the message (synchronous part)`);
  return result;
};

/** TIMELINE_PROFILE=N: also sample the CPU during the measured calls and list, for each step, the N functions most often running in the gap before it. */
const profileTop = Number(process.env.TIMELINE_PROFILE ?? 0);

const dir = mkdtempSync(join(tmpdir(), "walkin-timeline-"));
try {
  // Walk-in's side.
  around(WalkinClient.prototype, "mutation", "client.mutation called");
  around(Engine.prototype, "runClientMutation", "engine: mutation starts", "engine: mutation done");
  around(SqliteStorage.prototype, "getReceipt", "storage: receipt lookup");
  around(GroupCommitter.prototype, "commit", "engine: handler done, commit queued");
  around(SqliteStorage.prototype, "commitBatch", "storage: commit starts", "storage: commit done");
  around(Subscriptions.prototype, "flush", "engine: live-query flush starts");
  around(Engine.prototype, "executeQuery", "engine: query re-run starts", "engine: query re-run done");
  await measure("Walk-in", await walkinRoundTrip(join(dir, "walkin.sqlite"), mode as Durability, 1, 60_000, intervalMs));
  // The floor's side: its insert is the only statement it runs per call.
  const statement = Object.getPrototypeOf(new Database(":memory:").prepare("SELECT 1")) as object;
  around(statement, "run", "floor: insert starts", "floor: insert done");
  await measure("floor", await floorRoundTrip(join(dir, "floor.sqlite"), mode as Durability, 1, 60_000, intervalMs));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

async function measure(name: string, subject: Awaited<ReturnType<typeof floorRoundTrip>>): Promise<void> {
  try {
    await subject.run(300, null); // warm-up, not marked
    calls.length = 0;
    callStarts.length = 0;
    const recorder = new Recorder();
    recorder.onStart = startCall;
    const latency = recorder.latency.bind(recorder);
    recorder.latency = (ms) => {
      endCall();
      latency(ms);
    };
    // Asked for a sample every 10 µs; V8 manages one per 80-100 µs of busy time here, which over
    // hundreds of calls still gives each step's gap hundreds of samples.
    const profiler = profileTop > 0 ? await startProfiler(10) : null;
    await subject.run(Number(seconds) * 1000, recorder);
    const profile = profiler ? await profiler.stop() : null;
    const p50 = recorder.result().p50!;
    print(name, p50);
    if (profile) printStepProfile(profile);
  } finally {
    await subject.close();
  }
}

function print(name: string, p50: number): void {
  const steps = new Map<string, number[]>();
  for (const call of calls) for (const [step, at] of call) (steps.get(step) ?? steps.set(step, []).get(step)!).push(at);
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
  const rows = [...steps].map(([step, values]) => ({ step, at: median(values), seen: values.length })).sort((a, b) => a.at - b.at);
  console.log(`\n== ${name}, synchronous=${mode.toUpperCase()}, calls started ${intervalMs.toFixed(2)} ms apart: ${calls.length} calls, p50 ${(p50 * 1000).toFixed(0)} µs (median µs from the call's start) ==`);
  console.log(`${"µs".padStart(7)} ${"+µs".padStart(6)}  ${"step".padEnd(52)} seen`);
  let previous = 0;
  for (const row of rows) {
    console.log(`${row.at.toFixed(0).padStart(7)} ${(row.at - previous).toFixed(0).padStart(6)}  ${row.step.padEnd(52)} ${row.seen}`);
    previous = row.at;
  }
}

/**
 * For each step, what ran in the gap before it: every sample taken during a measured call is
 * given to the first step marked at or after it in that call, and named by its innermost
 * frame and by the innermost frame of this project (src/, dist/ or bench/) above it, if any.
 * "(idle)" is the event loop waiting: for the socket, a timer, or the other end.
 */
function printStepProfile(profile: CpuProfile): void {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const short = (url: string) => url.replace(/^file:\/\//, "").replace(/^.*\/node_modules\//, "nm:").replace(/^.*\/(src|dist|bench)\//, "$1/");
  const frameName = (id: number) => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    return url ? `${functionName || "(anonymous)"} ${short(url)}:${lineNumber + 1}` : functionName;
  };
  const ownFrame = (id: number | undefined): string => {
    for (; id !== undefined; id = parent.get(id)) if (/\/(src|dist|bench)\//.test(byId.get(id)!.callFrame.url)) return frameName(id);
    return "-";
  };
  const perStep = new Map<string, Map<string, number>>();
  const totals = new Map<string, number>();
  let call = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i]!;
    while (call < calls.length && at > callStarts[call]! + Math.max(...calls[call]!.values())) call++;
    if (call >= calls.length) break;
    const since = at - callStarts[call]!;
    if (since < 0) continue;
    const marks = [...calls[call]!].sort((a, b) => a[1] - b[1]);
    const step = marks.find(([, t]) => t >= since)![0];
    const id = profile.samples[i]!;
    const key = `${frameName(id)}  <  ${ownFrame(id)}`;
    const counts = perStep.get(step) ?? perStep.set(step, new Map()).get(step)!;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    totals.set(step, (totals.get(step) ?? 0) + 1);
  }
  console.log(`\nSamples in the gap before each step (innermost frame  <  innermost frame of this project), the ${profileTop} most frequent:`);
  // In the order of the table above: by the step's median time from the call's start.
  const at50 = (step: string) => {
    const times = calls.map((marks) => marks.get(step)).filter((t) => t !== undefined).sort((a, b) => a - b);
    return times[times.length >> 1]!;
  };
  for (const [step, counts] of [...perStep].sort((a, b) => at50(a[0]) - at50(b[0]))) {
    const total = totals.get(step)!;
    console.log(`  ${step}: ${total} samples`);
    for (const [key, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, profileTop)) console.log(`    ${((100 * n) / total).toFixed(0).padStart(3)}%  ${key}`);
  }
}

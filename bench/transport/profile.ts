/**
 * Runs one Walk-in side alone (no floor in this process) for a CPU profile of the server:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/walkin-prof --import tsx bench/transport/profile.ts roundtrip normal 5
 *   node --cpu-prof --cpu-prof-dir=/tmp/walkin-prof --import tsx bench/transport/profile.ts fanout 1000 30
 *   node --import tsx bench/engine/hotspots.ts /tmp/walkin-prof/CPU.*.0.001.cpuprofile
 *
 * roundtrip MODE SECONDS: sequential `client.mutation` with read-your-writes, client and server
 * in this process. fanout N TRIALS: N subscribers in a child process (not profiled), TRIALS
 * mutations, each awaited until every subscriber has the update.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startServer } from "../../src/transport/index.js";
import { Recorder } from "../engine/measure.js";
import { openEngine, BENCH_LIMITS } from "./app.js";
import { Child } from "./child.js";
import { walkinRoundTrip } from "./roundTrip.js";

const [which = "roundtrip", first = "normal", second = "5"] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), "walkin-profile-transport-"));
try {
  if (which === "roundtrip") {
    if (first !== "full" && first !== "normal") throw new Error(`mode must be full or normal, got ${first}`);
    const subject = await walkinRoundTrip(join(dir, "profile.sqlite"), first, 1, 60_000);
    try {
      const recorder = new Recorder();
      await subject.run(300, null);
      await subject.run(Number(second) * 1000, recorder);
      const m = recorder.result();
      console.log(`roundtrip (${first}): ${m.ops} calls, p50 ${m.p50?.toFixed(3)} ms, p99 ${m.p99?.toFixed(3)} ms`);
    } finally {
      await subject.close();
    }
  } else if (which === "fanout") {
    const n = Number(first);
    const trials = Number(second);
    const engine = await openEngine(join(dir, "profile.sqlite"), "normal");
    const server = await startServer({ engine, port: 0, host: "127.0.0.1", log: () => {}, limits: BENCH_LIMITS });
    const clients = Child.start("clients.ts", "clients process");
    try {
      await clients.request({ op: "open", set: "s", url: server.wsUrl, writerUrl: server.wsUrl, n }, 120_000);
      const last: number[] = [];
      for (let t = 0; t < trials; t++) {
        last.push((await clients.request<{ lastMs: number }>({ op: "trigger", set: "s", doc: 1_000_000 + t })).lastMs);
        await sleep(20);
      }
      last.sort((a, b) => a - b);
      console.log(`fanout N=${n}: ${trials} mutations, median send → last client ${last[Math.floor(trials / 2)]!.toFixed(2)} ms`);
      await clients.request({ op: "close", set: "s" });
    } finally {
      await clients.stop();
      await server.close();
      await engine.close();
    }
  } else {
    throw new Error(`unknown case ${which}: roundtrip MODE SECONDS | fanout N TRIALS`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

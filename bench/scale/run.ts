/**
 * Walk-in on PostgreSQL and several nodes: `npm run bench:scale`.
 *
 * (1) commit throughput of insert mutations through `Engine` over `openPostgresStorage`,
 * sequential and 32 in flight, against raw `pg` insert transactions; (2) cross-node live-query
 * latency through three real `walkin start` nodes, against raw `pg_notify` → `LISTEN`; (3) one
 * change fanned out to N subscribers spread over 1, 2 and 3 nodes, against the same N raw `ws`
 * connections on 1, 2 and 3 raw LISTEN-and-broadcast processes. Every figure is printed next
 * to its floor, measured in the same run on the same PostgreSQL server, in a database of this
 * run's own (`walkin_bench_<pid>`, dropped at the end). bench/scale/README.md explains it.
 *
 * Environment: SCALE_CASES (any of "commits,latency,fanout"), SCALE_SYNC (synchronous_commit
 * values for case 1, default "on,off"), SCALE_DURATION_MS (measured time per side and row of
 * case 1, default 2000), SCALE_WARMUP_MS (500), SCALE_ROUNDS (4), SCALE_LATENCY_SAMPLES (300),
 * SCALE_FANOUT_N (subscribers, default 900), SCALE_FANOUT_TRIALS (7), SCALE_POSTGRES_URL
 * (a database on the server where CREATE DATABASE runs; default
 * postgres://postgres@127.0.0.1:5432/postgres).
 */
import { availableParallelism, loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { compare, Recorder, type Timing } from "../engine/measure.js";
import { table as throughputTable, type Row as ThroughputRow } from "../engine/report.js";
import { ms, table as latencyTable, type Row as LatencyRow } from "../transport/report.js";
import { meterCpu } from "./cpu.js";
import { clockUpdates, floorInserts, walkinInserts } from "./commits.js";
import { createBenchDatabase, type SynchronousCommit } from "./database.js";
import { fanOutByNodes, idleCpuPerMs } from "./fanOut.js";
import { crossNodeLatency, quantile } from "./latency.js";
import { startCluster, type Cluster } from "./nodes.js";
import { crossEngineVisibility, type VisibilityResult } from "./visibility.js";

const list = (value: string) => value.split(",").map((item) => item.trim()).filter(Boolean);
const cases = new Set(list(process.env.SCALE_CASES ?? "commits,latency,fanout"));
const syncModes = list(process.env.SCALE_SYNC ?? "on,off");
const timing: Timing = {
  durationMs: Number(process.env.SCALE_DURATION_MS ?? 2_000),
  warmupMs: Number(process.env.SCALE_WARMUP_MS ?? 500),
  rounds: Number(process.env.SCALE_ROUNDS ?? 4),
};
const latencySamples = Number(process.env.SCALE_LATENCY_SAMPLES ?? 300);
const fanOutN = Number(process.env.SCALE_FANOUT_N ?? 900);
const fanOutTrials = Number(process.env.SCALE_FANOUT_TRIALS ?? 7);
for (const name of cases) {
  if (!["commits", "latency", "fanout"].includes(name)) throw new Error(`SCALE_CASES: unknown case "${name}" (use any of commits,latency,fanout)`);
}
for (const mode of syncModes) {
  if (mode !== "on" && mode !== "off") throw new Error(`SCALE_SYNC: unknown synchronous_commit "${mode}" (use on and/or off)`);
}
const counts = {
  SCALE_DURATION_MS: timing.durationMs,
  SCALE_WARMUP_MS: timing.warmupMs,
  SCALE_ROUNDS: timing.rounds,
  SCALE_LATENCY_SAMPLES: latencySamples,
  SCALE_FANOUT_N: fanOutN,
  SCALE_FANOUT_TRIALS: fanOutTrials,
};
for (const [name, value] of Object.entries(counts)) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${process.env[name]}`);
}

const CLIENTS = 32;
const TARGETS = { sequential: 0.5, groupCommit: 1, latencyP50Ms: 10 };
const started = performance.now();
const machine = () => `load average ${loadavg().map((l) => l.toFixed(2)).join(" ")} on ${availableParallelism()} cores`;

console.log(`Walk-in scale benchmark: node ${process.version}`);
console.log(`${machine()} at start`);
const database = await createBenchDatabase();
console.log(`database ${database.name} (dropped at the end)`);

let cluster: Cluster | null = null;
try {
  if (cases.has("commits")) {
    console.log(
      `\n== (1) commit throughput: insert mutations vs raw pg BEGIN; INSERT; COMMIT (each side: ${timing.warmupMs} ms warm-up, ` +
        `${timing.durationMs} ms measured in ${timing.rounds} alternating rounds) ==`,
    );
    let schemaNo = 0;
    // The first row would otherwise also pay for compiling and optimising the engine's code.
    const warm = await walkinInserts(database.url, "bench_warmup", 1);
    await warm.run(Math.max(1_000, timing.warmupMs), null);
    await warm.close();
    for (const mode of syncModes as SynchronousCommit[]) {
      const reported = await database.setSynchronousCommit(mode);
      const rows: ThroughputRow[] = [];
      for (const clients of [1, CLIENTS]) {
        const pgSchema = `bench_commits_${schemaNo++}`;
        const walkin = await walkinInserts(database.url, pgSchema, clients);
        const floor = await floorInserts(database.url, `floor_docs_${schemaNo++}`, clients).catch(async (error) => {
          await walkin.close();
          throw error;
        });
        let row: ThroughputRow;
        let mutations = 0;
        try {
          const cpu = { walkin: meterCpu(walkin, database.url, "walkin"), floor: meterCpu(floor, database.url, "bench_floor") };
          const before = { ...walkin.engine.stats };
          const result = await compare(timing, walkin, floor);
          mutations = walkin.engine.stats.commits - before.commits;
          const retries = walkin.engine.stats.conflictRetries - before.conflictRetries;
          const target = clients === 1 ? TARGETS.sequential : TARGETS.groupCommit;
          const ratio = result.walkin.opsPerSecond / result.floor.opsPerSecond;
          const notes = [`target ≥ ${target.toFixed(2)} ${ratio >= target ? "met" : "MISSED"}`];
          if (retries > 0) notes.push(`${retries} conflict retries`);
          const perOp = (totalMs: number | null, ops: number) => (totalMs === null ? "?" : `${Math.round((totalMs / ops) * 1000)}`);
          notes.push(
            `CPU µs/op client ${perOp(cpu.walkin.clientMs, result.walkin.ops)} / ${perOp(cpu.floor.clientMs, result.floor.ops)}, ` +
              `server ${perOp(cpu.walkin.serverMs, result.walkin.ops)} / ${perOp(cpu.floor.serverMs, result.floor.ops)}`,
          );
          if (result.walkin.failures + result.floor.failures > 0) notes.push(`${result.walkin.failures} / ${result.floor.failures} failed`);
          row = { label: clients === 1 ? "insert, sequential" : `insert, ${clients} in flight`, ...result, note: notes.join(", ") };
        } finally {
          await walkin.close();
          await floor.close();
        }
        const batches = await clockUpdates(database.url, pgSchema);
        if (batches > 0) row.note += `, ${(mutations / batches).toFixed(1)} mutations per PostgreSQL commit`;
        rows.push(row);
      }
      // For information: the sequential floor written the usual way, each statement awaited.
      const awaited = await floorInserts(database.url, `floor_docs_${schemaNo++}`, 1, false);
      const recorder = new Recorder();
      try {
        await awaited.run(timing.warmupMs, null);
        await awaited.run(timing.durationMs / 2, recorder);
      } finally {
        await awaited.close();
      }
      const awaitedResult = recorder.result();
      console.log(`\nsynchronous_commit=${reported} on both sides (p50/p99: walkin / floor)`);
      console.log(throughputTable(rows));
      console.log(
        `for information, not a floor: the sequential floor with each statement awaited (3 round trips instead of 1) = ` +
          `${Math.round(awaitedResult.opsPerSecond).toLocaleString("en-US")} ops/s, p50 ${ms(awaitedResult.p50 ?? Number.NaN)}`,
      );
    }
  }

  let visibility: VisibilityResult | null = null;
  if (cases.has("latency")) {
    await database.setSynchronousCommit("on");
    // Before the nodes start, so that their polling does not share the machine with it.
    visibility = await crossEngineVisibility(database.url, "bench_visibility", latencySamples);
  }

  if (cases.has("latency") || cases.has("fanout")) {
    await database.setSynchronousCommit("on");
    cluster = await startCluster(database.url, 3, fanOutN);
    console.log(`\nthree real nodes (walkin start --db …, synchronous_commit=on): ${cluster.nodes.map((n) => `${n.name} :${n.port}`).join(", ")}`);
  }

  if (cases.has("latency") && cluster) {
    const result = await crossNodeLatency(cluster.nodes, database.url, latencySamples, 1_000_000);
    const p = (sorted: number[], q: number) => quantile(sorted, q) ?? Number.NaN;
    const floor50 = p(result.floor, 0.5);
    const floor99 = p(result.floor, 0.99);
    const cross50 = p(result.crossNode, 0.5);
    const rows: LatencyRow[] = [
      {
        label: "A → C (cross-node), p50",
        walkin: ms(cross50),
        floor: ms(floor50),
        ratio: cross50 / floor50,
        target: null,
        notes: `target p50 ≤ ${TARGETS.latencyP50Ms} ms ${cross50 <= TARGETS.latencyP50Ms ? "met" : "MISSED"}; ${result.crossNode.length} / ${result.floor.length} samples`,
      },
      { label: "A → C (cross-node), p99", walkin: ms(p(result.crossNode, 0.99)), floor: ms(floor99), ratio: p(result.crossNode, 0.99) / floor99, target: null, notes: `max ${ms(p(result.crossNode, 1))}` },
      { label: "A → A (same node), p50", walkin: ms(p(result.sameNode, 0.5)), floor: ms(floor50), ratio: p(result.sameNode, 0.5) / floor50, target: null, notes: "reference: no PostgreSQL notification involved" },
      { label: "A → A (same node), p99", walkin: ms(p(result.sameNode, 0.99)), floor: ms(floor99), ratio: p(result.sameNode, 0.99) / floor99, target: null },
    ];
    console.log(`\n== (2) live-query latency: mutation via node A → subscriber on node C holds the new result, vs raw pg_notify → LISTEN ==`);
    console.log(latencyTable(rows));
    const spread = (sorted: number[]) => [0.5, 0.9, 0.99, 1].map((q) => ms(p(sorted, q))).join(" / ");
    console.log(`p50 / p90 / p99 / max: cross-node ${spread(result.crossNode)}; same-node ${spread(result.sameNode)}; floor ${spread(result.floor)}`);
    // A sample that node C held ≥ 50 ms after node A's own subscriber did was delayed on C's
    // side alone: a notification C did not act on (the 200 ms poll caught the commit) or C busy.
    const late = result.crossMinusSame.filter((gap) => gap >= 50);
    console.log(
      `cross-node samples held on C ≥ 50 ms after A's own subscriber: ${late.length} of ${result.crossMinusSame.length}` +
        (late.length > 0 ? ` (gaps ${late.sort((a, b) => a - b).map((gap) => gap.toFixed(0)).join(", ")} ms)` : ""),
    );
    if (visibility) {
      const slowOther = visibility.other.filter((t) => t >= 50).length;
      console.log(
        `decomposed, two engines in this process on one schema (no WebSocket, no query): X.runMutation resolves ${spread(visibility.own)}; ` +
          `engine Y learns of the commit ${spread(visibility.other)} (p50 / p90 / p99 / max); ` +
          `${slowOther} of ${visibility.other.length} samples ≥ 50 ms` +
          (visibility.missed > 0 ? `; MISSED ${visibility.missed}` : ""),
      );
      if (visibility.missed > 0) process.exitCode = 1;
    }
    if (result.missed.walkin + result.missed.floor > 0) {
      console.log(`MISSED samples (nothing within 5 s): walkin ${result.missed.walkin}, floor ${result.missed.floor}`);
      process.exitCode = 1;
    }
  }

  if (cases.has("fanout") && cluster) {
    console.log(`\n== (3) fan-out: one mutation via node A, ${fanOutN} subscribers of its query spread evenly over 1, 2, 3 nodes ==`);
    const results = await fanOutByNodes(cluster.nodes, database.url, fanOutN, fanOutTrials);
    const base = results[0]!;
    const rows: LatencyRow[] = results.map((r) => ({
      label: `${r.nodes} node${r.nodes > 1 ? "s" : ""}, send → last of ${fanOutN}`,
      walkin: ms(r.walkinLast),
      floor: ms(r.floorLast),
      ratio: r.walkinLast / r.floorLast,
      target: null,
      notes:
        `${Math.round((fanOutN / r.walkinLast) * 1000).toLocaleString("en-US")} / ${Math.round((fanOutN / r.floorLast) * 1000).toLocaleString("en-US")} updates/s; ` +
        `vs 1 node ${(base.walkinLast / r.walkinLast).toFixed(2)}x / ${(base.floorLast / r.floorLast).toFixed(2)}x; ` +
        `CPU/mutation busiest node ${r.cpu.walkinBusiest === null ? "?" : ms(r.cpu.walkinBusiest)} / ${ms(r.cpu.floorBusiest)}, ` +
        `all nodes ${r.cpu.walkinTotal === null ? "?" : ms(r.cpu.walkinTotal)} / ${ms(r.cpu.floorTotal)}; ` +
        `first ${ms(r.walkinFirst)} / ${ms(r.floorFirst)}; last per node ${r.walkinLastByNode.map((t, i) => `${"ABC"[i]} ${ms(t)}`).join(", ")}`,
    }));
    console.log(latencyTable(rows));
    console.log(`(median of ${fanOutTrials} trials; notes: walkin / floor)`);
    // On this machine k nodes share the same cores; what k machines could deliver is bounded by
    // the busiest node's CPU per update instead.
    const capacity = (busiest: number | null) => (busiest === null || busiest === 0 ? "?" : Math.round((fanOutN / busiest) * 1000).toLocaleString("en-US"));
    console.log(
      `node CPU per mutation excludes each node's idle use (poll, scheduler), measured for 2 s before: ` +
        idleCpuPerMs.map((rate, i) => `${"ABC"[i]} ${(rate * 1000).toFixed(0)} ms/s`).join(", "),
    );
    console.log(
      `CPU-bound capacity, ${fanOutN} ÷ busiest node's CPU per mutation (updates/s with a core per node), walkin / floor: ` +
        results.map((r) => `${r.nodes} node${r.nodes > 1 ? "s" : ""} ${capacity(r.cpu.walkinBusiest)} / ${capacity(r.cpu.floorBusiest)}`).join("; "),
    );
    const problems = results.flatMap((r) => r.problems);
    if (problems.length > 0) {
      console.log(problems.join("\n"));
      process.exitCode = 1;
    }
  }
} finally {
  await cluster?.close();
  await database.drop();
}
console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s, ${machine()} at the end`);

/**
 * Where a side's time goes: CPU used by this process (the engine or the raw `pg` client) and
 * by the PostgreSQL backends serving that side, while its measured slices ran. Backends are
 * found by `application_name` in `pg_stat_activity` (the Walk-in storage names its
 * connections "walkin"; the floors "bench_floor") and read from `/proc` (this only works with
 * the server on this machine; elsewhere the server figure is left out).
 */
import { readdirSync, readFileSync } from "node:fs";
import pg from "pg";
import type { Recorder, Subject } from "../engine/measure.js";

/**
 * CPU a process on this machine has used so far (all its threads), ms; null if unreadable.
 * From `/proc/<pid>/task/<tid>/schedstat` (time on a CPU, in ns) rather than `/proc/<pid>/stat`
 * (10 ms ticks, too coarse for a few mutations).
 */
export function processCpuMs(pid: number): number | null {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // the thread ended between the listing and the read
      }
    }
    return ns / 1e6;
  } catch {
    return null;
  }
}

export interface CpuTotals {
  /** ms of this process's CPU (user + system) during measured slices. */
  clientMs: number;
  /** ms of the side's PostgreSQL backends' CPU during measured slices, or null if unreadable. */
  serverMs: number | null;
}

/**
 * Wraps `subject.run` so that each measured slice adds its CPU to the returned totals. The
 * other side is not running during a slice (compare alternates them), so this process's CPU in
 * a slice is this side's.
 */
export function meterCpu(subject: Subject, databaseUrl: string, applicationName: string): CpuTotals {
  const totals: CpuTotals = { clientMs: 0, serverMs: 0 };
  const run = subject.run.bind(subject);
  const backends = async (): Promise<number[]> => {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
        [applicationName],
      );
      return rows.map((row) => row.pid);
    } finally {
      await client.end();
    }
  };
  const serverCpu = (pids: number[]) => {
    const map = new Map<number, number>();
    for (const pid of pids) {
      const ms = processCpuMs(pid);
      if (ms !== null) map.set(pid, ms);
    }
    return map;
  };
  subject.run = async (ms: number, recorder: Recorder | null) => {
    if (!recorder) return run(ms, recorder);
    const before = serverCpu(await backends());
    const cpu = process.cpuUsage();
    await run(ms, recorder);
    const used = process.cpuUsage(cpu);
    totals.clientMs += (used.user + used.system) / 1000;
    const after = serverCpu(await backends());
    if (after.size === 0) totals.serverMs = null;
    if (totals.serverMs !== null) for (const [pid, value] of after) totals.serverMs += value - (before.get(pid) ?? value);
  };
  return totals;
}

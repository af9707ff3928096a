/**
 * V8's CPU profiler in this process, on for the measured part only: unlike `node --cpu-prof`,
 * no module loading, setup or warm-up in its shares.
 *
 * - `profiled(work)`: runs `work` with the profiler on when the PROFILE environment variable
 *   names a file, and writes the profile there (for `hotspots.ts`), sampled every 50 µs.
 * - `startProfiler(intervalUs)`: the profiler on until `stop()`, which answers the profile, for
 *   a tool that reads the samples itself (`../transport/timeline.ts`). Sample timestamps are
 *   µs of the monotonic clock `process.hrtime` reads.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";

/** The parts of a `.cpuprofile` the tools here read. */
export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>;
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export async function startProfiler(intervalUs: number): Promise<{ stop(): Promise<CpuProfile> }> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: intervalUs });
  await session.post("Profiler.start");
  return {
    async stop() {
      const { profile } = await session.post("Profiler.stop");
      session.disconnect();
      return profile as unknown as CpuProfile;
    },
  };
}

export async function profiled<T>(work: () => Promise<T>): Promise<T> {
  const file = process.env.PROFILE;
  if (!file) return work();
  const profiler = await startProfiler(50);
  try {
    return await work();
  } finally {
    writeFileSync(file, JSON.stringify(await profiler.stop()));
  }
}

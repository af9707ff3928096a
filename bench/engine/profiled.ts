/**
 * `profiled(work)`: runs `work` with V8's CPU profiler on when the PROFILE environment variable
 * names a file, and writes the profile there (for `hotspots.ts`). Unlike `node --cpu-prof`, the
 * profile covers the measured part only: no module loading, setup or warm-up in its shares.
 * Samples are taken every 50 µs.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";

export async function profiled<T>(work: () => Promise<T>): Promise<T> {
  const file = process.env.PROFILE;
  if (!file) return work();
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 50 });
  await session.post("Profiler.start");
  try {
    return await work();
  } finally {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  }
}

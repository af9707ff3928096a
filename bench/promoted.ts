/**
 * What a process moves into V8's old generation, and where it was allocated: loaded before any
 * benchmark with `--import`, it runs V8's sampling heap profiler keeping only the objects that
 * outlived the young generation (those a full collection frees, and those still alive at exit),
 * and at exit prints the allocation sites with the most such bytes, each with its call path:
 *
 *   node --import tsx --import ./bench/compiled.mjs --import ./bench/promoted.ts \
 *     bench/engine/profile.ts lookup normal 3
 *
 * Why it exists: young objects are nearly free, and objects that reach the old generation cost
 * a copy on the way and a full collection to free. A site whose objects are retained for a
 * while (by a cache, an overlay, a subscription) is also one V8 may switch to allocating in the
 * old generation from then on ("pretenuring"), and then every object it makes dies there. The
 * read cache did that to every query's request and every scan's entries (`readCache.ts`,
 * `keptValue`); this is how it showed. Compare a run with `--no-allocation-site-pretenuring`
 * to tell what pretenuring costs a benchmark.
 *
 * It samples the whole process, a benchmark's loading included (a timer to start later would
 * not fire: a benchmark's loop of awaits never yields to the event loop's timers), so read the
 * sites of the work measured. `PROMOTED_TOP` sets how many are printed (default 15). Sampling
 * slows the process: use it to find where objects go, not to measure.
 */
import { Session } from "node:inspector";

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const session = new Session();
session.connect();
const post = (method: string, params: object = {}) =>
  new Promise<void>((resolve, reject) => session.post(method, params, (error) => (error ? reject(error) : resolve())));

let started = false;
await post("HeapProfiler.enable");
await post("HeapProfiler.startSampling", { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false });
started = true;

const frameName = (node: ProfileNode) => {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^.*\/(src|dist|bench|node_modules)\//, "$1/");
  return `${functionName || "(anonymous)"}${file ? ` ${file}:${lineNumber + 1}` : ""}`;
};

process.on("exit", () => {
  if (!started) return;
  // The inspector answers synchronously within a session on the main thread.
  session.post("HeapProfiler.stopSampling", (error, result) => {
    if (error) return;
    const bySite = new Map<string, number>();
    let total = 0;
    const walk = (node: ProfileNode, path: string[]) => {
      const here = [...path, frameName(node)];
      if (node.selfSize > 0) {
        total += node.selfSize;
        const site = here.slice(-4).reverse().join(" < "); // the allocating function first, then its callers
        bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
      }
      for (const child of node.children) walk(child, here);
    };
    walk((result as { profile: { head: ProfileNode } }).profile.head, []);
    const top = Number(process.env.PROMOTED_TOP ?? 15);
    const lines = [`Objects that reached the old generation: ${(total / 1e6).toFixed(1)} MB sampled (bench/promoted.ts)`];
    for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      lines.push(`${((100 * bytes) / total).toFixed(1).padStart(5)}%  ${site}`);
    }
    process.stderr.write(`${lines.join("\n")}\n`);
  });
});

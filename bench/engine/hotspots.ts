/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): the functions with the most self
 * time, and self time per source file. Several files (one per thread) are added up.
 * Usage: node --import tsx bench/engine/hotspots.ts FILE... (HOTSPOTS_TOP=N rows, default 25)
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const paths = process.argv.slice(2);
const top = Number(process.env.HOTSPOTS_TOP ?? 25);
if (paths.length === 0) throw new Error("usage: hotspots.ts FILE.cpuprofile...");

const shortUrl = (url: string) => url.replace(/^file:\/\//, "").replace(/^.*\/main\//, "").replace(/^.*node_modules\//, "nm:");
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
let total = 0;
for (const path of paths) {
  const profile = JSON.parse(readFileSync(path, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  profile.samples.forEach((id, i) => {
    const micros = profile.timeDeltas[i] ?? 0;
    total += micros;
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const file = shortUrl(url) || "(native/vm)";
    const name = `${functionName || "(anonymous)"}  ${file}${url ? `:${lineNumber + 1}` : ""}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
    byFile.set(file, (byFile.get(file) ?? 0) + micros);
  });
}
const print = (title: string, entries: Map<string, number>) => {
  console.log(`\n${title} (total ${(total / 1000).toFixed(0)} ms)`);
  for (const [name, micros] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((100 * micros) / total).toFixed(1).padStart(5)}%  ${name}`);
  }
};
print("self time by function", byFunction);
print("self time by file", byFile);

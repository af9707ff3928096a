/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): the functions with the most self
 * time, self time per source file, and the project's functions (under src/, or dist/ when
 * profiling the compiled package) with the most total time (self + callees; a recursive
 * function is counted once per sample). Several files (one per thread) are added up. Paths
 * are shown relative to this checkout, wherever it is.
 * Usage: node --import tsx bench/engine/hotspots.ts FILE... (HOTSPOTS_TOP=N rows, default 25)
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import type { CpuProfile } from "./profiled.js";

type ProfileNode = CpuProfile["nodes"][number];

const paths = process.argv.slice(2);
const top = Number(process.env.HOTSPOTS_TOP ?? 25);
if (paths.length === 0) throw new Error("usage: hotspots.ts FILE.cpuprofile...");

/** This checkout's root (wherever it lives: /work/main, a worktree, a CI clone). */
const root = fileURLToPath(new URL("../../", import.meta.url));
const shortUrl = (url: string) => {
  const path = url.replace(/^file:\/\//, "");
  if (path.includes("/node_modules/")) return path.replace(/^.*node_modules\//, "nm:");
  return path.startsWith(root) ? path.slice(root.length) : path;
};
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
const nameOf = (node: ProfileNode) => {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = shortUrl(url) || "(native/vm)";
  return { file, name: `${functionName || "(anonymous)"}  ${file}${url ? `:${lineNumber + 1}` : ""}` };
};
for (const path of paths) {
  const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  profile.samples.forEach((id, i) => {
    const micros = profile.timeDeltas[i] ?? 0;
    total += micros;
    const { file, name } = nameOf(byId.get(id)!);
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
    byFile.set(file, (byFile.get(file) ?? 0) + micros);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = nameOf(byId.get(at)!);
      // The project's own code: its sources (under tsx) or the compiled package (bench/compiled.mjs).
      if (!(frame.file.startsWith("src/") || frame.file.startsWith("dist/")) || seen.has(frame.name)) continue;
      seen.add(frame.name);
      inclusive.set(frame.name, (inclusive.get(frame.name) ?? 0) + micros);
    }
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
print("total time (self + callees) of the project's functions (src/ or dist/)", inclusive);

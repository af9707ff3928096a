/**
 * Runs the benchmarks against the compiled package (`dist/`, what `npm run build` makes and
 * what an app gets from npm) instead of the TypeScript sources under tsx. tsx compiles with
 * esbuild's `keepNames`, which wraps every function created at run time in a naming helper:
 * about a sixth of the engine's time in a lookup profile, a cost no user pays.
 *
 * Loaded with `--import` after tsx: a resolve hook that sends every import of `src/**.js` to the
 * same file under `dist/`. Benchmark code and floors stay TypeScript under tsx.
 */
import { register } from "node:module";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = new URL("../", import.meta.url);
if (!existsSync(fileURLToPath(new URL("dist/engine/engine.js", root)))) {
  throw new Error("bench/compiled.mjs: dist/ is missing; run `npm run build` first (the bench scripts do).");
}
// The engine carries its sandbox's context through a native addon that `npm install` builds
// (src/engine/continuationContext.ts); without it, on Node 20-23, it falls back to
// AsyncLocalStorage, whose promise hooks slow every promise in the process (15-20% of an insert
// mutation). A checkout that was never installed (a `git worktree` for comparing commits, with
// node_modules linked in) has no addon: say so in every benchmark's header, where a figure
// measured that way cannot be mistaken for one measured the way users run Walk-in.
const nodeMajor = Number(process.versions.node.split(".")[0]);
const addonMissing = nodeMajor < 24 && !existsSync(fileURLToPath(new URL("build/Release/walkin_context.node", root)));
if (addonMissing) {
  process.emitWarning("bench/compiled.mjs: build/Release/walkin_context.node is missing, so the engine falls back to AsyncLocalStorage and every promise pays for its hooks. Run `npm rebuild` (or `npm install`) in this checkout before comparing figures.");
}
process.env.WALKIN_BENCH_CODE = addonMissing ? "compiled (dist/), WITHOUT the native continuation context (slower: see the warning)" : "compiled (dist/)";
register(new URL("./compiledHooks.mjs", import.meta.url), { data: { src: new URL("src/", root).href, dist: new URL("dist/", root).href } });

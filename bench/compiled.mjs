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
process.env.WALKIN_BENCH_CODE = "compiled (dist/)";
register(new URL("./compiledHooks.mjs", import.meta.url), { data: { src: new URL("src/", root).href, dist: new URL("dist/", root).href } });

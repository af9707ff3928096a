/**
 * Which imports of a functions load are shared with the running CLI instead of evaluated anew.
 *
 * A load's tsx namespace marks every URL it resolves (`?tsx-namespace=…`), which makes every
 * module fresh, dependencies included. For the app's own files that is the point (edits are
 * seen). For Walk-in itself it is wrong: `walkin/server` evaluated again is a second copy whose
 * classes the engine (loaded once, with the CLI) does not recognise. For packages it is waste:
 * a heavy SDK re-evaluated on every save, its timers and sockets leaked. So a resolve hook,
 * registered after the load's tsx hook (hooks registered later run first), takes the mark off
 * URLs inside Walk-in's own `src/` and `dist/` and JavaScript files inside `node_modules/`.
 *
 * Hooks cannot be removed in Node 20; each load adds one that only acts on its own namespace.
 */
import { register } from "node:module";
import { pathToFileURL } from "node:url";
import { register as registerTsx } from "tsx/esm/api";

const HOOKS = `
let mark;
let sharedPrefixes;
export function initialize(data) {
  mark = data.namespace;
  sharedPrefixes = data.sharedPrefixes;
}
export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  if (!result.url.startsWith("file:")) return result;
  const url = new URL(result.url);
  if (url.searchParams.get("tsx-namespace") !== mark) return result;
  const shared =
    sharedPrefixes.some((prefix) => url.pathname.startsWith(prefix)) ||
    /\\/node_modules\\/.*\\.(js|mjs|cjs|json)$/.test(url.pathname);
  if (!shared) return result;
  url.searchParams.delete("tsx-namespace");
  return { ...result, url: url.href };
}
`;

// src/cli/ and dist/cli/ both sit two levels below the package root.
const PACKAGE_ROOT = new URL("../../", import.meta.url);
const SHARED_PREFIXES = ["src/", "dist/"].map((dir) => new URL(dir, PACKAGE_ROOT).pathname);

/** Set by bin/walkin.js when it registered tsx for the whole process (the CLI runs from src/). */
const TSX_REGISTERED = Symbol.for("walkin.cli.tsxRegistered");

/** Makes loads in tsx namespace `namespace` share Walk-in's modules and packages' JavaScript. */
export function shareModules(namespace: string): void {
  // Running from src/, the shared Walk-in modules are .ts files: once the mark is off they need
  // a process-wide TypeScript loader (bin/walkin.js registers one; other hosts get one here).
  const global = globalThis as { [TSX_REGISTERED]?: boolean };
  if (import.meta.url.endsWith(".ts") && !global[TSX_REGISTERED]) {
    registerTsx();
    global[TSX_REGISTERED] = true;
  }
  register(`data:text/javascript,${encodeURIComponent(HOOKS)}`, {
    parentURL: pathToFileURL("./").href,
    data: { namespace, sharedPrefixes: SHARED_PREFIXES },
  });
}

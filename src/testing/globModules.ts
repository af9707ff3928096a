/**
 * `walkinTest(schema, import.meta.glob("./**\/*.ts"))`: the module map a bundler's glob gives
 * (file path → loader), turned into the module map the engine takes (module path → exports),
 * the way `convexTest` accepts it. Files are named relative to the functions directory, found as
 * the folder holding `_generated/` (or `schema.ts`); codegen's rules pick the function modules,
 * so tests, `test.helpers.ts`, the schema and generated files are left out.
 */
import { modulePathOf } from "../cli/codegen.js";
import type { Modules } from "../engine/functions.js";

/** What `import.meta.glob(pattern)` returns: a loader per file, keyed by its path. */
export type GlobModules = Record<string, () => Promise<unknown>>;

/** Whether `modules` is a glob's file → loader map rather than a module path → exports map. */
export function isGlobModules(modules: object): modules is GlobModules {
  const entries = Object.entries(modules);
  return entries.length > 0 && entries.every(([key, value]) => typeof value === "function" && /\.[cm]?[jt]sx?$/.test(key));
}

/** Loads the function modules of a glob, keyed by module path (`"messages"`, `"lib/users"`). */
export async function loadGlobModules(glob: GlobModules): Promise<Modules> {
  const root = functionsRoot(Object.keys(glob));
  const modules: Modules = {};
  for (const [file, load] of Object.entries(glob)) {
    if (!file.startsWith(root)) continue;
    const modulePath = modulePathOf(file.slice(root.length));
    if (modulePath === null || modulePath === "schema") continue;
    modules[modulePath] = (await load()) as Record<string, unknown>;
  }
  return modules;
}

/** The prefix every module key starts with: the folder of `_generated/`, else of `schema.*`. */
function functionsRoot(files: string[]): string {
  for (const file of files) {
    const at = file.lastIndexOf("_generated/");
    if (at >= 0) return file.slice(0, at);
  }
  const schema = files.find((file) => /(^|\/)schema\.[cm]?[jt]s$/.test(file));
  if (schema) return schema.slice(0, schema.lastIndexOf("/") + 1);
  return files.every((file) => file.startsWith("./")) ? "./" : "";
}

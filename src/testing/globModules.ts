/**
 * `walkinTest(schema, import.meta.glob("./**\/*.ts"))`: the module map a bundler's glob gives
 * (file path → loader), turned into the module map the engine takes (module path → exports),
 * the way `convexTest` accepts it. Files are named relative to the functions directory, found as
 * the folder holding `_generated/` (or `schema.ts`).
 *
 * Function modules (codegen's rules) are loaded when the backend opens, so hooks such as auth's
 * are found. Any other file of the glob (a test file that defines functions, `test.helpers.ts`)
 * is loaded only when a call names it, as convex-test does: loading every test file up front
 * would run their test declarations inside the current test.
 */
import { modulePathOf } from "../cli/codegen.js";
import type { Modules } from "../engine/functions.js";

/** What `import.meta.glob(pattern)` returns: a loader per file, keyed by its path. */
export type GlobModules = Record<string, () => Promise<unknown>>;

const SOURCE = /\.[cm]?[jt]sx?$/;

/** Whether `modules` is a glob's file → loader map rather than a module path → exports map. */
export function isGlobModules(modules: object): modules is GlobModules {
  const entries = Object.entries(modules);
  return entries.length > 0 && entries.every(([key, value]) => typeof value === "function" && SOURCE.test(key));
}

/** A glob's modules: the function modules loaded, the others loadable by module path. */
export class GlobModuleLoader {
  /** Handed to the engine, which looks modules up in it by reference: later loads land here. */
  readonly modules: Modules = {};
  private readonly eager = new Map<string, () => Promise<unknown>>();
  private readonly lazy = new Map<string, () => Promise<unknown>>();

  constructor(glob: GlobModules) {
    const root = functionsRoot(Object.keys(glob));
    for (const [file, load] of Object.entries(glob)) {
      if (!file.startsWith(root)) continue;
      const relative = file.slice(root.length);
      const modulePath = modulePathOf(relative);
      if (modulePath === "schema" || relative.startsWith("_generated/")) continue;
      if (modulePath !== null) this.eager.set(modulePath, load);
      else this.lazy.set(relative.replace(SOURCE, ""), load);
    }
  }

  /** Loads the function modules. */
  async loadFunctionModules(): Promise<Modules> {
    for (const [modulePath, load] of this.eager) this.modules[modulePath] = (await load()) as Record<string, unknown>;
    return this.modules;
  }

  /**
   * Loads the module a function path (`"customFunctions.test:add"`) names, if the glob has it;
   * whether that loaded it now (false when it was loaded already, or is no file of the glob).
   */
  async loadFor(functionPath: string): Promise<boolean> {
    const modulePath = functionPath.includes(":") ? functionPath.slice(0, functionPath.lastIndexOf(":")) : functionPath;
    const load = this.lazy.get(modulePath);
    if (!load || Object.hasOwn(this.modules, modulePath)) return false;
    this.modules[modulePath] = (await load()) as Record<string, unknown>;
    return true;
  }
}

/** The prefix every module key starts with: the folder of `_generated/`, else of `schema.*`. */
function functionsRoot(files: string[]): string {
  for (const file of files) {
    const at = file.lastIndexOf("_generated/");
    if (at >= 0) return file.slice(0, at);
  }
  const schemas = files.filter((file) => /(^|\/)schema\.[cm]?[jt]s$/.test(file)).sort((a, b) => a.length - b.length);
  if (schemas[0]) return schemas[0].slice(0, schemas[0].lastIndexOf("/") + 1);
  return files.every((file) => file.startsWith("./")) ? "./" : "";
}

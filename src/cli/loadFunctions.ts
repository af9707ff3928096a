/**
 * Loads a functions directory: the schema and every module's exports, compiled on the fly by
 * tsx, fresh on every call so that `walkin dev` sees edits.
 *
 * Each load gets its own tsx namespace (what `tsImport` does per call): every file of the app
 * the load imports is evaluated anew, while modules of one load share one instance of their
 * common imports (a helper imported by two modules is evaluated once). Walk-in itself and
 * packages' JavaScript are shared with the CLI across loads (see sharedModules.ts).
 * A failure never throws: it comes back as a `LoadFailure` naming the file, line and column.
 */
import { access, readFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { register } from "tsx/esm/api";
import { isRegisteredFunction } from "../server/functions.js";
import type { SchemaDefinition } from "../server/schema.js";
import type { Modules } from "../engine/functions.js";
import { findModules, listFunctionFiles, type ModuleScan } from "./codegen.js";
import { describeLoadError, type LoadFailure } from "./loadErrors.js";
import { shareModules } from "./sharedModules.js";

export type { LoadFailure } from "./loadErrors.js";

export interface LoadedFunctions {
  /** The default export of `schema.ts`, or null without one. */
  schema: SchemaDefinition<any> | null;
  /** Module path (`"messages"`, `"lib/users"`) → the module's exports. */
  modules: Modules;
  /** How many registered functions the modules export. */
  functionCount: number;
  /**
   * Switches off this load's loader hooks. Call it once nothing runs these modules any more
   * (after the engine using them closed): a later dynamic `import()` from them would fail.
   */
  release(): Promise<void>;
}

export type LoadResult = { ok: true; functions: LoadedFunctions } | { ok: false; failure: LoadFailure };

/**
 * Imports the schema and every module of `dir`. Pass the `scan` codegen made to skip listing
 * the directory again.
 *
 * @example
 * const result = await loadFunctions("functions");
 * if (result.ok) await Engine.open({ storage, schema: result.functions.schema, modules: result.functions.modules });
 * else createOutput({ stdout: process.stdout, stderr: process.stderr }).loadFailure(result.failure);
 */
export async function loadFunctions(dir: string, scan?: ModuleScan): Promise<LoadResult> {
  const root = path.resolve(dir);
  const { modules: found, hasSchema } = scan ?? findModules(await listFunctionFiles(root));
  // Stack traces of errors thrown by the modules should point at their TypeScript lines.
  process.setSourceMapsEnabled(true);
  const namespace = `walkin-${process.pid}-${++loads}`;
  const loader = register({ namespace });
  shareModules(namespace);
  let current = "";
  try {
    const importFile = async (file: string): Promise<Record<string, unknown>> => {
      current = path.join(root, file);
      return (await loader.import(pathToFileURL(current).href, import.meta.url)) as Record<string, unknown>;
    };
    let schema: SchemaDefinition<any> | null = null;
    if (hasSchema) {
      const file = (await exists(path.join(root, "schema.ts"))) ? "schema.ts" : "schema.js";
      const exported = (await importFile(file))["default"];
      if (!isSchema(exported)) {
        await loader.unregister();
        return {
          ok: false,
          failure: {
            file: path.join(root, file),
            line: null,
            column: null,
            message: `${file} must \`export default defineSchema({ ... })\` (defineSchema comes from walkin/server).`,
            source: null,
          },
        };
      }
      schema = exported;
    }
    const modules: Modules = {};
    let functionCount = 0;
    for (const m of found) {
      const exports = await importFile(m.file);
      modules[m.path] = exports;
      functionCount += Object.values(exports).filter(isRegisteredFunction).length;
    }
    return { ok: true, functions: { schema, modules, functionCount, release: () => loader.unregister() } };
  } catch (error) {
    await loader.unregister();
    return { ok: false, failure: await describeLoadError(error, { root, current, packageHint: await packageTypeHint(root) }) };
  }
}

let loads = 0;

function isSchema(value: unknown): value is SchemaDefinition<any> {
  return typeof value === "object" && value !== null && typeof (value as { tables?: unknown }).tables === "object";
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** A hint when the nearest package.json does not make `.ts` files ES modules. */
async function packageTypeHint(dir: string): Promise<string | null> {
  for (let at = dir; ; at = path.dirname(at)) {
    const text = await readFile(path.join(at, "package.json"), "utf8").catch(() => null);
    if (text !== null) {
      try {
        if ((JSON.parse(text) as { type?: unknown }).type === "module") return null;
      } catch {
        return null;
      }
      return `${path.join(at, "package.json")} has no "type": "module"; functions are ES modules, so add it.`;
    }
    if (path.dirname(at) === at) return `No package.json found above ${dir}: functions are ES modules, so add one with "type": "module".`;
  }
}

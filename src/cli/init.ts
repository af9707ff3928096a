/**
 * `walkin init [folder]`: writes the getting-started app (a schema, a query and a mutation,
 * a React page on Vite) into a folder, new or existing, and adds what it needs to
 * package.json. Files that exist already are kept, never overwritten, and so are the
 * package.json fields the app has set: running it twice changes nothing.
 *
 * The template lives in `templates/app/` of the package (shipped with it); `gitignore` is
 * stored without its dot because npm leaves `.gitignore` files out of packages.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The root of this walkin package (src/cli/ and dist/cli/ are both two levels below it). */
const PACKAGE_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TEMPLATE = path.join(PACKAGE_ROOT, "templates", "app");
const RENAMED: Record<string, string> = { gitignore: ".gitignore" };

export interface InitResult {
  /** Files written, relative to the folder. */
  created: string[];
  /** Files that existed and were kept as they were. */
  kept: string[];
  /** package.json fields added (`scripts.dev`, `dependencies.react`…). */
  addedToPackageJson: string[];
  /** package.json's `dev` script afterwards: the app's own, kept, may not start Walk-in. */
  devScript: string;
}

export class InitError extends Error {}

/**
 * Scaffolds the app into `dir`.
 *
 * @example
 * const { created } = await initApp("my-app");
 */
export async function initApp(dir: string): Promise<InitResult> {
  const target = path.resolve(dir);
  try {
    await mkdir(target, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST" || code === "ENOTDIR") {
      throw new InitError(`${dir} is a file, not a folder. Name a new folder (walkin init my-app), or run walkin init in your app's folder.`);
    }
    throw error;
  }
  const templateFiles = await listFiles(TEMPLATE);
  // Refusals first, so that a refusal leaves the folder as it was: a file of the user's where
  // the app needs a folder, then package.json.
  for (const file of templateFiles) {
    for (let folder = path.dirname(file); folder !== "."; folder = path.dirname(folder)) {
      if ((await stat(path.join(target, folder)).catch(() => null))?.isFile()) {
        throw new InitError(`${path.join(dir, folder)} is a file, but the app needs a folder there. Rename it and run walkin init again.`);
      }
    }
  }
  const { added, devScript } = await updatePackageJson(target);
  const result: InitResult = { created: [], kept: [], addedToPackageJson: added, devScript };
  for (const file of templateFiles) {
    const name = path.join(path.dirname(file), RENAMED[path.basename(file)] ?? path.basename(file));
    const destination = path.join(target, name);
    if (existsSync(destination)) {
      result.kept.push(name);
      continue;
    }
    await mkdir(path.dirname(destination), { recursive: true });
    await copyFile(path.join(TEMPLATE, file), destination);
    result.created.push(name);
  }
  return result;
}

async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const relative = path.join(prefix, entry.name);
    if (entry.isDirectory()) files.push(...(await listFiles(dir, relative)));
    else files.push(relative);
  }
  return files.sort();
}

type PackageJson = Record<string, unknown> & {
  type?: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  allowScripts?: Record<string, boolean>;
};

async function updatePackageJson(target: string): Promise<{ added: string[]; devScript: string }> {
  const file = path.join(target, "package.json");
  let pkg: PackageJson;
  let existed = true;
  try {
    pkg = JSON.parse(await readFile(file, "utf8")) as PackageJson;
    if (typeof pkg !== "object" || pkg === null || Array.isArray(pkg)) {
      throw new InitError(`${file} does not hold a JSON object. Fix it, or remove it to start afresh.`);
    }
  } catch (error) {
    if (error instanceof InitError) throw error;
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new InitError(`${file} is not valid JSON (${(error as Error).message}). Fix it, or remove it to start afresh.`);
    }
    existed = false;
    pkg = { name: packageName(path.basename(target)), private: true, version: "0.0.0" };
  }
  if (pkg.type === "commonjs") {
    throw new InitError(`${file} says "type": "commonjs", but functions are ES modules. Set "type": "module" (or remove the field) and run walkin init again.`);
  }
  const added: string[] = [];
  const ensure = (section: string, key: string, value: unknown) => {
    const record = (pkg[section] ??= {}) as Record<string, unknown>;
    if (record[key] !== undefined) return;
    record[key] = value;
    added.push(`${section}.${key}`);
  };
  if (pkg.type === undefined) {
    pkg.type = "module";
    added.push("type");
  }
  ensure("scripts", "dev", 'walkin dev --run "vite --port 5173"');
  ensure("scripts", "build", "walkin codegen && tsc && vite build");
  ensure("scripts", "start", "walkin start --static dist");
  ensure("scripts", "typecheck", "tsc");
  if (pkg.dependencies?.["walkin"] === undefined && pkg.devDependencies?.["walkin"] === undefined) {
    ensure("dependencies", "walkin", await walkinSpec(target));
  }
  ensure("dependencies", "react", "^19.0.0");
  ensure("dependencies", "react-dom", "^19.0.0");
  ensure("devDependencies", "@types/react", "^19.0.0");
  ensure("devDependencies", "@types/react-dom", "^19.0.0");
  ensure("devDependencies", "typescript", "^5.9.0");
  ensure("devDependencies", "vite", "^8.0.0");
  // npm asks packages with install scripts to be allowed: these two ship native code, and
  // walkin itself builds with `prepare` when it is installed from a folder or a git URL.
  ensure("allowScripts", "better-sqlite3", true);
  ensure("allowScripts", "esbuild", true);
  ensure("allowScripts", "walkin", true);
  if (added.length > 0 || !existed) await writeFile(file, `${JSON.stringify(pkg, null, 2)}\n`);
  return { added, devScript: String(pkg.scripts?.["dev"]) };
}

/**
 * How the new app depends on walkin: the published version, or, when this CLI runs from a
 * clone of the repository (not from a node_modules folder), that folder.
 */
async function walkinSpec(target: string): Promise<string> {
  const { version } = JSON.parse(await readFile(path.join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string };
  if (PACKAGE_ROOT.split(path.sep).includes("node_modules")) return `^${version}`;
  const relative = path.relative(target, PACKAGE_ROOT) || ".";
  return `file:${relative.split(path.sep).join("/")}`;
}

/** A valid npm package name made from a folder name. */
function packageName(folder: string): string {
  return folder.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[._-]+|-+$/g, "") || "walkin-app";
}

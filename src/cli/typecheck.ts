/**
 * Type checking for `walkin dev`: after each version of the functions is served, the project's
 * own `tsc` runs in a child process (`--noEmit`, incremental) with the tsconfig.json nearest to
 * the functions directory, and the errors in `functions/` are printed as `file:line:column`
 * with a code frame. The functions are loaded by stripping types, so a type error never stops
 * them from being served: the check only reports, and says so once the errors are gone.
 *
 * Runs never overlap: a change that arrives during a check kills it (its result would describe
 * code that no longer exists) and starts a new one. Errors outside `functions/` (the front
 * end's) are left to the front end's tooling.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import type { LoadFailure } from "./loadErrors.js";
import type { Output } from "./output.js";

/** One diagnostic of `tsc --pretty false`: `functions/a.ts(7,5): error TS2322: Type …`. */
const DIAGNOSTIC = /^(.+?)\((\d+),(\d+)\): error (TS\d+): (.*)$/;

export interface TscDiagnostic {
  file: string;
  line: number;
  column: number;
  message: string;
}

/**
 * Parses `tsc --pretty false` output (paths relative to `cwd`); a message's continuation lines
 * (indented) stay with it.
 */
export function parseTscOutput(text: string, cwd: string): TscDiagnostic[] {
  const errors: TscDiagnostic[] = [];
  for (const line of text.split(/\r?\n/)) {
    const match = DIAGNOSTIC.exec(line);
    if (match) {
      const [, file, row, column, code, message] = match;
      errors.push({ file: path.resolve(cwd, file!), line: Number(row), column: Number(column), message: `${message} (${code})` });
    } else if (/^\s+\S/.test(line) && errors.length > 0) {
      errors[errors.length - 1]!.message += `\n${line.trim()}`;
    }
  }
  return errors;
}

/** The tsconfig.json in `dir` or the nearest folder above it, or null. */
export function findTsconfig(dir: string): string | null {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const candidate = path.join(current, "tsconfig.json");
    if (existsSync(candidate)) return candidate;
    if (path.dirname(current) === current) return null;
  }
}

/** Whether `tsconfig` only references other projects (`"files": []`, no `include`). */
function isSolution(tsconfig: string): boolean {
  try {
    const config = JSON.parse(readFileSync(tsconfig, "utf8")) as { files?: unknown; include?: unknown; references?: unknown };
    return Array.isArray(config.files) && config.files.length === 0 && config.include === undefined && Array.isArray(config.references) && config.references.length > 0;
  } catch {
    return false; // comments, or unreadable: tsc -p says what it thinks
  }
}

/**
 * TypeScript's `tsc` as the app resolves it (its own version first), else as walkin does: the
 * `bin` its package.json names. Not `typescript/bin/tsc` by name: TypeScript 7's package
 * exports only listed paths, that one not among them (its package.json is), so resolving it
 * failed and an app with TypeScript installed was told to install it.
 */
export function findTsc(appDir: string): string | null {
  for (const from of [path.join(appDir, "package.json"), import.meta.url]) {
    try {
      const manifest = createRequire(from).resolve("typescript/package.json");
      const { bin } = JSON.parse(readFileSync(manifest, "utf8")) as { bin?: string | Record<string, string> };
      // Where the bin says, else where every TypeScript so far has kept it.
      const tsc = path.resolve(path.dirname(manifest), (typeof bin === "string" ? bin : bin?.["tsc"]) ?? "bin/tsc");
      if (existsSync(tsc)) return tsc;
    } catch {
      // try the next place
    }
  }
  return null;
}

/**
 * Runs `tsc` for the functions directory in the background and prints what it finds.
 *
 * @example
 * const checker = new FunctionsTypeChecker(path.resolve("functions"), output);
 * checker.check();   // after each reload; cancels a check still running
 * checker.cancel();  // on shutdown
 */
export class FunctionsTypeChecker {
  private child: ChildProcess | null = null;
  /** null before the first check. */
  private hadErrors: boolean | null = null;
  private warned = false;
  /** Bumped by every `check()`, so that a killed run's exit is ignored. */
  private run = 0;

  /** @param dir the functions directory (absolute) */
  constructor(
    private readonly dir: string,
    private readonly output: Output,
  ) {}

  /** Starts a check of the current files, cancelling one in progress. */
  check(): void {
    this.cancel();
    const tsconfig = findTsconfig(this.dir);
    const tsc = findTsc(path.dirname(tsconfig ?? this.dir));
    if (!tsconfig || !tsc) {
      if (!this.warned) {
        this.output.info(this.output.style("dim", tsconfig ? "  Type errors are not checked: install typescript (npm install -D typescript)." : "  Type errors are not checked: there is no tsconfig.json in or above the functions directory."));
        this.warned = true;
      }
      return;
    }
    const cwd = path.dirname(tsconfig);
    const run = ++this.run;
    // tsc's incremental state, where build tools keep their caches.
    const buildInfo = path.join(cwd, "node_modules", ".cache", "walkin", "typecheck.tsbuildinfo");
    // A solution-style tsconfig.json (Vite's templates: `"files": []` and `references`) has no
    // files of its own: `tsc -p` would check nothing and report no errors. Build its projects.
    const args = isSolution(tsconfig)
      ? [tsc, "-b", tsconfig, "--noEmit", "--pretty", "false"]
      : [tsc, "-p", tsconfig, "--noEmit", "--pretty", "false", "--incremental", "--tsBuildInfoFile", buildInfo];
    const child = spawn(process.execPath, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    let text = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
    child.on("error", () => {});
    child.on("close", (code) => {
      if (run !== this.run) return;
      this.child = null;
      void this.report(code, parseTscOutput(text, cwd), text);
    });
  }

  /** Stops a check in progress (on reload and on shutdown). */
  cancel(): void {
    this.run++;
    this.child?.kill();
    this.child = null;
  }

  private async report(code: number | null, all: TscDiagnostic[], text: string): Promise<void> {
    const inFunctions = all.filter((e) => !path.relative(this.dir, e.file).startsWith(".."));
    if (code !== 0 && all.length === 0) {
      // tsc failed without diagnostics (a broken tsconfig.json…): show what it said.
      this.output.warn(`Type check failed: ${text.trim() || `tsc exited with ${code}`}`);
      return;
    }
    if (inFunctions.length === 0) {
      // Said after the first check and after errors are fixed, not after every save.
      if (this.hadErrors !== false) this.output.success("No type errors in the functions");
      this.hadErrors = false;
      return;
    }
    this.hadErrors = true;
    for (const error of inFunctions) this.output.loadFailure(await withSource(error));
    const count = inFunctions.length;
    this.output.info(this.output.style("dim", `  ${count} type error${count === 1 ? "" : "s"} in the functions: they still run (types are stripped), but fix ${count === 1 ? "it" : "them"} before shipping.`));
  }
}

async function withSource(error: TscDiagnostic): Promise<LoadFailure> {
  const lines = await readFile(error.file, "utf8").then((t) => t.split(/\r?\n/), () => []);
  return { ...error, source: lines[error.line - 1] ?? null };
}

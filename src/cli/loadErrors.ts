/**
 * Turns whatever importing a functions module threw into a `LoadFailure`: the file, line and
 * column to blame and a one-line message. Three shapes occur:
 *  - esbuild transform errors (syntax): `"/abs/a.ts:2:18: ERROR: Unexpected \";\""` in the message;
 *  - link errors from Node (a missing export): the stack starts with `"/abs/a.ts:1"` and a caret
 *    line under the source;
 *  - errors thrown while a module runs: the first stack frame inside the functions directory
 *    (else the first outside node_modules), and for a missing import the importing file, with
 *    the line found by searching it for the specifier.
 */
import { readFile } from "node:fs/promises";
import { findSourceMap } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface LoadFailure {
  /** Absolute path of the file to blame, when one is known. */
  file: string | null;
  /** 1-based. */
  line: number | null;
  /** 1-based. */
  column: number | null;
  message: string;
  /** The source line at `line`, for a code frame. */
  source: string | null;
}

interface Context {
  /** The functions directory (absolute). */
  root: string;
  /** The file being imported when the error happened. */
  current: string;
  /** Appended to the message (e.g. a missing `"type": "module"`). */
  packageHint?: string | null;
}

type Location = Pick<LoadFailure, "file" | "line" | "column">;

export async function describeLoadError(error: unknown, context: Context): Promise<LoadFailure> {
  const err = error instanceof Error ? error : new Error(String(error));
  const stack = typeof err.stack === "string" ? err.stack : "";
  let message = err.name && err.name !== "Error" && err.name !== "TransformError" ? `${err.name}: ${err.message}` : err.message;
  let location: Location | null = null;

  const transform = /^(.+?):(\d+):(\d+): ERROR: (.+)$/m.exec(err.message);
  const linkHeader = /^((?:file:\/\/)?\/[^\n]*?):(\d+)\n([^\n]*)\n( *)\^/.exec(stack);
  const missing = /Cannot find (?:module|package) '([^']+)' imported from (\S+)/.exec(err.message);
  if (transform) {
    location = { file: toPath(transform[1]!), line: Number(transform[2]), column: Number(transform[3]) + 1 };
    message = transform[4]!;
  } else if (linkHeader) {
    location = original(linkHeader[1]!, Number(linkHeader[2]), linkHeader[4]!.length + 1);
  } else if (missing) {
    const importer = toPath(missing[2]!);
    const target = missing[1]!;
    const needle = path.isAbsolute(target) ? path.basename(target).replace(/\.[cm]?[jt]sx?$/, "") : target;
    location = await findInFile(importer, needle);
    message = path.isAbsolute(target)
      ? `Cannot find module ${path.relative(process.cwd(), target)}.`
      : `Cannot find package "${target}". Is it installed?`;
  } else {
    location = frameLocation(stack, context.root);
  }
  location ??= { file: context.current || null, line: null, column: null };
  if (context.packageHint) message += `\n${context.packageHint}`;
  return { ...location, message, source: await sourceLine(location) };
}

/** The first stack frame inside `root`, else the first outside node_modules and Node itself. */
function frameLocation(stack: string, root: string): Location | null {
  const frames: Location[] = [];
  for (const match of stack.matchAll(/^\s+at (?:.*? \()?((?:file:\/\/)?\/[^():]+(?:\?[^:)]*)?):(\d+):(\d+)\)?$/gm)) {
    frames.push(original(match[1]!, Number(match[2]), Number(match[3])));
  }
  const inside = frames.find((f) => f.file!.startsWith(root + path.sep));
  return inside ?? frames.find((f) => !f.file!.includes(`${path.sep}node_modules${path.sep}`)) ?? null;
}

/**
 * The TypeScript position of a stack position. Node maps stacks itself once source maps are
 * enabled, but not where another tool owns `Error.prepareStackTrace` (test runners): there the
 * frame still names the compiled module (`file:///a.ts?tsx-namespace=…`), whose map tsx inlined.
 */
function original(fileOrUrl: string, line: number, column: number): Location {
  if (fileOrUrl.includes("?")) {
    const url = fileOrUrl.startsWith("file://") ? fileOrUrl : `file://${fileOrUrl}`;
    const entry = findSourceMap(url)?.findEntry(line - 1, column - 1) as Partial<{ originalLine: number; originalColumn: number }> | undefined;
    if (entry?.originalLine !== undefined && entry.originalColumn !== undefined) {
      return { file: toPath(fileOrUrl), line: entry.originalLine + 1, column: entry.originalColumn + 1 };
    }
  }
  return { file: toPath(fileOrUrl), line, column };
}

/** `file:///a/b.ts?tsx-namespace=x` → `/a/b.ts`. */
function toPath(fileOrUrl: string): string {
  const withoutQuery = fileOrUrl.replace(/\?.*$/, "");
  return withoutQuery.startsWith("file://") ? fileURLToPath(withoutQuery) : withoutQuery;
}

async function findInFile(file: string, needle: string): Promise<Location> {
  const lines = (await readFile(file, "utf8").catch(() => "")).split("\n");
  const index = lines.findIndex((l) => /\bimport\b|\bfrom\b/.test(l) && l.includes(needle));
  if (index === -1) return { file, line: null, column: null };
  return { file, line: index + 1, column: lines[index]!.indexOf(needle) + 1 };
}

async function sourceLine({ file, line }: Location): Promise<string | null> {
  if (!file || !line) return null;
  const text = await readFile(file, "utf8").catch(() => null);
  return text?.split("\n")[line - 1]?.replace(/\r$/, "") ?? null;
}

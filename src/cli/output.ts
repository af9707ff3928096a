/**
 * Terminal output of the CLI: one place that decides on colors and formats the recurring lines
 * (ready, failure with a code frame, warnings). Colors follow the usual conventions: `NO_COLOR`
 * turns them off, `FORCE_COLOR` on, otherwise only a color-capable TTY gets them.
 */
import path from "node:path";
import { styleText } from "node:util";
import type { LoadFailure } from "./loadErrors.js";

type Style = Parameters<typeof styleText>[0];

export interface OutputStreams {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; hasColors?: () => boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; hasColors?: () => boolean };
  env?: NodeJS.ProcessEnv;
  /** Paths are shown relative to this directory (default: `process.cwd()`). */
  cwd?: string;
}

export function colorsEnabled(stream: OutputStreams["stdout"], env: NodeJS.ProcessEnv = process.env): boolean {
  if (env["NO_COLOR"]) return false;
  if (env["FORCE_COLOR"] !== undefined) return env["FORCE_COLOR"] !== "0";
  return Boolean(stream.isTTY) && (stream.hasColors?.() ?? true);
}

export type Output = ReturnType<typeof createOutput>;

export function createOutput({ stdout, stderr, env = process.env, cwd = process.cwd() }: OutputStreams) {
  const colorOut = colorsEnabled(stdout, env);
  const colorErr = colorsEnabled(stderr, env);
  const paint = (enabled: boolean) => (style: Style, text: string) => (enabled ? styleText(style, text) : text);
  const out = paint(colorOut);
  const err = paint(colorErr);
  const relative = (file: string) => {
    const rel = path.relative(cwd, file);
    return rel.startsWith("..") ? file : rel;
  };
  return {
    /** Style for stdout text. */
    style: out,
    relative,
    info(line: string): void {
      stdout.write(`${line}\n`);
    },
    success(line: string): void {
      stdout.write(`${out("green", "✔")} ${line}\n`);
    },
    warn(line: string): void {
      stderr.write(`${err("yellow", "⚠")} ${line}\n`);
    },
    error(line: string): void {
      stderr.write(`${err("red", "✖")} ${line}\n`);
    },
    /** `✖ functions/my-module.ts  "my-module" is not a valid module name…` */
    fileError(file: string, message: string): void {
      stderr.write(`${err("red", "✖")} ${err("bold", relative(file))}  ${message}\n`);
    },
    /** `✖ functions/messages.ts:12:5  Expected ";"` and, when known, the line with a caret under it. */
    loadFailure(failure: LoadFailure): void {
      const where = failure.file
        ? [relative(failure.file), failure.line, failure.line && failure.column].filter(Boolean).join(":")
        : null;
      const [first = "", ...rest] = failure.message.split("\n");
      const lines = [`${err("red", "✖")} ${where ? `${err("bold", where)}  ` : ""}${first}`];
      for (const more of rest) lines.push(`  ${more}`);
      if (failure.source !== null && failure.line !== null) {
        const gutter = String(failure.line);
        lines.push(err("dim", `  ${gutter} | `) + failure.source);
        if (failure.column !== null) {
          lines.push(err("dim", `  ${" ".repeat(gutter.length)} | `) + failure.source.slice(0, failure.column - 1).replace(/[^\t]/g, " ") + err("red", "^"));
        }
      }
      stderr.write(`${lines.join("\n")}\n`);
    },
  };
}

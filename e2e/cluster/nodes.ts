/**
 * Walk-in nodes as real processes: `walkin start --db <postgres url>` on free ports, run from
 * this repository's sources over a functions folder copied into a temporary project (its
 * tsconfig points `walkin/*` at the sources, as the CLI tests do).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const CLI = join(REPO, "bin", "walkin.js");

export interface ClusterNode {
  name: string;
  port: number;
  url: string;
  /** Everything the process printed (stdout and stderr). */
  output: string[];
  process: ChildProcess;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** A temporary project holding a copy of `functionsDir`; returns its folder and a cleanup. */
export function makeProject(functionsDir: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "walkin-cluster-"));
  cpSync(functionsDir, join(dir, "functions"), { recursive: true });
  writeFileSync(join(dir, "package.json"), `{ "type": "module" }\n`);
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { paths: { "walkin/*": [join(REPO, "src/*/index.ts")] } } }));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Starts one node; resolves once it listens (or rejects with what it printed). */
export function startNode(name: string, dir: string, db: string, port = 0): Promise<ClusterNode> {
  const child = spawn(process.execPath, [CLI, "start", "--db", db, "--port", String(port)], {
    cwd: dir,
    env: { ...process.env, NO_COLOR: "1", WALKIN_CLI_FROM_SOURCE: "1", CLUSTER_NODE: name, WALKIN_DB: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  createInterface({ input: child.stderr! }).on("line", (line) => output.push(line));
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      output.push(line);
      const match = /http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      if (!match) return;
      const port = Number(match[1]);
      resolve({
        name,
        port,
        url: `http://127.0.0.1:${port}`,
        output,
        process: child,
        exited,
        async kill(signal = "SIGTERM") {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          await exited;
        },
      });
    });
    void exited.then((code) => reject(new Error(`node ${name} exited (${code}) before listening:\n${output.join("\n")}`)));
  });
}

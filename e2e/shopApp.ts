/**
 * Builds the shop example and runs it the way `examples/shop/start.mjs` does (the Walk-in CLI
 * from the sources, `walkin start --static dist`), on a free port and a fresh SQLite database,
 * for browser tests. Same shape as chatApp.ts, whose helpers are bound to the chat's folder.
 * The app is built into a fresh temporary folder rather than examples/shop/dist, so that two
 * test runs at once (the whole suite beside this file alone) never serve each other's
 * half-written build.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const exampleDir = fileURLToPath(new URL("../examples/shop/", import.meta.url));
const cli = fileURLToPath(new URL("../bin/walkin.js", import.meta.url));
const env = { ...process.env, WALKIN_CLI_FROM_SOURCE: "1", NO_COLOR: "1" };

export interface ShopApp {
  url: string;
  /** What the server printed so far (reset codes, errors), for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/** Builds the app into a new temporary folder and returns it; `startShop(dir)` serves it. */
export async function buildShop(): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), "walkin-e2e-shop-dist-"));
  const codegen = spawnSync(process.execPath, [cli, "codegen"], { cwd: exampleDir, env, encoding: "utf8" });
  if (codegen.status !== 0) throw new Error(`walkin codegen failed:\n${codegen.stdout}${codegen.stderr}`);
  const { build } = await import("vite");
  await build({ root: exampleDir, configFile: join(exampleDir, "vite.config.ts"), logLevel: "error", build: { outDir, emptyOutDir: true } });
  return outDir;
}

/** Serves `staticDir` (from `buildShop`) and the shop's functions; `stop()` also deletes it. */
export async function startShop(staticDir: string): Promise<ShopApp> {
  const dataDir = mkdtempSync(join(tmpdir(), "walkin-e2e-shop-"));
  const db = join(dataDir, "shop.sqlite");
  const server: ChildProcess = spawn(process.execPath, [cli, "start", "--static", staticDir, "--port", "0", "--db", db], {
    cwd: exampleDir,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  server.stderr!.on("data", (chunk) => (output += chunk));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the shop server did not start:\n${output}`)), 30_000);
    createInterface({ input: server.stdout! }).on("line", (line) => {
      output += `${line}\n`;
      const match = /(http:\/\/\S+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    server.on("exit", () => reject(new Error(`the shop server exited:\n${output}`)));
  });
  return {
    url: url.replace("127.0.0.1", "localhost"),
    output: () => output,
    stop: async () => {
      if (server.exitCode === null) {
        await new Promise<void>((resolve) => {
          server.once("exit", () => resolve());
          server.kill("SIGINT");
        });
      }
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(staticDir, { recursive: true, force: true });
    },
  };
}

/**
 * Builds the chat example and runs it the way `npm start` does (the Walk-in CLI from the
 * sources, `walkin start --static dist`), on a free port and a fresh database, for browser
 * tests. `restart()` stops the server and starts it again on the same port and database.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const exampleDir = fileURLToPath(new URL("../examples/chat/", import.meta.url));
const cli = fileURLToPath(new URL("../bin/walkin.js", import.meta.url));
const env = { ...process.env, WALKIN_CLI_FROM_SOURCE: "1", NO_COLOR: "1" };

export interface ChatApp {
  url: string;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function buildChat(): Promise<void> {
  const codegen = spawnSync(process.execPath, [cli, "codegen"], { cwd: exampleDir, env, encoding: "utf8" });
  if (codegen.status !== 0) throw new Error(`walkin codegen failed:\n${codegen.stdout}${codegen.stderr}`);
  const { build } = await import("vite");
  await build({ root: exampleDir, configFile: join(exampleDir, "vite.config.ts"), logLevel: "error" });
}

export async function startChat(): Promise<ChatApp> {
  const dataDir = mkdtempSync(join(tmpdir(), "walkin-e2e-"));
  const db = join(dataDir, "chat.sqlite");
  let port = "0";
  let server: ChildProcess | undefined;
  const launch = async () => {
    server = spawn(process.execPath, [cli, "start", "--static", "dist", "--port", port, "--db", db], { cwd: exampleDir, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    server.stderr!.on("data", (chunk) => (output += chunk));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the chat server did not start:\n${output}`)), 30_000);
      createInterface({ input: server!.stdout! }).on("line", (line) => {
        output += `${line}\n`;
        const match = /(http:\/\/\S+)/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      server!.on("exit", () => reject(new Error(`the chat server exited:\n${output}`)));
    });
    port = new URL(url).port;
    return url.replace("127.0.0.1", "localhost");
  };
  const stopServer = () =>
    new Promise<void>((resolve) => {
      if (!server || server.exitCode !== null) return resolve();
      server.once("exit", () => resolve());
      server.kill("SIGINT");
    });
  const url = await launch();
  return {
    url,
    restart: async () => {
      await stopServer();
      await launch();
    },
    stop: async () => {
      await stopServer();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

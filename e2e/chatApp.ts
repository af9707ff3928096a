/**
 * Builds the chat example and runs it the way `npm start` does (the Walk-in CLI from the
 * sources, `walkin start --static <dir>`), on a free port and a fresh database, for browser
 * tests. `restart()` stops the server and starts it again on the same port and database.
 *
 * Test files run in parallel (and others may run the suite in this tree at the same time), so
 * each build goes to its own directory, and codegen + build run under a lock: codegen rewrites
 * functions/_generated, which a concurrent build would read half-written.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const exampleDir = fileURLToPath(new URL("../examples/chat/", import.meta.url));
const cli = fileURLToPath(new URL("../bin/walkin.js", import.meta.url));
// Many tabs sign in anonymously from 127.0.0.1: lift the per-IP limit (30 an hour by default).
const env = { ...process.env, WALKIN_CLI_FROM_SOURCE: "1", NO_COLOR: "1", CHAT_ANONYMOUS_SIGNINS_PER_HOUR: "100000" };
const lock = join(tmpdir(), "walkin-e2e-chat-build.lock");

export interface ChatApp {
  url: string;
  restart(): Promise<void>;
  /** Stops the server (clients see it go away) until `up()`. */
  down(): Promise<void>;
  /** Starts it again on the same port and database. */
  up(): Promise<void>;
  stop(): Promise<void>;
}

async function withBuildLock<T>(work: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      // A build takes seconds; a lock minutes old was left by a killed run.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 180_000) rmSync(lock, { recursive: true, force: true });
      } catch {}
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

let built: string | undefined;

/** Runs codegen and builds the page into a directory of its own; returns it. */
export async function buildChat(): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), "walkin-e2e-chat-dist-"));
  await withBuildLock(async () => {
    const codegen = spawnSync(process.execPath, [cli, "codegen"], { cwd: exampleDir, env, encoding: "utf8" });
    if (codegen.status !== 0) throw new Error(`walkin codegen failed:\n${codegen.stdout}${codegen.stderr}`);
    const { build } = await import("vite");
    await build({ root: exampleDir, configFile: join(exampleDir, "vite.config.ts"), logLevel: "error", build: { outDir, emptyOutDir: true } });
  });
  return (built = outDir);
}

export interface StartOptions {
  /** Extra environment for the server (e.g. the CAPTCHA settings). */
  env?: Record<string, string>;
  /** The built page (default: the last `buildChat()`). */
  staticDir?: string;
}

export async function startChat(options: StartOptions = {}): Promise<ChatApp> {
  const staticDir = options.staticDir ?? built;
  if (!staticDir) throw new Error("startChat: call buildChat() first.");
  const dataDir = mkdtempSync(join(tmpdir(), "walkin-e2e-"));
  const db = join(dataDir, "chat.sqlite");
  let port = "0";
  let server: ChildProcess | undefined;
  const launch = async () => {
    server = spawn(process.execPath, [cli, "start", "--static", staticDir, "--port", port, "--db", db], {
      cwd: exampleDir,
      env: { ...env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
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
    down: stopServer,
    up: async () => {
      await launch();
    },
    stop: async () => {
      await stopServer();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it } from "vitest";
import { Engine } from "./engine.js";
import { withTestLatency } from "../testing/testStorage.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { durabilityModules, durabilitySchema } from "./fixtures/durabilityApp.js";

const child = fileURLToPath(new URL("./fixtures/killChild.ts", import.meta.url));
let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the child until it has acknowledged `count` mutations, then SIGKILLs it. */
function runAndKill(file: string, count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--import", "tsx", child, file], { stdio: ["ignore", "pipe", "pipe"] });
    const acked: string[] = [];
    let stderr = "";
    proc.stderr.on("data", (chunk) => (stderr += chunk));
    createInterface({ input: proc.stdout }).on("line", (line) => {
      if (!line.startsWith("ack ")) return;
      // Lines already received after the kill are acknowledgments too: keep and check them.
      acked.push(line.slice(4));
      if (acked.length === count) proc.kill("SIGKILL");
    });
    proc.on("exit", (_code, signal) => (signal === "SIGKILL" ? resolve(acked) : reject(new Error(`child exited: ${stderr}`))));
  });
}

it("every acknowledged mutation survives kill -9 of the server process", async () => {
  dir = mkdtempSync(join(tmpdir(), "walkin-kill-"));
  const file = join(dir, "db.sqlite");
  const acked = [...(await runAndKill(file, 25)), ...(await runAndKill(file, 40))];
  const engine = await Engine.open({ storage: withTestLatency(await openSqliteStorage({ filename: file })), schema: durabilitySchema, modules: durabilityModules, runScheduler: false });
  const stored = new Set((await engine.runQuery("notes:all", {})) as string[]);
  await engine.close();
  for (const id of acked) expect(stored.has(id)).toBe(true);
  expect(acked.length).toBeGreaterThanOrEqual(65);
}, 60_000);

/**
 * The dashboard as `walkin dev` and `walkin start` serve it (bin/walkin.js spawned in a
 * temporary project, as src/cli/cli.test.ts does): dev prints a URL with a fresh key and the
 * dashboard follows reloads of the functions; start serves it only with WALKIN_ADMIN_KEY,
 * refuses a weak key, and never prints the key.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../../..", import.meta.url));
const BIN = path.join(REPO, "bin", "walkin.js");
const ENV = { ...process.env, NO_COLOR: "1", WALKIN_CLI_FROM_SOURCE: "1", WALKIN_ADMIN_KEY: "" };

const SCHEMA = `import { defineSchema, defineTable } from "walkin/server";
import { v } from "walkin/values";
export default defineSchema({ notes: defineTable({ text: v.string() }) });
`;
const notes = (extra: string) => `import { v } from "walkin/values";
import { mutation, query } from "./_generated/server.js";
export const list = query({ args: {}, handler: async (ctx) => ctx.db.query("notes").collect() });
export const add = mutation({ args: { text: v.string() }, handler: async (ctx, { text }) => ctx.db.insert("notes", { text }) });
${extra}`;

let project: string;

beforeAll(async () => {
  project = await mkdtemp(path.join(os.tmpdir(), "walkin-dashboard-cli-"));
  const tsconfig = { compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, skipLibCheck: true, noEmit: true, paths: { "walkin/*": [path.join(REPO, "src/*/index.ts")] } } };
  await mkdir(path.join(project, "functions"), { recursive: true });
  await writeFile(path.join(project, "package.json"), `{ "name": "dashboard-cli-test", "type": "module" }\n`);
  await writeFile(path.join(project, "tsconfig.json"), JSON.stringify(tsconfig));
  await writeFile(path.join(project, "functions/schema.ts"), SCHEMA);
  await writeFile(path.join(project, "functions/notes.ts"), notes(""));
});

afterAll(async () => {
  await rm(project, { recursive: true, force: true });
});

class Cli {
  readonly child: ChildProcess;
  output = "";
  readonly exited: Promise<number | null>;
  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [BIN, ...args], { cwd: project, env: { ...ENV, ...env } });
    this.child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (this.output += chunk));
    this.child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (this.output += chunk));
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
  }
  async waitFor(pattern: RegExp, from = 0, timeoutMs = 30_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.output.slice(from));
      if (match) return match;
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error(`Timed out waiting for ${pattern}. Output so far:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

let running: Cli | null = null;
afterEach(() => {
  if (running?.child.exitCode === null) running.child.kill("SIGKILL");
  running = null;
});

const admin = async (url: string, route: string, key: string) => {
  const response = await fetch(`${url}/api/admin/${route}`, { headers: { Authorization: `Bearer ${key}` } });
  return { status: response.status, json: (await response.json()) as any };
};

describe("walkin dev", () => {
  it("prints the dashboard URL with a fresh key, and the dashboard follows reloads", { timeout: 90_000 }, async () => {
    const cli = (running = new Cli(["dev", "--port", "0", "--db", path.join(project, "dev.sqlite")]));
    const [, url, key] = await cli.waitFor(/Dashboard: (http:\/\/[^/\s]+)\/_dashboard#key=(\S+)/);
    expect((await fetch(`${url}/_dashboard`)).status).toBe(200);
    expect((await admin(url!, "functions", "wrong")).status).toBe(401);
    const before = await admin(url!, "functions", key!);
    expect(before.json.map((f: { path: string }) => f.path)).toEqual(["notes:add", "notes:list"]);

    const mark = cli.output.length;
    await writeFile(path.join(project, "functions/notes.ts"), notes(`export const count = query({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").collect()).length });\n`));
    await cli.waitFor(/Functions ready/, mark);
    const after = await admin(url!, "functions", key!);
    expect(after.json.map((f: { path: string }) => f.path)).toEqual(["notes:add", "notes:count", "notes:list"]);
    // Runs on the reloaded engine still reach the logs.
    await fetch(`${url}/api/mutation`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ path: "notes:add", args: { text: "hi" } }) });
    const logs = await admin(url!, "logs", key!);
    expect(logs.json).toEqual(expect.arrayContaining([expect.objectContaining({ path: "notes:add", caller: "http", outcome: "success" })]));
    cli.child.kill("SIGINT");
    expect(await cli.exited).toBe(0);
  });
});

describe("walkin start", () => {
  it("serves no dashboard without WALKIN_ADMIN_KEY", { timeout: 60_000 }, async () => {
    const cli = (running = new Cli(["start", "--port", "0", "--db", path.join(project, "start.sqlite")]));
    const [, url] = await cli.waitFor(/server: (http:\/\/\S+)/);
    expect((await fetch(`${url}/api/admin/functions`)).status).toBe(404);
    expect(cli.output).not.toContain("Dashboard");
    cli.child.kill("SIGINT");
    await cli.exited;
  });

  it("serves it with WALKIN_ADMIN_KEY, never printing the key", { timeout: 60_000 }, async () => {
    const key = "start-admin-key-0123456789abcdefghij";
    const cli = (running = new Cli(["start", "--port", "0", "--db", path.join(project, "start.sqlite")], { WALKIN_ADMIN_KEY: key }));
    const [, url] = await cli.waitFor(/Dashboard: (http:\/\/[^/\s]+)\/_dashboard \(sign in with WALKIN_ADMIN_KEY\)/);
    expect((await admin(url!, "tables", key)).json).toEqual([expect.objectContaining({ name: "notes" })]);
    expect(cli.output).not.toContain(key);
    cli.child.kill("SIGINT");
    await cli.exited;
  });

  it("refuses to start with a weak key", { timeout: 60_000 }, async () => {
    const cli = (running = new Cli(["start", "--port", "0", "--db", path.join(project, "start.sqlite")], { WALKIN_ADMIN_KEY: "secret" }));
    expect(await cli.exited).toBe(1);
    expect(cli.output).toContain("WALKIN_ADMIN_KEY is too short (6 characters): use at least 24");
  });
});

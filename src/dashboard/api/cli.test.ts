/**
 * The dashboard as `walkin dev` and `walkin start` serve it (bin/walkin.js spawned in a
 * temporary project, as src/cli/cli.test.ts does): dev prints a URL with a fresh key and the
 * dashboard follows reloads of the functions; start serves it only with WALKIN_ADMIN_KEY,
 * refuses a weak key, and never prints the key.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Cli, REPO } from "../../cli/fixtures/cli.js";

/** The dashboard's key comes from each test, never from the environment the tests run in. */
const NO_KEY = { WALKIN_ADMIN_KEY: "" };

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
    const cli = (running = new Cli(["dev", "--port", "0", "--db", path.join(project, "dev.sqlite")], project, NO_KEY));
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
    const cli = (running = new Cli(["start", "--port", "0", "--db", path.join(project, "start.sqlite")], project, NO_KEY));
    const [, url] = await cli.waitFor(/server: (http:\/\/\S+)/);
    expect((await fetch(`${url}/api/admin/functions`)).status).toBe(404);
    expect(cli.output).not.toContain("Dashboard");
    cli.child.kill("SIGINT");
    await cli.exited;
  });

  it("serves it with WALKIN_ADMIN_KEY, never printing the key", { timeout: 60_000 }, async () => {
    const key = "start-admin-key-0123456789abcdefghij";
    const cli = (running = new Cli(["start", "--port", "0", "--db", path.join(project, "start.sqlite")], project, { WALKIN_ADMIN_KEY: key }));
    const [, url] = await cli.waitFor(/Dashboard: (http:\/\/[^/\s]+)\/_dashboard \(sign in with WALKIN_ADMIN_KEY\)/);
    expect((await admin(url!, "tables", key)).json).toEqual([expect.objectContaining({ name: "notes" })]);
    expect(cli.output).not.toContain(key);
    cli.child.kill("SIGINT");
    await cli.exited;
  });

  it("refuses to start with a weak key", { timeout: 60_000 }, async () => {
    const cli = (running = new Cli(["start", "--port", "0", "--db", path.join(project, "start.sqlite")], project, { WALKIN_ADMIN_KEY: "secret" }));
    expect(await cli.exited).toBe(1);
    expect(cli.output).toContain("WALKIN_ADMIN_KEY is too short (6 characters): use at least 24");
  });
});

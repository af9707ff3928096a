/**
 * The `walkin` command end to end: `bin/walkin.js` spawned in a temporary project.
 *
 * The project resolves `walkin/*` to this repository's sources through `paths` in its
 * tsconfig.json: tsc follows it for the type check, and tsx (which the CLI loads functions
 * with) follows it at run time. So the tests need no `npm run build` and always exercise the
 * current sources; `WALKIN_CLI_FROM_SOURCE=1` keeps a stale dist/ out of the way too.
 * (The type check covers the repository's sources too, so its options stay those of the
 * repository; codegen.test.ts checks that generated imports are all used.)
 */
import { spawnSync } from "node:child_process";
import Database from "better-sqlite3";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BIN, callRaw, Cli, ENV, REPO, SCHEMA, TSCONFIG, writeProject } from "./fixtures/cli.js";

const TSC = path.join(REPO, "node_modules", "typescript", "bin", "tsc");

const messagesModule = (transform: string) => `import { v } from "walkin/values";
import { internalMutation, mutation, query, type Doc } from "./_generated/server.js";

export const list = query({
  args: {},
  handler: async (ctx): Promise<string[]> => {
    const messages: Doc<"messages">[] = await ctx.db.query("messages").collect();
    return messages.map((m) => ${transform});
  },
});

export const send = mutation({
  args: { body: v.string() },
  handler: async (ctx, { body }) => ctx.db.insert("messages", { body }),
});

export const clear = internalMutation({ args: {}, handler: async () => null });
`;

const httpModule = (text: string) => `import { httpAction, httpRouter } from "walkin/server";

const http = httpRouter();
http.route({ path: "/hello", method: "GET", handler: httpAction(async () => new Response("${text}")) });
export default http;
`;

const USERS = `import { query } from "../_generated/server.js";

export const count = query({ args: {}, handler: async () => 3 });
`;

// Uses the generated api: wrong types here fail the type check.
const APP = `import type { FunctionArgs, FunctionReference, FunctionReturnType } from "walkin/server";
import { api, internal } from "./functions/_generated/api.js";
import type { Doc, Id } from "./functions/_generated/server.js";

export const list: FunctionReference<"query", "public", {}, string[]> = api.messages.list;
export const args: FunctionArgs<typeof api.messages.send> = { body: "hello" };
export const id: FunctionReturnType<typeof api.messages.send> = "x" as Id<"messages">;
export const count: FunctionReturnType<typeof api.lib.users.count> = 3;
export const clear: FunctionReference<"mutation", "internal"> = internal.messages.clear;
export const doc: Doc<"messages"> = { _id: "x" as Id<"messages">, _creationTime: 0, body: "hi" };
// @ts-expect-error internal functions are not part of api
export const hidden = api.messages.clear;
// @ts-expect-error args are checked
export const badArgs: FunctionArgs<typeof api.messages.send> = { body: 1 };
`;

let project: string;

beforeAll(async () => {
  project = await mkdtemp(path.join(os.tmpdir(), "walkin-cli-"));
  const tsconfig = {
    compilerOptions: {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      lib: ["ES2023", "DOM"],
      strict: true,
      noUncheckedIndexedAccess: true,
      verbatimModuleSyntax: true,
      isolatedModules: true,
      skipLibCheck: true,
      noEmit: true,
      types: [],
      paths: { "walkin/*": [path.join(REPO, "src/*/index.ts")] },
    },
    include: ["functions", "app.ts"],
  };
  await writeProject(project, {
    "package.json": `{ "name": "cli-test-app", "type": "module" }\n`,
    "tsconfig.json": JSON.stringify(tsconfig, null, 2),
    "functions/schema.ts": SCHEMA,
    "functions/messages.ts": messagesModule("m.body"),
    "functions/lib/users.ts": USERS,
    "app.ts": APP,
  });
});

afterAll(async () => {
  await rm(project, { recursive: true, force: true });
});

describe("walkin codegen", () => {
  it("writes _generated/ that type-checks with the functions and the code using api", () => {
    const codegen = spawnSync(process.execPath, [BIN, "codegen"], { cwd: project, env: ENV, encoding: "utf8" });
    expect(codegen.stderr).toBe("");
    expect(codegen.stdout).toContain("✔ Generated functions/_generated (2 modules and the schema)");
    expect(codegen.status).toBe(0);

    const again = spawnSync(process.execPath, [BIN, "codegen"], { cwd: project, env: ENV, encoding: "utf8" });
    expect(again.stdout).toContain("Up to date");

    const tsc = spawnSync(process.execPath, [TSC, "-p", project], { cwd: project, encoding: "utf8" });
    expect(tsc.stdout + tsc.stderr).toBe("");
    expect(tsc.status).toBe(0);
  });

  it("exits 1 and names the file for a bad module name", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-cli-bad-"));
    await writeProject(dir, { "functions/my-module.ts": "export {};\n" });
    const result = spawnSync(process.execPath, [BIN, "codegen"], { cwd: dir, env: ENV, encoding: "utf8" });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`✖ functions/my-module.ts  "my-module" is not a valid module name`);
    await rm(dir, { recursive: true, force: true });
  });
});

describe("walkin --help", () => {
  it("lists the commands, and every command has --help", () => {
    const root = spawnSync(process.execPath, [BIN, "--help"], { env: ENV, encoding: "utf8" });
    expect(root.status).toBe(0);
    for (const command of ["dev", "start", "codegen"]) {
      expect(root.stdout).toContain(`  ${command} `);
      const help = spawnSync(process.execPath, [BIN, command, "--help"], { env: ENV, encoding: "utf8" });
      expect(help.status).toBe(0);
      expect(help.stdout).toContain(`Usage: walkin ${command} [options]`);
      expect(help.stdout).toContain("--dir <path>");
    }
  });

  it("refuses unknown commands and options", () => {
    const command = spawnSync(process.execPath, [BIN, "deploy"], { env: ENV, encoding: "utf8" });
    expect(command.status).toBe(1);
    expect(command.stderr).toContain(`Unknown command "deploy"`);
    const option = spawnSync(process.execPath, [BIN, "dev", "--prot", "1"], { env: ENV, encoding: "utf8" });
    expect(option.status).toBe(1);
    expect(option.stderr).toContain("Unknown option '--prot'. Run walkin dev --help");
  });
});

let running: Cli | null = null;
afterEach(() => {
  if (running?.child.exitCode === null) running.child.kill("SIGKILL");
  running = null;
});

/** One-shot HTTP call to the server. */
async function call(url: string, kind: "query" | "mutation", fnPath: string, args: unknown = {}): Promise<unknown> {
  const { ok, body } = await callRaw(url, kind, fnPath, args);
  if (!ok || body.status === "error") throw new Error(`${kind} ${fnPath}: ${JSON.stringify(body)}`);
  return body.value;
}

describe("walkin dev", () => {
  it("serves, reloads on edits, keeps the last good version through errors, exits 0 on SIGINT", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-dev-"));
    await writeProject(dir, {
      "package.json": `{ "type": "module" }\n`,
      "tsconfig.json": TSCONFIG,
      "functions/schema.ts": SCHEMA,
      "functions/messages.ts": messagesModule("m.body"),
      "functions/http.ts": httpModule("v1"),
    });
    const messagesFile = path.join(dir, "functions", "messages.ts");
    const cli = (running = new Cli(["dev", "--port", "0", "--db", path.join(dir, "db", "data.sqlite")], dir));

    const [, url] = await cli.waitFor(/Walk-in dev server: (http:\/\/\S+)/);
    expect(cli.output).toMatch(/✔ Functions ready \(3 functions in 2 modules\) in \d+ ms/);
    expect(await (await fetch(`${url}/hello`)).text()).toBe("v1");
    await call(url!, "mutation", "messages:send", { body: "hello" });
    expect(await call(url!, "query", "messages:list")).toEqual(["hello"]);

    // An edit is picked up.
    let mark = cli.output.length;
    await writeFile(messagesFile, messagesModule("m.body.toUpperCase()"));
    await cli.waitFor(/✔ Functions ready/, mark);
    expect(await call(url!, "query", "messages:list")).toEqual(["HELLO"]);

    // A syntax error is reported with file:line:col, and the last good version keeps serving.
    mark = cli.output.length;
    await writeFile(messagesFile, messagesModule("m.body.toUpperCase()").replace("collect();", "collect(;"));
    const [, line] = await cli.waitFor(/✖ functions\/messages\.ts:(\d+):\d+ {2}\S/, mark);
    expect(Number(line)).toBe(7);
    await cli.waitFor(/Still serving the last good version/, mark);
    expect(await call(url!, "query", "messages:list")).toEqual(["HELLO"]);

    // Fixed: the new version serves, with data kept across reloads.
    mark = cli.output.length;
    await writeFile(messagesFile, messagesModule("`${m.body}!`"));
    await cli.waitFor(/✔ Functions ready/, mark);
    expect(await call(url!, "query", "messages:list")).toEqual(["hello!"]);

    // HTTP routes reload too.
    mark = cli.output.length;
    await writeFile(path.join(dir, "functions", "http.ts"), httpModule("v2"));
    await cli.waitFor(/✔ Functions ready/, mark);
    expect(await (await fetch(`${url}/hello`)).text()).toBe("v2");

    // One Ctrl-C under `npm run dev` arrives twice (from the terminal and forwarded by npm):
    // still one clean shutdown.
    cli.child.kill("SIGINT");
    cli.child.kill("SIGINT");
    expect(await cli.exited).toBe(0);
    expect(cli.output).not.toContain("without a clean shutdown");
    await rm(dir, { recursive: true, force: true });
  });

  it("gives back an index's space once the version that read it has stopped, after a reload that changed its fields", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-dev-reclaim-"));
    const schemaWith = (fields: string) => SCHEMA.replace("defineTable({ body: v.string() })", `defineTable({ body: v.string(), tag: v.optional(v.string()) }).index("by_body", ${fields})`);
    await writeProject(dir, {
      "package.json": `{ "type": "module" }\n`,
      "tsconfig.json": TSCONFIG,
      "functions/schema.ts": schemaWith(`["body"]`),
      "functions/messages.ts": messagesModule("m.body"),
    });
    const file = path.join(dir, "db", "data.sqlite");
    const cli = (running = new Cli(["dev", "--port", "0", "--db", file], dir));
    const [, url] = await cli.waitFor(/Walk-in dev server: (http:\/\/\S+)/);
    for (const body of ["a", "b", "c"]) await call(url!, "mutation", "messages:send", { body });

    // Entries per index ID, read straight from the file (this connection is not an engine's).
    const entriesByIndex = () => {
      const db = new Database(file, { readonly: true });
      try {
        const tables = db.prepare<[], { index_id: string; number: number }>("SELECT index_id, number FROM index_tables").all();
        return Object.fromEntries(tables.map((t) => [t.index_id, db.prepare(`SELECT count(*) FROM entries_${t.number}`).pluck().get() as number]));
      } finally {
        db.close();
      }
    };
    // The tables trail the commit log by a few milliseconds (storage.md, "Deferred versions").
    const settled = async (done: (entries: Record<string, number>) => boolean) => {
      const deadline = Date.now() + 20_000;
      while (!done(entriesByIndex()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      return entriesByIndex();
    };
    const byBody = (entries: Record<string, number>) => Object.keys(entries).filter((id) => id.startsWith("messages.by_body"));
    const before = await settled((entries) => entries[byBody(entries)[0]!] === 3);
    const [first] = byBody(before);
    expect(before[first!]).toBe(3);

    // Its fields change: a new index is built, and the old one's entries go once the previous
    // version has stopped (nothing else has the file open).
    const mark = cli.output.length;
    await writeFile(path.join(dir, "functions", "schema.ts"), schemaWith(`["body", "tag"]`));
    await cli.waitFor(/✔ Functions ready/, mark);
    const after = await settled((entries) => entries[first!] === 0);
    expect(after[first!]).toBe(0);
    const [second] = byBody(after).filter((id) => id !== first);
    expect(after[second!]).toBe(3);
    expect(await call(url!, "query", "messages:list")).toEqual(["a", "b", "c"]);

    cli.child.kill("SIGINT");
    expect(await cli.exited).toBe(0);
    await rm(dir, { recursive: true, force: true });
  });

  it("reports type errors as file:line:column without blocking the new version, and says when they are fixed", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-dev-types-"));
    const tsconfig = JSON.parse(await readFile(path.join(project, "tsconfig.json"), "utf8")) as { include: string[] };
    tsconfig.include = ["functions"];
    await writeProject(dir, {
      "package.json": `{ "type": "module" }\n`,
      "tsconfig.json": JSON.stringify(tsconfig),
      "functions/schema.ts": SCHEMA,
      "functions/messages.ts": messagesModule("m.body"),
    });
    const messagesFile = path.join(dir, "functions", "messages.ts");
    const cli = (running = new Cli(["dev", "--port", "0", "--db", path.join(dir, "db", "data.sqlite")], dir));
    const [, url] = await cli.waitFor(/Walk-in dev server: (http:\/\/\S+)/);

    // `m.body.length` is a number where the handler promises strings: a type error, not a load error.
    let mark = cli.output.length;
    await writeFile(messagesFile, messagesModule("m.body.length"));
    await cli.waitFor(/✔ Functions ready/, mark);
    const [, line, message] = await cli.waitFor(/✖ functions\/messages\.ts:(\d+):\d+ {2}(.*)/, mark, 60_000);
    expect(Number(line)).toBe(8);
    expect(message).toMatch(/Type 'number\[\]' is not assignable to type 'string\[\]'.*\(TS2322\)/);
    await cli.waitFor(/1 type error in the functions: they still run/, mark);
    // Not blocked: the new version serves.
    await call(url!, "mutation", "messages:send", { body: "four" });
    expect(await call(url!, "query", "messages:list")).toEqual([4]);

    // Fixed: the errors are cleared.
    mark = cli.output.length;
    await writeFile(messagesFile, messagesModule("m.body"));
    await cli.waitFor(/✔ No type errors in the functions/, mark, 60_000);
    expect(cli.output.slice(mark)).not.toContain("✖");

    cli.child.kill("SIGINT");
    expect(await cli.exited).toBe(0);
    await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it("waits for a fix when the first version does not load", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-dev-"));
    await writeProject(dir, {
      "package.json": `{ "type": "module" }\n`,
      "tsconfig.json": TSCONFIG,
      "functions/messages.ts": `export const x = (;\n`,
    });
    const cli = (running = new Cli(["dev", "--port", "0"], dir));
    await cli.waitFor(/✖ functions\/messages\.ts:1:\d+/);
    await cli.waitFor(/Waiting for changes/);
    await writeFile(path.join(dir, "functions", "messages.ts"), `import { query } from "./_generated/server.js";\nexport const one = query({ args: {}, handler: async () => 1 });\n`);
    const [, url] = await cli.waitFor(/Walk-in dev server: (http:\/\/\S+)/);
    expect(await call(url!, "query", "messages:one")).toBe(1);
    // The default database folder was created, and keeps itself out of git.
    expect(await readFile(path.join(dir, ".walkin", ".gitignore"), "utf8")).toContain("*");
    cli.child.kill("SIGTERM");
    expect(await cli.exited).toBe(0);
    await rm(dir, { recursive: true, force: true });
  });
});

describe("walkin start", () => {
  it("exits 1 with the error when the functions do not load", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-start-"));
    await writeProject(dir, { "package.json": `{ "type": "module" }\n`, "functions/broken.ts": `export const x = 1;\nexport const y = ];\n` });
    const result = spawnSync(process.execPath, [BIN, "start", "--port", "0", "--db", path.join(dir, "data.sqlite")], {
      cwd: dir,
      env: ENV,
      encoding: "utf8",
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("✖ functions/broken.ts:2:");
    await rm(dir, { recursive: true, force: true });
  });
});

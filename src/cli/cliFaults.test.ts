/**
 * The `walkin` command's promises about bad input, hot reload and shutdown:
 * `bin/walkin.js` spawned in temporary projects, as in cli.test.ts.
 */
import { createServer, type Server } from "node:net";
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { callRaw, Cli, expectCleanFailure, runCli, SCHEMA, tempProject as makeTempProject, TSCONFIG } from "./fixtures/cli.js";

const MESSAGES = `import { v } from "walkin/values";
import { anyApi } from "walkin/server";
import { action, mutation, query } from "./_generated/server.js";

export const list = query({ args: {}, handler: async (ctx) => (await ctx.db.query("messages").collect()).map((m) => m.body) });
export const send = mutation({ args: { body: v.string() }, handler: async (ctx, { body }) => ctx.db.insert("messages", { body }) });
/** Waits, then writes through the engine: a request that is in flight for a while. */
export const slowSend = action({
  args: { body: v.string(), ms: v.number() },
  handler: async (ctx, { body, ms }) => {
    await new Promise((r) => setTimeout(r, ms));
    await ctx.runMutation(anyApi.messages.send, { body });
    return "sent";
  },
});
`;

const tempDirs: string[] = [];
const tempProject = (files: Record<string, string>) => makeTempProject(tempDirs, "walkin-cli-faults-", files);
const run = runCli;

let running: Cli | null = null;
let holder: Server | null = null;
afterEach(async () => {
  if (running?.child.exitCode === null) running.child.kill("SIGKILL");
  running = null;
  holder?.close();
  holder = null;
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe("bad input: one line, exit 1, no stack trace", () => {
  it("codegen --dir naming a file", async () => {
    const dir = await tempProject({ "package.json": `{ "type": "module" }\n`, "functions/a.ts": "export const x = 1;\n" });
    expectCleanFailure(run(["codegen", "--dir", "package.json"], dir), /✖ .*package\.json.*--dir/);
  });

  it("start --db in a folder that cannot be created (its parent is a file)", async () => {
    const dir = await tempProject({ "package.json": `{ "type": "module" }\n`, "functions/a.ts": "export const x = 1;\n" });
    expectCleanFailure(run(["start", "--port", "0", "--db", "package.json/data.sqlite"], dir), /✖ .*package\.json/);
  });

  it("init with a package.json that is JSON but not an object", async () => {
    const dir = await tempProject({ "package.json": "null\n" });
    expectCleanFailure(run(["init"], dir), /✖ .*package\.json/);
    expect(await readFile(path.join(dir, "package.json"), "utf8")).toBe("null\n");
  });

  it("init where the template needs a folder and the user has a file of that name", async () => {
    const dir = await tempProject({ "functions": "my notes\n" });
    expectCleanFailure(run(["init"], dir), /✖ .*functions/);
    expect(await readFile(path.join(dir, "functions"), "utf8")).toBe("my notes\n");
  });

  it("dev and start on a port in use", async () => {
    const dir = await tempProject({ "package.json": `{ "type": "module" }\n`, "functions/a.ts": "export const x = 1;\n" });
    holder = createServer();
    await new Promise<void>((resolve) => holder!.listen(0, "127.0.0.1", resolve));
    const port = String((holder.address() as { port: number }).port);
    for (const command of ["start", "dev"]) {
      const result = run([command, "--port", port, "--db", path.join(dir, "data.sqlite")], dir);
      expectCleanFailure(result, new RegExp(`✖ Port ${port} on 127\\.0\\.0\\.1 is already in use\\. .*--port`));
    }
  });

  it("start with a schema that throws at import", async () => {
    const dir = await tempProject({
      "package.json": `{ "type": "module" }\n`,
      "functions/schema.ts": `throw new Error("no schema today");\n`,
      "functions/a.ts": "export const x = 1;\n",
    });
    expectCleanFailure(run(["start", "--port", "0", "--db", path.join(dir, "data.sqlite")], dir), /✖ functions\/schema\.ts:1:\d+ {2}no schema today/);
  });
});

describe("hot reload", () => {
  it("an action in flight during a reload still runs its mutation", async () => {
    const dir = await tempProject({
      "package.json": `{ "type": "module" }\n`,
      "tsconfig.json": TSCONFIG,
      "functions/schema.ts": SCHEMA,
      "functions/messages.ts": MESSAGES,
      "functions/other.ts": "export const version = 1;\n",
    });
    const cli = (running = new Cli(["dev", "--port", "0", "--db", path.join(dir, "data.sqlite")], dir));
    const [, url] = await cli.waitFor(/Walk-in dev server: (http:\/\/\S+)/);

    const mark = cli.output.length;
    const pending = callRaw(url!, "action", "messages:slowSend", { body: "across the reload", ms: 3000 });
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(path.join(dir, "functions", "other.ts"), "export const version = 2;\n");
    await cli.waitFor(/✔ Functions ready/, mark);

    const answer = await pending;
    expect(answer.body, JSON.stringify(answer.body)).toMatchObject({ status: "success", value: "sent" });
    // The new engine learns the old one's last commits once the old one has closed, which it
    // does when its last action has ended: at once after the answer, not necessarily before it.
    await expect.poll(async () => (await callRaw(url!, "query", "messages:list")).body.value).toEqual(["across the reload"]);

    cli.child.kill("SIGINT");
    expect(await cli.exited).toBe(0);
  }, 60_000);
});

describe("shutdown", () => {
  it("SIGTERM lets an action in flight finish its mutation, then exits 0 and keeps the write", async () => {
    const dir = await tempProject({
      "package.json": `{ "type": "module" }\n`,
      "tsconfig.json": TSCONFIG,
      "functions/schema.ts": SCHEMA,
      "functions/messages.ts": MESSAGES,
    });
    const db = path.join(dir, "data.sqlite");
    const cli = (running = new Cli(["start", "--port", "0", "--db", db], dir));
    const [, url] = await cli.waitFor(/Walk-in server: (http:\/\/\S+)/);
    const pending = callRaw(url!, "action", "messages:slowSend", { body: "before shutdown", ms: 800 });
    await new Promise((r) => setTimeout(r, 200));
    cli.child.kill("SIGTERM");
    expect((await pending).body).toMatchObject({ status: "success", value: "sent" });
    expect(await cli.exited).toBe(0);

    // The write is in the file the server closed.
    const again = (running = new Cli(["start", "--port", "0", "--db", db], dir));
    const [, url2] = await again.waitFor(/Walk-in server: (http:\/\/\S+)/);
    expect((await callRaw(url2!, "query", "messages:list")).body.value).toEqual(["before shutdown"]);
    again.child.kill("SIGTERM");
    expect(await again.exited).toBe(0);
  }, 60_000);
});

describe("signals during startup", () => {
  it("a SIGTERM while the functions load still shuts down cleanly with exit code 0", async () => {
    const dir = await tempProject({
      "package.json": `{ "type": "module" }\n`,
      "tsconfig.json": TSCONFIG,
      // A module slow to import (a big SDK, a slow index build on open…): startup takes a while.
      "functions/slow.ts": `console.log("loading slow.ts");\nawait new Promise((r) => setTimeout(r, 2000));\nexport const x = 1;\n`,
    });
    for (const command of ["dev", "start"]) {
      const cli = (running = new Cli([command, "--port", "0", "--db", path.join(dir, `${command}.sqlite`)], dir));
      await cli.waitFor(/loading slow\.ts/);
      cli.child.kill("SIGTERM");
      const code = await cli.exited;
      expect({ command, code, signal: cli.child.signalCode }).toEqual({ command, code: 0, signal: null });
    }
  }, 60_000);
});

describe("port in use after a broken first version", () => {
  it("dev exits 1 once the fixed version cannot listen, as it does when the first version loads", async () => {
    const dir = await tempProject({
      "package.json": `{ "type": "module" }\n`,
      "tsconfig.json": TSCONFIG,
      "functions/a.ts": `export const x = (;\n`,
    });
    holder = createServer();
    await new Promise<void>((resolve) => holder!.listen(0, "127.0.0.1", resolve));
    const port = String((holder.address() as { port: number }).port);
    const cli = (running = new Cli(["dev", "--port", port, "--db", path.join(dir, "data.sqlite")], dir));
    await cli.waitFor(/Waiting for changes/);
    await writeFile(path.join(dir, "functions", "a.ts"), "export const x = 1;\n");
    await cli.waitFor(new RegExp(`✖ Port ${port} on 127\\.0\\.0\\.1 is already in use`));
    const exited = await Promise.race([cli.exited, new Promise((r) => setTimeout(() => r("still running after 5 s"), 5000))]);
    expect(exited).toBe(1);
  }, 60_000);
});

describe("--port validation", () => {
  it('refuses an empty --port (e.g. --port "$PORT" with PORT unset) instead of picking a random one', async () => {
    const dir = await tempProject({ "package.json": `{ "type": "module" }\n`, "functions/a.ts": "export const x = 1;\n" });
    for (const value of ["", " "]) {
      const cli = (running = new Cli(["start", "--port", value, "--db", path.join(dir, "data.sqlite")], dir));
      const exited = await Promise.race([cli.exited, cli.waitFor(/Walk-in server: \S+/).then(([line]) => line, () => "no output")]);
      if (cli.child.exitCode === null) cli.child.kill("SIGKILL");
      expect({ value, exited }).toEqual({ value, exited: 1 });
      expect(cli.output).toContain(`--port must be a whole number from 0 to 65535, not "${value}".`);
    }
  }, 60_000);
});

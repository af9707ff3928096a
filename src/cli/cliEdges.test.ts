/**
 * The `walkin` command at its edges, each case failing before its fix (found in a review):
 * `init` on a file, a second Ctrl-C while a module's import hangs, a functions directory removed
 * and created again under `walkin dev`, `--run` stopped with the server, a solution-style
 * tsconfig, a `.js` module under a strict tsconfig, and the examples' `walkin dev` commands as
 * their READMEs write them. `bin/walkin.js` spawned in temporary projects, as in cli.test.ts.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Cli, expectCleanFailure, REPO, runCli, tempProject as makeTempProject } from "./fixtures/cli.js";

const TSC = path.join(REPO, "node_modules", "typescript", "bin", "tsc");

const tempDirs: string[] = [];
const tempProject = (files: Record<string, string>) => makeTempProject(tempDirs, "walkin-cli-review-", files);
const run = runCli;

/** The process's exit code, or `still running after <ms> ms`. */
async function exitWithin(cli: Cli, ms: number): Promise<number | null | string> {
  return Promise.race([cli.exited, new Promise<string>((r) => setTimeout(() => r(`still running after ${ms} ms`), ms))]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let running: Cli | null = null;
/** Processes started by `--run` that the test must not leave behind. */
const companions: number[] = [];
/** Process groups started by shell commands (npx → sh → node). */
const groups: number[] = [];
afterEach(async () => {
  for (const pid of groups.splice(0)) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  for (const pid of companions.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
  if (running?.child.exitCode === null) running.child.kill("SIGKILL");
  running = null;
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe("walkin init", () => {
  it("init naming a file that exists (a typo) is refused in one line, not with a stack trace", async () => {
    const dir = await tempProject({ "notes.txt": "my notes\n" });
    expectCleanFailure(run(["init", "notes.txt"], dir), /✖ .*notes\.txt/);
  });
});

describe("Ctrl-C while the functions load", () => {
  it("a second Ctrl-C exits at once even when a module's import never finishes", async () => {
    const dir = await tempProject({
      "package.json": `{ "type": "module" }\n`,
      // An import stuck on the network (a hung SDK call, an unreachable host at top level…).
      "functions/stuck.ts": `console.log("loading stuck.ts");\nawait new Promise((r) => setTimeout(r, 600_000));\nexport const x = 1;\n`,
    });
    const cli = (running = new Cli(["start", "--port", "0", "--db", path.join(dir, "data.sqlite")], dir));
    await cli.waitFor(/loading stuck\.ts/);
    cli.child.kill("SIGINT");
    // Past the 500 ms in which a repeat counts as the same key press (signals.ts).
    await new Promise((r) => setTimeout(r, 1000));
    cli.child.kill("SIGINT");
    // docs/cli.md: "A second Ctrl-C exits at once", with exit code 130.
    expect(await exitWithin(cli, 5000)).toBe(130);
  }, 60_000);
});

describe("walkin dev when the functions directory goes away", () => {
  it("says so in one line, without a stack trace", async () => {
    const dir = await tempProject({ "package.json": `{ "type": "module" }\n`, "functions/a.ts": "export const x = 1;\n" });
    const cli = (running = new Cli(["dev", "--port", "0", "--db", path.join(dir, "data.sqlite")], dir));
    await cli.waitFor(/Walk-in dev server: http:\/\/\S+/);
    const mark = cli.output.length;
    // `rm -rf functions && git checkout functions`, a branch switch, a scaffolder…
    await rm(path.join(dir, "functions"), { recursive: true, force: true });
    await cli.waitFor(/✖[^\n]*\n/, mark);
    expect(cli.output.slice(mark)).not.toMatch(/^\s+at /m);
  }, 60_000);

  it("reloads once the functions directory is back", async () => {
    const dir = await tempProject({ "package.json": `{ "type": "module" }\n`, "functions/a.ts": "export const x = 1;\n" });
    const cli = (running = new Cli(["dev", "--port", "0", "--db", path.join(dir, "data.sqlite")], dir));
    await cli.waitFor(/Walk-in dev server: http:\/\/\S+/);
    let mark = cli.output.length;
    await rm(path.join(dir, "functions"), { recursive: true, force: true });
    await cli.waitFor(/✖/, mark);
    mark = cli.output.length;
    await mkdir(path.join(dir, "functions"));
    await writeFile(path.join(dir, "functions", "a.ts"), "export const x = 2;\n");
    await writeFile(path.join(dir, "functions", "b.ts"), "export const y = 3;\n");
    await cli.waitFor(/✔ Functions ready \(0 functions in 2 modules\)/, mark, 10_000);
  }, 60_000);
});

describe("walkin dev --run", () => {
  it("a SIGTERM to walkin dev also stops the --run command (not just the shell that started it)", async () => {
    const dir = await tempProject({
      "package.json": `{ "type": "module" }\n`,
      "functions/a.ts": "export const x = 1;\n",
      // A front end's dev server: it runs until it is stopped.
      "companion.cjs": `console.log("companion pid=" + process.pid);\nsetInterval(() => {}, 1000);\n`,
    });
    const cli = (running = new Cli(["dev", "--port", "0", "--db", path.join(dir, "data.sqlite"), "--run", "node companion.cjs"], dir));
    const [, pid] = await cli.waitFor(/companion pid=(\d+)/);
    companions.push(Number(pid));
    await cli.waitFor(/Walk-in dev server: http:\/\/\S+/);
    // A process manager, `kill <pid>`, an IDE's stop button: SIGTERM to walkin only, not to its process group.
    cli.child.kill("SIGTERM");
    expect(await exitWithin(cli, 10_000)).toBe(0);
    // docs/cli.md: "it is stopped when the server stops".
    await expect.poll(() => alive(Number(pid)), { timeout: 5000 }).toBe(false);
  }, 60_000);
});

describe("walkin dev --run with a compound command", () => {
  it("a SIGTERM to walkin dev stops every process the command's shell started, not just the shell", async () => {
    const dir = await tempProject({
      "package.json": `{ "type": "module" }\n`,
      "functions/a.ts": "export const x = 1;\n",
      "companion.cjs": `console.log("companion pid=" + process.pid);\nsetInterval(() => {}, 1000);\n`,
    });
    // Two commands through one shell: neither can replace it with `exec`.
    const command = "node companion.cjs & node companion.cjs; wait";
    const cli = (running = new Cli(["dev", "--port", "0", "--db", path.join(dir, "data.sqlite"), "--run", command], dir));
    const [, first] = await cli.waitFor(/companion pid=(\d+)/);
    companions.push(Number(first));
    const [, second] = await cli.waitFor(new RegExp(`companion pid=(?!${first}\\b)(\\d+)`));
    companions.push(Number(second));
    await cli.waitFor(/Walk-in dev server: http:\/\/\S+/);
    cli.child.kill("SIGTERM");
    expect(await exitWithin(cli, 10_000)).toBe(0);
    await expect.poll(() => [alive(Number(first)), alive(Number(second))], { timeout: 5000 }).toEqual([false, false]);
  }, 60_000);
});

describe("walkin dev's type check", () => {
  it("reports a type error in the functions under a solution-style tsconfig.json (Vite's react-ts template)", async () => {
    const compilerOptions = {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      strict: true,
      skipLibCheck: true,
      paths: { "walkin/*": [path.join(REPO, "src/*/index.ts")] },
    };
    const dir = await tempProject({
      "package.json": `{ "type": "module" }\n`,
      // `npm create vite -- --template react-ts`, then `walkin init` in that folder (which keeps
      // tsconfig.json), the app's project including functions/ as well.
      "tsconfig.json": JSON.stringify({ files: [], references: [{ path: "./tsconfig.app.json" }] }),
      "tsconfig.app.json": JSON.stringify({ compilerOptions: { ...compilerOptions, composite: true, noEmit: true }, include: ["src", "functions"] }),
      "functions/a.ts": `export const n: number = "not a number";\n`,
    });
    const cli = (running = new Cli(["dev", "--port", "0", "--db", path.join(dir, "data.sqlite")], dir));
    await cli.waitFor(/Walk-in dev server: http:\/\/\S+/);
    // Either the error, or a word that the functions are not checked; never a false all-clear.
    const [verdict] = await cli.waitFor(/✔ No type errors in the functions|TS2322|not checked/, 0, 60_000);
    expect(verdict).not.toBe("✔ No type errors in the functions");
  }, 90_000);
});

describe("the examples' READMEs", () => {
  // After the repository's `npm install`, as README.md says: dist/ is built, and
  // examples/*/node_modules does not exist.
  it.each(["chat", "shop"])("the %s README's `walkin dev` command, run in examples/<name> as written, serves the functions", async (name) => {
    const folder = path.join(REPO, "examples", name);
    const readme = await readFile(path.join(folder, "README.md"), "utf8");
    const line = readme.split("\n").find((l) => /^[^#]*\bwalkin(\.js)? dev\b/.test(l));
    expect(line, "a `walkin dev` line in the README").toBeDefined();
    const scratch = await mkdtemp(path.join(os.tmpdir(), "walkin-cli-review-"));
    tempDirs.push(scratch);
    // As written, on a free port and a throwaway database; offline, so that npx cannot fetch
    // some other package named "walkin" from the registry.
    const command = `${line!.split("#")[0]!.trim()} --port 0 --db ${path.join(scratch, "data.sqlite")}`;
    const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1", npm_config_offline: "true", npm_config_yes: "false" };
    delete env["WALKIN_CLI_FROM_SOURCE"]; // a user's shell does not set it
    const child = spawn(command, { cwd: folder, shell: true, env, detached: true });
    let output = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    const exited = new Promise<string>((resolve) => child.on("exit", (code) => resolve(`exited with ${code}`)));
    groups.push(child.pid!);
    const ready = (async () => {
      while (!/✔ Functions ready|✖/.test(output)) await new Promise((r) => setTimeout(r, 50));
      return "printed";
    })();
    await Promise.race([ready, exited, new Promise((r) => setTimeout(r, 30_000))]);
    expect({ command, output: output.split("\n").slice(0, 3).join("\n") }).toEqual({ command, output: expect.stringMatching(/^✔ Functions ready/) });
  }, 60_000);
});

describe("codegen and the type check", () => {
  it("api.ts type-checks with a .js module under the tsconfig.json that walkin init writes (strict, no allowJs)", async () => {
    const dir = await tempProject({
      "package.json": `{ "type": "module" }\n`,
      // templates/app/tsconfig.json's options, with `walkin/*` resolved to this repository's sources.
      "tsconfig.json": JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          skipLibCheck: true,
          noEmit: true,
          paths: { "walkin/*": [path.join(REPO, "src/*/index.ts")] },
        },
        include: ["functions"],
      }),
      "functions/messages.ts": `import { query } from "./_generated/server.js";\nexport const list = query({ args: {}, handler: async () => [] as string[] });\n`,
      // docs/cli.md: "every .ts and .js file under the functions directory" is a module.
      "functions/legacy.js": `import { query } from "./_generated/server.js";\nexport const ping = query({ args: {}, handler: async () => "pong" });\n`,
    });
    expect(run(["codegen"], dir).status).toBe(0);
    const tsc = spawnSync(process.execPath, [TSC, "-p", "."], { cwd: dir, encoding: "utf8", timeout: 120_000 });
    const inProject = tsc.stdout.split("\n").filter((line) => line.startsWith("functions/"));
    expect(inProject).toEqual([]);
  }, 120_000);
});

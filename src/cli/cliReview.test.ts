/**
 * The `walkin` command as a user meets it, each case failing before its fix (found in a
 * review): the next step `walkin init` prints (a folder whose name a shell splits, an app
 * whose own dev script does not start Walk-in), `--static` naming a folder that does not exist
 * (`npm start` before `npm run build`), an empty option value (an unset variable), a file
 * where codegen writes its folder, and a type check's verdict on files changed since.
 * `bin/walkin.js` spawned in temporary projects, as in cli.test.ts.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Cli, expectCleanFailure, runCli, SCHEMA, tempProject as makeTempProject, TSCONFIG, writeProject } from "./fixtures/cli.js";

const tempDirs: string[] = [];
const tempProject = (files: Record<string, string>) => makeTempProject(tempDirs, "walkin-cli-review-", files);

let running: Cli | null = null;
afterEach(async () => {
  if (running?.child.exitCode === null) running.child.kill("SIGKILL");
  running = null;
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

const PROJECT = {
  "package.json": `{ "name": "review-app", "type": "module" }\n`,
  "tsconfig.json": TSCONFIG,
  "functions/schema.ts": SCHEMA,
  "functions/messages.ts": `import { query } from "walkin/server";\nexport const list = query({ args: {}, handler: async () => [] });\n`,
};

describe("walkin init", () => {
  it("prints a cd line that a shell runs as written, for a folder name with spaces, quotes or accents", async () => {
    const parent = await mkdtemp(path.join(os.tmpdir(), "walkin-cli-review-"));
    tempDirs.push(parent);
    for (const name of ["my app", "it's", "Café app"]) {
      const result = runCli(["init", name], parent);
      expect(result.status).toBe(0);
      const cdLine = result.stdout.split("\n").find((line) => line.includes("npm install && npm run dev"));
      expect(cdLine).toBeDefined();
      // Run the printed line's `cd …` in a shell, as a user who copies it does.
      const cd = cdLine!.trim().split(" && ")[0]!;
      const shell = spawnSync("sh", ["-c", `${cd} && pwd`], { cwd: parent, encoding: "utf8" });
      expect({ name, cd, stderr: shell.stderr, pwd: shell.stdout.trim() }).toEqual({ name, cd, stderr: "", pwd: path.join(parent, name) });
    }
  });

  it("in an existing app whose dev script it keeps (a Vite app's `vite`), the next step it prints starts Walk-in", async () => {
    const dir = await tempProject({
      "package.json": JSON.stringify({ name: "vite-app", type: "module", scripts: { dev: "vite", build: "tsc -b && vite build" } }),
    });
    const result = runCli(["init"], dir);
    expect(result.status).toBe(0);
    const lines = result.stdout.split("\n");
    const next = lines[lines.indexOf("Next:") + 1]!.trim();
    // What the printed line runs, with `npm run dev` read from the package.json init left.
    const { scripts } = JSON.parse(await readFile(path.join(dir, "package.json"), "utf8")) as { scripts: Record<string, string> };
    const runs = next.split(" && ").map((step) => (step === "npm run dev" ? scripts["dev"] : step));
    expect({ next, runs: runs.filter((step) => /\bwalkin dev\b/.test(step ?? "")).length }).toEqual({ next, runs: 1 });
    // And why: the kept script is named, in a warning.
    expect(result.stderr).toMatch(/⚠ .*"dev".*vite.*walkin dev/);
  });
});

describe("--static naming a folder that is not there", () => {
  it("walkin start refuses it in one line (npm start before npm run build), instead of serving 404s", async () => {
    const dir = await tempProject(PROJECT);
    const result = runCli(["start", "--port", "0", "--db", path.join(dir, "data.sqlite"), "--static", "dist"], dir);
    expectCleanFailure(result, /✖ .*dist.*npm run build/);
  });

  it("walkin start refuses a file given as --static", async () => {
    const dir = await tempProject(PROJECT);
    const result = runCli(["start", "--port", "0", "--db", path.join(dir, "data.sqlite"), "--static", "package.json"], dir);
    expectCleanFailure(result, /✖ .*package\.json.*not a folder/);
  });

  it("walkin dev says so but serves (the front end may be built later, by a --run command)", async () => {
    const dir = await tempProject(PROJECT);
    running = new Cli(["dev", "--port", "0", "--db", path.join(dir, "data.sqlite"), "--static", "dist"], dir);
    const [, url] = await running.waitFor(/Walk-in dev server: (\S+)/);
    expect(running.output).toMatch(/⚠ .*dist.*does not exist/);
    await writeProject(dir, { "dist/index.html": "<p>built</p>" });
    expect(await (await fetch(`${url}/`)).text()).toBe("<p>built</p>");
  });
});

describe("an empty option value (an unset variable: --static \"$DIST\")", () => {
  // Taken as given, an empty --static or --dir is the current folder, and an empty --host every
  // network interface: `walkin start --static ""` served the project's files, its .env and its
  // database included, to anyone who asked.
  it.each([
    ["start", "--static"],
    ["start", "--dir"],
    ["start", "--host"],
    ["dev", "--static"],
    ["dev", "--host"],
  ])("walkin %s %s \"\" is refused, and nothing is served", async (command, option) => {
    const dir = await tempProject({ ...PROJECT, ".env": "SECRET=do-not-serve\n" });
    const cli = (running = new Cli([command, "--port", "0", "--db", path.join(dir, "data.sqlite"), option, ""], dir));
    const served = cli.waitFor(/Walk-in (dev )?server: (\S+)/).then(([, , url]) => url, () => null);
    const outcome = await Promise.race([cli.exited.then((code) => ({ code })), served.then((url) => ({ url }))]);
    expect({ outcome, output: cli.output }).toEqual({ outcome: { code: 1 }, output: expect.stringMatching(new RegExp(`^✖ ${option} is empty`)) });
  });

  it("walkin codegen --dir \"\" is refused, and writes no _generated/ into the project's root", async () => {
    const dir = await tempProject(PROJECT);
    expectCleanFailure(runCli(["codegen", "--dir", ""], dir), /✖ --dir is empty/);
    expect(existsSync(path.join(dir, "_generated"))).toBe(false);
  });
});

describe("walkin codegen", () => {
  it("a file named _generated where codegen writes its folder is refused in one line, not with a stack trace", async () => {
    const dir = await tempProject({ ...PROJECT, "functions/_generated": "not a folder\n" });
    expectCleanFailure(runCli(["codegen"], dir), /✖ functions\/_generated .*is a file.*(remove|rename)/);
  });
});

describe("walkin dev's type check", () => {
  // The project's own `tsc` (typecheck.ts finds it in the app's node_modules first), replaced by
  // one the test drives: it notes its pid, waits for a file named `release`, then reports no
  // errors. So a check can be held running while the files change, with no timing involved.
  // (It also ends once the project is deleted, so that a failed test leaves no process behind.)
  const FAKE_TSC = `const fs = require("node:fs");
fs.appendFileSync("tsc-runs.txt", process.pid + "\\n");
setInterval(() => { if (fs.existsSync("release") || !fs.existsSync("package.json")) process.exit(0); }, 20);
`;

  it("a check running when a save breaks the functions does not then say there are no type errors", async () => {
    const dir = await tempProject({
      ...PROJECT,
      "node_modules/typescript/package.json": `{ "name": "typescript", "version": "5.9.0" }\n`,
      "node_modules/typescript/bin/tsc": FAKE_TSC,
    });
    const cli = (running = new Cli(["dev", "--port", "0", "--db", path.join(dir, "data.sqlite")], dir));
    await cli.waitFor(/Walk-in dev server: http:\/\/\S+/);
    // 1. The first version is served and its check starts (and waits).
    await expect.poll(() => existsSync(path.join(dir, "tsc-runs.txt")), { timeout: 20_000 }).toBe(true);
    // 2. A save with a syntax error: not served, the last good version keeps serving.
    const broken = cli.output.length;
    await writeFile(path.join(dir, "functions/messages.ts"), `export const list = ;\n`);
    await cli.waitFor(/Still serving the last good version/, broken);
    // 3. The check of step 1 may end now; it read the files of step 1, not the broken ones.
    const released = cli.output.length;
    await writeFile(path.join(dir, "release"), "");
    // 4. The file is fixed: that version's check, once it ends, may say there are no errors.
    await writeFile(path.join(dir, "functions/messages.ts"), PROJECT["functions/messages.ts"]);
    await cli.waitFor(/✔ No type errors in the functions/, released);
    const afterRelease = cli.output.slice(released);
    expect(afterRelease.indexOf("✔ Functions ready"), afterRelease).toBeGreaterThan(-1);
    expect(afterRelease.indexOf("✔ No type errors"), afterRelease).toBeGreaterThan(afterRelease.indexOf("✔ Functions ready"));
  }, 60_000);
});

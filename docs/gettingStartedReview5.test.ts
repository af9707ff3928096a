/**
 * docs/getting-started.md, followed literally: its files (each block starts with `// <path>`)
 * are written into a fresh folder with the guide's own tsconfig.json, and the commands it shows
 * run against them, from this repository's sources (`walkin/*` through a `paths` entry, the CLI
 * through WALKIN_CLI_FROM_SOURCE). What the guide prints or promises is what a new user gets.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { BIN, Cli, ENV, REPO, callRaw } from "../src/cli/fixtures/cli.js";

const run = promisify(execFile);
const guide = readFileSync(join(REPO, "docs/getting-started.md"), "utf8");

/** The guide's ts/tsx blocks that name their file on their first line (`// functions/schema.ts`), and index.html. */
function guideFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const match of guide.matchAll(/^```tsx?\n\/\/ (\S+)\n([\s\S]*?)^```/gm)) files[match[1]!] = match[2]!;
  const page = /^```html\n<!-- index.html -->\n([\s\S]*?)^```/m.exec(guide);
  if (page) files["index.html"] = page[1]!;
  return files;
}

/** The guide's tsconfig.json, with `walkin/*` pointed at this repository's sources. */
function guideTsconfig(): string {
  const config = JSON.parse(/^```json\n([\s\S]*?)^```/m.exec(guide)![1]!) as { compilerOptions: Record<string, unknown> };
  config.compilerOptions.paths = { "walkin/*": [join(REPO, "src/*/index.ts")] };
  return JSON.stringify(config, null, 2);
}

/** The lines of the output block that follows the guide's `command` block. */
function shownOutput(command: string): string[] {
  const at = guide.indexOf("```sh\n" + command + "\n```\n\n```\n");
  expect(at, `the guide shows \`${command}\` and then its output`).toBeGreaterThan(-1);
  const start = guide.indexOf("```\n", at + command.length + 10) + 4;
  return guide.slice(start, guide.indexOf("```", start)).trim().split("\n");
}

const apps: string[] = [];
afterAll(() => {
  for (const app of apps) rmSync(app, { recursive: true, force: true });
});

/** A new folder holding the guide's app as a reader has typed it, its packages installed. */
function guideApp(): string {
  const app = mkdtempSync(join(tmpdir(), "walkin-guide-"));
  apps.push(app);
  // The packages the guide installs, each linked from this repository's node_modules; the folder
  // itself is the app's own, so `walkin dev` keeps its type-check state (node_modules/.cache) there.
  mkdirSync(join(app, "node_modules"));
  for (const name of readdirSync(join(REPO, "node_modules"))) {
    if (name !== ".cache") symlinkSync(join(REPO, "node_modules", name), join(app, "node_modules", name), "dir");
  }
  writeFileSync(join(app, "package.json"), JSON.stringify({ type: "module" }));
  writeFileSync(join(app, "tsconfig.json"), guideTsconfig());
  for (const [file, text] of Object.entries(guideFiles())) {
    mkdirSync(dirname(join(app, file)), { recursive: true });
    writeFileSync(join(app, file), text);
  }
  return app;
}

/** `app` once `walkin codegen` has written its functions/_generated/ (as `walkin dev` does). */
async function generated(app: string): Promise<string> {
  await run(process.execPath, [BIN, "codegen"], { cwd: app, env: ENV, timeout: 60_000 });
  return app;
}

/** Runs `walkin <args>` in `app` until `ready` shows, hands it to `use`, then stops it. */
async function withCli(app: string, args: string[], ready: RegExp, use: (cli: Cli, url: string) => Promise<void>): Promise<void> {
  const cli = new Cli(args, app);
  try {
    await cli.waitFor(ready, 0, 60_000);
    await use(cli, (await cli.waitFor(/server: (http:\S+)/))[1]!);
  } finally {
    cli.child.kill("SIGTERM");
    await cli.exited;
  }
}

describe("docs/getting-started.md, followed literally", () => {
  it("installs the TypeScript that `walkin dev` type-checks with, the major `walkin init` pins", async () => {
    const app = mkdtempSync(join(tmpdir(), "walkin-init-"));
    apps.push(app);
    await run(process.execPath, [BIN, "init", app], { env: ENV, timeout: 60_000 });
    const pinned = (JSON.parse(readFileSync(join(app, "package.json"), "utf8")) as { devDependencies: Record<string, string> }).devDependencies.typescript!;
    const major = /\d+/.exec(pinned)![0];
    // An unpinned `typescript` is whatever the registry has newest: TypeScript 7's package
    // exports no bin/tsc, and `walkin dev` then says to install the TypeScript it already has.
    expect(guide).toMatch(new RegExp(`npm install -D typescript@${major}\\b`));
  });

  it("`npx walkin dev` prints what the guide shows", async () => {
    const app = guideApp();
    await withCli(app, ["dev", "--port", "0"], /type errors/, async (cli, url) => {
      const port = new URL(url).port;
      const printed = cli.output.trim().split("\n").map((line) =>
        line.replaceAll(`:${port}`, ":3210").replace(/in \d+ ms/, "in 84 ms").replace(/#key=\S+/, "#key=…"),
      );
      expect(printed).toEqual(shownOutput("npx walkin dev"));
    });
  }, 90_000);

  it("the page type-checks with the guide's tsconfig.json", async () => {
    const app = await generated(guideApp());
    const tsc = join(REPO, "node_modules/typescript/bin/tsc");
    const errors = await run(process.execPath, [tsc, "-p", "."], { cwd: app, timeout: 60_000 }).then(
      () => "",
      (e: { stdout?: string; message: string }) => e.stdout ?? e.message,
    );
    // Errors inside this repository's sources are the repository tsconfig's to find.
    expect(errors.split("\n").filter((line) => /^(functions|src)\//.test(line))).toEqual([]);
  }, 90_000);

  it("after `walkin start`, sending an empty message still shows the guide's \"Say something!\"", async () => {
    const app = guideApp();
    await withCli(app, ["start", "--port", "0", "--db", "sqlite::memory:"], /Walk-in server:/, async (_cli, url) => {
      const sent = await callRaw(url, "mutation", "messages:send", { author: "Ada", body: " " });
      expect(sent.body).toMatchObject({ status: "error", errorMessage: "Say something!" });
    });
  }, 90_000);

  it("the built page talks to the server that serves it, not to `walkin dev`'s port", async () => {
    const app = await generated(guideApp());
    // `npx vite build`, as the guide runs it; only `walkin/*` is pointed at the sources.
    const alias = `[{ find: /^walkin\\/(.*)$/, replacement: ${JSON.stringify(join(REPO, "src"))} + "/$1/index.ts" }]`;
    writeFileSync(join(app, "vite.config.mjs"), `export default { logLevel: "warn", resolve: { alias: ${alias} } };\n`);
    const { NODE_ENV: _testMode, ...env } = process.env; // vitest's "test" would make a development build
    await run(process.execPath, [join(REPO, "node_modules/vite/bin/vite.js"), "build"], { cwd: app, env, timeout: 60_000 });
    const assets = join(app, "dist/assets");
    const code = readdirSync(assets).filter((file) => file.endsWith(".js")).map((file) => readFileSync(join(assets, file), "utf8")).join("\n");
    expect(code).toContain("Say something"); // the page was built
    // The client is made with the page's origin; the dev server's address stays in development.
    expect(code).toMatch(/new \w+\(location\.origin\)/);
    expect(code).not.toMatch(/new \w+\("http:\/\/127\.0\.0\.1:3210"\)/);
  }, 90_000);
});

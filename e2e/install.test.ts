/**
 * What a new user does, outside this repository: pack the package (`npm pack`, which builds
 * dist/ through `prepare`), install the tarball into an empty folder in the temp directory,
 * scaffold the app with `walkin init`, install its dependencies, build it (codegen, tsc, vite),
 * then run `walkin dev` and call the functions over HTTP and over a WebSocket client imported
 * from the installed package. Nothing here resolves into the repository's sources.
 *
 * One shortcut, for time only: better-sqlite3 has no prebuilt binary reachable from these
 * machines, so npm would compile it again (about 90 s). The binary this repository already
 * built is offered to its installer as a "local prebuild" (prebuild-install's documented
 * `npm_config_better_sqlite3_local_prebuilds`), and the app pins that same version.
 */
import { spawn, spawnSync, type SpawnSyncOptions } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("..", import.meta.url));
let work: string;
let app: string;
let env: NodeJS.ProcessEnv;

function run(command: string, args: string[], options: SpawnSyncOptions = {}): string {
  const result = spawnSync(command, args, { cwd: app, env, encoding: "utf8", ...options });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited with ${result.status ?? result.signal}:\n${String(result.stdout)}\n${String(result.stderr)}`);
  }
  return `${String(result.stdout)}${String(result.stderr)}`;
}

/** A tarball in prebuild-install's layout holding the better-sqlite3 binary built here. */
async function localPrebuild(): Promise<{ dir: string; version: string }> {
  const moduleDir = path.join(REPO, "node_modules", "better-sqlite3");
  const { version } = JSON.parse(await readFile(path.join(moduleDir, "package.json"), "utf8")) as { version: string };
  const staging = path.join(work, "prebuild-staging");
  await mkdir(path.join(staging, "build", "Release"), { recursive: true });
  await copyFile(path.join(moduleDir, "build", "Release", "better_sqlite3.node"), path.join(staging, "build", "Release", "better_sqlite3.node"));
  const dir = path.join(work, "prebuilds");
  await mkdir(dir);
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  run("tar", ["czf", path.join(dir, name), "-C", staging, "build"], { cwd: work });
  return { dir, version };
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "walkin-install-"));
  app = path.join(work, "my-app");
  await mkdir(app);
  const prebuild = await localPrebuild();
  env = {
    ...process.env,
    NO_COLOR: "1",
    npm_config_better_sqlite3_local_prebuilds: prebuild.dir,
    npm_config_audit: "false",
    npm_config_fund: "false",
    npm_config_update_notifier: "false",
  };
  delete env["WALKIN_CLI_FROM_SOURCE"];
  await writeFile(
    path.join(app, "package.json"),
    JSON.stringify({ name: "my-app", private: true, overrides: { "better-sqlite3": prebuild.version } }, null, 2),
  );
}, 60_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("Node 20", () => {
  // npm's own semver (a dependency of the tools here), to read engines ranges as npm does.
  const semver = createRequire(import.meta.url)("semver") as { satisfies(version: string, range: string): boolean };

  it("is enough for every dependency: what an app installs supports all of Node 20 (package.json says >=20), and nothing installed here warns EBADENGINE", async () => {
    const lock = JSON.parse(await readFile(path.join(REPO, "package-lock.json"), "utf8")) as {
      packages: Record<string, { dev?: boolean; optional?: boolean; engines?: { node?: string } }>;
    };
    const pkg = JSON.parse(await readFile(path.join(REPO, "package.json"), "utf8")) as { engines: { node: string } };
    expect(pkg.engines.node).toBe(">=20");
    const refusing = (version: string, which: (p: { dev?: boolean }) => boolean) =>
      Object.entries(lock.packages)
        .filter(([name, p]) => name !== "" && which(p) && p.engines?.node && !semver.satisfies(version, p.engines.node))
        .map(([name, p]) => `${name} wants Node ${p.engines!.node}`);
    expect(refusing("20.0.0", (p) => !p.dev)).toEqual([]);
    expect(refusing(process.versions.node, () => true)).toEqual([]);
  });
});

describe("the package, packed and installed into a fresh app", () => {
  it("installs, scaffolds, builds, and serves over HTTP and WebSocket", async () => {
    const packed = run("npm", ["pack", "--pack-destination", work, "--silent"], { cwd: REPO }).trim().split("\n").pop()!;
    const tarball = path.join(work, packed);
    run("npm", ["install", "--prefer-offline", tarball]);
    // Its install script built the native continuation context from the packed sources
    // (native/, binding.gyp); Node 24 and later need none (src/engine/continuationContext.ts).
    const addon = path.join(app, "node_modules", "walkin", "build", "Release", "walkin_context.node");
    expect(existsSync(addon)).toBe(Number(process.versions.node.split(".")[0]) < 24);

    // `walkin init` in the folder keeps the walkin dependency npm just wrote.
    const init = run("npx", ["walkin", "init"]);
    expect(init).toContain("Created functions/messages.ts");
    expect(JSON.parse(await readFile(path.join(app, "package.json"), "utf8"))).toMatchObject({
      type: "module",
      dependencies: { walkin: expect.stringContaining("walkin-0.1.0.tgz") },
      scripts: { dev: expect.stringContaining("walkin dev") },
    });
    run("npm", ["install", "--prefer-offline"]);

    expect(run("npx", ["walkin", "codegen"])).toContain("Generated functions/_generated");
    // The scaffolded app type-checks against the installed package's types, and builds.
    run("npm", ["run", "build"]);
    expect(await readFile(path.join(app, "dist", "index.html"), "utf8")).toMatch(/<script type="module" crossorigin src="\/assets\//);

    // The installed command, as `npx walkin dev` or an npm script finds it.
    const dev = spawn(path.join(app, "node_modules", ".bin", "walkin"), ["dev", "--port", "0"], { cwd: app, env });
    let output = "";
    dev.stdout.setEncoding("utf8").on("data", (c: string) => (output += c));
    dev.stderr.setEncoding("utf8").on("data", (c: string) => (output += c));
    const exited = new Promise<number | null>((resolve) => dev.on("exit", (code) => resolve(code)));
    try {
      const url = await waitFor(() => /Walk-in dev server: (http:\/\/\S+)/.exec(output)?.[1], () => output);

      const call = async (kind: string, fnPath: string, args: unknown) => {
        const response = await fetch(`${url}/api/${kind}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ path: fnPath, args }) });
        return (await response.json()) as { status: string; value?: unknown };
      };
      expect(await call("mutation", "messages:send", { author: "Ada", body: "over HTTP" })).toMatchObject({ status: "success" });

      // A WebSocket client, as a Node script of the app would use it (Node 20 has no global WebSocket).
      await writeFile(
        path.join(app, "client.mjs"),
        `import { WalkinClient } from "walkin/browser";
import { anyApi } from "walkin/server";
import { WebSocket } from "ws";
const client = new WalkinClient(process.argv[2], { webSocketConstructor: WebSocket });
await client.mutation(anyApi.messages.send, { author: "Bob", body: "over WebSocket" });
const messages = await client.query(anyApi.messages.list, {});
console.log(JSON.stringify(messages.map((m) => m.author + ": " + m.body)));
await client.close();
`,
      );
      const printed = run("node", ["client.mjs", url]);
      expect(JSON.parse(printed.trim().split("\n").pop()!)).toEqual(["Ada: over HTTP", "Bob: over WebSocket"]);

      // The dev server type-checks with the app's own tsc: no errors in the template.
      await waitFor(() => (output.includes("✔ No type errors in the functions") ? true : undefined), () => output);
      expect(output).not.toContain("✖");
    } finally {
      dev.kill("SIGINT");
    }
    expect(await exited).toBe(0);
    expect(output).not.toContain("without a clean shutdown");
  }, 600_000);
});

async function waitFor<T>(probe: () => T | undefined, describe: () => string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out; output so far:\n${describe()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

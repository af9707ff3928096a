import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InitError, initApp } from "./init.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "walkin-init-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("initApp", () => {
  it("creates the app in a new folder, with a package.json that depends on this walkin", async () => {
    const target = path.join(dir, "My App");
    const { created, kept } = await initApp(target);
    expect(created).toEqual(expect.arrayContaining(["functions/schema.ts", "functions/messages.ts", "src/App.tsx", "src/main.tsx", "index.html", "tsconfig.json", "vite.config.ts", ".gitignore"]));
    expect(kept).toEqual([]);
    const pkg = JSON.parse(await readFile(path.join(target, "package.json"), "utf8"));
    expect(pkg).toMatchObject({ name: "my-app", type: "module", scripts: { dev: 'walkin dev --run "vite --port 5173"' } });
    // Run from this repository (not from node_modules): the dependency is the folder.
    expect(pkg.dependencies.walkin).toMatch(/^file:(\.\.\/)+/);
  });

  it("keeps existing files and package.json fields, and a second run changes nothing", async () => {
    await writeFile(path.join(dir, "package.json"), JSON.stringify({ name: "mine", scripts: { dev: "my-dev" }, dependencies: { walkin: "^9.9.9" } }));
    await writeFile(path.join(dir, "index.html"), "<p>mine</p>");
    const first = await initApp(dir);
    expect(first.kept).toEqual(["index.html"]);
    expect(first.addedToPackageJson).toContain("scripts.build");
    expect(first.addedToPackageJson).not.toContain("scripts.dev");
    const pkg = JSON.parse(await readFile(path.join(dir, "package.json"), "utf8"));
    expect(pkg).toMatchObject({ name: "mine", type: "module", scripts: { dev: "my-dev" }, dependencies: { walkin: "^9.9.9" } });
    expect(await readFile(path.join(dir, "index.html"), "utf8")).toBe("<p>mine</p>");

    const second = await initApp(dir);
    expect(second.created).toEqual([]);
    expect(second.addedToPackageJson).toEqual([]);
  });

  it("refuses a CommonJS package and a broken package.json, changing nothing", async () => {
    await writeFile(path.join(dir, "package.json"), JSON.stringify({ type: "commonjs" }));
    await expect(initApp(dir)).rejects.toThrow(InitError);
    await expect(initApp(dir)).rejects.toThrow(/"type": "module"/);
    await writeFile(path.join(dir, "package.json"), "{ nope");
    await expect(initApp(dir)).rejects.toThrow(/not valid JSON/);
    expect(await readdir(dir)).toEqual(["package.json"]);
  });
});

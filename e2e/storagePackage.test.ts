/**
 * The storage contract is public: a package outside this repository imports the conformance
 * suite from the built `walkin` package and runs it in its own vitest. This builds the package
 * (as `npm pack` would ship it) into a temporary `node_modules/walkin`, copies the fixture
 * package next to it, type-checks it against the built declarations and runs vitest there,
 * in its own process.
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "walkin-external-storage-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

it("an outside package runs the conformance suite from the built package against SQLite", () => {
  const pkg = join(work, "node_modules", "walkin");
  mkdirSync(pkg, { recursive: true });
  cpSync(join(root, "package.json"), join(pkg, "package.json"));
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  const build = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json"), "--outDir", join(pkg, "dist")], { encoding: "utf8" });
  expect(build.status, build.stdout + build.stderr).toBe(0);
  // The built package finds its own dependencies (better-sqlite3, vitest) where npm would put them.
  symlinkSync(join(root, "node_modules"), join(pkg, "node_modules"));
  symlinkSync(join(root, "node_modules", "vitest"), join(work, "node_modules", "vitest"));
  cpSync(join(root, "e2e", "fixtures", "externalStorage"), join(work, "check"), { recursive: true });

  // Its types check against the built package's declarations, as a user's would.
  const types = spawnSync(process.execPath, [tsc, "-p", join(work, "check", "tsconfig.json")], { encoding: "utf8" });
  expect(types.status, types.stdout + types.stderr).toBe(0);

  const vitest = join(root, "node_modules", "vitest", "vitest.mjs");
  const run = spawnSync(process.execPath, [vitest, "run", "--root", join(work, "check"), "--reporter", "verbose"], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  const output = run.stdout + run.stderr;
  expect(run.status, output).toBe(0);
  expect(output).toMatch(/Storage conformance: sqlite, from the built package/);
  expect(output).toMatch(/Tests\s+\d+ passed/);
  expect(output).not.toMatch(/failed/);
}, 300_000);

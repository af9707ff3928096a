import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { findTsc, findTsconfig, parseTscOutput } from "./typecheck.js";

describe("parseTscOutput", () => {
  it("reads file, line, column and message, keeping a message's continuation lines", () => {
    const output = [
      "functions/messages.ts(8,5): error TS2322: Type 'number[]' is not assignable to type 'string[]'.",
      "  Type 'number' is not assignable to type 'string'.",
      "src/App.tsx(3,1): error TS6133: 'x' is declared but its value is never read.",
      "",
    ].join("\n");
    expect(parseTscOutput(output, "/app")).toEqual([
      {
        file: "/app/functions/messages.ts",
        line: 8,
        column: 5,
        message: "Type 'number[]' is not assignable to type 'string[]'. (TS2322)\nType 'number' is not assignable to type 'string'.",
      },
      { file: "/app/src/App.tsx", line: 3, column: 1, message: "'x' is declared but its value is never read. (TS6133)" },
    ]);
  });

  it("finds nothing in a clean run or in tsc's own complaints", () => {
    expect(parseTscOutput("", "/app")).toEqual([]);
    expect(parseTscOutput("error TS5083: Cannot read file '/app/tsconfig.json'.\n", "/app")).toEqual([]);
  });
});

describe("findTsconfig", () => {
  it("takes the functions directory's own tsconfig.json, else the nearest one above", async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), "walkin-tsconfig-"));
    try {
      await mkdir(path.join(root, "functions", "lib"), { recursive: true });
      await writeFile(path.join(root, "tsconfig.json"), "{}");
      expect(findTsconfig(path.join(root, "functions", "lib"))).toBe(path.join(root, "tsconfig.json"));
      await writeFile(path.join(root, "functions", "tsconfig.json"), "{}");
      expect(findTsconfig(path.join(root, "functions"))).toBe(path.join(root, "functions", "tsconfig.json"));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("findTsc", () => {
  it("finds the app's own tsc through its package's bin, as TypeScript 7 lays it out (no export of bin/tsc)", async () => {
    const app = await mkdtemp(path.join(os.tmpdir(), "walkin-tsc-"));
    try {
      const typescript = path.join(app, "node_modules", "typescript");
      await mkdir(path.join(typescript, "bin"), { recursive: true });
      await writeFile(path.join(app, "package.json"), JSON.stringify({ name: "app", private: true }));
      // TypeScript 7's manifest: only listed paths are exported, bin/tsc not among them.
      const manifest = { name: "typescript", version: "7.0.2", bin: { tsc: "./bin/tsc" }, exports: { "./package.json": "./package.json", ".": "./lib/version.cjs" } };
      await writeFile(path.join(typescript, "package.json"), JSON.stringify(manifest));
      await writeFile(path.join(typescript, "bin", "tsc"), "#!/usr/bin/env node\n");
      expect(findTsc(app)).toBe(path.join(typescript, "bin", "tsc"));
    } finally {
      await rm(app, { recursive: true, force: true });
    }
  });
});

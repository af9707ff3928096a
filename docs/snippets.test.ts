/**
 * Runs the examples in the docs. Every ```ts example block of a markdown file in docs/ is
 * collected, in order, into one module per file (later blocks may use what earlier ones
 * defined), `walkin/*` imports are pointed at this repository's sources, and the module is run
 * with tsx. A doc whose example throws or fails an assertion fails this test.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const docsDir = fileURLToPath(new URL(".", import.meta.url));
const srcDir = resolve(docsDir, "../src");
const run = promisify(execFile);
const scratch = resolve(docsDir, "../node_modules/.cache/walkin-docs");

export function extractExamples(markdown: string): string[] {
  return [...markdown.matchAll(/```ts example\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

function pointImportsAtSources(code: string): string {
  return code.replace(/from "walkin\/([A-Za-z/]+)"/g, (_m, sub: string) => `from "${join(srcDir, sub, "index.ts")}"`);
}

const docs = readdirSync(docsDir).filter((file) => file.endsWith(".md"));

describe("docs examples run", () => {
  for (const file of docs) {
    const examples = extractExamples(readFileSync(join(docsDir, file), "utf8"));
    if (examples.length === 0) continue;
    it(file, async () => {
      // Inside the repository, so the examples' package imports (ws, react, ...) resolve.
      mkdirSync(scratch, { recursive: true });
      const dir = mkdtempSync(join(scratch, "doc-"));
      try {
        const module = join(dir, "example.mts");
        writeFileSync(module, pointImportsAtSources(examples.join("\n")) + "\nprocess.exit(0);\n");
        const { stderr } = await run(process.execPath, ["--import", "tsx", module], { cwd: resolve(docsDir, ".."), timeout: 60_000 });
        expect(stderr).not.toMatch(/Error/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 90_000);
  }
});

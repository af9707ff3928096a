/**
 * The README's code runs. Its ```ts / ```tsx blocks are the files of one small app, each
 * marked with its path (```ts file=functions/messages.ts). They are written into a fresh folder
 * laid out as `walkin init` makes it, with `walkin init`'s own tsconfig.json; codegen writes
 * `functions/_generated/`, `tsc` type-checks everything (the React files included), and a short
 * driver runs the functions on the real engine with walkinTest, as a visitor would use them.
 *
 * `walkin/*` imports resolve to this repository's sources through a `paths` entry in a tsconfig
 * that extends the app's (for `tsc` and for tsx), so nothing needs building first.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { writeGenerated } from "../src/cli/codegen.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const run = promisify(execFile);

interface ReadmeFile {
  path: string;
  code: string;
  /** The README line of the block's first code line. */
  line: number;
}

/** The README's ts/tsx blocks as app files; a block without `file=` or a path used twice is an error. */
function readmeFiles(markdown: string): ReadmeFile[] {
  const files: ReadmeFile[] = [];
  for (const match of markdown.matchAll(/^```(ts|tsx)\b([^\n]*)\n([\s\S]*?)^```/gm)) {
    const line = markdown.slice(0, match.index).split("\n").length + 1;
    const path = /\bfile=(\S+)/.exec(match[2]!)?.[1];
    if (!path) throw new Error(`README.md:${line - 1}: a \`\`\`${match[1]} block needs its file path, e.g. \`\`\`${match[1]} file=functions/messages.ts`);
    if (files.some((f) => f.path === path)) throw new Error(`README.md:${line - 1}: ${path} is shown twice; the README's blocks are one app`);
    files.push({ path, code: match[3]!, line });
  }
  return files;
}

/**
 * The errors tsc found in the app's own files, each pointed at the README line it came from
 * (`functions/messages.ts(5,3)` → `README.md:92:3`). Errors inside this repository's sources are
 * left out: an installed app sees them as .d.ts files under `skipLibCheck`, and the repository's
 * own tsconfig checks them (the app's has no Node types, which src/ needs).
 */
function appErrors(output: string, files: ReadmeFile[]): string {
  const lines = output.split("\n").filter((line) => /^[\w-][\w/.-]*\(\d+,\d+\)/.test(line));
  return lines
    .map((line) =>
      line.replace(/^([\w/.-]+)\((\d+),(\d+)\)/, (whole, path: string, row: string, column: string) => {
        const file = files.find((f) => f.path === path);
        return file ? `README.md:${file.line + Number(row) - 1}:${column} (${path})` : whole;
      }),
    )
    .join("\n");
}

// What a visitor does: sends a message as a session, reads it live, signs in anonymously, signs up.
const DRIVER = `
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { walkinTest } from "walkin/testing";
import schema from "./functions/schema.js";
import * as messages from "./functions/messages.js";
import * as auth from "./functions/auth.js";
import { api } from "./functions/_generated/api.js";

const t = walkinTest(schema, { messages, auth });
const sessionId = randomUUID();
await t.mutation(api.messages.send, { sessionId, body: "hello" });
await t.mutation(api.messages.send, { sessionId, body: "again" });
const list = await t.query(api.messages.list, {});
assert.deepEqual(list.map((m) => [m.author, m.body]), [["Anonymous", "again"], ["Anonymous", "hello"]]);

const guest = await t.action(api.auth.signIn, { provider: "anonymous" });
assert.equal(guest.kind, "signedIn");
if (guest.kind !== "signedIn") throw new Error("unreachable");
const account = await t.withToken(guest.token).action(api.auth.signIn, {
  provider: "password",
  params: { flow: "signUp", email: "ada@example.com", password: "analytical engine" },
});
assert.equal(account.userId, guest.userId);
process.exit(0);
`;

describe("README", () => {
  it("says which block lacks its file path, and refuses a path shown twice", () => {
    const block = (info: string) => "```" + info + "\nexport {};\n```\n";
    expect(() => readmeFiles("# x\n\n" + block("ts"))).toThrow("README.md:3: a ```ts block needs its file path");
    expect(() => readmeFiles(block("ts file=a.ts") + block("tsx file=a.ts"))).toThrow("a.ts is shown twice");
    expect(readmeFiles(block("ts file=functions/a.ts") + block("sh"))).toEqual([{ path: "functions/a.ts", code: "export {};\n", line: 2 }]);
  });

  it("its files type-check with walkin init's tsconfig and run", async () => {
    const files = readmeFiles(readFileSync(join(root, "README.md"), "utf8"));
    expect(files.map((f) => f.path)).toEqual(expect.arrayContaining(["functions/schema.ts", "functions/messages.ts", "functions/auth.ts"]));
    const app = mkdtempSync(join(tmpdir(), "walkin-readme-"));
    try {
      // The app's dependencies (react, vite's types…) as an installed app has them.
      symlinkSync(join(root, "node_modules"), join(app, "node_modules"), "dir");
      writeFileSync(join(app, "package.json"), JSON.stringify({ type: "module" }));
      writeFileSync(join(app, "tsconfig.json"), readFileSync(join(root, "templates/app/tsconfig.json")));
      const paths = { "walkin/*": [join(root, "src/*/index.ts")] };
      writeFileSync(join(app, "tsconfig.sources.json"), JSON.stringify({ extends: "./tsconfig.json", compilerOptions: { paths } }));
      for (const file of files) {
        mkdirSync(dirname(join(app, file.path)), { recursive: true });
        writeFileSync(join(app, file.path), file.code);
      }
      await writeGenerated(join(app, "functions"));

      const tsc = join(root, "node_modules/typescript/bin/tsc");
      const checked = await run(process.execPath, [tsc, "-p", "tsconfig.sources.json"], { cwd: app, timeout: 60_000 }).then(
        () => "",
        (e: { stdout?: string; message: string }) => appErrors(e.stdout ?? e.message, files),
      );
      expect(checked).toBe("");

      writeFileSync(join(app, "driver.ts"), DRIVER);
      const env = { ...process.env, TSX_TSCONFIG_PATH: "tsconfig.sources.json" };
      const { stderr } = await run(process.execPath, ["--import", "tsx", "driver.ts"], { cwd: app, env, timeout: 60_000 });
      expect(stderr).not.toMatch(/Error/);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  }, 120_000);
});

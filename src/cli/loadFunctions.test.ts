import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFunctions, type LoadResult } from "./loadFunctions.js";

// The modules import the repository's sources by absolute path: no build, no package link.
const SERVER = fileURLToPath(new URL("../server/index.ts", import.meta.url));
const VALUES = fileURLToPath(new URL("../values/index.ts", import.meta.url));

let root: string;
let n = 0;
/** A fresh functions directory with these files. */
async function project(files: Record<string, string>): Promise<string> {
  const dir = path.join(root, `p${++n}`, "functions");
  for (const [file, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), text);
  }
  await writeFile(path.join(dir, "..", "package.json"), `{ "type": "module" }\n`);
  return dir;
}

function failure(result: LoadResult) {
  if (result.ok) throw new Error("expected the load to fail");
  return result.failure;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "walkin-load-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const SCHEMA = `
import { defineSchema, defineTable } from ${JSON.stringify(SERVER)};
import { v } from ${JSON.stringify(VALUES)};
export default defineSchema({ messages: defineTable({ body: v.string() }) });
`;
const MESSAGES = `
import { query, mutation } from ${JSON.stringify(SERVER)};
import { greeting } from "./lib/text.js";
export const list = query({ args: {}, handler: async () => greeting });
export const send = mutation({ args: {}, handler: async () => null });
export const notAFunction = 42;
`;

describe("loadFunctions", () => {
  it("loads the schema and every module by module path", async () => {
    const dir = await project({
      "schema.ts": SCHEMA,
      "messages.ts": MESSAGES,
      "lib/text.ts": `export const greeting: string = "hello";\n`,
      "messages.test.ts": `throw new Error("tests are not loaded");\n`,
    });
    const result = await loadFunctions(dir);
    if (!result.ok) throw new Error(result.failure.message);
    const { schema, modules, functionCount } = result.functions;
    expect(Object.keys(schema!.tables)).toEqual(["messages"]);
    expect(Object.keys(modules).sort()).toEqual(["lib/text", "messages"]);
    expect(modules["lib/text"]!["greeting"]).toBe("hello");
    expect(functionCount).toBe(2);
    await result.functions.release();
  });

  it("has a null schema without schema.ts", async () => {
    const dir = await project({ "a.ts": `export const x = 1;\n` });
    const result = await loadFunctions(dir);
    expect(result.ok && result.functions.schema).toBe(null);
  });

  it("sees edits on the next load", async () => {
    const dir = await project({ "a.ts": `import { b } from "./b.js";\nexport const x = b;\n`, "b.ts": `export const b = 1;\n` });
    const first = await loadFunctions(dir);
    await writeFile(path.join(dir, "b.ts"), `export const b = 2;\n`);
    const second = await loadFunctions(dir);
    expect(first.ok && first.functions.modules["a"]!["x"]).toBe(1);
    expect(second.ok && second.functions.modules["a"]!["x"]).toBe(2);
  });

  it("shares Walk-in's own modules across loads, not the app's", async () => {
    const dir = await project({
      "a.ts": `export { CronJobs } from ${JSON.stringify(SERVER)};\nexport class Local {}\n`,
    });
    const first = await loadFunctions(dir);
    const second = await loadFunctions(dir);
    if (!first.ok || !second.ok) throw new Error("expected both loads to succeed");
    const [a1, a2] = [first.functions.modules["a"]!, second.functions.modules["a"]!];
    expect(a1["CronJobs"]).toBe(a2["CronJobs"]);
    expect(a1["Local"]).not.toBe(a2["Local"]);
  });

  it("reports a syntax error with file, line and column", async () => {
    const dir = await project({ "good.ts": `export const y = 1;\n`, "broken.ts": `export const x = 1;\nexport const y = (;\n` });
    const f = failure(await loadFunctions(dir));
    expect(f).toMatchObject({ file: path.join(dir, "broken.ts"), line: 2, column: 19, source: "export const y = (;" });
    expect(f.message).toMatch(/Unexpected ";"/);
  });

  it("reports a syntax error in a file a module imports", async () => {
    const dir = await project({ "a.ts": `import { z } from "./lib/z.js";\nexport const x = z;\n`, "lib/z.ts": `export const z = ];\n` });
    expect(failure(await loadFunctions(dir))).toMatchObject({ file: path.join(dir, "lib/z.ts"), line: 1 });
  });

  it("reports an error thrown while a module runs at its frame", async () => {
    const dir = await project({ "a.ts": `export const x = 1;\ninterface I {}\nfunction boom(): never {\n  throw new Error("no config");\n}\nboom();\n` });
    const f = failure(await loadFunctions(dir));
    expect(f).toMatchObject({ file: path.join(dir, "a.ts"), line: 4, column: 9, message: "no config" });
  });

  it("reports an import of a missing export", async () => {
    const dir = await project({
      "a.ts": `interface A {\n  x: number;\n}\n\nimport { nope } from "./b.js";\nexport const x: A = { x: nope };\n`,
      "b.ts": `export const b = 1;\n`,
    });
    const f = failure(await loadFunctions(dir));
    expect(f).toMatchObject({ file: path.join(dir, "a.ts"), line: 5 });
    expect(f.message).toContain("nope");
  });

  it("reports a missing file at the import that names it", async () => {
    const dir = await project({ "a.ts": `export const y = 1;\nimport { x } from "./missing.js";\nexport const z = x;\n` });
    const f = failure(await loadFunctions(dir));
    expect(f).toMatchObject({ file: path.join(dir, "a.ts"), line: 2 });
    expect(f.message).toContain("missing");
  });

  it("refuses a schema.ts whose default export is not a schema", async () => {
    const dir = await project({ "schema.ts": `export default { users: 1 };\n` });
    const f = failure(await loadFunctions(dir));
    expect(f.file).toBe(path.join(dir, "schema.ts"));
    expect(f.message).toContain("export default defineSchema");
  });

  it("hints at a package.json without type: module", async () => {
    const dir = await project({ "a.ts": `throw new Error("x");\n` });
    await writeFile(path.join(dir, "..", "package.json"), `{}\n`);
    expect(failure(await loadFunctions(dir)).message).toContain(`"type": "module"`);
  });
});

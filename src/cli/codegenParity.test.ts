/**
 * `_generated/` against code written for Convex: real generated files, compiled by tsc in
 * temporary projects with Convex's imports (`./_generated/server`, no extension, as Convex's
 * `moduleResolution: "Bundler"` allows) and `walkin/*` resolved to this repository's sources, as
 * in cli.test.ts. Also what codegen leaves in `_generated/` for a bundler to resolve.
 */
import { spawnSync } from "node:child_process";
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findModules, writeGenerated } from "./codegen.js";
import { loadFunctions } from "./loadFunctions.js";
import { REPO, tempProject } from "./fixtures/cli.js";

const TSC = path.join(REPO, "node_modules", "typescript", "bin", "tsc");

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Convex's own functions tsconfig (Bundler resolution, strict, no allowJs), `walkin/*` mapped to the sources. */
function tsconfig(): string {
  return JSON.stringify({
    compilerOptions: {
      target: "ES2022",
      module: "ESNext",
      moduleResolution: "Bundler",
      lib: ["ES2023", "DOM"],
      jsx: "react-jsx",
      strict: true,
      isolatedModules: true,
      skipLibCheck: true,
      noEmit: true,
      types: [],
      paths: { "walkin/*": [path.join(REPO, "src/*/index.ts")] },
    },
    include: ["functions", "app.ts"],
  });
}

/** A project of `files`, with codegen run on its functions directory. */
async function generatedProject(files: Record<string, string>): Promise<string> {
  const dir = await tempProject(dirs, "walkin-codegen-parity-", { "package.json": `{ "type": "module" }\n`, "tsconfig.json": tsconfig(), ...files });
  await writeGenerated(path.join(dir, "functions"));
  return dir;
}

/** tsc's errors for the project, one per line, or [] when it type-checks. */
function typeErrors(dir: string): string[] {
  const tsc = spawnSync(process.execPath, [TSC, "-p", "."], { cwd: dir, encoding: "utf8", timeout: 120_000 });
  const errors = tsc.stdout.split("\n").filter((line) => line.includes("error TS"));
  // tsc failing without a type error (killed, a bad tsconfig) must not pass as a clean run.
  return errors.length === 0 && tsc.status !== 0 ? [`tsc exited with ${tsc.status}: ${tsc.stdout}${tsc.stderr}`] : errors;
}

const SCHEMA = `import { defineSchema, defineTable } from "walkin/server";
import { v } from "walkin/values";

export default defineSchema({
  messages: defineTable({ body: v.string(), author: v.id("users") }).index("by_author", ["author"]),
  users: defineTable({ name: v.string() }),
});
`;

describe("_generated/ for a Convex app", () => {
  it("type-checks nested modules, default and re-exported functions, the data model types and the ctx types", async () => {
    const dir = await generatedProject({
      "functions/schema.ts": SCHEMA,
      "functions/messages.ts": `import { v } from "walkin/values";
import { internalMutation, mutation, query, type DatabaseReader, type DatabaseWriter, type MutationCtx, type QueryCtx } from "./_generated/server";
import type { DataModel, Doc, Id, TableNames } from "./_generated/dataModel";

async function all(db: DatabaseReader): Promise<Doc<"messages">[]> {
  return db.query("messages").collect();
}
async function add(db: DatabaseWriter, body: string, author: Id<"users">): Promise<Id<"messages">> {
  return db.insert("messages", { body, author });
}
export const tables: TableNames[] = ["messages", "users"];
export type Model = DataModel;
export async function helper(ctx: QueryCtx): Promise<Doc<"messages">[]> {
  return all(ctx.db);
}
export async function firstUser(ctx: MutationCtx): Promise<Doc<"users"> | null> {
  return ctx.db.query("users").first();
}

export const list = query({ args: {}, handler: async (ctx) => (await all(ctx.db)).map((m) => m.body) });
export const send = mutation({
  args: { body: v.string(), author: v.id("users") },
  handler: (ctx, { body, author }) => add(ctx.db, body, author),
});
export const clear = internalMutation({ args: {}, handler: async () => null });
export default query({ args: {}, handler: async () => "the default export" as const });
`,
      "functions/lib.ts": `import { query } from "./_generated/server";\nexport const top = query({ args: {}, handler: async () => 1 });\n`,
      "functions/lib/users.ts": `import { query } from "../_generated/server";
export const count = query({ args: {}, handler: async (ctx) => (await ctx.db.query("users").collect()).length });
`,
      "functions/folder/nested/deep.ts": `import { action, internalAction, query, type ActionCtx } from "../../_generated/server";
import { api, internal } from "../../_generated/api";

export const fn = query({ args: {}, handler: async () => ({ ok: true }) });
export const secret = internalAction({ args: {}, handler: async () => 5 });
export const act = action({
  args: {},
  handler: async (ctx: ActionCtx): Promise<number> => {
    const users: number = await ctx.runQuery(api.lib.users.count, {});
    return users + (await ctx.runAction(internal.folder.nested.deep.secret, {}));
  },
});
`,
      "functions/reexports.ts": `export { list, send as sendAgain } from "./messages";\nexport * from "./lib/users";\n`,
      "functions/model/constants.ts": `export const LIMIT = 10;\n`,
      "functions/http.ts": `import { httpRouter } from "walkin/server";
import { httpAction } from "./_generated/server";

const http = httpRouter();
http.route({ path: "/hello", method: "GET", handler: httpAction(async () => new Response("hi")) });
export default http;
`,
      "functions/crons.ts": `import { cronJobs } from "walkin/server";
import { internal } from "./_generated/api";

const crons = cronJobs();
crons.interval("clear", { minutes: 5 }, internal.messages.clear, {});
export default crons;
`,
      "functions/messages.test.ts": `throw new Error("not a module");\n`,
      "app.ts": `import type { FunctionArgs, FunctionReference, FunctionReturnType } from "walkin/server";
import { api, internal } from "./functions/_generated/api";
import type { Doc, Id } from "./functions/_generated/dataModel";

export const list: FunctionReturnType<typeof api.messages.list> = ["x"];
export const nested: FunctionReturnType<typeof api.folder.nested.deep.fn> = { ok: true };
export const byDefault: FunctionReturnType<typeof api.messages.default> = "the default export";
export const reexported: FunctionReturnType<typeof api.reexports.list> = ["x"];
export const renamed: FunctionArgs<typeof api.reexports.sendAgain> = { body: "x", author: "u" as Id<"users"> };
export const star: FunctionReturnType<typeof api.reexports.count> = 3;
export const moduleBesideFolder: FunctionReturnType<typeof api.lib.top> = 1;
export const inFolder: FunctionReturnType<typeof api.lib.users.count> = 1;
export const hidden: FunctionReference<"action", "internal"> = internal.folder.nested.deep.secret;
export const doc: Doc<"users"> = { _id: "x" as Id<"users">, _creationTime: 0, name: "n" };
// @ts-expect-error an internal function is not in api
export const notPublic = api.folder.nested.deep.secret;
// @ts-expect-error nor is an internal mutation
export const notPublicEither = api.messages.clear;
// @ts-expect-error a public function is not in internal
export const notInternal = internal.messages.list;
// @ts-expect-error http.ts's router is no function
export const router = api.http.default;
// @ts-expect-error crons.ts's jobs are no function
export const jobs = api.crons.default;
// @ts-expect-error the schema is no module
export const schema = api.schema.default;
// @ts-expect-error a plain exported function is no reference
export const plain = api.messages.helper;
// @ts-expect-error nor is a constant
export const constant = api.model.constants.LIMIT;
// @ts-expect-error a test file is no module
export const test = api["messages.test"];
// @ts-expect-error the return type is checked
export const wrong: FunctionReturnType<typeof api.messages.list> = [1];
`,
    });
    expect(typeErrors(dir)).toEqual([]);
  }, 120_000);

  it("types a function that returns nothing (or undefined) as returning null, which is what its callers receive", async () => {
    // The engine sends null for undefined (checkReturn); Convex's references say so too.
    const dir = await generatedProject({
      "functions/schema.ts": SCHEMA,
      "functions/users.ts": `import { action, mutation, query } from "./_generated/server";
import { api } from "./_generated/api";

export const nameOfFirst = query({
  args: {},
  handler: async (ctx) => {
    const user = await ctx.db.query("users").first();
    if (!user) return;
    return user.name;
  },
});
export const touch = mutation({ args: {}, handler: async () => {} });
export const check = action({
  args: {},
  handler: async (ctx): Promise<string> => {
    const name: string | null = await ctx.runQuery(api.users.nameOfFirst, {});
    const touched: null = await ctx.runMutation(api.users.touch, {});
    return \`\${name}\${touched}\`;
  },
});
`,
      "app.ts": `import type { FunctionReturnType } from "walkin/server";
import { api } from "./functions/_generated/api";
export const name: FunctionReturnType<typeof api.users.nameOfFirst> = null;
export const touched: FunctionReturnType<typeof api.users.touch> = null;
export const checked: FunctionReturnType<typeof api.users.check> = "x";
// @ts-expect-error never undefined: what is sent is null
export const notUndefined: FunctionReturnType<typeof api.users.nameOfFirst> = undefined;
`,
    });
    expect(typeErrors(dir)).toEqual([]);
  }, 120_000);

  it("without schema.ts, Doc and Id take no table name, as Convex's untyped ones do", async () => {
    // Convex's dataModel without a schema: `Doc` is any document and `Id` any table's ID, so
    // code written for it says `Doc` and `Id` bare. `Doc<"notes">` must keep working too.
    const dir = await generatedProject({
      "functions/notes.ts": `import { v } from "walkin/values";
import { mutation, query } from "./_generated/server";
import type { Doc, Id } from "./_generated/dataModel";

export const list = query({ args: {}, handler: async (ctx): Promise<Doc[]> => ctx.db.query("notes").collect() });
export const add = mutation({ args: { text: v.string() }, handler: async (ctx, { text }): Promise<Id> => ctx.db.insert("notes", { text }) });
export const get = query({
  args: { id: v.id("notes") },
  handler: async (ctx, { id }) => {
    const note: Doc | null = await ctx.db.get(id);
    return note?.text.toUpperCase();
  },
});
export const typed = query({ args: {}, handler: async (ctx): Promise<Doc<"notes"> | null> => ctx.db.query("notes").first() });
export const anyId: Id = "x" as Id<"notes">;
`,
    });
    expect(typeErrors(dir)).toEqual([]);
  }, 120_000);

  it("a schema.js type-checks under a strict tsconfig without allowJs (the schema is then untyped)", async () => {
    const dir = await generatedProject({
      "functions/schema.js": `import { defineSchema, defineTable } from "walkin/server";
import { v } from "walkin/values";
export default defineSchema({ notes: defineTable({ text: v.string() }) });
`,
      "functions/notes.ts": `import { query } from "./_generated/server";
import type { Doc } from "./_generated/dataModel";
export const first = query({ args: {}, handler: async (ctx): Promise<Doc<"notes"> | null> => ctx.db.query("notes").first() });
`,
    });
    expect(typeErrors(dir)).toEqual([]);
  }, 120_000);
});

describe("module files", () => {
  // Convex's module extensions are .ts, .tsx, .mts, .js, .jsx, .mjs (and CommonJS ones).
  it("a .tsx or .mts file is a module, as in Convex: typed in api", async () => {
    const dir = await generatedProject({
      "functions/emails.tsx": `import { v } from "walkin/values";
import { internalAction } from "./_generated/server";
export const render = internalAction({ args: { name: v.string() }, handler: async (_ctx, { name }) => \`<p>Hello \${name}</p>\` });
`,
      "functions/esm.mts": `import { query } from "./_generated/server.js";\nexport const hi = query({ args: {}, handler: async () => "hi" as const });\n`,
      "functions/legacy.mjs": `export const notTyped = 1;\n`,
      "app.ts": `import type { FunctionReturnType } from "walkin/server";
import { api, internal } from "./functions/_generated/api";
export const html: FunctionReturnType<typeof internal.emails.render> = "<p>Hello you</p>";
export const hi: FunctionReturnType<typeof api.esm.hi> = "hi";
`,
    });
    expect(typeErrors(dir)).toEqual([]);
  }, 120_000);

  it("refuses a schema in another of these files, which neither the loader nor dataModel.ts would read", () => {
    const scan = findModules(["schema.mts", "messages.ts"]);
    expect(scan.hasSchema).toBe(false);
    expect(scan.problems).toEqual([{ file: "schema.mts", message: expect.stringContaining("rename schema.mts to schema.ts") }]);
    expect(findModules(["schema.js"])).toMatchObject({ hasSchema: true, problems: [] });
  });

  it("a .tsx or .mts module is loaded and served; CommonJS files are not modules", async () => {
    const server = JSON.stringify(path.join(REPO, "src/server/index.ts"));
    const dir = await tempProject(dirs, "walkin-codegen-parity-", {
      "package.json": `{ "type": "module" }\n`,
      "functions/emails.tsx": `import { query } from ${server};\nexport const render = query({ args: {}, handler: async (): Promise<string> => "<p>Hello</p>" });\n`,
      "functions/esm.mts": `import { query } from ${server};\nexport const hi = query({ args: {}, handler: async () => "hi" });\n`,
      "functions/config.cjs": `module.exports = {};\n`,
    });
    const result = await loadFunctions(path.join(dir, "functions"));
    if (!result.ok) throw new Error(result.failure.message);
    try {
      expect(Object.keys(result.functions.modules).sort()).toEqual(["emails", "esm"]);
      expect(result.functions.functionCount).toBe(2);
    } finally {
      await result.functions.release();
    }
  });
});

describe("what codegen leaves in _generated/", () => {
  // What Convex's codegen writes; a Convex app moved to Walk-in brings them along when they
  // were committed (as Convex suggests).
  const CONVEX_GENERATED = {
    "functions/_generated/api.js": `import { anyApi } from "convex/server";\nexport const api = anyApi;\nexport const internal = anyApi;\n`,
    "functions/_generated/api.d.ts": `export declare const api: any;\n`,
    "functions/_generated/server.js": `export { queryGeneric as query } from "convex/server";\n`,
    "functions/_generated/server.d.ts": `export declare const query: any;\n`,
    "functions/_generated/dataModel.d.ts": `export type Doc = any;\n`,
  };

  it("removes a Convex app's generated files, which a bundler would resolve instead of api.ts", async () => {
    const dir = await tempProject(dirs, "walkin-codegen-parity-", {
      "functions/messages.ts": `export {};\n`,
      ...CONVEX_GENERATED,
    });
    const functions = path.join(dir, "functions");
    const { removed } = await writeGenerated(functions);
    expect((await readdir(path.join(functions, "_generated"))).sort()).toEqual(["api.ts", "dataModel.ts", "server.ts"]);
    expect(removed.map((file) => path.basename(file)).sort()).toEqual(["api.d.ts", "api.js", "dataModel.d.ts", "server.d.ts", "server.js"]);

    // What the browser gets: Vite resolves `./functions/_generated/api` trying .js before .ts.
    const { createServer } = await import("vite");
    const vite = await createServer({ root: dir, configFile: false, logLevel: "silent", server: { middlewareMode: true, hmr: false } });
    try {
      const resolved = await vite.pluginContainer.resolveId("./functions/_generated/api", path.join(dir, "main.ts"));
      expect(resolved?.id).toBe(path.join(functions, "_generated", "api.ts"));
    } finally {
      await vite.close();
    }
  }, 60_000);

  it("is the same every run: no rewrite, nothing removed twice, another writer's temporary file and a dotfile kept", async () => {
    const dir = await tempProject(dirs, "walkin-codegen-parity-", {
      "functions/schema.ts": SCHEMA,
      "functions/messages.ts": `export {};\n`,
      "functions/lib/users.ts": `export {};\n`,
    });
    const functions = path.join(dir, "functions");
    const generated = path.join(functions, "_generated");
    await writeGenerated(functions);
    const before = await Promise.all(["api.ts", "dataModel.ts", "server.ts"].map((f) => stat(path.join(generated, f))));
    // A write in progress of another process (writeGenerated's temporary file).
    await writeFile(path.join(generated, "api.ts.12345.abcdef01.tmp"), "partial");
    await writeFile(path.join(generated, ".gitignore"), "*\n");
    await new Promise((r) => setTimeout(r, 20));

    expect(await writeGenerated(functions)).toMatchObject({ written: [], removed: [] });
    const after = await Promise.all(["api.ts", "dataModel.ts", "server.ts"].map((f) => stat(path.join(generated, f))));
    expect(after.map((s) => s.mtimeMs)).toEqual(before.map((s) => s.mtimeMs));
    expect(await readdir(generated)).toEqual(expect.arrayContaining(["api.ts.12345.abcdef01.tmp", ".gitignore"]));

    // A module deleted: api.ts no longer names it, and only api.ts changes.
    await rm(path.join(functions, "lib", "users.ts"));
    const { written } = await writeGenerated(functions);
    expect(written.map((file) => path.basename(file))).toEqual(["api.ts"]);
    expect(await readFile(path.join(generated, "api.ts"), "utf8")).not.toContain("users");
  });
});

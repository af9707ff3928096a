/**
 * A schema changed over an SQLite file that already holds documents, the way a restart or a
 * `walkin dev` reload reopens it: what `schemaValidation: false` allows, and what a write to a
 * document the new schema no longer accepts says. Each test states the invariant it checks.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { defineSchema, defineTable, mutation, query, type DataModelFromSchemaDefinition } from "../server/index.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine } from "./engine.js";
import { callRaw, Cli, SCHEMA, TSCONFIG, writeProject } from "../cli/fixtures/cli.js";

const notes = {
  add: mutation({ args: { doc: v.any() }, handler: (ctx, { doc }) => ctx.db.insert("notes", doc) }),
  set: mutation({ args: { id: v.string(), fields: v.any() }, handler: (ctx, { id, fields }) => ctx.db.patch(id as never, fields) }),
  put: mutation({ args: { id: v.string(), doc: v.any() }, handler: (ctx, { id, doc }) => ctx.db.replace(id as never, doc) }),
  get: query({ args: { id: v.string() }, handler: (ctx, { id }) => ctx.db.get(id as never) }),
};
const modules = { notes };

let dir: string;
let file: string;
const engines: Engine[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "walkin-schema-evolution-"));
  file = join(dir, "db.sqlite");
});
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

/** Opens the file with `schema`, as a restart (or the new version of a hot reload) does. */
async function open(schema: ReturnType<typeof defineSchema>) {
  const engine = await Engine.open({ storage: await openSqliteStorage({ filename: file }), schema, modules, runScheduler: false });
  engines.push(engine);
  return engine;
}

async function reopen(engine: Engine, schema: ReturnType<typeof defineSchema>) {
  engines.splice(engines.indexOf(engine), 1);
  await engine.close();
  return open(schema);
}

const loose = defineSchema({ notes: defineTable({ title: v.string(), tag: v.optional(v.union(v.string(), v.number())) }) });

it("schemaValidation: false: writes that do not match the schema are stored, as in Convex", async () => {
  const unchecked = defineSchema({ notes: defineTable({ title: v.string() }) }, { schemaValidation: false });
  const engine = await open(unchecked);
  const { value: id } = await engine.runMutation("notes:add", { doc: { title: 7, extra: true } });
  expect(await engine.runQuery("notes:get", { id })).toMatchObject({ title: 7, extra: true });
  await engine.runMutation("notes:set", { id, fields: { other: "x" } });
  await engine.runMutation("notes:put", { id, doc: { nothing: null } });
  expect(await engine.runQuery("notes:get", { id })).toMatchObject({ nothing: null });
  // Document-level rules that are not the schema's still hold.
  await expect(engine.runMutation("notes:add", { doc: { _secret: 1 } })).rejects.toThrow(/reserved for system fields/);
});

it("a field made required: patching another field of an old document names the document and the field, says what to do, and changes nothing", async () => {
  const before = await open(loose);
  const { value: id } = await before.runMutation("notes:add", { doc: { title: "a" } });
  const required = defineSchema({ notes: defineTable({ title: v.string(), tag: v.string() }) });
  const after = await reopen(before, required);
  // The stored document is handed out as it is (Convex would have refused the push instead).
  expect(await after.runQuery("notes:get", { id })).toEqual({ _id: id, _creationTime: expect.any(Number), title: "a" });

  const error = await after.runMutation("notes:set", { id, fields: { title: "b" } }).then(() => null, (e: Error) => e);
  expect(error?.message).toMatch(/notes\.tag: missing required field/);
  expect(error?.message).toContain(id as string); // which document
  expect(error?.message).toMatch(/stored before/); // that the patch is not what is wrong
  expect(error?.message).toMatch(/migrate/i);
  expect(error?.message).toMatch(/v\.optional/);
  expect(error?.message).toMatch(/schemaValidation: false/);
  expect(await after.runQuery("notes:get", { id })).toMatchObject({ title: "a" });

  // A patch that sets the missing field succeeds.
  await after.runMutation("notes:set", { id, fields: { title: "b", tag: "t" } });
  expect(await after.runQuery("notes:get", { id })).toMatchObject({ title: "b", tag: "t" });
});

it("a union narrowed to one member: a patch of another field says the stored value is what fails", async () => {
  const before = await open(loose);
  const { value: id } = await before.runMutation("notes:add", { doc: { title: "a", tag: 3 } });
  const narrowed = defineSchema({ notes: defineTable({ title: v.string(), tag: v.optional(v.string()) }) });
  const after = await reopen(before, narrowed);
  const error = await after.runMutation("notes:set", { id, fields: { title: "b" } }).then(() => null, (e: Error) => e);
  expect(error?.message).toMatch(/notes\.tag: expected string, received number/);
  expect(error?.message).toContain(id as string);
  expect(error?.message).toMatch(/stored before/);
  // A patch that itself writes a wrong value is the patch's fault: no word of an old document.
  const own = await after.runMutation("notes:set", { id, fields: { tag: 4 } }).then(() => null, (e: Error) => e);
  expect(own?.message).toMatch(/notes\.tag: expected string, received number/);
  expect(own?.message).not.toMatch(/stored before/);
  // Fixing the field in the patch is the migration of this document.
  await after.runMutation("notes:set", { id, fields: { tag: "3" } });
  expect(await after.runQuery("notes:get", { id })).toMatchObject({ title: "a", tag: "3" });
});

it("v.any narrowed to v.string, then v.optional removed and put back: old documents stay readable, new writes are checked", async () => {
  const anyTag = defineSchema({ notes: defineTable({ title: v.string(), tag: v.optional(v.any()) }) });
  const a = await open(anyTag);
  const { value: obj } = await a.runMutation("notes:add", { doc: { title: "o", tag: { deep: [1] } } });
  const { value: none } = await a.runMutation("notes:add", { doc: { title: "n" } });
  const b = await reopen(a, defineSchema({ notes: defineTable({ title: v.string(), tag: v.string() }) }));
  expect(await b.runQuery("notes:get", { id: obj })).toMatchObject({ tag: { deep: [1] } });
  await expect(b.runMutation("notes:add", { doc: { title: "x" } })).rejects.toThrow(/notes\.tag: missing required field/);
  const c = await reopen(b, anyTag);
  await c.runMutation("notes:set", { id: none, fields: { title: "n2" } });
  expect(await c.runQuery("notes:get", { id: none })).toMatchObject({ title: "n2" });
});

it("strictTableNameTypes: false: tables outside the schema can be written and read, unchecked, as in Convex", async () => {
  const lenient = defineSchema({ notes: defineTable({ title: v.string() }) }, { strictTableNameTypes: false });
  const scratch = {
    add: mutation({ args: { n: v.any() }, handler: (ctx, { n }) => ctx.db.insert("scratch", { n }) }),
    all: query({ args: {}, handler: (ctx) => ctx.db.query("scratch").collect() }),
  };
  const openLenient = async () => {
    const engine = await Engine.open({ storage: await openSqliteStorage({ filename: file }), schema: lenient, modules: { ...modules, scratch }, runScheduler: false });
    engines.push(engine);
    return engine;
  };
  const engine = await openLenient();
  expect(await engine.runQuery("scratch:all", {})).toEqual([]);
  await engine.runMutation("scratch:add", { n: 1 });
  await engine.runMutation("scratch:add", { n: "two" });
  // The schema's own tables are still checked.
  await expect(engine.runMutation("notes:add", { doc: { title: 1 } })).rejects.toThrow(/notes\.title: expected string/);
  engines.splice(engines.indexOf(engine), 1);
  await engine.close();
  // A restart finds the table and its documents.
  const again = await openLenient();
  expect(((await again.runQuery("scratch:all", {})) as { n: unknown }[]).map((d) => d.n)).toEqual([1, "two"]);
});

it("walkin dev: an index the reload added, which the previous version's last writes skipped, is rebuilt once that version stops", async () => {
  // The previous version's action is still running at the swap and writes afterwards (docs/cli.md):
  // its write does not maintain the new index, so the new version refuses that index. Once the
  // previous version has stopped, the index must come back without a restart of `walkin dev`.
  const flag = join(dir, "go");
  const messages = (withIndex: boolean) => `import { v } from "walkin/values";
import { existsSync } from "node:fs";
import { action, mutation, query } from "walkin/server";
import { api } from "./_generated/api.js";

export const send = mutation({ args: { body: v.string() }, handler: (ctx, { body }) => ctx.db.insert("messages", { body }) });
export const later = action({
  args: { body: v.string() },
  handler: async (ctx, { body }) => {
    while (!existsSync(${JSON.stringify(flag)})) await new Promise((resolve) => setTimeout(resolve, 20));
    await ctx.runMutation(api.messages.send, { body });
  },
});
${withIndex ? `export const count = query({
  args: { body: v.string() },
  handler: async (ctx, { body }) => (await ctx.db.query("messages").withIndex("by_body", (q) => q.eq("body", body)).collect()).length,
});` : ""}
`;
  await writeProject(dir, {
    "package.json": `{ "type": "module" }\n`,
    "tsconfig.json": TSCONFIG,
    "functions/schema.ts": SCHEMA,
    "functions/messages.ts": messages(false),
  });
  const cli = new Cli(["dev", "--port", "0", "--db", join(dir, "db", "data.sqlite")], dir);
  try {
    const [, url] = await cli.waitFor(/Walk-in dev server: (http:\/\/\S+)/);
    await callRaw(url!, "mutation", "messages:send", { body: "a" });
    const running = callRaw(url!, "action", "messages:later", { body: "b" }); // on the old version
    const mark = cli.output.length;
    await writeFile(join(dir, "functions", "schema.ts"), SCHEMA.replace("defineTable({ body: v.string() })", `defineTable({ body: v.string() }).index("by_body", ["body"])`));
    await writeFile(join(dir, "functions", "messages.ts"), messages(true));
    await cli.waitFor(/✔ Functions ready/, mark);
    writeFileSync(flag, "");
    expect((await running).body.status).toBe("success");
    expect(existsSync(flag)).toBe(true);

    // The old version's write is learnt by the new one; the old version then stops. Wait for the
    // index to answer (it is refused meanwhile), or give up after 20 s.
    let last: unknown;
    for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 100))) {
      const { body } = await callRaw(url!, "query", "messages:count", { body: "b" });
      last = body.status === "success" ? body.value : body.errorMessage;
      if (last === 1) break;
    }
    expect(last).toBe(1);
    expect(cli.output).toContain("Rebuilding messages.by_body: the previous version wrote to its table without it.");
    expect((await callRaw(url!, "query", "messages:count", { body: "a" })).body.value).toBe(1);
  } finally {
    cli.child.kill("SIGINT");
    await cli.exited;
  }
}, 60_000);

// Types (checked by tsc): a lenient schema's data model has its tables typed, and any other
// table with any document; a strict one (the default) has its tables only.
export const lenientTypes = defineSchema({ notes: defineTable({ title: v.string() }) }, { strictTableNameTypes: false });
export const strictTypes = defineSchema({ notes: defineTable({ title: v.string() }) }, { schemaValidation: false });
type Lenient = DataModelFromSchemaDefinition<typeof lenientTypes>;
type Strict = DataModelFromSchemaDefinition<typeof strictTypes>;
export const typeChecks: [Lenient["notes"]["document"]["title"], Lenient["scratch"]["document"]["anything"], Strict["notes"]["document"]["title"]] = ["a", 1, "b"];
// @ts-expect-error a title is a string in either
export const wrongTitle: Lenient["notes"]["document"]["title"] = 1;
// @ts-expect-error a strict schema has no other table
export type NoScratch = Strict["scratch"];

/**
 * File storage in walkin/testing, as convex-test has it: actions store and read files, queries
 * get URLs (of a placeholder origin: no server listens), and `t.run` stores and reads bytes
 * inside its own transaction, so that a `t.run` that throws leaves no file behind.
 */
import { describe, expect, test } from "vitest";
import { action, defineSchema, defineTable, makeFunctionReference, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { walkinTest } from "./index.js";

const schema = defineSchema({ avatars: defineTable({ file: v.id("_storage") }) });

const storage = {
  storeText: action({ args: { text: v.string() }, handler: (ctx, { text }) => ctx.storage.store(new Blob([text], { type: "text/plain" })) }),
  readText: action({ args: { id: v.id("_storage") }, handler: async (ctx, { id }) => (await ctx.storage.get(id))?.text() ?? null }),
  url: query({ args: { id: v.id("_storage") }, handler: (ctx, { id }) => ctx.storage.getUrl(id) }),
  uploadUrl: mutation({ args: {}, handler: (ctx) => ctx.storage.generateUploadUrl() }),
  remove: mutation({ args: { id: v.id("_storage") }, handler: (ctx, { id }) => ctx.storage.delete(id) }),
  files: query({ args: {}, handler: (ctx) => ctx.db.system.query("_storage").collect() }),
};

const api = {
  storeText: makeFunctionReference<"action", { text: string }, string>("storage:storeText"),
  readText: makeFunctionReference<"action", { id: string }, string | null>("storage:readText"),
  url: makeFunctionReference<"query", { id: string }, string | null>("storage:url"),
  uploadUrl: makeFunctionReference<"mutation", Record<string, never>, string>("storage:uploadUrl"),
  remove: makeFunctionReference<"mutation", { id: string }, null>("storage:remove"),
  files: makeFunctionReference<"query", Record<string, never>, Array<{ _id: string; size: number }>>("storage:files"),
};

describe("file storage in tests", () => {
  test("an action stores and reads a file; a query's URL names it until it is deleted", async () => {
    const t = walkinTest(schema, { storage });
    const id = await t.action(api.storeText, { text: "hello" });
    expect(await t.action(api.readText, { id })).toBe("hello");
    expect(await t.query(api.url, { id })).toBe(`https://walkin.test/api/storage/${id}`);
    expect(await t.mutation(api.uploadUrl, {})).toMatch(/^https:\/\/walkin\.test\/api\/storage\/upload\?token=/);
    await t.mutation(api.remove, { id });
    expect(await t.query(api.url, { id })).toBeNull();
    expect(await t.action(api.readText, { id })).toBeNull();
  });

  test("t.run stores and reads bytes in its transaction, and a document can name the file", async () => {
    const t = walkinTest(schema, { storage });
    const id = await t.run(async (ctx) => {
      const file = await ctx.storage.store(new Blob([new Uint8Array([1, 2, 3])], { type: "image/png" }));
      await ctx.db.insert("avatars", { file });
      const read = await ctx.storage.get(file);
      expect([read?.type, [...new Uint8Array(await read!.arrayBuffer())]]).toEqual(["image/png", [1, 2, 3]]);
      return file;
    });
    expect(await t.query(api.files, {})).toMatchObject([{ _id: id, size: 3 }]);
  });

  test("a file stored in a t.run that throws is rolled back with it", async () => {
    const t = walkinTest(schema, { storage });
    await expect(
      t.run(async (ctx) => {
        await ctx.storage.store(new Blob(["never"]));
        throw new Error("rolled back");
      }),
    ).rejects.toThrow("rolled back");
    expect(await t.query(api.files, {})).toEqual([]);
    // Nor are its bytes left behind (a table app code has no type for).
    expect(await t.run(async (ctx) => (await ctx.db.system.query("_storage_chunks" as "_storage").collect()).length)).toBe(0);
  });
});

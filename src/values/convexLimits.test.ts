/**
 * Values and limits as Convex documents them, checked where values enter: a document written by
 * a mutation, the args of a call, a handler's return value, and what one mutation may write.
 *
 * Sources: https://docs.convex.dev/production/state/limits ("Documents": at most 1024 fields,
 * field nesting depth 16 "how many times objects and arrays can be nested", 8192 array
 * elements, "Strings must be valid Unicode sequences with no unpaired surrogates"; applied per
 * document "and to any nested Object"), and https://docs.convex.dev/database/types (arrays of at
 * most 8192 values, objects of at most 1024 entries, strings valid Unicode: for every value,
 * args included). Each test failed before its fix.
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, defineSchema, defineTable, mutation, query } from "../server/index.js";
import { v } from "./index.js";
import { walkinTest } from "../testing/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine } from "../engine/engine.js";
import { LIMITS } from "../engine/limits.js";

const schema = defineSchema({
  notes: defineTable({ body: v.any() }),
  files: defineTable({ data: v.bytes() }),
  series: defineTable({ points: v.array(v.array(v.number())) }),
  // Every field optional: an empty object matches, as with a table without a validator.
  drafts: defineTable({ title: v.optional(v.string()) }),
  // Any fields at all.
  wide: defineTable(v.any()),
});

const modules = {
  notes: {
    insert: mutation({ args: { body: v.any() }, handler: (ctx, { body }) => ctx.db.insert("notes", { body }) }),
    echo: mutation({ args: { value: v.any() }, handler: (_ctx, { value }) => value }),
    count: query({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").collect()).length }),
    // `returns: v.optional(...)`: a handler that returns nothing (undefined) matches it.
    maybeName: query({
      args: { found: v.boolean() },
      returns: v.optional(v.string()),
      handler: (_ctx, { found }) => (found ? "Ada" : undefined),
    }),
    // Files of 900 KiB each: 14 of them are 12.3 MiB of bytes, 16.4 MiB as base64 text.
    storeFiles: mutation({
      args: { count: v.number() },
      handler: async (ctx, { count }) => {
        for (let i = 0; i < count; i++) await ctx.db.insert("files", { data: new ArrayBuffer(900 * 1024) });
        return null;
      },
    }),
    // Documents of 8000 numbers each (4 arrays of 2000): ~72 KB each as Convex counts values
    // (9 bytes a number), ~16 KB as JSON text ("0,").
    storeSeries: mutation({
      args: { count: v.number() },
      handler: async (ctx, { count }) => {
        for (let i = 0; i < count; i++) {
          await ctx.db.insert("series", { points: Array.from({ length: 4 }, () => new Array<number>(2000).fill(0)) });
        }
        return null;
      },
    }),
    cutText: query({ args: {}, handler: () => "smile 😀".slice(0, -1) }),
    returnBytes: mutation({ args: { kib: v.number() }, handler: async (_ctx, { kib }) => new ArrayBuffer(kib * 1024) }),
  },
};
const api = anyApi;

let t: ReturnType<typeof walkinTest<typeof schema>>;
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await t?.close();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function failure(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error("expected the call to fail");
}

/** `levels` arrays inside each other, the innermost holding 1: `nested(2)` is `[[1]]`. */
function nested(levels: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

function objectWithFields(count: number): Record<string, number> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`f${i}`, i]));
}

async function notesCount(): Promise<number> {
  return t.query(api.notes!.count!, {}) as Promise<number>;
}

describe("documents are held to Convex's value limits, with an error that names the limit and the path", () => {
  it("refuses a document nested deeper than 16 levels (the document counted), and stores one of exactly 16", async () => {
    t = walkinTest(schema, modules);
    // The document is level 1, so its field holds at most 15 levels: { body: [[…[1]…]] }.
    await expect(t.mutation(api.notes!.insert!, { body: nested(15) })).resolves.toEqual(expect.any(String));
    const e = await failure(t.mutation(api.notes!.insert!, { body: nested(16) }));
    expect(e.code).toBe("INVALID_VALUE");
    expect(e.message).toMatch(/notes\.body(\[0\])+.*16 levels/);
    expect(await notesCount()).toBe(1);
  });

  it("refuses an array of more than 8192 elements, in a document and in a function's args", async () => {
    t = walkinTest(schema, modules);
    await expect(t.mutation(api.notes!.insert!, { body: { tags: new Array(8192).fill(0) } })).resolves.toEqual(expect.any(String));
    const stored = await failure(t.run((ctx) => ctx.db.insert("notes", { body: { tags: new Array(8193).fill(0) } })));
    expect(stored.code).toBe("INVALID_VALUE");
    expect(stored.message).toContain("notes.body.tags");
    expect(stored.message).toContain("8192");
    const sent = await failure(t.mutation(api.notes!.echo!, { value: new Array(8193).fill(0) }));
    expect(sent.code).toBe("INVALID_ARGUMENT");
    expect(sent.message).toContain("args.value");
    expect(sent.message).toContain("8192");
    expect(await notesCount()).toBe(1);
  });

  it("refuses an object of more than 1024 fields, nested or in args; a document's two system fields count", async () => {
    t = walkinTest(schema, modules);
    const nestedObject = await failure(t.mutation(api.notes!.insert!, { body: objectWithFields(1025) }));
    expect(nestedObject.code).toBe("INVALID_ARGUMENT"); // arrives in args first
    expect(nestedObject.message).toContain("args.body");
    expect(nestedObject.message).toContain("1024");
    const flatArgs = await failure(t.mutation(api.notes!.echo!, { value: 1, ...objectWithFields(1024) }));
    expect(flatArgs.code).toBe("INVALID_ARGUMENT");
    expect(flatArgs.message).toContain("1024");
    // A document holds _id and _creationTime besides its own fields: 1022 of its own at most.
    await expect(t.run((ctx) => ctx.db.insert("wide", objectWithFields(1022)))).resolves.toEqual(expect.any(String));
    const tooWide = await failure(t.run((ctx) => ctx.db.insert("wide", objectWithFields(1023))));
    expect(tooWide.code).toBe("INVALID_VALUE");
    expect(tooWide.message).toContain("wide");
    expect(tooWide.message).toContain("1024");
    expect(await t.run(async (ctx) => (await ctx.db.query("wide").collect()).length)).toBe(1);
    expect(await notesCount()).toBe(0);
  });

  it("refuses a string with an unpaired surrogate, in a document, in args and in a return value", async () => {
    t = walkinTest(schema, modules);
    const cut = "smile 😀".slice(0, -1); // half of the emoji's surrogate pair
    const stored = await failure(t.run((ctx) => ctx.db.insert("notes", { body: { caption: cut } })));
    expect(stored.code).toBe("INVALID_VALUE");
    expect(stored.message).toContain("notes.body.caption");
    expect(stored.message).toMatch(/unpaired surrogate U\+D83D at position 6/);
    const sent = await failure(t.mutation(api.notes!.insert!, { body: [cut] }));
    expect(sent.code).toBe("INVALID_ARGUMENT");
    expect(sent.message).toContain("args.body[0]");
    const returned = await failure(t.query(api.notes!.cutText!, {}));
    expect(returned.message).toMatch(/returns: .*unpaired surrogate/);
    // A whole pair is fine.
    await expect(t.mutation(api.notes!.insert!, { body: "smile 😀" })).resolves.toEqual(expect.any(String));
    expect(await notesCount()).toBe(1);
  });
});

describe("returns: v.optional(...)", () => {
  it("accepts a handler that returns undefined, which the caller receives as null", async () => {
    t = walkinTest(schema, modules);
    expect(await t.query(api.notes!.maybeName!, { found: true })).toBe("Ada");
    expect(await t.query(api.notes!.maybeName!, { found: false })).toBeNull();
  });
});

describe("ctx.db.replace with something other than an object of fields", () => {
  for (const [what, value] of [["null", null], ["an array", []], ["a Date", new Date(0)]] as const) {
    it(`throws for ${what} and leaves the document as it was`, async () => {
      t = walkinTest(schema, modules);
      const id = await t.run((ctx) => ctx.db.insert("drafts", { title: "kept" }));
      const e = await failure(t.run((ctx) => ctx.db.replace(id, value as never)));
      expect(e.code).toBe("INVALID_VALUE");
      expect(e.message).toContain("replace()");
      expect((await t.run((ctx) => ctx.db.get(id)))?.title).toBe("kept");
    });
  }

  it("insert() refuses a class instance instead of storing an empty document", async () => {
    t = walkinTest(schema, modules);
    const e = await failure(t.run((ctx) => ctx.db.insert("drafts", new Date(0) as never)));
    expect(e.code).toBe("INVALID_VALUE");
    expect(e.message).toContain("Date");
    expect(await t.run(async (ctx) => (await ctx.db.query("drafts").collect()).length)).toBe(0);
  });
});

describe("sizes count values as Convex does, not their JSON text", () => {
  it("lets a mutation write 14 files of 900 KiB (12.3 MiB of bytes, 16.4 MiB as base64 text) within 16 MiB", async () => {
    t = walkinTest(schema, modules);
    await expect(t.mutation(api.notes!.storeFiles!, { count: 14 })).resolves.toBeNull();
    // 19 such files are 16.7 MiB of bytes: over the limit.
    const e = await failure(t.mutation(api.notes!.storeFiles!, { count: 19 }));
    expect(e.code).toBe("LIMIT_EXCEEDED");
    expect(e.message).toContain(`${LIMITS.maxBytesWritten}`);
  }, 60_000);

  it("refuses a mutation whose documents hold over 16 MiB of numbers, though their text is ~4 MiB", async () => {
    t = walkinTest(schema, modules);
    // 240 documents × 8000 numbers × 9 bytes ≈ 16.5 MiB.
    const e = await failure(t.mutation(api.notes!.storeSeries!, { count: 240 }));
    expect(e.code).toBe("LIMIT_EXCEEDED");
    expect(e.message).toContain(`${LIMITS.maxBytesWritten}`);
    await expect(t.mutation(api.notes!.storeSeries!, { count: 200 })).resolves.toBeNull();
  }, 60_000);

  it("keeps a client-called mutation's result of 900 KiB of bytes (1.2 MiB as base64 text) under its 1 MiB limit", async () => {
    const engine = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema, modules, runScheduler: false });
    cleanups.push(() => engine.close());
    const result = await engine.runClientMutation("notes:returnBytes", { kib: 900 }, { fromClient: true }, { clientId: "c", requestId: 1 });
    expect((result.value as ArrayBuffer).byteLength).toBe(900 * 1024);
    const again = await engine.runClientMutation("notes:returnBytes", { kib: 900 }, { fromClient: true }, { clientId: "c", requestId: 1 });
    expect(again.deduplicated).toBe(true);
    await expect(engine.runClientMutation("notes:returnBytes", { kib: 1025 }, { fromClient: true }, { clientId: "c", requestId: 2 }))
      .rejects.toThrow(/1 MiB/);
  });
});

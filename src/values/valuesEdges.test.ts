/**
 * Values at the edges of the engine, each case failing before its fix (found in a review of the
 * values layer against Convex's documented values and Walk-in's own promises): a session ID in
 * a union with `v.id` is normalized to its digest, the 1 MiB document limit counts the value
 * (strings as UTF-8, bytes by length) and not its JSON text, and a mutation's own writes read
 * back as values of their own, not as objects shared with the write or the caller.
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, defineSchema, defineTable, mutationGeneric, queryGeneric } from "../server/index.js";
import { vSessionId } from "../sessions/index.js";
import { walkinTest } from "../testing/index.js";
import { v } from "./index.js";

let t: { close(): Promise<void> } | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe("the 1 MiB document limit counts the value, not its JSON text", () => {
  // Convex: "Strings must be smaller than the 1MB total size limit when encoded as UTF-8" and
  // "Bytestrings must be smaller than the 1MB total size limit for Convex types"
  // (https://docs.convex.dev/database/types). Walk-in measures Buffer.byteLength of the stored
  // JSON instead, where bytes are base64 (4/3 as large) and `"`, `\`, control characters are
  // escaped (2 to 6 bytes each), so documents well under 1 MB are refused.
  const schema = defineSchema({
    files: defineTable({ data: v.optional(v.bytes()), text: v.optional(v.string()) }),
  });

  it("stores an 800 KB ArrayBuffer (its base64 is 1.07 MB)", async () => {
    const test = walkinTest(schema, {});
    t = test;
    const data = new Uint8Array(800_000).fill(7).buffer;
    const id = await test.run((ctx) => ctx.db.insert("files", { data }));
    const stored = await test.run(async (ctx) => (await ctx.db.get(id))?.data);
    expect((stored as ArrayBuffer).byteLength).toBe(800_000);
  });

  it("stores a string of 600 000 quote characters (600 KB of UTF-8, 1.2 MB as JSON)", async () => {
    const test = walkinTest(schema, {});
    t = test;
    const text = '"'.repeat(600_000);
    const id = await test.run((ctx) => ctx.db.insert("files", { text }));
    const stored = await test.run(async (ctx) => (await ctx.db.get(id))?.text);
    expect(stored).toBe(text);
  });

  it("stores a string of 300 000 tab characters (300 KB of UTF-8, 600 KB as JSON) next to 500 KB of bytes", async () => {
    const test = walkinTest(schema, {});
    t = test;
    const text = "\t".repeat(300_000);
    const data = new ArrayBuffer(500_000);
    await expect(test.run((ctx) => ctx.db.insert("files", { text, data }))).resolves.toEqual(expect.any(String));
  });
});

describe("normalizing a union picks the member the value was validated as", () => {
  // Walk-in's promise (docs/coming-from-convex.md, DESIGN.md "Sessions"): handlers, tables and
  // results only ever hold a one-way digest (sd1_…) of a session ID. normalize.ts re-picks the
  // union member with validateResult but without `isIdOfTable`, so `v.id("users")` accepts any
  // string there and wins over vSessionId: the raw ID is handed on and stored.
  const schema = defineSchema({
    users: defineTable({ name: v.string() }),
    carts: defineTable({ owner: v.union(v.id("users"), vSessionId) }),
  });
  const owner = queryGeneric({
    args: { owner: v.union(v.id("users"), vSessionId) },
    handler: async (_ctx, args) => args.owner as string,
  });
  const openCart = mutationGeneric({
    args: { owner: v.union(v.id("users"), vSessionId) },
    handler: async (ctx, args) => {
      const id = await ctx.db.insert("carts", { owner: args.owner as never });
      return (await ctx.db.get(id))!.owner as string;
    },
  });

  it("hands a handler the digest of a session ID sent for v.union(v.id(...), vSessionId)", async () => {
    const test = walkinTest(schema, { carts: { owner, openCart } });
    t = test;
    const raw = crypto.randomUUID();
    const seen = await test.query(anyApi.carts!.owner!, { owner: raw });
    expect(seen).not.toBe(raw);
    expect(seen).toMatch(/^sd1_/);
  });

  it("stores the digest when server code writes a raw session ID into such a field", async () => {
    const test = walkinTest(schema, { carts: { owner, openCart } });
    t = test;
    const raw = crypto.randomUUID();
    const stored = await test.run(async (ctx) => {
      const id = await ctx.db.insert("carts", { owner: raw as never });
      return (await ctx.db.get(id))!.owner as string;
    });
    expect(stored).not.toBe(raw);
    expect(stored).toMatch(/^sd1_/);
  });
});

describe("a mutation's own writes read back as values, not as shared objects", () => {
  // Convex: a document changes only through insert, patch, replace or delete
  // (https://docs.convex.dev/database/writing-data), and documents hold values
  // (https://docs.convex.dev/database/types): Convex serializes a value when it is written and
  // every read deserializes a document of its own. Walk-in hands a mutation's staged write to
  // its readers as is, and stages the caller's nested arrays and objects without copying them,
  // so a local change shows up in later reads of the same mutation but is never committed.
  const schema = defineSchema({ items: defineTable({ n: v.number(), tags: v.array(v.string()) }).index("by_n", ["n"]) });

  it("a document read after this mutation wrote it is a copy: changing it changes no later read", async () => {
    const test = walkinTest(schema, {});
    t = test;
    const seen = await test.run(async (ctx) => {
      const id = await ctx.db.insert("items", { n: 1, tags: ["a"] });
      const doc = (await ctx.db.get(id))!;
      doc.n = 99; // a local change, never written
      doc.tags.push("local");
      const again = (await ctx.db.get(id))!;
      return { n: again.n, tags: again.tags };
    });
    expect(seen).toEqual({ n: 1, tags: ["a"] });
  });

  it("an array passed to insert and changed afterwards does not change the document", async () => {
    const test = walkinTest(schema, {});
    t = test;
    const tags = await test.run(async (ctx) => {
      const tags = ["x"];
      const id = await ctx.db.insert("items", { n: 2, tags });
      tags.push("changed after insert");
      return (await ctx.db.get(id))!.tags;
    });
    // What was committed is ["x"]; the read inside the mutation must say the same.
    expect(tags).toEqual(["x"]);
  });

  it("a document from a query over this mutation's writes is a copy too", async () => {
    const test = walkinTest(schema, {});
    t = test;
    const seen = await test.run(async (ctx) => {
      await ctx.db.insert("items", { n: 3, tags: [] });
      const [doc] = await ctx.db.query("items").withIndex("by_n", (q) => q.eq("n", 3)).collect();
      doc!.tags.push("local");
      const [again] = await ctx.db.query("items").withIndex("by_n", (q) => q.eq("n", 3)).collect();
      return again!.tags;
    });
    expect(seen).toEqual([]);
  });
});

/**
 * A review of vector search (vector.ts, vectorSearch.ts) as a Convex user would use it:
 * vectors of extreme magnitudes scored as their directions say, malformed query vectors
 * refused, what a document's vector field may hold, writes of one mutation (twice, rolled
 * back by a caught nested mutation), tables with several indexes, an index built again when
 * its filter fields change, and searches from HTTP and scheduled actions.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { action, anyApi, defineSchema, defineTable, httpAction, mutation, type ApiFromModules } from "../server/index.js";
import { v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine } from "./engine.js";
import { caught } from "./fixtures/caught.js";

const schema = defineSchema({
  items: defineTable({
    kind: v.optional(v.union(v.string(), v.null(), v.number(), v.int64())),
    meta: v.optional(v.object({ tag: v.string() })),
    vec: v.optional(v.any()),
    body: v.optional(v.string()),
  })
    .vectorIndex("by_vec", { vectorField: "vec", dimensions: 3, filterFields: ["kind", "meta.tag"] })
    .searchIndex("by_body", { searchField: "body" }),
  pairs: defineTable({ a: v.optional(v.array(v.float64())), b: v.optional(v.array(v.float64())) })
    .vectorIndex("by_a", { vectorField: "a", dimensions: 2 })
    .vectorIndex("by_b", { vectorField: "b", dimensions: 3 }),
});

const items = {
  add: mutation({ args: { fields: v.any() }, handler: (ctx, { fields }) => ctx.db.insert("items", fields) }),
  fail: mutation({
    args: { vec: v.array(v.float64()) },
    handler: async (ctx, { vec }) => {
      await ctx.db.insert("items", { kind: "rolled back", vec });
      throw new Error("changed my mind");
    },
  }),
  searchAndSave: action({
    args: { vec: v.array(v.float64()) },
    handler: async (ctx, { vec }) => {
      const found = await ctx.vectorSearch("items", "by_vec", { vector: vec, limit: 5 });
      await ctx.runMutation(anyApi.items!.add!, { fields: { kind: "saved", body: JSON.stringify(found) } });
    },
  }),
  search: action({
    args: { vec: v.array(v.float64()) },
    handler: (ctx, { vec }) => ctx.vectorSearch("items", "by_vec", { vector: vec, limit: 5 }),
  }),
};
const similar = httpAction(async (ctx, request) => {
  const vector = (await request.json()) as number[];
  return Response.json(await ctx.vectorSearch("items", "by_vec", { vector, limit: 5 }));
});
const modules = { items };
const api = anyApi as unknown as ApiFromModules<{ items: typeof items }>;

let t: ReturnType<typeof walkinTest<typeof schema>> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const search = (query: any, index = "by_vec") => t!.action((ctx) => ctx.vectorSearch("items", index as never, query));

describe("scores follow directions, whatever the vectors' magnitudes", () => {
  it("scores huge and tiny vectors by their direction, never NaN and never 0 for lack of precision", async () => {
    t = walkinTest(schema, modules);
    const huge = await t.mutation(api.items.add, { fields: { vec: [1e200, 1e200, 0] } });
    const tiny = await t.mutation(api.items.add, { fields: { vec: [0, 1e-200, 1e-200] } });
    const opposite = await t.mutation(api.items.add, { fields: { vec: [-3e307, 0, 0] } });
    const results: any[] = await search({ vector: [1, 1, 0] });
    expect(results.map((r: any) => r._id)).toEqual([huge, tiny, opposite]);
    expect(results[0]._score).toBeCloseTo(1, 12);
    expect(results[1]._score).toBeCloseTo(0.5, 12);
    expect(results[2]._score).toBeCloseTo(-Math.SQRT1_2, 12);
    // A query of tiny or huge numbers has the same direction as [1, 1, 0].
    for (const vector of [[1e-200, 1e-200, 0], [1e300, 1e300, 0], [Number.MIN_VALUE, Number.MIN_VALUE, 0]]) {
      const scaled = await search({ vector });
      expect(scaled.map((r: any) => r._id)).toEqual([huge, tiny, opposite]);
      for (const [i, result] of scaled.entries()) expect(result._score).toBeCloseTo(results[i]._score, 12);
    }
  });

  it("treats -0 as 0 and whole numbers as the floats they are", async () => {
    t = walkinTest(schema, modules);
    const id = await t.mutation(api.items.add, { fields: { vec: [-0, 2, -0] } });
    expect(await search({ vector: [0, 5, -0] })).toEqual([{ _id: id, _score: 1 }]);
    expect((await caught(search({ vector: [-0, -0, -0] }))).message).toMatch(/all zeros/);
  });
});

describe("a malformed query vector is refused, saying what is wrong", () => {
  it("refuses a sparse array, and says which element is not a finite number", async () => {
    t = walkinTest(schema, modules);
    await t.mutation(api.items.add, { fields: { vec: [1, 2, 3] } });
    const sparse = await caught(search({ vector: new Array(3) }));
    expect(sparse.code).toBe("INVALID_ARGUMENT");
    expect(sparse.message).toMatch(/vector must be an array of 3 finite numbers/);
    const holey = await caught(search({ vector: [1, , 3] }));
    expect(holey.message).toMatch(/vector must be an array of 3 finite numbers/);
    expect((await caught(search({ vector: [1, NaN, 3] }))).message).toMatch(/got an array of 3 numbers with NaN at \[1\]/);
    expect((await caught(search({ vector: [1, 2, -Infinity] }))).message).toMatch(/with -Infinity at \[2\]/);
    expect((await caught(search({ vector: [1, 2n, 3] }))).message).toMatch(/got an array of 3 with a bigint at \[1\]/);
  });
});

describe("what a document's vector field may hold", () => {
  it("leaves out a document whose field is missing, null, a string, strings, or holds a bigint", async () => {
    t = walkinTest(schema, modules);
    const ok = await t.mutation(api.items.add, { fields: { vec: [1, 0, 0] } });
    for (const vec of [undefined, null, "1,0,0", ["1", "0", "0"], [1n, 0, 0], [1, 0, "0"], [], [[1], [0], [0]]]) {
      await t.mutation(api.items.add, { fields: vec === undefined ? {} : { vec } });
    }
    expect(await search({ vector: [1, 0, 0], limit: 256 })).toEqual([{ _id: ok, _score: 1 }]);
  });
});

describe("filters", () => {
  it("tells null from undefined, a number from a bigint, and reads nested filter fields", async () => {
    t = walkinTest(schema, modules);
    const add = (fields: object) => t!.mutation(api.items.add, { fields: { vec: [1, 0, 0], ...fields } });
    const missing = await add({});
    const isNull = await add({ kind: null });
    const number = await add({ kind: 1 });
    const bigint = await add({ kind: 1n });
    const tagged = await add({ meta: { tag: "x" } });
    const ids = async (filter: (q: any) => any) => (await search({ vector: [1, 0, 0], filter, limit: 256 })).map((r: any) => r._id).sort();
    expect(await ids((q) => q.eq("kind", undefined))).toEqual([missing, tagged].sort());
    expect(await ids((q) => q.eq("kind", null))).toEqual([isNull]);
    expect(await ids((q) => q.eq("kind", 1))).toEqual([number]);
    expect(await ids((q) => q.eq("kind", 1n))).toEqual([bigint]);
    expect(await ids((q) => q.eq("meta.tag", "x"))).toEqual([tagged]);
    expect(await ids((q) => q.or(q.or(q.eq("kind", 1), q.eq("kind", null)), q.eq("meta.tag", "x")))).toEqual([isNull, number, tagged].sort());
  });
});

describe("writes", () => {
  it("indexes a document written twice in one mutation once, by its last vector and filter values", async () => {
    t = walkinTest(schema, modules);
    const id = await t.run(async (ctx) => {
      const id = await ctx.db.insert("items", { kind: "first", vec: [1, 0, 0], body: "hello" });
      await ctx.db.patch(id, { kind: "second", vec: [0, 1, 0] });
      const other = await ctx.db.insert("items", { kind: "gone", vec: [0, 1, 0] });
      await ctx.db.replace(other, { kind: "replaced", vec: [0, 0, 1] });
      await ctx.db.delete(other);
      return id;
    });
    expect(await search({ vector: [0, 1, 0], limit: 256 })).toEqual([{ _id: id, _score: 1 }]);
    expect(await search({ vector: [0, 1, 0], filter: (q: any) => q.eq("kind", "first") })).toEqual([]);
    expect(await search({ vector: [0, 1, 0], filter: (q: any) => q.eq("kind", "second") })).toEqual([{ _id: id, _score: 1 }]);
    expect(await search({ vector: [0, 1, 0], filter: (q: any) => q.or(q.eq("kind", "gone"), q.eq("kind", "replaced")) })).toEqual([]);
    // The search index of the same table still finds the document.
    const found = await t.query(async (ctx) => (await ctx.db.query("items").withSearchIndex("by_body", (q) => q.search("body", "hello")).collect()).map((d) => d._id));
    expect(found).toEqual([id]);
  });

  it("keeps no entry of a nested mutation that failed and was caught", async () => {
    t = walkinTest(schema, modules);
    const kept = await t.run(async (ctx) => {
      const error = await caught(ctx.runMutation(api.items.fail, { vec: [1, 0, 0] }));
      expect(error.message).toMatch(/changed my mind/);
      return await ctx.db.insert("items", { kind: "kept", vec: [0, 1, 0] });
    });
    expect((await search({ vector: [1, 0, 0], limit: 256 })).map((r: any) => r._id)).toEqual([kept]);
    expect(await search({ vector: [1, 0, 0], filter: (q: any) => q.eq("kind", "rolled back") })).toEqual([]);
  });

  it("drops the entries of a vector patched away, and a refused write that was caught leaves the mutation's others", async () => {
    t = walkinTest(schema, modules);
    const [removed, kept] = await t.run(async (ctx) => {
      const removed = await ctx.db.insert("items", { kind: "k", vec: [1, 0, 0] });
      const kept = await ctx.db.insert("items", { kind: "k", vec: [1, 1, 0] });
      const refused = await caught(ctx.db.patch(kept, { vec: [1, 1] }));
      expect(refused.code).toBe("INVALID_ARGUMENT");
      return [removed, kept];
    });
    await t.run((ctx) => ctx.db.patch(removed, { vec: undefined }));
    expect(await search({ vector: [1, 0, 0], filter: (q: any) => q.eq("kind", "k") })).toEqual([{ _id: kept, _score: expect.closeTo(Math.SQRT1_2, 12) }]);
  });

  it("keeps two vector indexes of one table apart", async () => {
    t = walkinTest(schema, modules);
    const both = await t.run((ctx) => ctx.db.insert("pairs", { a: [1, 0], b: [0, 0, 1] }));
    const onlyB = await t.run((ctx) => ctx.db.insert("pairs", { b: [0, 1, 0] }));
    const refused = await caught(t.run((ctx) => ctx.db.insert("pairs", { a: [1, 0, 0] })));
    expect(refused.message).toMatch(/"a" holds 3 numbers, and the vector index "by_a" takes vectors of 2/);
    expect(await t.action((ctx) => ctx.vectorSearch("pairs", "by_a", { vector: [1, 1] }))).toEqual([{ _id: both, _score: expect.closeTo(Math.SQRT1_2, 12) }]);
    expect((await t.action((ctx) => ctx.vectorSearch("pairs", "by_b", { vector: [0, 1, 0] }))).map((r) => r._id)).toEqual([onlyB, both]);
  });
});

describe("where a search runs", () => {
  it("runs from an HTTP action, a scheduled action and a registered action", async () => {
    t = walkinTest(schema, modules);
    const id = await t.mutation(api.items.add, { fields: { vec: [3, 4, 0] } });
    expect(await t.action(api.items.search, { vec: [3, 4, 0] })).toEqual([{ _id: id, _score: 1 }]);
    const engine = await t.engine();
    // As transport/http.ts runs a route's handler.
    const response = await engine.runHttpAction("HTTP action POST /similar", {}, (ctx) =>
      similar.handler(ctx as never, new Request("http://localhost/similar", { method: "POST", body: JSON.stringify([3, 4, 0]) })));
    expect(await response.json()).toEqual([{ _id: id, _score: 1 }]);
    await t.mutation(async (ctx) => ctx.scheduler.runAfter(0, api.items.searchAndSave, { vec: [3, 4, 0] }));
    await t.finishScheduledFunctions();
    const saved = await t.query(async (ctx) => (await ctx.db.query("items").collect()).filter((d) => d.kind === "saved").map((d) => d.body));
    expect(saved).toEqual([JSON.stringify([{ _id: id, _score: 1 }])]);
  });

  it("says a schemaless app has no vector index to search", async () => {
    const bare = walkinTest(null, modules);
    try {
      await bare.run((ctx) => ctx.db.insert("items", { vec: [1, 0, 0] }));
      const error = await caught(bare.action((ctx) => ctx.vectorSearch("items", "by_vec", { vector: [1, 0, 0] })));
      expect(error.code).toBe("INVALID_ARGUMENT");
      expect(error.message).toMatch(/table "items" has no vector index "by_vec" \(its vector indexes: none\)\. Declare one/);
    } finally {
      await bare.close();
    }
  });
});

describe("building a vector index again", () => {
  it("builds the entries again when the filter fields change, and refuses a search of a dropped index", async () => {
    const dir = mkdtempSync(join(tmpdir(), "walkin-vector-review-"));
    const filename = join(dir, "app.sqlite");
    const table = (filterFields: Array<"kind" | "color"> | null) => {
      const base = defineTable({ kind: v.string(), color: v.string(), vec: v.array(v.float64()) });
      return defineSchema({ things: filterFields === null ? base : base.vectorIndex("by_vec", { vectorField: "vec", dimensions: 2, filterFields }) });
    };
    const things = { add: mutation({ args: { kind: v.string(), color: v.string(), vec: v.array(v.float64()) }, handler: (ctx, doc) => ctx.db.insert("things", doc) }) };
    const open = async (filterFields: Array<"kind" | "color"> | null) =>
      Engine.open({ storage: await openSqliteStorage({ filename }), schema: table(filterFields), modules: { things }, runScheduler: false });
    const find = async (engine: Engine, filter?: (q: any) => any) =>
      (await engine.actionCtx({}).vectorSearch("things", "by_vec", { vector: [1, 0], ...(filter ? { filter } : {}) })).map((r) => r._id);
    try {
      const first = await open(["kind"]);
      const red = (await first.runMutation("things:add", { kind: "k", color: "red", vec: [1, 0] })).value;
      const blue = (await first.runMutation("things:add", { kind: "k", color: "blue", vec: [0, 1] })).value;
      expect(await find(first, (q) => q.eq("kind", "k"))).toEqual([red, blue]);
      await first.close();
      const byColor = await open(["color"]);
      expect(await find(byColor, (q) => q.eq("color", "blue"))).toEqual([blue]);
      expect((await caught(find(byColor, (q) => q.eq("kind", "k")))).message).toMatch(/its filter fields: color/);
      await byColor.close();
      const dropped = await open(null);
      expect((await caught(find(dropped))).message).toMatch(/has no vector index "by_vec" \(its vector indexes: none\)/);
      await dropped.close();
      const again = await open(["kind", "color"]);
      expect(await find(again, (q) => q.or(q.eq("color", "red"), q.eq("kind", "k")))).toEqual([red, blue]);
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * The test harness (review 6), written the way a Convex app's tests are: the `Cursor` type
 * such tests import from convex/server, a schema with a field named "_…", and what Walk-in
 * does with a second `paginate` in one function (docs/coming-from-convex.md).
 */
import { afterEach, describe, expect, expectTypeOf, test } from "vitest";
import { anyApi, defineSchema, defineTable, query, type Cursor, type PaginationResult } from "../server/index.js";
import { isWalkinError, v } from "../values/index.js";
import { convexTest } from "./index.js";

const schema = defineSchema({
  events: defineTable({ kind: v.string(), payload: v.object({ _source: v.string() }) }).index("by_kind", ["kind"]),
});
const api = anyApi as any;

const events = {
  page: query({
    args: { cursor: v.union(v.string(), v.null()) },
    handler: (ctx, { cursor }) => ctx.db.query("events").paginate({ numItems: 2, cursor }),
  }),
  // Two paginated queries in one function: Convex refuses the second; Walk-in runs both.
  twoKinds: query({
    args: {},
    handler: async (ctx) => {
      const a = await ctx.db.query("events").withIndex("by_kind", (q) => q.eq("kind", "a")).paginate({ numItems: 5, cursor: null });
      const b = await ctx.db.query("events").withIndex("by_kind", (q) => q.eq("kind", "b")).paginate({ numItems: 5, cursor: null });
      return [a.page.length, b.page.length];
    },
  }),
};

let t: ReturnType<typeof convexTest> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe("the Cursor type, imported as from convex/server", () => {
  test("types the cursor a test walks the pages with", async () => {
    t = convexTest(schema, { events });
    await t.run(async (ctx) => {
      for (const kind of ["a", "a", "b", "b", "b"]) await ctx.db.insert("events", { kind, payload: { _source: "test" } });
    });
    let cursor: Cursor | null = null;
    let seen = 0;
    for (let guard = 0; guard < 10; guard++) {
      const result: PaginationResult<unknown> = await t.query(api.events.page, { cursor });
      seen += result.page.length;
      if (result.isDone) break;
      cursor = result.continueCursor;
    }
    expect(seen).toBe(5);
    expectTypeOf<Cursor>().toEqualTypeOf<string>();
    expectTypeOf<PaginationResult<unknown>["continueCursor"]>().toMatchTypeOf<Cursor>();
  });
});

describe('a schema field named "_…"', () => {
  test("a table's own field is refused when the schema is defined, before any test runs", () => {
    let error: unknown;
    try {
      defineSchema({ notes: defineTable({ _secret: v.string() }) });
    } catch (caught) {
      error = caught;
    }
    expect(isWalkinError(error) && error.code).toBe("MISUSE");
    expect((error as Error).message).toContain('Rename the field, e.g. to "secret"');
  });

  test("still: a nested one is stored and read back", async () => {
    t = convexTest(schema, { events });
    await t.run((ctx) => ctx.db.insert("events", { kind: "a", payload: { _source: "webhook" } }));
    const page = await t.query(api.events.page, { cursor: null });
    expect(page.page.map((event: { payload: unknown }) => event.payload)).toEqual([{ _source: "webhook" }]);
  });
});

describe("two paginated queries in one function", () => {
  // A documented difference: Convex fails such a function ("This query or mutation function
  // ran multiple paginated queries"); Walk-in has no reason to, and its own tests page in loops.
  test("both run on Walk-in", async () => {
    t = convexTest(schema, { events });
    await t.run(async (ctx) => {
      for (const kind of ["a", "b", "b"]) await ctx.db.insert("events", { kind, payload: { _source: "x" } });
    });
    expect(await t.query(api.events.twoKinds, {})).toEqual([1, 2]);
  });
});

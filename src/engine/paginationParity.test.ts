/**
 * `paginate` and `paginationOptsValidator` as Convex documents them
 * (docs.convex.dev/api/interfaces/server.PaginationOptions and server.PaginationResult):
 * the validator takes every field Convex's does, and a page honours its read budgets
 * (`maximumRowsRead`, `maximumBytesRead`), says when it stopped early (`pageStatus`) and where it
 * can be split (`splitCursor`), on a one-shot call and as a live query whose data changes.
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, defineSchema, defineTable, paginationOptsValidator, query, type ApiFromModules } from "../server/index.js";
import { isWalkinError, v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import { settle } from "./fixtures/settle.js";

const schema = defineSchema({
  items: defineTable({ n: v.number(), tag: v.string(), body: v.optional(v.string()) }).index("by_n", ["n"]),
});

const modules = {
  items: {
    /** Written as in Convex's docs: the validated options go straight to paginate(). */
    page: query({
      args: { paginationOpts: paginationOptsValidator },
      handler: async (ctx, { paginationOpts }) => {
        const result = await ctx.db.query("items").withIndex("by_n").paginate(paginationOpts);
        return { ...result, page: result.page.map((d) => d.n) };
      },
    }),
    /** Only the items tagged "hit": a filter that rejects most of what it reads. */
    hits: query({
      args: { paginationOpts: paginationOptsValidator },
      handler: async (ctx, { paginationOpts }) => {
        const result = await ctx.db
          .query("items")
          .withIndex("by_n")
          .filter((q) => q.eq(q.field("tag"), "hit"))
          .paginate(paginationOpts);
        return { ...result, page: result.page.map((d) => d.n) };
      },
    }),
  },
};
const api = anyApi as unknown as ApiFromModules<typeof modules>;

let t: ReturnType<typeof walkinTest<typeof schema>>;
afterEach(async () => t?.close());

async function insertItems(items: Array<{ n: number; tag?: string; body?: string }>): Promise<void> {
  await t.run(async (ctx) => {
    for (const item of items) await ctx.db.insert("items", { tag: "miss", ...item });
  });
}

type Page = { page: number[]; isDone: boolean; continueCursor: string; splitCursor?: string | null; pageStatus?: string | null };

/** Follows continueCursor until isDone, as a client loading every page would. */
async function allPages(ref: typeof api.items.hits, opts: Record<string, unknown>): Promise<Page[]> {
  const pages: Page[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 100; i++) {
    const result = (await t.query(ref, { paginationOpts: { ...opts, cursor } as never })) as Page;
    pages.push(result);
    if (result.isDone) return pages;
    cursor = result.continueCursor;
  }
  throw new Error("pagination never finished");
}

describe("paginationOptsValidator", () => {
  it("accepts Convex's optional fields (id, endCursor, maximumRowsRead, maximumBytesRead)", async () => {
    t = walkinTest(schema, modules);
    await insertItems([{ n: 1 }, { n: 2 }]);
    // What Convex's usePaginatedQuery sends (an `id` per list), plus the read budgets.
    const result = await t.query(api.items.page, {
      paginationOpts: { numItems: 5, cursor: null, endCursor: null, id: 7, maximumRowsRead: 100, maximumBytesRead: 1_000_000 },
    });
    expect(result.page).toEqual([1, 2]);
    expect(result.isDone).toBe(true);
  });
});

describe("read budgets", () => {
  it("maximumRowsRead ends a page of a rarely matching filter early, and the pages still hold every match", async () => {
    t = walkinTest(schema, modules);
    await insertItems(Array.from({ length: 10 }, (_, i) => ({ n: i + 1, tag: i + 1 === 8 ? "hit" : "miss" })));
    const first = await t.query(api.items.hits, { paginationOpts: { numItems: 5, cursor: null, maximumRowsRead: 3 } });
    // Three rows read, none a match: an empty page that is not the end.
    expect(first).toMatchObject({ page: [], isDone: false, pageStatus: "SplitRequired" });
    const pages = await allPages(api.items.hits, { numItems: 5, maximumRowsRead: 3 });
    expect(pages.flatMap((p) => p.page)).toEqual([8]);
    expect(pages.length).toBeGreaterThanOrEqual(4); // 10 rows, at most 3 a page
  });

  it("maximumBytesRead ends a page once that many bytes are read, after at least one document", async () => {
    t = walkinTest(schema, modules);
    const body = "x".repeat(1000);
    await insertItems(Array.from({ length: 6 }, (_, i) => ({ n: i + 1, body })));
    const result = await t.query(api.items.page, { paginationOpts: { numItems: 10, cursor: null, maximumBytesRead: 2500 } });
    expect(result).toMatchObject({ page: [1, 2, 3], isDone: false, pageStatus: "SplitRequired" });
    const tiny = await t.query(api.items.page, { paginationOpts: { numItems: 10, cursor: null, maximumBytesRead: 1 } });
    expect(tiny).toMatchObject({ page: [1], isDone: false, pageStatus: "SplitRequired" });
    const pages = await allPages(api.items.page, { numItems: 10, maximumBytesRead: 2500 });
    expect(pages.flatMap((p) => p.page)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("a page with an endCursor reads its whole range whatever its budgets (its bounds are fixed)", async () => {
    t = walkinTest(schema, modules);
    await insertItems(Array.from({ length: 8 }, (_, i) => ({ n: i + 1 })));
    const wide = await t.query(api.items.page, { paginationOpts: { numItems: 6, cursor: null } });
    const pinned = await t.query(api.items.page, {
      paginationOpts: { numItems: 6, cursor: null, endCursor: wide.continueCursor, maximumRowsRead: 2, maximumBytesRead: 1 },
    });
    expect(pinned.page).toEqual([1, 2, 3, 4, 5, 6]);
    expect(pinned.pageStatus ?? null).not.toBe("SplitRequired");
  });

  it("a budget that is not a whole number from 1 is refused, naming the option", async () => {
    t = walkinTest(schema, modules);
    await insertItems([{ n: 1 }]);
    for (const opts of [{ maximumRowsRead: 0 }, { maximumBytesRead: 2.5 }, { maximumRowsRead: -1 }]) {
      const error = await t.query(api.items.page, { paginationOpts: { numItems: 5, cursor: null, ...opts } }).catch((e) => e as Error);
      expect(isWalkinError(error), JSON.stringify(opts)).toBe(true);
      expect((error as Error).message).toContain(Object.keys(opts)[0]);
    }
  });
});

describe("splitCursor", () => {
  it("a page that read most of its budget recommends a split, and its two halves hold the same documents", async () => {
    t = walkinTest(schema, modules);
    await insertItems(Array.from({ length: 12 }, (_, i) => ({ n: i + 1 })));
    const opts = { numItems: 7, cursor: null, maximumRowsRead: 8 };
    const whole = await t.query(api.items.page, { paginationOpts: opts });
    // 7 rows read of a budget of 8: past three quarters of it.
    expect(whole).toMatchObject({ page: [1, 2, 3, 4, 5, 6, 7], isDone: false, pageStatus: "SplitRecommended" });
    expect(typeof whole.splitCursor).toBe("string");
    const left = await t.query(api.items.page, { paginationOpts: { ...opts, endCursor: whole.splitCursor } });
    const right = await t.query(api.items.page, {
      paginationOpts: { ...opts, cursor: whole.splitCursor!, endCursor: whole.continueCursor },
    });
    expect(left.page.length).toBeGreaterThan(0);
    expect(right.page.length).toBeGreaterThan(0);
    expect([...left.page, ...right.page]).toEqual(whole.page);
  });
});

describe("a live page that stopped early", () => {
  it("re-runs when its read range changes, and always equals a fresh run", async () => {
    t = walkinTest(schema, modules);
    const engine = await t.engine();
    await insertItems(Array.from({ length: 10 }, (_, i) => ({ n: (i + 1) * 10 })));
    const args = { paginationOpts: { numItems: 5, cursor: null, maximumRowsRead: 3 } };
    let latest: unknown = "none";
    const sub = await engine.subscriptions.subscribe("items:hits", args, {}, (outcome) => {
      latest = outcome.ok ? outcome.value : `error: ${outcome.error.message}`;
    });
    latest = sub.outcome.ok ? sub.outcome.value : "error";
    const fresh = () => engine.runQuery("items:hits", args, {});
    expect(latest).toMatchObject({ page: [], isDone: false, pageStatus: "SplitRequired" });
    const idOf = (n: number) => t.run(async (ctx) => (await ctx.db.query("items").withIndex("by_n", (q) => q.eq("n", n)).unique())!._id);

    // A match appears inside the rows the page read.
    const twenty = await idOf(20);
    await t.run(async (ctx) => ctx.db.patch(twenty, { tag: "hit" }));
    await settle(engine);
    expect(latest).toMatchObject({ page: [20], pageStatus: "SplitRequired" });
    expect(latest).toEqual(await fresh());

    // A row inserted before where it stopped pushes that point back...
    await insertItems([{ n: 15 }]);
    await settle(engine);
    expect(latest).toEqual(await fresh());
    const afterInsert = latest as Page;

    // ...and a row deleted before it lets the page read one more (here a match).
    const forty = await idOf(40);
    await t.run(async (ctx) => ctx.db.patch(forty, { tag: "hit" }));
    await settle(engine);
    expect(latest, "a write past where the page stopped does not change it").toEqual(afterInsert);
    await t.run(async (ctx) => ctx.db.delete(twenty));
    await settle(engine);
    expect(latest).toEqual(await fresh());
    // Rows read now: 10, 15, 30: still no 40, which is past the budget.
    expect((latest as Page).page).toEqual([]);
    const ten = await idOf(10);
    await t.run(async (ctx) => ctx.db.delete(ten));
    await settle(engine);
    expect(latest).toMatchObject({ page: [40], pageStatus: "SplitRequired" });
    expect(latest).toEqual(await fresh());
    sub.unsubscribe();
  });
});

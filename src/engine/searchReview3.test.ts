/**
 * Third review of full-text search (search.ts, searchQuery.ts): a page cursor bound to the
 * search that made it (its words and filter values), and what the rest of the search API does
 * at its edges. Runs on every test storage (vitest.config.ts).
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, type ApiFromModules, defineSchema, defineTable, mutation, paginationOptsValidator, query } from "../server/index.js";
import { v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";

const schema = defineSchema({
  notes: defineTable({ body: v.string(), channel: v.string() }).searchIndex("search_body", { searchField: "body", filterFields: ["channel"] }),
});

const notes = {
  add: mutation({
    args: { bodies: v.array(v.string()), channel: v.string() },
    handler: async (ctx, { bodies, channel }) => {
      for (const body of bodies) await ctx.db.insert("notes", { body, channel });
    },
  }),
  page: query({
    args: { text: v.string(), channel: v.optional(v.string()), paginationOpts: paginationOptsValidator },
    handler: (ctx, { text, channel, paginationOpts }) =>
      ctx.db
        .query("notes")
        .withSearchIndex("search_body", (q) => (channel === undefined ? q.search("body", text) : q.search("body", text).eq("channel", channel)))
        .paginate(paginationOpts),
  }),
};
const modules = { notes };
const api = anyApi as unknown as ApiFromModules<typeof modules>;

let t: ReturnType<typeof walkinTest<typeof schema>> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function caught(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

const REFUSED = /paginate\(\): the cursor is not one this search query's paginate\(\) returned .*Pass null for the first page/;

describe("a search's page cursor", () => {
  it("is refused by a search with other words or filter values, instead of starting at a position of another list", async () => {
    t = walkinTest(schema, modules);
    await t.mutation(api.notes.add, { bodies: ["apple one", "apple two", "apple three", "apple four"], channel: "a" });
    await t.mutation(api.notes.add, { bodies: ["banana one", "banana two", "banana three", "banana four"], channel: "a" });
    await t.mutation(api.notes.add, { bodies: ["apple in b", "apple again in b"], channel: "b" });
    const page = (text: string, channel: string | undefined, opts: { numItems: number; cursor: string | null; endCursor?: string }) =>
      t!.query(api.notes.page, { text, channel, paginationOpts: opts });
    const first = await page("apple", "a", { numItems: 2, cursor: null });
    const cursor = first.continueCursor;
    for (const [text, channel] of [["banana", "a"], ["apple", "b"], ["apple", undefined], ["apple pie", "a"], ["app", "a"]] as const) {
      const error = await caught(page(text, channel, { numItems: 2, cursor }));
      expect(error.code, `${text} in ${channel}`).toBe("INVALID_ARGUMENT");
      expect(error.message).toMatch(REFUSED);
      // An endCursor too: it is a position in the same list.
      const asEnd = await caught(page(text, channel, { numItems: 2, cursor: null, endCursor: cursor }));
      expect(asEnd.code).toBe("INVALID_ARGUMENT");
    }
    // The same words typed otherwise are the same search.
    const same = await page("  APPLE,", "a", { numItems: 2, cursor });
    expect(same.page).toHaveLength(2);
    // Not a cursor at all: the same clear error.
    expect((await caught(page("apple", "a", { numItems: 2, cursor: "not-a-cursor" }))).message).toMatch(REFUSED);
  });

  it("of the same search keeps working on every page and at later snapshots", async () => {
    t = walkinTest(schema, modules);
    await t.mutation(api.notes.add, { bodies: Array.from({ length: 5 }, (_, i) => `kiwi ${"x ".repeat(i)}`), channel: "a" });
    const page = (opts: { numItems: number; cursor: string | null; endCursor?: string }) =>
      t!.query(api.notes.page, { text: "kiwi", channel: "a", paginationOpts: opts });
    const first = await page({ numItems: 2, cursor: null });
    await t.mutation(api.notes.add, { bodies: ["kiwi", "kiwi kiwi"], channel: "a" });
    // A pinned first page and the next one, re-run at the later snapshot as usePaginatedQuery does.
    const pinned = await page({ numItems: 2, cursor: null, endCursor: first.continueCursor });
    const second = await page({ numItems: 2, cursor: first.continueCursor });
    const rest = await page({ numItems: 10, cursor: second.continueCursor });
    const bodies = [...pinned.page, ...second.page, ...rest.page].map((d) => d._id);
    expect(new Set(bodies).size).toBe(7);
    expect(rest.isDone).toBe(true);
  });
});

describe("ranking ties", () => {
  it("two documents with the same words in another order score alike, and the newer comes first", async () => {
    t = walkinTest(schema, modules);
    // Each case in a channel of its own: an older text, the same words reversed, and a text
    // with some of the words (so the words weigh differently, and the sums round differently).
    const cases = [["ant bee cat", "cat dog eel fox gnu"], ["ant cat dog", "bee dog eel fox gnu"], ["ant bee cat dog", "dog"]];
    for (const [i, [text, other]] of cases.entries()) {
      await t.mutation(api.notes.add, { bodies: [other!], channel: `c${i}` });
      await t.mutation(api.notes.add, { bodies: [text!], channel: `c${i}` });
      await t.mutation(api.notes.add, { bodies: [text!.split(" ").reverse().join(" ")], channel: `c${i}` });
    }
    for (const [i, [text]] of cases.entries()) {
      const found = await t.query(api.notes.page, { text: "ant bee cat dog eel fox gnu", channel: `c${i}`, paginationOpts: { numItems: 10, cursor: null } });
      const tied = found.page.map((d) => d.body).filter((body) => body.split(" ").sort().join(" ") === text!.split(" ").sort().join(" "));
      expect(tied, text).toEqual([text!.split(" ").reverse().join(" "), text]);
    }
  });
});

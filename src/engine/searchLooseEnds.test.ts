/**
 * Two loose ends of full-text search (search.ts, searchQuery.ts): a page cursor counts the
 * ranked results before `.filter()`, as an index query's cursor is a key whether `.filter()`
 * kept it or not; and a word longer than `SEARCH_LIMITS.wordChars` is cut, in documents and
 * queries alike, so it can be found. Runs on every test storage (vitest.config.ts).
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, type ApiFromModules, defineSchema, defineTable, mutation, paginationOptsValidator, query } from "../server/index.js";
import { v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import { SEARCH_LIMITS, words } from "./search.js";

const schema = defineSchema({
  notes: defineTable({ body: v.string(), open: v.boolean() }).searchIndex("search_body", { searchField: "body" }),
});

const notes = {
  add: mutation({
    args: { bodies: v.array(v.string()), open: v.boolean() },
    handler: async (ctx, { bodies, open }) => {
      for (const body of bodies) await ctx.db.insert("notes", { body, open });
    },
  }),
  close: mutation({
    args: { body: v.string() },
    handler: async (ctx, { body }) => {
      const note = (await ctx.db.query("notes").collect()).find((n) => n.body === body)!;
      await ctx.db.patch(note._id, { open: false });
    },
  }),
  page: query({
    args: { text: v.string(), onlyOpen: v.boolean(), paginationOpts: paginationOptsValidator },
    handler: async (ctx, { text, onlyOpen, paginationOpts }) => {
      const search = ctx.db.query("notes").withSearchIndex("search_body", (q) => q.search("body", text));
      const result = await (onlyOpen ? search.filter((q) => q.eq(q.field("open"), true)) : search).paginate(paginationOpts);
      return { ...result, page: result.page.map((n) => n.body) };
    },
  }),
  bodies: query({
    args: { text: v.string() },
    handler: async (ctx, { text }) => (await ctx.db.query("notes").withSearchIndex("search_body", (q) => q.search("body", text)).collect()).map((n) => n.body),
  }),
};
const modules = { notes };
const api = anyApi as unknown as ApiFromModules<typeof modules>;

let t: ReturnType<typeof walkinTest<typeof schema>> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

type Page = { numItems: number; cursor: string | null; endCursor?: string };
const page = (text: string, onlyOpen: boolean, paginationOpts: Page) => t!.query(api.notes.page, { text, onlyOpen, paginationOpts });

describe("a search's page cursor and .filter()", () => {
  it("a result that stops passing .filter() between pages moves no other result off its page", async () => {
    t = walkinTest(schema, modules);
    // Six texts with the same words: equal scores, so the ranking is by age alone and a patch
    // of `open` (not the text) leaves it as it was.
    await t.mutation(api.notes.add, { bodies: ["kiwi a", "kiwi b", "kiwi c", "kiwi d", "kiwi e", "kiwi f"], open: true });
    const ranked = (await page("kiwi", false, { numItems: 10, cursor: null })).page;
    expect(ranked).toHaveLength(6);
    const first = await page("kiwi", true, { numItems: 2, cursor: null });
    expect(first.page).toEqual(ranked.slice(0, 2));
    await t.mutation(api.notes.close, { body: ranked[0]! });
    // The next page starts with the third result; counted after .filter(), it started with the fourth.
    const second = await page("kiwi", true, { numItems: 2, cursor: first.continueCursor });
    expect(second.page).toEqual(ranked.slice(2, 4));
    // The first page re-run with its end (as usePaginatedQuery does) keeps to its own results.
    const again = await page("kiwi", true, { numItems: 2, cursor: null, endCursor: first.continueCursor });
    expect(again.page).toEqual([ranked[1]]);
  });

  it("a cursor reused under another .filter() continues after the same place in the ranked results", async () => {
    t = walkinTest(schema, modules);
    for (const body of ["plum 1", "plum 2", "plum 3", "plum 4", "plum 5", "plum 6"]) {
      await t.mutation(api.notes.add, { bodies: [body], open: Number(body.at(-1)) % 2 === 0 });
    }
    const ranked = (await page("plum", false, { numItems: 10, cursor: null })).page;
    const open = ranked.filter((body) => Number(body.at(-1)) % 2 === 0);
    const filtered = await page("plum", true, { numItems: 2, cursor: null });
    expect(filtered.page).toEqual(open.slice(0, 2));
    // As after a deploy that dropped the .filter(): the rest of the ranked results after the
    // last one shown, none of those before it again (a position after .filter() showed one twice).
    const unfiltered = await page("plum", false, { numItems: 10, cursor: filtered.continueCursor });
    expect(unfiltered.page).toEqual(ranked.slice(ranked.indexOf(open[1]!) + 1));
    expect(unfiltered.isDone).toBe(true);
  });

  it("a page after which no result passes .filter() is the last", async () => {
    t = walkinTest(schema, modules);
    await t.mutation(api.notes.add, { bodies: ["fig 1", "fig 2"], open: false });
    await t.mutation(api.notes.add, { bodies: ["fig 3", "fig 4"], open: true });
    await t.mutation(api.notes.add, { bodies: ["fig 5", "fig 6"], open: false });
    const result = await page("fig", true, { numItems: 2, cursor: null });
    expect(new Set(result.page)).toEqual(new Set(["fig 3", "fig 4"]));
    expect(result.isDone).toBe(true);
    expect((await page("fig", true, { numItems: 2, cursor: result.continueCursor })).page).toEqual([]);
  });
});

describe("a word longer than SEARCH_LIMITS.wordChars", () => {
  const compound = "Donaudampfschifffahrtsgesellschaftskapitän"; // 42 characters
  const identifier = "getUserAccountPreferencesFromServerCache"; // 40 characters

  it("is cut to its first characters, counted as characters, on the ASCII path and the other alike", () => {
    expect(SEARCH_LIMITS.wordChars).toBe(32);
    expect(words(`x ${"a".repeat(40)} y`)).toEqual(["x", "a".repeat(32), "y"]);
    expect(words(`x ${"é".repeat(40)} y`)).toEqual(["x", "é".repeat(32), "y"]);
    // A letter outside the BMP is one character: cut between two, never inside one.
    expect(words("𝐀".repeat(33))).toEqual(["𝐀".repeat(32)]);
    expect(words(identifier)).toEqual([identifier.toLowerCase().slice(0, 32)]);
    expect(words(compound)).toEqual([compound.toLowerCase().slice(0, 32)]);
  });

  it("in a document is found by the word typed in full, by its beginning, and as a query's last word", async () => {
    t = walkinTest(schema, modules);
    await t.mutation(api.notes.add, { bodies: [`ahoy ${compound}`, `call ${identifier}()`, "alphabet soup", `長い${"漢".repeat(38)} end`], open: true });
    const found = (text: string) => t!.query(api.notes.bodies, { text });
    expect(await found(compound)).toEqual([`ahoy ${compound}`]);
    expect(await found(`captain ${compound.toUpperCase()}`)).toEqual([`ahoy ${compound}`]);
    expect(await found("donaudampf")).toEqual([`ahoy ${compound}`]);
    expect(await found(`${identifier} oops`)).toEqual([`call ${identifier}()`]);
    expect(await found(identifier.slice(0, 36))).toEqual([`call ${identifier}()`]);
    expect(await found("長い漢漢")).toEqual([`長い${"漢".repeat(38)} end`]);
  });

  it("as a query's last word stays its last word: the word before it is not made a prefix", async () => {
    t = walkinTest(schema, modules);
    await t.mutation(api.notes.add, { bodies: ["alphabet soup"], open: true });
    expect(await t.query(api.notes.bodies, { text: "alph" })).toEqual(["alphabet soup"]);
    // "alph" is a whole word here, and the long word is in no document.
    expect(await t.query(api.notes.bodies, { text: `alph ${"x".repeat(40)}` })).toEqual([]);
  });
});

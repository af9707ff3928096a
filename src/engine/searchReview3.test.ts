/**
 * Third review of full-text search (search.ts, searchQuery.ts): a page cursor bound to the
 * search that made it (its words and filter values), and what the rest of the search API does
 * at its edges. Runs on every test storage (vitest.config.ts).
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, type ApiFromModules, defineSchema, defineTable, mutation, paginationOptsValidator, query } from "../server/index.js";
import { v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import { caught } from "./fixtures/caught.js";

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

/** `count` distinct words: the same set for every call (a, b, …, 9, aa, ab, …). */
function distinctWords(count: number, offset = 0): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const out: string[] = [];
  for (let n = offset; out.length < count; n++) {
    let word = "";
    for (let m = n; ; m = Math.floor(m / alphabet.length) - 1) {
      word = alphabet[m % alphabet.length] + word;
      if (m < alphabet.length) break;
    }
    out.push(word);
  }
  return out.join(" ");
}

describe("search index entries one mutation writes", () => {
  it("are capped: a mutation past the cap fails with an error naming the limit, and writes nothing", async () => {
    t = walkinTest(schema, modules);
    // 70 documents of 4,096 distinct words: 286,720 entries, each document well within its own limits.
    const body = distinctWords(4_096);
    const error = await caught(t.mutation(api.notes.add, { bodies: Array.from({ length: 70 }, () => body), channel: "a" }));
    expect(error.code).toBe("LIMIT_EXCEEDED");
    expect(error.message).toMatch(/at most 262144 search index entries \(searchEntriesWritten\).*Write fewer or shorter documents per mutation/);
    expect(await t.run((ctx) => ctx.db.query("notes").collect())).toEqual([]);
    expect((await t.query(api.notes.page, { text: "a", paginationOpts: { numItems: 10, cursor: null } })).page).toEqual([]);
    // Under the cap, the same documents go in over several mutations.
    for (let i = 0; i < 2; i++) await t.mutation(api.notes.add, { bodies: Array.from({ length: 35 }, () => body), channel: "a" });
    expect(await t.run(async (ctx) => (await ctx.db.query("notes").collect()).length)).toBe(70);
  });

  it("count a document written twice once, and a patch of a worded document its words before and after", async () => {
    t = walkinTest(schema, modules);
    const body = distinctWords(4_096);
    // 40 documents, each inserted then replaced by text of the same size: 163,840 entries, not twice that.
    await t.run(async (ctx) => {
      for (let i = 0; i < 40; i++) {
        const id = await ctx.db.insert("notes", { body, channel: "a" });
        await ctx.db.patch(id, { body: distinctWords(4_096, 4_096) });
      }
    });
    // Patching only the channel of all 40 touches every word's entry twice (removed from one
    // group, added to the other): 327,680 entries.
    const error = await caught(t.run(async (ctx) => {
      for (const note of await ctx.db.query("notes").collect()) await ctx.db.patch(note._id, { channel: "b" });
    }));
    expect(error.code).toBe("LIMIT_EXCEEDED");
    expect(await t.run(async (ctx) => (await ctx.db.query("notes").collect()).every((note) => note.channel === "a"))).toBe(true);
  });

  it("leave ordinary bulk writes far below the cap: 300 documents of 300 words each", async () => {
    t = walkinTest(schema, modules);
    const bodies = Array.from({ length: 300 }, (_, i) => distinctWords(300, i * 7));
    await t.mutation(api.notes.add, { bodies, channel: "a" });
    expect(await t.run(async (ctx) => (await ctx.db.query("notes").collect()).length)).toBe(300);
  });
});

/**
 * Adversarial review of full-text search (search.ts, searchQuery.ts): text a user types in
 * other ways than the test writer (Unicode forms, scripts, long words), filter values of every
 * type, the read limits of a search over many documents, and an index whose filter fields
 * change between restarts. Runs on every test storage (vitest.config.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { defineSchema, defineTable, mutation, query } from "../server/index.js";
import { isWalkinError, v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine } from "./engine.js";
import { settle } from "./fixtures/settle.js";
import { words } from "./search.js";
import { caught } from "./fixtures/caught.js";

const schema = defineSchema({
  notes: defineTable({ body: v.string(), tag: v.optional(v.any()), team: v.optional(v.string()) })
    .searchIndex("search_body", { searchField: "body", filterFields: ["tag", "team"] }),
  plain: defineTable({ body: v.string() }).searchIndex("search_body", { searchField: "body" }),
});

let t: ReturnType<typeof walkinTest<typeof schema>> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** The bodies a search of `plain` finds, in order. */
const searchPlain = (text: string) =>
  t!.run(async (ctx) => (await ctx.db.query("plain").withSearchIndex("search_body", (q) => q.search("body", text)).collect()).map((d) => d.body));

const insertPlain = (...bodies: string[]) =>
  t!.run(async (ctx) => {
    for (const body of bodies) await ctx.db.insert("plain", { body });
  });

/** The bodies a search of `notes` finds, sorted. */
const find = (build: (q: any) => any) =>
  t!.run(async (ctx) => (await ctx.db.query("notes").withSearchIndex("search_body", build).collect()).map((d) => d.body).sort());

describe("text a user types in other ways", () => {
  it("finds a word whatever Unicode form it was typed in (precomposed or combining marks)", async () => {
    t = walkinTest(schema, {});
    const composed = "caf\u00e9";
    const decomposed = "cafe\u0301";
    await insertPlain(`${composed} noir`, `${decomposed} au lait`);
    expect(new Set(await searchPlain(composed))).toEqual(new Set([`${composed} noir`, `${decomposed} au lait`]));
    expect(new Set(await searchPlain(`${decomposed} x`))).toEqual(new Set([`${composed} noir`, `${decomposed} au lait`]));
  });

  it("counts a word's length in characters, so letters outside the BMP are not half as long a word", async () => {
    t = walkinTest(schema, {});
    const astral = "𠀀".repeat(20); // 20 characters, 40 UTF-16 code units
    await insertPlain(`${astral} end`);
    expect(await searchPlain(astral)).toEqual([`${astral} end`]);
    expect(words("𝐀".repeat(32))).toHaveLength(1);
    // A longer word is cut to its first 32 characters, never inside a character.
    expect(words("𝐀".repeat(33))).toEqual(["𝐀".repeat(32)]);
  });

  it("finds İstanbul by istanbul (Turkish dotted capital I)", async () => {
    t = walkinTest(schema, {});
    await insertPlain("İSTANBUL trip", "Istanbul again");
    expect(new Set(await searchPlain("istanbul"))).toEqual(new Set(["İSTANBUL trip", "Istanbul again"]));
  });

  it("emoji and punctuation are not words; a query of them finds nothing", async () => {
    t = walkinTest(schema, {});
    await insertPlain("🎉 party 🎉", "!!!");
    expect(await searchPlain("🎉")).toEqual([]);
    expect(await searchPlain("party 🎉")).toEqual(["🎉 party 🎉"]);
    expect(await searchPlain("?!")).toEqual([]);
  });

  it("a CJK sentence is one word: found by its start (as a prefix), not by a word inside it", async () => {
    t = walkinTest(schema, {});
    await insertPlain("東京都に住んでいます", "東京 大阪");
    expect(new Set(await searchPlain("東京"))).toEqual(new Set(["東京都に住んでいます", "東京 大阪"]));
    expect(await searchPlain("住んで")).toEqual([]);
    expect(await searchPlain("大阪")).toEqual(["東京 大阪"]);
  });

  it("searches only the first 16 distinct words of a query", async () => {
    t = walkinTest(schema, {});
    await insertPlain("seventeen");
    const sixteen = Array.from({ length: 16 }, (_, i) => `w${i}`).join(" ");
    expect(await searchPlain(`${sixteen} seventeen`)).toEqual([]);
    expect(await searchPlain(`${sixteen} w0 w1 seventeen`)).toEqual([]);
  });
});

describe("filter values of every type", () => {
  it("agree whether a search gives every filter field (reads one group) or not (checks each document)", async () => {
    t = walkinTest(schema, {});
    const tags: unknown[] = [0, -0, 1, 1n, "1", true, false, null, [1, 2], { a: 1 }, new Uint8Array([1]).buffer, Number.NaN, 1.5];
    await t.run(async (ctx) => {
      for (const [i, tag] of tags.entries()) await ctx.db.insert("notes", { body: `word n${i}`, tag: tag as never, team: "x" });
      await ctx.db.insert("notes", { body: "word untagged", tag: undefined as never, team: "x" });
    });
    for (const tag of [...tags, undefined]) {
      const some = await find((q) => q.search("body", "word").eq("tag", tag));
      const all = await find((q) => q.search("body", "word zzz").eq("tag", tag).eq("team", "x"));
      expect(all, `tag ${String(tag)}`).toEqual(some);
      expect(some.length, `tag ${String(tag)}`).toBeGreaterThan(0);
    }
    // Compared as withIndex compares: 0 and -0 differ, as do 1 and 1n, and NaN equals NaN.
    expect(await find((q) => q.search("body", "word").eq("tag", 0))).toEqual(["word n0"]);
    expect(await find((q) => q.search("body", "word").eq("tag", -0))).toEqual(["word n1"]);
    expect(await find((q) => q.search("body", "word").eq("tag", 1n))).toEqual(["word n3"]);
    expect(await find((q) => q.search("body", "word").eq("tag", Number.NaN))).toEqual(["word n11"]);
  });

  it("refuse a filter value that is not a Convex value, saying so", async () => {
    t = walkinTest(schema, {});
    for (const bad of [new Date(), () => 1, Symbol("s"), new Map()]) {
      const error = await caught(find((q) => q.search("body", "word").eq("tag", bad)));
      expect(isWalkinError(error), String(error)).toBe(true);
      expect(error.message).toMatch(/eq\(\)|tag/);
    }
  });
});

describe("how much a search reads", () => {
  it("a search with every filter field finds its group's documents, however many other groups have the word", async () => {
    t = walkinTest(schema, {});
    // Older documents in small teams, then many newer ones in a big team.
    await t.run(async (ctx) => {
      for (let i = 0; i < 10; i++) await ctx.db.insert("notes", { body: "hello small", tag: "t", team: `small${i}` });
    });
    for (let batch = 0; batch < 3; batch++) {
      await t.run(async (ctx) => {
        for (let i = 0; i < 1500; i++) await ctx.db.insert("notes", { body: `hello big ${batch} ${i}`, tag: "t", team: "big" });
      });
    }
    for (let i = 0; i < 10; i++) {
      expect(await find((q) => q.search("body", "hello").eq("tag", "t").eq("team", `small${i}`)), `small${i}`).toEqual(["hello small"]);
    }
  }, 120_000);
});

describe("the last word, searched as a prefix, without a filter group", () => {
  it("finds the typed word's own documents first, however many documents have longer words it begins", async () => {
    t = walkinTest(schema, {});
    // The word itself in old documents, then more documents than a search reads with longer words.
    await insertPlain("an old hel", "another hel");
    for (let batch = 0; batch < 3; batch++) {
      await t.run(async (ctx) => {
        for (let i = 0; i < 1500; i++) await ctx.db.insert("plain", { body: `helpful helper ${batch} ${i}` });
      });
    }
    const found = await searchPlain("hel");
    expect(found).toHaveLength(1024);
    expect(found.filter((body) => body.endsWith(" hel")).sort()).toEqual(["an old hel", "another hel"]);
  }, 120_000);
});

describe("the last word, searched as a prefix, in one filter group", () => {
  it("re-runs a live search when its group gains a document with a word the prefix begins", async () => {
    t = walkinTest(schema, { notes: { search: query({
      args: { text: v.string(), team: v.string() },
      handler: async (ctx, { text, team }) =>
        (await ctx.db.query("notes").withSearchIndex("search_body", (q) => q.search("body", text).eq("tag", "t").eq("team", team)).collect()).map((d) => d.body).sort(),
    }) } });
    await t.run(async (ctx) => {
      await ctx.db.insert("notes", { body: "alpha", tag: "t", team: "a" });
      await ctx.db.insert("notes", { body: "alpine", tag: "t", team: "b" });
      await ctx.db.insert("notes", { body: "alps", tag: "t", team: "a" });
    });
    const engine = await t.engine();
    const seen: string[][] = [];
    const subscription = await engine.subscriptions.subscribe("notes:search", { text: "alp", team: "a" }, {}, (outcome) => {
      if (!outcome.ok) throw outcome.error;
      seen.push(outcome.value as string[]);
    });
    expect(subscription.outcome).toEqual({ ok: true, value: ["alpha", "alps"] });
    // A word between two read words, one after the last, and the prefix itself (before the first): each re-runs.
    for (const body of ["alpi", "alpz", "alp"]) {
      const before = seen.length;
      await t.run((ctx) => ctx.db.insert("notes", { body, tag: "t", team: "a" }));
      await settle(engine);
      expect(seen.length, body).toBe(before + 1);
      expect(seen.at(-1)).toContain(body);
    }
    expect(seen.at(-1)).toEqual(["alp", "alpha", "alpi", "alps", "alpz"]);
    subscription.unsubscribe();
  });

  it("a mutation's search sees its own writes to the prefix's words", async () => {
    t = walkinTest(schema, {});
    const id = await t.run((ctx) => ctx.db.insert("notes", { body: "hello there", tag: "t", team: "a" }));
    const found = await t.run(async (ctx) => {
      await ctx.db.insert("notes", { body: "help wanted", tag: "t", team: "a" });
      await ctx.db.patch(id, { body: "goodbye" });
      await ctx.db.insert("notes", { body: "helium", tag: "t", team: "b" });
      return (await ctx.db.query("notes").withSearchIndex("search_body", (q) => q.search("body", "hel").eq("tag", "t").eq("team", "a")).collect()).map((d) => d.body);
    });
    expect(found).toEqual(["help wanted"]);
  });
});

describe("documents at the limits", () => {
  it("indexes the first 4,096 distinct words of a document, and a 1 MiB body", async () => {
    t = walkinTest(schema, {});
    const many = Array.from({ length: 5000 }, (_, i) => `w${i}`).join(" ");
    await insertPlain(many);
    expect(await searchPlain("w4095 zzz")).toHaveLength(1);
    expect(await searchPlain("w4096 zzz")).toEqual([]);
    const big = `needle ${"hay ".repeat(250_000)}`.slice(0, 1_000_000);
    await insertPlain(big);
    expect((await searchPlain("needle")).map((b) => b.length)).toEqual([big.length]);
  });
});

describe("pages of a live search, as usePaginatedQuery holds them", () => {
  it("a pinned page and the next one share their boundary: no document twice or missing after inserts", async () => {
    t = walkinTest(schema, {});
    for (let i = 0; i < 5; i++) await insertPlain(`topic ${"pad ".repeat(i)}`);
    const page = (paginationOpts: { numItems: number; cursor: string | null; endCursor?: string }) =>
      t!.run((ctx) => ctx.db.query("plain").withSearchIndex("search_body", (q) => q.search("body", "topic")).paginate(paginationOpts));
    const first = await page({ numItems: 2, cursor: null });
    // loadMore: pin the first page at its cursor, and read on from there.
    const pinned = { numItems: 2, cursor: null, endCursor: first.continueCursor };
    const next = { numItems: 2, cursor: first.continueCursor };
    await insertPlain("topic", "topic topic", "unrelated");
    const all = (await searchPlain("topic"));
    const [a, b] = [await page(pinned), await page(next)];
    expect([...a.page, ...b.page].map((d) => d.body)).toEqual(all.slice(0, 4));
    expect(b.isDone).toBe(false);
    const rest = await page({ numItems: 10, cursor: b.continueCursor });
    expect([...a.page, ...b.page, ...rest.page].map((d) => d.body)).toEqual(all);
    expect(rest.isDone).toBe(true);
  });
});

describe("long documents", () => {
  it("a search of many long texts ranks those it could read rather than fail the function's read limit", async () => {
    t = walkinTest(schema, {});
    const body = (i: number) => `needle ${i} ${"hay ".repeat(240_000)}`;
    for (let i = 0; i < 20; i++) await t.run((ctx) => ctx.db.insert("plain", { body: body(i) }));
    const found = await t.run(async (ctx) =>
      (await ctx.db.query("plain").withSearchIndex("search_body", (q) => q.search("body", "needle")).collect()).map((d) => d.body.slice(0, 10)));
    // About 1 MB each: the search reads the newest up to its 8 MiB, within the function's 16 MiB.
    expect(found.length).toBeGreaterThan(0);
    expect(found.length).toBeLessThan(20);
    expect(found[0]).toBe(body(19).slice(0, 10));
  }, 120_000);
});

describe("an index whose filter fields change between restarts", () => {
  it("is built again with the new groups, so a search giving every new filter field finds everything", async () => {
    const dir = mkdtempSync(join(tmpdir(), "walkin-search-review-"));
    const filename = join(dir, "app.sqlite");
    const withFilters = (filterFields: ("a" | "b")[]) =>
      defineSchema({ docs: defineTable({ body: v.string(), a: v.string(), b: v.string() }).searchIndex("search_body", { searchField: "body", filterFields }) });
    const modules = {
      docs: {
        add: mutation({ args: { body: v.string(), a: v.string(), b: v.string() }, handler: (ctx, doc) => ctx.db.insert("docs", doc) }),
        byA: query({ args: { a: v.string() }, handler: async (ctx, { a }) =>
          (await ctx.db.query("docs").withSearchIndex("search_body", (q: any) => q.search("body", "word x").eq("a", a)).collect()).map((d: any) => d.body).sort() }),
        byAB: query({ args: { a: v.string(), b: v.string() }, handler: async (ctx, { a, b }) =>
          (await ctx.db.query("docs").withSearchIndex("search_body", (q: any) => q.search("body", "word x").eq("a", a).eq("b", b)).collect()).map((d: any) => d.body).sort() }),
      },
    };
    const open = async (filterFields: ("a" | "b")[]) =>
      Engine.open({ storage: await openSqliteStorage({ filename }), schema: withFilters(filterFields), modules, runScheduler: false });
    try {
      const first = await open(["a"]);
      await first.runMutation("docs:add", { body: "word one", a: "1", b: "p" });
      await first.runMutation("docs:add", { body: "word two", a: "1", b: "q" });
      expect(await first.runQuery("docs:byA", { a: "1" })).toEqual(["word one", "word two"]);
      await first.close();
      const second = await open(["a", "b"]);
      try {
        expect(await second.runQuery("docs:byAB", { a: "1", b: "p" })).toEqual(["word one"]);
        expect(await second.runQuery("docs:byAB", { a: "1", b: "q" })).toEqual(["word two"]);
      } finally {
        await second.close();
      }
      const third = await open(["b", "a"]);
      try {
        expect(await third.runQuery("docs:byAB", { a: "1", b: "q" })).toEqual(["word two"]);
      } finally {
        await third.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

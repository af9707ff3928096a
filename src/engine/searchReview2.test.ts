/**
 * Second adversarial review of full-text search (search.ts, searchQuery.ts): schemas the first
 * reviews did not try (a search field that is a number, optional, in a union of objects; an
 * app without a schema; `schemaValidation: false` with search fields that are not strings), and
 * a mutation that searches while another commits a matching document: the outcome must be
 * one of the two serial orders.
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, type ApiFromModules, defineSchema, defineTable, mutation, query } from "../server/index.js";
import { isWalkinError, v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { settle } from "./fixtures/settle.js";
import { caught } from "./fixtures/caught.js";

let t: ReturnType<typeof walkinTest<any>> | undefined;
afterEach(async () => {
  pause = null;
  await t?.close();
  t = undefined;
});

/** What a search of `table`'s `search` index for `text` finds: each document's `_id`. */
const searchIds = (table: string, text: string, build?: (q: any) => any) =>
  t!.run(async (ctx: any) =>
    (await ctx.db.query(table).withSearchIndex("search", (q: any) => (build ? build(q.search("body", text)) : q.search("body", text))).collect()).map((d: any) => d._id));

describe("search fields of other declared types", () => {
  it("a search field that cannot hold a string is refused when the schema is defined; one that may is taken", () => {
    const refused = (fields: Record<string, any>, searchField: string) => {
      try {
        defineTable(fields).searchIndex("search", { searchField: searchField as never });
      } catch (error) {
        return (error as Error).message;
      }
      return "taken";
    };
    expect(refused({ body: v.number() }, "body")).toMatch(/"body" cannot hold a string, and a search index indexes the words of a string field/);
    expect(refused({ body: v.array(v.string()) }, "body")).toMatch(/cannot hold a string/);
    expect(refused({ meta: v.object({ title: v.boolean() }) }, "meta.title")).toMatch(/"meta.title" cannot hold a string/);
    expect(refused({ body: v.optional(v.string()) }, "body")).toBe("taken");
    expect(refused({ body: v.union(v.number(), v.string()) }, "body")).toBe("taken");
    expect(refused({ body: v.literal("fixed") }, "body")).toBe("taken");
    expect(refused({ body: v.any() }, "body")).toBe("taken");
    expect(refused({ meta: v.object({ title: v.string() }) }, "meta.title")).toBe("taken");
  });

  it("an optional search field: a document gains it, changes it and loses it, and a live search follows", async () => {
    const schema = defineSchema({ notes: defineTable({ body: v.optional(v.string()) }).searchIndex("search", { searchField: "body" }) });
    const modules = {
      notes: {
        find: query({ args: { text: v.string() }, handler: async (ctx, { text }) => (await ctx.db.query("notes").withSearchIndex("search", (q) => q.search("body", text)).collect()).map((d) => d._id) }),
      },
    };
    t = walkinTest(schema, modules);
    const engine = await t.engine();
    const id = await t.run((ctx: any) => ctx.db.insert("notes", {}));
    const seen: unknown[] = [];
    const sub = await engine.subscriptions.subscribe("notes:find", { text: "kiwi" }, {}, (o) => seen.push(o.ok ? o.value : o.error.message));
    expect(sub.outcome).toEqual({ ok: true, value: [] });
    await t.run((ctx: any) => ctx.db.patch(id, { body: "a kiwi" }));
    await settle(engine);
    expect(seen.at(-1)).toEqual([id]);
    await t.run((ctx: any) => ctx.db.patch(id, { body: undefined }));
    await settle(engine);
    expect(seen.at(-1)).toEqual([]);
    await t.run((ctx: any) => ctx.db.replace(id, { body: "kiwis" }));
    await settle(engine);
    expect(seen.at(-1)).toEqual([id]);
    sub.unsubscribe();
  });

  it("a table of a union of objects: only the variants with the search field are found, and filter fields narrow by variant", async () => {
    const schema = defineSchema({
      items: defineTable(v.union(
        v.object({ kind: v.literal("post"), body: v.string() }),
        v.object({ kind: v.literal("photo"), caption: v.string() }),
        v.object({ kind: v.literal("link"), body: v.string(), url: v.string() }),
      )).searchIndex("search", { searchField: "body", filterFields: ["kind"] }),
    });
    t = walkinTest(schema, {});
    const [post, , link] = await t.run(async (ctx: any) => [
      await ctx.db.insert("items", { kind: "post", body: "sunset over the bay" }),
      await ctx.db.insert("items", { kind: "photo", caption: "sunset" }),
      await ctx.db.insert("items", { kind: "link", body: "sunset pictures", url: "https://example.com" }),
    ]);
    expect(new Set(await searchIds("items", "sunset"))).toEqual(new Set([post, link]));
    expect(await searchIds("items", "sunset", (q) => q.eq("kind", "link"))).toEqual([link]);
    expect(await searchIds("items", "sunset", (q) => q.eq("kind", "photo"))).toEqual([]);
  });
});

describe("an app without a schema", () => {
  it("has no search index: withSearchIndex says so and how to declare one", async () => {
    t = walkinTest(null, {});
    await t.run((ctx: any) => ctx.db.insert("notes", { body: "hello" }));
    for (const table of ["notes", "never_written"]) {
      const error = await caught(t.run((ctx: any) => ctx.db.query(table).withSearchIndex("search", (q: any) => q.search("body", "hello")).collect()));
      expect(isWalkinError(error) && error.code).toBe("MISUSE");
      expect(error.message).toContain(`table "${table}" has no search index "search"`);
      expect(error.message).toContain("searchIndex(");
    }
  });
});

describe("schemaValidation: false, with search fields that are not strings", () => {
  const schema = defineSchema(
    { notes: defineTable({ body: v.string(), team: v.string() }).searchIndex("search", { searchField: "body", filterFields: ["team"] }) },
    { schemaValidation: false },
  );

  it("finds only the documents whose field is a string, and follows one whose field becomes a string", async () => {
    t = walkinTest(schema, {});
    const ids = await t.run(async (ctx: any) => {
      const odd = [42, ["apple"], { apple: "apple" }, null, true, 10n, new ArrayBuffer(5)];
      const out = [];
      for (const body of odd) out.push(await ctx.db.insert("notes", { body, team: "a" }));
      out.push(await ctx.db.insert("notes", { body: "apple pie", team: "a" }));
      return out;
    });
    const text = ids.at(-1);
    expect(await searchIds("notes", "apple")).toEqual([text]);
    expect(await searchIds("notes", "apple", (q) => q.eq("team", "a"))).toEqual([text]);
    expect(await searchIds("notes", "app", (q) => q.eq("team", "a"))).toEqual([text]);
    // The array becomes a string, and the string becomes an array: the entries follow.
    await t.run(async (ctx: any) => {
      await ctx.db.patch(ids[1], { body: "apple tart" });
      await ctx.db.patch(text, { body: ["apple pie"] });
    });
    expect(await searchIds("notes", "apple")).toEqual([ids[1]]);
    expect(await searchIds("notes", "app", (q) => q.eq("team", "a"))).toEqual([ids[1]]);
  });

  it("a filter field holding any value, or none, is matched by that value", async () => {
    t = walkinTest(schema, {});
    const [num, missing, arr] = await t.run(async (ctx: any) => [
      await ctx.db.insert("notes", { body: "melon", team: 7 }),
      await ctx.db.insert("notes", { body: "melon" }),
      await ctx.db.insert("notes", { body: "melon", team: ["x", 1] }),
    ]);
    expect(await searchIds("notes", "melon", (q) => q.eq("team", 7))).toEqual([num]);
    expect(await searchIds("notes", "melon", (q) => q.eq("team", undefined))).toEqual([missing]);
    expect(await searchIds("notes", "melon", (q) => q.eq("team", ["x", 1]))).toEqual([arr]);
    expect(await searchIds("notes", "mel", (q) => q.eq("team", ["x", 1]))).toEqual([arr]);
  });
});

// ------------------------------------------------ a searching mutation and a concurrent commit

const raceSchema = defineSchema({
  messages: defineTable({ body: v.string(), channel: v.string(), summariesSeen: v.number() })
    .searchIndex("search", { searchField: "body", filterFields: ["channel"] }),
  summaries: defineTable({ text: v.string(), found: v.array(v.string()) }),
});

/** A wait `summarize` makes once, between its search and its write, if set. */
let pause: (() => Promise<void>) | null = null;
/** How many times `summarize` ran (a conflict runs it again). */
let summarizeRuns = 0;

const race = {
  /** M: searches, waits for `pause`, then writes what it found. */
  summarize: mutation({
    args: { text: v.string(), channel: v.optional(v.string()) },
    handler: async (ctx, { text, channel }) => {
      summarizeRuns++;
      const found = await ctx.db.query("messages")
        .withSearchIndex("search", (q) => (channel === undefined ? q.search("body", text) : q.search("body", text).eq("channel", channel)))
        .collect();
      const wait = pause;
      pause = null;
      if (wait !== null) await wait();
      await ctx.db.insert("summaries", { text, found: found.map((m) => m.body).sort() });
    },
  }),
  /** N: writes a message, recording how many summaries it saw (so N also reads what M writes). */
  insert: mutation({
    args: { body: v.string(), channel: v.string() },
    handler: async (ctx, { body, channel }) => {
      const summariesSeen = (await ctx.db.query("summaries").collect()).length;
      return ctx.db.insert("messages", { body, channel, summariesSeen });
    },
  }),
  edit: mutation({
    args: { id: v.id("messages"), body: v.optional(v.string()), channel: v.optional(v.string()) },
    handler: async (ctx, { id, ...fields }) => {
      const summariesSeen = (await ctx.db.query("summaries").collect()).length;
      await ctx.db.patch(id, { ...fields, summariesSeen });
    },
  }),
  remove: mutation({
    args: { id: v.id("messages") },
    handler: async (ctx, { id }) => {
      await ctx.db.query("summaries").collect();
      await ctx.db.delete(id);
    },
  }),
  summaries: query({ args: {}, handler: async (ctx) => (await ctx.db.query("summaries").collect()).map(({ text, found }) => ({ text, found })) }),
  bodies: query({ args: {}, handler: async (ctx) => (await ctx.db.query("messages").collect()).map((m) => m.body).sort() }),
};
const raceApi = anyApi as unknown as ApiFromModules<{ race: typeof race }>;

/** Brute force, written apart: the bodies that have a word of `text` (the last word also as a prefix). */
function bruteFind(bodies: string[], text: string): string[] {
  const split = (s: string) => s.toLowerCase().split(/[^a-z0-9]+/).filter((w) => w.length > 0);
  const query = split(text);
  const last = query.at(-1)!;
  return bodies.filter((b) => split(b).some((w) => query.includes(w) || w.startsWith(last))).sort();
}

describe("a mutation that searches, and another that commits a matching write meanwhile", () => {
  const searches = [
    { name: "an exact word, no filter", text: "urgent call", channel: undefined },
    { name: "a prefix in one filter group", text: "urg", channel: "ops" },
    { name: "a prefix, no filter", text: "xx urg", channel: undefined },
    { name: "an exact word in one filter group", text: "urgent zz", channel: "ops" },
  ];
  type Step = (seed: Record<string, any>) => Promise<unknown>;
  const writes: { name: string; run: Step }[] = [
    { name: "inserts a matching message", run: () => t!.mutation(raceApi.race.insert, { body: "urgently needed", channel: "ops" }) },
    { name: "inserts a message with the exact word", run: () => t!.mutation(raceApi.race.insert, { body: "urgent", channel: "ops" }) },
    { name: "edits a message into matching", run: (s) => t!.mutation(raceApi.race.edit, { id: s.quiet, body: "urgent now" }) },
    { name: "edits a matching message away", run: (s) => t!.mutation(raceApi.race.edit, { id: s.loud, body: "calm now" }) },
    { name: "moves a matching message to another channel", run: (s) => t!.mutation(raceApi.race.edit, { id: s.loud, channel: "dev" }) },
    { name: "deletes a matching message", run: (s) => t!.mutation(raceApi.race.remove, { id: s.loud }) },
  ];

  for (const search of searches) {
    for (const write of writes) {
      it(`${search.name}: N ${write.name} while M waits; M's summary is N's outcome`, async () => {
        // M searches and will write a summary of what it found; N writes a message and records how
        // many summaries it saw, committing while M waits. N saw no summary, so serially N came
        // first: M's summary must list what the search finds after N. M's search read before N
        // committed, so M must conflict on what N wrote and run again.
        t = walkinTest(raceSchema, { race }, { storage: () => openSqliteStorage({ filename: ":memory:" }) });
        summarizeRuns = 0;
        const seed = {
          loud: await t.mutation(raceApi.race.insert, { body: "urgent call", channel: "ops" }),
          quiet: await t.mutation(raceApi.race.insert, { body: "all quiet", channel: "ops" }),
          other: await t.mutation(raceApi.race.insert, { body: "urgent elsewhere", channel: "dev" }),
        };
        let reached!: () => void;
        const atPause = new Promise<void>((resolve) => (reached = resolve));
        let resume!: () => void;
        pause = () => {
          reached();
          return new Promise<void>((resolve) => (resume = resolve));
        };
        const inChannel = (d: any) => search.channel === undefined || d.channel === search.channel;
        const before = await t.run(async (ctx: any) => (await ctx.db.query("messages").collect()).filter(inChannel).map((d: any) => d.body));
        const m = t.mutation(raceApi.race.summarize, { text: search.text, channel: search.channel });
        await atPause;
        await write.run(seed);
        resume();
        await m;
        const after = await t.run(async (ctx: any) => (await ctx.db.query("messages").collect()).filter(inChannel).map((d: any) => d.body));
        expect(await t.query(raceApi.race.summaries, {})).toEqual([{ text: search.text, found: bruteFind(after, search.text) }]);
        // Where N changed what the search finds, M ran again (the interleaving happened as meant).
        if (bruteFind(before, search.text).join() !== bruteFind(after, search.text).join()) expect(summarizeRuns).toBe(2);
      });
    }
  }
});

describe("a page of a search whose results shrank below its cursor", () => {
  it("continues from its own cursor, not from before it, so following it repeats nothing", async () => {
    const schema = defineSchema({ notes: defineTable({ body: v.string() }).searchIndex("search", { searchField: "body" }) });
    t = walkinTest(schema, {});
    const page = (opts: { numItems: number; cursor: string | null }): Promise<any> =>
      t!.run((ctx: any) => ctx.db.query("notes").withSearchIndex("search", (q: any) => q.search("body", "fig")).paginate(opts));
    const ids = await t.run(async (ctx: any) => {
      const out = [];
      for (let i = 0; i < 4; i++) out.push(await ctx.db.insert("notes", { body: `fig ${i}` }));
      return out;
    });
    const first = await page({ numItems: 3, cursor: null });
    // Three of the four go: the second page's cursor (position 3) is now past the end.
    await t.run(async (ctx: any) => {
      for (const id of ids.slice(0, 3)) await ctx.db.delete(id);
    });
    const second = await page({ numItems: 3, cursor: first.continueCursor });
    expect(second).toMatchObject({ page: [], isDone: true });
    // New documents arrive; a reader that kept the second page's cursor reads on from there.
    await t.run(async (ctx: any) => {
      for (let i = 4; i < 8; i++) await ctx.db.insert("notes", { body: `fig ${i}` });
    });
    const third = await page({ numItems: 10, cursor: second.continueCursor });
    const firstAgain = await page({ numItems: 3, cursor: null });
    const seen = [...firstAgain.page, ...third.page].map((d: any) => d._id);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toHaveLength(5);
  });
});

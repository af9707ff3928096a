/**
 * Full-text search (`searchIndex`, `withSearchIndex`; search.ts): which documents a search
 * finds, checked against a brute-force search written apart from the engine under random
 * writes; the ranking; filter fields; the function's own writes; live searches re-running;
 * pagination; an index built over documents stored before it was declared; and clear errors.
 * Runs on every test storage (SQLite, the latency storage, PostgreSQL: vitest.config.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, type ApiFromModules, defineSchema, defineTable, mutation, query } from "../server/index.js";
import { isWalkinError, v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine } from "./engine.js";
import { HookedStorage } from "./fixtures/hookedStorage.js";
import { settle } from "./fixtures/settle.js";
import { seededRandom } from "../storage/conformance/history.js";
import { words } from "./search.js";
import { caught } from "./fixtures/caught.js";

const schema = defineSchema({
  messages: defineTable({ body: v.string(), channel: v.string(), author: v.optional(v.string()) })
    .index("by_channel", ["channel"])
    .searchIndex("search_body", { searchField: "body", filterFields: ["channel", "author"] }),
});

const messages = {
  send: mutation({
    args: { body: v.string(), channel: v.string(), author: v.optional(v.string()) },
    handler: (ctx, message) => ctx.db.insert("messages", message),
  }),
  edit: mutation({
    args: { id: v.id("messages"), body: v.optional(v.string()), channel: v.optional(v.string()) },
    handler: (ctx, { id, ...fields }) => ctx.db.patch(id, fields),
  }),
  remove: mutation({ args: { id: v.id("messages") }, handler: (ctx, { id }) => ctx.db.delete(id) }),
  search: query({
    args: { text: v.string(), channel: v.optional(v.string()) },
    handler: (ctx, { text, channel }) =>
      ctx.db
        .query("messages")
        .withSearchIndex("search_body", (q) => (channel === undefined ? q.search("body", text) : q.search("body", text).eq("channel", channel)))
        .take(100),
  }),
  bodies: query({
    args: { text: v.string() },
    handler: async (ctx, { text }) =>
      (await ctx.db.query("messages").withSearchIndex("search_body", (q) => q.search("body", text)).collect()).map((m) => m.body),
  }),
  /** Inserts, then searches in the same mutation: the search sees the insert. */
  sendAndSearch: mutation({
    args: { body: v.string(), text: v.string() },
    handler: async (ctx, { body, text }) => {
      await ctx.db.insert("messages", { body, channel: "own" });
      return (await ctx.db.query("messages").withSearchIndex("search_body", (q) => q.search("body", text).eq("channel", "own")).collect()).map((m) => m.body);
    },
  }),
  /** Edits, then searches for the old and the new word in the same mutation. */
  editAndSearch: mutation({
    args: { id: v.id("messages"), body: v.string(), oldWord: v.string(), newWord: v.string() },
    handler: async (ctx, { id, body, oldWord, newWord }) => {
      await ctx.db.patch(id, { body });
      const find = (word: string) => ctx.db.query("messages").withSearchIndex("search_body", (q) => q.search("body", word)).collect();
      return { old: (await find(oldWord)).length, new: (await find(newWord)).map((m) => m._id) };
    },
  }),
};
const modules = { messages };
const api = anyApi as unknown as ApiFromModules<typeof modules>;

let t: ReturnType<typeof walkinTest<typeof schema>> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

// ---------------------------------------------------------------- brute force, written apart

/** Lowercased runs of letters and digits, a long one cut to its first 32 characters: the same notion of a word, written again here. */
function wordsOf(text: string): string[] {
  return text.toLowerCase().split(/[^\p{L}\p{M}\p{N}]+/u).filter((w) => w.length > 0).map((w) => [...w].slice(0, 32).join(""));
}

/** The documents a search must find: any query word in the body, the last also as a prefix. */
function bruteForce(docs: Array<{ body: string; channel: string }>, text: string, channel?: string): Set<string> {
  const query = [...new Set(wordsOf(text))].slice(0, 16);
  const found = new Set<string>();
  if (query.length === 0) return found;
  for (const doc of docs) {
    if (channel !== undefined && doc.channel !== channel) continue;
    const own = wordsOf(doc.body);
    const hit = query.some((word, i) => own.some((w) => (i === query.length - 1 ? w.startsWith(word) : w === word)));
    if (hit) found.add(doc.body);
  }
  return found;
}

describe("words", () => {
  it("splits any text as the Unicode definition does, ASCII (its own fast path) and not", () => {
    const next = seededRandom(3);
    const alphabets = [
      // Every ASCII character, control characters included.
      Array.from({ length: 128 }, (_, i) => String.fromCharCode(i)).join(""),
      "aZ09 ,.-_\t\n",
      "aZ09 éÉİıßﬁ中文😀\u0301",
    ];
    for (let round = 0; round < 3_000; round++) {
      const alphabet = [...alphabets[round % alphabets.length]!];
      const text = Array.from({ length: Math.floor(next() * 60) }, () => alphabet[Math.floor(next() * alphabet.length)]).join("") +
        (round % 7 === 0 ? "x".repeat(30 + (round % 5)) : "");
      const expected = text.toLowerCase().normalize("NFC").replace(/i\u0307/g, "i").split(/[^\p{L}\p{M}\p{N}]+/u).filter((w) => w.length > 0).map((w) => [...w].slice(0, 32).join(""));
      expect(words(text), JSON.stringify(text)).toEqual(expected);
    }
  });
});

describe("search finds the documents with the query's words", () => {
  it("matches words whatever their case and punctuation, the last word also as a prefix", async () => {
    t = walkinTest(schema, modules);
    for (const body of ["Hello, world!", "hello-there", "say HELLO", "help me", "world peace", "Ünïcode wörds", "x123 y456"]) {
      await t.mutation(api.messages.send, { body, channel: "a" });
    }
    const bodies = async (text: string) => new Set(await t!.query(api.messages.bodies, { text }));
    expect(await bodies("hello")).toEqual(new Set(["Hello, world!", "hello-there", "say HELLO"]));
    expect(await bodies("HEL")).toEqual(new Set(["Hello, world!", "hello-there", "say HELLO", "help me"]));
    // Only the last word is a prefix: "hel" first must be a whole word.
    expect(await bodies("hel peace")).toEqual(new Set(["world peace"]));
    expect(await bodies("wörds")).toEqual(new Set(["Ünïcode wörds"]));
    expect(await bodies("ÜNÏ")).toEqual(new Set(["Ünïcode wörds"]));
    expect(await bodies("y456")).toEqual(new Set(["x123 y456"]));
    // No words at all: nothing, as in Convex.
    expect(await bodies("  ,.;  ")).toEqual(new Set());
    expect(await bodies("")).toEqual(new Set());
  });

  it("ranks documents with more of the query's words, and rarer words, first; ties go to the newer", async () => {
    t = walkinTest(schema, modules);
    const send = (body: string) => t!.mutation(api.messages.send, { body, channel: "a" });
    await send("the cat sat on the mat");
    await send("a cat and a hat");
    await send("the quick brown fox jumps over the lazy dog with a cat");
    await send("cat cat cat");
    await send("nothing to see here");
    await send("the dog");
    // "cat" is in four documents, "hat" in one: the document with both comes first; among the
    // rest, the one that repeats "cat" in a short text, and the long one last.
    const ranked = await t.query(api.messages.bodies, { text: "cat hat" });
    expect(ranked).toEqual(["a cat and a hat", "cat cat cat", "the cat sat on the mat", "the quick brown fox jumps over the lazy dog with a cat"]);
    // Equal texts score equally: the newer comes first.
    await send("twin words");
    await send("twin words");
    const twins = await t.query(api.messages.search, { text: "twin" });
    expect(twins.map((m) => m.body)).toEqual(["twin words", "twin words"]);
    expect(twins[0]!._creationTime).toBeGreaterThan(twins[1]!._creationTime);
  });

  it("agrees with brute force under random inserts, edits and deletes, with and without a filter", async () => {
    t = walkinTest(schema, modules);
    const next = seededRandom(7);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
    const vocabulary = ["alpha", "alpine", "beta", "bet", "gamma", "delta", "deltas", "Epsilon", "zeta", "eta", "theta", "iota"];
    const channels = ["a", "b", "c"];
    const sentence = () => Array.from({ length: 1 + Math.floor(next() * 5) }, () => pick(vocabulary)).join(pick([" ", ", ", "-", ". "]));
    const live = new Map<string, { body: string; channel: string }>();
    for (let step = 0; step < 120; step++) {
      const roll = next();
      const ids = [...live.keys()];
      if (roll < 0.55 || ids.length === 0) {
        const doc = { body: `${sentence()} #${step}`, channel: pick(channels) };
        live.set(await t.mutation(api.messages.send, doc), doc);
      } else if (roll < 0.85) {
        const id = pick(ids);
        const doc = { body: next() < 0.7 ? `${sentence()} #${step}` : live.get(id)!.body, channel: pick(channels) };
        await t.mutation(api.messages.edit, { id: id as never, ...doc });
        live.set(id, doc);
      } else {
        const id = pick(ids);
        await t.mutation(api.messages.remove, { id: id as never });
        live.delete(id);
      }
      if (step % 10 === 9) {
        for (const text of ["alpha", "alp", "bet", "delta gam", "epsilon zeta", "ETA", "io", "nothing"]) {
          for (const channel of [undefined, ...channels]) {
            const found = await t.query(api.messages.search, { text, channel });
            expect(new Set(found.map((m) => m.body)), `step ${step}: "${text}" in ${channel ?? "any channel"}`).toEqual(bruteForce([...live.values()], text, channel));
            expect(found.length, "no document twice").toBe(new Set(found.map((m) => m._id)).size);
          }
        }
      }
    }
  }, 120_000);
});

describe("filter fields", () => {
  it("keeps the documents with every given value, with some filter fields given or all", async () => {
    t = walkinTest(schema, modules);
    await t.mutation(api.messages.send, { body: "ship it", channel: "dev", author: "ada" });
    await t.mutation(api.messages.send, { body: "ship the box", channel: "ops", author: "ada" });
    await t.mutation(api.messages.send, { body: "ship now", channel: "dev", author: "bob" });
    await t.mutation(api.messages.send, { body: "ship soon", channel: "dev" });
    const find = (build: (q: any) => any) =>
      t!.run(async (ctx) => (await ctx.db.query("messages").withSearchIndex("search_body", build).collect()).map((m) => m.body).sort());
    expect(await find((q) => q.search("body", "ship").eq("channel", "dev"))).toEqual(["ship it", "ship now", "ship soon"]);
    expect(await find((q) => q.search("body", "ship").eq("channel", "dev").eq("author", "ada"))).toEqual(["ship it"]);
    expect(await find((q) => q.search("body", "ship").eq("author", "ada"))).toEqual(["ship it", "ship the box"]);
    // A missing field is `undefined`, as in Convex's eq.
    expect(await find((q) => q.search("body", "ship").eq("channel", "dev").eq("author", undefined))).toEqual(["ship soon"]);
    // The same field twice with two values: nothing can match.
    expect(await find((q) => q.search("body", "ship").eq("channel", "dev").eq("channel", "ops"))).toEqual([]);
    // A filter on every field with the last word a prefix reads the word's whole range and checks each document.
    expect(await find((q) => q.search("body", "shi").eq("channel", "dev").eq("author", "bob"))).toEqual(["ship now"]);
  });

  it("follows a document whose filter field changes, though its text does not", async () => {
    t = walkinTest(schema, modules);
    const id = await t.mutation(api.messages.send, { body: "moving message", channel: "a" });
    expect((await t.query(api.messages.search, { text: "moving", channel: "a" })).map((m) => m._id)).toEqual([id]);
    await t.mutation(api.messages.edit, { id, channel: "b" });
    expect(await t.query(api.messages.search, { text: "moving", channel: "a" })).toEqual([]);
    expect((await t.query(api.messages.search, { text: "moving", channel: "b" })).map((m) => m._id)).toEqual([id]);
  });
});

describe("a search inside a mutation", () => {
  it("sees the mutation's own inserts and edits", async () => {
    t = walkinTest(schema, modules);
    await t.mutation(api.messages.send, { body: "an old note", channel: "own" });
    expect((await t.mutation(api.messages.sendAndSearch, { body: "a fresh note", text: "note" })).sort()).toEqual(["a fresh note", "an old note"]);
    const id = await t.mutation(api.messages.send, { body: "before edit", channel: "x" });
    const seen = await t.mutation(api.messages.editAndSearch, { id, body: "after edit", oldWord: "before", newWord: "after" });
    expect(seen).toEqual({ old: 0, new: [id] });
  });
});

describe("live searches", () => {
  it("re-run when a matching document is inserted, edited away, moved to another channel or deleted", async () => {
    t = walkinTest(schema, modules);
    const engine = await t.engine();
    const seen: string[][] = [];
    const sub = await engine.subscriptions.subscribe("messages:search", { text: "urgent", channel: "ops" }, {}, (outcome) => {
      if (!outcome.ok) throw outcome.error;
      seen.push((outcome.value as Array<{ body: string }>).map((m) => m.body));
    });
    expect(sub.outcome).toEqual({ ok: true, value: [] });
    const step = async (work: () => Promise<unknown>) => {
      await work();
      await settle(engine);
    };
    let id!: string;
    await step(async () => (id = await t!.mutation(api.messages.send, { body: "Urgent: disk full", channel: "ops" })));
    await step(() => t!.mutation(api.messages.send, { body: "urgent elsewhere", channel: "dev" }));
    await step(() => t!.mutation(api.messages.send, { body: "not pressing", channel: "ops" }));
    await step(() => t!.mutation(api.messages.edit, { id: id as never, body: "Urgent: disk full again" }));
    await step(() => t!.mutation(api.messages.edit, { id: id as never, body: "fixed" }));
    await step(() => t!.mutation(api.messages.edit, { id: id as never, body: "urgent once more" }));
    await step(() => t!.mutation(api.messages.edit, { id: id as never, channel: "dev" }));
    await step(() => t!.mutation(api.messages.edit, { id: id as never, channel: "ops" }));
    await step(() => t!.mutation(api.messages.remove, { id: id as never }));
    expect(seen).toEqual([
      ["Urgent: disk full"],
      ["Urgent: disk full again"],
      [],
      ["urgent once more"],
      [],
      ["urgent once more"],
      [],
    ]);
    sub.unsubscribe();
  });
});

describe("the consuming methods", () => {
  it("take, first, unique, filter and for-await over the ranked results; order() is refused", async () => {
    t = walkinTest(schema, modules);
    await t.mutation(api.messages.send, { body: "red apple", channel: "a", author: "ada" });
    await t.mutation(api.messages.send, { body: "red red car", channel: "a", author: "bob" });
    await t.mutation(api.messages.send, { body: "green apple", channel: "a" });
    const results = await t.run(async (ctx) => {
      const search = () => ctx.db.query("messages").withSearchIndex("search_body", (q) => q.search("body", "red"));
      const iterated: string[] = [];
      for await (const m of search()) iterated.push(m.body);
      return {
        take: (await search().take(1)).map((m) => m.body),
        first: (await search().first())?.body,
        filtered: (await search().filter((q) => q.eq(q.field("author"), "ada")).collect()).map((m) => m.body),
        unique: (await ctx.db.query("messages").withSearchIndex("search_body", (q) => q.search("body", "green")).unique())?.body,
        none: await ctx.db.query("messages").withSearchIndex("search_body", (q) => q.search("body", "blue")).first(),
        iterated,
      };
    });
    expect(results).toEqual({ take: ["red red car"], first: "red red car", filtered: ["red apple"], unique: "green apple", none: null, iterated: ["red red car", "red apple"] });
    const notUnique = await caught(t.run((ctx) => ctx.db.query("messages").withSearchIndex("search_body", (q) => q.search("body", "apple")).unique()));
    expect(notUnique.code).toBe("NOT_UNIQUE");
    const ordered = await caught(t.run((ctx) => (ctx.db.query("messages").withSearchIndex("search_body", (q) => q.search("body", "red")) as any).order("desc").collect()));
    expect(ordered.code).toBe("MISUSE");
    expect(ordered.message).toMatch(/most relevant first and has no order\(\)/);
  });

  it("paginates over the ranked results with cursors that continue where the last page stopped", async () => {
    t = walkinTest(schema, modules);
    for (let i = 0; i < 7; i++) await t.mutation(api.messages.send, { body: `page ${"word ".repeat(i + 1)}`, channel: "a" });
    const pages = await t.run(async (ctx) => {
      const search = () => ctx.db.query("messages").withSearchIndex("search_body", (q) => q.search("body", "word"));
      const all = (await search().collect()).map((m) => m._id);
      const seen: string[] = [];
      let cursor: string | null = null;
      let done = false;
      let count = 0;
      while (!done) {
        const result = await search().paginate({ numItems: 3, cursor });
        seen.push(...result.page.map((m) => m._id));
        cursor = result.continueCursor;
        done = result.isDone;
        count++;
      }
      const foreign = await caught(search().paginate({ numItems: 3, cursor: "not-a-cursor" }));
      return { all, seen, count, foreign: foreign.code };
    });
    expect(pages.seen).toEqual(pages.all);
    expect(pages.all).toHaveLength(7);
    expect(pages.count).toBe(3);
    expect(pages.foreign).toBe("INVALID_ARGUMENT");
  });
});

describe("building a search index", () => {
  it("indexes the documents stored before the index was declared, and drops it when it goes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "walkin-search-"));
    const filename = join(dir, "app.sqlite");
    const plain = defineSchema({ messages: defineTable({ body: v.string(), channel: v.string(), author: v.optional(v.string()) }) });
    const open = async (withSearch: boolean) =>
      Engine.open({ storage: await openSqliteStorage({ filename }), schema: withSearch ? schema : plain, modules: { messages }, runScheduler: false });
    try {
      const before = await open(false);
      await before.runMutation("messages:send", { body: "stored before the index", channel: "a" });
      await before.runMutation("messages:send", { body: "another one", channel: "b" });
      await before.close();
      const after = await open(true);
      try {
        expect(await after.runQuery("messages:bodies", { text: "stored" })).toEqual(["stored before the index"]);
        await after.runMutation("messages:send", { body: "stored after", channel: "a" });
        expect(new Set((await after.runQuery("messages:bodies", { text: "stored" })) as string[])).toEqual(new Set(["stored before the index", "stored after"]));
      } finally {
        await after.close();
      }
      // Declared again after it was dropped: built again, with what was written meanwhile.
      const without = await open(false);
      await without.runMutation("messages:send", { body: "stored while it was gone", channel: "c" });
      await without.close();
      const again = await open(true);
      try {
        expect(new Set((await again.runQuery("messages:bodies", { text: "stored" })) as string[])).toEqual(new Set(["stored before the index", "stored after", "stored while it was gone"]));
      } finally {
        await again.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("several nodes on one database", () => {
  /** An SQLite file shared like a networked database: the engine treats it as shared with other nodes. */
  class SharedStorage extends HookedStorage {
    watchCommits(): () => void {
      return () => {};
    }
  }

  it("a document without words still names the index in its commit; a node without the index makes the others refuse it until a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "walkin-search-nodes-"));
    const filename = join(dir, "shared.sqlite");
    const plain = defineSchema({ messages: defineTable({ body: v.string(), channel: v.string(), author: v.optional(v.string()) }).index("by_channel", ["channel"]) });
    const engines: Engine[] = [];
    const open = async (withSearch: boolean) => {
      const storage = new SharedStorage(await openSqliteStorage({ filename }));
      const engine = await Engine.open({ storage, schema: withSearch ? schema : plain, modules: { messages }, runScheduler: false, pollIntervalMs: 60_000, logError: () => {} });
      engines.push(engine);
      return engine;
    };
    try {
      const a = await open(true);
      const b = await open(true);
      await a.runMutation("messages:send", { body: "first words", channel: "x" });
      // No words at all: no entries, and still the index is named as maintained.
      await a.runMutation("messages:send", { body: "  ...  ", channel: "x" });
      await b.refreshFromStorage();
      expect(await b.runQuery("messages:bodies", { text: "words" })).toEqual(["first words"]);

      // A node running code without the search index writes: the others refuse it, never read it wrong.
      const old = await open(false);
      await old.runMutation("messages:send", { body: "written by old code", channel: "x" });
      await b.refreshFromStorage();
      await expect(b.runQuery("messages:bodies", { text: "written" })).rejects.toThrow(/Index "messages.search_body" is incomplete on this node/);

      // Every node on the new code again, restarted: the index is rebuilt with every document.
      for (const engine of engines.splice(0)) await engine.close();
      const restarted = await open(true);
      expect(await restarted.runQuery("messages:bodies", { text: "written" })).toEqual(["written by old code"]);
    } finally {
      for (const engine of engines) await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("mistakes", () => {
  it("are refused when the schema is defined, saying what to change", () => {
    const table = defineTable({ body: v.string(), n: v.number(), tags: v.array(v.string()) });
    const misuse = (define: () => unknown) => {
      try {
        define();
      } catch (error) {
        expect(isWalkinError(error) && error.code).toBe("MISUSE");
        return (error as Error).message;
      }
      throw new Error("expected a refusal");
    };
    expect(misuse(() => table.searchIndex("s", { searchField: "nope" as never }))).toMatch(/names "nope", which the table's validator does not declare/);
    expect(misuse(() => table.searchIndex("s", { searchField: "body", filterFields: ["_creationTime" as never] }))).toMatch(/system field "_creationTime"/);
    expect(misuse(() => table.searchIndex("s", { searchField: "body", filterFields: ["body"] }))).toMatch(/lists a field twice/);
    expect(misuse(() => table.index("s", ["n"]).searchIndex("s", { searchField: "body" }))).toMatch(/declared twice/);
    expect(misuse(() => table.searchIndex("by_id", { searchField: "body" }))).toMatch(/built in/);
    expect(misuse(() => table.searchIndex("s", undefined as never))).toMatch(/needs its fields/);
    expect(misuse(() => table.searchIndex("s", { filterFields: ["n"] } as never))).toMatch(/needs a searchField/);
    expect(misuse(() => table.searchIndex("s", { searchField: "body", filterFields: Array.from({ length: 17 }, () => "n") as never }))).toMatch(/at most 16/);
  });

  it("are refused when the search is built, saying what to write", async () => {
    t = walkinTest(schema, modules);
    const attempt = async (build: (q: any) => unknown) =>
      caught(t!.run((ctx) => ctx.db.query("messages").withSearchIndex("search_body", build as never).collect()));
    const cases: Array<[string, (q: any) => unknown, RegExp]> = [
      ["another field searched", (q) => q.search("channel", "x"), /search\(\) names "channel", but this index searches "body"/],
      ["eq before search", (q) => q.eq("channel", "x"), /call search\(\) first/],
      ["eq on a field that is not a filter field", (q) => q.search("body", "x").eq("body", "x"), /"body", which is not one of this index's filter fields \(channel, author\)/],
      ["search twice", (q) => q.search("body", "x").search("body", "y"), /search\(\) may be called once/],
      ["text not a string", (q) => q.search("body", 42), /as a string; received number/],
      ["callback returns nothing", (q) => void q.search("body", "x"), /must return the builder chain/],
    ];
    for (const [name, build, message] of cases) {
      const error = await attempt(build);
      expect(error.code, name).toBe("MISUSE");
      expect(error.message, name).toMatch(message);
    }
    const asIndex = await caught(t.run((ctx) => ctx.db.query("messages").withIndex("search_body" as never).collect()));
    expect(asIndex.message).toMatch(/"search_body" is a search index\. Search it with \.withSearchIndex/);
  });
});

/**
 * Vector search (`vectorIndex`, `ctx.vectorSearch`; vector.ts, vectorSearch.ts): which
 * documents a search returns, checked against a brute-force nearest-neighbour search written
 * apart from the engine under random inserts, edits and deletes; filters (`q.eq`, `q.or`, on
 * one field and on several); an action reading its own mutation's write; vectors refused on
 * write; an index built over documents stored before it was declared, and rebuilt when its
 * dimensions change; and clear errors for every mistake. Runs on every test storage (SQLite,
 * the latency storage, PostgreSQL: vitest.config.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, type ApiFromModules, defineSchema, defineTable, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { seededRandom } from "../storage/conformance/history.js";
import { Engine } from "./engine.js";
import { caught } from "./fixtures/caught.js";

const DIMENSIONS = 8;

const schema = defineSchema({
  movies: defineTable({
    title: v.string(),
    genre: v.string(),
    year: v.optional(v.number()),
    embedding: v.optional(v.array(v.float64())),
  }).vectorIndex("by_embedding", { vectorField: "embedding", dimensions: DIMENSIONS, filterFields: ["genre", "year"] }),
  notes: defineTable({ body: v.string(), meta: v.object({ vector: v.array(v.float64()) }) })
    .vectorIndex("by_meta", { vectorField: "meta.vector", dimensions: 2 }),
});

const movies = {
  add: mutation({
    args: { title: v.string(), genre: v.string(), year: v.optional(v.number()), embedding: v.optional(v.array(v.float64())) },
    handler: (ctx, movie) => ctx.db.insert("movies", movie),
  }),
  edit: mutation({
    args: { id: v.id("movies"), genre: v.optional(v.string()), embedding: v.optional(v.array(v.float64())) },
    handler: (ctx, { id, ...fields }) => ctx.db.patch(id, fields),
  }),
  remove: mutation({ args: { id: v.id("movies") }, handler: (ctx, { id }) => ctx.db.delete(id) }),
  // The types already refuse a vector index's name in withIndex: cast, to check the run-time refusal a JavaScript caller gets.
  byIndex: query({ args: {}, handler: (ctx) => (ctx.db.query("movies") as any).withIndex("by_embedding").collect() }),
};
const modules = { movies };
const api = anyApi as unknown as ApiFromModules<typeof modules>;

let t: ReturnType<typeof walkinTest<typeof schema>> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

// ---------------------------------------------------------------- brute force, written apart

interface Movie {
  id: string;
  genre: string;
  year?: number;
  embedding?: number[];
}

function similarity(a: number[], b: number[]): number {
  const dot = a.reduce((sum, x, i) => sum + x * b[i]!, 0);
  const length = (u: number[]) => Math.sqrt(u.reduce((sum, x) => sum + x * x, 0));
  return dot / (length(a) * length(b));
}

/** The `limit` nearest movies among those the filter matches (any of `matches`, or all). */
function nearest(all: Iterable<Movie>, vector: number[], limit: number, matches?: (movie: Movie) => boolean): Array<{ id: string; score: number }> {
  return [...all]
    .filter((movie) => movie.embedding !== undefined && (matches === undefined || matches(movie)))
    .map((movie) => ({ id: movie.id, score: similarity(vector, movie.embedding!) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, limit);
}

function randomVector(next: () => number): number[] {
  return Array.from({ length: DIMENSIONS }, () => next() * 2 - 1);
}

describe("vector search finds the nearest documents", () => {
  it("agrees with a brute-force search under random inserts, edits and deletes, with and without filters", async () => {
    t = walkinTest(schema, modules);
    const next = seededRandom(11);
    const genres = ["drama", "comedy", "horror", "noir"];
    const stored = new Map<string, Movie>();
    const pick = <T,>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 60; i++) {
        const movie = { genre: pick(genres), ...(next() < 0.5 ? { year: 1990 + Math.floor(next() * 4) } : {}), ...(next() < 0.9 ? { embedding: randomVector(next) } : {}) };
        const id = (await t.mutation(api.movies.add, { title: `m${round}.${i}`, ...movie })) as string;
        stored.set(id, { id, ...movie });
      }
      for (const movie of [...stored.values()].filter(() => next() < 0.1)) {
        if (next() < 0.5) {
          await t.mutation(api.movies.remove, { id: movie.id as never });
          stored.delete(movie.id);
        } else {
          const changes = { genre: pick(genres), embedding: randomVector(next) };
          await t.mutation(api.movies.edit, { id: movie.id as never, ...changes });
          Object.assign(movie, changes);
        }
      }
      const vector = randomVector(next);
      const limit = pick([1, 5, 10, 40]);
      const genre = pick(genres);
      const cases: Array<[string, ((q: any) => any) | undefined, ((movie: Movie) => boolean) | undefined]> = [
        ["no filter", undefined, undefined],
        ["one genre", (q) => q.eq("genre", genre), (m) => m.genre === genre],
        ["two genres", (q) => q.or(q.eq("genre", genre), q.eq("genre", "noir")), (m) => m.genre === genre || m.genre === "noir"],
        // A movie of that genre and that year matches twice, and is returned once.
        ["a genre or a year", (q) => q.or(q.eq("genre", genre), q.eq("year", 1991)), (m) => m.genre === genre || m.year === 1991],
        ["no year", (q) => q.eq("year", undefined), (m) => m.year === undefined],
      ];
      for (const [name, filter, matches] of cases) {
        const found = await t.action((ctx) => ctx.vectorSearch("movies", "by_embedding", { vector, limit, ...(filter ? { filter } : {}) }));
        const expected = nearest(stored.values(), vector, limit, matches);
        expect(found.map((result) => result._id), `round ${round}, ${name}`).toEqual(expected.map((result) => result.id));
        for (const [i, result] of found.entries()) expect(result._score).toBeCloseTo(expected[i]!.score, 10);
      }
    }
  });

  it("returns 10 by default, scores from -1 to 1, and the same vector scores 1", async () => {
    t = walkinTest(schema, modules);
    const base = [1, 2, 3, 4, 5, 6, 7, 8];
    await t.mutation(api.movies.add, { title: "same", genre: "g", embedding: base });
    await t.mutation(api.movies.add, { title: "opposite", genre: "g", embedding: base.map((x) => -x) });
    for (let i = 0; i < 20; i++) await t.mutation(api.movies.add, { title: `other ${i}`, genre: "g", embedding: base.map((x, j) => (j === i % 8 ? x + i + 1 : x)) });
    const results = await t.action((ctx) => ctx.vectorSearch("movies", "by_embedding", { vector: base.map((x) => x * 3) }));
    expect(results).toHaveLength(10);
    expect(results[0]!._score).toBeCloseTo(1, 12);
    const all = await t.action((ctx) => ctx.vectorSearch("movies", "by_embedding", { vector: base, limit: 256 }));
    expect(all).toHaveLength(22);
    expect(all[all.length - 1]!._score).toBeCloseTo(-1, 12);
    for (const { _score } of all) expect(Math.abs(_score)).toBeLessThanOrEqual(1);
    const titles = await t.run(async (ctx) => (await Promise.all(all.map((r) => ctx.db.get(r._id)))).map((movie) => movie!.title));
    expect([titles[0], titles[titles.length - 1]]).toEqual(["same", "opposite"]);
  });

  it("reads every document its filter matches, however many storage pages they take", async () => {
    t = walkinTest(schema, modules);
    const next = seededRandom(5);
    const stored: Movie[] = await t.run(async (ctx) => {
      const movies: Movie[] = [];
      for (let i = 0; i < 700; i++) {
        const movie = { genre: i % 2 === 0 ? "even" : "odd", embedding: randomVector(next) };
        movies.push({ id: await ctx.db.insert("movies", { title: `m${i}`, ...movie }), ...movie });
      }
      return movies;
    });
    const vector = randomVector(next);
    for (const [filter, matches] of [[undefined, undefined], [(q: any) => q.eq("genre", "odd"), (m: Movie) => m.genre === "odd"]] as const) {
      const found = await t.action((ctx) => ctx.vectorSearch("movies", "by_embedding", { vector, limit: 256, ...(filter ? { filter } : {}) }));
      expect(found.map((result) => result._id)).toEqual(nearest(stored, vector, 256, matches).map((result) => result.id));
    }
  });

  it("finds what the action's own mutation just wrote, and no longer what it deleted", async () => {
    t = walkinTest(schema, modules);
    const vector = [0, 0, 0, 0, 0, 0, 0, 1];
    const found = await t.action(async (ctx) => {
      const id = await ctx.runMutation(api.movies.add, { title: "new", genre: "g", embedding: vector });
      const before = await ctx.vectorSearch("movies", "by_embedding", { vector, limit: 1 });
      await ctx.runMutation(api.movies.remove, { id });
      const after = await ctx.vectorSearch("movies", "by_embedding", { vector, limit: 1 });
      return { id, before, after };
    });
    expect(found.before).toEqual([{ _id: found.id, _score: 1 }]);
    expect(found.after).toEqual([]);
  });

  it("indexes a vector at a nested field path", async () => {
    t = walkinTest(schema, modules);
    const id = await t.run((ctx) => ctx.db.insert("notes", { body: "east", meta: { vector: [1, 0] } }));
    await t.run((ctx) => ctx.db.insert("notes", { body: "north", meta: { vector: [0, 1] } }));
    const results = await t.action((ctx) => ctx.vectorSearch("notes", "by_meta", { vector: [2, 0.1], limit: 1 }));
    expect(results.map((r) => r._id)).toEqual([id]);
  });
});

describe("vectors the index cannot hold are refused when written", () => {
  it("refuses a vector of another length, or with NaN or an infinity, and writes nothing; leaves a document without one out", async () => {
    t = walkinTest(schema, modules);
    const short = await caught(t.mutation(api.movies.add, { title: "short", genre: "g", embedding: [1, 2, 3] }));
    expect(short.code).toBe("INVALID_ARGUMENT");
    expect(short.message).toMatch(/"embedding" holds 3 numbers, and the vector index "by_embedding" takes vectors of 8.*leave the field out/);
    const nan = await caught(t.mutation(api.movies.add, { title: "nan", genre: "g", embedding: [1, 2, 3, 4, 5, 6, 7, NaN] }));
    expect(nan.message).toMatch(/holds NaN/);
    const infinite = await caught(t.mutation(api.movies.add, { title: "inf", genre: "g", embedding: [1, 2, 3, 4, 5, 6, 7, Infinity] }));
    expect(infinite.message).toMatch(/holds an infinity/);
    const id = await t.mutation(api.movies.add, { title: "ok", genre: "g", embedding: [1, 2, 3, 4, 5, 6, 7, 8] });
    const edit = await caught(t.mutation(api.movies.edit, { id, embedding: [1] }));
    expect(edit.code).toBe("INVALID_ARGUMENT");
    await t.mutation(api.movies.add, { title: "without", genre: "g" });
    // A mutation that wrote a good document before the refused one writes neither.
    const both = await caught(t.run(async (ctx) => {
      await ctx.db.insert("movies", { title: "good", genre: "g", embedding: [1, 1, 1, 1, 1, 1, 1, 1] });
      await ctx.db.insert("movies", { title: "bad", genre: "g", embedding: [1, 1] });
    }));
    expect(both.code).toBe("INVALID_ARGUMENT");
    const titles = await t.run(async (ctx) => (await ctx.db.query("movies").collect()).map((movie) => movie.title).sort());
    expect(titles).toEqual(["ok", "without"]);
    const results = await t.action((ctx) => ctx.vectorSearch("movies", "by_embedding", { vector: [1, 2, 3, 4, 5, 6, 7, 8], limit: 10 }));
    expect(results.map((r) => r._id)).toEqual([id]);
  });
});

describe("building a vector index", () => {
  it("indexes the documents stored before it was declared, and builds it again when its dimensions change", async () => {
    const dir = mkdtempSync(join(tmpdir(), "walkin-vector-"));
    const filename = join(dir, "app.sqlite");
    const table = (dimensions: number | null) => {
      const base = defineTable({ title: v.string(), genre: v.string(), year: v.optional(v.number()), embedding: v.optional(v.array(v.float64())) });
      return defineSchema({ movies: dimensions === null ? base : base.vectorIndex("by_embedding", { vectorField: "embedding", dimensions, filterFields: ["genre"] }) });
    };
    const open = async (dimensions: number | null) => Engine.open({ storage: await openSqliteStorage({ filename }), schema: table(dimensions), modules, runScheduler: false });
    const search = (engine: Engine, vector: number[]) => engine.actionCtx({}).vectorSearch("movies", "by_embedding", { vector, limit: 5 });
    try {
      const before = await open(null);
      const two = (await before.runMutation("movies:add", { title: "two", genre: "g", embedding: [1, 0] })).value as string;
      const three = (await before.runMutation("movies:add", { title: "three", genre: "g", embedding: [1, 0, 0] })).value as string;
      await before.close();
      const asTwo = await open(2);
      try {
        expect((await search(asTwo, [1, 0.5])).map((r) => r._id)).toEqual([two]);
      } finally {
        await asTwo.close();
      }
      const asThree = await open(3);
      try {
        expect((await search(asThree, [1, 0.5, 0])).map((r) => r._id)).toEqual([three]);
        // The stored two-number vector no longer fits: writing that document again is refused until it is fixed.
        expect((await caught(asThree.runMutation("movies:edit", { id: two, genre: "h" }))).code).toBe("INVALID_ARGUMENT");
        await asThree.runMutation("movies:edit", { id: two, embedding: [0, 1, 0] });
        expect((await search(asThree, [0, 1, 0])).map((r) => r._id)).toEqual([two, three]);
      } finally {
        await asThree.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("mistakes get errors that say what to do", () => {
  it("refuses a bad query before reading anything", async () => {
    t = walkinTest(schema, modules);
    const vector = [1, 2, 3, 4, 5, 6, 7, 8];
    const error = (query: any, table = "movies", index = "by_embedding") => caught(t!.action((ctx) => ctx.vectorSearch(table, index, query)));
    expect((await error({ vector: [1, 2] })).message).toMatch(/vector must be an array of 8 finite numbers.*got an array of 2 numbers/);
    expect((await error({ vector: "1,2" })).message).toMatch(/got string/);
    expect((await error({ vector: [0, 0, 0, 0, 0, 0, 0, 0] })).message).toMatch(/all zeros/);
    for (const limit of [0, 257, 1.5, "10"]) expect((await error({ vector, limit })).message).toMatch(/limit must be a whole number from 1 to 256/);
    expect((await error({ vector, filter: (q: any) => q.eq("title", "x") })).message).toMatch(/q\.eq\("title", \.\.\.\) names no filter field of the index \(its filter fields: genre, year\)/);
    expect((await error({ vector, filter: () => true })).message).toMatch(/must return an expression made with q\.eq or q\.or/);
    expect((await error({ vector, filter: (q: any) => q.or() })).message).toMatch(/q\.or\(\) needs at least one expression/);
    expect((await error({ vector, filter: "genre" })).message).toMatch(/filter must be a function/);
    const many = (q: any) => q.or(...Array.from({ length: 65 }, (_, i) => q.eq("year", i)));
    expect((await error({ vector, filter: many })).message).toMatch(/65 equalities; a vector search takes at most 64/);
    expect((await error({ vector }, "movies", "nope")).message).toMatch(/has no vector index "nope" \(its vector indexes: by_embedding\)/);
    expect((await error({ vector }, "movies", "by_creation_time")).message).toMatch(/has no vector index "by_creation_time"/);
    expect((await error({ vector }, "_storage")).message).toMatch(/system table/);
    expect((await error({ vector }, "nothing")).message).toMatch(/Unknown table "nothing"/);
    expect((await error(null)).message).toMatch(/takes a query: \{ vector/);
  });

  it("says a query cannot read a vector index, and what to call instead", async () => {
    t = walkinTest(schema, modules);
    const error = await caught(t.query(api.movies.byIndex, {}));
    expect(error.code).toBe("MISUSE");
    expect(error.message).toMatch(/"by_embedding" is a vector index.*ctx\.vectorSearch\("movies", "by_embedding"/);
  });
});

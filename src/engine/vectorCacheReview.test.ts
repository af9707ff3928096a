/**
 * A review of the vector cache (vectorCache.ts) and the searches through it (vectorSearch.ts).
 *
 * Defects fixed, each with the test that caught it:
 * - an entry costs about 560 bytes of memory besides its numbers, and was counted as 160: a
 *   cache of small vectors took 3.3 times `vectorCacheBytes` ("counts what an entry costs");
 * - a wall clock set back put off every sweep until it caught up again, and a full cache kept
 *   refusing the vectors searched now ("sweeps after the clock was set back").
 *
 * Checked and found right, guarded here: a search never scores a stale vector (a document
 * edited, deleted or written by another engine on the same database, two tables whose vector
 * fields share a name); the bytes counted always match the entries kept and never pass
 * `maxBytes`, under random reads of new versions and sweeps; and scores through the cache are
 * bit for bit those of the computation before the cache (huge, tiny, zero and -0 vectors).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { defineSchema, defineTable, mutation } from "../server/index.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { seededRandom } from "../storage/conformance/history.js";
import { Engine } from "./engine.js";
import { SWEEP_EVERY_MS, VectorCache } from "./vectorCache.js";

/** A document ID's length (ids.ts): the cache's keys are the field's name and one. */
const ID = (i: number) => `k57${i.toString(32).padStart(29, "0")}`;

/** Bytes one entry of `dimensions` numbers is counted as (`sizeOf`). */
function entryBytes(dimensions: number): number {
  const cache = new VectorCache();
  cache.vectorOf("embedding", ID(0), 1, () => new Array<number>(dimensions).fill(1));
  return cache.stats().bytes;
}

describe("the cache's memory", () => {
  it("counts what an entry costs in memory, not only its numbers: a cache of small vectors keeps no more than fit", () => {
    // Measured on Node 20, x64 (heap and ArrayBuffers after a full GC, 10,000 to 30,000
    // entries): 530 to 590 bytes an entry besides its numbers. Not measured here: the heap of a
    // test worker moves by more than that (earlier tests' garbage, ArrayBuffers freed lazily).
    const maxBytes = 1024 * 1024;
    const cache = new VectorCache(maxBytes);
    for (let i = 0; i < 10_000; i++) cache.vectorOf("embedding", ID(i), 1, () => [i, 1]);
    // Counted at 160 bytes besides the 16 of the numbers, it kept 5,957: 3.3 MiB of memory.
    expect(cache.stats().entries).toBeLessThanOrEqual(Math.floor(maxBytes / (16 + 530)));
    expect(cache.stats().entries).toBeGreaterThan(0);
  });

  it("counts exactly the entries it keeps, within maxBytes, and answers each version with its own numbers", () => {
    const next = seededRandom(5);
    const dimensions = 4;
    const slots = 12;
    const clock = { now: 0 };
    const cache = new VectorCache(slots * entryBytes(dimensions), () => clock.now);
    // 30 documents with two vector fields (two indexes), each read at its current version or a
    // new one: a version's two vectors share its ts, as a document's fields do.
    const versions = new Map<string, { ts: number; a: number[]; b: number[] }>();
    const random = () => Array.from({ length: dimensions }, () => next() * 2 - 1);
    let ts = 0;
    for (let step = 0; step < 5_000; step++) {
      const field = next() < 0.5 ? "a" : "b";
      const id = ID(Math.floor(next() * 30));
      let version = versions.get(id);
      if (version === undefined || next() < 0.1) {
        version = { ts: ++ts, a: random(), b: random() };
        versions.set(id, version);
      }
      const numbers = version[field];
      const stored = cache.vectorOf(field, id, version.ts, () => numbers);
      expect(stored?.ts).toBe(version.ts);
      expect([...stored!.numbers]).toEqual(numbers);
      const { entries, bytes } = cache.stats();
      expect(bytes).toBe(entries * entryBytes(dimensions));
      expect(entries).toBeLessThanOrEqual(slots);
      if (next() < 0.05) clock.now += SWEEP_EVERY_MS * next() * 2;
    }
  });

  it("keeps nothing of a vector larger than the whole cache (4,096 numbers in 16 KiB), and stays correct", () => {
    const cache = new VectorCache(16 * 1024);
    const numbers = Array.from({ length: 4096 }, (_, i) => (i % 7) - 3);
    for (let i = 0; i < 3; i++) expect([...cache.vectorOf("embedding", ID(1), 1, () => numbers)!.numbers]).toEqual(numbers);
    expect(cache.stats()).toEqual({ entries: 0, bytes: 0 });
  });
});

describe("sweeps", () => {
  it("sweeps after the clock was set back, instead of waiting for it to catch up", () => {
    const clock = { now: 1_000_000_000 };
    const cache = new VectorCache(100 * entryBytes(4), () => clock.now);
    let decodes = 0;
    const pass = (first: number) => {
      const before = decodes;
      for (let i = first; i < first + 100; i++) {
        cache.vectorOf("embedding", ID(i), 1, () => {
          decodes++;
          return [1, 2, 3, i];
        });
      }
      return decodes - before;
    };
    pass(0);
    // The wall clock is set back an hour; the documents searched now are others (the first
    // hundred were deleted). Within two sweeps' time their vectors take the cache.
    clock.now -= 3_600_000;
    for (let elapsed = 0; elapsed <= 2 * SWEEP_EVERY_MS; elapsed += SWEEP_EVERY_MS / 2) {
      pass(100);
      clock.now += SWEEP_EVERY_MS / 2;
    }
    expect(pass(100)).toBe(0);
    expect(cache.stats().entries).toBe(100);
  });
});

// ---------------------------------------------------------------- searches through the cache

const schema = defineSchema({
  movies: defineTable({ genre: v.string(), embedding: v.array(v.float64()) })
    .vectorIndex("by_embedding", { vectorField: "embedding", dimensions: 3, filterFields: ["genre"] }),
  // Another table whose vector field has the same name, and vectors of another length.
  songs: defineTable({ embedding: v.array(v.float64()) }).vectorIndex("by_embedding", { vectorField: "embedding", dimensions: 2 }),
});
const modules = {
  movies: {
    add: mutation({ args: { genre: v.string(), embedding: v.array(v.float64()) }, handler: (ctx, movie) => ctx.db.insert("movies", movie) }),
    edit: mutation({ args: { id: v.id("movies"), embedding: v.array(v.float64()) }, handler: (ctx, { id, embedding }) => ctx.db.patch(id, { embedding }) }),
    remove: mutation({ args: { id: v.id("movies") }, handler: (ctx, { id }) => ctx.db.delete(id) }),
    // Inserted and then patched in one mutation: one version, of the last vector.
    addTwice: mutation({
      args: { first: v.array(v.float64()), last: v.array(v.float64()) },
      handler: async (ctx, { first, last }) => {
        const id = await ctx.db.insert("movies", { genre: "twice", embedding: first });
        await ctx.db.patch(id, { embedding: last });
        return id;
      },
    }),
  },
  songs: {
    add: mutation({ args: { embedding: v.array(v.float64()) }, handler: (ctx, song) => ctx.db.insert("songs", song) }),
  },
};

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A file for engines to share, removed after the test. */
function databaseFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "walkin-vector-cache-review-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "app.sqlite");
}

async function open(filename: string, vectorCacheBytes?: number): Promise<Engine> {
  const engine = await Engine.open({ storage: await openSqliteStorage({ filename }), schema, modules, runScheduler: false, vectorCacheBytes });
  cleanups.push(() => engine.close());
  return engine;
}

async function add(engine: Engine, genre: string, embedding: number[]): Promise<string> {
  return (await engine.runMutation("movies:add", { genre, embedding })).value as string;
}

function search(engine: Engine, vector: number[], options: { table?: string; genre?: string; limit?: number } = {}) {
  return engine.actionCtx({}).vectorSearch(options.table ?? "movies", "by_embedding", {
    vector,
    limit: options.limit ?? 50,
    ...(options.genre === undefined ? {} : { filter: (q: any) => q.eq("genre", options.genre) }),
  }) as Promise<Array<{ _id: string; _score: number }>>;
}

/**
 * The score as vectorSearch.ts computed it before the cache (commit 381aed5), written out
 * again: the query scaled when its largest number is extreme, its norm by Math.hypot; the
 * stored vector's dot product and squares summed in one loop, scaled where they overflow or
 * vanish. Scores through the cache must equal it to the last bit.
 */
function scoreBeforeTheCache(query: number[], vector: number[]): number {
  const largestOf = (u: number[]) => u.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  const largestQuery = largestOf(query);
  const q = largestQuery >= 2 ** -400 && largestQuery <= 2 ** 400 ? query : query.map((x) => x / largestQuery);
  const norm = Math.hypot(...q);
  let dot = 0;
  let squares = 0;
  for (let i = 0; i < q.length; i++) {
    dot += q[i]! * vector[i]!;
    squares += vector[i]! * vector[i]!;
  }
  if (squares >= 2 ** -900 && squares !== Infinity) return Math.max(-1, Math.min(1, dot / (norm * Math.sqrt(squares))));
  const largest = largestOf(vector);
  if (largest === 0) return 0;
  dot = 0;
  squares = 0;
  for (let i = 0; i < q.length; i++) {
    const x = vector[i]! / largest;
    dot += q[i]! * x;
    squares += x * x;
  }
  return Math.max(-1, Math.min(1, dot / (norm * Math.sqrt(squares))));
}

/** What a search must answer: every vector's score against `query`, by ID, best first (ties: greater ID). */
function expected(vectors: Map<string, number[]>, query: number[]): Array<{ _id: string; _score: number }> {
  return [...vectors]
    .map(([id, vector]) => ({ _id: id, _score: scoreBeforeTheCache(query, vector) }))
    .sort((a, b) => b._score - a._score || (a._id < b._id ? 1 : -1));
}

describe("a search never scores a stale vector", () => {
  it("scores a document's vector as edited, forgets it when deleted, and sees one version of a mutation's two writes", async () => {
    const engine = await open(databaseFile());
    const vectors = new Map<string, number[]>();
    for (const [genre, vector] of [["a", [1, 0, 0]], ["a", [0, 1, 0]], ["b", [0, 0, 1]], ["b", [1, 1, 1]]] as const) {
      vectors.set(await add(engine, genre, [...vector]), [...vector]);
    }
    const query = [0.3, 0.5, -0.2];
    expect(await search(engine, query)).toEqual(expected(vectors, query));
    expect(await search(engine, query)).toEqual(expected(vectors, query)); // from the cache
    const [first, second] = [...vectors.keys()];
    await engine.runMutation("movies:edit", { id: first, embedding: [-1, -1, 0] });
    vectors.set(first!, [-1, -1, 0]);
    await engine.runMutation("movies:remove", { id: second });
    vectors.delete(second!);
    const twice = (await engine.runMutation("movies:addTwice", { first: [1, 0, 0], last: [0, -1, 0] })).value as string;
    vectors.set(twice, [0, -1, 0]);
    expect(await search(engine, query)).toEqual(expected(vectors, query));
    expect(await search(engine, query)).toEqual(expected(vectors, query));
  });

  it("scores what another engine on the same database wrote, not what this one kept", async () => {
    const filename = databaseFile();
    const writer = await open(filename);
    const reader = await open(filename);
    const next = seededRandom(17);
    const random = () => Array.from({ length: 3 }, () => next() * 2 - 1);
    const vectors = new Map<string, number[]>();
    for (let i = 0; i < 20; i++) {
      const vector = random();
      vectors.set(await add(writer, i % 2 === 0 ? "a" : "b", vector), vector);
    }
    for (let round = 0; round < 5; round++) {
      await reader.refreshFromStorage();
      const query = random();
      expect(await search(reader, query), `round ${round}`).toEqual(expected(vectors, query));
      // The writer edits a few vectors the reader keeps, deletes one, adds one.
      const ids = [...vectors.keys()];
      for (const id of ids.slice(round, round + 3)) {
        const vector = random();
        await writer.runMutation("movies:edit", { id, embedding: vector });
        vectors.set(id, vector);
      }
      await writer.runMutation("movies:remove", { id: ids[ids.length - 1] });
      vectors.delete(ids[ids.length - 1]!);
      const vector = random();
      vectors.set(await add(writer, "a", vector), vector);
    }
    expect(reader.vectors.stats().entries).toBeGreaterThan(0);
  });

  it("keeps apart two tables whose vector fields share a name and differ in length", async () => {
    const engine = await open(databaseFile());
    const movies = new Map<string, number[]>();
    const songs = new Map<string, number[]>();
    for (let i = 0; i < 6; i++) {
      movies.set(await add(engine, "a", [i, 1, -i]), [i, 1, -i]);
      songs.set((await engine.runMutation("songs:add", { embedding: [1, i - 3] })).value as string, [1, i - 3]);
    }
    for (let round = 0; round < 3; round++) {
      expect(await search(engine, [1, 2, 3])).toEqual(expected(movies, [1, 2, 3]));
      expect(await search(engine, [2, -1], { table: "songs" })).toEqual(expected(songs, [2, -1]));
    }
    expect(engine.vectors.stats().entries).toBe(12);
  });
});

describe("scores through the cache", () => {
  it("are bit for bit those of the computation before the cache, for extreme, zero and -0 vectors, first read and kept", async () => {
    const filename = databaseFile();
    const cached = await open(filename);
    const vectors = new Map<string, number[]>();
    const stored = [
      [0.1, -0.7, 0.3],
      [1e200, 1e200, 0],
      [0, 1e-200, 1e-200],
      [-3e307, 0, 0],
      [-0, 2, -0],
      [0, 0, 0],
      [-0, -0, -0],
      [Number.MIN_VALUE, 0, -Number.MIN_VALUE],
      [1e154, 1e-300, 1],
      [1e-160, 1e-160, 0],
      [Number.MAX_VALUE, -Number.MAX_VALUE, Number.MAX_VALUE],
      [3, 4, 12],
    ];
    // And ordinary ones, whose lengths a sum of squares and Math.hypot round apart now and then.
    const next = seededRandom(23);
    for (let i = 0; i < 30; i++) stored.push(Array.from({ length: 3 }, () => next() * 2 - 1));
    for (const vector of stored) vectors.set(await add(cached, "a", vector), vector);
    const queries = [[1, 1, 0], [0.3, -0.2, 0.9], [1e-200, 1e-200, 0], [1e300, -1e300, 1], [Number.MIN_VALUE, 0, 0], [3, 4, 12]];
    for (const query of queries) {
      for (const read of ["first", "kept"]) {
        const found = await search(cached, query);
        // toEqual tells -0 from 0: the scores and their signs, exactly.
        expect(found, `${JSON.stringify(query)}, ${read}`).toEqual(expected(vectors, query));
        for (const result of found) expect(Object.is(result._score, -0), "no score of -0").toBe(false);
      }
    }
    expect(cached.vectors.stats().entries).toBe(stored.length);
  });
});

/**
 * The vector cache (vectorCache.ts): a kept vector answers only for the version it was decoded
 * from; what it keeps when searches read more vectors than fit (a stable share on every pass,
 * where least-recently-used would keep nothing of a repeated scan); entries of documents no
 * search reads any more go; and its bounds. The searches' answers with the cache are checked
 * against a brute-force search in vectorSearch.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defineSchema, defineTable, mutation } from "../server/index.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { seededRandom } from "../storage/conformance/history.js";
import { Engine } from "./engine.js";
import { HookedStorage } from "./fixtures/hookedStorage.js";
import { storedVector, SWEEP_EVERY_MS, VectorCache } from "./vectorCache.js";

const DIMENSIONS = 4;
/** Bytes one entry of DIMENSIONS numbers costs in the cache (`sizeOf`). */
const ENTRY_BYTES = (() => {
  const cache = new VectorCache();
  cache.vectorOf("v", "a", 1, () => [1, 2, 3, 4]);
  return cache.stats().bytes;
})();

/** A cache with room for `entries` vectors of DIMENSIONS numbers, a count of the decodes it asks for, and its clock. */
function cacheFor(entries: number) {
  const clock = { now: 0 };
  const cache = new VectorCache(entries * ENTRY_BYTES, () => clock.now);
  let decodes = 0;
  const read = (id: string, ts = 1, numbers = [1, 0, 0, Number(id.slice(1)) || 1]) =>
    cache.vectorOf("embedding", id, ts, () => {
      decodes++;
      return numbers;
    });
  return { cache, read, decodes: () => decodes, clock };
}

/** Reads documents d0 … d(n-1) in order, as a search without a filter does; answers the decodes it took. */
function pass(read: (id: string) => unknown, decodes: () => number, n: number): number {
  const before = decodes();
  for (let i = 0; i < n; i++) read(`d${i}`);
  return decodes() - before;
}

describe("a kept vector answers for its version only", () => {
  it("decodes a document's vector once, and again when a newer version is read", () => {
    const { cache, read, decodes } = cacheFor(10);
    expect(read("d1", 5, [3, 4, 0, 0])?.numbers).toEqual(Float64Array.from([3, 4, 0, 0]));
    expect(read("d1", 5)?.length).toBe(5);
    expect(decodes()).toBe(1);

    // The document was edited: version 9 holds other numbers, and replaces the entry.
    expect(read("d1", 9, [0, 0, 1, 0])?.numbers).toEqual(Float64Array.from([0, 0, 1, 0]));
    expect(read("d1", 9)?.numbers).toEqual(Float64Array.from([0, 0, 1, 0]));
    expect(decodes()).toBe(2);
    expect(cache.stats()).toEqual({ entries: 1, bytes: ENTRY_BYTES });
  });

  it("keeps the newer version's vector when a search at an older snapshot reads an older one", () => {
    const { read, decodes } = cacheFor(10);
    read("d1", 9, [0, 0, 1, 0]);
    // A search that began before version 9 was written reads version 5.
    expect(read("d1", 5, [3, 4, 0, 0])?.numbers).toEqual(Float64Array.from([3, 4, 0, 0]));
    expect(read("d1", 9)?.numbers).toEqual(Float64Array.from([0, 0, 1, 0]));
    expect(decodes()).toBe(2);
  });

  it("keeps the vectors of two indexes on one document apart", () => {
    const cache = new VectorCache();
    cache.vectorOf("title", "d1", 3, () => [1, 0]);
    expect(cache.vectorOf("body", "d1", 3, () => [0, 1])?.numbers).toEqual(Float64Array.from([0, 1]));
    expect(cache.vectorOf("title", "d1", 3, () => [9, 9])?.numbers).toEqual(Float64Array.from([1, 0]));
  });

  it("keeps nothing for a document without a vector", () => {
    const cache = new VectorCache();
    expect(cache.vectorOf("embedding", "d1", 3, () => null)).toBeNull();
    expect(cache.stats().entries).toBe(0);
  });
});

describe("what the cache keeps when the vectors searched do not fit", () => {
  it("finds the same share in the cache on every pass of a scan larger than itself", () => {
    const { cache, read, decodes, clock } = cacheFor(100);
    expect(pass(read, decodes, 400)).toBe(400);
    for (let round = 0; round < 8; round++) {
      // Least-recently-used (or first-in, first-out) eviction would decode all 400 on every
      // pass: each pass would evict the vectors the next one reads first. Sweeps come and go
      // between passes, and drop nothing the passes read.
      clock.now += SWEEP_EVERY_MS / 3;
      expect(pass(read, decodes, 400), `pass ${round + 2}`).toBe(300);
    }
    expect(cache.stats().bytes).toBeLessThanOrEqual(100 * ENTRY_BYTES);
  });

  it("lets go of the vectors of documents no search reads any more, for the ones searched now", () => {
    const { cache, read, decodes, clock } = cacheFor(100);
    pass(read, decodes, 100);
    expect(pass(read, decodes, 100)).toBe(0);
    // Searches now read other documents (d100 … d199: the first hundred were deleted, or the
    // filter changed). Until a sweep is due, they are refused and the old entries stay.
    const others = (id: string) => read(`d${Number(id.slice(1)) + 100}`);
    clock.now += SWEEP_EVERY_MS - 1;
    expect(pass(others, decodes, 100)).toBe(100);
    // A sweep is due, but the old entries were used since the last one (the cache's start).
    clock.now += 1;
    expect(pass(others, decodes, 100)).toBe(100);
    // At the next, they were not: they make room.
    clock.now += SWEEP_EVERY_MS;
    pass(others, decodes, 100);
    expect(pass(others, decodes, 100)).toBe(0);
    expect(cache.stats()).toEqual({ entries: 100, bytes: 100 * ENTRY_BYTES });
    expect(pass(read, decodes, 100), "the first hundred are gone").toBe(100);
  });

  it("keeps nothing with no bytes, and refuses a size that is not one", () => {
    const { cache, read, decodes } = cacheFor(0);
    pass(read, decodes, 10);
    expect(pass(read, decodes, 10)).toBe(10);
    expect(cache.stats()).toEqual({ entries: 0, bytes: 0 });
    expect(() => new VectorCache(-1)).toThrow(/vectorCacheBytes must be a number of bytes >= 0, got -1/);
    expect(() => new VectorCache(Number.NaN)).toThrow(/vectorCacheBytes/);
  });
});

describe("a stored vector's length", () => {
  it("is summed from its squares, and is NaN where they overflow or vanish (scored scaled)", () => {
    expect(storedVector(1, [3, 4]).length).toBe(5);
    expect(storedVector(1, [1e200, 1e200]).length).toBeNaN();
    expect(storedVector(1, [1e-200, 0]).length).toBeNaN();
    expect(storedVector(1, [0, 0]).length).toBeNaN();
  });
});

describe("an engine's searches through the cache", () => {
  const schema = defineSchema({
    movies: defineTable({ genre: v.string(), embedding: v.array(v.float64()) })
      .vectorIndex("by_embedding", { vectorField: "embedding", dimensions: DIMENSIONS, filterFields: ["genre"] }),
  });
  const addMany = mutation({
    args: { movies: v.array(v.object({ genre: v.string(), embedding: v.array(v.float64()) })) },
    handler: async (ctx, { movies }) => {
      for (const movie of movies) await ctx.db.insert("movies", movie);
    },
  });
  const modules = {
    movies: {
      add: mutation({
        args: { genre: v.string(), embedding: v.array(v.float64()) },
        handler: (ctx, movie) => ctx.db.insert("movies", movie),
      }),
    },
  };

  it("answers exactly as searches that decode every document do, and keeps each vector searched once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "walkin-vector-cache-"));
    const open = async (name: string, vectorCacheBytes?: number) =>
      Engine.open({ storage: await openSqliteStorage({ filename: join(dir, name) }), schema, modules, runScheduler: false, vectorCacheBytes });
    const cached = await open("cached.sqlite");
    const uncached = await open("uncached.sqlite", 0);
    try {
      const next = seededRandom(3);
      const vector = () => Array.from({ length: DIMENSIONS }, () => next() * 2 - 1);
      for (let i = 0; i < 40; i++) {
        const movie = { genre: i % 4 === 0 ? "noir" : "drama", embedding: vector() };
        await cached.runMutation("movies:add", movie);
        await uncached.runMutation("movies:add", movie);
      }
      const search = (engine: Engine, query: number[], genre?: string) =>
        engine.actionCtx({}).vectorSearch("movies", "by_embedding", { vector: query, limit: 8, ...(genre ? { filter: (q: any) => q.eq("genre", genre) } : {}) });
      const scores = (results: Array<{ _score: number }>) => results.map((result) => result._score);
      for (let round = 0; round < 3; round++) {
        const query = vector();
        // IDs differ between the two files; the scores, to the last bit, do not.
        expect(scores(await search(cached, query, "noir"))).toEqual(scores(await search(uncached, query, "noir")));
        expect(scores(await search(cached, query))).toEqual(scores(await search(uncached, query)));
      }
      expect(cached.vectors.stats().entries).toBe(40);
      expect(uncached.vectors.stats()).toEqual({ entries: 0, bytes: 0 });
    } finally {
      await cached.close();
      await uncached.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads a page's bodies only for vectors it does not keep, and at once after a page that needed them", async () => {
    const reads = { scan: 0, scanVersions: 0 };
    const storage = new HookedStorage(await openSqliteStorage({ filename: ":memory:" }), {
      read: (operation, read) => {
        if (operation === "scan" || operation === "scanVersions") reads[operation]++;
        return read();
      },
    });
    const engine = await Engine.open({ storage, schema, modules: { movies: { ...modules.movies, addMany } }, runScheduler: false });
    try {
      const next = seededRandom(5);
      const vector = () => Array.from({ length: DIMENSIONS }, () => next() * 2 - 1);
      // 600 documents: three pages of a search without a filter (256 entries a page).
      await engine.runMutation("movies:addMany", { movies: Array.from({ length: 600 }, () => ({ genre: "drama", embedding: vector() })) });
      const search = async () => {
        reads.scan = reads.scanVersions = 0;
        await engine.actionCtx({}).vectorSearch("movies", "by_embedding", { vector: vector(), limit: 5 });
        return { ...reads };
      };
      // The first search keeps nothing yet: the first page is read without bodies, then with
      // them, and the two after it with them at once.
      expect(await search()).toEqual({ scanVersions: 1, scan: 3 });
      // Every vector is kept now: no body is read.
      expect(await search()).toEqual({ scanVersions: 3, scan: 0 });
    } finally {
      await engine.close();
    }
  });
});

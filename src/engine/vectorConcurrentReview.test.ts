/**
 * A review of vector search (vectorSearch.ts) under writes that land while it runs: a search
 * reads each page without bodies (`scanVersions`), then again with them for the vectors it
 * does not keep (`readPage`), at the snapshot it took when it began. Here mutations of this
 * engine and of another engine on the same SQLite file commit in the middle of those reads
 * (between pages, and between the two reads of one page), the pending versions are written
 * to their tables and history is pruned at the search's snapshot; every answer must still be
 * the brute-force answer over the documents as they were at that snapshot.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { action, defineSchema, defineTable, mutation } from "../server/index.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { seededChoices } from "../storage/conformance/history.js";
import type { IndexVersion, ScanRequest } from "../storage/types.js";
import { Engine } from "./engine.js";
import { HookedStorage } from "./fixtures/hookedStorage.js";

const DIMENSIONS = 4;
const TAGS = ["a", "b", "c"];

const schema = defineSchema({
  points: defineTable({ tag: v.string(), vec: v.array(v.float64()) }).vectorIndex("by_vec", { vectorField: "vec", dimensions: DIMENSIONS, filterFields: ["tag"] }),
});

const points = {
  add: mutation({ args: { tag: v.string(), vec: v.array(v.float64()) }, handler: (ctx, point) => ctx.db.insert("points", point) }),
  move: mutation({ args: { id: v.id("points"), tag: v.string(), vec: v.array(v.float64()) }, handler: (ctx, { id, ...fields }) => ctx.db.patch(id, fields) }),
  remove: mutation({ args: { id: v.id("points") }, handler: (ctx, { id }) => ctx.db.delete(id) }),
  search: action({
    args: { vec: v.array(v.float64()), limit: v.number(), tags: v.optional(v.array(v.string())) },
    handler: (ctx, { vec, limit, tags }) =>
      ctx.vectorSearch("points", "by_vec", {
        vector: vec,
        limit,
        ...(tags === undefined ? {} : { filter: (q) => q.or(...tags.map((tag) => q.eq("tag", tag))) }),
      }),
  }),
};
const modules = { points };

interface Point {
  tag: string;
  vec: number[];
}

/** The `limit` nearest points among those with one of `tags` (all without), by cosine similarity, written apart from the engine. */
function nearest(points: Map<string, Point>, vec: number[], limit: number, tags?: string[]): Array<{ id: string; score: number }> {
  const norm = (u: number[]) => Math.sqrt(u.reduce((sum, x) => sum + x * x, 0));
  return [...points]
    .filter(([, point]) => tags === undefined || tags.includes(point.tag))
    .map(([id, point]) => ({ id, score: point.vec.reduce((sum, x, i) => sum + x * vec[i]!, 0) / (norm(point.vec) * norm(vec)) }))
    .sort((a, b) => b.score - a.score || (a.id < b.id ? 1 : -1))
    .slice(0, limit);
}

let dir: string | undefined;
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe("vector search under concurrent writes", () => {
  // Without a vector cache every page is read twice (without bodies, then with them); with one,
  // only pages with a vector written since the last search are.
  for (const [seed, vectorCacheBytes] of [[1, 0], [2, 0], [3, undefined], [4, undefined]] as const) {
    it(`answers exactly the brute-force search at its snapshot while mutations commit between and within its reads (seed ${seed}, cache ${vectorCacheBytes ?? "default"})`, async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), "walkin-vector-concurrent-"));
      const filename = path.join(dir, "app.sqlite");
      const sqlite = await openSqliteStorage({ filename, historySweep: { fullPassIntervalMs: 0 } });
      const storage = new HookedStorage(sqlite);
      const engine = await Engine.open({ storage, schema, modules, runScheduler: false, pollIntervalMs: 60_000, vectorCacheBytes });
      cleanups.push(() => engine.close());
      // Another engine on the same file: its commits reach this one's storage only through the file.
      const other = await Engine.open({ storage: await openSqliteStorage({ filename }), schema, modules, runScheduler: false, pollIntervalMs: 60_000 });
      cleanups.push(() => other.close());

      const choices = seededChoices(seed);
      const randomVector = () => Array.from({ length: DIMENSIONS }, () => choices.next() * 2 - 1);
      // Every write with its commit's timestamp (the two engines share the file's clock), to
      // replay the documents as of any snapshot; `stored` is the newest state.
      const history: Array<{ ts: number; id: string; point: Point | null }> = [];
      const stored = new Map<string, Point>();
      const wrote = (ts: number, id: string, point: Point | null) => {
        history.push({ ts, id, point });
        if (point === null) stored.delete(id);
        else stored.set(id, point);
      };
      const at = (ts: number) => {
        const points = new Map<string, Point>();
        for (const write of history) {
          if (write.ts > ts) continue;
          if (write.point === null) points.delete(write.id);
          else points.set(write.id, write.point);
        }
        return points;
      };
      // More than two pages (vectorSearch.ts reads 256 entries a page) in all, and in tag "a".
      for (let n = 0; n < 700; n++) {
        const point = { tag: n % 2 === 0 ? "a" : choices.pick(TAGS), vec: randomVector() };
        const { value, ts } = await engine.runMutation("points:add", point);
        wrote(ts, value as string, point);
      }

      /** The running search: its query (the writes below make documents it reads its best matches, after its snapshot) and its snapshot. */
      let query: number[] = [];
      let searchTs: number | null = null;
      /** A write of `interfere` is running: its own reads go through untouched. */
      let busy = false;
      const reads: string[] = [];
      /**
       * One write from one of the two engines, kept in `history`: an insert, a move (new vector
       * and tag) or a delete, of a document of `ids` (one the search has just read, or any).
       */
      const write = async (ids: readonly string[]) => {
        const writer = choices.pick([engine, other]);
        const kind = choices.pick(["add", "move", "move", "remove"] as const);
        const point = { tag: choices.pick(TAGS), vec: choices.next() < 0.5 ? query : randomVector() };
        const id = choices.pick(ids.filter((id) => stored.has(id)));
        if (kind === "add" || id === undefined) {
          const { value, ts } = await writer.runMutation("points:add", point);
          wrote(ts, value as string, point);
        } else if (kind === "move") {
          wrote((await writer.runMutation("points:move", { id, ...point })).ts, id, point);
        } else {
          wrote((await writer.runMutation("points:remove", { id })).ts, id, null);
        }
      };
      /** Writes, and now and then the pending versions written to their tables and history pruned at the search's snapshot. */
      const interfere = async (ids: readonly string[]) => {
        busy = true;
        try {
          for (let n = 1 + choices.int(3); n > 0; n--) await write(ids);
          if (choices.next() < 0.3) sqlite.writePendingVersions();
          if (choices.next() < 0.3) {
            sqlite.raiseReadFloor(searchTs!);
            await sqlite.pruneHistory(searchTs!);
          }
        } finally {
          busy = false;
        }
      };

      // During a search: after each page read without bodies, writes to that page's documents
      // (so they change between the two reads of the page), and more before each read.
      const scanVersions = storage.scanVersions.bind(storage);
      storage.scanVersions = (request: ScanRequest) => {
        searchTs = request.readTs;
        return scanVersions(request);
      };
      storage.hooks.read = async <T,>(operation: string, read: () => Promise<T>): Promise<T> => {
        if (searchTs === null || busy || (operation !== "scan" && operation !== "scanVersions")) return read();
        reads.push(operation);
        await interfere([...stored.keys()]);
        const answer = await read();
        if (operation === "scanVersions") await interfere((answer as IndexVersion[]).map((entry) => entry.id));
        return answer;
      };

      for (let round = 0; round < 6; round++) {
        const vec = (query = randomVector());
        const limit = choices.pick([1, 10, 100]);
        const tags = choices.pick([undefined, ["a"], ["b", "c"]]);
        reads.length = 0;
        const found = (await engine.runAction("points:search", { vec, limit, ...(tags ? { tags } : {}) })) as Array<{ _id: string; _score: number }>;
        // The documents at the search's snapshot: this engine's latest when it began, which may
        // be before the other engine's last commits (it learns them within milliseconds).
        const expected = nearest(at(searchTs!), vec, limit, tags);
        const where = `seed ${seed}, round ${round}, at ${searchTs}, limit ${limit}, tags ${JSON.stringify(tags)}, reads ${reads.join(" ")}`;
        expect(found.map((r) => r._id), where).toEqual(expected.map((r) => r.id));
        for (const [i, result] of found.entries()) expect(result._score, where).toBeCloseTo(expected[i]!.score, 10);
        // The writes between the two reads of a page are what this test is for: the first
        // search decodes every vector, and each later one those written since.
        expect(reads, where).toContain("scan");
        searchTs = null;
      }
    });
  }
});

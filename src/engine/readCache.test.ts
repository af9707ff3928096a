/**
 * The read cache (readCache.ts) serves repeated reads from memory and must never serve a stale
 * answer: each test here fails if one of its rules is taken out.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { defineSchema, defineTable, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { withLatency } from "../storage/latency.js";
import type { IndexEntry, ScanRequest, Storage } from "../storage/types.js";
import { Engine } from "./engine.js";
import { ReadCache, answers, flatScan, hashScan } from "./readCache.js";

const schema = defineSchema({
  users: defineTable({ name: v.string(), score: v.number() }).index("by_name", ["name"]),
  notes: defineTable({ text: v.string() }),
});

/** Lets a test hold a mutation between its first read and its lookup. */
let gate: { reached: () => void; release: Promise<void> } | null = null;

const modules = {
  users: {
    create: mutation({ args: { name: v.string(), score: v.number() }, handler: (ctx, args) => ctx.db.insert("users", args) }),
    setScore: mutation({
      args: { name: v.string(), score: v.number() },
      handler: async (ctx, { name, score }) => {
        const user = await ctx.db.query("users").withIndex("by_name", (q) => q.eq("name", name)).unique();
        await ctx.db.patch(user!._id, { score });
      },
    }),
    byName: query({
      args: { name: v.string() },
      handler: (ctx, { name }) => ctx.db.query("users").withIndex("by_name", (q) => q.eq("name", name)).unique(),
    }),
    get: query({ args: { id: v.id("users") }, handler: (ctx, { id }) => ctx.db.get(id) }),
    /** Up to `n` users with names in [from, to), in either order: a live list over `by_name`. */
    list: query({
      args: { from: v.string(), to: v.string(), order: v.union(v.literal("asc"), v.literal("desc")), n: v.number() },
      handler: async (ctx, { from, to, order, n }) =>
        (await ctx.db.query("users").withIndex("by_name", (q) => q.gte("name", from).lt("name", to)).order(order).take(n))
          .map((user) => `${user.name}:${user.score}`),
    }),
    rename: mutation({
      args: { name: v.string(), to: v.string() },
      handler: async (ctx, { name, to }) => {
        const user = await ctx.db.query("users").withIndex("by_name", (q) => q.eq("name", name)).first();
        if (user) await ctx.db.patch(user._id, { name: to });
      },
    }),
    remove: mutation({
      args: { name: v.string() },
      handler: async (ctx, { name }) => {
        const user = await ctx.db.query("users").withIndex("by_name", (q) => q.eq("name", name)).first();
        if (user) await ctx.db.delete(user._id);
      },
    }),
    /** Reads a note first (pinning its snapshot), waits at the gate, then looks the user up. */
    slowCopy: mutation({
      args: { name: v.string(), note: v.id("notes") },
      handler: async (ctx, { name, note }) => {
        await ctx.db.get(note);
        const current = gate;
        if (current) {
          current.reached();
          await current.release;
        }
        const user = await ctx.db.query("users").withIndex("by_name", (q) => q.eq("name", name)).unique();
        await ctx.db.patch(note, { text: `score ${user!.score}` });
        return user!.score;
      },
    }),
  },
  notes: {
    create: mutation({ args: {}, handler: (ctx) => ctx.db.insert("notes", { text: "" }) }),
  },
};

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  gate = null;
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function open(storage: Storage, options: { readCacheBytes?: number } = {}): Promise<Engine> {
  const engine = await Engine.open({ storage, schema, modules, runScheduler: false, ...options });
  cleanups.push(() => engine.close());
  return engine;
}

async function score(engine: Engine, name: string): Promise<number | undefined> {
  return ((await engine.runQuery("users:byName", { name })) as { score: number } | null)?.score;
}

describe("the read cache", () => {
  it("serves a repeated lookup from memory, and a commit to the index ends that at once", async () => {
    const engine = await open(await openSqliteStorage({ filename: ":memory:" }));
    const id = (await engine.runMutation("users:create", { name: "ada", score: 1 })).value as string;
    expect(await score(engine, "ada")).toBe(1);
    const before = engine.reads.stats.hits;
    expect(await score(engine, "ada")).toBe(1);
    expect(await engine.runQuery("users:get", { id })).toMatchObject({ score: 1 });
    expect(await engine.runQuery("users:get", { id })).toMatchObject({ score: 1 });
    expect(engine.reads.stats.hits - before).toBe(2);

    await engine.runMutation("users:setScore", { name: "ada", score: 2 });
    expect(await score(engine, "ada")).toBe(2);
    expect(await engine.runQuery("users:get", { id })).toMatchObject({ score: 2 });
  });

  it("decodes a carried list's documents once: a re-run after this engine's commit decodes only what the commit wrote", async () => {
    const engine = await open(await openSqliteStorage({ filename: ":memory:" }));
    for (let i = 0; i < 8; i++) await engine.runMutation("users:create", { name: `n${i}`, score: i });
    const list = () => engine.runQuery("users:list", { from: "a", to: "z", order: "asc", n: 10 });
    // Counts the document bodies decoded (JSON.parse of text holding an _id) while `run` runs.
    const decodedDuring = async (run: () => Promise<unknown>) => {
      const parse = vi.spyOn(JSON, "parse");
      try {
        await run();
        return parse.mock.calls.filter(([text]) => typeof text === "string" && text.includes('"_id"')).length;
      } finally {
        parse.mockRestore();
      }
    };
    expect(await decodedDuring(list)).toBe(8); // read from storage (the reader decodes storage's entries), filed
    expect(await decodedDuring(list)).toBe(8); // the first hit decodes the filed entries, and keeps them
    expect(await decodedDuring(list)).toBe(0); // every later one copies
    await engine.runMutation("users:create", { name: "n45", score: 45 });
    await engine.runMutation("users:setScore", { name: "n2", score: 20 });
    let result: unknown;
    expect(await decodedDuring(async () => (result = await list()))).toBe(2); // the two versions the commits wrote
    expect(result).toEqual(["n0:0", "n1:1", "n2:20", "n3:3", "n4:4", "n45:45", "n5:5", "n6:6", "n7:7"]);
  });

  it("keeps a document read by ID while other documents of its table are written, and replaces or drops it when it is", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-read-cache-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const filename = path.join(dir, "app.sqlite");
    const engine = await open(await openSqliteStorage({ filename }));
    const id = (await engine.runMutation("users:create", { name: "ada", score: 1 })).value as string;
    expect(await engine.runQuery("users:get", { id })).toMatchObject({ score: 1 }); // read, then cached
    // New users (every insert writes the table's by_id index) leave ada's cached document alone.
    await engine.runMutation("users:create", { name: "bob", score: 5 });
    await engine.runMutation("users:create", { name: "cy", score: 6 });
    const before = engine.reads.stats.hits;
    expect(await engine.runQuery("users:get", { id })).toMatchObject({ score: 1 });
    expect(engine.reads.stats.hits - before).toBe(1);
    // This engine's own write to ada files her new version (the commit says what it is), and
    // so does its insert of a new user into a table it reads by ID: both reads come from memory.
    await engine.runMutation("users:setScore", { name: "ada", score: 2 });
    const dan = (await engine.runMutation("users:create", { name: "dan", score: 4 })).value as string;
    const misses = engine.reads.stats.misses;
    expect(await engine.runQuery("users:get", { id })).toMatchObject({ score: 2 });
    expect(await engine.runQuery("users:get", { id: dan })).toMatchObject({ name: "dan", score: 4 });
    expect(engine.reads.stats.misses - misses).toBe(0);
    // A write by another engine on the same database, learned from the commit log, drops it:
    // the next read is a miss and sees the new version.
    const other = await open(await openSqliteStorage({ filename }));
    await other.runMutation("users:setScore", { name: "ada", score: 3 });
    await engine.refreshFromStorage();
    const missesBefore = engine.reads.stats.misses;
    expect(await engine.runQuery("users:get", { id })).toMatchObject({ score: 3 });
    expect(engine.reads.stats.misses - missesBefore).toBe(1);
  });

  it("carries a live list across this engine's own commits instead of reading it again", async () => {
    const engine = await open(await openSqliteStorage({ filename: ":memory:" }));
    for (const name of ["b", "d", "f"]) await engine.runMutation("users:create", { name, score: 0 });
    const list = () => engine.runQuery("users:list", { from: "a", to: "z", order: "desc", n: 3 });
    expect(await list()).toEqual(["f:0", "d:0", "b:0"]);
    // Each re-run comes from the cache, carried across the commit before it (no storage scan).
    const fromCache = async () => {
      const misses = engine.reads.stats.misses;
      const result = await list();
      expect(engine.reads.stats.misses - misses).toBe(0);
      return result;
    };
    await engine.runMutation("users:create", { name: "e", score: 1 });
    expect(await fromCache()).toEqual(["f:0", "e:1", "d:0"]);
    await engine.runMutation("users:setScore", { name: "f", score: 7 });
    expect(await fromCache()).toEqual(["f:7", "e:1", "d:0"]);
    // A removal from a list cut at its limit cannot be carried (what moves up is not at hand).
    await engine.runMutation("users:remove", { name: "e" });
    expect(await list()).toEqual(["f:7", "d:0", "b:0"]);
  });

  it("answers like storage through random writes, with lists carried across them and written documents filed (two engines, one without a cache)", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-read-cache-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const filename = path.join(dir, "app.sqlite");
    const cached = await open(await openSqliteStorage({ filename }));
    const plain = await open(await openSqliteStorage({ filename }), { readCacheBytes: 0 });
    let seed = 7;
    const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const name = () => "abcdefghij"[Math.floor(next() * 10)]! + "xyz"[Math.floor(next() * 3)]!;
    const lists = Array.from({ length: 8 }, () => {
      const [from, to] = [name(), name()].sort();
      return { from: from!, to: `${to}~`, order: next() < 0.5 ? "asc" : "desc", n: 1 + Math.floor(next() * 5) };
    });
    const hitsBefore = cached.reads.stats.hits;
    const ids: string[] = [];
    for (let step = 0; step < 150; step++) {
      const roll = next();
      if (roll < 0.4) ids.push((await cached.runMutation("users:create", { name: name(), score: step })).value as string);
      else if (roll < 0.65) await cached.runMutation("users:setScore", { name: name(), score: step }).catch(() => {});
      else if (roll < 0.85) await cached.runMutation("users:rename", { name: name(), to: name() });
      else await cached.runMutation("users:remove", { name: name() });
      await plain.refreshFromStorage();
      for (const args of lists) {
        expect(await cached.runQuery("users:list", args), `step ${step}, ${JSON.stringify(args)}`).toEqual(await plain.runQuery("users:list", args));
      }
      // Documents by ID too (filed by this engine's commits once the table is read by ID).
      for (const id of ids.slice(-6)) {
        expect(await cached.runQuery("users:get", { id }), `step ${step}, ${id}`).toEqual(await plain.runQuery("users:get", { id }));
      }
    }
    expect(cached.reads.stats.hits - hitsBefore).toBeGreaterThan(150);
  });

  it("does not keep an answer read at an older snapshot as the newest one", async () => {
    const engine = await open(await openSqliteStorage({ filename: ":memory:" }));
    await engine.runMutation("users:create", { name: "ada", score: 1 });
    const note = (await engine.runMutation("notes:create", {})).value as string;
    let reached!: () => void;
    const atGate = new Promise<void>((resolve) => (reached = resolve));
    let release!: () => void;
    gate = { reached, release: new Promise<void>((resolve) => (release = resolve)) };
    // The slow mutation pins its snapshot, then waits while another one changes the score.
    const slow = engine.runMutation("users:slowCopy", { name: "ada", note });
    await atGate;
    gate = null;
    await engine.runMutation("users:setScore", { name: "ada", score: 2 });
    release();
    // Its lookup ran at the old snapshot (score 1), so it conflicts and re-runs with 2.
    expect((await slow).value).toBe(2);
    // Had the old-snapshot answer been kept as current, this would read 1.
    expect(await score(engine, "ada")).toBe(2);
  });

  it("never answers a read at an older snapshot with a newer cached answer", async () => {
    const engine = await open(await openSqliteStorage({ filename: ":memory:" }));
    await engine.runMutation("users:create", { name: "ada", score: 1 });
    const before = engine.latestTimestamp;
    await engine.runMutation("users:setScore", { name: "ada", score: 2 });
    expect(await score(engine, "ada")).toBe(2); // cached, valid from the newest snapshot on
    const fn = engine.functions.resolve("users:byName", "query", {});
    const old = await engine.executeQuery(fn, "users:byName", { name: "ada" }, {}, before);
    expect(old.outcome).toMatchObject({ ok: true, value: { score: 1 } });
  });

  it("does not keep an answer that arrives after a newer commit was applied (slow storage)", async () => {
    const storage = withLatency(await openSqliteStorage({ filename: ":memory:" }), { read: [3, 3], commit: 1 });
    const engine = await open(storage);
    await engine.runMutation("users:create", { name: "ada", score: 1 });
    for (let round = 2; round < 12; round++) {
      // The query's read takes 3 ms; the mutation commits during it.
      const [stale] = await Promise.all([score(engine, "ada"), engine.runMutation("users:setScore", { name: "ada", score: round })]);
      expect(stale === round - 1 || stale === round).toBe(true);
      expect(await score(engine, "ada")).toBe(round);
    }
  });

  it("learns of another engine's commits (hot reload on one file) and drops what they changed", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-read-cache-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const filename = path.join(dir, "app.sqlite");
    const a = await open(await openSqliteStorage({ filename }));
    await a.runMutation("users:create", { name: "ada", score: 1 });
    const b = await open(await openSqliteStorage({ filename }));
    expect(await score(b, "ada")).toBe(1);
    expect(await score(b, "ada")).toBe(1); // now served from b's cache
    await a.runMutation("users:setScore", { name: "ada", score: 5 });
    await b.refreshFromStorage();
    expect(await score(b, "ada")).toBe(5);
  });

  it("stays within its byte budget, and 0 turns it off", async () => {
    const budget = 8 * 1024;
    const engine = await open(await openSqliteStorage({ filename: ":memory:" }), { readCacheBytes: budget });
    for (let i = 0; i < 200; i++) await engine.runMutation("users:create", { name: `user-${i}`, score: i });
    // Each read twice: once the cache is full, an answer is filed at its second miss.
    for (let i = 0; i < 200; i++) expect(await score(engine, `user-${i}`)).toBe(i);
    for (let i = 0; i < 200; i++) expect(await score(engine, `user-${i}`)).toBe(i);
    expect(engine.reads.stats.bytes).toBeLessThanOrEqual(budget);
    expect(engine.reads.stats.entries).toBeGreaterThan(10);

    const off = await open(await openSqliteStorage({ filename: ":memory:" }), { readCacheBytes: 0 });
    await off.runMutation("users:create", { name: "ada", score: 1 });
    for (let i = 0; i < 3; i++) expect(await score(off, "ada")).toBe(1);
    expect(off.reads.stats).toMatchObject({ hits: 0, entries: 0 });
  });

  it("refuses a budget that is not a number of bytes", async () => {
    const storage = await openSqliteStorage({ filename: ":memory:" });
    cleanups.push(() => storage.close());
    await expect(Engine.open({ storage, schema, modules, runScheduler: false, readCacheBytes: -1 })).rejects.toThrow(/readCacheBytes must be a number of bytes >= 0, got -1/);
  });
});

describe("the read cache's filing of scans", () => {
  /** A request for the entries after `n`'s key: requests differ only in their bounds' bytes. */
  const request = (n: number, readTs = 5): ScanRequest => ({
    indexId: "1:by_name",
    range: { lower: { key: new TextEncoder().encode(`k${n}`), inclusive: true } },
    order: "asc",
    readTs,
    limit: 2,
  });
  /** Storage whose every scan answers with one entry naming the request it answered, and counts reads. */
  const labelled = () => {
    const storage = {
      reads: 0,
      async getDocument() {
        return null;
      },
      async scan(req: ScanRequest): Promise<IndexEntry[]> {
        storage.reads += 1;
        const label = new TextDecoder().decode(req.range.lower!.key);
        return [{ key: req.range.lower!.key, doc: { id: label, table: "users", ts: 1, body: JSON.stringify({ label }) } }];
      },
    };
    return storage;
  };

  it("keeps apart two questions whose hashes collide, and drops either without losing the other", async () => {
    // Find two requests filed under the same 32-bit hash (a birthday search: ~80k tries).
    const seen = new Map<number, number>();
    let pair: [number, number] | null = null;
    for (let n = 0; pair === null; n++) {
      const hash = hashScan(request(n));
      const other = seen.get(hash);
      if (other !== undefined) pair = [other, n];
      else seen.set(hash, n);
    }
    const [a, b] = pair;
    const storage = labelled();
    const cache = new ReadCache(storage as unknown as Storage, { latest: 5, byIdIndexOf: () => null });
    const label = (entries: IndexEntry[] | undefined) => entries?.[0]?.doc.id;

    expect(label(await cache.scan(request(a)))).toBe(`k${a}`);
    expect(label(await cache.scan(request(b)))).toBe(`k${b}`);
    expect(cache.stats.entries).toBe(2);
    // Both answered from memory, each with its own answer.
    expect(label(cache.peekScan(request(a)))).toBe(`k${a}`);
    expect(label(cache.peekScan(request(b)))).toBe(`k${b}`);
    expect(storage.reads).toBe(2);

    // The index moves on: both are dead; re-reading `a` files it again beside nothing stale.
    cache.applyCommit(6, new Map([["1:by_name", []]]));
    expect(cache.peekScan(request(b))).toBeUndefined();
    expect(label(await cache.scan(request(a)))).toBe(`k${a}`);
    expect(label(cache.peekScan(request(a)))).toBe(`k${a}`);
    expect(cache.peekScan(request(b))).toBeUndefined();
    expect(label(await cache.scan(request(b)))).toBe(`k${b}`);
    expect(cache.stats.entries).toBe(2);
    // Replacing the older of the chain (`a`, now behind `b`) unlinks it from the middle.
    cache.applyCommit(6, new Map([["1:by_name", []]]));
    expect(label(await cache.scan(request(b)))).toBe(`k${b}`);
    expect(label(await cache.scan(request(a)))).toBe(`k${a}`);
    expect(label(cache.peekScan(request(a)))).toBe(`k${a}`);
    expect(label(cache.peekScan(request(b)))).toBe(`k${b}`);
    expect(cache.stats.entries).toBe(2);
  });

  it("files apart questions that differ only in order, limit, a bound's inclusiveness, or where the bytes split between the bounds", async () => {
    const bytes = (text: string) => new TextEncoder().encode(text);
    const base: ScanRequest = { indexId: "1:by_name", range: { lower: { key: bytes("ab"), inclusive: true }, upper: { key: bytes("c"), inclusive: false } }, order: "asc", readTs: 5, limit: 2 };
    const variants: ScanRequest[] = [
      base,
      { ...base, order: "desc" },
      { ...base, limit: 3 },
      { ...base, range: { lower: { key: bytes("ab"), inclusive: false }, upper: base.range.upper } },
      { ...base, range: { lower: base.range.lower, upper: { key: bytes("c"), inclusive: true } } },
      // The same bytes, "abc", split another way between the bounds.
      { ...base, range: { lower: { key: bytes("a"), inclusive: true }, upper: { key: bytes("bc"), inclusive: false } } },
      { ...base, range: { lower: { key: bytes("abc"), inclusive: true } } },
      { ...base, range: { upper: { key: bytes("abc"), inclusive: false } } },
      { ...base, indexId: "2:by_name" },
    ];
    // Every variant against every other, by the comparison a lookup makes once two requests'
    // hashes match (these do not collide: a cache test could not reach it).
    for (const [i, filed] of variants.entries()) {
      const flat = { ...flatScan(filed), indexId: filed.indexId };
      for (const [j, asked] of variants.entries()) expect(answers(flat, structuredClone(asked))).toBe(i === j);
    }
    // And through the cache: each finds its own answer.
    const storage = {
      async getDocument() {
        return null;
      },
      async scan(req: ScanRequest): Promise<IndexEntry[]> {
        const which = String(variants.indexOf(req));
        return [{ key: bytes(which), doc: { id: which, table: "users", ts: 1, body: "{}" } }];
      },
    };
    const cache = new ReadCache(storage as unknown as Storage, { latest: 5, byIdIndexOf: () => null });
    for (const variant of variants) await cache.scan(variant);
    expect(cache.stats.entries).toBe(variants.length);
    for (const [n, variant] of variants.entries()) expect(cache.peekScan(structuredClone(variant))?.[0]?.doc.id).toBe(String(n));
  });

  it("hands out a one-entry answer as new objects on every hit, so a caller changing them changes nothing cached", async () => {
    const storage = labelled();
    const cache = new ReadCache(storage as unknown as Storage, { latest: 5, byIdIndexOf: () => null });
    const stored = await cache.scan(request(1));
    const first = cache.peekScan(request(1))! as Array<IndexEntry & { doc: { decoded: { label: string } } }>;
    // The stored entry, and its document decoded (a flat one: a copy of its own for each hit).
    expect(first).toEqual([{ ...stored[0], doc: { ...stored[0]!.doc, decoded: { label: "k1" } } }]);
    first.push(first[0]!);
    first[0]!.doc.body = "changed";
    first[0]!.doc.decoded.label = "changed";
    const second = cache.peekScan(request(1))!;
    expect(second).not.toBe(first);
    expect(second).toEqual([{ key: new TextEncoder().encode("k1"), doc: { id: "k1", table: "users", ts: 1, body: JSON.stringify({ label: "k1" }), decoded: { label: "k1" } } }]);
    expect(storage.reads).toBe(1);
  });

  it("counts a decoded document against its byte budget, from the hit that decodes it", async () => {
    const cache = new ReadCache(labelled() as unknown as Storage, { latest: 5, byIdIndexOf: () => null });
    await cache.scan(request(1));
    const stored = cache.stats.bytes;
    cache.peekScan(request(1));
    const body = JSON.stringify({ label: "k1" });
    expect(cache.stats.bytes).toBe(stored + 2 * body.length);
    cache.peekScan(request(1));
    expect(cache.stats.bytes).toBe(stored + 2 * body.length);
  });

  it("once full, files an answer at its second miss, not its first: keys read once evict nothing", async () => {
    const storage = labelled();
    // Answers take some 240 bytes here: about ten fit in 2,400.
    const cache = new ReadCache(storage as unknown as Storage, { latest: 5, byIdIndexOf: () => null }, 2_400);
    let n = 0;
    while (cache.stats.refused === 0 && n < 100) await cache.scan(request(n++));
    expect(cache.stats.refused).toBe(1);
    const held = Array.from({ length: n - 1 }, (_, i) => i);
    expect(held.length).toBeGreaterThan(4);
    expect(cache.stats.entries).toBe(held.length);
    // The refused one was answered, not filed.
    expect(cache.peekScan(request(n - 1))).toBeUndefined();

    // Many keys asked for once each: every one is read and answered, none evicts a held answer.
    const readsBefore = storage.reads;
    for (let k = 1_000; k < 1_050; k++) expect((await cache.scan(request(k)))[0]!.doc.id).toBe(`k${k}`);
    expect(storage.reads - readsBefore).toBe(50);
    expect(cache.stats.entries).toBe(held.length);
    for (const k of held) expect(cache.peekScan(request(k))?.[0]?.doc.id).toBe(`k${k}`);

    // A key asked for again is filed at its second miss (evicting what it must), and hit from then on.
    await cache.scan(request(1_049));
    expect(cache.peekScan(request(1_049))?.[0]?.doc.id).toBe("k1049");
    expect(cache.stats.entries).toBeLessThanOrEqual(held.length);
    expect(cache.stats.bytes).toBeLessThanOrEqual(2_400);

    // Documents read by ID follow the same rule.
    const byId = new ReadCache({ ...storage, getDocument: async (id: string) => ({ id, table: "users", ts: 1, body: "{}" }) } as unknown as Storage, { latest: 5, byIdIndexOf: () => "1:by_id" }, 2_400);
    let d = 0;
    while (byId.stats.refused === 0 && d < 100) await byId.getDocument(`doc-${d++}`, 5);
    expect(byId.stats.refused).toBe(1);
    expect(byId.peekDocument(`doc-${d - 1}`, 5)).toBeUndefined();
    await byId.getDocument(`doc-${d - 1}`, 5);
    expect(byId.peekDocument(`doc-${d - 1}`, 5)?.id).toBe(`doc-${d - 1}`);
  });

  it("files copies: what the reader, the request's maker or storage later do to the objects they handed over changes nothing cached", async () => {
    const storage = labelled();
    const cache = new ReadCache(storage as unknown as Storage, { latest: 5, byIdIndexOf: () => "1:by_id" }, 1 << 20);
    const asked = request(7);
    const read = await cache.scan(asked);
    read[0]!.doc.body = "changed";
    read[0]!.key[0] = 0;
    asked.range.lower!.key[0] = 0;
    const hit = cache.peekScan(request(7));
    expect(hit?.[0]?.doc.id).toBe("k7");
    expect(hit?.[0]?.key).toEqual(new TextEncoder().encode("k7"));
    expect(JSON.parse(hit![0]!.doc.body)).toEqual({ label: "k7" });
    // It stays filed under the question asked, not under what the asker's key says now.
    expect(cache.peekScan({ ...request(7), range: { lower: { key: new Uint8Array([0, ...new TextEncoder().encode("7")]), inclusive: true } } })).toBeUndefined();

    const byId = new ReadCache({ ...storage, getDocument: async (id: string) => ({ id, table: "users", ts: 1, body: '{"name":"Ada"}' }) } as unknown as Storage, { latest: 5, byIdIndexOf: () => "1:by_id" }, 1 << 20);
    const version = (await byId.getDocument("doc-1", 5))!;
    version.body = "changed";
    expect(byId.peekDocument("doc-1", 5)?.body).toBe('{"name":"Ada"}');
  });
});

describe("the read cache's one-entry answers", () => {
  it("carries a unique lookup across this engine's own commit to its document, and answers with the new version", async () => {
    const engine = await open(await openSqliteStorage({ filename: ":memory:" }));
    await engine.runMutation("users:create", { name: "ada", score: 1 });
    expect(await score(engine, "ada")).toBe(1);
    await engine.runMutation("users:setScore", { name: "ada", score: 2 });
    // From the cache: carried across the commit, not read again.
    const misses = engine.reads.stats.misses;
    expect(await score(engine, "ada")).toBe(2);
    expect(await score(engine, "ada")).toBe(2);
    expect(engine.reads.stats.misses - misses).toBe(0);
  });

  it("carries an answer of one entry by the bounds it was asked with, inclusive or not, in either order, though it files them only as flat bytes", async () => {
    const bytes = (text: string) => new TextEncoder().encode(text);
    const text = (key: Uint8Array) => new TextDecoder().decode(key);
    // One entry inside every range below: the answer is filed as its one entry's fields only.
    const storage = {
      async getDocument() {
        return null;
      },
      async scan(): Promise<IndexEntry[]> {
        return [{ key: bytes("b"), doc: { id: "doc-b", table: "users", ts: 1, body: "{}" } }];
      },
    };
    // This engine's commit at 6 writes entries on both bounds and one between them. The upper
    // bound's bytes are above 0x7f ("é" is C3 A9), which the flat form keeps one to a character.
    const written = ["a", "bb", "é"];
    const own = {
      documents: written.map((name) => ({ id: `doc-${name}`, table: "users", body: "{}" })),
      indexes: written.map((name) => ({ indexId: "1:by_name", key: bytes(name), docId: `doc-${name}` })),
    };
    for (const order of ["asc", "desc"] as const) {
      for (const [lowerInclusive, upperInclusive, inOrder] of [
        [false, false, ["b", "bb"]],
        [true, false, ["a", "b", "bb"]],
        [false, true, ["b", "bb", "é"]],
        [true, true, ["a", "b", "bb", "é"]],
      ] as const) {
        const host = { latest: 5, byIdIndexOf: () => null };
        const cache = new ReadCache(storage as unknown as Storage, host);
        const asked = (readTs: number): ScanRequest => ({
          indexId: "1:by_name",
          range: { lower: { key: bytes("a"), inclusive: lowerInclusive }, upper: { key: bytes("é"), inclusive: upperInclusive } },
          order,
          readTs,
          limit: 10,
        });
        await cache.scan(asked(5));
        host.latest = 6;
        cache.applyCommit(6, new Map([["1:by_name", own.indexes.map((write) => write.key)]]), own);
        // Carried, not dropped: answered at 6 without a read, holding exactly the keys inside the bounds.
        const expected = order === "asc" ? [...inOrder] : [...inOrder].reverse();
        expect(cache.peekScan(asked(6))?.map((entry) => text(entry.key))).toEqual(expected);
      }
    }
  });
});

describe("the read cache's decoded documents", () => {
  const thingsSchema = defineSchema({
    things: defineTable({ name: v.string(), count: v.number(), tags: v.optional(v.array(v.string())) }).index("by_name", ["name"]),
  });
  const thingsModules = {
    things: {
      create: mutation({
        args: { name: v.string(), count: v.number(), tags: v.optional(v.array(v.string())) },
        handler: (ctx, args) => ctx.db.insert("things", args),
      }),
      read: query({ args: { name: v.string() }, handler: (ctx, { name }) => ctx.db.query("things").withIndex("by_name", (q) => q.eq("name", name)).unique() }),
      /** Changes everything it can reach of the document it read, then reads it again. */
      mangle: query({
        args: { name: v.string() },
        handler: async (ctx, { name }) => {
          const byName = () => ctx.db.query("things").withIndex("by_name", (q) => q.eq("name", name)).unique();
          const doc = (await byName())!;
          doc.count += 100;
          doc.extra = "added";
          doc.tags?.push("pushed");
          delete doc.name;
          return await byName();
        },
      }),
      /** Lists every thing, changes what it can reach of each, then lists them again. */
      mangleList: query({
        args: {},
        handler: async (ctx) => {
          const all = () => ctx.db.query("things").withIndex("by_name").collect();
          for (const doc of await all()) {
            doc.count += 100;
            doc.extra = "added";
            doc.tags?.push("pushed");
            delete doc.name;
          }
          return await all();
        },
      }),
      getById: query({ args: { id: v.id("things") }, handler: (ctx, { id }) => ctx.db.get(id) }),
      /** The same by ID: changes what it read, then reads it again. */
      mangleById: query({
        args: { id: v.id("things") },
        handler: async (ctx, { id }) => {
          const doc = (await ctx.db.get(id))!;
          doc.count += 100;
          doc.extra = "added";
          doc.tags?.push("pushed");
          return await ctx.db.get(id);
        },
      }),
      /** Finds it by name, changes it, then reads it by ID (the transaction reuses the scanned version). */
      scanThenGet: query({
        args: { name: v.string() },
        handler: async (ctx, { name }) => {
          const doc = (await ctx.db.query("things").withIndex("by_name", (q) => q.eq("name", name)).unique())!;
          doc.count += 100;
          doc.extra = "added";
          doc.tags?.push("pushed");
          return await ctx.db.get(doc._id);
        },
      }),
    },
  };

  it("hands every reader a document of its own: what one handler changes, the next does not see (flat and nested documents)", async () => {
    const engine = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema: thingsSchema, modules: thingsModules, runScheduler: false });
    cleanups.push(() => engine.close());
    await engine.runMutation("things:create", { name: "flat", count: 1 });
    await engine.runMutation("things:create", { name: "nested", count: 2, tags: ["a"] });
    for (const [name, original] of [["flat", { name: "flat", count: 1 }], ["nested", { name: "nested", count: 2, tags: ["a"] }]] as const) {
      expect(await engine.runQuery("things:read", { name })).toMatchObject(original);
      const hits = engine.reads.stats.hits;
      // The second read in the same run gets a fresh document too, not the one it just changed.
      expect(await engine.runQuery("things:mangle", { name })).toEqual(expect.objectContaining(original));
      expect(await engine.runQuery("things:mangle", { name })).not.toHaveProperty("extra");
      const again = (await engine.runQuery("things:read", { name })) as Record<string, unknown>;
      expect(again).toMatchObject(original);
      expect(again).not.toHaveProperty("extra");
      expect(Object.keys(again).sort()).toEqual(Object.keys({ _id: 0, _creationTime: 0, ...original }).sort());
      // All of it answered from the cache: the path under test.
      expect(engine.reads.stats.hits - hits).toBe(5);
    }
  });

  it("hands every reader of a list documents of its own too, whether the list was read from storage, from the cache, or carried across a commit", async () => {
    const engine = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema: thingsSchema, modules: thingsModules, runScheduler: false });
    cleanups.push(() => engine.close());
    await engine.runMutation("things:create", { name: "flat", count: 1 });
    await engine.runMutation("things:create", { name: "nested", count: 2, tags: ["a"] });
    const originals = [expect.objectContaining({ name: "flat", count: 1 }), expect.objectContaining({ name: "nested", count: 2, tags: ["a"] })];
    for (let run = 0; run < 3; run++) {
      const listed = (await engine.runQuery("things:mangleList", {})) as Array<Record<string, unknown>>;
      expect(listed).toEqual(originals);
      for (const doc of listed) expect(doc).not.toHaveProperty("extra");
    }
    // Carried across this engine's commit: the entries it left alone keep their decoded copies.
    await engine.runMutation("things:create", { name: "other", count: 3 });
    for (let run = 0; run < 2; run++) {
      const hits = engine.reads.stats.hits;
      expect(await engine.runQuery("things:mangleList", {})).toEqual([...originals, expect.objectContaining({ name: "other", count: 3 })]);
      expect(engine.reads.stats.hits - hits).toBe(2);
    }
  });

  it("hands every reader of a document by ID a document of its own too, and one found by a scan and then read by ID", async () => {
    const engine = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema: thingsSchema, modules: thingsModules, runScheduler: false });
    cleanups.push(() => engine.close());
    const flat = (await engine.runMutation("things:create", { name: "flat", count: 1 })).value as string;
    const nested = (await engine.runMutation("things:create", { name: "nested", count: 2, tags: ["a"] })).value as string;
    for (const [id, original] of [[flat, { name: "flat", count: 1 }], [nested, { name: "nested", count: 2, tags: ["a"] }]] as const) {
      expect(await engine.runQuery("things:getById", { id })).toMatchObject(original);
      const hits = engine.reads.stats.hits;
      expect(await engine.runQuery("things:mangleById", { id })).toEqual(expect.objectContaining(original));
      expect(await engine.runQuery("things:mangleById", { id })).not.toHaveProperty("extra");
      const again = (await engine.runQuery("things:getById", { id })) as Record<string, unknown>;
      expect(again).toEqual({ _id: id, _creationTime: expect.any(Number), ...original });
      expect(engine.reads.stats.hits - hits).toBe(5);
      // The first run files the lookup by name; the second finds it in the cache, decoded.
      for (let run = 0; run < 2; run++) {
        const scanned = (await engine.runQuery("things:scanThenGet", { name: original.name })) as Record<string, unknown>;
        expect(scanned).toEqual({ _id: id, _creationTime: expect.any(Number), ...original });
      }
    }
  });
});

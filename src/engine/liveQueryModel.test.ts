/**
 * Live queries end to end: every live query's latest pushed result must
 * equal a fresh one-shot run of the same query at the snapshot the flush published, in the
 * engine (random writes, with and without the read cache, slow storage, a second engine on the
 * file) and through a real server and client (network cuts, sign-ins, watches coming and going).
 *
 * And a live query that keeps failing with the same message is pushed again when its error's
 * data (or code) changes: it was not (`LiveQuery.update` fingerprinted a failure by its message
 * alone), and clients kept the first error's data for good.
 *
 * Deeper runs: LR_SEEDS=30 (engine models), LR_E2E_SEEDS=10 (server and client).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { defineSchema, defineTable, mutation, query } from "../server/index.js";
import { v, WalkinError } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { withLatency } from "../storage/latency.js";
import type { Timestamp } from "../storage/types.js";
import { Engine, type Caller, type QueryOutcome } from "./engine.js";
import { settle } from "./fixtures/settle.js";
import { seededRandom } from "../storage/conformance/history.js";

const schema = defineSchema({
  items: defineTable({ name: v.string(), n: v.number(), owner: v.optional(v.string()) })
    .index("by_n", ["n"])
    .index("by_name_n", ["name", "n"]),
});

const modules = {
  w: {
    insert: mutation({ args: { name: v.string(), n: v.number() }, handler: (ctx, args) => ctx.db.insert("items", args) }),
    patch: mutation({
      args: { id: v.id("items"), n: v.optional(v.number()), name: v.optional(v.string()) },
      handler: async (ctx, { id, ...rest }) => {
        if (await ctx.db.get(id)) await ctx.db.patch(id, rest);
      },
    }),
    replace: mutation({
      args: { id: v.id("items"), name: v.string(), n: v.number() },
      handler: async (ctx, { id, ...rest }) => {
        if (await ctx.db.get(id)) await ctx.db.replace(id, rest);
      },
    }),
    remove: mutation({
      args: { id: v.id("items") },
      handler: async (ctx, { id }) => {
        if (await ctx.db.get(id)) await ctx.db.delete(id);
      },
    }),
    multi: mutation({
      args: { ids: v.array(v.id("items")), n: v.number(), name: v.string() },
      handler: async (ctx, { ids, n, name }) => {
        await ctx.db.insert("items", { name, n });
        for (const [i, id] of ids.entries()) {
          const doc = await ctx.db.get(id);
          if (!doc) continue;
          if (i % 3 === 0) await ctx.db.delete(id);
          else await ctx.db.patch(id, { n: n + i, name });
        }
        await ctx.db.insert("items", { name, n: n + 1 });
      },
    }),
  },
  cart: {
    add: mutation({
      args: {},
      handler: async (ctx) => {
        await ctx.db.insert("items", { name: "cart", n: 0 });
      },
    }),
    /** Fails once the cart holds anything, saying in the error's data how many items it holds. */
    check: query({
      args: {},
      handler: async (ctx) => {
        const items = await ctx.db.query("items").withIndex("by_name_n", (q: any) => q.eq("name", "cart")).collect();
        if (items.length > 0) throw new WalkinError("The cart is full", { data: { count: items.length } });
        return "empty";
      },
    }),
  },
  q: {
    firstFiltered: query({
      args: { min: v.number(), order: v.union(v.literal("asc"), v.literal("desc")) },
      handler: (ctx, { min, order }) =>
        ctx.db.query("items").withIndex("by_n").order(order).filter((q: any) => q.gte(q.field("n"), min)).first(),
    }),
    takeFiltered: query({
      args: { name: v.string(), k: v.number(), order: v.union(v.literal("asc"), v.literal("desc")) },
      handler: (ctx, { name, k, order }) =>
        ctx.db.query("items").withIndex("by_n").order(order).filter((q: any) => q.eq(q.field("name"), name)).take(k),
    }),
    range: query({
      args: { lo: v.number(), hi: v.number(), k: v.number(), order: v.union(v.literal("asc"), v.literal("desc")) },
      handler: (ctx, { lo, hi, k, order }) =>
        ctx.db.query("items").withIndex("by_n", (q: any) => q.gt("n", lo).lt("n", hi)).order(order).take(k),
    }),
    rangeIncl: query({
      args: { name: v.string(), lo: v.number(), hi: v.number(), order: v.union(v.literal("asc"), v.literal("desc")) },
      handler: (ctx, { name, lo, hi, order }) =>
        ctx.db.query("items").withIndex("by_name_n", (q: any) => q.eq("name", name).gte("n", lo).lte("n", hi)).order(order).collect(),
    }),
    page: query({
      args: { cursor: v.union(v.string(), v.null()), endCursor: v.optional(v.union(v.string(), v.null())), k: v.number(), order: v.union(v.literal("asc"), v.literal("desc")), name: v.optional(v.string()) },
      handler: (ctx, { cursor, endCursor, k, order, name }) => {
        let q = ctx.db.query("items").withIndex("by_n").order(order);
        if (name !== undefined) q = q.filter((f: any) => f.eq(f.field("name"), name));
        return q.paginate({ numItems: k, cursor, endCursor: endCursor ?? null });
      },
    }),
    iterate: query({
      args: { k: v.number(), order: v.union(v.literal("asc"), v.literal("desc")) },
      handler: async (ctx, { k, order }) => {
        const out = [];
        for await (const doc of ctx.db.query("items").withIndex("by_name_n").order(order)) {
          out.push(doc);
          if (out.length >= k) break;
        }
        return out;
      },
    }),
    manual: query({
      args: { k: v.number() },
      handler: async (ctx, { k }) => {
        const it = ctx.db.query("items").withIndex("by_n")[Symbol.asyncIterator]();
        const out = [];
        for (let i = 0; i < k; i++) {
          const next = await it.next();
          if (next.done) break;
          out.push(next.value);
        }
        return out;
      },
    }),
    gets: query({ args: { ids: v.array(v.id("items")) }, handler: (ctx, { ids }) => Promise.all(ids.map((id) => ctx.db.get(id))) }),
    unique: query({
      args: { name: v.string(), n: v.number() },
      handler: async (ctx, { name, n }) => {
        try {
          return await ctx.db.query("items").withIndex("by_name_n", (q: any) => q.eq("name", name).eq("n", n)).unique();
        } catch (e) {
          return "many";
        }
      },
    }),
    throwing: query({
      args: { name: v.string() },
      handler: async (ctx, { name }) => {
        const docs = await ctx.db.query("items").withIndex("by_name_n", (q: any) => q.eq("name", name)).collect();
        if (docs.length % 2 === 1) throw new WalkinError(`odd ${docs.length}`);
        return docs.length;
      },
    }),
    whoami: query({
      args: { name: v.string() },
      handler: async (ctx, { name }) => {
        const first = await ctx.db.query("items").withIndex("by_name_n", (q: any) => q.eq("name", name)).first();
        if (first === null || first.n % 2 === 0) return first?.n ?? null;
        return `${first.n}:${(await ctx.auth.getUserIdentity())?.subject ?? "anon"}`;
      },
    }),
  },
};

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function openEngine(options: { readCacheBytes?: number; latency?: () => number; filename?: string } = {}): Promise<Engine> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-live-review-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const raw = await openSqliteStorage({ filename: options.filename ?? path.join(dir, "app.sqlite") });
  const storage = options.latency ? withLatency(raw, { read: [0, 2], commit: [0, 2], random: options.latency }) : raw;
  const engine = await Engine.open({ storage, schema, modules, runScheduler: false, readCacheBytes: options.readCacheBytes });
  cleanups.push(() => engine.close());
  return engine;
}

async function oneShot(engine: Engine, p: string, args: unknown, caller: Caller, ts: Timestamp): Promise<unknown> {
  const fn = engine.functions.resolve(p, "query", caller);
  const run = await engine.executeQuery(fn, p, args, caller, ts);
  return run.outcome.ok ? { ok: JSON.parse(JSON.stringify(run.outcome.value)) } : { error: run.outcome.error.message };
}

const show = (outcome: QueryOutcome) => (outcome.ok ? { ok: JSON.parse(JSON.stringify(outcome.value)) } : { error: outcome.error.message });

function rng(seed: number) {
  const next = seededRandom(seed);
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}

const NAMES = ["a", "b", "c", "d"];

async function model(seed: number, options: { readCacheBytes?: number; latency?: boolean; twoEngines?: boolean } = {}) {
  const r = rng(seed);
  let filename: string | undefined;
  if (options.twoEngines) {
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-live-review-shared-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    filename = path.join(dir, "shared.sqlite");
  }
  const engine = await openEngine({ readCacheBytes: options.readCacheBytes, latency: options.latency ? rng(seed + 1000).next : undefined, filename });
  const other = options.twoEngines ? await openEngine({ filename }) : engine;
  const writer = () => (options.twoEngines && r.int(2) === 0 ? other : engine);
  const ids: string[] = [];
  for (let i = 0; i < 25; i++) ids.push((await engine.runMutation("w:insert", { name: r.pick(NAMES), n: r.int(20) })).value as string);
  // Cursors from pages at the start.
  const order = () => r.pick(["asc", "desc"] as const);
  const cursors: Array<{ order: "asc" | "desc"; cursor: string }> = [];
  for (let i = 0; i < 6; i++) {
    const o = order();
    const res: any = await engine.runQuery("q:page", { cursor: null, k: 2 + r.int(6), order: o });
    cursors.push({ order: o, cursor: res.continueCursor });
  }
  const subs: Array<{ path: string; args: any; caller: Caller; latest: QueryOutcome }> = [];
  const callers: Caller[] = [{}, { identity: { subject: "u1", issuer: "t", tokenIdentifier: "t|u1" } }, { identity: { subject: "u2", issuer: "t", tokenIdentifier: "t|u2" } }];
  const queryArgs = (): [string, any] => {
    switch (r.int(13)) {
      case 0: return ["q:firstFiltered", { min: r.int(25), order: order() }];
      case 1: return ["q:takeFiltered", { name: r.pick(NAMES), k: 1 + r.int(4), order: order() }];
      case 2: return ["q:range", { lo: r.int(20), hi: r.int(25), k: 1 + r.int(5), order: order() }];
      case 3: return ["q:rangeIncl", { name: r.pick(NAMES), lo: r.int(20), hi: r.int(25), order: order() }];
      case 4: return ["q:page", { cursor: null, k: 1 + r.int(5), order: order(), ...(r.int(2) ? { name: r.pick(NAMES) } : {}) }];
      case 5: {
        const c = r.pick(cursors);
        return ["q:page", { cursor: c.cursor, k: 1 + r.int(5), order: c.order }];
      }
      case 6: {
        const c = r.pick(cursors);
        return ["q:page", { cursor: null, endCursor: c.cursor, k: 1 + r.int(5), order: c.order }];
      }
      case 7: return ["q:iterate", { k: 1 + r.int(6), order: order() }];
      case 8: return ["q:manual", { k: 1 + r.int(6) }];
      case 9: return ["q:gets", { ids: [r.pick(ids), r.pick(ids)] }];
      case 10: return ["q:unique", { name: r.pick(NAMES), n: r.int(20) }];
      case 11: return ["q:throwing", { name: r.pick(NAMES) }];
      default: return ["q:whoami", { name: r.pick(NAMES) }];
    }
  };
  const subscribeOne = async () => {
    const [p, args] = queryArgs();
    const caller = r.pick(callers);
    const entry = { path: p, args, caller, latest: undefined as unknown as QueryOutcome };
    subs.push(entry);
    const sub = await engine.subscriptions.subscribe(p, args, caller, (outcome) => (entry.latest = outcome));
    if (entry.latest === undefined) entry.latest = sub.outcome;
    cleanups.push(async () => sub.unsubscribe());
  };
  for (let i = 0; i < 20; i++) {
    const [p, args] = queryArgs();
    const caller = r.pick(callers);
    const entry = { path: p, args, caller, latest: undefined as unknown as QueryOutcome };
    const sub = await engine.subscriptions.subscribe(p, args, caller, (outcome) => (entry.latest = outcome));
    entry.latest = sub.outcome;
    subs.push(entry);
    cleanups.push(async () => sub.unsubscribe());
  }
  const failures: string[] = [];
  for (let step = 0; step < 60; step++) {
    const burst = 1 + r.int(3);
    const pending: Promise<unknown>[] = [];
    for (let b = 0; b < burst; b++) {
      const id = r.pick(ids);
      switch (r.int(6)) {
        case 0: pending.push(writer().runMutation("w:insert", { name: r.pick(NAMES), n: r.int(20) }).then((res) => ids.push(res.value as string))); break;
        case 1: pending.push(writer().runMutation("w:patch", { id, n: r.int(20) })); break;
        case 2: pending.push(writer().runMutation("w:patch", { id, name: r.pick(NAMES) })); break;
        case 3: pending.push(writer().runMutation("w:replace", { id, name: r.pick(NAMES), n: r.int(20) })); break;
        case 4: pending.push(writer().runMutation("w:remove", { id })); break;
        default: pending.push(writer().runMutation("w:multi", { ids: [r.pick(ids), r.pick(ids), r.pick(ids)], n: r.int(20), name: r.pick(NAMES) })); break;
      }
    }
    if (options.latency && r.int(2) === 0) pending.push(subscribeOne());
    await Promise.all(pending);
    if (options.twoEngines) await engine.refreshFromStorage();
    await settle(engine);
    const ts = engine.subscriptions.publishedTimestamp;
    expect(ts).toBe(engine.latestTimestamp);
    for (const s of subs) {
      const fresh = await oneShot(engine, s.path, s.args, s.caller, ts);
      const live = show(s.latest);
      if (JSON.stringify(fresh) !== JSON.stringify(live)) {
        failures.push(`step ${step} ${s.path} ${JSON.stringify(s.args)} ${JSON.stringify(s.caller.identity?.subject)}: live ${JSON.stringify(live)} fresh ${JSON.stringify(fresh)}`);
      }
    }
    if (failures.length > 0) break;
  }
  expect(failures).toEqual([]);
}

describe("live queries against one-shot runs", () => {
  for (const seed of (process.env.LR_SEEDS ? Array.from({ length: Number(process.env.LR_SEEDS) }, (_, i) => 10 + i) : [1, 2, 3, 4])) {
    it(`model, cached (seed ${seed})`, async () => model(seed), 60_000);
    it(`model, no cache (seed ${seed})`, async () => model(seed, { readCacheBytes: 0 }), 60_000);
    it(`model, two engines on one file (seed ${seed})`, async () => model(seed, { twoEngines: true }), 60_000);
    it(`model, latency, subscribing while writing (seed ${seed})`, async () => model(seed, { latency: true }), 60_000);
  }
});

describe("a live query that keeps failing", () => {
  it("pushes a new error when only the error's data changed (same message)", async () => {
    const engine = await openEngine();
    let latest: QueryOutcome | undefined;
    const sub = await engine.subscriptions.subscribe("cart:check", {}, {}, (outcome) => (latest = outcome));
    cleanups.push(async () => sub.unsubscribe());
    latest = sub.outcome;
    expect(show(latest)).toEqual({ ok: "empty" });
    await engine.runMutation("cart:add", {});
    await settle(engine);
    expect((latest as any).error.data).toEqual({ count: 1 });
    await engine.runMutation("cart:add", {});
    await settle(engine);
    const fresh = await engine.executeQuery(engine.functions.resolve("cart:check", "query", {}), "cart:check", {}, {}, engine.subscriptions.publishedTimestamp);
    expect((fresh.outcome as any).error.data).toEqual({ count: 2 });
    // The subscriber still holds the error of one item: never told of the second.
    expect((latest as any).error.data).toEqual({ count: 2 });
  });
});

// ------------------------------------------------------------------ end to end, through a real server and client

describe("live queries through a real server and client, with network cuts and sign-ins", () => {
  it("a client watching a failing query sees the error's new data", async () => {
    const { serveApp, connectClient, cleanUp, until } = await import("../browser/fixtures/liveClients.js");
    const { anyApi } = await import("../server/index.js");
    cleanups.push(cleanUp);
    const backend = await serveApp({ schema, modules } as never);
    const client = connectClient(backend.server.url, { initialDelayMs: 2, maxDelayMs: 20 });
    const watch = client.watchQuery((anyApi as any).cart.check, {});
    const errorData = () => {
      try {
        watch.localQueryResult();
        return null;
      } catch (error: any) {
        return error.data;
      }
    };
    const stop = watch.onUpdate(() => {});
    cleanups.push(async () => stop());
    await until(watch as never, (value) => value === "empty");
    await client.mutation((anyApi as any).cart.add, {});
    await new Promise<void>((resolve) => { const check = () => (errorData()?.count === 1 ? resolve() : setTimeout(check, 5)); check(); });
    await client.mutation((anyApi as any).cart.add, {});
    // The mutation resolved, so the client holds results that include it: the cart holds 2 items
    // (the server's one-shot run says so), but the watch still shows the error of 1 item.
    await expect(backend.engine.runQuery("cart:check", {})).rejects.toMatchObject({ data: { count: 2 } });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(errorData()).toEqual({ count: 2 });
    // A one-shot through the client shares the stale subscription, so it is wrong too.
    await expect(client.query((anyApi as any).cart.check, {})).rejects.toMatchObject({ data: { count: 2 } });
  });

  const authenticate = async (_ctx: unknown, token: string) =>
    token.startsWith("good:") ? { subject: token.slice(5), issuer: "test", tokenIdentifier: `test|${token.slice(5)}` } : null;

  const e2eSeeds = process.env.LR_E2E_SEEDS ? Array.from({ length: Number(process.env.LR_E2E_SEEDS) }, (_, i) => 50 + i) : [1, 2];
  for (const [seed, congested] of [...e2eSeeds.map((seed) => [seed, false] as const), ...e2eSeeds.map((seed) => [seed, true] as const)]) {
    it(`every watch converges to a one-shot run (seed ${seed}${congested ? ", every Transition held back while anything is queued" : ""})`, async () => {
      const { serveApp, connectClient, cleanUp, sockets } = await import("../browser/fixtures/liveClients.js");
      const { anyApi } = await import("../server/index.js");
      const { startServer } = await import("../transport/index.js");
      cleanups.push(cleanUp);
      const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-live-review-e2e-"));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      let engine: Engine;
      let url: string;
      if (congested) {
        engine = await Engine.open({ storage: await openSqliteStorage({ filename: path.join(dir, "db.sqlite") }), schema, modules, authenticate, runScheduler: false } as never);
        const server = await startServer({ engine, port: 0, log: () => {}, limits: { sendBufferBytes: 1 } });
        cleanups.push(async () => {
          await server.close();
          await engine.close();
        });
        url = server.url;
      } else {
        const backend = await serveApp({ schema, modules, authenticate } as never, { filename: path.join(dir, "db.sqlite") });
        engine = backend.engine;
        url = backend.server.url;
      }
      const client = connectClient(url, { initialDelayMs: 2, maxDelayMs: 20 });
      const r = rng(seed);
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) ids.push((await engine.runMutation("w:insert", { name: r.pick(NAMES), n: r.int(20) })).value as string);
      const order = () => r.pick(["asc", "desc"] as const);
      const queryArgs = (): [string, any] => {
        switch (r.int(9)) {
          case 0: return ["q:firstFiltered", { min: r.int(25), order: order() }];
          case 1: return ["q:takeFiltered", { name: r.pick(NAMES), k: 1 + r.int(4), order: order() }];
          case 2: return ["q:range", { lo: r.int(20), hi: r.int(25), k: 1 + r.int(5), order: order() }];
          case 3: return ["q:page", { cursor: null, k: 1 + r.int(5), order: order() }];
          case 4: return ["q:gets", { ids: [r.pick(ids), r.pick(ids)] }];
          case 5: return ["q:throwing", { name: r.pick(NAMES) }];
          case 6: return r.int(2) === 0 ? ["cart:check", {}] : ["q:iterate", { k: 1 + r.int(6), order: order() }];
          default: return ["q:whoami", { name: r.pick(NAMES) }];
        }
      };
      const watches: Array<{ path: string; args: any; stop: () => void; read: () => unknown }> = [];
      const addWatch = () => {
        const [p, args] = queryArgs();
        const [mod, fn] = p.split(":") as [string, string];
        const watch = client.watchQuery((anyApi as any)[mod][fn], args);
        const stop = watch.onUpdate(() => {});
        const read = () => {
          try {
            return { ok: JSON.parse(JSON.stringify(watch.localQueryResult() ?? null)) };
          } catch (error: any) {
            return { error: error.message, data: error.data ?? null };
          }
        };
        watches.push({ path: p, args, stop, read });
      };
      for (let i = 0; i < 12; i++) addWatch();
      let token: string | null = null;
      const failures: string[] = [];
      for (let step = 0; step < 40 && failures.length === 0; step++) {
        const what = r.int(10);
        if (what < 5) {
          const pending: Promise<unknown>[] = [];
          for (let b = 0; b < 1 + r.int(3); b++) {
            const id = r.pick(ids);
            switch (r.int(5)) {
              case 0: pending.push(engine.runMutation("w:insert", { name: r.pick(NAMES), n: r.int(20) }).then((res) => ids.push(res.value as string))); break;
              case 1: pending.push(engine.runMutation("w:patch", { id, n: r.int(20) })); break;
              case 2: pending.push(engine.runMutation("w:remove", { id })); break;
              case 3: pending.push(engine.runMutation("cart:add", {})); break;
              default: pending.push(engine.runMutation("w:replace", { id, name: r.pick(NAMES), n: r.int(20) })); break;
            }
          }
          await Promise.all(pending);
        } else if (what === 5) {
          sockets.at(-1)?.terminate();
        } else if (what === 6) {
          addWatch();
        } else if (what === 7 && watches.length > 1) {
          watches.splice(r.int(watches.length), 1)[0]!.stop();
        } else if (what === 8) {
          token = r.pick(["good:u1", "good:u2", null]);
          const t = token;
          if (t === null) client.clearAuth();
          else client.setAuth(async () => t);
        } else {
          await engine.runMutation("w:multi", { ids: [r.pick(ids), r.pick(ids)], n: r.int(20), name: r.pick(NAMES) });
        }
        if (r.int(3) === 0) continue; // let changes pile up
        await settle(engine);
        const caller: Caller = { token, fromClient: true };
        let mismatches: string[] = [];
        for (let attempt = 0; attempt < 60; attempt++) {
          await new Promise((resolve) => setTimeout(resolve, 10));
          await settle(engine);
          const ts = engine.latestTimestamp;
          mismatches = [];
          for (const w of watches) {
            const fresh: any = await oneShot(engine, w.path, w.args, caller, ts);
            const expected = fresh.ok !== undefined ? { ok: fresh.ok } : fresh;
            const seen: any = w.read();
            const got = seen.error !== undefined ? { error: seen.error } : seen;
            if (fresh.error !== undefined) {
              const run = await engine.executeQuery(engine.functions.resolve(w.path, "query", caller), w.path, w.args, caller, ts);
              expected.data = (run.outcome as any).error?.data ?? null;
              got.data = seen.data;
            }
            if (JSON.stringify(expected) !== JSON.stringify(got)) mismatches.push(`${w.path} ${JSON.stringify(w.args)}: client ${JSON.stringify(got)} fresh ${JSON.stringify(expected)}`);
          }
          if (mismatches.length === 0) break;
        }
        if (mismatches.length > 0) failures.push(`step ${step} (token ${token}): ${mismatches.join("; ")}`);
      }
      expect(failures).toEqual([]);
    }, 120_000);
  }
});

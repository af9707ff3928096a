/**
 * Serializable mutations with several engines (nodes) on one PostgreSQL schema.
 *
 * Each race is forced, not hoped for: a node's next commit is held in its storage hook
 * (`interleave`) until a conflicting mutation on another node has committed. The held
 * mutation then commits after it, so in timestamp order (which is commit and visibility order)
 * it runs second, and what it wrote must say it saw the other's write: it must have been
 * refused and re-run. Cases: write skew through index ranges (gt/lt bounds, descending order),
 * reads of the first n rows (first, a filtered first, an iterator left open, unique, take,
 * paginate) with an insert before the nth, a
 * document read by ID that another node deletes or replaces, reads of `ctx.db.system`, reads
 * made through ctx.runQuery and ctx.runMutation, counters incremented on three nodes with
 * commits held at random, and queries (run once or live) that must never see half of another
 * node's mutation. Each race runs twice: with the other node's commit learned inside the commit
 * lock, and learned before the commit (`When`).
 */
import { afterEach, describe, expect, it } from "vitest";
import { Engine } from "../../engine/engine.js";
import { anyApi, defineSchema, defineTable, mutation, query } from "../../server/index.js";
import { v } from "../../values/index.js";
import { seededChoices } from "../conformance/history.js";
import type { PostgresStorage } from "./postgresStorage.js";
import { SharedHookedStorage } from "./sharedHookedStorage.js";
import { openTestSchema } from "./testDatabase.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const schema = defineSchema({
  slots: defineTable({ room: v.string(), at: v.number(), by: v.string() }).index("by_room_at", ["room", "at"]),
  scores: defineTable({ name: v.string(), score: v.number() }).index("by_score", ["score"]).index("by_name", ["name"]),
  summaries: defineTable({ of: v.string(), names: v.array(v.string()) }).index("by_of", ["of"]),
  parents: defineTable({ v: v.number() }),
  children: defineTable({ parent: v.id("parents"), v: v.number() }).index("by_parent", ["parent"]),
  counters: defineTable({ name: v.string(), n: v.number() }).index("by_name", ["name"]),
  pairs: defineTable({ side: v.string(), v: v.number() }).index("by_side", ["side"]),
});

/** How many times each handler ran (first runs and re-runs), by a label its arguments give. */
const runs = new Map<string, number>();
const ran = (label: string) => runs.set(label, (runs.get(label) ?? 0) + 1);

const api = anyApi as any;

type Order = "asc" | "desc";

/** The names of the first `n` rows of `q`, read the way `how` says (`summarize`). */
async function firstRows(q: any, how: string, n: number, cursorAfter: number | undefined): Promise<string[]> {
  type Row = { name: string };
  switch (how) {
    case "first":
      return [((await q.first()) as Row | null)?.name ?? "-"];
    case "filter":
      return [((await q.filter((f: any) => f.gt(f.field("score"), 25)).first()) as Row | null)?.name ?? "-"];
    case "next": {
      // The first row taken by hand, the iterator left open: its read must count all the same.
      const row = (await q[Symbol.asyncIterator]().next()) as IteratorResult<Row>;
      return [row.done ? "-" : row.value.name];
    }
    case "take":
      return ((await q.take(n)) as Row[]).map((s) => s.name);
    case "iterate": {
      const names: string[] = [];
      for await (const s of q as AsyncIterable<Row>) {
        names.push(s.name);
        if (names.length === n) break;
      }
      return names;
    }
    default: {
      // The page after the first `cursorAfter` rows (the cursor a client would hold), or the first.
      const cursor = cursorAfter === undefined ? null : ((await q.paginate({ numItems: cursorAfter, cursor: null })).continueCursor as string);
      return ((await q.paginate({ numItems: n, cursor })).page as Row[]).map((s) => s.name);
    }
  }
}

const modules = {
  s: {
    /** Books `at` in `room` only if nothing is booked in (lo, hi): the write skew of two bookings. */
    bookIfFree: mutation({
      args: { room: v.string(), at: v.number(), lo: v.number(), hi: v.number(), order: v.string(), by: v.string() },
      handler: async (ctx, { room, at, lo, hi, order, by }) => {
        ran(by);
        const taken = await ctx.db.query("slots").withIndex("by_room_at", (q) => q.eq("room", room).gt("at", lo).lt("at", hi)).order(order as Order).collect();
        if (taken.length > 0) return false;
        await ctx.db.insert("slots", { room, at, by });
        return true;
      },
    }),
    /** The same booking, its read made through ctx.runQuery. */
    bookIfFreeViaQuery: mutation({
      args: { room: v.string(), at: v.number(), lo: v.number(), hi: v.number(), by: v.string() },
      handler: async (ctx, { room, at, lo, hi, by }) => {
        ran(by);
        const taken = await ctx.runQuery(api.s.takenIn, { room, lo, hi });
        if (taken > 0) return false;
        await ctx.db.insert("slots", { room, at, by });
        return true;
      },
    }),
    /** The same booking, done whole by a mutation called with ctx.runMutation. */
    bookIfFreeViaMutation: mutation({
      args: { room: v.string(), at: v.number(), lo: v.number(), hi: v.number(), by: v.string() },
      handler: async (ctx, args) => {
        ran(`${args.by} outer`);
        return ctx.runMutation(api.s.bookIfFree, { ...args, order: "asc" });
      },
    }),
    takenIn: query({
      args: { room: v.string(), lo: v.number(), hi: v.number() },
      handler: async (ctx, { room, lo, hi }) =>
        (await ctx.db.query("slots").withIndex("by_room_at", (q) => q.eq("room", room).gt("at", lo).lt("at", hi)).collect()).length,
    }),
    slotsIn: query({
      args: { room: v.string() },
      handler: async (ctx, { room }) =>
        (await ctx.db.query("slots").withIndex("by_room_at", (q) => q.eq("room", room)).collect()).map((s) => [s.at, s.by]),
    }),
    addScore: mutation({
      args: { name: v.string(), score: v.number() },
      handler: async (ctx, args) => {
        await ctx.db.insert("scores", args);
      },
    }),
    /** Records the names the read `how` returns (first n by score): what it saw, for the test to check. */
    summarize: mutation({
      args: { of: v.string(), how: v.string(), n: v.number(), order: v.string(), cursorAfter: v.optional(v.number()) },
      handler: async (ctx, { of, how, n, order, cursorAfter }) => {
        ran(of);
        const names = await firstRows(ctx.db.query("scores").withIndex("by_score").order(order as Order), how, n, cursorAfter);
        await ctx.db.insert("summaries", { of, names });
        return names;
      },
    }),
    /** Inserts `name` unless a row of that name exists (unique() on an index). */
    addUnique: mutation({
      args: { name: v.string(), score: v.number() },
      handler: async (ctx, { name, score }) => {
        ran(`unique ${score}`);
        if ((await ctx.db.query("scores").withIndex("by_name", (q) => q.eq("name", name)).unique()) !== null) return false;
        await ctx.db.insert("scores", { name, score });
        return true;
      },
    }),
    summary: query({
      args: { of: v.string() },
      handler: async (ctx, { of }) => (await ctx.db.query("summaries").withIndex("by_of", (q) => q.eq("of", of)).unique())?.names ?? null,
    }),
    names: query({
      args: {},
      handler: async (ctx) => (await ctx.db.query("scores").withIndex("by_score").collect()).map((s) => s.name),
    }),
    countByName: query({
      args: { name: v.string() },
      handler: async (ctx, { name }) => (await ctx.db.query("scores").withIndex("by_name", (q) => q.eq("name", name)).collect()).length,
    }),
    addParent: mutation({ args: { v: v.number() }, handler: (ctx, args) => ctx.db.insert("parents", args) }),
    /** Adds a child to `parent` if it still exists, copying its value. */
    addChild: mutation({
      args: { parent: v.id("parents") },
      handler: async (ctx, { parent }) => {
        ran("addChild");
        const doc = await ctx.db.get(parent);
        if (doc === null) return null;
        return ctx.db.insert("children", { parent, v: doc.v });
      },
    }),
    /** Deletes `parent` if it has no children. */
    deleteIfChildless: mutation({
      args: { parent: v.id("parents") },
      handler: async (ctx, { parent }) => {
        if ((await ctx.db.query("children").withIndex("by_parent", (q) => q.eq("parent", parent)).first()) !== null) return false;
        await ctx.db.delete(parent);
        return true;
      },
    }),
    replaceParent: mutation({
      args: { parent: v.id("parents"), v: v.number() },
      handler: (ctx, { parent, v }) => ctx.db.replace(parent, { v }),
    }),
    children: query({
      args: {},
      handler: async (ctx) => {
        const children = await ctx.db.query("children").collect();
        return Promise.all(children.map(async (c) => ({ v: c.v, parent: (await ctx.db.get(c.parent))?.v ?? null })));
      },
    }),
    /** Schedules a reminder unless one is scheduled already, as `ctx.db.system` shows. */
    remindOnce: mutation({
      args: { by: v.string() },
      handler: async (ctx, { by }) => {
        ran(by);
        const pending = await ctx.db.system.query("_scheduled_functions").collect();
        if (pending.some((job) => job.name.endsWith(":remind") && job.state.kind === "pending")) return false;
        return ctx.scheduler.runAfter(3_600_000, api.s.remind, { by });
      },
    }),
    /** Cancels the reminder `id` if it is still pending, as `ctx.db.system.get` shows. */
    cancelIfPending: mutation({
      args: { id: v.id("_scheduled_functions") },
      handler: async (ctx, { id }) => {
        ran("cancel");
        const job = await ctx.db.system.get(id);
        if (job?.state.kind !== "pending") return false;
        await ctx.scheduler.cancel(id);
        await ctx.db.insert("slots", { room: "canceled", at: 0, by: id });
        return true;
      },
    }),
    remind: mutation({ args: { by: v.string() }, handler: async () => {} }),
    reminders: query({
      args: {},
      handler: async (ctx) => (await ctx.db.system.query("_scheduled_functions").collect()).filter((j) => j.name.endsWith(":remind")).map((j) => j.state.kind),
    }),
    increment: mutation({
      args: { name: v.string() },
      handler: async (ctx, { name }) => {
        const counter = await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", name)).unique();
        if (counter === null) await ctx.db.insert("counters", { name, n: 1 });
        else await ctx.db.patch(counter._id, { n: counter.n + 1 });
      },
    }),
    /** Moves one unit from one counter to the other, never below zero. */
    transfer: mutation({
      args: { from: v.string(), to: v.string() },
      handler: async (ctx, { from, to }) => {
        const a = await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", from)).unique();
        const b = await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", to)).unique();
        if (a === null || b === null || a.n === 0) return false;
        await ctx.db.patch(a._id, { n: a.n - 1 });
        await ctx.db.patch(b._id, { n: b.n + 1 });
        return true;
      },
    }),
    counters: query({
      args: {},
      handler: async (ctx) => Object.fromEntries((await ctx.db.query("counters").collect()).map((c) => [c.name, c.n])),
    }),
    setPair: mutation({
      args: { v: v.number() },
      handler: async (ctx, { v }) => {
        for (const side of ["left", "right"]) {
          const doc = await ctx.db.query("pairs").withIndex("by_side", (q) => q.eq("side", side)).unique();
          if (doc === null) await ctx.db.insert("pairs", { side, v });
          else await ctx.db.patch(doc._id, { v });
        }
      },
    }),
    pair: query({
      args: {},
      handler: async (ctx) => {
        const left = await ctx.db.query("pairs").withIndex("by_side", (q) => q.eq("side", "left")).unique();
        const right = await ctx.db.query("pairs").withIndex("by_side", (q) => q.eq("side", "right")).unique();
        return [left?.v ?? null, right?.v ?? null];
      },
    }),
  },
};

interface Node {
  engine: Engine;
  hooked: SharedHookedStorage;
  storage: PostgresStorage;
}

/** `count` engines on one fresh schema, each through a hooked storage of its own. */
async function cluster(count: number): Promise<Node[]> {
  runs.clear();
  const target = await openTestSchema();
  const nodes: Node[] = [];
  cleanups.push(async () => {
    for (const node of nodes) await node.engine.close().catch(() => {});
    for (const node of nodes) await node.storage.close().catch(() => {});
    await target.drop();
  });
  for (let i = 0; i < count; i++) {
    const storage = i === 0 ? target.storage : await target.open();
    const hooked = new SharedHookedStorage(storage);
    const engine = await Engine.open({ storage: hooked, schema, modules, runScheduler: false, logError: () => {} });
    nodes.push({ engine, hooked, storage });
  }
  return nodes;
}

/**
 * When the other node's mutation runs, relative to `node`'s next mutation: "commit" holds that
 * mutation's commit until the other one has committed (the commit learns of it from storage's
 * view, inside the commit lock); "read" runs it right after the mutation's first storage read,
 * then has `node` learn of it (the commit finds it in the engine's own commit log).
 */
type When = "commit" | "read";
const WHEN: When[] = ["commit", "read"];

/** Runs `meanwhile` (a mutation on another node) at `when` of `node`'s next mutation; resolves once it has. */
function interleave(node: Node, when: When, meanwhile: () => Promise<unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    const run = async () => {
      try {
        await meanwhile();
        if (when === "read") await node.engine.refreshFromStorage();
        resolve();
      } catch (error) {
        reject(error);
      }
    };
    if (when === "commit") {
      node.hooked.hooks.commitBatch = async (commit) => {
        node.hooked.hooks.commitBatch = undefined;
        await run();
        return commit();
      };
    } else {
      node.hooked.hooks.read = async (operation, read) => {
        if (operation !== "scan" && operation !== "getDocument") return read();
        node.hooked.hooks.read = undefined;
        const result = await read();
        await run();
        return result;
      };
    }
  });
}

for (const when of WHEN) {
  describe(`write skew through index ranges across nodes (learned at ${when})`, () => {
    for (const order of ["asc", "desc"] as const) {
      it(`two bookings of one gt/lt range (order ${order}) on two nodes: one books, the other re-runs and sees it`, async () => {
        const [a, b] = await cluster(2);
        const held = interleave(a!, when, () => b!.engine.runMutation("s:bookIfFree", { room: "r", at: 15, lo: 10, hi: 20, order, by: "B" }));
        const [first] = await Promise.all([a!.engine.runMutation("s:bookIfFree", { room: "r", at: 12, lo: 10, hi: 20, order, by: "A" }), held]);
        expect(first.value).toBe(false);
        expect(runs.get("A")).toBe(2);
        await a!.engine.refreshFromStorage();
        expect(await a!.engine.runQuery("s:slotsIn", { room: "r" })).toEqual([[15, "B"]]);
      });
    }

    it("a booking just outside the range (at the exclusive bound) does not stop one inside it", async () => {
      const [a, b] = await cluster(2);
      const held = interleave(a!, when, () => b!.engine.runMutation("s:bookIfFree", { room: "r", at: 20, lo: 20, hi: 30, order: "asc", by: "B" }));
      const [first] = await Promise.all([a!.engine.runMutation("s:bookIfFree", { room: "r", at: 12, lo: 10, hi: 20, order: "desc", by: "A" }), held]);
      expect(first.value).toBe(true);
      await a!.engine.refreshFromStorage();
      expect(await a!.engine.runQuery("s:slotsIn", { room: "r" })).toEqual([[12, "A"], [20, "B"]]);
    });

    it("the range read through ctx.runQuery inside the mutation conflicts like its own", async () => {
      const [a, b] = await cluster(2);
      const held = interleave(a!, when, () => b!.engine.runMutation("s:bookIfFree", { room: "r", at: 15, lo: 10, hi: 20, order: "asc", by: "B" }));
      const [first] = await Promise.all([a!.engine.runMutation("s:bookIfFreeViaQuery", { room: "r", at: 12, lo: 10, hi: 20, by: "A" }), held]);
      expect(first.value).toBe(false);
      expect(runs.get("A")).toBe(2);
    });

    it("the range read by a mutation called with ctx.runMutation conflicts like its caller's own", async () => {
      const [a, b] = await cluster(2);
      const held = interleave(a!, when, () => b!.engine.runMutation("s:bookIfFree", { room: "r", at: 15, lo: 10, hi: 20, order: "asc", by: "B" }));
      const [first] = await Promise.all([a!.engine.runMutation("s:bookIfFreeViaMutation", { room: "r", at: 12, lo: 10, hi: 20, by: "A" }), held]);
      expect(first.value).toBe(false);
      expect(runs.get("A outer")).toBe(2);
      await a!.engine.refreshFromStorage();
      expect(await a!.engine.runQuery("s:slotsIn", { room: "r" })).toEqual([[15, "B"]]);
    });
  });

  describe(`reads of the first n rows: an insert before the nth on another node (learned at ${when})`, () => {
    const cases: { how: string; n: number; order: Order; insert: number; expected: string[]; cursorAfter?: number }[] = [
      { how: "first", n: 1, order: "desc", insert: 60, expected: ["s60"] },
      { how: "first", n: 1, order: "asc", insert: 5, expected: ["s5"] },
      { how: "filter", n: 1, order: "asc", insert: 27, expected: ["s27"] },
      { how: "next", n: 1, order: "desc", insert: 55, expected: ["s55"] },
      { how: "take", n: 2, order: "desc", insert: 45, expected: ["s50", "s45"] },
      { how: "take", n: 3, order: "asc", insert: 25, expected: ["s10", "s20", "s25"] },
      { how: "iterate", n: 2, order: "desc", insert: 45, expected: ["s50", "s45"] },
      { how: "paginate", n: 2, order: "asc", insert: 15, expected: ["s10", "s15"] },
      { how: "paginate", n: 2, order: "desc", insert: 35, expected: ["s40", "s35"], cursorAfter: 1 },
      { how: "paginate", n: 2, order: "asc", insert: 35, expected: ["s30", "s35"], cursorAfter: 2 },
    ];
    for (const { how, n, order, insert, expected, cursorAfter } of cases) {
      const page = cursorAfter === undefined ? "" : ` (the page after ${cursorAfter})`;
      it(`${how}${n > 1 ? ` ${n}` : ""} ${order}${page}, score ${insert} inserted meanwhile: the summary committed after it includes it`, async () => {
        const [a, b] = await cluster(2);
        for (const score of [10, 20, 30, 40, 50]) await a!.engine.runMutation("s:addScore", { name: `s${score}`, score });
        await b!.engine.refreshFromStorage();
        let insertedAt = 0;
        const held = interleave(a!, when, async () => {
          insertedAt = (await b!.engine.runMutation("s:addScore", { name: `s${insert}`, score: insert })).ts;
        });
        const [summary] = await Promise.all([a!.engine.runMutation("s:summarize", { of: "x", how, n, order, cursorAfter }), held]);
        // Committed after the insert, so in timestamp order it ran after it, and read it.
        expect(summary.ts).toBeGreaterThan(insertedAt);
        expect(summary.value).toEqual(expected);
        await b!.engine.refreshFromStorage();
        expect(await b!.engine.runQuery("s:summary", { of: "x" })).toEqual(expected);
      });
    }

    it("unique() on two nodes inserting the same name: one row, the other mutation re-runs and finds it", async () => {
      const [a, b] = await cluster(2);
      const held = interleave(a!, when, () => b!.engine.runMutation("s:addUnique", { name: "u", score: 2 }));
      const [first] = await Promise.all([a!.engine.runMutation("s:addUnique", { name: "u", score: 1 }), held]);
      expect(first.value).toBe(false);
      expect(runs.get("unique 1")).toBe(2);
      await a!.engine.refreshFromStorage();
      expect(await a!.engine.runQuery("s:countByName", { name: "u" })).toBe(1);
    });
  });

  describe(`documents read by ID that another node deletes or replaces (learned at ${when})`, () => {
    it("a child added to a parent another node deleted meanwhile is not added (no orphan)", async () => {
      const [a, b] = await cluster(2);
      const { value: parent } = await a!.engine.runMutation("s:addParent", { v: 1 });
      await b!.engine.refreshFromStorage();
      const held = interleave(a!, when, async () => {
        expect((await b!.engine.runMutation("s:deleteIfChildless", { parent })).value).toBe(true);
      });
      const [child] = await Promise.all([a!.engine.runMutation("s:addChild", { parent }), held]);
      expect(child.value).toBe(null);
      expect(runs.get("addChild")).toBe(2);
      expect(await a!.engine.runQuery("s:children", {})).toEqual([]);
    });

    it("a child copying a parent another node replaced meanwhile copies the new value", async () => {
      const [a, b] = await cluster(2);
      const { value: parent } = await a!.engine.runMutation("s:addParent", { v: 1 });
      await b!.engine.refreshFromStorage();
      const held = interleave(a!, when, () => b!.engine.runMutation("s:replaceParent", { parent, v: 2 }));
      await Promise.all([a!.engine.runMutation("s:addChild", { parent }), held]);
      expect(await a!.engine.runQuery("s:children", {})).toEqual([{ v: 2, parent: 2 }]);
    });
  });

  describe(`reads of ctx.db.system (learned at ${when})`, () => {
    it("two nodes scheduling a reminder unless ctx.db.system lists one: one is scheduled", async () => {
      const [a, b] = await cluster(2);
      const held = interleave(a!, when, () => b!.engine.runMutation("s:remindOnce", { by: "B" }));
      const [first] = await Promise.all([a!.engine.runMutation("s:remindOnce", { by: "A" }), held]);
      expect(first.value).toBe(false);
      expect(runs.get("A")).toBe(2);
      expect(await a!.engine.runQuery("s:reminders", {})).toEqual(["pending"]);
    });

    it("a job canceled on another node meanwhile is not canceled twice (ctx.db.system.get conflicts)", async () => {
      const [a, b] = await cluster(2);
      const { value: id } = await a!.engine.runMutation("s:remindOnce", { by: "A" });
      await b!.engine.refreshFromStorage();
      const held = interleave(a!, when, () => b!.engine.runMutation("s:cancelIfPending", { id }));
      const [first] = await Promise.all([a!.engine.runMutation("s:cancelIfPending", { id }), held]);
      expect(first.value).toBe(false);
      expect(await a!.engine.runQuery("s:slotsIn", { room: "canceled" })).toHaveLength(1);
      expect(await a!.engine.runQuery("s:reminders", {})).toEqual(["canceled"]);
    });
  });
}

/** Holds every commit of every node for a few random turns and timers, so batches of the nodes interleave. */
function jitterCommits(nodes: Node[], seed: number): void {
  const rng = seededChoices(seed);
  for (const node of nodes) {
    node.hooked.hooks.commitBatch = async (commit) => {
      for (let i = rng.int(4); i > 0; i--) await new Promise((resolve) => setTimeout(resolve, rng.int(4)));
      return commit();
    };
  }
}

describe("races on three nodes, commits held at random", () => {
  it("twelve bookings of one range on three nodes: exactly one lands", async () => {
    const nodes = await cluster(3);
    jitterCommits(nodes, 7);
    const results = await Promise.all(
      nodes.flatMap((node, n) => [0, 1, 2, 3].map((k) =>
        node.engine.runMutation("s:bookIfFree", { room: "x", at: 11 + n * 4 + k, lo: 10, hi: 30, order: k % 2 ? "desc" : "asc", by: `n${n}k${k}` }))),
    );
    expect(results.filter((r) => r.value === true)).toHaveLength(1);
    await nodes[0]!.engine.refreshFromStorage();
    expect(await nodes[0]!.engine.runQuery("s:slotsIn", { room: "x" })).toHaveLength(1);
  });

  it("deletes of childless parents racing children on three nodes: never an orphan", async () => {
    const nodes = await cluster(3);
    jitterCommits(nodes, 11);
    for (let round = 0; round < 6; round++) {
      const { value: parent } = await nodes[0]!.engine.runMutation("s:addParent", { v: round });
      await Promise.all(nodes.map((node) => node.engine.refreshFromStorage()));
      await Promise.all([
        nodes[1]!.engine.runMutation("s:addChild", { parent }),
        nodes[2]!.engine.runMutation("s:deleteIfChildless", { parent }),
        nodes[round % 3]!.engine.runMutation("s:addChild", { parent }),
      ]);
    }
    await nodes[0]!.engine.refreshFromStorage();
    const children = (await nodes[0]!.engine.runQuery("s:children", {})) as { v: number; parent: number | null }[];
    expect(children.filter((c) => c.parent === null)).toEqual([]);
  });
});

describe("counters on three nodes, commits held at random", () => {
  it("increments on every node at once: the count is the number of increments", async () => {
    const nodes = await cluster(3);
    jitterCommits(nodes, 3);
    const perNode = 15;
    await Promise.all(nodes.flatMap((node) => Array.from({ length: perNode }, () => node.engine.runMutation("s:increment", { name: "c" }))));
    for (const node of nodes) {
      await node.engine.refreshFromStorage();
      expect(await node.engine.runQuery("s:counters", {})).toEqual({ c: 3 * perNode });
    }
  });

  it("transfers between two counters on three nodes keep the total and never go below zero", async () => {
    const nodes = await cluster(3);
    await nodes[0]!.engine.runMutation("s:increment", { name: "a" });
    for (let i = 0; i < 4; i++) await nodes[0]!.engine.runMutation("s:increment", { name: "a" });
    await nodes[0]!.engine.runMutation("s:increment", { name: "b" });
    await Promise.all(nodes.map((node) => node.engine.refreshFromStorage()));
    jitterCommits(nodes, 5);
    // a = 5, b = 1: 8 transfers a → b can succeed at most 5 times.
    const results = await Promise.all(nodes.flatMap((node) => [0, 1, 2].map(() => node.engine.runMutation("s:transfer", { from: "a", to: "b" }))));
    const moved = results.filter((r) => r.value === true).length;
    expect(moved).toBe(5);
    await nodes[1]!.engine.refreshFromStorage();
    expect(await nodes[1]!.engine.runQuery("s:counters", {})).toEqual({ a: 0, b: 6 });
  });
});

describe("consistent snapshots across nodes", () => {
  it("a query reading two documents that another node writes in one mutation, between its two reads, sees both old", async () => {
    const [a, b] = await cluster(2);
    await a!.engine.runMutation("s:setPair", { v: 1 });
    await b!.engine.refreshFromStorage();
    // Between b's two reads (b has cached neither): a writes both sides, and b learns of it.
    let scans = 0;
    b!.hooked.hooks.read = async (operation, read) => {
      if (operation !== "scan" || ++scans !== 1) return read();
      const result = await read();
      await a!.engine.runMutation("s:setPair", { v: 2 });
      await b!.engine.refreshFromStorage();
      return result;
    };
    expect(await b!.engine.runQuery("s:pair", {})).toEqual([1, 1]);
    expect(scans).toBe(2);
    expect(await b!.engine.runQuery("s:pair", {})).toEqual([2, 2]);
  });

  it("a node's cached answer, after its own commit that landed behind another node's, has both", async () => {
    const [a, b] = await cluster(2);
    await a!.engine.runMutation("s:addScore", { name: "s10", score: 10 });
    expect(await a!.engine.runQuery("s:names", {})).toEqual(["s10"]); // cached on a
    // a's insert commits right after b's: a learns b's commit in the same commit lock.
    const held = interleave(a!, "commit", () => b!.engine.runMutation("s:addScore", { name: "s30", score: 30 }));
    await Promise.all([a!.engine.runMutation("s:addScore", { name: "s20", score: 20 }), held]);
    expect(await a!.engine.runQuery("s:names", {})).toEqual(["s10", "s20", "s30"]);
  });

  it("queries on two nodes while a third writes pairs, commits and reads held at random: never half a pair", async () => {
    const nodes = await cluster(3);
    await nodes[0]!.engine.runMutation("s:setPair", { v: 0 });
    jitterCommits(nodes, 9);
    const rng = seededChoices(13);
    for (const node of nodes.slice(1)) {
      node.hooked.hooks.read = async (_operation, read) => {
        for (let i = rng.int(3); i > 0; i--) await new Promise((resolve) => setTimeout(resolve, rng.int(3)));
        return read();
      };
    }
    let writing = true;
    const seen: unknown[] = [];
    const writer = (async () => {
      for (let v = 1; v <= 30; v++) await nodes[0]!.engine.runMutation("s:setPair", { v });
      writing = false;
    })();
    const reader = async (node: Node) => {
      while (writing) {
        await node.engine.refreshFromStorage();
        seen.push(await node.engine.runQuery("s:pair", {}));
      }
    };
    await Promise.all([writer, reader(nodes[1]!), reader(nodes[2]!)]);
    expect(seen.filter((pair) => (pair as number[])[0] !== (pair as number[])[1])).toEqual([]);
  });

  it("live queries on two nodes while a third writes pairs: every result published is a whole pair, never going back", async () => {
    const nodes = await cluster(3);
    await nodes[0]!.engine.runMutation("s:setPair", { v: 0 });
    jitterCommits(nodes, 17);
    const published: number[][][] = [[], []];
    const subscriptions: { unsubscribe(): void }[] = [];
    for (const [n, node] of nodes.slice(1).entries()) {
      await node.engine.refreshFromStorage();
      const subscription = await node.engine.subscriptions.subscribe("s:pair", {}, {}, (outcome) => {
        if (outcome.ok) published[n]!.push(outcome.value as number[]);
      });
      if (!subscription.outcome.ok) throw subscription.outcome.error;
      published[n]!.push(subscription.outcome.value as number[]);
      subscriptions.push(subscription);
    }
    cleanups.push(async () => subscriptions.forEach((s) => s.unsubscribe()));
    for (let v = 1; v <= 30; v++) await nodes[0]!.engine.runMutation("s:setPair", { v });
    for (let i = 0; published.some((p) => p[p.length - 1]![0] !== 30); i++) {
      if (i === 500) throw new Error(`live results did not reach [30, 30]: ${JSON.stringify(published.map((p) => p[p.length - 1]))}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    for (const results of published) {
      expect(results.filter(([left, right]) => left !== right)).toEqual([]);
      const lefts = results.map(([left]) => left!);
      expect(lefts).toEqual([...lefts].sort((x, y) => x - y));
    }
  });
});

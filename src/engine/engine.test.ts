import { afterEach, describe, expect, it, vi } from "vitest";
import { anyApi, type ApiFromModules, defineSchema, defineTable, mutation, query, action, internalMutation } from "../server/index.js";
import { v, isWalkinError } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import { LIMITS } from "./limits.js";
import { ReadSet } from "./readSet.js";
import { settle } from "./fixtures/settle.js";

const schema = defineSchema({
  users: defineTable({ name: v.string(), age: v.optional(v.number()) }).index("by_name", ["name"]),
  messages: defineTable({ author: v.id("users"), body: v.string(), channel: v.string() })
    .index("by_channel", ["channel"])
    .index("by_author", ["author"]),
  counters: defineTable({ name: v.string(), value: v.number() }).index("by_name", ["name"]),
});

const users = {
  create: mutation({ args: { name: v.string(), age: v.optional(v.number()) }, handler: (ctx, args) => ctx.db.insert("users", args) }),
  get: query({ args: { id: v.id("users") }, handler: (ctx, { id }) => ctx.db.get(id) }),
  byName: query({
    args: { name: v.string() },
    handler: (ctx, { name }) => ctx.db.query("users").withIndex("by_name", (q) => q.eq("name", name)).unique(),
  }),
  rename: mutation({ args: { id: v.id("users"), name: v.string() }, handler: (ctx, { id, name }) => ctx.db.patch(id, { name }) }),
  remove: mutation({ args: { id: v.id("users") }, handler: (ctx, { id }) => ctx.db.delete(id) }),
  insertRaw: mutation({ args: { doc: v.any() }, handler: (ctx, { doc }) => ctx.db.insert("users", doc) }),
  createThenFail: mutation({
    args: { name: v.string() },
    handler: async (ctx, { name }) => {
      await ctx.db.insert("users", { name });
      throw new Error("boom after insert");
    },
  }),
  readOwnWrites: mutation({
    args: {},
    handler: async (ctx) => {
      const id = await ctx.db.insert("users", { name: "zed" });
      const viaIndex = await ctx.db.query("users").withIndex("by_name", (q) => q.eq("name", "zed")).collect();
      await ctx.db.patch(id, { name: "zoe" });
      const afterPatch = await ctx.db.query("users").withIndex("by_name", (q) => q.eq("name", "zed")).collect();
      const all = await ctx.db.query("users").collect();
      return { viaIndex: viaIndex.length, afterPatch: afterPatch.length, all: all.map((u) => u.name) };
    },
  }),
};

const messages = {
  send: mutation({
    args: { author: v.id("users"), body: v.string(), channel: v.string() },
    handler: (ctx, args) => ctx.db.insert("messages", args),
  }),
  list: query({
    args: { channel: v.string() },
    handler: (ctx, { channel }) => ctx.db.query("messages").withIndex("by_channel", (q) => q.eq("channel", channel)).order("desc").collect(),
  }),
  page: query({
    args: { cursor: v.union(v.string(), v.null()), numItems: v.number() },
    handler: (ctx, args) => ctx.db.query("messages").paginate(args),
  }),
  longest: query({
    args: { min: v.number() },
    handler: async (ctx, { min }) => {
      const out = [];
      for await (const m of ctx.db.query("messages").filter((q) => q.gte(q.field("body"), "m"))) {
        if (m.body.length >= min) out.push(m.body);
      }
      return out;
    },
  }),
};

const counters = {
  increment: mutation({
    args: { name: v.string() },
    handler: async (ctx, { name }) => {
      const counter = await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", name)).unique();
      if (counter) await ctx.db.patch(counter._id, { value: counter.value + 1 });
      else await ctx.db.insert("counters", { name, value: 1 });
    },
  }),
  get: query({
    args: { name: v.string() },
    handler: async (ctx, { name }) =>
      (await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", name)).unique())?.value ?? 0,
  }),
  /** Two documents that are always written together: a reader must never see them differ. */
  bumpPair: mutation({
    args: {},
    handler: async (ctx) => {
      for (const name of ["a", "b"]) {
        const c = await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", name)).unique();
        if (c) await ctx.db.patch(c._id, { value: c.value + 1 });
        else await ctx.db.insert("counters", { name, value: 1 });
      }
    },
  }),
  readPairSlowly: query({
    args: {},
    handler: async (ctx) => {
      const a = await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", "a")).unique();
      await new Promise((resolve) => setTimeout(resolve, 2)); // let other commits land mid-query
      const b = await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", "b")).unique();
      return [a?.value ?? 0, b?.value ?? 0];
    },
  }),
};

const determinism = {
  clock: query({ args: {}, handler: async () => [Date.now(), new Date().getTime(), Math.random(), Math.random()] }),
  fetching: mutation({ args: {}, handler: async () => fetch("http://127.0.0.1:1/") }),
  actionClock: action({ args: {}, handler: async () => typeof fetch }),
  secret: internalMutation({ args: {}, handler: async () => "internal" }),
};

const modules = { users, messages, counters, determinism };
const api = anyApi as unknown as ApiFromModules<typeof modules>;

let t: ReturnType<typeof walkinTest<typeof schema>>;
afterEach(async () => t?.close());

async function error(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (e) {
    expect(isWalkinError(e)).toBe(true);
    return e as { code: string; message: string };
  }
  throw new Error("expected the call to fail");
}

describe("documents", () => {
  it("inserts, reads by ID and by index, patches and deletes", async () => {
    t = walkinTest(schema, modules);
    const id = await t.mutation(api.users.create, { name: "ada", age: 36 });
    expect(await t.query(api.users.get, { id })).toMatchObject({ _id: id, name: "ada", age: 36 });
    expect(await t.query(api.users.byName, { name: "ada" })).toMatchObject({ _id: id });
    await t.mutation(api.users.rename, { id, name: "grace" });
    expect(await t.query(api.users.byName, { name: "ada" })).toBeNull();
    expect((await t.query(api.users.byName, { name: "grace" }))?._id).toBe(id);
    await t.mutation(api.users.remove, { id });
    expect(await t.query(api.users.get, { id })).toBeNull();
  });

  it("gives documents _id and increasing _creationTime", async () => {
    t = walkinTest(schema, modules);
    const a = await t.mutation(api.users.create, { name: "a" });
    const b = await t.mutation(api.users.create, { name: "b" });
    const [docA, docB] = [await t.query(api.users.get, { id: a }), await t.query(api.users.get, { id: b })];
    expect(docA!._creationTime).toBeLessThan(docB!._creationTime);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[0-9a-z]{28,40}$/);
  });

  it("lets a mutation read its own writes through indexes", async () => {
    t = walkinTest(schema, modules);
    await t.mutation(api.users.create, { name: "amy" });
    const result = await t.mutation(api.users.readOwnWrites, {});
    expect(result).toEqual({ viaIndex: 1, afterPatch: 0, all: ["amy", "zoe"] });
  });

  it("writes nothing when the handler throws", async () => {
    t = walkinTest(schema, modules);
    await expect(t.mutation(api.users.createThenFail, { name: "ghost" })).rejects.toThrow("boom after insert");
    expect(await t.query(api.users.byName, { name: "ghost" })).toBeNull();
  });
});

describe("queries", () => {
  it("orders, filters, takes and iterates", async () => {
    t = walkinTest(schema, modules);
    const author = await t.mutation(api.users.create, { name: "a" });
    for (const body of ["hello", "my", "world", "zebra"]) {
      await t.mutation(api.messages.send, { author, body, channel: body.length > 4 ? "long" : "short" });
    }
    const long = await t.query(api.messages.list, { channel: "long" });
    expect(long.map((m) => m.body)).toEqual(["zebra", "world", "hello"]);
    expect(await t.query(api.messages.longest, { min: 5 })).toEqual(["world", "zebra"]);
  });

  it("paginates with cursors until done", async () => {
    t = walkinTest(schema, modules);
    const author = await t.mutation(api.users.create, { name: "a" });
    for (let i = 0; i < 7; i++) await t.mutation(api.messages.send, { author, body: `m${i}`, channel: "c" });
    const bodies: string[] = [];
    let cursor: string | null = null;
    for (;;) {
      const result: any = await t.query(api.messages.page, { cursor, numItems: 3 });
      bodies.push(...result.page.map((m: { body: string }) => m.body));
      if (result.isDone) break;
      cursor = result.continueCursor;
    }
    expect(bodies).toEqual(["m0", "m1", "m2", "m3", "m4", "m5", "m6"]);
  });

  it("unique() throws when two documents match", async () => {
    t = walkinTest(schema, modules);
    await t.mutation(api.users.create, { name: "twin" });
    await t.mutation(api.users.create, { name: "twin" });
    const e = await error(t.query(api.users.byName, { name: "twin" }));
    expect(e.code).toBe("NOT_UNIQUE");
  });
});

describe("bad input", () => {
  it("rejects invalid arguments with the path and types", async () => {
    t = walkinTest(schema, modules);
    const e = await error(t.mutation(api.users.create, { name: 42 } as never));
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toContain("args.name: expected string, received number");
  });

  it("rejects documents that fail the schema and changes nothing", async () => {
    t = walkinTest(schema, modules);
    const e = await error(t.mutation(api.users.insertRaw, { doc: { name: "x", extra: true } }));
    expect(e.code).toBe("SCHEMA_VIOLATION");
    expect(e.message).toContain("users.extra");
    expect(await t.query(api.users.byName, { name: "x" })).toBeNull();
  });

  it("rejects malformed IDs and IDs of another table", async () => {
    t = walkinTest(schema, modules);
    const user = await t.mutation(api.users.create, { name: "u" });
    const message = await t.mutation(api.messages.send, { author: user, body: "b", channel: "c" });
    const wrongTable = await error(t.query(api.users.get, { id: message as never }));
    expect(wrongTable.code).toBe("INVALID_ARGUMENT");
    expect(wrongTable.message).toContain('expected an ID of table "users"');
    const malformed = await error(t.query(api.users.get, { id: "not-an-id" as never }));
    expect(malformed.message).toContain("args.id");
    const truncated = await error(t.run(async (ctx) => ctx.db.get(user.slice(0, -1) as never)));
    expect(truncated.code).toBe("INVALID_ID");
  });

  it("rejects documents over 1 MiB", async () => {
    t = walkinTest(schema, modules);
    const e = await error(t.mutation(api.users.insertRaw, { doc: { name: "x".repeat(1024 * 1024 + 1) } }));
    expect(e.code).toBe("LIMIT_EXCEEDED");
    expect(e.message).toContain("1 MiB");
  });

  it("bounds the documents one transaction may write or read, and writes nothing past the limit", async () => {
    t = walkinTest(schema, modules);
    const tooMany = await error(t.run(async (ctx) => {
      for (let i = 0; i <= LIMITS.maxDocumentsWritten; i++) await ctx.db.insert("users", { name: `u${i}` });
    }));
    expect(tooMany.code).toBe("LIMIT_EXCEEDED");
    expect(tooMany.message).toContain(`at most ${LIMITS.maxDocumentsWritten} documents`);
    expect(await t.run(async (ctx) => (await ctx.db.query("users").take(1)).length)).toBe(0);

    for (let batch = 0; batch < 3; batch++) {
      await t.run(async (ctx) => {
        for (let i = 0; i < 6000; i++) await ctx.db.insert("users", { name: `u${batch}-${i}` });
      });
    }
    const tooManyReads = await error(t.run(async (ctx) => ctx.db.query("users").collect()));
    expect(tooManyReads.code).toBe("LIMIT_EXCEEDED");
    expect(tooManyReads.message).toContain("paginate");
  }, 60_000);

  it("rejects values the encoding cannot hold", async () => {
    t = walkinTest(schema, modules);
    const e = await error(t.run(async (ctx) => ctx.db.insert("users", { name: "x", age: new Date() as never })));
    expect(e.code).toBe("INVALID_VALUE");
    const cyclic: Record<string, unknown> = { name: "c" };
    cyclic.self = cyclic;
    expect((await error(t.run(async (ctx) => ctx.db.insert("users", cyclic as never)))).code).toBe("INVALID_VALUE");
  });

  it("refuses unknown functions and internal functions from clients", async () => {
    t = walkinTest(schema, modules);
    const engine = await t.engine();
    await expect(engine.runMutation("nope:missing", {}, { fromClient: true })).rejects.toMatchObject({ code: "UNKNOWN_FUNCTION" });
    await expect(engine.runMutation("determinism:secret", {}, { fromClient: true })).rejects.toMatchObject({ code: "UNKNOWN_FUNCTION" });
    expect(await engine.runMutation("determinism:secret", {}, {})).toMatchObject({ value: "internal" });
    // Once found (and remembered), an internal function still looks missing to clients, even
    // called as the wrong type: its type would tell that it exists.
    await expect(engine.runMutation("determinism:secret", {}, { fromClient: true })).rejects.toMatchObject({ code: "UNKNOWN_FUNCTION" });
    await expect(engine.runQuery("determinism:secret", {}, { fromClient: true })).rejects.toMatchObject({ code: "UNKNOWN_FUNCTION" });
    await expect(engine.runQuery("determinism:secret", {}, {})).rejects.toMatchObject({ code: "WRONG_FUNCTION_TYPE" });
    // runQuery rejects (never throws where it is called) for a function that does not exist.
    await expect(engine.runQuery("nope:missing", {})).rejects.toMatchObject({ code: "UNKNOWN_FUNCTION" });
  });

  it("misuse of the query builder names the index fields", async () => {
    t = walkinTest(schema, modules);
    const e = await error(t.run(async (ctx) => ctx.db.query("messages").withIndex("by_channel", (q: any) => q.eq("body", "x")).collect()));
    expect(e.code).toBe("MISUSE");
    expect(e.message).toContain("[channel, _creationTime, _id]");
    const unknown = await error(t.run(async (ctx) => ctx.db.query("nope" as never).collect()));
    expect(unknown.message).toContain('Unknown table "nope"');
  });
});

describe("determinism", () => {
  it("fixes the clock and seeds randomness inside queries; blocks fetch in mutations", async () => {
    t = walkinTest(schema, modules);
    const [now, dateNow, r1, r2] = (await t.query(api.determinism.clock, {})) as number[];
    expect(now).toBe(dateNow);
    expect(r1).not.toBe(r2);
    const e = await error(t.mutation(api.determinism.fetching, {}));
    expect(e.message).toContain("Call the network from an action");
    expect(await t.action(api.determinism.actionClock, {})).toBe("function");
  });
});

describe("concurrency", () => {
  it("serializes 100 concurrent increments of one counter, with retries", async () => {
    t = walkinTest(schema, modules);
    await Promise.all(Array.from({ length: 100 }, () => t.mutation(api.counters.increment, { name: "hits" })));
    expect(await t.query(api.counters.get, { name: "hits" })).toBe(100);
    expect((await t.engine()).stats.conflictRetries).toBeGreaterThan(0);
  });

  it("after a burst of increments of one counter collided, the next bursts wait in its lane instead of colliding again", async () => {
    t = walkinTest(schema, modules);
    const engine = await t.engine();
    const burst = () => Promise.all(Array.from({ length: 20 }, () => t.mutation(api.counters.increment, { name: "hot" })));
    await burst();
    const firstBurst = engine.stats.conflictRetries;
    expect(firstBurst).toBeGreaterThan(0); // all 20 read the same snapshot: one wins, the rest re-run in the lane
    // Bursts that start within LOSER_MEMORY_MS of the lane emptying go to the lane as a whole
    // (retryLanes.ts, "Repeat losers"); without that, each would re-run 19 of its 20 calls.
    for (let i = 0; i < 4; i++) await burst();
    expect(engine.stats.conflictRetries - firstBurst).toBeLessThan(10);
    expect(await t.query(api.counters.get, { name: "hot" })).toBe(100);
    // Other counters and other arguments are not held up: a call of another counter runs at once.
    await t.mutation(api.counters.increment, { name: "cold" });
    expect(await t.query(api.counters.get, { name: "cold" })).toBe(1);
  });

  it("a query never sees half of a commit", async () => {
    t = walkinTest(schema, modules);
    await t.mutation(api.counters.bumpPair, {});
    const writers = Promise.all(Array.from({ length: 40 }, () => t.mutation(api.counters.bumpPair, {})));
    const reads = await Promise.all(Array.from({ length: 40 }, () => t.query(api.counters.readPairSlowly, {})));
    await writers;
    for (const [a, b] of reads as number[][]) expect(a).toBe(b);
    expect(await t.query(api.counters.get, { name: "a" })).toBe(41);
  });
});

describe("subscriptions", () => {
  it("notifies on an overlapping commit and not on a disjoint one", async () => {
    t = walkinTest(schema, modules);
    const engine = await t.engine();
    const author = await t.mutation(api.users.create, { name: "a" });
    const seen: unknown[] = [];
    const sub = await engine.subscriptions.subscribe("messages:list", { channel: "news" }, {}, (outcome) => seen.push(outcome));
    expect(sub.outcome).toEqual({ ok: true, value: [] });

    await t.mutation(api.messages.send, { author, body: "elsewhere", channel: "other" });
    await settle(engine);
    expect(seen).toHaveLength(0);

    await t.mutation(api.messages.send, { author, body: "breaking", channel: "news" });
    await settle(engine);
    expect(seen).toHaveLength(1);
    expect((seen[0] as { value: { body: string }[] }).value[0]!.body).toBe("breaking");
    sub.unsubscribe();
  });

  it("finds the live queries a commit touches without testing the others' read sets", async () => {
    t = walkinTest(schema, modules);
    const engine = await t.engine();
    const author = await t.mutation(api.users.create, { name: "a" });
    const seen = new Map<string, number>();
    const subs = [];
    for (let i = 0; i < 300; i++) {
      const channel = `c${i}`;
      subs.push(await engine.subscriptions.subscribe("messages:list", { channel }, {}, () => seen.set(channel, (seen.get(channel) ?? 0) + 1)));
    }
    const tested = vi.spyOn(ReadSet.prototype, "firstOverlap");
    await t.mutation(api.messages.send, { author, body: "hello", channel: "c7" });
    await settle(engine);
    // Testing every live query's read set would be 300 calls for this one commit.
    expect(tested.mock.calls.length).toBeLessThan(10);
    tested.mockRestore();
    expect([...seen]).toEqual([["c7", 1]]);
    for (const sub of subs) sub.unsubscribe();
    expect(engine.subscriptions.size).toBe(0);
  });

  it("shares one execution between identical subscriptions", async () => {
    t = walkinTest(schema, modules);
    const engine = await t.engine();
    const before = engine.stats.queryRuns;
    const [a, b] = await Promise.all([
      engine.subscriptions.subscribe("messages:list", { channel: "x" }, {}, () => {}),
      engine.subscriptions.subscribe("messages:list", { channel: "x" }, {}, () => {}),
    ]);
    expect(engine.stats.queryRuns - before).toBe(1);
    expect(engine.subscriptions.size).toBe(1);
    a.unsubscribe();
    b.unsubscribe();
    expect(engine.subscriptions.size).toBe(0);
  });
});

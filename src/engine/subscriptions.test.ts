/**
 * Live queries that start or stop depending on who is asking (`Subscriptions.splitByIdentity`),
 * and the race between such a split and subscribers coming and going while it runs.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { anyApi, type ApiFromModules, defineSchema, defineTable, mutation, query } from "../server/index.js";
import type { UserIdentity } from "../server/registration.js";
import { v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import type { Caller, Engine, QueryOutcome } from "./engine.js";
import { settle } from "./fixtures/settle.js";
import { markStorageFailure } from "./storageGuard.js";
import { Engine as EngineClass } from "./engine.js";
import { HookedStorage } from "./fixtures/hookedStorage.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import type { IndexEntry, ScanRequest } from "../storage/types.js";

const schema = defineSchema({
  notices: defineTable({ text: v.string(), personal: v.boolean() }),
});

const notices = {
  /** What everyone sees, until the notice turns personal: then each caller sees their own name. */
  read: query({
    args: {},
    handler: async (ctx) => {
      const notice = await ctx.db.query("notices").first();
      if (notice === null) return "no notice";
      if (!notice.personal) return notice.text;
      const who = await ctx.auth.getUserIdentity();
      return `${notice.text}, ${who?.subject ?? "stranger"}`;
    },
  }),
  post: mutation({ args: { text: v.string(), personal: v.boolean() }, handler: (ctx, args) => ctx.db.insert("notices", args) }),
  set: mutation({
    args: { text: v.string(), personal: v.boolean() },
    handler: async (ctx, args) => {
      const notice = await ctx.db.query("notices").first();
      await ctx.db.patch(notice!._id, args);
    },
  }),
};

const modules = { notices };
const api = anyApi as unknown as ApiFromModules<typeof modules>;

let t: ReturnType<typeof walkinTest<typeof schema>>;
afterEach(async () => t?.close());

const person = (subject: string): { identity: UserIdentity } => ({
  identity: { subject, issuer: "test", tokenIdentifier: `test|${subject}` },
});

/**
 * Holds the engine's first `count` query runs for callers `matching`, each until the test lets
 * it go: `next()` resolves, once the next of them is waiting, with the function that lets it go.
 */
function holdQueryRuns(engine: Engine, matching: (caller: Caller) => boolean, count = 1) {
  const run = engine.executeQuery.bind(engine);
  const waiting: Array<() => void> = [];
  let arrived: (() => void) | null = null;
  vi.spyOn(engine, "executeQuery").mockImplementation(async (fn, path, args, caller, ts) => {
    if (count > 0 && matching(caller)) {
      count--;
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        arrived?.();
      });
    }
    return run(fn, path, args, caller, ts);
  });
  return {
    async next(): Promise<() => void> {
      while (waiting.length === 0) await new Promise<void>((resolve) => (arrived = resolve));
      return waiting.shift()!;
    },
  };
}

/** A new backend whose one notice says `text`. */
async function start(text: string, personal: boolean) {
  t = walkinTest(schema, modules);
  const engine = await t.engine();
  await t.mutation(api.notices.post, { text, personal });
  return engine;
}

/** Subscribes to `notices:read` as `subject`; `seen` collects each result it hears after the first. */
async function watch(engine: Engine, subject: string) {
  const seen: unknown[] = [];
  const listener = (outcome: QueryOutcome) => seen.push(outcome.ok ? outcome.value : outcome.error.message);
  const sub = await engine.subscriptions.subscribe("notices:read", {}, person(subject), listener);
  return { seen, sub };
}

describe("live queries split by identity", () => {
  it("gives each caller their own result once a shared query reads who is asking", async () => {
    const engine = await start("hello", false);
    const ada = await watch(engine, "ada");
    const bob = await watch(engine, "bob");
    expect([ada.sub.outcome, bob.sub.outcome]).toEqual([
      { ok: true, value: "hello" },
      { ok: true, value: "hello" },
    ]);
    expect(engine.subscriptions.size).toBe(1); // shared while it reads no identity

    await t.mutation(api.notices.set, { text: "hi", personal: true });
    await settle(engine);
    expect(ada.seen).toEqual(["hi, ada"]);
    expect(bob.seen).toEqual(["hi, bob"]);
    expect(engine.subscriptions.size).toBe(2);

    await t.mutation(api.notices.set, { text: "hey", personal: true });
    await settle(engine);
    expect(ada.seen).toEqual(["hi, ada", "hey, ada"]);
    expect(bob.seen).toEqual(["hi, bob", "hey, bob"]);

    // Unsubscribing reaches the query each subscriber was moved to, not the shared one.
    ada.sub.unsubscribe();
    expect(engine.subscriptions.size).toBe(1);
    await t.mutation(api.notices.set, { text: "bye", personal: true });
    await settle(engine);
    expect(ada.seen).toEqual(["hi, ada", "hey, ada"]);
    expect(bob.seen).toEqual(["hi, bob", "hey, bob", "bye, bob"]);
    bob.sub.unsubscribe();
    expect(engine.subscriptions.size).toBe(0);
  });

  it("moves a group into the query already live for its identity instead of replacing it", async () => {
    const engine = await start("hi", true);
    const bob = await watch(engine, "bob"); // Bob's own query
    await t.mutation(api.notices.set, { text: "hello", personal: false });
    await settle(engine);
    const ada = await watch(engine, "ada"); // a shared one
    const bobToo = await watch(engine, "bob"); // joins it
    expect(engine.subscriptions.size).toBe(2);

    await t.mutation(api.notices.set, { text: "hi", personal: true }); // the shared one splits
    await settle(engine);
    expect(engine.subscriptions.size).toBe(2); // Bob's, now with both his subscribers, and Ada's
    expect(bob.seen).toEqual(["hello", "hi, bob"]);
    expect(bobToo.seen).toEqual(["hi, bob"]); // once, though two paths could tell it
    expect(ada.seen).toEqual(["hi, ada"]);

    await t.mutation(api.notices.set, { text: "hey", personal: true });
    await settle(engine);
    expect(bob.seen).toEqual(["hello", "hi, bob", "hey, bob"]);
    expect(bobToo.seen).toEqual(["hi, bob", "hey, bob"]);
    expect(ada.seen).toEqual(["hi, ada", "hey, ada"]);
    for (const { sub } of [bob, ada, bobToo]) sub.unsubscribe();
    expect(engine.subscriptions.size).toBe(0);
  });

  it("leaves the shared query as it was when storage fails one of the split's runs, and splits it on the retry", async () => {
    const engine = await start("hello", false);
    const watchers = [await watch(engine, "ada"), await watch(engine, "bob")];
    const run = engine.executeQuery.bind(engine);
    let failures = 0;
    vi.spyOn(engine, "executeQuery").mockImplementation(async (fn, path, args, caller, ts) => {
      const real = await run(fn, path, args, caller, ts);
      if (caller.identity?.subject !== "bob" || failures++ > 0) return real;
      return { ...real, outcome: { ok: false, error: markStorageFailure(new Error("the disk went away")) } };
    });
    await t.mutation(api.notices.set, { text: "hi", personal: true });
    await settle(engine); // through the failed flush and its retry 250 ms later
    expect(failures).toBeGreaterThan(1);
    expect(watchers.map(({ seen }) => seen)).toEqual([["hi, ada"], ["hi, bob"]]);
    expect(engine.subscriptions.size).toBe(2);
    for (const { sub } of watchers) sub.unsubscribe();
    expect(engine.subscriptions.size).toBe(0);
  });

  it("runs the query for an identity that joined the shared query while it was being split", async () => {
    const engine = await start("hello", false);
    const watchers = [await watch(engine, "ada"), await watch(engine, "bob")];
    // Hold the split's run as Bob (the flush's own run, as Ada, goes through).
    const bobsRun = holdQueryRuns(engine, (caller) => caller.identity?.subject === "bob").next();
    await t.mutation(api.notices.set, { text: "hi", personal: true });
    const letBobsRunGo = await bobsRun;
    const carol = await watch(engine, "carol");
    watchers.push(carol);
    expect(carol.sub.outcome).toEqual({ ok: true, value: "hello" }); // the shared result, still live
    letBobsRunGo();
    await settle(engine);
    expect(engine.subscriptions.size).toBe(3);
    expect(watchers.map(({ seen }) => seen)).toEqual([["hi, ada"], ["hi, bob"], ["hi, carol"]]);
    for (const { sub } of watchers) sub.unsubscribe();
    expect(engine.subscriptions.size).toBe(0);
  });

  it("hands a group moved into a query made at an older snapshot the split's own newer result", async () => {
    // 1. The notice is personal ("one"). A second subscription of Bob's starts its query; its
    //    run is held, at that snapshot.
    // 2. The notice turns public ("two"). Ada subscribes, then Bob: one shared query.
    // 3. The notice turns personal ("three"): the flush splits the shared query, and its run as
    //    Bob is held.
    // 4. The run of step 1 goes on: "one, bob" under Bob's key, live and dirty, since the
    //    commits of steps 2 and 3 came after its snapshot.
    // 5. The split goes on and moves Bob into that query. The flush publishes step 3's commit,
    //    so Bob must hear "three, bob", never "one, bob".
    const engine = await start("one", true);
    const bobsRuns = holdQueryRuns(engine, (caller) => caller.identity?.subject === "bob", 2);
    const watchingAgain = watch(engine, "bob");
    const letCreationGo = await bobsRuns.next(); // step 1
    await t.mutation(api.notices.set, { text: "two", personal: false });
    await settle(engine);
    const ada = await watch(engine, "ada");
    const bob = await watch(engine, "bob"); // step 2
    await t.mutation(api.notices.set, { text: "three", personal: true });
    const letSplitGo = await bobsRuns.next(); // step 3
    letCreationGo();
    while (engine.subscriptions.size < 2) await new Promise((resolve) => setImmediate(resolve)); // step 4
    letSplitGo(); // step 5
    const bobAgain = await watchingAgain;
    await settle(engine);
    expect(bobAgain.sub.outcome).toEqual({ ok: true, value: "three, bob" });
    expect([ada.seen, bob.seen, bobAgain.seen]).toEqual([["three, ada"], ["three, bob"], []]);
    expect(engine.subscriptions.size).toBe(2);
    for (const { sub } of [ada, bob, bobAgain]) sub.unsubscribe();
    expect(engine.subscriptions.size).toBe(0);
  });

  it("keeps a newer query live when an older one it replaced is split after being released", async () => {
    // The race, step by step:
    // 1. Ada subscribes; the query reads no identity, so it is shared (under its base key).
    // 2. A commit turns the notice personal, and a flush starts re-running the query; the re-run
    //    is held before it reads anything, at that commit's snapshot.
    // 3. Ada unsubscribes: the query is released and leaves the live set.
    // 4. A commit turns the notice back to public; with nothing live, it is published at once.
    // 5. Bob subscribes: his query runs at that newer snapshot, reads no identity, and becomes
    //    live under the same base key as the released one.
    // 6. The held re-run goes on at step 2's snapshot, reads an identity, and splits the
    //    released query. Taking the released query out of the live set must not take out Bob's,
    //    which sits under the same key: if it did, Bob would never hear of a later commit.
    const engine = await start("hello", false);
    const ada = await watch(engine, "ada"); // step 1
    const rerun = holdQueryRuns(engine, () => true).next();
    await t.mutation(api.notices.set, { text: "hi", personal: true });
    const letRerunGo = await rerun; // step 2
    ada.sub.unsubscribe(); // step 3
    expect(engine.subscriptions.size).toBe(0);
    await t.mutation(api.notices.set, { text: "hello again", personal: false }); // step 4
    const bob = await watch(engine, "bob"); // step 5
    expect(bob.sub.outcome).toEqual({ ok: true, value: "hello again" });
    letRerunGo(); // step 6
    await settle(engine);
    expect(engine.subscriptions.size).toBe(1);

    await t.mutation(api.notices.set, { text: "goodbye", personal: false });
    await settle(engine);
    expect(bob.seen).toEqual(["goodbye"]);
    expect(ada.seen).toEqual([]);
    bob.sub.unsubscribe();
    expect(engine.subscriptions.size).toBe(0);
  });
});

describe("a live query that storage always fails", () => {
  it("shows its error and does not stop the other live queries from updating", async () => {
    const tables = defineSchema({ good: defineTable({ n: v.number() }), bad: defineTable({ n: v.number() }) });
    const t = {
      goodCount: query({ args: {}, handler: async (ctx) => (await ctx.db.query("good").collect()).length }),
      badCount: query({ args: {}, handler: async (ctx) => (await ctx.db.query("bad").collect()).length }),
      addGood: mutation({ args: {}, handler: (ctx) => ctx.db.insert("good", { n: 1 }) }),
    };
    // Every scan of the `bad` table fails, as a scan past a statement timeout would, every time.
    let badIndexes = new Set<string>();
    let recording = false;
    class FailingScans extends HookedStorage {
      override scan(request: ScanRequest): Promise<IndexEntry[]> {
        if (recording) badIndexes.add(request.indexId);
        else if (badIndexes.has(request.indexId)) return Promise.reject(new Error("canceling statement due to statement timeout"));
        return super.scan(request);
      }
    }
    const engine = await EngineClass.open({
      storage: new FailingScans(await openSqliteStorage({ filename: ":memory:" })),
      schema: tables,
      modules: { t },
      runScheduler: false,
      readCacheBytes: 0,
      storageRetryMs: 100,
      logError: () => {},
    });
    try {
      recording = true;
      await engine.runQuery("t:badCount", {});
      recording = false;
      badIndexes = new Set(badIndexes);
      const seen: unknown[] = [];
      await engine.subscriptions.subscribe("t:goodCount", {}, { fromClient: true }, (outcome) => seen.push(outcome.ok ? outcome.value : "error"));
      const bad = await engine.subscriptions.subscribe("t:badCount", {}, { fromClient: true }, () => {});
      expect(bad.outcome.ok).toBe(false);
      // Let its retries start: from then on every flush runs it again, and fails.
      await new Promise((resolve) => setTimeout(resolve, 600));
      for (let i = 1; i <= 3; i++) await engine.runMutation("t:addGood", {});
      // Before, the failing query held back every flush: the good one stayed at its first result.
      await waitUntil(() => seen.at(-1) === 3);
      expect(seen.at(-1)).toBe(3);
    } finally {
      await engine.close();
    }
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

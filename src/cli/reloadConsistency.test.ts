/**
 * What a user expects across a hot reload of `walkin dev`, where for a while two engines run on
 * one SQLite file, each on its own connection: the old engine finishes the actions it started
 * (EngineSwitch.use, server.retired), the new one serves new calls, commits and prunes
 * (storage/sqlite/fileFloors.ts).
 *
 * - An action on the old engine reads (ctx.runQuery) a consistent snapshot, however much the
 *   new engine has changed and pruned meanwhile: no document that existed is missing, no commit
 *   is seen in part.
 * - Its mutations land exactly once and are visible afterwards, through the new engine.
 * - A connected client's live queries end up showing the final state.
 * - Nothing is left as an unhandled rejection.
 *
 * Engine-level tests open two Engines on one real SQLite file (as commitPath.test.ts "two
 * engines sharing one database"); the CLI tests spawn the real `walkin dev` (fixtures/cli.ts)
 * and watch it with the real browser client over a loopback WebSocket.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { WebSocket } from "ws";
import { afterEach, describe, expect, it } from "vitest";
import { action, anyApi, defineSchema, defineTable, mutation, query } from "../server/index.js";
import { v, WalkinError } from "../values/index.js";
import { Engine } from "../engine/engine.js";
import { QueryImpl } from "../engine/query.js";
import { withLatency } from "../storage/latency.js";
import { withoutCommitWatch } from "../storage/conformance/unwatched.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import type { Storage } from "../storage/types.js";
import { seededRandom } from "../storage/conformance/history.js";
import { WalkinClient } from "../browser/index.js";
import { callRaw, Cli, SCHEMA, TSCONFIG, writeProject } from "./fixtures/cli.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
process.on("unhandledRejection", onUnhandled);
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

// ------------------------------------------------------------------ engine level

const ACCOUNTS = 8;
const START_BALANCE = 100;

const schema = defineSchema({
  accounts: defineTable({ owner: v.string(), balance: v.number() }).index("by_owner", ["owner"]),
  /** One row per applied transfer, naming its request: a second application shows as a repeat. */
  ledger: defineTable({ request: v.string() }),
  /** How many transfers were applied: always equal to the ledger's row count. */
  counters: defineTable({ name: v.string(), value: v.number() }).index("by_name", ["name"]),
  /** Short-lived documents the new engine inserts and deletes (tombstones for the pruner). */
  scratch: defineTable({ n: v.number() }),
});

/** What a snapshot shows of the bank: checked for consistency by `checkSnapshot`. */
interface BankSnapshot {
  balances: Record<string, number>;
  /** Each account, read again by its ID: false if `db.get` missed a document the scan found. */
  byIdAgrees: boolean;
  ledger: string[];
  transfers: number;
  scratch: number;
}

/** The test's side of the old engine's action: what it does between reads (engine-level only). */
const hooks: {
  between: (round: number) => Promise<{ transfer: { from: string; to: string; amount: number } | null }>;
  seen: BankSnapshot[];
  /** The old engine's transfers that gave up with CONFLICT: not applied, so not expected. */
  gaveUp: string[];
} = { between: async () => ({ transfer: null }), seen: [], gaveUp: [] };

const bank = {
  open: mutation({
    args: { owner: v.string() },
    handler: async (ctx, { owner }) => ctx.db.insert("accounts", { owner, balance: START_BALANCE }),
  }),
  transfer: mutation({
    args: { from: v.string(), to: v.string(), amount: v.number(), request: v.string() },
    handler: async (ctx, { from, to, amount, request }) => {
      const a = await ctx.db.query("accounts").withIndex("by_owner", (q) => q.eq("owner", from)).unique();
      const b = await ctx.db.query("accounts").withIndex("by_owner", (q) => q.eq("owner", to)).unique();
      if (!a || !b) throw new Error(`no such account: ${!a ? from : to}`);
      await ctx.db.patch(a._id, { balance: a.balance - amount });
      const b2 = (await ctx.db.get(b._id))!;
      await ctx.db.patch(b._id, { balance: b2.balance + amount });
      await ctx.db.insert("ledger", { request });
      const counter = await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", "transfers")).unique();
      if (counter) await ctx.db.patch(counter._id, { value: counter.value + 1 });
      else await ctx.db.insert("counters", { name: "transfers", value: 1 });
      return request;
    },
  }),
  /** One more on the shared transfer counter: the hot spot of an app. */
  bump: mutation({
    args: {},
    handler: async (ctx) => {
      const counter = await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", "hot")).unique();
      if (counter) await ctx.db.patch(counter._id, { value: counter.value + 1 });
      else await ctx.db.insert("counters", { name: "hot", value: 1 });
    },
  }),
  hot: query({
    args: {},
    handler: async (ctx) => (await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", "hot")).unique())?.value ?? 0,
  }),
  churn: mutation({
    args: { n: v.number() },
    handler: async (ctx, { n }) => {
      const old = await ctx.db.query("scratch").take(3);
      for (const doc of old) await ctx.db.delete(doc._id);
      await ctx.db.insert("scratch", { n });
    },
  }),
  snapshot: query({
    args: {},
    handler: async (ctx): Promise<BankSnapshot> => {
      const accounts = await ctx.db.query("accounts").collect();
      let byIdAgrees = true;
      for (const account of accounts) {
        const again = await ctx.db.get(account._id);
        if (again === null || again.balance !== account.balance) byIdAgrees = false;
      }
      const counter = await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", "transfers")).unique();
      return {
        balances: Object.fromEntries(accounts.map((account) => [account.owner, account.balance])),
        byIdAgrees,
        ledger: (await ctx.db.query("ledger").collect()).map((row) => row.request),
        transfers: counter?.value ?? 0,
        scratch: (await ctx.db.query("scratch").collect()).length,
      };
    },
  }),
  /** Runs on the old engine across the reload: reads, lets the test act, sometimes transfers. */
  audit: action({
    args: { rounds: v.number() },
    handler: async (ctx, { rounds }) => {
      for (let round = 0; round < rounds; round++) {
        const { transfer } = await hooks.between(round);
        hooks.seen.push((await ctx.runQuery(anyApi.bank!.snapshot!, {})) as BankSnapshot);
        if (transfer) {
          // Liveness is not what this action checks. It has no retry lane against the new
          // engine's transfers on the hot counter, and on a starved CPU (a full test run on two
          // cores) it could lose 65 times in a row and give up with CONFLICT, which applies
          // nothing: that request is then expected nowhere, and any trace of it is a failure.
          try {
            await ctx.runMutation(anyApi.bank!.transfer!, { ...transfer, request: `old/${round}` });
          } catch (error) {
            if (!(error instanceof WalkinError && error.code === "CONFLICT")) throw error;
            hooks.gaveUp.push(`old/${round}`);
          }
        }
      }
      hooks.seen.push((await ctx.runQuery(anyApi.bank!.snapshot!, {})) as BankSnapshot);
      return rounds;
    },
  }),
};
const modules = { bank };
const owners = Array.from({ length: ACCOUNTS }, (_, i) => `o${i}`);

/** A snapshot is consistent: every account there, money conserved, ledger and counter agree, no repeats. */
function checkSnapshot(snapshot: BankSnapshot, where: string): void {
  expect(Object.keys(snapshot.balances).sort(), `${where}: accounts present`).toEqual([...owners].sort());
  expect(snapshot.byIdAgrees, `${where}: db.get agrees with the scan`).toBe(true);
  const total = Object.values(snapshot.balances).reduce((sum, balance) => sum + balance, 0);
  expect(total, `${where}: money conserved (no transfer seen in part)`).toBe(ACCOUNTS * START_BALANCE);
  expect(snapshot.ledger.length, `${where}: ledger rows = transfer counter`).toBe(snapshot.transfers);
  expect(snapshot.ledger.filter((row, i) => snapshot.ledger.indexOf(row) !== i), `${where}: repeated ledger rows`).toEqual([]);
}

/** Storage whose `pruneHistory` calls (the engine's and the test's) run one at a time. */
function serializedPrunes(storage: Storage): Storage {
  let chain: Promise<unknown> = Promise.resolve();
  return new Proxy(storage, {
    get(target, property, receiver) {
      if (property === "pruneHistory") {
        return (ts: number) => {
          const run = chain.then(() => target.pruneHistory(ts));
          chain = run.catch(() => {});
          return run;
        };
      }
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

type Mode = "deferred versions" | "versions written inline";

async function openOnFile(filename: string, mode: Mode): Promise<Storage> {
  const raw = await openSqliteStorage({
    filename,
    // Aggressive pruning: small trim steps, a full pass (which also deletes the other
    // connection's superseded versions) on every sweep.
    pruneBatchSize: 5,
    historySweep: { fullPassIntervalMs: 0, fullPassRowsPerCall: 50, maxDirtyGroups: 16 },
    ...(mode === "versions written inline" ? { deferredVersions: false as const } : {}),
  });
  return serializedPrunes(withLatency(raw, { read: [0, 1], commit: 1 }));
}

async function openEngine(storage: Storage): Promise<Engine> {
  const engine = await Engine.open({ storage, schema, modules, runScheduler: false, logError: () => {} });
  let closed = false;
  cleanups.push(async () => {
    if (!closed) await engine.close();
    closed = true;
  });
  return engine;
}

describe("engine level: an old engine's action across a reload, the new engine changing and pruning", () => {
  const seeds = (process.env["RELOAD_CONSISTENCY_SEEDS"] ?? "1,2,3").split(",").map(Number);
  const cases = [
    ["deferred versions", "between reads"],
    ["versions written inline", "between reads"],
    ["deferred versions", "during reads"],
    ["versions written inline", "during reads"],
  ] as const;
  for (const [mode, timing] of cases) {
    for (const seed of seeds) {
      it(`reads consistent snapshots, its transfers land once (${mode}, new engine working ${timing}, seed ${seed})`, async () => {
        unhandled.length = 0;
        const random = seededRandom(seed * 7919 + cases.findIndex(([m, t]) => m === mode && t === timing));
        const dir = await tempDir("walkin-reload-consistency-");
        const filename = path.join(dir, "data.sqlite");

        // The old engine: the version that was serving before the reload.
        const oldStorage = await openOnFile(filename, mode);
        const oldEngine = await openEngine(oldStorage);
        for (const owner of owners) await oldEngine.runMutation("bank:open", { owner });
        for (let i = 0; i < 5; i++) {
          await oldEngine.runMutation("bank:transfer", { from: owners[i]!, to: owners[(i + 1) % ACCOUNTS]!, amount: 3, request: `before/${i}` });
        }

        // The reload: a new engine on its own connection to the same file (by another spelling of its path).
        const newStorage = await openOnFile(path.join(dir, ".", "data.sqlite"), mode);
        const newEngine = await openEngine(newStorage);
        const expectedRequests = Array.from({ length: 5 }, (_, i) => `before/${i}`);
        const pick = () => owners[Math.floor(random() * ACCOUNTS)]!;
        const pair = () => {
          const from = pick();
          let to = pick();
          if (to === from) to = owners[(owners.indexOf(from) + 1) % ACCOUNTS]!;
          return { from, to, amount: 1 + Math.floor(random() * 20) };
        };
        let newRequest = 0;

        /**
         * The new engine serves new calls: transfers on the accounts the old one reads, scratch
         * documents inserted and deleted, a read of its own, then a sweep at its own latest
         * (nothing of it reads below then: its calls are done).
         */
        const newEngineStep = async (label: string) => {
          const calls: Array<Promise<unknown>> = [];
          const count = 1 + Math.floor(random() * 6);
          for (let k = 0; k < count; k++) {
            if (random() < 0.75) {
              const request = `new/${newRequest++}`;
              expectedRequests.push(request);
              calls.push(newEngine.runMutation("bank:transfer", { ...pair(), request }));
            } else {
              calls.push(newEngine.runMutation("bank:churn", { n: newRequest * 10 + k }));
            }
          }
          calls.push(newEngine.runQuery("bank:snapshot", {}).then((snapshot) => checkSnapshot(snapshot as unknown as BankSnapshot, `new engine, ${label}`)));
          await Promise.all(calls);
          if (random() < 0.7) await newStorage.pruneHistory(newEngine.latestTimestamp);
        };

        // "during reads": the new engine works on its own, concurrently with the old engine's reads.
        let stopped = false;
        let steps = 0;
        const background =
          timing === "during reads"
            ? (async () => {
                while (!stopped) {
                  await newEngineStep(`step ${steps++}`);
                  // A breath between steps: without it the old engine's transfers (which read the
                  // same hot counter, and have no retry lane across engines) would often lose 65
                  // times in a row on a loaded machine and give up with CONFLICT (tolerated by
                  // the audit, but then they test less).
                  await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 3)));
                }
              })()
            : Promise.resolve();

        hooks.seen = [];
        hooks.gaveUp = [];
        hooks.between = async (round) => {
          if (timing === "between reads") {
            await newEngineStep(`round ${round}`);
            // The old engine sweeps too, at its own latest (its action holds no snapshot between reads).
            if (random() < 0.3) await oldStorage.pruneHistory(oldEngine.latestTimestamp);
          } else {
            await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 4)));
          }
          if (random() < 0.4) {
            expectedRequests.push(`old/${round}`);
            return { transfer: pair() };
          }
          return { transfer: null };
        };

        const rounds = 25;
        const audited = oldEngine.runAction("bank:audit", { rounds });
        await audited.finally(() => (stopped = true));
        await background;
        expect(await audited).toBe(rounds);
        expect(hooks.seen.length).toBe(rounds + 1);
        hooks.seen.forEach((snapshot, i) => checkSnapshot(snapshot, `old engine's action, read ${i}`));
        // One engine's successive snapshots never go back in time.
        for (let i = 1; i < hooks.seen.length; i++) {
          expect(hooks.seen[i]!.transfers, `old engine's read ${i} went back in time`).toBeGreaterThanOrEqual(hooks.seen[i - 1]!.transfers);
        }

        // The reload completes: the old engine closes, the new one learns what it committed.
        await oldEngine.close();
        await newEngine.refreshFromStorage();
        const final = (await newEngine.runQuery("bank:snapshot", {})) as unknown as BankSnapshot;
        checkSnapshot(final, "new engine after the old one closed");
        const applied = expectedRequests.filter((request) => !hooks.gaveUp.includes(request));
        expect([...final.ledger].sort(), "every transfer landed exactly once").toEqual(applied.sort());

        // And what is on disk says the same to an engine opened afterwards (a restart).
        await newStorage.pruneHistory(newEngine.latestTimestamp);
        await newEngine.close();
        const restarted = await openEngine(await openOnFile(filename, mode));
        expect(await restarted.runQuery("bank:snapshot", {})).toEqual(final);
        expect(unhandled, "unhandled rejections").toEqual([]);
      }, 60_000);
    }
  }
});

describe("engine level: the old engine's mutations on a hot spot the new engine keeps writing", () => {
  it("an action's ctx.runMutation on the old engine gets through, as it would on one engine (retry lanes)", async () => {
    const dir = await tempDir("walkin-reload-hot-");
    const filename = path.join(dir, "data.sqlite");
    const oldEngine = await openEngine(await openOnFile(filename, "deferred versions"));
    await oldEngine.runMutation("bank:bump", {});
    const newEngine = await openEngine(await openOnFile(filename, "deferred versions"));
    // The new version's clients keep incrementing the counter, six calls at a time.
    let stopped = false;
    let newBumps = 0;
    const client = async () => {
      while (!stopped) {
        await newEngine.runMutation("bank:bump", {});
        newBumps++;
      }
    };
    const clients = Array.from({ length: 6 }, client);
    // Meanwhile an action still running on the old version increments it a few times.
    const outcome = await (async () => {
      for (let i = 0; i < 5; i++) await oldEngine.runMutation("bank:bump", {});
      return "done";
    })().catch((error: Error) => error.message);
    stopped = true;
    await Promise.all(clients);
    expect(outcome).toBe("done");
    await oldEngine.close();
    await newEngine.refreshFromStorage();
    expect(await newEngine.runQuery("bank:hot", {})).toBe(1 + 5 + newBumps);
  }, 120_000);

  it("the same increments on one engine, for comparison", async () => {
    const dir = await tempDir("walkin-reload-hot-");
    const engine = await openEngine(await openOnFile(path.join(dir, "data.sqlite"), "deferred versions"));
    await engine.runMutation("bank:bump", {});
    let stopped = false;
    let others = 0;
    const client = async () => {
      while (!stopped) {
        await engine.runMutation("bank:bump", {});
        others++;
      }
    };
    const clients = Array.from({ length: 6 }, client);
    const outcome = await (async () => {
      for (let i = 0; i < 5; i++) await engine.runMutation("bank:bump", {});
      return "done";
    })().catch((error: Error) => error.message);
    stopped = true;
    await Promise.all(clients);
    expect(outcome).toBe("done");
    expect(await engine.runQuery("bank:hot", {})).toBe(1 + 5 + others);
  }, 120_000);
});

describe("engine level: scheduled functions across a reload", () => {
  it("once handed over, the old engine runs no due job: a job the new code scheduled is not run on the old code", async () => {
    const dir = await tempDir("walkin-reload-jobs-");
    const filename = path.join(dir, "db.sqlite");
    const jobsSchema = defineSchema({ events: defineTable({ kind: v.string() }) });
    const oldModules = { jobs: { touch: mutation({ args: {}, handler: (ctx) => ctx.db.insert("events", { kind: "old touch" }) }) } };
    const newModules = {
      jobs: {
        ...oldModules.jobs,
        // Only in the new version: the old one cannot run it.
        added: mutation({ args: {}, handler: (ctx) => ctx.db.insert("events", { kind: "added ran" }) }),
        scheduleAdded: mutation({ args: {}, handler: (ctx) => ctx.scheduler.runAfter(0, anyApi.jobs!.added!, {}) }),
      },
    };
    const oldEngine = await Engine.open({ storage: await openSqliteStorage({ filename }), schema: jobsSchema, modules: oldModules, logError: () => {} });
    cleanups.push(() => oldEngine.close());
    // The new engine's scheduler is off, so that only the old one could take the job.
    const newEngine = await Engine.open({ storage: await openSqliteStorage({ filename }), schema: jobsSchema, modules: newModules, runScheduler: false });
    cleanups.push(() => newEngine.close());
    oldEngine.handOver();
    await newEngine.runMutation("jobs:scheduleAdded", {});
    // The old engine learns of the job with its next commit, which pokes a running scheduler.
    await oldEngine.runMutation("jobs:touch", {});
    const jobStates = () => newEngine.read(async (txn) => {
      const table = newEngine.catalog.lookup("_scheduled_functions", { system: true })!;
      return (await new QueryImpl(txn, table).collect()).map((job) => (job.error ? `${String(job.state)}: ${String(job.error)}` : job.state));
    });
    // Before, the old scheduler took the job and failed it ("Unknown function jobs:added"),
    // usually within a few milliseconds: give it two seconds to (wrongly) do so.
    for (let waited = 0; waited < 2_000 && (await jobStates())[0] === "pending"; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await jobStates()).toEqual(["pending"]);
    // The serving engine's scheduler runs it, on the new code.
    await newEngine.scheduler.runUntilIdle();
    expect(await jobStates()).toEqual(["success"]);
    const events = await newEngine.read(async (txn) => (await new QueryImpl(txn, newEngine.catalog.lookup("events")!).collect()).map((e) => e.kind));
    expect(events.sort()).toEqual(["added ran", "old touch"]);
  });

  it("handed over, an old engine's action reads what the serving engine committed just before, told of it or not", async () => {
    const dir = await tempDir("walkin-reload-handover-");
    const filename = path.join(dir, "db.sqlite");
    // The old engine is not told of the other's commits (no commit watch, as in the
    // milliseconds before the watch looks): only the refresh of a handed-over engine's
    // ctx.runQuery can show them to it, and a read must show every commit acknowledged before it.
    const oldEngine = await openEngine(withoutCommitWatch(await openSqliteStorage({ filename })));
    for (const owner of owners) await oldEngine.runMutation("bank:open", { owner });
    const newEngine = await openEngine(await openSqliteStorage({ filename }));
    oldEngine.handOver();
    await newEngine.runMutation("bank:transfer", { from: "o0", to: "o1", amount: 5, request: "new/after-handover" });
    hooks.seen = [];
    expect(await oldEngine.runAction("bank:audit", { rounds: 0 })).toBe(0);
    expect(hooks.seen[0]!.ledger).toEqual(["new/after-handover"]);
  });

  it("handed over, an old engine's action sees a session revoked through the serving engine as revoked", async () => {
    const dir = await tempDir("walkin-reload-identity-");
    const filename = path.join(dir, "db.sqlite");
    // Tokens are rows of `sessions`: deleting one revokes it.
    const authSchema = defineSchema({ sessions: defineTable({ token: v.string(), user: v.string() }).index("by_token", ["token"]) });
    const authenticate = async (ctx: { db: { query: (table: string) => any } }, token: string) => {
      const session = await ctx.db.query("sessions").withIndex("by_token", (q: any) => q.eq("token", token)).unique();
      return session ? { subject: session.user, issuer: "test", tokenIdentifier: `test|${session.user}` } : null;
    };
    const authModules = {
      sessions: {
        open: mutation({ args: { token: v.string(), user: v.string() }, handler: (ctx, args) => ctx.db.insert("sessions", args) }),
        revoke: mutation({
          args: { token: v.string() },
          handler: async (ctx, { token }) => {
            const session = await ctx.db.query("sessions").withIndex("by_token", (q) => q.eq("token", token)).unique();
            if (session) await ctx.db.delete(session._id);
          },
        }),
        whoami: action({ args: {}, handler: async (ctx) => (await ctx.auth.getUserIdentity())?.subject ?? null }),
      },
    };
    const open = async (storage: Storage) => {
      const engine = await Engine.open({ storage, schema: authSchema, modules: authModules, authenticate, runScheduler: false, logError: () => {} });
      cleanups.push(() => engine.close());
      return engine;
    };
    // Not told of the other's commits, as in the milliseconds before the commit watch looks.
    const oldEngine = await open(withoutCommitWatch(await openSqliteStorage({ filename })));
    await oldEngine.runMutation("sessions:open", { token: "t1", user: "ada" });
    const newEngine = await open(await openSqliteStorage({ filename }));
    expect(await oldEngine.runAction("sessions:whoami", {}, { token: "t1" })).toBe("ada");
    oldEngine.handOver();
    await newEngine.runMutation("sessions:revoke", { token: "t1" });
    expect(await oldEngine.runAction("sessions:whoami", {}, { token: "t1" })).toBeNull();
  });
});

// ------------------------------------------------------------------ walkin dev

const MESSAGES = `import { v } from "walkin/values";
import { anyApi } from "walkin/server";
import { existsSync } from "node:fs";
import { action, mutation, query } from "./_generated/server.js";

export const list = query({ args: {}, handler: async (ctx) => (await ctx.db.query("messages").collect()).map((m) => m.body) });
export const send = mutation({ args: { body: v.string() }, handler: async (ctx, { body }) => ctx.db.insert("messages", { body }) });
/** Writes "<tag>:started", waits until the file \`flag\` exists, reads, then writes "<tag>:done after N". */
export const waitThenSend = action({
  args: { tag: v.string(), flag: v.string() },
  handler: async (ctx, { tag, flag }) => {
    await ctx.runMutation(anyApi.messages.send, { body: tag + ":started" });
    while (!existsSync(flag)) await new Promise((r) => setTimeout(r, 20));
    const seen = await ctx.runQuery(anyApi.messages.list, {});
    await ctx.runMutation(anyApi.messages.send, { body: tag + ":done after " + seen.length });
    return seen;
  },
});
/** A long action that reports its progress as it goes: "<tag>:step 1", then after \`flag\` exists "<tag>:step 2", then waits for \`end\`. */
export const progress = action({
  args: { tag: v.string(), flag: v.string(), end: v.string() },
  handler: async (ctx, { tag, flag, end }) => {
    await ctx.runMutation(anyApi.messages.send, { body: tag + ":step 1" });
    while (!existsSync(flag)) await new Promise((r) => setTimeout(r, 20));
    await ctx.runMutation(anyApi.messages.send, { body: tag + ":step 2" });
    while (!existsSync(end)) await new Promise((r) => setTimeout(r, 20));
    return "finished";
  },
});
`;

describe("walkin dev: a client across reloads", () => {
  let running: Cli | null = null;
  afterEach(() => {
    if (running?.child.exitCode === null) running.child.kill("SIGKILL");
    running = null;
  });

  async function startDev() {
    const dir = await tempDir("walkin-reload-cli-");
    await writeProject(dir, {
      "package.json": `{ "type": "module" }\n`,
      "tsconfig.json": TSCONFIG,
      "functions/schema.ts": SCHEMA,
      "functions/messages.ts": MESSAGES,
      "functions/other.ts": "export const version = 1;\n",
    });
    const cli = (running = new Cli(["dev", "--port", "0", "--db", path.join(dir, "data.sqlite")], dir));
    const [, url] = await cli.waitFor(/Walk-in dev server: (http:\/\/\S+)/, 0, 60_000);
    const client = new WalkinClient(url!, {
      webSocketConstructor: WebSocket as unknown as typeof globalThis.WebSocket,
      reconnect: { initialDelayMs: 5, maxDelayMs: 50 },
      logger: false,
    });
    cleanups.push(() => client.close());
    const watch = client.watchQuery(anyApi.messages!.list as never, {} as never);
    const latest: { value: string[] | undefined } = { value: undefined };
    watch.onUpdate(() => (latest.value = watch.localQueryResult() as string[] | undefined));
    let version = 1;
    const reload = async () => {
      const mark = cli.output.length;
      await writeFile(path.join(dir, "functions", "other.ts"), `export const version = ${++version};\n`);
      await cli.waitFor(/✔ Functions ready/, mark, 60_000);
    };
    const list = async () => (await callRaw(url!, "query", "messages:list")).body.value as string[];
    return { dir, cli, url: url!, client, latest, reload, list };
  }

  /** Waits (bounded) for `read` to equal `expected`; returns what it last read. */
  async function eventually<T>(read: () => Promise<T> | T, expected: T, ms = 10_000): Promise<T> {
    const deadline = Date.now() + ms;
    let last = await read();
    while (Date.now() < deadline) {
      try {
        expect(last).toEqual(expected);
        return last;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
        last = await read();
      }
    }
    return last;
  }

  /**
   * Lets the second version's close (which nobody awaits: serve.ts, "retiring") end before the
   * first version's action writes, so that the order is the one under test every time. Not a
   * threshold: a slower close only makes the test pass for the wrong reason, as it did when the
   * write came first (the third version then learned it from the second's close).
   */
  const closedMeanwhile = () => new Promise((r) => setTimeout(r, 1_500));

  async function stop(cli: Cli) {
    expect(cli.output).not.toMatch(/unhandled|UnhandledPromiseRejection|Closing the previous version failed/i);
    cli.child.kill("SIGINT");
    expect(await cli.exited, cli.output).toBe(0);
  }

  it("one reload: an action in flight on the old version reads, writes once, and the live query shows it", async () => {
    const { dir, cli, client, latest, reload, list } = await startDev();
    const flag = path.join(dir, "go-1");
    const answer = client.action(anyApi.messages!.waitThenSend as never, { tag: "a", flag } as never) as Promise<string[]>;
    expect(await eventually(list, ["a:started"])).toEqual(["a:started"]);
    await reload();
    // The new version serves new calls while the old one's action waits.
    await client.mutation(anyApi.messages!.send as never, { body: "new" } as never);
    await writeFile(flag, "");
    expect(await answer, "the old version's action read its own first write").toContain("a:started");
    const final = ["a:started", "new", `a:done after ${(await answer).length}`];
    expect(await eventually(list, final), "a one-shot query on the new version").toEqual(final);
    expect(await eventually(() => latest.value, final), "the client's live query").toEqual(final);
    await stop(cli);
  }, 90_000);

  it("an action on the old version reads what the new version committed before the read began", async () => {
    const { dir, cli, client, reload, list } = await startDev();
    const flag = path.join(dir, "go-4");
    const answer = client.action(anyApi.messages!.waitThenSend as never, { tag: "d", flag } as never) as Promise<string[]>;
    expect(await eventually(list, ["d:started"])).toEqual(["d:started"]);
    await reload();
    // Acknowledged by the new version (and shown by its queries) before the action reads.
    await client.mutation(anyApi.messages!.send as never, { body: "acknowledged before the read" } as never);
    expect(await list()).toEqual(["d:started", "acknowledged before the read"]);
    await writeFile(flag, "");
    expect(await answer, "ctx.runQuery on the old version").toEqual(["d:started", "acknowledged before the read"]);
    await stop(cli);
  }, 90_000);

  it("a long action on the old version: each of its writes reaches the live query while it still runs", async () => {
    const { dir, cli, client, latest, reload, list } = await startDev();
    const flag = path.join(dir, "step-2");
    const end = path.join(dir, "end");
    const answer = client.action(anyApi.messages!.progress as never, { tag: "e", flag, end } as never) as Promise<string>;
    expect(await eventually(() => latest.value, ["e:step 1"])).toEqual(["e:step 1"]);
    await reload();
    await writeFile(flag, "");
    // The action is still running (it waits for \`end\`): its second write was acknowledged to it.
    const shown = ["e:step 1", "e:step 2"];
    expect.soft(await eventually(() => latest.value, shown), "the client's live query while the action runs").toEqual(shown);
    expect.soft(await eventually(list, shown), "a one-shot query while the action runs").toEqual(shown);
    await writeFile(end, "");
    expect(await answer).toBe("finished");
    expect(await eventually(() => latest.value, shown), "the client's live query after the action").toEqual(shown);
    await stop(cli);
  }, 90_000);

  it("two reloads while an action runs on the first version: its write reaches the live query of the third", async () => {
    const { dir, cli, client, latest, reload, list } = await startDev();
    const flag = path.join(dir, "go-2");
    const answer = client.action(anyApi.messages!.waitThenSend as never, { tag: "b", flag } as never) as Promise<string[]>;
    expect(await eventually(list, ["b:started"])).toEqual(["b:started"]);
    await reload(); // version 2: the first keeps running the action
    await reload(); // version 3: the second, idle, is closed at once
    await closedMeanwhile();
    await writeFile(flag, "");
    const seen = await answer;
    expect(seen).toEqual(["b:started"]);
    const final = ["b:started", "b:done after 1"];
    // Nothing else is written: the third version must learn the first one's last commit by itself.
    expect.soft(await eventually(() => latest.value, final), "the client's live query").toEqual(final);
    expect(await eventually(list, final), "a one-shot query on the third version").toEqual(final);
    await stop(cli);
  }, 90_000);

  it("two reloads while an action started over HTTP runs on the first version: its write reaches the third", async () => {
    const { dir, cli, url, client, reload, list } = await startDev();
    await client.close(); // no WebSocket client at all: only one-shot HTTP calls
    const flag = path.join(dir, "go-3");
    const answer = callRaw(url, "action", "messages:waitThenSend", { tag: "c", flag });
    expect(await eventually(list, ["c:started"])).toEqual(["c:started"]);
    await reload();
    await reload();
    await closedMeanwhile();
    await writeFile(flag, "");
    expect((await answer).body).toMatchObject({ status: "success", value: ["c:started"] });
    const final = ["c:started", "c:done after 1"];
    expect(await eventually(list, final), "a one-shot query on the third version").toEqual(final);
    await stop(cli);
  }, 90_000);
});

afterEach(() => {
  // Rejections left unhandled by anything above fail the test that left them.
  expect(unhandled.splice(0), "unhandled rejections").toEqual([]);
});

/**
 * Exactly-once mutations on PostgreSQL shared by several engines, with connections cut around
 * COMMIT. commitOutcome.test.ts and multiNode.test.ts check the storage alone (one cut, then
 * `findCommits`); commitPath.test.ts checks the committer on SQLite with injected faults. Here
 * whole engines (committer, storage guard, retries, receipts, pruning) run on one schema, some
 * of them through a proxy of this file that cuts TCP connections:
 *
 * - at random moments (every connection of a node at once), and
 * - at COMMIT: the answer held back then the connection cut (the commit landed, the engine
 *   cannot know), the COMMIT swallowed and the connection cut (nothing landed), the connection
 *   cut just as COMMIT passes (either), or the COMMIT delayed past the engine's storage
 *   deadline (the engine gives up waiting while the commit is still on its way).
 *
 * Every mutation logs a row of its own, so a double application shows as a repeated row. Plain
 * mutations must be acknowledged (and then applied), reported "may or may not have been
 * applied", or fail with nothing applied. Client requests (`runClientMutation`) are re-sent to
 * another node after a failure, and some are re-sent while the first copy is still in flight:
 * every request is applied once and every copy gets the same answer.
 *
 * Then one cut at a time: an answer lost while other nodes commit and prune; a node that loses
 * the database right after its COMMIT (ambiguous there, answered from the receipt elsewhere);
 * a node whose floor went stale (frozen past FLOOR_STALE_SECONDS, simulated by ageing its row)
 * while another node trims the log through part or all of its batch; and a re-send found on
 * record while its node's catch-up read is cut.
 */
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { bump, countersTable } from "../../engine/fixtures/counters.js";
import { defineSchema, defineTable, mutation, query } from "../../server/index.js";
import { v } from "../../values/index.js";
import { Engine } from "../../engine/engine.js";
import { HookedStorage } from "../../engine/fixtures/hookedStorage.js";
import { seededRandom } from "../conformance/history.js";
import type { PostgresStorage } from "./postgresStorage.js";
import { openTestSchema } from "./testDatabase.js";

const schema = defineSchema({
  counters: countersTable,
  log: defineTable({ request: v.string(), counter: v.string() }),
});

const modules = {
  c: {
    /** Read-modify-write of a counter plus a row naming the request: applied twice shows as a repeated row. */
    incrementLogged: mutation({
      args: { name: v.string(), request: v.string() },
      handler: async (ctx, { name, request }) => {
        await ctx.db.insert("log", { request, counter: name });
        return bump(ctx.db, name);
      },
    }),
    all: query({
      args: {},
      handler: async (ctx) => Object.fromEntries((await ctx.db.query("counters").collect()).map((c) => [c.name, c.value])),
    }),
    logRows: query({
      args: {},
      handler: async (ctx) => (await ctx.db.query("log").collect()).map((row) => `${row.counter}:${row.request}`),
    }),
  },
};

const AMBIGUOUS = /may or may not have been applied/;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

const waitMs = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The simple-protocol COMMIT message node-postgres sends for `client.query("COMMIT")`. */
const COMMIT_MESSAGE = Buffer.concat([Buffer.from("Q"), Buffer.from([0, 0, 0, 11]), Buffer.from("COMMIT\0")]);

type CommitFate = "pass" | "lostAnswer" | "swallowed" | "cutAsSent" | "delayed";

interface CutRates {
  lostAnswer: number;
  swallowed: number;
  cutAsSent: number;
  delayed: number;
  /** Upper bound (ms) of how long an answer is held back, or a COMMIT delayed. */
  holdMs: number;
}

/**
 * A TCP proxy to PostgreSQL that decides, for each COMMIT a client sends, what happens to it
 * (see `CommitFate`), from a seeded generator; `cutAll` closes every connection at once.
 */
class CuttingProxy {
  readonly counts: Record<CommitFate | "cutAll", number> = { pass: 0, lostAnswer: 0, swallowed: 0, cutAsSent: 0, delayed: 0, cutAll: 0 };
  enabled = false;
  url = "";
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private readonly server: net.Server;

  constructor(
    private readonly target: URL,
    private readonly random: () => number,
    private readonly rates: CutRates,
  ) {
    this.server = net.createServer((client) => this.accept(client));
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const url = new URL(this.target);
    url.host = `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
    return (this.url = url.toString());
  }

  /** Fates (and hold times) for the next COMMITs, before any random one. */
  private readonly forced: { fate: CommitFate; holdMs: number }[] = [];
  private forcedHoldMs: number | undefined;

  /** The next COMMIT through this proxy meets `fate`, held `holdMs` where that applies. */
  force(fate: CommitFate, holdMs: number): void {
    this.forced.push({ fate, holdMs });
  }

  private holdMs(): number {
    const forced = this.forcedHoldMs;
    this.forcedHoldMs = undefined;
    return forced ?? 50 + Math.floor(this.random() * this.rates.holdMs);
  }

  private fate(): CommitFate {
    const forced = this.forced.shift();
    if (forced) {
      if (forced.fate === "lostAnswer" || forced.fate === "delayed") this.forcedHoldMs = forced.holdMs;
      return forced.fate;
    }
    if (!this.enabled) return "pass";
    let r = this.random();
    for (const fate of ["lostAnswer", "swallowed", "cutAsSent", "delayed"] as const) {
      if (r < this.rates[fate]) return fate;
      r -= this.rates[fate];
    }
    return "pass";
  }

  /** Until this time (Date.now()), new connections are refused: the node cannot reach the database. */
  private downUntil = 0;

  /** Cuts every connection and refuses new ones for `ms`: an outage of this node's network. */
  down(ms: number): void {
    this.downUntil = Date.now() + ms;
    this.cutAll();
  }

  private accept(client: net.Socket): void {
    if (Date.now() < this.downUntil) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(this.target.port || 5432), this.target.hostname);
    const pair = { client, upstream };
    this.pairs.add(pair);
    let holdingBack = false;
    // Client bytes wait here while a COMMIT is delayed, so that nothing overtakes it.
    let delayedQueue: Buffer[] | null = null;
    const destroy = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", () => {});
    upstream.on("error", () => {});
    upstream.on("data", (chunk: Buffer) => {
      if (!holdingBack) client.write(chunk);
    });
    const forward = (chunk: Buffer) => {
      if (delayedQueue !== null) {
        delayedQueue.push(chunk);
        return;
      }
      const at = chunk.indexOf(COMMIT_MESSAGE);
      if (at < 0) {
        upstream.write(chunk);
        return;
      }
      const fate = this.fate();
      this.counts[fate] += 1;
      switch (fate) {
        case "pass":
          upstream.write(chunk);
          return;
        case "lostAnswer":
          // The server gets COMMIT and commits; the client never hears of it.
          upstream.write(chunk);
          holdingBack = true;
          setTimeout(() => {
            client.destroy();
            upstream.end();
          }, this.holdMs());
          return;
        case "swallowed":
          // The writes reach the server, the COMMIT never does: the server rolls back.
          upstream.write(chunk.subarray(0, at), () => destroy());
          return;
        case "cutAsSent":
          upstream.write(chunk);
          destroy();
          return;
        case "delayed": {
          const queue: Buffer[] = [chunk];
          delayedQueue = queue;
          setTimeout(() => {
            delayedQueue = null;
            for (const queued of queue) forward(queued);
          }, this.holdMs());
          return;
        }
        default:
          fate satisfies never;
      }
    };
    client.on("data", forward);
    const close = () => {
      this.pairs.delete(pair);
      destroy();
    };
    client.on("close", close);
    upstream.on("close", close);
  }

  cutAll(): void {
    this.counts.cutAll += 1;
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
  }

  close(): Promise<void> {
    this.enabled = false;
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

interface Cluster {
  engines: Engine[];
  proxies: CuttingProxy[];
  storages: PostgresStorage[];
  /** A storage of its own (a node that only prunes), on a direct connection. */
  pruner: PostgresStorage;
}

/**
 * `cut` engines through proxies of their own, `direct` engines on direct connections, all on
 * one fresh schema.
 */
async function cluster(
  seed: number,
  cut: number,
  direct: number,
  rates: CutRates,
  engineOptions: { storageTimeoutMs?: number } = {},
  poolSize = 3,
): Promise<Cluster> {
  const target = await openTestSchema({ poolSize: 3, onError: () => {} });
  await target.storage.close();
  cleanups.push(() => target.drop());
  const proxies: CuttingProxy[] = [];
  const storages: PostgresStorage[] = [];
  const engines: Engine[] = [];
  for (let n = 0; n < cut + direct; n++) {
    let url = target.url;
    if (n < cut) {
      const proxy = new CuttingProxy(new URL(target.url), seededRandom(seed * 1_000 + n), rates);
      url = await proxy.start();
      proxies.push(proxy);
      cleanups.push(() => proxy.close());
    }
    const storage = await target.open({ url, node: `node${n}`, poolSize });
    storages.push(storage);
    const engine = await Engine.open({
      storage,
      schema,
      modules,
      runScheduler: false,
      logError: () => {},
      storageRetryMs: 8_000,
      pollIntervalMs: 50,
      ...engineOptions,
    });
    engines.push(engine);
    cleanups.push(() => engine.close());
  }
  const pruner = await target.open({ node: "pruner" });
  cleanups.push(() => pruner.close());
  return { engines, proxies, storages, pruner };
}

type Outcome =
  | { kind: "acknowledged"; value: number }
  | { kind: "ambiguous"; message: string }
  | { kind: "failed"; message: string };

interface Tally {
  /** Plain mutations: request -> counter name and how its call ended. */
  plain: Map<string, { counter: string; outcome: Outcome }>;
  /** Client requests: request -> counter name and every copy's answer. */
  requests: Map<string, { counter: string; answers: number[]; errors: string[] }>;
}

/** Sends a client request until some node answers it, moving to the next node after every failure. */
async function sendUntilAnswered(
  engines: Engine[],
  start: number,
  request: { clientId: string; requestId: number; firstSend?: boolean },
  args: { name: string; request: string },
  errors: string[],
): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const engine = engines[(start + attempt) % engines.length]!;
    try {
      const sent = attempt === 0 ? request : { ...request, firstSend: false };
      return (await engine.runClientMutation("c:incrementLogged", args, { fromClient: true }, sent)).value as number;
    } catch (error) {
      errors.push(String((error as Error)?.message ?? error));
      if (attempt >= 40) throw error;
      await waitMs(10);
    }
  }
}

/** Runs the workload: `clients` loops per engine, each doing `steps` plain mutations or client requests. */
async function workload(c: Cluster, random: () => number, options: { loops: number; steps: number; counters: string[] }): Promise<Tally> {
  const tally: Tally = { plain: new Map(), requests: new Map() };
  const { engines } = c;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  let requestNumber = 0;
  const loop = async (n: number, l: number) => {
    const clientId = `client-${n}-${l}`;
    for (let step = 0; step < options.steps; step++) {
      const counter = pick(options.counters);
      if (random() < 0.5) {
        const request = `plain-${n}-${l}-${step}`;
        const record: { counter: string; outcome: Outcome } = { counter, outcome: { kind: "failed", message: "pending" } };
        tally.plain.set(request, record);
        record.outcome = await engines[n]!.runMutation("c:incrementLogged", { name: counter, request }).then(
          (result): Outcome => ({ kind: "acknowledged", value: result.value as number }),
          (error: Error): Outcome => ({ kind: AMBIGUOUS.test(error.message) ? "ambiguous" : "failed", message: error.message }),
        );
      } else {
        const requestId = ++requestNumber;
        const request = `req-${clientId}-${requestId}`;
        const record = { counter, answers: [] as number[], errors: [] as string[] };
        tally.requests.set(request, record);
        const args = { name: counter, request };
        const copies = [sendUntilAnswered(engines, n, { clientId, requestId, firstSend: true }, args, record.errors)];
        // Now and then the client re-sends before the first copy answered (its connection
        // dropped): the copy goes to another node while the first may still be committing.
        if (random() < 0.3) {
          const delay = Math.floor(random() * 30);
          copies.push(waitMs(delay).then(() => sendUntilAnswered(engines, n + 1, { clientId, requestId }, args, record.errors)));
        }
        record.answers = await Promise.all(copies);
      }
    }
  };
  await Promise.all(engines.flatMap((_, n) => Array.from({ length: options.loops }, (_, l) => loop(n, l))));
  return tally;
}

/** Cuts every connection of a random proxied node now and then, until `done`. */
async function randomCuts(c: Cluster, random: () => number, isDone: () => boolean, outageMs = 0): Promise<void> {
  while (!isDone()) {
    await waitMs(100 + Math.floor(random() * 400));
    if (isDone() || c.proxies.length === 0) break;
    const proxy = c.proxies[Math.floor(random() * c.proxies.length)]!;
    const r = random();
    if (r < 0.4) proxy.cutAll();
    else if (r < 0.6 && outageMs > 0) proxy.down(Math.floor(random() * outageMs));
  }
}

/** A node that prunes at the latest timestamp over and over (its floor is the latest: the others' floors hold it back). */
async function pruneLoop(pruner: PostgresStorage, isDone: () => boolean, problems: string[]): Promise<void> {
  while (!isDone()) {
    try {
      await pruner.pruneHistory(await pruner.latestTimestamp());
    } catch (error) {
      problems.push(`pruner: ${(error as Error).message}`);
    }
    await waitMs(20);
  }
}

/** Every check that does not depend on which outcome each ambiguous call had. */
async function checkExactlyOnce(c: Cluster, tally: Tally): Promise<{ rows: string[]; summary: Record<string, number> }> {
  for (const proxy of c.proxies) proxy.enabled = false;
  for (const engine of c.engines) await engine.refreshFromStorage();
  const rows = (await c.engines[0]!.runQuery("c:logRows", {})) as string[];
  // All nodes converge on the same data.
  for (const engine of c.engines.slice(1)) {
    await engine.refreshFromStorage();
    expect([...((await engine.runQuery("c:logRows", {})) as string[])].sort()).toEqual([...rows].sort());
    expect(await engine.runQuery("c:all", {})).toEqual(await c.engines[0]!.runQuery("c:all", {}));
  }
  const repeated = rows.filter((row, i) => rows.indexOf(row) !== i);
  expect(repeated, "mutations applied twice").toEqual([]);
  const present = new Set(rows);

  const wrong: string[] = [];
  const summary: Record<string, number> = { acknowledged: 0, ambiguous: 0, ambiguousLanded: 0, failed: 0, requests: 0, resent: 0 };
  const returned = new Map<string, number[]>(); // counter -> values returned by applied increments
  for (const [request, { counter, outcome }] of tally.plain) {
    const row = `${counter}:${request}`;
    summary[outcome.kind] = (summary[outcome.kind] ?? 0) + 1;
    if (outcome.kind === "acknowledged") {
      if (!present.has(row)) wrong.push(`${request} acknowledged but not applied`);
      (returned.get(counter) ?? returned.set(counter, []).get(counter)!).push(outcome.value);
    } else if (outcome.kind === "ambiguous") {
      if (present.has(row)) summary["ambiguousLanded"]! += 1;
    } else if (present.has(row)) {
      wrong.push(`${request} failed with an error that does not say it may have been applied, yet was applied: ${outcome.message}`);
    }
  }
  for (const [request, { counter, answers, errors }] of tally.requests) {
    summary["requests"]! += 1;
    if (errors.length > 0) summary["resent"]! += 1;
    if (!present.has(`${counter}:${request}`)) wrong.push(`client request ${request} answered ${answers.join(", ")} but not applied`);
    if (new Set(answers).size !== 1) wrong.push(`the copies of ${request} answered differently: ${answers.join(", ")}`);
    (returned.get(counter) ?? returned.set(counter, []).get(counter)!).push(answers[0]!);
  }
  for (const row of rows) {
    const request = row.slice(row.indexOf(":") + 1);
    if (!tally.plain.has(request) && !tally.requests.has(request)) wrong.push(`row ${row} of no request`);
  }
  expect(wrong).toEqual([]);

  // Each counter equals its log rows, and the increments that answered saw distinct values.
  const counters = (await c.engines[0]!.runQuery("c:all", {})) as Record<string, number>;
  const rowsPer: Record<string, number> = {};
  for (const row of rows) rowsPer[row.slice(0, row.indexOf(":"))] = (rowsPer[row.slice(0, row.indexOf(":"))] ?? 0) + 1;
  expect(counters).toEqual(rowsPer);
  for (const [counter, values] of returned) {
    expect(new Set(values).size, `two increments of ${counter} returned the same value`).toBe(values.length);
    for (const value of values) expect(value).toBeLessThanOrEqual(counters[counter]!);
  }
  return { rows, summary };
}

describe("exactly-once mutations on PostgreSQL with connections cut around COMMIT", () => {
  for (const seed of (process.env["EXACTLY_ONCE_SEEDS"] ?? "1,2,3").split(",").map(Number)) {
    it(`3 engines (2 behind cutting proxies), plain and re-sent client mutations, pruning everywhere: each applied once (seed ${seed})`, async () => {
      const random = seededRandom(seed);
      const c = await cluster(seed, 2, 1, { lostAnswer: 0.12, swallowed: 0.06, cutAsSent: 0.06, delayed: 0, holdMs: 300 });
      for (const proxy of c.proxies) proxy.enabled = true;
      let done = false;
      const problems: string[] = [];
      const background = Promise.all([randomCuts(c, random, () => done), pruneLoop(c.pruner, () => done, problems)]);
      const tally = await workload(c, random, { loops: 3, steps: 14, counters: ["hot", "a", "b"] }).finally(() => (done = true));
      await background;
      const { summary } = await checkExactlyOnce(c, tally);
      expect(problems).toEqual([]);
      const fates = c.proxies.map((p) => p.counts);
      if (process.env["EXACTLY_ONCE_DEBUG"]) console.log(seed, summary, fates);
      // The cuts happened (or the run proved nothing).
      expect(fates.reduce((sum, f) => sum + f.lostAnswer + f.swallowed + f.cutAsSent, 0)).toBeGreaterThan(0);
    }, 120_000);
  }
});

describe("exactly-once mutations on PostgreSQL when commits outlast the engine's storage deadline", () => {
  for (const seed of (process.env["EXACTLY_ONCE_SEEDS"] ?? "1,2").split(",").map(Number)) {
    it(`COMMITs delayed past the deadline, answers lost, outages, pools of one connection: each applied once (seed ${seed})`, async () => {
      const random = seededRandom(seed * 7_919);
      // A deadline of 250 ms, and COMMITs held up to 650 ms on their way: the engine gives up on
      // a commit that then lands (or, cut meanwhile, does not), and findCommits waits for it.
      const c = await cluster(seed + 100, 2, 1, { lostAnswer: 0.1, swallowed: 0.05, cutAsSent: 0.05, delayed: 0.15, holdMs: 600 }, { storageTimeoutMs: 250 }, 1);
      for (const proxy of c.proxies) proxy.enabled = true;
      let done = false;
      const problems: string[] = [];
      const background = Promise.all([randomCuts(c, random, () => done, 1_500), pruneLoop(c.pruner, () => done, problems)]);
      const tally = await workload(c, random, { loops: 2, steps: 12, counters: ["hot", "a"] }).finally(() => (done = true));
      await background;
      const { summary } = await checkExactlyOnce(c, tally);
      expect(problems).toEqual([]);
      const fates = c.proxies.map((p) => p.counts);
      if (process.env["EXACTLY_ONCE_DEBUG"]) console.log(seed, summary, fates);
      expect(fates.reduce((sum, f) => sum + f.delayed, 0)).toBeGreaterThan(0);
    }, 180_000);
  }
});

describe("exactly-once mutations on PostgreSQL: one cut at a time", () => {
  it("an answer lost while another node commits and prunes at its latest is still resolved exactly, not re-run", async () => {
    const c = await cluster(11, 1, 1, { lostAnswer: 0, swallowed: 0, cutAsSent: 0, delayed: 0, holdMs: 0 });
    const [a, other] = c.engines as [Engine, Engine];
    await a.runMutation("c:incrementLogged", { name: "x", request: "first" });
    // a's next COMMIT lands, and its answer is held back for 1.5 s, then the connection is cut.
    c.proxies[0]!.force("lostAnswer", 1_500);
    const outcome = a.runMutation("c:incrementLogged", { name: "x", request: "cut" }).then(
      (result) => `returned ${String(result.value)}`,
      (error: Error) => (AMBIGUOUS.test(error.message) ? "reported ambiguous" : error.message),
    );
    // Once that COMMIT has passed (and landed), the other nodes go on: commits, and pruning at
    // each one's newest snapshot.
    while (c.proxies[0]!.counts.lostAnswer === 0) await waitMs(5);
    let trimmedThrough = 0;
    for (let i = 0; i < 20; i++) {
      await other.runMutation("c:incrementLogged", { name: "x", request: `other-${i}` });
      await c.pruner.pruneHistory(await c.pruner.latestTimestamp());
      await c.storages[1]!.pruneHistory(await c.storages[1]!.latestTimestamp());
      trimmedThrough = (await c.pruner.commitsSince(0, 1)).trimmedThrough;
    }
    const got = await outcome;
    if (process.env["EXACTLY_ONCE_DEBUG"]) {
      console.log(got, c.proxies[0]!.counts, await c.pruner.commitsSince(0, 100).then((v) => ({ ...v, commits: v.commits.map((x) => [x.ts, x.id]) })));
      console.log(await c.pruner.pool.query(`SELECT * FROM "${c.pruner.schema}".snapshot_floors`).then((r) => r.rows));
      console.log(await c.engines[1]!.runQuery("c:logRows", {}));
    }
    expect(got).toBe("returned 2");
    // a's floor held every trim below its commit (else findCommits could not have found it).
    expect(trimmedThrough).toBeLessThan(await c.pruner.latestTimestamp());
    const tally: Tally = { plain: new Map(), requests: new Map() };
    tally.plain.set("first", { counter: "x", outcome: { kind: "acknowledged", value: 1 } });
    tally.plain.set("cut", { counter: "x", outcome: { kind: "acknowledged", value: 2 } });
    for (let i = 0; i < 20; i++) tally.plain.set(`other-${i}`, { counter: "x", outcome: { kind: "acknowledged", value: 3 + i } });
    await checkExactlyOnce(c, tally);
  }, 60_000);

  it("a client request whose node loses the database after COMMIT: ambiguous there, answered once from its receipt by another node", async () => {
    const c = await cluster(12, 1, 1, { lostAnswer: 0, swallowed: 0, cutAsSent: 0, delayed: 0, holdMs: 0 }, { storageTimeoutMs: 500 });
    const [a, b] = c.engines as [Engine, Engine];
    await a.runMutation("c:incrementLogged", { name: "x", request: "first" });
    await b.refreshFromStorage();
    const request = { clientId: "client", requestId: 1 };
    const args = { name: "x", request: "req" };
    // The COMMIT lands, its answer is lost, and a then cannot reach the database for 20 s:
    // longer than the committer asks findCommits.
    c.proxies[0]!.force("lostAnswer", 1_000);
    const onA = a.runClientMutation("c:incrementLogged", args, { fromClient: true }, { ...request, firstSend: true }).then(
      (result) => `returned ${String(result.value)}`,
      (error: Error) => (AMBIGUOUS.test(error.message) ? "reported ambiguous" : error.message),
    );
    while (c.proxies[0]!.counts.lostAnswer === 0) await waitMs(5);
    c.proxies[0]!.down(20_000);
    // The client re-sends to b at once: b answers from the receipt, without applying it again.
    const onB = await b.runClientMutation("c:incrementLogged", args, { fromClient: true }, request);
    expect(onB).toMatchObject({ value: 2, deduplicated: true });
    // A plain mutation on b meanwhile, so that b's view moves past a's commit.
    await b.runMutation("c:incrementLogged", { name: "x", request: "after" });
    expect(await onA).toBe("reported ambiguous");
    const tally: Tally = { plain: new Map(), requests: new Map() };
    tally.plain.set("first", { counter: "x", outcome: { kind: "acknowledged", value: 1 } });
    tally.plain.set("after", { counter: "x", outcome: { kind: "acknowledged", value: 3 } });
    tally.requests.set("req", { counter: "x", answers: [2], errors: [] });
    c.proxies[0]!.down(0);
    await checkExactlyOnce(c, tally);
  }, 60_000);

  it("a batch of two whose first commit another node trimmed while the answer was lost (a floor gone stale) is not reported as landed in part", async () => {
    // One engine behind a proxy and a pruning node, nothing else holding pruning back.
    const c = await cluster(13, 1, 0, { lostAnswer: 0, swallowed: 0, cutAsSent: 0, delayed: 0, holdMs: 0 });
    const [a] = c.engines as [Engine];
    // Each counter once, so that the handlers below read from a's cache and finish in one turn.
    await a.runMutation("c:incrementLogged", { name: "x", request: "x1" });
    await a.runMutation("c:incrementLogged", { name: "y", request: "y1" });
    await a.runQuery("c:all", {});
    const before = await c.pruner.latestTimestamp();
    const passedBefore = c.proxies[0]!.counts.pass;
    c.proxies[0]!.force("lostAnswer", 1_000);
    const asOutcome = (promise: Promise<{ value: unknown }>) => promise.then(
      (result) => `returned ${String(result.value)}`,
      (error: Error) => (AMBIGUOUS.test(error.message) ? "reported ambiguous" : error.message),
    );
    // Two mutations that join one batch: one COMMIT for both.
    const outcomes = Promise.all([
      asOutcome(a.runMutation("c:incrementLogged", { name: "x", request: "x2" })),
      asOutcome(a.runMutation("c:incrementLogged", { name: "y", request: "y2" })),
    ]);
    // The COMMIT passed the proxy: wait until the server has made the batch visible.
    while ((await c.pruner.latestTimestamp()) < before + 2) await waitMs(5);
    const latest = await c.pruner.latestTimestamp();
    const s = `"${c.pruner.schema}"`;
    // Two commits, one COMMIT: the two mutations landed in one batch.
    expect(latest).toBe(before + 2);
    expect(c.proxies[0]!.counts).toMatchObject({ pass: passedBefore, lostAnswer: 1 });
    // a is frozen past FLOOR_STALE_SECONDS (its floor no longer counts), and the pruning node
    // trims the log through the batch's first commit only.
    await c.pruner.pool.query(`UPDATE ${s}.snapshot_floors SET seen_at = now() - interval '121 seconds' WHERE instance LIKE 'node0:%'`);
    await c.pruner.pruneHistory(latest - 1);
    expect((await c.pruner.commitsSince(0, 10)).trimmedThrough).toBe(latest - 1);
    // The batch landed (atomically). Each mutation is acknowledged or reported ambiguous; never
    // an error that claims storage wrote part of a batch.
    const answered = await outcomes;
    for (const outcome of answered) expect(outcome).toMatch(/^returned \d+$|^reported ambiguous$/);
    const tally: Tally = { plain: new Map(), requests: new Map() };
    for (const [request, counter, value] of [["x1", "x", 1], ["y1", "y", 1], ["x2", "x", 2], ["y2", "y", 2]] as const) {
      tally.plain.set(request, { counter, outcome: { kind: "acknowledged", value } });
    }
    await checkExactlyOnce(c, tally);
  }, 60_000);

  it("a lone commit another node trimmed while the answer was lost (a floor gone stale) is reported ambiguous, not re-run", async () => {
    const c = await cluster(14, 1, 0, { lostAnswer: 0, swallowed: 0, cutAsSent: 0, delayed: 0, holdMs: 0 });
    const [a] = c.engines as [Engine];
    await a.runMutation("c:incrementLogged", { name: "x", request: "x1" });
    const before = await c.pruner.latestTimestamp();
    c.proxies[0]!.force("lostAnswer", 1_000);
    const outcome = a.runMutation("c:incrementLogged", { name: "x", request: "x2" }).then(
      (result) => `returned ${String(result.value)}`,
      (error: Error) => (AMBIGUOUS.test(error.message) ? "reported ambiguous" : error.message),
    );
    while ((await c.pruner.latestTimestamp()) < before + 1) await waitMs(5);
    const s = `"${c.pruner.schema}"`;
    await c.pruner.pool.query(`UPDATE ${s}.snapshot_floors SET seen_at = now() - interval '121 seconds' WHERE instance LIKE 'node0:%'`);
    await c.pruner.pruneHistory(before + 1);
    // findCommits cannot find it any more, and the trim mark says why: "not found" proves nothing.
    expect(await outcome).toBe("reported ambiguous");
    const tally: Tally = { plain: new Map(), requests: new Map() };
    tally.plain.set("x1", { counter: "x", outcome: { kind: "acknowledged", value: 1 } });
    tally.plain.set("x2", { counter: "x", outcome: { kind: "ambiguous", message: "" } });
    const { rows } = await checkExactlyOnce(c, tally);
    expect(rows).toContain("x:x2");
  }, 60_000);

  it("a re-sent request found on record while the connection is cut as its node catches up is answered, not failed", async () => {
    // a answers the request; b, which has not heard of that commit yet, gets the re-send, finds
    // the receipt newer than its snapshot and must catch up first (clientRequests.ts, step 5):
    // the connection is cut just then, and b cannot reach the database for 300 ms.
    const target = await openTestSchema({ poolSize: 2, onError: () => {} });
    cleanups.push(() => target.drop());
    const proxy = new CuttingProxy(new URL(target.url), seededRandom(15), { lostAnswer: 0, swallowed: 0, cutAsSent: 0, delayed: 0, holdMs: 0 });
    await proxy.start();
    cleanups.push(() => proxy.close());
    // Behind a HookedStorage, b has no watchCommits: it learns of a's commits only when it asks.
    const hooked = new HookedStorage(await target.open({ url: proxy.url, node: "b" }));
    const open = (storage: PostgresStorage | HookedStorage) =>
      Engine.open({ storage, schema, modules, runScheduler: false, logError: () => {}, storageRetryMs: 8_000 });
    const a = await open(target.storage);
    cleanups.push(() => a.close());
    const b = await open(hooked);
    cleanups.push(() => b.close());
    await a.runMutation("c:incrementLogged", { name: "x", request: "first" });
    const request = { clientId: "client", requestId: 1 };
    const args = { name: "x", request: "req" };
    const onA = await a.runClientMutation("c:incrementLogged", args, { fromClient: true }, { ...request, firstSend: true });
    let cut = 0;
    hooked.hooks.read = (operation, read) => {
      if (operation === "commitsSince" && cut++ === 0) proxy.down(300);
      return read();
    };
    const onB = await b.runClientMutation("c:incrementLogged", args, { fromClient: true }, request).then(
      (result) => result,
      (error: Error) => error.message,
    );
    expect(cut).toBeGreaterThan(0);
    if (process.env["EXACTLY_ONCE_DEBUG"]) console.log(onB);
    expect(onB).toMatchObject({ value: onA.value, deduplicated: true });
    await b.refreshFromStorage();
    expect(await b.runQuery("c:logRows", {})).toEqual(["x:first", "x:req"]);
  }, 60_000);
});

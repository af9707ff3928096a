/**
 * The PostgreSQL storage as several nodes share it: random commits, reads at pinned
 * snapshots, notifications and pruning from several storages on one schema, checked against the
 * reference model; snapshot floors of nodes that crash or close mid-prune; `findCommits` after a
 * cut when another node prunes; the pool after every kind of failed call; servers whose default
 * isolation level is not READ COMMITTED; and schemas with unusual names.
 */
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { ReferenceStorage } from "../conformance/model.js";
import { seededChoices } from "../conformance/history.js";
import { plain, put, toCommit, type TestCommit } from "../conformance/context.js";
import type { Commit, CommitLogView, KeyRange, ScanRequest, Timestamp } from "../types.js";
import { isCommitOutcomeUnknown } from "../types.js";
import { openPostgresStorage, type PostgresStorage } from "./postgresStorage.js";
import { quoteIdentifier } from "./schema.js";
import { dropSchema, openTestSchema, testDatabaseUrl } from "./testDatabase.js";
import { startTestProxy } from "./testProxy.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A seeded generator, so a failing run can be replayed with its seed. */
const random = seededChoices;

const KEYS: number[][] = [[], [0], [0, 0], [0, 0, 0], [0, 1], [1], [1, 0], [1, 255], [2], [127], [255], [255, 0], [255, 255]];
const DOCS = ["d0", "d1", "d2", "d3", "d4", "d5", "d6"];
const INDEXES = ["i0", "i1"];

type Read =
  | { kind: "get"; node: number; id: string; readTs: Timestamp; got: unknown }
  | { kind: "scan"; node: number; request: ScanRequest; got: unknown };

const waitMs = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const next = (id: string) => (view: CommitLogView) => [toCommit({ ts: view.latest + 1, id, documents: [put("doc", id)], indexes: [] })];

describe("PostgreSQL storage shared by several nodes", () => {
  for (const seed of [1, 2, 3]) {
    it(`random commits, pinned reads and pruning from 3 storages on one schema match the model (seed ${seed})`, async () => {
      const rng = random(seed);
      // Small pruning batches put batch boundaries inside the data.
      const target = await openTestSchema({ poolSize: 3, pruneBatchSize: [1, 2, 1000][seed % 3] });
      const nodes: PostgresStorage[] = [target.storage, await target.open(), await target.open()];
      cleanups.push(async () => {
        await Promise.all(nodes.map((n) => n.close()));
        await target.drop();
      });
      // Every node watches the others' commits; a notification must come after its commit is visible.
      const notified = nodes.map(() => 0);
      const problems: string[] = [];
      const stops = nodes.map((node, n) =>
        node.watchCommits((latest) => {
          if (latest === undefined) return;
          notified[n] = Math.max(notified[n]!, latest);
          void node.latestTimestamp().then((seen) => {
            if (seen < latest) problems.push(`node ${n} notified of ${latest} but reads latest ${seen}`);
          });
        }),
      );

      const byTs = new Map<Timestamp, TestCommit & { id: string }>();
      const views: { since: Timestamp; view: CommitLogView }[] = [];
      const reads: Read[] = [];

      // Writers: two per node, each committing batches of 1-3 random commits.
      const writer = async (n: number, w: number, count: number) => {
        const node = nodes[n]!;
        let since = 0;
        for (let i = 0; i < count; i++) {
          const batchSize = 1 + rng.int(3);
          const askedSince = since;
          const { view, written } = await node.commitBatch(askedSince, (view) => {
            views.push({ since: askedSince, view });
            const commits: Commit[] = [];
            for (let b = 0; b < batchSize; b++) {
              const ids = new Set<string>();
              const documents = [];
              for (let d = 0; d < 1 + rng.int(3); d++) {
                const id = rng.pick(DOCS);
                if (ids.has(id)) continue;
                ids.add(id);
                documents.push({ id, table: "t", body: rng.chance(0.2) ? null : `${id}@n${n}w${w}#${i}.${b}` });
              }
              const keys = new Set<string>();
              const indexes = [];
              for (let e = 0; e < rng.int(4); e++) {
                const indexId = rng.pick(INDEXES);
                const key = rng.pick(KEYS);
                const k = `${indexId}:${key.join(",")}`;
                if (keys.has(k)) continue;
                keys.add(k);
                indexes.push({ indexId, key: Uint8Array.from(key), docId: rng.chance(0.25) ? null : rng.pick(DOCS) });
              }
              commits.push(toCommit({ ts: view.latest + 1 + b, id: `n${n}w${w}#${i}.${b}`, documents, indexes }));
            }
            return commits;
          });
          for (const c of written) {
            if (byTs.has(c.ts)) problems.push(`two commits at ts ${c.ts}: ${byTs.get(c.ts)!.id} and ${c.id}`);
            byTs.set(c.ts, c);
          }
          since = Math.max(view.latest, written[written.length - 1]?.ts ?? 0);
          // Visibility order: once this commit is acknowledged, every reader sees it.
          const latest = await nodes[rng.int(nodes.length)]!.latestTimestamp();
          if (latest < since) problems.push(`latestTimestamp ${latest} after a commit at ${since} was acknowledged`);
        }
      };

      // Readers: one per node, pinning snapshots, reading at them, and pruning at the oldest pin.
      const reader = async (n: number, steps: number) => {
        const node = nodes[n]!;
        const pins: Timestamp[] = [];
        for (let step = 0; step < steps; step++) {
          const r = rng.next();
          if (r < 0.2 || pins.length === 0) {
            const ts = await node.latestTimestamp();
            pins.push(ts);
            // Every commit up to ts is in the log (or behind the trim mark), with no gap.
            const log = await node.commitsSince(0, 100_000);
            const listed = log.commits.map((c) => c.ts);
            const expected = [];
            for (let t = log.trimmedThrough + 1; t <= ts; t++) expected.push(t);
            const upTo = listed.filter((t) => t <= ts);
            if (JSON.stringify(upTo) !== JSON.stringify(expected)) {
              problems.push(`node ${n}: log at latest ${ts} lists ${JSON.stringify(upTo)}, expected ${log.trimmedThrough + 1}..${ts}`);
            }
          } else if (r < 0.3 && pins.length > 1) {
            pins.splice(rng.int(pins.length), 1);
          } else if (r < 0.38) {
            await node.pruneHistory(Math.min(...pins));
          } else {
            const readTs = rng.pick(pins);
            if (rng.chance(0.4)) {
              const id = rng.chance(0.9) ? rng.pick(DOCS) : "missing";
              reads.push({ kind: "get", node: n, id, readTs, got: await node.getDocument(id, readTs) });
            } else {
              const range: KeyRange = {};
              if (rng.chance(0.6)) range.lower = { key: Uint8Array.from(rng.pick(KEYS)), inclusive: rng.chance(0.5) };
              if (rng.chance(0.6)) range.upper = { key: Uint8Array.from(rng.pick(KEYS)), inclusive: rng.chance(0.5) };
              const request: ScanRequest = {
                indexId: rng.pick(INDEXES),
                range,
                order: rng.chance(0.5) ? "asc" : "desc",
                readTs,
                limit: rng.pick([1, 2, 3, 5, 100, Infinity]),
              };
              reads.push({ kind: "scan", node: n, request, got: plain(await node.scan(request)) });
            }
          }
        }
      };

      await Promise.all([
        ...nodes.flatMap((_, n) => [writer(n, 0, 25), writer(n, 1, 25)]),
        ...nodes.map((_, n) => reader(n, 150)),
      ]);

      const latest = await nodes[0]!.latestTimestamp();
      // No notification lost on a healthy connection: every node hears of the last commit.
      for (let waited = 0; notified.some((t) => t < latest) && waited < 5_000; waited += 20) await waitMs(20);
      stops.forEach((stop) => stop());
      expect(notified).toEqual(nodes.map(() => latest));
      expect(problems).toEqual([]);
      expect([...byTs.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: latest }, (_, i) => i + 1));

      // Each planner was shown exactly the commits in (since, latest], unless trimmed.
      for (const { since, view } of views) {
        const expected = [];
        for (let ts = Math.max(since, view.trimmedThrough) + 1; ts <= view.latest; ts++) expected.push([ts, byTs.get(ts)!.id]);
        expect(view.commits.map((c) => [c.ts, c.id])).toEqual(expected);
      }

      // Every read matches the model at its snapshot (pruning never changed what a pinned reader saw).
      const model = new ReferenceStorage();
      for (let ts = 1; ts <= latest; ts++) model.apply(byTs.get(ts)!);
      const wrong = [];
      for (const read of reads) {
        const want = read.kind === "get" ? model.getDocument(read.id, read.readTs) : plain(model.scan(read.request));
        if (JSON.stringify(want) !== JSON.stringify(read.got)) wrong.push({ read, want });
      }
      expect(wrong.slice(0, 3)).toEqual([]);

      // Once the other nodes are gone, pruning at latest leaves exactly what the model keeps.
      await nodes[1]!.close();
      await nodes[2]!.close();
      await nodes[0]!.pruneHistory(latest);
      model.prune(latest);
      expect(await nodes[0]!.stats()).toEqual(model.versionCounts());
    }, 60_000);
  }
});

/** The rows of the snapshot_floors table, oldest floor first. */
async function floorRows(storage: PostgresStorage): Promise<{ instance: string; floor: number; age: number }[]> {
  const s = quoteIdentifier(storage.schema);
  return (
    await storage.pool.query<{ instance: string; floor: number; age: number }>(
      `SELECT instance, floor, extract(epoch FROM now() - seen_at)::float8 AS age FROM ${s}.snapshot_floors ORDER BY floor, instance`,
    )
  ).rows;
}


describe("PostgreSQL snapshot floors of nodes that crash or close", () => {
  it("a crashed node's floor holds pruning back for 120 s only, and its row is forgotten after an hour", async () => {
    const target = await openTestSchema();
    const a = target.storage;
    cleanups.push(async () => {
      await a.close();
      await target.drop();
    });
    const s = quoteIdentifier(a.schema);
    for (let ts = 1; ts <= 3; ts++) await a.commitBatch(ts - 1, next(`c${ts}`));
    // A node that crashed at snapshot 1, last seen 119 s ago: still counts.
    await a.pool.query(`INSERT INTO ${s}.snapshot_floors (instance, floor, seen_at) VALUES ('crashed', 1, now() - interval '119 seconds')`);
    await a.pruneHistory(3);
    expect((await a.getDocument("doc", 1))?.body).toBe("c1");
    expect((await a.stats()).documents).toBe(3);
    // Last seen 121 s ago: no longer holds anything back.
    await a.pool.query(`UPDATE ${s}.snapshot_floors SET seen_at = now() - interval '121 seconds' WHERE instance = 'crashed'`);
    await a.pruneHistory(3);
    expect((await a.stats()).documents).toBe(1);
    expect((await a.commitsSince(0, 10)).trimmedThrough).toBe(3);
    // Last seen over an hour ago: deleted by the next node that refreshes its own row.
    await a.pool.query(`UPDATE ${s}.snapshot_floors SET seen_at = now() - interval '3601 seconds' WHERE instance = 'crashed'`);
    await a.pruneHistory(3);
    expect((await floorRows(a)).map((r) => r.instance)).not.toContain("crashed");
  });

  it("a node closed while its pruneHistory is in flight leaves no floor row behind", async () => {
    const target = await openTestSchema();
    const a = target.storage;
    cleanups.push(async () => {
      await a.close();
      await target.drop();
    });
    for (let ts = 1; ts <= 3; ts++) await a.commitBatch(ts - 1, next(`c${ts}`));
    for (let round = 0; round < 3; round++) {
      const b = await target.open();
      await b.latestTimestamp();
      const pruning = b.pruneHistory(3).catch(() => {});
      await b.close();
      await pruning;
      await waitMs(50);
      const rows = await floorRows(a);
      expect(rows.map((r) => r.instance), `round ${round}`).toHaveLength(1); // a's own row only
    }
  });
});

describe("PostgreSQL findCommits and the pool after failures", () => {
  it("a commit whose answer was cut is still found after other nodes commit and prune past it", async () => {
    const target = await openTestSchema();
    const other = target.storage;
    const proxy = await startTestProxy(target.url);
    const cut: PostgresStorage = await target.open({ url: proxy.url, poolSize: 1 });
    cleanups.push(async () => {
      await cut.close();
      await proxy.close();
      await other.close();
      await target.drop();
    });
    await cut.commitBatch(0, next("before"));
    proxy.cutAfterNextCommit();
    const error = await cut.commitBatch(1, next("landed")).then(() => null, (e: unknown) => e);
    expect(isCommitOutcomeUnknown(error), String(error)).toBe(true);
    // Meanwhile the other node goes on, and prunes at its newest snapshot.
    for (let ts = 3; ts <= 6; ts++) await other.commitBatch(ts - 1, next(`other-${ts}`));
    await other.pruneHistory(6);
    // The cut node's floor (its last snapshot, 1) keeps the log row the lookup needs.
    expect(await cut.findCommits(["landed", "never"])).toEqual(new Map([["landed", 2]]));
    expect((await other.getDocument("doc", 1))?.body).toBe("before");
  });

  it("with a pool of one connection, every kind of failed call gives its connection back", async () => {
    const target = await openTestSchema({ poolSize: 1, lockTimeoutMs: 200 });
    const storage = target.storage;
    const holderNode = await target.open();
    cleanups.push(async () => {
      await holderNode.close();
      await storage.close();
      await target.drop();
    });
    await storage.commitBatch(0, next("first"));
    const failures: [string, () => Promise<unknown>][] = [
      ["planner throws", () => storage.commitBatch(1, () => { throw new Error("refused"); })],
      ["planner returns nothing", () => storage.commitBatch(1, () => [])],
      ["timestamp not above latest", () => storage.commitBatch(1, (view) => [toCommit({ ts: view.latest, documents: [], indexes: [] })])],
      ["document twice in a commit", () => storage.commitBatch(1, (view) => [
        toCommit({ ts: view.latest + 1, documents: [put("x", "1"), put("x", "2")], indexes: [] }),
      ])],
      ["receipt twice", () => storage.commitBatch(1, (view) => [
        toCommit({ ts: view.latest + 1, documents: [], indexes: [], receipts: [{ key: "r", body: "1" }] }),
      ]).then(() => storage.commitBatch(1, (view) => [
        toCommit({ ts: view.latest + 1, documents: [], indexes: [], receipts: [{ key: "r", body: "2" }] }),
      ]))],
      ["bad since", () => storage.commitBatch(-1, () => [])],
      ["bad scan limit", () => storage.scan({ indexId: "i", range: {}, order: "asc", readTs: 1, limit: -1 })],
      ["bad prune ts", () => storage.pruneHistory(-1)],
      ["bad log limit", () => storage.commitsSince(0, 0)],
    ];
    for (const [name, call] of failures) {
      await Promise.race([call().catch(() => {}), waitMs(5_000).then(() => { throw new Error(`${name}: hung`); })]);
      // The one connection is free again: a read and a commit go through.
      const latest = await Promise.race([storage.latestTimestamp(), waitMs(5_000).then(() => { throw new Error(`after ${name}: pool exhausted`); })]);
      await storage.commitBatch(latest, next(`after ${name}`));
    }
    // The lock held elsewhere: commit, findCommits and the log trim time out and give their connection back.
    const holder = await holderNode.pool.connect();
    await holder.query(`BEGIN; SELECT 1 FROM ${quoteIdentifier(target.schema)}.clock FOR UPDATE`);
    try {
      await expect(storage.commitBatch(0, next("blocked"))).rejects.toThrow(/commit lock/);
      await expect(storage.findCommits(["first"])).rejects.toThrow(/lock timeout/);
      await expect(storage.pruneHistory(1)).rejects.toThrow(/lock timeout/);
      await storage.getDocument("doc", 100);
    } finally {
      await holder.query("ROLLBACK");
      holder.release();
    }
    const latest = await storage.latestTimestamp();
    await storage.commitBatch(latest, next("last"));
    expect(await storage.findCommits(["first", "last", "blocked"])).toEqual(new Map([["first", 1], ["last", latest + 1]]));
    expect(storage.pool.totalCount).toBeLessThanOrEqual(1);
    expect(storage.pool.waitingCount).toBe(0);
  });
});

describe("PostgreSQL storage on a server whose default isolation is not READ COMMITTED", () => {
  for (const isolation of ["repeatable read", "serializable"]) {
    it(`concurrent commits from 2 storages all land when default_transaction_isolation is ${isolation}`, async () => {
      const target = await openTestSchema();
      const url = new URL(target.url);
      url.searchParams.set("options", `-c default_transaction_isolation=${isolation.replace(" ", "\\ ")}`);
      const nodes = [await target.open({ url: url.toString() }), await target.open({ url: url.toString() })];
      cleanups.push(async () => {
        await Promise.all(nodes.map((n) => n.close()));
        await target.storage.close();
        await target.drop();
      });
      // The URL does set the server's default (a plain client sees it); the storage's own
      // connections then set READ COMMITTED for their sessions.
      const plainClient = new pg.Client({ connectionString: url.toString() });
      await plainClient.connect();
      try {
        expect((await plainClient.query("SHOW default_transaction_isolation")).rows[0].default_transaction_isolation).toBe(isolation);
      } finally {
        await plainClient.end();
      }
      expect((await nodes[0]!.pool.query("SHOW transaction_isolation")).rows[0].transaction_isolation).toBe("read committed");
      const errors: string[] = [];
      let writing = true;
      const writers = Promise.all(nodes.flatMap((node, n) => [0, 1, 2].map(async (w) => {
        for (let i = 0; i < 10; i++) {
          await node.commitBatch(0, next(`n${n}w${w}#${i}`)).catch((e: Error) => errors.push(e.message));
          await node.findCommits([`n${n}w${w}#${i}`]).catch((e: Error) => errors.push(`findCommits: ${e.message}`));
        }
      }))).finally(() => (writing = false));
      // Both nodes prune while the others commit.
      const pruners = nodes.map(async (node) => {
        while (writing) {
          await node.pruneHistory(await node.latestTimestamp()).catch((e: Error) => errors.push(`pruneHistory: ${e.message}`));
        }
      });
      await Promise.all([writers, ...pruners]);
      const summary = [...new Set(errors)].map((m) => `${errors.filter((e) => e === m).length} x ${m}`);
      expect({ landed: await target.storage.latestTimestamp(), errors: summary }).toEqual({ landed: 60, errors: [] });
    });
  }
});

describe("PostgreSQL storage in schemas with unusual names", () => {
  for (const schema of [`Mixed "Case" ${Date.now().toString(36)}`, `é${"x".repeat(50)}${Date.now().toString(36)}`.slice(0, 60)]) {
    it(`commits, notifies another node, scans and prunes in schema ${JSON.stringify(schema)}`, async () => {
      const url = await testDatabaseUrl();
      const a = await openPostgresStorage({ url, schema, poolSize: 2 });
      const b = await openPostgresStorage({ url, schema, poolSize: 2 });
      cleanups.push(async () => {
        await b.close();
        await a.close();
        await dropSchema(url, schema);
      });
      let heard = 0;
      b.watchCommits((latest) => void (heard = Math.max(heard, latest ?? 0)));
      // Until b listens, commits may go unheard: commit until one is heard.
      for (let ts = 1; heard === 0 && ts < 100; ts++) {
        await a.commitBatch(ts - 1, (view) => [toCommit({
          ts: view.latest + 1, documents: [put("doc", `v${ts}`)], indexes: [{ indexId: "i", key: Uint8Array.of(ts), docId: "doc" }],
        })]);
        await waitMs(20);
      }
      expect(heard).toBeGreaterThan(0);
      const latest = await b.latestTimestamp();
      expect((await b.scan({ indexId: "i", range: {}, order: "desc", readTs: latest, limit: 1 }))[0]?.doc.body).toBe(`v${latest}`);
      await a.pruneHistory(latest);
      await b.pruneHistory(latest);
      await a.pruneHistory(latest);
      expect(await a.stats()).toEqual({ documents: 1, indexEntries: latest });
    });
  }
});

/**
 * Deferred versions (sqliteStorage.ts, "Deferred versions"): a randomized
 * differential test against the reference model over two connections to one file, with the
 * pending versions written at random moments (limits, inline batches, explicit writes, timers),
 * the read floor and pruning rising (pruning also while commits and reads go on), and
 * connections closed, crashed and reopened.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { commit, commitAll, put, type TestCommit } from "../conformance/context.js";
import { randomHistory, randomScans, readSnapshot, seededRandom } from "../conformance/history.js";
import { ReferenceStorage } from "../conformance/model.js";
import { openSqliteStorage, type SqliteStorage, type SqliteStorageOptions } from "./sqliteStorage.js";

let dir: string;
let filename: string;
const opened = new Set<SqliteStorage>();

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "walkin-deferred-history-"));
  filename = path.join(dir, "walkin.sqlite");
});
afterEach(async () => {
  for (const storage of opened) {
    if (storage.db.open) await storage.close();
  }
  opened.clear();
  await rm(dir, { recursive: true, force: true });
});

async function open(options: Partial<SqliteStorageOptions>): Promise<SqliteStorage> {
  const storage = await openSqliteStorage({ filename, ...options });
  opened.add(storage);
  return storage;
}


/** DEFERRED_SEEDS=n / DEFERRED_STEPS=n widen the search (defaults keep the file quick). */
const SEEDS = Array.from({ length: Number(process.env.DEFERRED_SEEDS ?? 6) }, (_, i) => 11 + i + Number(process.env.DEFERRED_SEED_BASE ?? 0));
const STEPS = Number(process.env.DEFERRED_STEPS ?? 160);

interface Variant {
  name: string;
  options: (random: () => number) => Partial<SqliteStorageOptions>;
}

const VARIANTS: Variant[] = [
  {
    name: "small limits, no timer",
    options: (random) => ({
      pruneBatchSize: 1 + Math.floor(random() * 3),
      deferredVersions: {
        maxCommits: 1 + Math.floor(random() * 5),
        maxBytes: 1e12,
        delayMs: 1e9,
        inlineBatchCommits: 2 + Math.floor(random() * 3),
        inlineBatchRows: 4 + Math.floor(random() * 20),
      },
      historySweep: { fullPassRowsPerCall: 2 + Math.floor(random() * 5), fullPassIntervalMs: random() < 0.5 ? 0 : 1e9, maxDirtyGroups: 2 + Math.floor(random() * 10) },
    }),
  },
  {
    name: "kept in the log",
    options: (random) => ({
      pruneBatchSize: 1 + Math.floor(random() * 3),
      deferredVersions: { maxCommits: 1e6, maxBytes: 1e12, delayMs: 1e9, inlineBatchCommits: 1e6, inlineBatchRows: 1e6 },
      historySweep: { fullPassRowsPerCall: 3, fullPassIntervalMs: 0, maxDirtyGroups: 1e6 },
    }),
  },
  {
    name: "timer at 0 ms, normal sync with a checkpointer",
    options: (random) => ({
      synchronous: "normal",
      backgroundCheckpoints: { passPages: 5, restartPages: 10, backstopPages: 1000, idleMs: 20 },
      pruneBatchSize: 2,
      deferredVersions: { maxCommits: 1 + Math.floor(random() * 8), maxBytes: 1e12, delayMs: 0, inlineBatchCommits: 3, inlineBatchRows: 12 },
      historySweep: { fullPassRowsPerCall: 4, fullPassIntervalMs: 0, maxDirtyGroups: 5 },
    }),
  },
  {
    name: "one connection deferred, the other inline",
    options: (random) => ({
      pruneBatchSize: 2,
      deferredVersions: random() < 0.5 ? false : { maxCommits: 3, maxBytes: 1e12, delayMs: 1e9, inlineBatchCommits: 2, inlineBatchRows: 10 },
      historySweep: { fullPassRowsPerCall: 3, fullPassIntervalMs: 0, maxDirtyGroups: 4 },
    }),
  },
];

describe("deferred versions, randomized against the reference model", () => {
  for (const variant of VARIANTS) {
    for (const seed of SEEDS) {
      it(`${variant.name} (seed ${seed})`, async () => {
        const random = seededRandom(seed * 1009 + VARIANTS.indexOf(variant));
        const model = new ReferenceStorage();
        const optionsOf = [variant.options(random), variant.options(random)];
        const conns: SqliteStorage[] = [await open(optionsOf[0]!), await open(optionsOf[1]!)];
        let floor = 0;
        const log: string[] = [];
        const check = async (c: number, readTs: number, what: string) => {
          const s = conns[c]!;
          const got = await readSnapshot(s, readTs);
          const want = await readSnapshot(model, readTs);
          expect(got, `${what}; conn ${c} readTs ${readTs} floor ${floor} latest ${model.latest}\n${log.slice(-25).join("\n")}`).toEqual(want);
          const r = seededRandom(readTs * 31 + c + model.latest * 977);
          const r2 = seededRandom(readTs * 31 + c + model.latest * 977);
          expect(await randomScans(s, r, readTs, 6), `${what}; random scans conn ${c} readTs ${readTs}\n${log.slice(-25).join("\n")}`).toEqual(await randomScans(model, r2, readTs, 6));
        };
        const readAny = async (what: string) => {
          const c = random() < 0.5 ? 0 : 1;
          const readTs = floor + Math.floor(random() * (model.latest - floor + 2));
          log.push(`read conn ${c} at ${readTs}`);
          await check(c, readTs, what);
        };
        for (let step = 0; step < STEPS; step++) {
          const c = random() < 0.5 ? 0 : 1;
          const s = conns[c]!;
          const roll = random();
          if (roll < 0.45) {
            const n = random() < 0.7 ? 1 : 1 + Math.floor(random() * 4);
            const since = model.latest;
            const commits: TestCommit[] = randomHistory(random, model, n, { hintFresh: random() < 0.5 });
            log.push(`commit conn ${c}: ${commits.map((x) => `${x.ts}[${x.documents.map((d) => `${d.id}${d.body === null ? "-" : "+"}`).join(",")}]`).join(" ")}`);
            await commitAll(s, commits, since);
          } else if (roll < 0.7) {
            await readAny("read");
          } else if (roll < 0.75) {
            log.push(`writePendingVersions conn ${c}`);
            s.writePendingVersions();
          } else if (roll < 0.8) {
            if (model.latest > floor) floor += Math.floor(random() * (model.latest - floor + 1));
            log.push(`raiseReadFloor ${floor}`);
            for (const x of conns) x.raiseReadFloor(floor);
          } else if (roll < 0.87) {
            if (model.latest > floor) floor += Math.floor(random() * (model.latest - floor + 1));
            for (const x of conns) x.raiseReadFloor(floor);
            log.push(`pruneHistory conn ${c} at ${floor} (concurrent)`);
            // While the sweep yields between its steps, commits and reads go on.
            const prune = s.pruneHistory(floor);
            for (let k = 0; k < 3; k++) {
              if (random() < 0.5) {
                const since = model.latest;
                const commits = randomHistory(random, model, 1 + Math.floor(random() * 2));
                const w = random() < 0.5 ? 0 : 1;
                log.push(`  commit during prune conn ${w}: ${commits.map((x) => x.ts).join(",")}`);
                await commitAll(conns[w]!, commits, since);
              } else {
                await readAny("read during prune");
              }
            }
            if (random() < 0.15) {
              // The connection goes away while its sweep is between steps.
              const crash = random() < 0.5;
              log.push(`  ${crash ? "crash" : "close"} conn ${c} during its prune, reopen`);
              if (crash) {
                await s.checkpointer?.close();
                s.db.close();
              } else {
                await s.close();
              }
              // A sweep cut short by its storage closing stops and resolves (see "a sweep cut
              // short by close" below); what the file holds is checked after.
              await prune;
              conns[c] = await open(optionsOf[c]!);
              conns[c]!.raiseReadFloor(floor);
            }
            await prune;
          } else if (roll < 0.92) {
            const crash = random() < 0.5;
            log.push(`${crash ? "crash" : "close"} and reopen conn ${c}`);
            if (crash) {
              await s.checkpointer?.close();
              s.db.close();
            } else {
              await s.close();
            }
            conns[c] = await open(optionsOf[c]!);
            conns[c]!.raiseReadFloor(floor);
          } else {
            log.push("sleep");
            await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 5)));
          }
        }
        // Every snapshot from the floor up, on both connections, then after writing everything.
        for (let readTs = floor; readTs <= model.latest + 1; readTs++) await check(readTs % 2, readTs, "final");
        conns[0]!.writePendingVersions();
        for (let readTs = floor; readTs <= model.latest + 1; readTs++) await check((readTs + 1) % 2, readTs, "final after write");
        for (const x of conns) expect(await x.latestTimestamp()).toBe(model.latest);
        // Nothing is pending or duplicated: the log after materialized_through is empty, and one row per version.
        const mat = conns[0]!.db.prepare("SELECT materialized_through FROM clock").pluck().get();
        expect(mat).toBe(model.latest);
        // Every version written exactly once: a storage opened now sweeps everything on its
        // first prune (a full pass), which then leaves exactly what the model keeps.
        for (const x of conns) await x.close();
        const last = await open({ historySweep: { fullPassRowsPerCall: 1e6, fullPassIntervalMs: 1e9, maxDirtyGroups: 1e6 } });
        await last.pruneHistory(model.latest);
        model.prune(model.latest);
        expect(await last.stats()).toEqual(model.versionCounts());
        expect(await readSnapshot(last, model.latest)).toEqual(await readSnapshot(model, model.latest));
      });
    }
  }
});

describe("a sweep cut short by close", () => {
  it("resolves when the storage closes between the log trim's steps while a full pass is due", async () => {
    // prune.ts: "If the storage was closed mid-way the loops stop: pruning is only ever an
    // optimisation". The trim's loop stops, but a full pass that is due is started on the
    // closed connection.
    const storage = await open({
      pruneBatchSize: 1,
      deferredVersions: { maxCommits: 1e6, maxBytes: 1e12, delayMs: 1e9, inlineBatchCommits: 1e6, inlineBatchRows: 1e6 },
      historySweep: { fullPassIntervalMs: 0 },
    });
    for (let ts = 1; ts <= 6; ts++) await commit(storage, { ts, documents: [put(`d${ts % 2}`, `v${ts}`)], indexes: [] }, ts - 1);
    const sweep = storage.pruneHistory(6);
    await storage.close();
    await expect(sweep).resolves.toMatchObject({ fullPassPending: false });
    const reopened = await open({});
    expect(await reopened.latestTimestamp()).toBe(6);
    expect((await reopened.getDocument("d0", 6))?.body).toBe("v6");
  });
});

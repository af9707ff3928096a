/**
 * Several connections of one process on one SQLite file (fileFloors.ts): a randomized
 * differential test against the reference model, where each connection acts as an engine
 * would (it pins snapshots at or above its declared floor, raises its floor only up to its
 * oldest pinned snapshot, and reads at its pinned snapshots), while the others commit, prune
 * (also while commits and reads go on), close, crash, reopen and join in the middle. Every read
 * at a pinned snapshot must equal the model's answer at that snapshot, and the commit log must
 * still find every commit above the lowest floor of the open connections. Then targeted
 * tests of how connections find each other: a symlink and a relative path name the same file,
 * two files and in-memory databases are apart, and a connection closed without `close` stops
 * holding the others back.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, realpath, rm, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { commit, put, remove, toCommit, type TestCommit } from "../conformance/context.js";
import { randomHistory, randomScans, readSnapshot, seededRandom } from "../conformance/history.js";
import { ReferenceStorage } from "../conformance/model.js";
import { openSqliteStorage, type SqliteStorage, type SqliteStorageOptions } from "./sqliteStorage.js";

let dir: string;
let filename: string;
const opened = new Set<SqliteStorage>();

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "walkin-file-floors-"));
  filename = path.join(dir, "walkin.sqlite");
});
afterEach(async () => {
  for (const storage of opened) {
    if (storage.db.open) await storage.close();
  }
  opened.clear();
  await rm(dir, { recursive: true, force: true });
});

async function open(options: Partial<SqliteStorageOptions> & { filename?: string }): Promise<SqliteStorage> {
  const storage = await openSqliteStorage({ filename, ...options });
  opened.add(storage);
  return storage;
}

/** What a test's crash does: the connection goes away without `close` (no leave, no final write). */
async function crash(storage: SqliteStorage): Promise<void> {
  await storage.checkpointer?.close();
  storage.db.close();
}

const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const between = (random: () => number, low: number, high: number) => low + Math.floor(random() * (high - low + 1));
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));


/** FLOORS_SEEDS=n / FLOORS_STEPS=n / FLOORS_SEED_BASE=n widen the search (defaults keep the file quick). */
const SEEDS = Array.from({ length: Number(process.env.FLOORS_SEEDS ?? 8) }, (_, i) => 101 + i + Number(process.env.FLOORS_SEED_BASE ?? 0));
const STEPS = Number(process.env.FLOORS_STEPS ?? 220);

/** Mixed options: deferred or inline versions, normal or full sync, small batches, a full pass on every sweep. */
function randomOptions(random: () => number): Partial<SqliteStorageOptions> {
  const synchronous = random() < 0.5 ? "normal" : "full";
  return {
    synchronous,
    backgroundCheckpoints:
      synchronous === "normal" && random() < 0.5 ? { passPages: 5, restartPages: 10, backstopPages: 1000, idleMs: 20 } : synchronous === "normal",
    pruneBatchSize: between(random, 1, 3),
    deferredVersions:
      random() < 0.4
        ? false
        : {
            maxCommits: between(random, 1, 6),
            maxBytes: 1e12,
            delayMs: random() < 0.5 ? 0 : 1e9,
            inlineBatchCommits: between(random, 2, 4),
            inlineBatchRows: between(random, 4, 20),
          },
    historySweep: { fullPassRowsPerCall: between(random, 2, 6), fullPassIntervalMs: 0, maxDirtyGroups: random() < 0.5 ? between(random, 2, 10) : 1e6 },
  };
}

/** A connection as its engine sees it. */
interface Conn {
  slot: number;
  generation: number;
  storage: SqliteStorage;
  options: Partial<SqliteStorageOptions>;
  /** The latest commit when it opened: its engine reads nothing below. */
  openedAt: number;
  /** The newest `raiseReadFloor`/`pruneHistory` timestamp its engine gave. */
  promised: number;
  /** Snapshots its engine holds (a multiset), each at or above its floor. */
  pins: number[];
}

const floorOf = (c: Conn) => Math.max(c.promised, c.openedAt);

describe("connections of one process on one file, randomized against the reference model", () => {
  for (const seed of SEEDS) {
    it(`engines on 2-4 connections pin, read, commit, prune, close, crash and reopen (seed ${seed})`, async () => {
      const random = seededRandom(seed * 7877 + 3);
      const model = new ReferenceStorage();
      const log: string[] = [];
      const where = () => `seed ${seed}, latest ${model.latest}\n${log.slice(-40).join("\n")}`;
      const slots = 2 + Math.floor(random() * 3); // 2..4 connections at most
      const optionsOf = Array.from({ length: slots }, () => randomOptions(random));
      const conns: (Conn | null)[] = Array.from({ length: slots }, () => null);
      const generations = Array.from({ length: slots }, () => 0);
      /** Commit id -> timestamp, for the commits whose batch resolved. */
      const landed = new Map<string, number>();
      /** Commits and sweeps started and not awaited yet. */
      const inFlight = new Set<Promise<unknown>>();
      const failures: unknown[] = [];
      const track = (what: string, p: Promise<unknown>) => {
        const tracked = p.then(
          () => undefined,
          (error) => {
            failures.push(new Error(`${what} failed: ${(error as Error).stack ?? String(error)}`));
          },
        );
        inFlight.add(tracked);
        void tracked.finally(() => inFlight.delete(tracked));
      };
      const settle = async () => {
        while (inFlight.size > 0) await Promise.all([...inFlight]);
        if (failures.length > 0) throw new Error(`${String(failures[0])}\n${where()}`);
      };

      const openSlot = async (slot: number) => {
        const storage = await open(optionsOf[slot]!);
        // Nothing commits between open and here in this test: openSqliteStorage is synchronous inside.
        const openedAt = await storage.latestTimestamp();
        expect(openedAt, `latest at open; ${where()}`).toBe(model.latest);
        const conn: Conn = { slot, generation: ++generations[slot]!, storage, options: optionsOf[slot]!, openedAt, promised: 0, pins: [] };
        conns[slot] = conn;
        log.push(`open conn ${slot}.${conn.generation} at ${openedAt} ${JSON.stringify(optionsOf[slot])}`);
        return conn;
      };
      const live = () => conns.filter((c): c is Conn => c !== null);
      const lowestFloor = () => Math.min(...live().map(floorOf));

      /** Reads at one of `c`'s pinned snapshots, compared with the model at that snapshot. */
      const readPinned = async (c: Conn, what: string) => {
        if (c.pins.length === 0) return;
        const readTs = pick(random, c.pins);
        const yieldBetween = random() < 0.5;
        const scanSeed = Math.floor(random() * 1e9);
        log.push(`read conn ${c.slot}.${c.generation} at ${readTs} (floor ${floorOf(c)})`);
        const got = await readSnapshot(c.storage, readTs);
        const want = await readSnapshot(model, readTs);
        expect(got, `${what}: conn ${c.slot}.${c.generation} at pinned ${readTs}; ${where()}`).toEqual(want);
        // The connection may have crashed or closed while the scans yielded: then its engine is gone.
        const gotScans = await randomScans(c.storage, seededRandom(scanSeed), readTs, 4, yieldBetween ? tick : undefined);
        const wantScans = await randomScans(model, seededRandom(scanSeed), readTs, 4);
        if (conns[c.slot] === c) expect(gotScans, `${what} (scans): conn ${c.slot}.${c.generation} at pinned ${readTs}; ${where()}`).toEqual(wantScans);
      };

      /** A batch planned under the write lock, from the model as the storage shows it. */
      const startCommit = (c: Conn) => {
        const n = random() < 0.7 ? 1 : between(random, 1, 4);
        const planSeed = Math.floor(random() * 1e9);
        const hintFresh = random() < 0.5;
        const since = model.latest;
        let planned = "";
        let ran = false;
        const batch = c.storage.commitBatch(since, (view) => {
          ran = true;
          if (view.latest !== model.latest) throw new Error(`the planner's view says latest ${view.latest}, the model ${model.latest}`);
          const commits: TestCommit[] = randomHistory(seededRandom(planSeed), model, n, { hintFresh });
          planned = commits.map((x) => `${x.ts}[${x.documents.map((d) => `${d.id}${d.body === null ? "-" : "+"}`).join(",")}]`).join(" ");
          log.push(`  planned on conn ${c.slot}.${c.generation}: ${planned}`);
          return commits.map(toCommit);
        });
        log.push(`commit conn ${c.slot}.${c.generation} since ${since}`);
        track(
          `commit on conn ${c.slot}.${c.generation}`,
          batch.then(
            (result) => {
              for (const w of result.written) landed.set(w.id, w.ts);
            },
            (error) => {
              // A batch waiting for the checkpointer when its connection closed or crashed never
              // planned, so nothing of it happened: its engine is gone, and the model agrees.
              if (!ran && conns[c.slot] !== c) log.push(`  commit on conn ${c.slot}.${c.generation} refused after it went away`);
              else throw error;
            },
          ),
        );
      };

      const checkFindCommits = async (c: Conn) => {
        const floor = lowestFloor();
        const expected = [...landed].filter(([, ts]) => ts > floor);
        const found = await c.storage.findCommits(expected.map(([id]) => id));
        const missing = expected.filter(([id, ts]) => found.get(id) !== ts).map(([id, ts]) => `${id}@${ts}`);
        const trimmed = (await c.storage.commitsSince(model.latest, 1)).trimmedThrough;
        log.push(`findCommits conn ${c.slot}.${c.generation}: ${expected.length} above ${floor}, log trimmed through ${trimmed}`);
        expect(missing, `findCommits above the lowest open floor ${floor} (trimmedThrough ${trimmed}); ${where()}`).toEqual([]);
        expect(trimmed, `trimmedThrough above the lowest open floor; ${where()}`).toBeLessThanOrEqual(floor);
      };

      const goAway = async (c: Conn, how: "close" | "crash") => {
        log.push(`${how} conn ${c.slot}.${c.generation}`);
        conns[c.slot] = null;
        if (how === "crash") await crash(c.storage);
        else await c.storage.close();
      };

      try {
        await openSlot(0);
        await openSlot(1);
        for (let step = 0; step < STEPS; step++) {
          const open = live();
          const c = pick(random, open);
          const roll = random();
          if (roll < 0.3) {
            startCommit(c);
            if (random() < 0.6) await settle();
          } else if (roll < 0.42) {
            // Pin a snapshot at or above the floor (the engine's newest known, or one it still holds).
            const readTs = between(random, floorOf(c), model.latest);
            c.pins.push(readTs);
            log.push(`pin conn ${c.slot}.${c.generation} at ${readTs}`);
          } else if (roll < 0.47) {
            if (c.pins.length > 0) {
              const i = Math.floor(random() * c.pins.length);
              log.push(`unpin conn ${c.slot}.${c.generation} at ${c.pins[i]}`);
              c.pins.splice(i, 1);
            }
          } else if (roll < 0.65) {
            await readPinned(c, "read");
          } else if (roll < 0.77) {
            // Raise the floor to at most the oldest pinned snapshot (or the latest if none), then
            // promise it, or sweep at it while commits and reads go on.
            const ceiling = c.pins.length > 0 ? Math.min(...c.pins) : model.latest;
            // Pins are at or above the floor, and the floor at most the latest: floor <= ceiling.
            const floor = between(random, floorOf(c), ceiling);
            c.promised = Math.max(c.promised, floor);
            if (random() < 0.35) {
              log.push(`raiseReadFloor conn ${c.slot}.${c.generation} ${floor}`);
              c.storage.raiseReadFloor(floor);
            } else {
              log.push(`pruneHistory conn ${c.slot}.${c.generation} at ${floor} (lowest open floor ${lowestFloor()})`);
              track(`pruneHistory on conn ${c.slot}.${c.generation}`, c.storage.pruneHistory(floor));
              for (let k = between(random, 0, 4); k > 0; k--) {
                const other = pick(random, live());
                const r = random();
                if (r < 0.4) startCommit(other);
                else if (r < 0.8) await readPinned(other, "read during a sweep");
                else await tick();
              }
              if (random() < 0.5) await settle();
            }
          } else if (roll < 0.8) {
            await tick();
          } else if (roll < 0.84) {
            await checkFindCommits(c);
          } else if (roll < 0.88) {
            if (open.length > 1) await goAway(c, random() < 0.5 ? "crash" : "close");
          } else if (roll < 0.94) {
            const free = conns.map((x, i) => (x === null ? i : -1)).filter((i) => i >= 0);
            if (free.length > 0) {
              // Opened while others' commits or sweeps may be in flight.
              if (random() < 0.5) await settle();
              await openSlot(pick(random, free));
            }
          } else if (roll < 0.97) {
            log.push(`writePendingVersions conn ${c.slot}.${c.generation}`);
            c.storage.writePendingVersions();
          } else {
            await settle();
          }
        }
        await settle();
        // Every snapshot still pinned, on its connection, then the log.
        for (const c of live()) for (const readTs of c.pins) {
          expect(await readSnapshot(c.storage, readTs), `final read conn ${c.slot}.${c.generation} at ${readTs}; ${where()}`).toEqual(await readSnapshot(model, readTs));
        }
        for (const c of live()) await checkFindCommits(c);
        // Every connection but one goes away (some without close), and the last one's engine
        // lets go of its snapshots and prunes at the latest until a full pass has covered it.
        const [last, ...others] = live();
        for (const c of others) await goAway(c, random() < 0.5 ? "crash" : "close");
        last!.pins = [];
        last!.promised = model.latest;
        log.push(`final pruneHistory conn ${last!.slot}.${last!.generation} at ${model.latest}`);
        let report = await last!.storage.pruneHistory(model.latest);
        for (let i = 0; i < 1000 && report.fullPassPending; i++) report = await last!.storage.pruneHistory(model.latest);
        // A pass that was under way may have started before the last writes: one more, whole.
        report = await last!.storage.pruneHistory(model.latest);
        for (let i = 0; i < 1000 && report.fullPassPending; i++) report = await last!.storage.pruneHistory(model.latest);
        expect(report.fullPassPending).toBe(false);
        model.prune(model.latest);
        expect(await last!.storage.stats(), `version counts after pruning at the latest; ${where()}`).toEqual(model.versionCounts());
        expect(await readSnapshot(last!.storage, model.latest)).toEqual(await readSnapshot(model, model.latest));
        expect((await last!.storage.commitsSince(0, 10)).trimmedThrough).toBe(model.latest);
        if (process.env.FLOORS_VERBOSE) {
          const kinds = new Map<string, number>();
          for (const line of log) kinds.set(line.trim().split(" ")[0]!, (kinds.get(line.trim().split(" ")[0]!) ?? 0) + 1);
          console.log(`seed ${seed}: latest ${model.latest}, ${slots} slots ${JSON.stringify(Object.fromEntries(kinds))}`);
        }
      } catch (error) {
        await Promise.allSettled([...inFlight]);
        if (error instanceof Error && !error.message.includes(`seed ${seed}`)) error.message += `\n${where()}`;
        throw error;
      }
    });
  }
});

/**
 * The shape of most targeted tests: `reader` opens at 1 and pins 1 (a1 at ts 1), `writer`
 * writes a2, a3 and prunes at 3. Held back by the reader, a1 stays; otherwise it goes.
 */
async function writeOverAndPrune(writer: SqliteStorage): Promise<void> {
  await commit(writer, { ts: 2, documents: [put("a", "a2")], indexes: [] }, 1);
  await commit(writer, { ts: 3, documents: [put("a", "a3"), remove("b")], indexes: [] }, 2);
  writer.raiseReadFloor(3);
  await writer.pruneHistory(3);
}

const SWEEP_EVERYTHING = { fullPassIntervalMs: 0, fullPassRowsPerCall: 1e6 };

describe("which connections hold each other back", () => {
  it("a symlink and a relative path to the file share its floors with the real path", async () => {
    const links = path.join(dir, "links");
    await mkdir(links);
    /** A file of its own, opened by the writer as `writerName` and by the reader as `readerName`. */
    const scenario = async (file: string, writerName: string, readerName: string) => {
      const what = `writer ${writerName}, reader ${readerName}`;
      const writer = await open({ filename: writerName, historySweep: SWEEP_EVERYTHING, deferredVersions: false });
      await commit(writer, { ts: 1, documents: [put("a", "a1"), put("b", "b1")], indexes: [] }, 0);
      const reader = await open({ filename: readerName });
      expect(await realpath(readerName)).toBe(await realpath(file));
      // The reader's engine pins 1 and declares it (it opened at 1: its floor is 1 anyway).
      reader.raiseReadFloor(1);
      await writeOverAndPrune(writer);
      // Pruning on write as well: the writer's floor is 4 when a4 is written.
      writer.raiseReadFloor(3);
      await commit(writer, { ts: 4, documents: [put("a", "a4")], indexes: [] }, 3);
      expect((await reader.getDocument("a", 1))?.body, what).toBe("a1");
      expect((await reader.getDocument("b", 1))?.body, what).toBe("b1");
      expect(await writer.stats(), what).toEqual({ documents: 6, indexEntries: 0 });
      expect((await writer.commitsSince(0, 10)).trimmedThrough, what).toBeLessThanOrEqual(1);
      // With the reader gone, the writer's next sweep goes all the way.
      await reader.close();
      await writer.pruneHistory(3);
      expect(await writer.stats(), what).toEqual({ documents: 2, indexEntries: 0 });
      expect((await writer.commitsSince(0, 10)).trimmedThrough, what).toBe(3);
      await writer.close();
    };
    const cases: [string, (file: string, link: string, relative: string) => [string, string]][] = [
      ["symlink reader", (file, link) => [file, link]],
      ["relative reader", (file, _link, relative) => [file, relative]],
      ["symlink writer", (file, link) => [link, file]],
      ["relative writer through the symlink", (file, _link, relative) => [relative, file]],
    ];
    for (const [name, names] of cases) {
      const file = path.join(dir, `${name.replace(/ /g, "-")}.sqlite`);
      const link = path.join(links, `${name.replace(/ /g, "-")}.sqlite`);
      await symlink(file, link);
      const relative = name.includes("through") ? path.relative(process.cwd(), link) : path.relative(process.cwd(), file);
      expect(path.isAbsolute(relative)).toBe(false);
      const [writerName, readerName] = names(file, link, relative);
      await scenario(file, writerName, readerName);
    }
  });

  it("a directory reached through a symlink is the same file", async () => {
    const linkedDir = path.join(os.tmpdir(), `walkin-file-floors-link-${process.pid}-${Date.now()}`);
    await symlink(dir, linkedDir);
    try {
      const writer = await open({ historySweep: SWEEP_EVERYTHING, deferredVersions: false });
      await commit(writer, { ts: 1, documents: [put("a", "a1"), put("b", "b1")], indexes: [] }, 0);
      const reader = await open({ filename: path.join(linkedDir, "walkin.sqlite") });
      expect(await realpath(path.join(linkedDir, "walkin.sqlite"))).toBe(await realpath(filename));
      await writeOverAndPrune(writer);
      // Pruning on write too: the writer's floor is 3, a commit writing a again keeps a1.
      await commit(writer, { ts: 4, documents: [put("a", "a4")], indexes: [] }, 3);
      expect((await reader.getDocument("a", 1))?.body).toBe("a1");
      expect((await reader.getDocument("b", 1))?.body).toBe("b1");
    } finally {
      await rm(linkedDir, { force: true });
    }
  });

  it("two different files do not hold each other back", async () => {
    const writer = await open({ historySweep: SWEEP_EVERYTHING, deferredVersions: false });
    // Opened at 0 on a file of its own, with a floor of 0: on the writer's file it would hold everything.
    const elsewhere = await open({ filename: path.join(dir, "other.sqlite") });
    expect(await elsewhere.latestTimestamp()).toBe(0);
    await commit(writer, { ts: 1, documents: [put("a", "a1"), put("b", "b1")], indexes: [] }, 0);
    await writeOverAndPrune(writer);
    expect(await writer.stats()).toEqual({ documents: 1, indexEntries: 0 });
    expect((await writer.commitsSince(0, 10)).trimmedThrough).toBe(3);
    // Pruning on write, too: a4 deletes a3 at the floor 4.
    await commit(writer, { ts: 4, documents: [put("a", "a4")], indexes: [] }, 3);
    writer.raiseReadFloor(4);
    await commit(writer, { ts: 5, documents: [put("a", "a5")], indexes: [] }, 4);
    expect(await writer.stats()).toEqual({ documents: 2, indexEntries: 0 });
    expect(await elsewhere.stats()).toEqual({ documents: 0, indexEntries: 0 });
  });

  it("':memory:' and temporary databases are each their own, holding no one back", async () => {
    const first = await open({ filename: ":memory:", historySweep: SWEEP_EVERYTHING, deferredVersions: false });
    const second = await open({ filename: ":memory:" });
    const temporary = await open({ filename: "" });
    expect(await second.latestTimestamp()).toBe(0);
    expect(await temporary.latestTimestamp()).toBe(0);
    await commit(first, { ts: 1, documents: [put("a", "a1"), put("b", "b1")], indexes: [] }, 0);
    await writeOverAndPrune(first);
    expect(await first.stats()).toEqual({ documents: 1, indexEntries: 0 });
    expect(await second.stats()).toEqual({ documents: 0, indexEntries: 0 });
    // And the second, written and pruned on its own, is not held back by the first (floor 3 there).
    const held = await open({ filename: ":memory:", historySweep: SWEEP_EVERYTHING });
    await commit(second, { ts: 1, documents: [put("a", "a1"), put("b", "b1")], indexes: [] }, 0);
    await writeOverAndPrune(second);
    expect(await second.stats()).toEqual({ documents: 1, indexEntries: 0 });
    expect(await held.latestTimestamp()).toBe(0);
  });

  it("'file::memory:' names a file on disk (better-sqlite3 takes no URI filenames): its connections share floors", async () => {
    // better-sqlite3 builds SQLite with SQLITE_USE_URI=0 and opens without SQLITE_OPEN_URI, so
    // "file::memory:" is a file of that name in the working directory, shared by every
    // connection that opens it, not a private in-memory database.
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const writer = await open({ filename: "file::memory:", historySweep: SWEEP_EVERYTHING, deferredVersions: false });
      await commit(writer, { ts: 1, documents: [put("a", "a1"), put("b", "b1")], indexes: [] }, 0);
      expect(existsSync(path.join(dir, "file::memory:"))).toBe(true);
      const reader = await open({ filename: "file::memory:" });
      // The same database: the reader sees the writer's commit.
      expect(await reader.latestTimestamp()).toBe(1);
      reader.raiseReadFloor(1);
      await writeOverAndPrune(writer);
      expect((await reader.getDocument("a", 1))?.body).toBe("a1");
      expect((await reader.getDocument("b", 1))?.body).toBe("b1");
    } finally {
      process.chdir(cwd);
    }
  });

  it("a connection closed without close() stops holding the others back", async () => {
    const writer = await open({ historySweep: SWEEP_EVERYTHING, deferredVersions: false, pruneBatchSize: 1 });
    await commit(writer, { ts: 1, documents: [put("a", "a1"), put("b", "b1")], indexes: [] }, 0);
    const reader = await open({ synchronous: "normal" });
    reader.raiseReadFloor(1);
    await writeOverAndPrune(writer);
    // Held back while the reader is open: nothing of a1, b1, a2, a3 and b's tombstone goes.
    expect((await reader.getDocument("a", 1))?.body).toBe("a1");
    expect(await writer.stats()).toEqual({ documents: 5, indexEntries: 0 });
    expect((await writer.commitsSince(0, 10)).trimmedThrough).toBeLessThanOrEqual(1);
    await crash(reader);
    // The sweep, pruning on write and the log's trim all go to the writer's own floor now.
    await writer.pruneHistory(3);
    expect(await writer.stats()).toEqual({ documents: 1, indexEntries: 0 });
    expect((await writer.commitsSince(0, 10)).trimmedThrough).toBe(3);
    writer.raiseReadFloor(4);
    await commit(writer, { ts: 4, documents: [put("a", "a4")], indexes: [] }, 3);
    await commit(writer, { ts: 5, documents: [put("a", "a5")], indexes: [] }, 4);
    expect(await writer.stats()).toEqual({ documents: 2, indexEntries: 0 });
    expect((await writer.commitsSince(0, 10)).trimmedThrough).toBe(4);
  });

  it("a connection that closes stops holding the others back, and one opened later holds them at its opening", async () => {
    const writer = await open({ historySweep: SWEEP_EVERYTHING, deferredVersions: false });
    await commit(writer, { ts: 1, documents: [put("a", "a1"), put("b", "b1")], indexes: [] }, 0);
    const reader = await open({});
    await writeOverAndPrune(writer);
    expect(await writer.stats()).toEqual({ documents: 5, indexEntries: 0 });
    await reader.close();
    await writer.pruneHistory(3);
    expect(await writer.stats()).toEqual({ documents: 1, indexEntries: 0 });
    // Opened at 5: its engine reads nothing below, so pruning up to 5 goes ahead, not past.
    await commit(writer, { ts: 4, documents: [put("a", "a4")], indexes: [] }, 3);
    await commit(writer, { ts: 5, documents: [put("a", "a5")], indexes: [] }, 4);
    const late = await open({});
    await commit(writer, { ts: 6, documents: [put("a", "a6")], indexes: [] }, 5);
    writer.raiseReadFloor(6);
    await writer.pruneHistory(6);
    expect((await late.getDocument("a", 5))?.body).toBe("a5");
    expect(await writer.stats()).toEqual({ documents: 2, indexEntries: 0 });
    expect((await writer.commitsSince(0, 10)).trimmedThrough).toBe(5);
  });
});

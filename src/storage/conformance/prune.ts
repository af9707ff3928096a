/**
 * Conformance tests of `Storage.pruneHistory`, plus a randomized check of reads against the
 * reference model: every snapshot of a random history must read as the model says, and
 * snapshots at or after the prune timestamp must read exactly the same after pruning. Writes
 * hinted `fresh` (types.ts) must change nothing of that: with right hints pruning stays exact,
 * and with wrong ones reads do.
 */
import { expect, it } from "vitest";
import { entry, fresh, keysOf, plain, put, remove, commit, type SuiteContext } from "./context.js";
import { randomHistory, readSnapshot, seededRandom, type Readable } from "./history.js";
import { ReferenceStorage } from "./model.js";

export function pruneTests(ctx: SuiteContext): void {
  for (const seed of [1, 2, 3, 4]) {
    it(`matches the reference model on a random history, before and after pruning (seed ${seed})`, async () => {
      const s = ctx.storage;
      const random = seededRandom(seed);
      const model = new ReferenceStorage();
      for (const one of randomHistory(random, model, 60)) await commit(s, one);
      const latest = model.latest;
      expect(await s.latestTimestamp()).toBe(latest);

      const before = new Map<number, unknown>();
      for (let readTs = 0; readTs <= latest + 1; readTs++) {
        const snapshot = await readSnapshot(s, readTs);
        expect(snapshot, `readTs ${readTs}`).toEqual(await readSnapshot(model, readTs));
        before.set(readTs, snapshot);
      }

      const pruneTs = 1 + Math.floor(random() * latest);
      await s.pruneHistory(pruneTs);
      for (let readTs = pruneTs; readTs <= latest + 1; readTs++) {
        expect(await readSnapshot(s, readTs), `readTs ${readTs} after pruning at ${pruneTs}`).toEqual(before.get(readTs));
      }
      model.prune(pruneTs);
      const counts = ctx.countVersions();
      if (counts !== undefined) expect(await counts).toEqual(model.versionCounts());

      // Pruning again, up to the latest commit, then writing on: history keeps working.
      await s.pruneHistory(latest);
      expect(await readSnapshot(s, latest)).toEqual(before.get(latest));
      for (const one of randomHistory(random, model, 20)) await commit(s, one);
      for (let readTs = latest; readTs <= model.latest; readTs++) {
        const expected = await readSnapshot(model, readTs);
        expect(await readSnapshot(s, readTs), `readTs ${readTs} after more commits`).toEqual(expected);
      }
    });
  }

  for (const seed of [5, 6]) {
    it(`stays exact with first writes hinted fresh, pruning between commits (seed ${seed})`, async () => {
      const s = ctx.storage;
      const random = seededRandom(seed);
      const model = new ReferenceStorage();
      let pruneTs = 0;
      for (let round = 0; round < 4; round++) {
        for (const one of randomHistory(random, model, 20, { hintFresh: true })) await commit(s, one);
        pruneTs += 1 + Math.floor(random() * (model.latest - pruneTs));
        await s.pruneHistory(pruneTs);
        model.prune(pruneTs);
        for (let readTs = pruneTs; readTs <= model.latest + 1; readTs++) {
          const expected = await readSnapshot(model, readTs);
          expect(await readSnapshot(s, readTs), `round ${round}: readTs ${readTs} after pruning at ${pruneTs}`).toEqual(expected);
        }
        const counts = ctx.countVersions();
        if (counts !== undefined) expect(await counts, `round ${round}: versions after pruning at ${pruneTs}`).toEqual(model.versionCounts());
      }
    });
  }

  for (const seed of [7, 8, 9]) {
    it(`reads at or above the read floor stay exact while commits rewrite documents (seed ${seed})`, async () => {
      const s = ctx.storage;
      if (s.raiseReadFloor === undefined) return; // optional: nothing to check
      const random = seededRandom(seed);
      const model = new ReferenceStorage();
      const unpruned = new ReferenceStorage();
      let floor = 0;
      for (let round = 0; round < 16; round++) {
        for (const one of randomHistory(random, model, 6, { hintFresh: round % 2 === 0 })) {
          unpruned.apply(one);
          await commit(s, one);
        }
        // The floor rises as the engine raises it: never past the newest commit. A lower one
        // than before changes nothing.
        const lower = Math.floor(random() * floor);
        floor = Math.max(floor, model.latest - Math.floor(random() * 8));
        s.raiseReadFloor(floor);
        s.raiseReadFloor(lower);
        for (let readTs = floor; readTs <= model.latest + 1; readTs++) {
          const expected = await readSnapshot(model, readTs);
          expect(await readSnapshot(s, readTs), `round ${round}: readTs ${readTs}, floor ${floor}`).toEqual(expected);
        }
      }
      // Whatever the storage dropped on the way, it kept at least what a sweep at the floor keeps.
      const counts = ctx.countVersions();
      if (counts !== undefined) {
        const left = await counts;
        model.prune(floor);
        expect(left.documents).toBeGreaterThanOrEqual(model.versionCounts().documents);
        expect(left.documents).toBeLessThanOrEqual(unpruned.versionCounts().documents);
      }
    });
  }

  it("removes what later writes supersede of writes hinted fresh", async () => {
    const s = ctx.storage;
    await commit(s, { ts: 1, documents: [put("seed", "s")], indexes: [] });
    await s.pruneHistory(1); // whatever a storage does on its first sweep is done
    await commit(s, {
      ts: 2,
      documents: [fresh(put("a", "a2")), fresh(put("b", "b2"))],
      indexes: [fresh(entry("i", [1], "a")), fresh(entry("i", [2], "b"))],
    });
    await commit(s, {
      ts: 3,
      documents: [put("a", "a3"), remove("b")],
      indexes: [entry("i", [1], null), entry("i", [3], "a"), entry("i", [2], null)],
    });
    await commit(s, { ts: 4, documents: [fresh(put("c", "c4"))], indexes: [fresh(entry("i", [4], "c"))] });
    await s.pruneHistory(4);
    expect((await s.getDocument("a", 4))?.body).toBe("a3");
    expect(await s.getDocument("b", 4)).toBeNull();
    expect((await s.getDocument("c", 4))?.body).toBe("c4");
    expect(keysOf(await s.scan({ indexId: "i", range: {}, order: "asc", readTs: 4, limit: 10 }))).toEqual([[3], [4]]);
    const counts = ctx.countVersions();
    // seed, a3, c4; the entries [3] and [4].
    if (counts !== undefined) expect(await counts).toEqual({ documents: 3, indexEntries: 2 });
  });

  it("reads stay exact when writes are wrongly hinted fresh (at worst garbage is left)", async () => {
    const s = ctx.storage;
    const model = new ReferenceStorage();
    const history = [
      { ts: 1, documents: [put("a", "a1")], indexes: [entry("i", [1], "a")] },
      { ts: 2, documents: [fresh(put("a", "a2"))], indexes: [fresh(entry("i", [1], null)), fresh(entry("i", [2], "a"))] },
      { ts: 3, documents: [fresh(remove("a"))], indexes: [fresh(entry("i", [2], null))] },
      { ts: 4, documents: [fresh(put("a", "a4"))], indexes: [fresh(entry("i", [1], "a"))] },
      { ts: 5, documents: [fresh(put("a", "a5"))], indexes: [] },
    ];
    for (const one of history) {
      model.apply(one);
      await commit(s, one);
    }
    for (const pruneTs of [2, 3, 5]) {
      await s.pruneHistory(pruneTs);
      model.prune(pruneTs);
      for (let readTs = pruneTs; readTs <= 6; readTs++) {
        expect(await readA(s, readTs), `readTs ${readTs} after pruning at ${pruneTs}`).toEqual(await readA(model, readTs));
      }
    }
    const counts = ctx.countVersions();
    if (counts !== undefined) {
      const left = await counts;
      const exact = model.versionCounts();
      expect(left.documents).toBeGreaterThanOrEqual(exact.documents);
      expect(left.indexEntries).toBeGreaterThanOrEqual(exact.indexEntries);
    }
  });

  it("drops superseded versions and old tombstones, keeping what later snapshots read", async () => {
    const s = ctx.storage;
    await commit(s, {
      ts: 1,
      documents: [put("a", "a1"), put("c", "c1")],
      indexes: [entry("i", [1], "a"), entry("i", [3], "c")],
    });
    await commit(s, { ts: 2, documents: [put("b", "b2")], indexes: [entry("i", [2], "b")] });
    await commit(s, { ts: 3, documents: [put("a", "a3")], indexes: [entry("i", [1], null)] });
    await commit(s, { ts: 4, documents: [remove("b")], indexes: [entry("i", [2], null)] });
    await commit(s, { ts: 5, documents: [put("a", "a5")], indexes: [entry("i", [1], "a")] });
    await commit(s, { ts: 6, documents: [remove("c")], indexes: [entry("i", [3], null)] });
    const counts = ctx.countVersions();
    if (counts !== undefined) expect(await counts).toEqual({ documents: 7, indexEntries: 7 });

    await s.pruneHistory(5);
    // a: only a5 is left; b: deleted at 4, gone entirely; c: c1 and its tombstone at 6 stay.
    expect((await s.getDocument("a", 5))?.body).toBe("a5");
    expect(await s.getDocument("b", 5)).toBeNull();
    expect((await s.getDocument("c", 5))?.body).toBe("c1");
    expect(await s.getDocument("c", 6)).toBeNull();
    expect(keysOf(await s.scan({ indexId: "i", range: {}, order: "asc", readTs: 5, limit: 10 }))).toEqual([[1], [3]]);
    expect(keysOf(await s.scan({ indexId: "i", range: {}, order: "asc", readTs: 6, limit: 10 }))).toEqual([[1]]);
    const after = ctx.countVersions();
    if (after !== undefined) expect(await after).toEqual({ documents: 3, indexEntries: 3 });
  });

  it("is harmless on an empty store and when there is nothing to prune", async () => {
    const s = ctx.storage;
    await s.pruneHistory(10);
    await commit(s, { ts: 11, documents: [put("a", "a")], indexes: [entry("i", [1], "a")] });
    await s.pruneHistory(11);
    await s.pruneHistory(11);
    expect((await s.getDocument("a", 11))?.body).toBe("a");
    expect(keysOf(await s.scan({ indexId: "i", range: {}, order: "asc", readTs: 11, limit: 10 }))).toEqual([[1]]);
  });
}

/** Document "a" and index "i" at `readTs`, as plain data. */
async function readA(storage: Readable, readTs: number): Promise<unknown> {
  const entries = await storage.scan({ indexId: "i", range: {}, order: "asc", readTs, limit: 10 });
  return { a: await storage.getDocument("a", readTs), i: plain(entries) };
}

/**
 * Conformance tests of what several writers sharing one database rely on (see "Several engines
 * on one database" in `types.ts`): the commit lock and the planner's view, the commit log and
 * its trim mark, `findCommits`, and reads that stay exact while commits and pruning run.
 */
import { expect, it } from "vitest";
import type { Commit, CommitLogView } from "../types.js";
import { commit, entry, keysOf, plain, put, remove, toCommit, type SuiteContext } from "./context.js";

const log = (...bytes: number[]) => Uint8Array.from(bytes);

/** A planner that writes one commit right after whatever the storage says is latest. */
function nextCommit(body: string, id: string, seen?: CommitLogView[]) {
  return (view: CommitLogView): Commit[] => {
    seen?.push(view);
    return [toCommit({ ts: view.latest + 1, id, documents: [put("doc", body)], indexes: [], log: log(id.length) })];
  };
}

export function commitLogTests(ctx: SuiteContext): void {
  it("the planner is called once, sees the commits after `since` with their ids and log bytes, and decides the timestamps", async () => {
    const s = ctx.storage;
    await commit(s, { ts: 1, id: "first", documents: [put("a", "1")], indexes: [], log: log(1, 2, 3) });
    await commit(s, { ts: 4, id: "second", documents: [put("b", "2")], indexes: [], log: log(4) });
    const views: CommitLogView[] = [];
    const { view, written } = await s.commitBatch(1, nextCommit("x", "third", views));
    expect(views).toHaveLength(1);
    expect(view).toEqual(views[0]);
    expect(view.latest).toBe(4);
    expect(view.commits.map((c) => [c.ts, c.id, Array.from(c.log)])).toEqual([[4, "second", [4]]]);
    expect(written.map((c) => c.ts)).toEqual([5]);
    expect(await s.latestTimestamp()).toBe(5);
  });

  it("a planner that returns nothing writes nothing; one that throws writes nothing and its error reaches the caller", async () => {
    const s = ctx.storage;
    await commit(s, { ts: 1, documents: [put("a", "1")], indexes: [] });
    expect((await s.commitBatch(1, () => [])).written).toEqual([]);
    await expect(s.commitBatch(1, () => {
      throw new Error("planner refused");
    })).rejects.toThrow(/planner refused/);
    expect(await s.latestTimestamp()).toBe(1);
    expect((await s.commitsSince(0, 10)).commits.map((c) => c.ts)).toEqual([1]);
  });

  it("refuses a planned timestamp at or below the latest, or a repeated commit id, writing nothing", async () => {
    const s = ctx.storage;
    await commit(s, { ts: 3, id: "x", documents: [put("a", "1")], indexes: [] });
    await expect(s.commitBatch(3, (view) => [toCommit({ ts: view.latest, documents: [put("a", "2")], indexes: [] })])).rejects.toThrow(/timestamp/i);
    const twice = [toCommit({ ts: 4, id: "dup", documents: [], indexes: [] }), toCommit({ ts: 5, id: "dup", documents: [], indexes: [] })];
    await expect(s.commitBatch(3, () => twice)).rejects.toThrow(/id/);
    expect(await s.latestTimestamp()).toBe(3);
    expect((await s.getDocument("a", 10))?.body).toBe("1");
  });

  it("commitsSince pages through the log in timestamp order", async () => {
    const s = ctx.storage;
    for (const ts of [1, 2, 5, 6, 9]) await commit(s, { ts, id: `c${ts}`, documents: [], indexes: [], log: log(ts) });
    const first = await s.commitsSince(0, 2);
    expect(first.commits.map((c) => c.id)).toEqual(["c1", "c2"]);
    expect(first.latest).toBe(2);
    const rest = await s.commitsSince(first.latest, 10);
    expect(rest.commits.map((c) => [c.ts, Array.from(c.log)])).toEqual([[5, [5]], [6, [6]], [9, [9]]]);
    expect(rest.latest).toBe(9);
    expect((await s.commitsSince(9, 10)).commits).toEqual([]);
    await expect(s.commitsSince(0, 0)).rejects.toThrow(/limit/);
  });

  it("pruning trims the log through its timestamp and says so in every view", async () => {
    const s = ctx.storage;
    for (const ts of [1, 2, 3, 4]) await commit(s, { ts, id: `c${ts}`, documents: [put(`d${ts}`, "x")], indexes: [] });
    expect((await s.commitsSince(0, 10)).trimmedThrough).toBe(0);
    await s.pruneHistory(2);
    const view = await s.commitsSince(0, 10);
    expect(view.trimmedThrough).toBe(2);
    expect(view.commits.map((c) => c.ts)).toEqual([3, 4]);
    const planned: CommitLogView[] = [];
    await s.commitBatch(0, nextCommit("y", "c5", planned));
    expect(planned[0]!.trimmedThrough).toBe(2);
    expect(planned[0]!.commits.map((c) => c.ts)).toEqual([3, 4]);
  });

  it("findCommits tells which commits landed, and at which timestamp", async () => {
    const s = ctx.storage;
    await commit(s, { ts: 1, id: "landed-1", documents: [], indexes: [] });
    await commit(s, { ts: 2, id: "landed-2", documents: [], indexes: [] });
    await s.commitBatch(2, () => []);
    const found = await s.findCommits(["landed-2", "never-sent", "landed-1"]);
    expect(Object.fromEntries(found)).toEqual({ "landed-1": 1, "landed-2": 2 });
    expect((await s.findCommits([])).size).toBe(0);
  });
}

export function sharingTests(ctx: SuiteContext): void {
  it("two writers racing for the same timestamp both land, one after the other, each seeing the other's commit", async ({ skip }) => {
    const second = await ctx.openSecond(skip);
    try {
      const views: CommitLogView[] = [];
      const results = await Promise.all([
        ctx.storage.commitBatch(0, nextCommit("from one", "one", views)),
        second.commitBatch(0, nextCommit("from two", "two", views)),
      ]);
      const stamps = results.map((r) => r.written[0]!.ts).sort();
      expect(stamps).toEqual([1, 2]);
      // Whoever went second was shown the first one's commit under the lock.
      const later = views.find((view) => view.latest === 1)!;
      expect(later.commits.map((c) => c.ts)).toEqual([1]);
      for (const s of [ctx.storage, second]) {
        expect(await s.latestTimestamp()).toBe(2);
        expect((await s.commitsSince(0, 10)).commits.map((c) => c.id).sort()).toEqual(["one", "two"]);
      }
    } finally {
      await second.close();
    }
  });

  it("reads during an in-flight commit see the snapshot they ask for, before or after it, never half", async () => {
    const s = ctx.storage;
    await commit(s, { ts: 1, documents: [put("a", "a1"), put("b", "b1")], indexes: [entry("i", [1], "a"), entry("i", [2], "b")] });
    const inFlight = commit(s, {
      ts: 2,
      documents: [put("a", "a2"), put("b", "b2")],
      indexes: [entry("i", [1], null), entry("i", [3], "a")],
    }, 1);
    const during = await Promise.all([s.getDocument("a", 1), s.getDocument("b", 1), s.scan({ indexId: "i", range: {}, order: "asc", readTs: 1, limit: 10 })]);
    // One call at the new timestamp while the commit lands: all of the commit, or none of it.
    // (Two separate calls could fall on either side of it; each call is atomic, not the pair.)
    const atTwo = await s.scan({ indexId: "i", range: {}, order: "asc", readTs: 2, limit: 10 });
    await inFlight;
    expect(during[0]?.body).toBe("a1");
    expect(during[1]?.body).toBe("b1");
    expect(keysOf(during[2])).toEqual([[1], [2]]);
    // A read at the new timestamp sees all of the commit or none of it.
    expect([
      [[[1], "a1"], [[2], "b1"]],
      [[[2], "b2"], [[3], "a2"]],
    ]).toContainEqual(atTwo.map((e) => [Array.from(e.key), e.doc.body]));
    expect((await s.getDocument("a", 2))?.body).toBe("a2");
  });

  it("one connection's pruning keeps what another connection's snapshots can still read", async ({ skip }) => {
    const s = ctx.storage;
    await commit(s, { ts: 1, documents: [put("a", "a1")], indexes: [entry("i", [1], "a")] });
    // The second connection reads at 1 from here on (an engine pinned a snapshot there), and
    // says so the way an engine does, then the first moves on and prunes at its own floor.
    const second = await ctx.openSecond(skip);
    try {
      second.raiseReadFloor?.(1);
      await commit(s, { ts: 2, documents: [put("a", "a2")], indexes: [entry("i", [1], null), entry("i", [2], "a")] }, 1);
      await commit(s, { ts: 3, documents: [remove("a")], indexes: [entry("i", [2], null)] }, 2);
      s.raiseReadFloor?.(3);
      await s.pruneHistory(3);
      // Pruning at 3 alone would delete a1 and a2 (superseded at or before 3) and a's tombstone.
      expect((await second.getDocument("a", 1))?.body).toBe("a1");
      expect(plain(await second.scan({ indexId: "i", range: {}, order: "asc", readTs: 1, limit: 10 }))).toEqual([
        { key: [1], doc: expect.objectContaining({ id: "a", body: "a1" }) },
      ]);
      expect(await s.getDocument("a", 3)).toBeNull();
      expect(await s.scan({ indexId: "i", range: {}, order: "asc", readTs: 3, limit: 10 })).toEqual([]);
    } finally {
      await second.close();
    }
  });

  it("reads at or above the prune timestamp are exact while pruning runs", async () => {
    const s = ctx.storage;
    for (let ts = 1; ts <= 40; ts++) {
      await commit(s, { ts, documents: [put(`d${ts % 5}`, `v${ts}`)], indexes: [entry("i", [ts % 5], `d${ts % 5}`)] }, ts - 1);
    }
    const read = () => Promise.all([
      ...[0, 1, 2, 3, 4].map((n) => s.getDocument(`d${n}`, 30)),
      s.scan({ indexId: "i", range: {}, order: "asc", readTs: 30, limit: 10 }),
    ]);
    const before = await read();
    const pruning = s.pruneHistory(30);
    const during = await Promise.all([read(), read(), read()]);
    await pruning;
    for (const snapshot of [...during, await read()]) expect(snapshot).toEqual(before);
  });
}

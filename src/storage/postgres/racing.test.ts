/**
 * Many writers on several storages (as several nodes would be) committing at once: the clock
 * row lock must give one order with no gaps, no lost and no doubled commits, and every planner
 * must be shown every commit that landed after the `since` it asked from.
 */
import { expect, it } from "vitest";
import { put, toCommit } from "../conformance/context.js";
import type { CommitLogView } from "../types.js";
import { openTestSchema } from "./testDatabase.js";

it("4 storages x 4 writers x 10 commits: timestamps 1..160 in one order, each planner sees everything after its since", async () => {
  const target = await openTestSchema();
  const nodes = [target.storage, ...(await Promise.all([1, 2, 3].map(() => target.open())))];
  try {
    const seen: { since: number; view: CommitLogView }[] = [];
    const writer = async (node: (typeof nodes)[number], name: string) => {
      let since = 0;
      for (let i = 0; i < 10; i++) {
        const askedSince = since;
        const { view, written } = await node.commitBatch(askedSince, (view) => {
          seen.push({ since: askedSince, view });
          return [toCommit({ ts: view.latest + 1, id: `${name}-${i}`, documents: [put(`${name}-${i}`, "x")], indexes: [] })];
        });
        since = written[0]!.ts;
        expect(view.latest).toBeGreaterThanOrEqual(askedSince);
      }
    };
    await Promise.all(nodes.flatMap((node, n) => [0, 1, 2, 3].map((w) => writer(node, `n${n}w${w}`))));

    const log = await target.storage.commitsSince(0, 1_000);
    expect(log.latest).toBe(160);
    expect(log.commits.map((c) => c.ts)).toEqual(Array.from({ length: 160 }, (_, i) => i + 1));
    expect(new Set(log.commits.map((c) => c.id)).size).toBe(160);
    const idAt = new Map(log.commits.map((c) => [c.ts, c.id]));
    for (const { since, view } of seen) {
      // The view lists exactly the commits in (since, latest], as they are in the log.
      const expected = [];
      for (let ts = since + 1; ts <= view.latest; ts++) expected.push([ts, idAt.get(ts)]);
      expect(view.commits.map((c) => [c.ts, c.id])).toEqual(expected);
    }
  } finally {
    await Promise.all(nodes.map((node) => node.close()));
    await target.drop();
  }
});

/**
 * Connections that die under the storage (a PostgreSQL restart, a failover, a network cut):
 * reads, `findCommits` and the start of a commit are retried once on a fresh connection, so a
 * call that starts on a connection already dead (the pool has not noticed yet) does not fail.
 */
import { afterEach, expect, it } from "vitest";
import { put, toCommit } from "../conformance/context.js";
import type { CommitLogView } from "../types.js";
import { openTestSchema } from "./testDatabase.js";
import { startTestProxy } from "./testProxy.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const next = (id: string) => (view: CommitLogView) => [toCommit({ ts: view.latest + 1, id, documents: [put("doc", id)], indexes: [] })];

it("reads, findCommits and commits that start right after every connection was cut succeed on fresh connections", async () => {
  const { storage: direct, url, open, drop } = await openTestSchema();
  const proxy = await startTestProxy(url);
  const storage = await open({ url: proxy.url, poolSize: 2 });
  cleanups.push(async () => {
    await storage.close();
    await proxy.close();
    await direct.close();
    await drop();
  });
  await storage.commitBatch(0, next("first"));
  for (let round = 1; round <= 3; round++) {
    // Fill the pool with idle connections, cut them all, and call at once: the pool still
    // holds them, so each call starts on a dead connection.
    await Promise.all([storage.latestTimestamp(), storage.latestTimestamp()]);
    proxy.cutAll();
    const [latest, doc, found, scanned] = await Promise.all([
      storage.latestTimestamp(),
      storage.getDocument("doc", 100),
      storage.findCommits(["first"]),
      storage.scan({ indexId: "i", range: {}, order: "asc", readTs: 100, limit: 1 }),
    ]);
    expect(latest).toBe(round);
    expect(doc?.body).toBe(round === 1 ? "first" : `round-${round - 1}`);
    expect(found).toEqual(new Map([["first", 1]]));
    expect(scanned).toEqual([]);
    await Promise.all([storage.latestTimestamp(), storage.latestTimestamp()]);
    proxy.cutAll();
    await storage.commitBatch(round, next(`round-${round}`));
  }
  expect(await direct.latestTimestamp()).toBe(4);
});

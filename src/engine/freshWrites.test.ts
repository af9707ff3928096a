/**
 * The engine hints an inserted document's writes `fresh` (storage/types.ts), so that a storage
 * may leave them out of its history bookkeeping, and never an update's: a key an update writes
 * may have older versions stored (a field changed A → B → A).
 */
import { afterEach, describe, expect, it } from "vitest";
import { defineSchema, defineTable, mutation } from "../server/index.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import type { Commit } from "../storage/types.js";
import { Engine } from "./engine.js";
import { HookedStorage } from "./fixtures/hookedStorage.js";

const schema = defineSchema({
  items: defineTable({ tag: v.string() }).index("by_tag", ["tag"]),
});

const items = {
  insert: mutation({
    args: { tag: v.string() },
    handler: (ctx, { tag }) => ctx.db.insert("items", { tag }),
  }),
  insertAndRetag: mutation({
    args: { tag: v.string() },
    handler: async (ctx, { tag }) => {
      const id = await ctx.db.insert("items", { tag: "draft" });
      await ctx.db.patch(id, { tag });
      return id;
    },
  }),
  retag: mutation({
    args: { id: v.id("items"), tag: v.string() },
    handler: (ctx, { id, tag }) => ctx.db.patch(id, { tag }),
  }),
  remove: mutation({
    args: { id: v.id("items") },
    handler: (ctx, { id }) => ctx.db.delete(id),
  }),
};

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An engine on an in-memory SQLite storage, and every commit it writes from now on. */
async function engineRecordingCommits() {
  const sqlite = await openSqliteStorage({ filename: ":memory:" });
  const storage = new HookedStorage(sqlite);
  // The engine's own history sweeps do nothing: the test sweeps the SQLite storage itself.
  storage.pruneHistory = async () => {};
  const engine = await Engine.open({ storage, schema, modules: { items }, runScheduler: false });
  cleanups.push(() => engine.close());
  const commits: Commit[] = [];
  storage.hooks.commitBatch = async (commit) => {
    const result = await commit();
    commits.push(...result.written);
    return result;
  };
  /** The hints of the document and index writes of the commits since the last call. */
  const hints = () => {
    const written = commits.splice(0);
    return {
      documents: written.flatMap((c) => c.documents.map((d) => ({ removed: d.body === null, fresh: d.fresh === true }))),
      indexes: written.flatMap((c) => c.indexes.map((e) => ({ removed: e.docId === null, fresh: e.fresh === true }))),
    };
  };
  return { engine, sqlite, hints };
}

describe("fresh hints", () => {
  it("an insert's document and index entries are fresh, also when patched in the same mutation", async () => {
    const { engine, hints } = await engineRecordingCommits();
    await engine.runMutation("items:insert", { tag: "a" });
    // The document, and its by_id, by_creation_time and by_tag entries.
    const added = { removed: false, fresh: true };
    expect(hints()).toEqual({ documents: [added], indexes: [added, added, added] });
    await engine.runMutation("items:insertAndRetag", { tag: "b" });
    expect(hints()).toEqual({ documents: [added], indexes: [added, added, added] });
  });

  it("an update's and a delete's writes are never fresh, even a key written back", async () => {
    const { engine, hints } = await engineRecordingCommits();
    const id = (await engine.runMutation("items:insert", { tag: "a" })).value as string;
    hints();
    for (const tag of ["b", "a"]) {
      await engine.runMutation("items:retag", { id, tag });
      expect(hints()).toEqual({
        documents: [{ removed: false, fresh: false }],
        indexes: [{ removed: true, fresh: false }, { removed: false, fresh: false }],
      });
    }
    await engine.runMutation("items:remove", { id });
    const removed = { removed: true, fresh: false };
    expect(hints()).toEqual({ documents: [removed], indexes: [removed, removed, removed] });
  });

  it("inserts leave the SQLite storage nothing to sweep; updates leave their own groups", async () => {
    const { engine, sqlite } = await engineRecordingCommits();
    const latest = () => sqlite.latestTimestamp();
    await sqlite.pruneHistory(await latest()); // the full pass of the first sweep
    const ids: string[] = [];
    for (let n = 0; n < 20; n++) ids.push((await engine.runMutation("items:insert", { tag: `t${n}` })).value as string);
    expect((await sqlite.pruneHistory(await latest())).groupsSwept).toBe(0);
    await engine.runMutation("items:retag", { id: ids[3]!, tag: "changed" });
    // The document, its old by_tag key (removed) and its new one.
    expect((await sqlite.pruneHistory(await latest())).groupsSwept).toBe(3);
  });
});

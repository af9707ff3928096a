/**
 * An acknowledged commit survives a crash of the PostgreSQL server whatever the database's or
 * role's defaults say: a commit raises `synchronous_commit = off` (a common tuning, which lets
 * the server acknowledge before its WAL is flushed) to `on`, and leaves stronger settings alone.
 * What each commit ran with is recorded by a trigger on the commit log, in the commit itself.
 */
import { afterEach, describe, expect, it } from "vitest";
import { put, toCommit } from "../conformance/context.js";
import type { CommitLogView } from "../types.js";
import type { PostgresStorage } from "./postgresStorage.js";
import { quoteIdentifier } from "./schema.js";
import { openTestSchema } from "./testDatabase.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const next = (id: string) => (view: CommitLogView) => [toCommit({ ts: view.latest + 1, id, documents: [put("doc", id)], indexes: [] })];

/** The storage's sessions start with `synchronous_commit` at `setting`, as a role default would have them. */
function withSessionDefault(url: string, setting: string): string {
  return `${url}${url.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c synchronous_commit=${setting}`)}`;
}

async function recordSettingsOfCommits(storage: PostgresStorage, schema: string): Promise<() => Promise<string[]>> {
  const s = quoteIdentifier(schema);
  await storage.pool.query(`
    CREATE TABLE ${s}.seen_settings (n serial PRIMARY KEY, setting text NOT NULL);
    CREATE FUNCTION ${s}.record_setting() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO ${s}.seen_settings (setting) VALUES (current_setting('synchronous_commit')); RETURN NEW; END $$;
    CREATE TRIGGER record_setting AFTER INSERT ON ${s}.commit_log FOR EACH ROW EXECUTE FUNCTION ${s}.record_setting();
  `);
  return async () => (await storage.pool.query<{ setting: string }>(`SELECT setting FROM ${s}.seen_settings ORDER BY n`)).rows.map((row) => row.setting);
}

describe("PostgreSQL commits are durable whatever the server's defaults", () => {
  it.each([
    ["off", "on"],
    ["local", "local"],
    ["remote_apply", "remote_apply"],
  ])("a session default of synchronous_commit = %s commits with %s", async (sessionDefault, committedWith) => {
    const target = await openTestSchema();
    const node = await target.open({ url: withSessionDefault(target.url, sessionDefault) });
    cleanups.push(async () => {
      await node.close();
      await target.storage.close();
      await target.drop();
    });
    const seen = await recordSettingsOfCommits(target.storage, target.schema);
    expect((await node.pool.query<{ synchronous_commit: string }>("SHOW synchronous_commit")).rows[0]!.synchronous_commit).toBe(sessionDefault);
    await node.commitBatch(0, next("a"));
    await node.commitBatch(1, next("b"));
    expect(await seen()).toEqual([committedWith, committedWith]);
    // Only the commit's own transaction is changed: the session keeps its default.
    expect((await node.pool.query<{ synchronous_commit: string }>("SHOW synchronous_commit")).rows[0]!.synchronous_commit).toBe(sessionDefault);
  });
});

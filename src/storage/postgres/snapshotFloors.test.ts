/**
 * Pruning on a shared database never removes a version another node may still read: each
 * storage prunes only below the lowest snapshot floor of every open storage.
 */
import pg from "pg";
import { expect, it } from "vitest";
import { commit, put } from "../conformance/context.js";
import { quoteIdentifier } from "./schema.js";
import { SnapshotFloors } from "./snapshotFloors.js";
import { openTestSchema } from "./testDatabase.js";

it("a node's pruning keeps what another node's oldest snapshot reads, and frees it once that node is gone", async () => {
  const target = await openTestSchema();
  const a = target.storage;
  try {
    await commit(a, { ts: 1, documents: [put("doc", "v1")], indexes: [] });
    const b = await target.open(); // its floor: the latest commit when it opened (1)
    await commit(a, { ts: 2, documents: [put("doc", "v2")], indexes: [] }, 1);
    await commit(a, { ts: 3, documents: [put("doc", "v3")], indexes: [] }, 2);

    await a.pruneHistory(3);
    expect((await b.getDocument("doc", 1))?.body).toBe("v1"); // node B could still be reading at 1
    expect((await a.stats()).documents).toBe(3);

    await b.pruneHistory(2); // B's oldest snapshot moved on to 2: v1 may go, v2 stays
    await a.pruneHistory(3);
    expect((await a.getDocument("doc", 2))?.body).toBe("v2");
    expect((await a.stats()).documents).toBe(2);

    await b.close(); // B is gone: nothing holds history back any more
    await a.pruneHistory(3);
    expect((await a.stats()).documents).toBe(1);
    expect((await a.getDocument("doc", 3))?.body).toBe("v3");
  } finally {
    await a.close();
    await target.drop();
  }
});

it("closing waits for a refresh of its row in flight, so the closed node's floor does not come back", async () => {
  const target = await openTestSchema();
  const pool = new pg.Pool({ connectionString: target.url, max: 4 });
  const s = quoteIdentifier(target.schema);
  const floors = new SnapshotFloors(pool, s, "closing-node", () => {});
  const query = pool.query.bind(pool) as (text: string, values?: unknown[]) => Promise<pg.QueryResult>;
  try {
    await floors.register();
    // The next refresh of the row is slow to reach the server (a busy pool, a slow network):
    // without waiting for it, close's DELETE ran first and the refresh inserted the row again.
    pool.query = ((text: string, values?: unknown[]) =>
      text.includes("INSERT INTO") ? new Promise((resolve) => setTimeout(resolve, 200)).then(() => query(text, values)) : query(text, values)) as never;
    const refreshing = floors.agree(7); // pruning records its floor
    await floors.close();
    await refreshing;
    expect((await query(`SELECT instance FROM ${s}.snapshot_floors WHERE instance = 'closing-node'`)).rows).toEqual([]);
    await floors.agree(8); // after close: no refresh at all
    expect((await query(`SELECT instance FROM ${s}.snapshot_floors WHERE instance = 'closing-node'`)).rows).toEqual([]);
  } finally {
    await pool.end();
    await target.storage.close();
    await target.drop();
  }
});

it("registering holds off commits until the row is visible, so no prune at a commit it missed skips it", async () => {
  const target = await openTestSchema();
  const other = target.storage;
  const pool = new pg.Pool({ connectionString: target.url, max: 2 });
  const s = quoteIdentifier(target.schema);
  const floors = new SnapshotFloors(pool, s, "slow-node", () => {});
  try {
    await commit(other, { ts: 1, documents: [put("doc", "v1")], indexes: [] });
    // The registration's statement is slow between reading the clock and committing (a busy
    // server): a trigger sleeps once the row is about to be inserted.
    await pool.query(`CREATE FUNCTION ${s}.slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$;
      CREATE TRIGGER slow_insert BEFORE INSERT ON ${s}.snapshot_floors FOR EACH ROW WHEN (NEW.instance = 'slow-node') EXECUTE FUNCTION ${s}.slow_insert()`);
    const registering = floors.register();
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Meanwhile another node commits, learns of its commit at once and prunes at it. Without
    // the registration's lock on the clock the commit landed, the prune did not see the row
    // (not committed yet) and removed v1, which the registered floor (1) reads.
    await commit(other, { ts: 2, documents: [put("doc", "v2")], indexes: [] }, 1);
    await other.pruneHistory(2);
    await registering;
    const { rows } = await pool.query<{ floor: string }>(`SELECT floor FROM ${s}.snapshot_floors WHERE instance = 'slow-node'`);
    const floor = Number(rows[0]!.floor);
    expect((await other.getDocument("doc", floor))?.body).toBe(floor === 1 ? "v1" : "v2");
  } finally {
    await floors.close();
    await pool.end();
    await target.storage.close();
    await target.drop();
  }
});

/** A connection limit reached while a node runs (its pool growing) is worded as at open. */
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { put, toCommit } from "../conformance/context.js";
import type { CommitLogView } from "../types.js";
import { openPostgresStorage } from "./postgresStorage.js";
import { quoteIdentifier } from "./schema.js";
import { dropSchema, freshSchemaName, testDatabaseUrl } from "./testDatabase.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const next = (id: string) => (view: CommitLogView) => [toCommit({ ts: view.latest + 1, id, documents: [put("doc", id)], indexes: [] })];

describe("PostgreSQL storage when the pool may not grow", () => {
  it("reads, commits and commit lookups refused a new connection (SQLSTATE 53300) say which limit to raise, the driver's error as cause", async () => {
    const url = await testDatabaseUrl();
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    cleanups.push(() => admin.end().catch(() => {}));
    const role = `walkin_pgrun_${process.pid}`;
    await admin.query(`DROP ROLE IF EXISTS ${quoteIdentifier(role)}`);
    // Not a superuser: superusers are exempt from a role's connection limit. CREATE on the
    // database lets it create its schema and tables.
    await admin.query(`CREATE ROLE ${quoteIdentifier(role)} LOGIN`);
    const database = decodeURIComponent(new URL(url).pathname.slice(1));
    await admin.query(`GRANT CREATE ON DATABASE ${quoteIdentifier(database)} TO ${quoteIdentifier(role)}`);
    cleanups.push(async () => {
      await admin.query(`REVOKE ALL ON DATABASE ${quoteIdentifier(database)} FROM ${quoteIdentifier(role)}`);
      await admin.query(`DROP ROLE IF EXISTS ${quoteIdentifier(role)}`);
    });
    const limited = new URL(url);
    limited.username = role;
    const schema = freshSchemaName();
    cleanups.push(() => dropSchema(url, schema));
    const storage = await openPostgresStorage({ url: limited.toString(), schema, poolSize: 4, onError: () => {} });
    cleanups.push(() => storage.close());
    await storage.commitBatch(0, next("before"));

    // The connections already open stay; any new one is refused, as at max_connections.
    await admin.query(`ALTER ROLE ${quoteIdentifier(role)} CONNECTION LIMIT 0`);
    // Every connection the pool has is taken (a busy one once it comes back), so the next call
    // needs a new one: the pool is below its poolSize, so it opens one rather than waiting.
    const held: pg.PoolClient[] = [];
    cleanups.push(async () => held.forEach((client) => client.release()));
    while (held.length < storage.pool.totalCount) {
      if (storage.pool.idleCount > 0) held.push(await storage.pool.connect());
      else await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(held.length).toBeLessThan(4);

    const refusals = [
      await storage.latestTimestamp().then(() => null, (e: Error) => e),
      await storage.commitBatch(1, next("after")).then(() => null, (e: Error) => e),
      await storage.findCommits(["before"]).then(() => null, (e: Error) => e),
    ];
    for (const error of refusals) {
      expect(error?.message).toMatch(new RegExp(`^Walk-in storage postgres:.*too many connections for role "${role}".*ALTER ROLE "${role}" CONNECTION LIMIT n.*poolSize`));
      expect((error?.cause as { code?: string } | undefined)?.code).toBe("53300");
    }
  });
});

/** Creating and migrating the tables: nodes starting together, newer layouts, and URLs via openStorage. */
import { describe, expect, it } from "vitest";
import { openStorage } from "../url.js";
import { PostgresStorage, openPostgresStorage } from "./postgresStorage.js";
import { quoteIdentifier, SCHEMA_VERSION } from "./schema.js";
import { dropSchema, freshSchemaName, testDatabaseUrl } from "./testDatabase.js";

describe("PostgreSQL schema setup", () => {
  it("several nodes opening a new schema at once: one creates it, all open it, none fails", async () => {
    const url = await testDatabaseUrl();
    const schema = freshSchemaName();
    try {
      const nodes = await Promise.all([1, 2, 3, 4].map(() => openPostgresStorage({ url, schema, poolSize: 2 })));
      await nodes[0]!.commitBatch(0, (view) => [{ ts: view.latest + 1, id: "c1", documents: [], indexes: [], log: new Uint8Array() }]);
      for (const node of nodes) expect(await node.latestTimestamp()).toBe(1);
      const versions = await nodes[0]!.pool.query(`SELECT version FROM ${quoteIdentifier(schema)}.walkin_schema_version`);
      expect(versions.rows).toEqual([{ version: SCHEMA_VERSION }]);
      await Promise.all(nodes.map((node) => node.close()));
    } finally {
      await dropSchema(url, schema);
    }
  });

  it("refuses a schema written by a newer version of Walk-in, naming the fix", async () => {
    const url = await testDatabaseUrl();
    const schema = freshSchemaName();
    try {
      const storage = await openPostgresStorage({ url, schema });
      await storage.pool.query(`UPDATE ${quoteIdentifier(schema)}.walkin_schema_version SET version = 99`);
      await storage.close();
      await expect(openPostgresStorage({ url, schema })).rejects.toThrow(/Walk-in schema version 99.*Upgrade Walk-in/);
    } finally {
      await dropSchema(url, schema);
    }
  });

  it("migrates a schema from before receipts (version 2): its data stays, receipts work", async () => {
    const url = await testDatabaseUrl();
    const schema = freshSchemaName();
    const s = quoteIdentifier(schema);
    try {
      const storage = await openPostgresStorage({ url, schema });
      await storage.commitBatch(0, (view) => [{ ts: view.latest + 1, id: "c1", documents: [{ id: "a", table: "t", body: "a1" }], indexes: [], log: new Uint8Array() }]);
      // Back to version 2 as that Walk-in left it: no receipts table.
      await storage.pool.query(`DROP TABLE ${s}.receipts; UPDATE ${s}.walkin_schema_version SET version = 2`);
      await storage.close();
      const migrated = await openPostgresStorage({ url, schema });
      expect((await migrated.pool.query(`SELECT version FROM ${s}.walkin_schema_version`)).rows).toEqual([{ version: SCHEMA_VERSION }]);
      expect((await migrated.getDocument("a", 1))?.body).toBe("a1");
      await migrated.commitBatch(1, (view) => [{ ts: view.latest + 1, id: "c2", documents: [], indexes: [], log: new Uint8Array(), receipts: [{ key: "r", body: "b" }] }]);
      expect(await migrated.getReceipt("r")).toEqual({ ts: 2, body: "b" });
      await migrated.close();
    } finally {
      await dropSchema(url, schema);
    }
  });

  it("openStorage opens a postgres:// URL (tables in the public schema)", async () => {
    const url = await testDatabaseUrl();
    const storage = await openStorage(url);
    try {
      expect(storage).toBeInstanceOf(PostgresStorage);
      expect(storage.name).toBe(`postgres:${url}`);
      expect(await storage.latestTimestamp()).toBe(0);
    } finally {
      await storage.close();
    }
  });
});

/**
 * Every scan shape must stream from an index: cost proportional to the entries returned, never
 * to the table. Checked on the plans PostgreSQL picks for a table big enough that a sequential
 * scan would be tempting, both for the first runs of a prepared statement (custom plans, with
 * the parameters known) and for later ones (the generic plan PostgreSQL may switch to).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commitAll } from "../conformance/context.js";
import type { PostgresStorage } from "./postgresStorage.js";
import { scanSql } from "./scan.js";
import { quoteIdentifier } from "./schema.js";
import { openTestSchema } from "./testDatabase.js";

const key = (...bytes: number[]) => Uint8Array.from(bytes);

describe("PostgreSQL scan plans", () => {
  let storage: PostgresStorage;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    ({ storage, drop } = await openTestSchema());
    // 4,000 documents in two versions each; two indexes of 4,000 keys, one of them rewritten:
    // 20,000 index entry versions in all.
    const first = { ts: 1, documents: [] as { id: string; table: string; body: string }[], indexes: [] as { indexId: string; key: Uint8Array; docId: string | null }[] };
    const second = { ts: 2, documents: [] as typeof first.documents, indexes: [] as typeof first.indexes };
    for (let n = 0; n < 4000; n++) {
      const id = `doc${n}`;
      first.documents.push({ id, table: "things", body: `{"n":${n}}` });
      second.documents.push({ id, table: "things", body: `{"n":${n},"v":2}` });
      first.indexes.push({ indexId: "byN", key: key(n >> 8, n & 0xff), docId: id });
      first.indexes.push({ indexId: "byTable", key: key(1, n >> 8, n & 0xff), docId: id });
      second.indexes.push({ indexId: "byN", key: key(n >> 8, n & 0xff), docId: null });
      second.indexes.push({ indexId: "byN", key: key(0x40 + (n >> 8), n & 0xff), docId: id });
    }
    await commitAll(storage, [first, second]);
    await storage.pool.query(`ANALYZE ${quoteIdentifier(storage.schema)}.index_entries, ${quoteIdentifier(storage.schema)}.documents`);
  }, 120_000);

  afterAll(async () => {
    await storage?.close();
    await drop?.();
  });

  for (const mode of ["force_custom_plan", "force_generic_plan"] as const) {
    it(`serves every scan shape from the indexes, without a sequential scan or a sort (${mode})`, async () => {
      const client = await storage.pool.connect();
      try {
        await client.query(`SET plan_cache_mode = ${mode}`);
        // The statements of scanVersions (withBodies false) too: the same plan shape.
        const shapes = (["asc", "desc"] as const).flatMap((order) => [true, false].flatMap((bounded) => [true, false].map((withBodies) => ({ order, bounded, withBodies }))));
        for (const { order, bounded, withBodies } of shapes) {
          const sql = scanSql(quoteIdentifier(storage.schema), order, bounded, withBodies);
          const values: unknown[] = ["byN", Buffer.from([0x01]), 2, 10];
          if (bounded) values.push(Buffer.from([0x4e]));
          await client.query({ name: `plan_${order}_${bounded}_${withBodies}`, text: sql, values });
          const plan = (await client.query({ text: `EXPLAIN ${sql}`, values })).rows.map((row: { "QUERY PLAN": string }) => row["QUERY PLAN"]).join("\n");
          const where = `${order}, ${bounded ? "bounded" : "open"}, ${withBodies ? "with" : "without"} bodies:\n${plan}`;
          expect(plan, where).not.toMatch(/Seq Scan|Sort|Bitmap/);
          expect(plan, where).toMatch(order === "asc" ? /Index (Only )?Scan using index_entries_newest_first on index_entries/ : /Index (Only )?Scan Backward using index_entries_pkey on index_entries/);
          expect(plan, where).toMatch(/Index Scan (Backward )?using documents_pkey on documents/);
          expect(plan, where).toMatch(/^Limit/);
        }
      } finally {
        await client.query("RESET plan_cache_mode");
        client.release();
      }
    });
  }

  it("answers scans on the big table correctly at both snapshots", async () => {
    const after = (readTs: number, order: "asc" | "desc") =>
      storage.scan({ indexId: "byN", range: { lower: { key: key(0x0f, 0x9d), inclusive: false } }, order, readTs, limit: 3 });
    const plain = (entries: Awaited<ReturnType<typeof after>>) => entries.map((e) => [Array.from(e.key), e.doc.id, e.doc.ts]);
    expect(plain(await after(1, "asc"))).toEqual([[[0x0f, 0x9e], "doc3998", 1], [[0x0f, 0x9f], "doc3999", 1]]);
    expect(plain(await after(2, "asc"))).toEqual([[[0x40, 0], "doc0", 2], [[0x40, 1], "doc1", 2], [[0x40, 2], "doc2", 2]]);
    expect(plain(await after(2, "desc"))).toEqual([[[0x4f, 0x9f], "doc3999", 2], [[0x4f, 0x9e], "doc3998", 2], [[0x4f, 0x9d], "doc3997", 2]]);
  });
});

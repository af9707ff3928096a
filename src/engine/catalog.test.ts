/**
 * Index IDs (catalog.ts, "Index IDs"): an app index's ID names its definition, a database
 * from before that scheme keeps its IDs, and system and built-in indexes keep plain IDs.
 */
import { expect, it } from "vitest";
import { defineSchema, defineTable } from "../server/index.js";
import type { SchemaDefinition } from "../server/schema.js";
import { v } from "../values/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Catalog, indexDisplayName } from "./catalog.js";

const onColor = defineSchema({ things: defineTable({ color: v.string(), size: v.number() }).index("by_color", ["color"]) });
const onColorAndSize = defineSchema({ things: defineTable({ color: v.string(), size: v.number() }).index("by_color", ["color", "size"]) });
const systemTables = { _jobs: defineTable({ at: v.number() }).index("by_at", ["at"]) };
const colorFields = ["color", "_creationTime", "_id"];

async function catalogOf(schema: SchemaDefinition<any>, registry?: object) {
  const storage = await openSqliteStorage({ filename: ":memory:" });
  if (registry) await storage.setMeta("catalog", JSON.stringify(registry));
  return Catalog.open(storage, schema, systemTables);
}

it("gives an app index an ID of its definition, and another definition of one name another ID", async () => {
  const first = await catalogOf(onColor);
  const second = await catalogOf(onColorAndSize);
  const a = first.catalog.lookup("things")!.indexes.get("by_color")!;
  const b = second.catalog.lookup("things")!.indexes.get("by_color")!;
  expect(a.id).toMatch(/^things\.by_color@[0-9a-f]{12}$/);
  expect(b.id).toMatch(/^things\.by_color@[0-9a-f]{12}$/);
  expect(a.id).not.toBe(b.id);
  expect(indexDisplayName(a.id)).toBe("things.by_color");
  // The same definition in another database gets the same ID.
  expect((await catalogOf(onColor)).catalog.lookup("things")!.indexes.get("by_color")!.id).toBe(a.id);
  expect(first.staleIndexes.map((index) => index.id)).toContain(a.id);
});

it("keeps built-in and system indexes under plain IDs", async () => {
  const { catalog } = await catalogOf(onColor);
  expect(catalog.lookup("things")!.indexes.get("by_id")!.id).toBe("things.by_id");
  expect(catalog.lookup("things")!.indexes.get("by_creation_time")!.id).toBe("things.by_creation_time");
  expect(catalog.lookup("_jobs", { system: true })!.indexes.get("by_at")!.id).toBe("_jobs.by_at");
});

it("keeps a database's index from before the scheme under its plain ID while its fields are unchanged, and builds nothing", async () => {
  const registry = { tables: { things: 1, _jobs: 2 }, indexes: { "things.by_color": colorFields } };
  const kept = await catalogOf(onColor, registry);
  const index = kept.catalog.lookup("things")!.indexes.get("by_color")!;
  expect(index.id).toBe("things.by_color");
  expect(kept.staleIndexes.map((i) => i.id)).not.toContain("things.by_color");
  expect(kept.droppedIndexes).not.toContain("things.by_color");

  // Its fields changed: a new ID, built as a new index, and the plain one is no longer declared.
  const changed = await catalogOf(onColorAndSize, registry);
  const redefined = changed.catalog.lookup("things")!.indexes.get("by_color")!;
  expect(redefined.id).toMatch(/^things\.by_color@/);
  expect(changed.staleIndexes.map((i) => i.id)).toContain(redefined.id);
  expect(changed.droppedIndexes).toContain("things.by_color");
});

it("prefers an ID built for the definition over a plain one the registry also lists", async () => {
  const versioned = (await catalogOf(onColor)).catalog.lookup("things")!.indexes.get("by_color")!.id;
  const registry = { tables: { things: 1, _jobs: 2 }, indexes: { "things.by_color": colorFields, [versioned]: colorFields } };
  const { catalog, staleIndexes } = await catalogOf(onColor, registry);
  expect(catalog.lookup("things")!.indexes.get("by_color")!.id).toBe(versioned);
  expect(staleIndexes.map((i) => i.id)).not.toContain(versioned);
});

import { describe, expect, it } from "vitest";
import { isWalkinError, v } from "../values/index.js";
import { defineSchema, defineTable, hasFieldPath, TableDefinition } from "./schema.js";

/** The MISUSE error `define` throws; fails the test if it throws nothing or something else. */
function misuse(define: () => unknown): string {
  try {
    define();
  } catch (e) {
    expect(isWalkinError(e)).toBe(true);
    expect((e as { code: string }).code).toBe("MISUSE");
    return (e as Error).message;
  }
  throw new Error("expected a MISUSE error");
}

const people = () => defineTable({ name: v.string(), address: v.optional(v.object({ city: v.string() })) });

describe("defineTable().index()", () => {
  it("records indexes in order, without mutating the table it was called on", () => {
    const base = people();
    const indexed = base.index("by_name", ["name"]).index("by_city_name", ["address.city", "name"]);
    expect(indexed.indexes).toEqual([
      { name: "by_name", fields: ["name"] },
      { name: "by_city_name", fields: ["address.city", "name"] },
    ]);
    expect(base.indexes).toEqual([]);
    expect(indexed).toBeInstanceOf(TableDefinition);
  });

  it("accepts nested field paths, also inside unions", () => {
    const table = defineTable(
      v.union(
        v.object({ kind: v.literal("a"), address: v.object({ city: v.string(), geo: v.object({ lat: v.number() }) }) }),
        v.object({ kind: v.literal("b"), score: v.number() }),
      ),
    );
    expect(table.index("by_city", ["address.city"]).indexes).toHaveLength(1);
    expect(table.index("by_lat", ["address.geo.lat"]).indexes).toHaveLength(1);
    expect(table.index("by_score", ["score"]).indexes).toHaveLength(1);
    expect(defineTable(v.any()).index("by_anything", ["any.path"]).indexes).toHaveLength(1);
  });

  it("rejects a field the table does not declare, saying where to add it", () => {
    const message = misuse(() => people().index("by_age", ["age" as never]));
    expect(message).toContain('"age"');
    expect(message).toContain("by_age");
    expect(message).toContain("defineTable");
  });

  it("rejects a nested path the table does not declare", () => {
    expect(misuse(() => people().index("by_zip", ["address.zip" as never]))).toContain('"address.zip"');
    expect(misuse(() => people().index("by_deep", ["name.first" as never]))).toContain('"name.first"');
  });

  it("rejects the built-in index names", () => {
    for (const name of ["by_id", "by_creation_time"]) {
      const message = misuse(() => people().index(name, ["name"]));
      expect(message).toContain(`"${name}" is built in`);
      expect(message).toContain("Pick another name");
    }
  });

  it("rejects an index name used twice on a table", () => {
    const message = misuse(() => people().index("by_name", ["name"]).index("by_name", ["address"]));
    expect(message).toContain("declared twice");
    expect(message).toContain("unique");
  });

  it("rejects an empty field list, showing the form to use", () => {
    const message = misuse(() => people().index("by_nothing", [] as never));
    expect(message).toContain("has no fields");
    expect(message).toContain('.index("by_nothing", ["field"])');
    expect(misuse(() => people().index("by_bad", "name" as never))).toContain("has no fields");
  });

  it("rejects system fields, which every index already ends with", () => {
    for (const field of ["_creationTime", "_id"]) {
      const message = misuse(() => people().index("by_system", ["name", field] as never));
      expect(message).toContain(`"${field}" is added to every index automatically`);
      expect(message).toContain("remove it");
    }
  });

  it("rejects a field listed twice", () => {
    expect(misuse(() => people().index("by_twice", ["name", "name"]))).toContain("lists a field twice");
  });

  it("rejects malformed index names", () => {
    for (const name of ["", "1st", "has space", "dash-ed", "_hidden", "x".repeat(65)]) {
      expect(misuse(() => people().index(name, ["name"]))).toContain("index names must start with a letter");
    }
  });
});

describe("defineTable()", () => {
  it("rejects what is not an object of validators or an object validator", () => {
    expect(misuse(() => defineTable(null as never))).toContain("defineTable({ name: v.string() })");
    expect(misuse(() => defineTable("users" as never))).toContain("defineTable takes an object");
    expect(misuse(() => defineTable(v.string() as never))).toContain("not v.string()");
  });

  it("accepts fields, an object validator, a union of objects and v.any()", () => {
    expect(defineTable({ a: v.string() }).validator.kind).toBe("object");
    expect(defineTable(v.object({ a: v.string() })).validator.kind).toBe("object");
    expect(defineTable(v.union(v.object({ a: v.string() }), v.object({ b: v.number() }))).validator.kind).toBe("union");
    expect(defineTable(v.any()).validator.kind).toBe("any");
  });
});

describe("defineSchema()", () => {
  it("keeps the tables and the validation option", () => {
    const users = people();
    const schema = defineSchema({ users });
    expect(schema.tables.users).toBe(users);
    expect(schema.schemaValidation).toBe(true);
    expect(defineSchema({ users }, { schemaValidation: false }).schemaValidation).toBe(false);
  });

  it("rejects table names that are not identifiers", () => {
    for (const name of ["", "9lives", "with space", "dash-ed", "dot.ted", "x".repeat(65)]) {
      const message = misuse(() => defineSchema({ [name]: people() }));
      expect(message).toContain(`table "${name}"`);
      expect(message).toContain("must start with a letter");
    }
  });

  it("rejects table names starting with _, which are for system tables", () => {
    const message = misuse(() => defineSchema({ _users: people() }));
    expect(message).toContain('table "_users"');
    expect(message).toContain("reserved for system tables");
  });

  it("rejects a value that is not a table definition, saying to wrap it", () => {
    const fields = misuse(() => defineSchema({ users: { name: v.string() } as never }));
    expect(fields).toContain('table "users" is not a table definition');
    expect(fields).toContain("defineTable({...})");
    expect(misuse(() => defineSchema({ users: v.object({ name: v.string() }) as never }))).toContain("defineTable");
    expect(misuse(() => defineSchema({ users: null as never }))).toContain("not a table definition");
  });

  it("rejects what is not an object of tables", () => {
    expect(misuse(() => defineSchema(null as never))).toContain("defineSchema takes an object");
  });
});

describe("Convex's search and vector indexes", () => {
  it("takes a search index (search.test.ts tests it) and a vector index (vectorSearch.test.ts tests it)", () => {
    const table = defineTable({ body: v.string(), e: v.array(v.float64()), genre: v.string() });
    expect(table.searchIndex("search_body", { searchField: "body" }).indexes).toEqual([
      { name: "search_body", fields: ["body"], search: { searchField: "body", filterFields: [] } },
    ]);
    expect(table.vectorIndex("by_embedding", { vectorField: "e", dimensions: 3, filterFields: ["genre"] }).indexes).toEqual([
      { name: "by_embedding", fields: ["e", "genre"], vector: { vectorField: "e", dimensions: 3, filterFields: ["genre"] } },
    ]);
  });

  it("refuses a vector index it could never fill, saying what to change", () => {
    const table = defineTable({ body: v.string(), e: v.array(v.float64()), maybe: v.optional(v.union(v.null(), v.array(v.number()))) });
    expect(misuse(() => table.vectorIndex("by_e", { vectorField: "e", dimensions: 1 }))).toMatch(/dimensions must be a whole number from 2 to 4096.*got 1/);
    expect(misuse(() => table.vectorIndex("by_e", { vectorField: "e", dimensions: 4097 }))).toMatch(/from 2 to 4096/);
    expect(misuse(() => table.vectorIndex("by_e", { vectorField: "e", dimensions: 1.5 }))).toMatch(/whole number/);
    expect(misuse(() => table.vectorIndex("by_e", { vectorField: "body", dimensions: 3 }))).toMatch(/"body" cannot hold an array.*v\.array\(v\.float64\(\)\)/);
    expect(misuse(() => table.vectorIndex("by_e", { vectorField: "nope" as "e", dimensions: 3 }))).toMatch(/names "nope", which the table's validator does not declare/);
    expect(misuse(() => table.vectorIndex("by_e", { vectorField: "e", dimensions: 3, filterFields: ["e"] }))).toMatch(/lists a field twice/);
    expect(misuse(() => table.vectorIndex("by_e", { vectorField: "_id" as "e", dimensions: 3 }))).toMatch(/system field "_id"/);
    expect(misuse(() => table.index("by_e", ["e"]).vectorIndex("by_e", { vectorField: "e", dimensions: 3 }))).toMatch(/declared twice/);
    expect(misuse(() => table.vectorIndex("by_e", { vectorField: "e", dimensions: 3 }).vectorIndex("by_e4", { vectorField: "e", dimensions: 4 })))
      .toMatch(/"e" is already indexed as vectors of 3 by "by_e"/);
    // Optional, and in a union with null, is a field that may hold a vector.
    expect(table.vectorIndex("by_maybe", { vectorField: "maybe", dimensions: 3 }).indexes).toHaveLength(1);
  });
});

describe("hasFieldPath()", () => {
  it("follows objects, unions and any; scalars have no sub-paths", () => {
    const validator = v.object({ a: v.object({ b: v.string() }), u: v.union(v.object({ c: v.number() }), v.null()), x: v.any() });
    expect(hasFieldPath(validator, "a")).toBe(true);
    expect(hasFieldPath(validator, "a.b")).toBe(true);
    expect(hasFieldPath(validator, "a.c")).toBe(false);
    expect(hasFieldPath(validator, "u.c")).toBe(true);
    expect(hasFieldPath(validator, "x.anything.at.all")).toBe(true);
    expect(hasFieldPath(validator, "a.b.c")).toBe(false);
    expect(hasFieldPath(validator, "missing")).toBe(false);
  });
});

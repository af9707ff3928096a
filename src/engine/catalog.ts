/**
 * The catalog: every table the engine knows (the app's schema plus system tables), each with
 * its durable table number (embedded in its IDs) and its indexes with the exact field lists
 * their keys are built from.
 *
 * The registry of table numbers and index definitions lives in storage metadata, so IDs stay
 * valid across restarts and an index whose definition changed is detected and rebuilt.
 *
 * Index IDs name a definition, not just a name. An index declared on an app table gets the ID
 * `${table}.${name}@${digest of its fields}`, so that changing its fields makes it a new index
 * with a new ID, never the old one with other keys. That matters wherever two versions of the
 * code run on one database at once (a rolling deploy across nodes, the two engines of a hot
 * reload, two processes on one SQLite file): with one ID for both definitions, each would read
 * the entries the other writes as keys of its own definition and serve wrong results,
 * silently. With two IDs, each version maintains its own index, and each notices that the
 * other's commits skip it (mixedCode.ts): the index is refused, never read wrong, until every
 * node runs one version and restarts. Step by step, when a node declares index `T.x`:
 *
 *  1. the registry lists `T.x@<digest>`: that is its ID (it was built under that ID before);
 *  2. else the registry lists the plain `T.x` with the same fields (as built, or in `plain`
 *     once it left the built list): a database from before this scheme, whose index is kept
 *     under its old ID (no rebuild on upgrade, and nodes of the old release, which use the
 *     plain ID, keep sharing it with nodes of this one);
 *  3. else `T.x@<digest>`, built at start as a new index.
 * The choice depends only on the definition and on what the registry says was built, so a
 * restart never moves a definition from one ID to another whose entries it did not write.
 * Built-in indexes (`by_id`, `by_creation_time`) and system tables' indexes keep plain IDs:
 * their definitions change only with a Walk-in release, which migrates them.
 */
import { createHash } from "node:crypto";
import { walkinError } from "../values/index.js";
import type { Validator } from "../values/index.js";
import type { SchemaDefinition, TableDefinition } from "../server/schema.js";
import type { Storage } from "../storage/types.js";
import { tableNumberOfId } from "./ids.js";
import { providedTableHint } from "./tableHints.js";
import { WORDS_VERSION, type SearchSpec } from "./search.js";
import type { VectorSpec } from "./vector.js";

export interface IndexInfo {
  /** Storage-level ID, stable across restarts: `${table}.${index}`, or with `@digest` (see "Index IDs" above). */
  id: string;
  name: string;
  /** Field paths the key is built from, system fields included; for a search index, its search field then its filter fields. */
  fields: string[];
  /**
   * Present on a full-text search index (search.ts): each document has one entry per distinct
   * word of its search field, not one key built from `fields`.
   */
  search?: SearchSpec;
  /**
   * Present on a vector index (vector.ts): each document with a vector has one entry for every
   * document and one per filter field, not one key built from `fields`.
   */
  vector?: VectorSpec;
}

/** An index read with `withIndex`: not a search or vector index, whose entries are of their own kinds. */
export function isPlainIndex(index: IndexInfo): boolean {
  return index.search === undefined && index.vector === undefined;
}

export interface TableInfo {
  name: string;
  number: number;
  /** Document validator; `null` when the app runs without a schema. */
  validator: Validator<any, any, any> | null;
  /**
   * Whether a write that `validator` refuses fails: false for the app's tables under
   * `defineSchema(..., { schemaValidation: false })`, which stores such documents as written
   * (as Convex does); system tables are always checked.
   */
  enforced: boolean;
  indexes: Map<string, IndexInfo>;
  /** System tables (`_scheduled_functions`, ...) are invisible to app code. */
  system: boolean;
  /** Whether a write must check its vectors (vector.ts, `checkVectorFields`): set on a table with a vector index. */
  hasVectorIndex?: true;
}

interface Registry {
  tables: Record<string, number>;
  /** Built indexes: ID → the fields their keys are built from. */
  indexes: Record<string, string[]>;
  /**
   * Indexes no longer declared whose entries are still stored: left at a start on a shared
   * database, reclaimed by a later start that finds the engine alone (reclaimIndexes.ts).
   * Absent in registries written before it existed.
   */
  retired?: string[];
  /**
   * Plain IDs of a database from before "Index IDs" that left `indexes` (retired, or marked
   * unbuilt), with their fields: still the ID of that definition (rule 2), so nodes running
   * unchanged code go on sharing it with their peers instead of moving to the digest ID.
   */
  plain?: Record<string, string[]>;
}

/** The metadata key the registry is stored under. */
export const REGISTRY_KEY = "catalog";

export class Catalog {
  private readonly byName = new Map<string, TableInfo>();
  private readonly byNumber = new Map<number, TableInfo>();

  private constructor(
    private readonly registry: Registry,
    private readonly storage: Storage,
    /** False when the app has no schema, or `strictTableNameTypes: false`: any table may be created on first insert. */
    readonly strict: boolean,
  ) {}

  /**
   * Loads the registry and registers the schema's tables and the system tables.
   * Returns the indexes that must be (re)built because they are new or changed.
   */
  static async open(
    storage: Storage,
    schema: SchemaDefinition<any> | null,
    systemTables: Record<string, TableDefinition<any, any>>,
  ): Promise<{ catalog: Catalog; staleIndexes: IndexInfo[]; droppedIndexes: string[] }> {
    const stored = await storage.getMeta(REGISTRY_KEY);
    const registry: Registry = stored ? JSON.parse(stored) : { tables: {}, indexes: {} };
    // strictTableNameTypes: false opens other tables as a schemaless app has them.
    const strict = schema !== null && schema.strictTableNameTypes !== false;
    const catalog = new Catalog(registry, storage, strict);
    const wanted = new Map<string, IndexInfo>();
    const define = (name: string, table: TableDefinition<any, any> | null, system: boolean) => {
      const enforced = system || schema?.schemaValidation !== false;
      const info = catalog.register(name, table?.validator ?? null, table?.indexes ?? [], system, enforced);
      for (const index of info.indexes.values()) wanted.set(index.id, index);
    };
    for (const [name, table] of Object.entries(systemTables)) define(name, table, true);
    if (schema) for (const [name, table] of Object.entries(schema.tables as Record<string, TableDefinition<any, any>>)) define(name, table, false);
    // Without a strict schema, tables seen before that it does not declare keep their numbers and
    // built-in indexes.
    if (!strict) for (const name of Object.keys(registry.tables)) if (!catalog.byName.has(name)) define(name, null, name.startsWith("_"));

    const staleIndexes = [...wanted.values()].filter(
      (index) => JSON.stringify(registry.indexes[index.id]) !== JSON.stringify(index.fields),
    );
    const droppedIndexes = Object.keys(registry.indexes).filter((id) => !wanted.has(id));
    return { catalog, staleIndexes, droppedIndexes };
  }

  private register(
    name: string,
    validator: Validator<any, any, any> | null,
    userIndexes: readonly DeclaredIndex[],
    system: boolean,
    enforced = true,
  ): TableInfo {
    let number = this.registry.tables[name];
    if (number === undefined) {
      number = Math.max(0, ...Object.values(this.registry.tables)) + 1;
      this.registry.tables[name] = number;
    }
    const idOf = system ? plainIndexId : (table: string, index: string, fields: string[]) => declaredIndexId(table, index, fields, this.registry);
    const indexes = tableIndexes(name, userIndexes, idOf);
    const info: TableInfo = { name, number, validator, enforced, indexes, system };
    if ([...indexes.values()].some((index) => index.vector !== undefined)) info.hasVectorIndex = true;
    this.byName.set(name, info);
    this.byNumber.set(number, info);
    return info;
  }

  /**
   * Records that these indexes are now complete and `dropped` no longer declared; persisted
   * with the table numbers. `keptEntries`: the dropped indexes' entries are still stored (a
   * shared database), so they are listed as retired until a start reclaims them.
   */
  async markIndexesBuilt(indexes: IndexInfo[], dropped: string[], { keptEntries = false } = {}): Promise<void> {
    // Applied to the stored registry as read now, not the one loaded at open: another node may
    // have marked an index unbuilt since (markIncomplete), and writing the loaded copy back
    // would undo that mark for good.
    const tables = { ...this.registry.tables };
    await this.updateStored((registry) => {
      for (const [name, number] of Object.entries(tables)) registry.tables[name] ??= number;
      const retired = new Set(registry.retired);
      for (const index of indexes) {
        registry.indexes[index.id] = index.fields;
        retired.delete(index.id); // declared again, and rebuilt over what was kept
      }
      for (const id of dropped) {
        keepPlain(registry, id);
        delete registry.indexes[id];
        if (keptEntries && !isBuiltInIndex(id)) retired.add(id);
      }
      if (retired.size > 0) registry.retired = [...retired];
      else delete registry.retired;
    });
  }

  /** Retired indexes (see `Registry.retired`) that this engine does not declare. */
  retiredIndexes(): string[] {
    const declared = new Set(this.tables().flatMap((table) => [...table.indexes.values()].map((index) => index.id)));
    return (this.registry.retired ?? []).filter((id) => !declared.has(id));
  }

  /**
   * Takes reclaimed indexes off the retired list (of the stored registry as read now: another
   * engine may have written it since this one loaded it).
   */
  async forgetRetired(ids: string[]): Promise<void> {
    await this.updateStored((registry) => {
      const left = (registry.retired ?? []).filter((id) => !ids.includes(id));
      if (left.length > 0) registry.retired = left;
      else delete registry.retired;
    });
  }

  private async persist(): Promise<void> {
    await this.storage.setMeta(REGISTRY_KEY, JSON.stringify(this.registry));
  }

  /**
   * Applies `change` to the stored registry as read now, and to this engine's copy, then
   * writes the stored one back: for changes that must not undo what another engine wrote
   * to the registry since this one loaded it.
   */
  private async updateStored(change: (registry: Registry) => void): Promise<void> {
    const stored = await this.storage.getMeta(REGISTRY_KEY);
    const registry: Registry = stored ? JSON.parse(stored) : this.registry;
    change(registry);
    if (registry !== this.registry) change(this.registry);
    await this.storage.setMeta(REGISTRY_KEY, JSON.stringify(registry));
  }

  /**
   * The table, or a clear error. `system` allows system tables. Without a schema, a table no
   * document was ever inserted into is `null` (it reads as empty).
   */
  lookup(name: string, { system = false } = {}): TableInfo | null {
    if (typeof name !== "string") throw walkinError("MISUSE", `Table names are strings; received ${typeof name}.`);
    const info = this.byName.get(name);
    if (info && (system || !info.system)) return info;
    if (info || name.startsWith("_")) {
      throw walkinError("MISUSE", `Table "${name}" is a system table; app code cannot read or write it directly.`);
    }
    if (!this.strict) return null;
    const known = [...this.byName.values()].filter((t) => !t.system).map((t) => t.name);
    throw walkinError(
      "MISUSE",
      `Unknown table "${name}". ${providedTableHint(name) ?? "Declare it in functions/schema.ts with defineTable, or fix the name"} ` +
        `(known tables: ${known.join(", ") || "none"}).`,
    );
  }

  /** Without a schema, inserting into a new table creates it (and its built-in indexes). */
  async ensureTable(name: string): Promise<TableInfo> {
    const existing = this.lookup(name);
    if (existing) return existing;
    if (!/^[a-zA-Z][a-zA-Z0-9_]{0,63}$/.test(name)) {
      throw walkinError("MISUSE", `"${name}" is not a valid table name: start with a letter, then letters, digits or _.`);
    }
    const info = this.register(name, null, [], false);
    for (const index of info.indexes.values()) this.registry.indexes[index.id] = index.fields;
    await this.persist();
    return info;
  }

  /**
   * A stand-in for a table that does not exist yet (schemaless apps only): reads of it are
   * empty, and its read set names the index IDs the real table will have, so a live query over
   * it is invalidated by the first insert.
   */
  phantom(name: string): TableInfo {
    return { name, number: -1, validator: null, enforced: true, system: false, indexes: tableIndexes(name, []) };
  }

  /** Whether `id` is a well-formed ID of table `tableName` (what `v.id(tableName)` checks). */
  isIdOfTable(tableName: string, id: string): boolean {
    const number = tableNumberOfId(id);
    return number !== null && this.byNumber.get(number)?.name === tableName;
  }

  tableOfNumber(number: number): TableInfo | undefined {
    return this.byNumber.get(number);
  }

  tables(): TableInfo[] {
    return [...this.byName.values()];
  }

  /**
   * Whether `indexId` is an index of a table this node has (or may create: no schema) that it
   * does not maintain: its writes to that table skip it (indexBuilds.ts). Built-in indexes
   * never are: every node writes them.
   */
  lacksIndex(indexId: string): boolean {
    const dot = indexId.lastIndexOf(".");
    if (dot === -1 || isBuiltInIndex(indexId)) return false;
    const table = this.byName.get(indexId.slice(0, dot));
    if (table === undefined) return !this.strict;
    for (const index of table.indexes.values()) if (index.id === indexId) return false;
    return true;
  }

  /** Indexes another node's commits left incomplete (see mixedCode.ts). */
  private readonly incomplete = new Set<string>();

  isIncomplete(indexId: string): boolean {
    return this.incomplete.size > 0 && this.incomplete.has(indexId);
  }

  incompleteIndexes(): string[] {
    return [...this.incomplete];
  }

  /** Marks an index incomplete here, and unbuilt in storage so that the next start rebuilds it. */
  async markIncomplete(indexId: string): Promise<void> {
    this.incomplete.add(indexId);
    await this.updateStored((registry) => {
      keepPlain(registry, indexId);
      delete registry.indexes[indexId];
    });
  }
}

type IndexIdOf = (table: string, index: string, fields: string[]) => string;

/** An index as a table definition declares it (schema.ts, `IndexDefinition`). */
type DeclaredIndex = { name: string; fields: string[]; search?: SearchSpec; vector?: VectorSpec };

/**
 * A table's indexes: the two built-in ones, then the declared ones with system fields appended.
 * A search or vector index keeps its fields as declared, and its ID is made from them with a
 * "search" or "vector" mark first, so that it never shares an ID with an index on the same fields.
 */
function tableIndexes(table: string, declared: readonly DeclaredIndex[], idOf: IndexIdOf = plainIndexId): Map<string, IndexInfo> {
  const indexes = new Map<string, IndexInfo>();
  const add = (name: string, fields: string[], id: string) => indexes.set(name, { id, name, fields });
  add("by_id", ["_id"], plainIndexId(table, "by_id"));
  add("by_creation_time", ["_creationTime", "_id"], plainIndexId(table, "by_creation_time"));
  for (const index of declared) {
    if (index.search !== undefined) {
      const { searchField, filterFields } = index.search;
      const fields = [searchField, ...filterFields];
      indexes.set(index.name, { id: searchIndexId(table, index.name, fields), name: index.name, fields, search: { searchField, filterFields: [...filterFields] } });
      continue;
    }
    if (index.vector !== undefined) {
      const { vectorField, dimensions, filterFields } = index.vector;
      const fields = [vectorField, ...filterFields];
      const vector = { vectorField, dimensions, filterFields: [...filterFields] };
      indexes.set(index.name, { id: vectorIndexId(table, index.name, dimensions, fields), name: index.name, fields, vector });
      continue;
    }
    const fields = [...index.fields, "_creationTime", "_id"];
    add(index.name, fields, idOf(table, index.name, fields));
  }
  return indexes;
}

/**
 * A search index's ID: always with a digest ("Index IDs" above; there is no plain ID of one
 * from before digests), of its fields after a "search" mark and the version of how texts are
 * split into words (search.ts, `WORDS_VERSION`), so that entries split another way are never
 * read as this way's.
 */
function searchIndexId(table: string, index: string, fields: string[]): string {
  return `${plainIndexId(table, index)}@${fieldsDigest(["search", `words ${WORDS_VERSION}`, ...fields])}`;
}

/**
 * A vector index's ID: with a digest of a "vector" mark, its dimensions and its fields, so that
 * it never shares an ID with another kind of index on the same fields, and a change of its
 * dimensions makes it a new index, built again (a vector of the old length has no entries in it).
 */
function vectorIndexId(table: string, index: string, dimensions: number, fields: string[]): string {
  return `${plainIndexId(table, index)}@${fieldsDigest(["vector", `dimensions ${dimensions}`, ...fields])}`;
}

/** `by_id` and `by_creation_time`: written with every document, never dropped (indexBuilder.ts). */
export function isBuiltInIndex(indexId: string): boolean {
  return indexId.endsWith(".by_id") || indexId.endsWith(".by_creation_time");
}

function plainIndexId(table: string, index: string): string {
  return `${table}.${index}`;
}

/** The ID of an app table's declared index, by the three steps of "Index IDs" above. */
function declaredIndexId(table: string, index: string, fields: string[], registry: Registry): string {
  const plain = plainIndexId(table, index);
  const versioned = `${plain}@${fieldsDigest(fields)}`;
  if (registry.indexes[versioned] !== undefined) return versioned;
  if (JSON.stringify(registry.indexes[plain] ?? registry.plain?.[plain]) === JSON.stringify(fields)) return plain;
  return versioned;
}

/** Remembers a plain app-index ID's fields as it leaves `indexes` (see `Registry.plain`). */
function keepPlain(registry: Registry, id: string): void {
  const fields = registry.indexes[id];
  if (fields === undefined || id.includes("@") || id.startsWith("_") || isBuiltInIndex(id)) return;
  (registry.plain ??= {})[id] = fields;
}

/** 12 hex digits of SHA-256 over the field list: two definitions of one index name never share an ID in practice. */
function fieldsDigest(fields: string[]): string {
  return createHash("sha256").update(JSON.stringify(fields)).digest("hex").slice(0, 12);
}

/** An index ID as people name the index: `table.index`, without the definition's digest. */
export function indexDisplayName(indexId: string): string {
  const at = indexId.indexOf("@");
  return at === -1 ? indexId : indexId.slice(0, at);
}

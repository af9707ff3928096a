/**
 * The Data screen's API: tables with counts, documents newest first with index and field
 * filters, one document by ID, and insert / replace / delete validated against the schema.
 *
 * Reads run at one snapshot with system access to app tables (never system tables: those
 * belong to the Scheduler screen). Writes run as system mutations through the engine's one
 * commit path, so they are validated by the same code as `ctx.db`, conflict-checked, and seen
 * by live queries like any app write; a refused write commits nothing.
 */
import { convertFromJson, convertToJson, walkinError, type JSONValue, type Value } from "../../values/index.js";
import type { Engine } from "../../engine/engine.js";
import type { TableInfo } from "../../engine/catalog.js";
import type { Doc } from "../../engine/documents.js";
import { tableNumberOfId } from "../../engine/ids.js";
import { encodeCursor, QueryImpl } from "../../engine/query.js";
import { compileFilter } from "../../engine/filter.js";
import { indexKeyOf } from "../../engine/documents.js";
import type { EngineSwitch } from "../../transport/engineSwitch.js";
import { badRequest, notFound, optionalString, stringField } from "./httpJson.js";
import { secretFields, touchesSecret, withoutSecrets } from "./secrets.js";
import { validatorData } from "./validatorData.js";

/** Counting stops here: a bigger table shows "100,000+". */
export const COUNT_LIMIT = 100_000;
const COUNT_BATCH = 1_000;
const MAX_PAGE = 200;

export interface TableSummary {
  name: string;
  count: number;
  /** The count stopped at COUNT_LIMIT. */
  countCapped: boolean;
  indexes: Array<{ name: string; fields: string[] }>;
  /** The document validator as data (`{ kind: "object", fields }`), or null without a schema. */
  validator: unknown;
  hiddenFields: string[];
}

/** App tables (system tables excluded), by name. */
export function appTables(engine: Engine): TableInfo[] {
  return engine.catalog
    .tables()
    .filter((table) => !table.system && !table.name.startsWith("_"))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function appTable(engine: Engine, name: unknown): TableInfo {
  const table = typeof name === "string" ? appTables(engine).find((t) => t.name === name) : undefined;
  if (!table) throw notFound(`There is no table "${String(name)}". Tables: ${appTables(engine).map((t) => t.name).join(", ") || "none yet"}.`);
  return table;
}

/** Declared fields of an index (without the `_creationTime`, `_id` every index ends with). */
export function declaredFields(fields: string[], name: string): string[] {
  return name === "by_id" || name === "by_creation_time" ? fields : fields.slice(0, -2);
}

/**
 * Counts a table's documents at the latest snapshot, straight from storage in batches (no
 * transaction: a count may read more than one transaction is allowed to).
 */
export async function countDocuments(engine: Engine, table: TableInfo): Promise<{ count: number; capped: boolean }> {
  const index = table.indexes.get("by_creation_time")!;
  const readTs = engine.latestTimestamp;
  const release = engine.pinSnapshot(readTs);
  try {
    let count = 0;
    let lower: { key: Uint8Array; inclusive: boolean } | undefined;
    for (;;) {
      const entries = await engine.storage.scan({ indexId: index.id, range: lower ? { lower } : {}, order: "asc", readTs, limit: COUNT_BATCH });
      count += entries.length;
      if (entries.length < COUNT_BATCH) return { count, capped: false };
      if (count >= COUNT_LIMIT) return { count, capped: true };
      lower = { key: entries[entries.length - 1]!.key, inclusive: false };
    }
  } finally {
    release();
  }
}

/** A written table is counted again at most this often (a busy table would otherwise be rescanned on every reload). */
const RECOUNT_MS = 2_000;

/**
 * Table counts, cached per table. A commit marks its tables stale. A stale count older than
 * RECOUNT_MS is redone when asked for; a younger one is answered as it is, and redone once
 * RECOUNT_MS have passed, after which `recounted` tells the pages to ask again. So a table the
 * app writes a hundred times a second costs one scan every two seconds while a page watches,
 * and the count shown is exact at most RECOUNT_MS after the last write.
 */
export class TableCounts {
  private readonly cache = new Map<string, { count: number; capped: boolean; at: number; stale: boolean }>();
  private readonly counting = new Map<string, Promise<{ count: number; capped: boolean }>>();
  private readonly deferred = new Map<string, NodeJS.Timeout>();
  private engine: Engine | null = null;

  /** `recountMs` and `now` are for tests. */
  constructor(
    private readonly recounted: (table: string) => void = () => {},
    private readonly options: { recountMs?: number; now?: () => number } = {},
  ) {}

  private get recountMs(): number {
    return this.options.recountMs ?? RECOUNT_MS;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  forget(tables: Iterable<string>): void {
    for (const table of tables) {
      const entry = this.cache.get(table);
      if (entry) entry.stale = true;
    }
  }

  private recount(engine: Engine, table: TableInfo): Promise<{ count: number; capped: boolean }> {
    let running = this.counting.get(table.name);
    if (!running) {
      running = countDocuments(engine, table)
        .then((counted) => {
          if (this.engine === engine) this.cache.set(table.name, { ...counted, at: this.now(), stale: false });
          return counted;
        })
        .finally(() => this.counting.delete(table.name));
      this.counting.set(table.name, running);
    }
    return running;
  }

  private async count(engine: Engine, table: TableInfo): Promise<{ count: number; capped: boolean }> {
    const cached = this.cache.get(table.name);
    if (cached && !cached.stale) return cached;
    const age = cached ? this.now() - cached.at : Infinity;
    if (!cached || age >= this.recountMs) return this.recount(engine, table);
    if (!this.deferred.has(table.name)) {
      const timer = setTimeout(() => {
        this.deferred.delete(table.name);
        if (this.engine !== engine) return;
        void this.recount(engine, table).then(() => this.recounted(table.name), () => {});
      }, this.recountMs - age);
      timer.unref?.();
      this.deferred.set(table.name, timer);
    }
    return cached;
  }

  /** Stops deferred recounts. */
  close(): void {
    for (const timer of this.deferred.values()) clearTimeout(timer);
    this.deferred.clear();
  }

  async summaries(engine: Engine): Promise<TableSummary[]> {
    if (engine !== this.engine) {
      this.cache.clear();
      this.engine = engine;
    }
    const summaries: TableSummary[] = [];
    for (const table of appTables(engine)) {
      const counted = await this.count(engine, table);
      summaries.push({
        name: table.name,
        count: counted.count,
        countCapped: counted.capped,
        indexes: [...table.indexes.values()].map((index) => ({ name: index.name, fields: declaredFields(index.fields, index.name) })),
        validator: validatorData(table.validator),
        hiddenFields: secretFields(table),
      });
    }
    return summaries;
  }
}

/** A document as the dashboard receives it: JSON, hidden fields cut, and which strings are IDs. */
export interface DocumentView {
  doc: Record<string, JSONValue>;
  /** Field path (`author`, `items.0.product`) → the table the ID there belongs to. */
  refs: Record<string, string>;
}

export function viewOf(engine: Engine, table: TableInfo, doc: Doc): DocumentView {
  const json = convertToJson(withoutSecrets(doc as Record<string, Value>, secretFields(table)) as Value) as Record<string, JSONValue>;
  const refs: Record<string, string> = {};
  const walk = (value: unknown, path: string) => {
    if (typeof value === "string") {
      const number = tableNumberOfId(value);
      const target = number === null ? undefined : engine.catalog.tableOfNumber(number);
      if (target && !target.system && path !== "_id") refs[path] = target.name;
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, path ? `${path}.${i}` : String(i)));
    } else if (typeof value === "object" && value !== null) {
      for (const [key, item] of Object.entries(value)) walk(item, path ? `${path}.${key}` : key);
    }
  };
  walk(json, "");
  return { doc: json, refs };
}

type FieldOp = "eq" | "neq" | "lt" | "lte" | "gt" | "gte";
const OPS: readonly FieldOp[] = ["eq", "neq", "lt", "lte", "gt", "gte"];

function parseValue(json: unknown, where: string): Value {
  try {
    return convertFromJson(json as JSONValue, where);
  } catch (error) {
    throw badRequest((error as Error).message);
  }
}

/** `POST /api/admin/documents/list`: one page, newest first. */
export async function listDocuments(engine: Engine, body: Record<string, unknown>) {
  const table = appTable(engine, body.table);
  const hidden = secretFields(table);
  const indexName = optionalString(body, "index") ?? "by_creation_time";
  const index = table.indexes.get(indexName);
  if (!index) throw badRequest(`Table "${table.name}" has no index "${indexName}". Its indexes: ${[...table.indexes.keys()].join(", ")}.`);
  const fields = declaredFields(index.fields, index.name);
  const values = body.indexValues === undefined || body.indexValues === null ? [] : body.indexValues;
  if (!Array.isArray(values) || values.length > fields.length) {
    throw badRequest(`"indexValues" must be an array of at most ${fields.length} values, one per field of ${indexName} (${fields.join(", ")}), in order.`);
  }
  values.forEach((_, i) => {
    if (touchesSecret(fields[i]!, hidden)) throw badRequest(`"${fields[i]}" is a hidden field; the dashboard does not filter on it.`);
  });
  const indexValues = values.map((json, i) => parseValue(json, `indexValues[${i}] (${fields[i]})`));
  const filters = parseFilters(body.filters, hidden);
  const numItems = body.numItems === undefined ? 25 : body.numItems;
  if (!Number.isInteger(numItems) || (numItems as number) < 1 || (numItems as number) > MAX_PAGE) throw badRequest(`"numItems" must be an integer from 1 to ${MAX_PAGE}.`);
  const cursor = optionalString(body, "cursor");
  const base = (txn: Parameters<Parameters<Engine["read"]>[0]>[0]) =>
    new QueryImpl(txn, table).withIndex(indexName, (q) => indexValues.reduce<any>((range, value, i) => range.eq(fields[i]!, value), q)).order("desc");
  if (filters.length === 0) {
    return engine.read(async (txn) => {
      const result = await base(txn).paginate({ numItems: numItems as number, cursor });
      return { page: result.page.map((doc) => viewOf(engine, table, doc)), isDone: result.isDone, continueCursor: result.continueCursor, scanned: result.page.length, partial: false };
    });
  }
  return scanFiltered(engine, table, index, base, filters, numItems as number, cursor);
}

/** Documents one filtered request looks at, at most (then it answers with what it found and a cursor). */
const MAX_SCANNED = 50_000;
const SCAN_CHUNK = 1_000;

/**
 * Field filters, in chunks of SCAN_CHUNK documents, each its own read: a filter that matches
 * little of a big table must neither exceed what one transaction may read nor hold a snapshot
 * for long. The cursor of a page that fills mid-chunk is the key of its last document, so the
 * next page starts right after it.
 */
async function scanFiltered(
  engine: Engine,
  table: TableInfo,
  index: { fields: string[]; name: string; id: string },
  base: (txn: any) => QueryImpl,
  filters: Array<{ field: string; op: FieldOp; value: Value }>,
  numItems: number,
  cursor: string | null,
) {
  const matches = compileFilter((q) => q.and(...filters.map(({ field, op, value }) => (q as any)[op](q.field(field), value))));
  const page: Doc[] = [];
  let scanned = 0;
  let next = cursor;
  let isDone = false;
  while (page.length < numItems && scanned < MAX_SCANNED) {
    const chunk = await engine.read((txn) => base(txn).paginate({ numItems: SCAN_CHUNK, cursor: next }));
    let filled = false;
    for (const doc of chunk.page) {
      scanned++;
      if (!matches(doc)) continue;
      page.push(doc);
      if (page.length === numItems) {
        next = encodeCursor(indexKeyOf(index, doc));
        filled = true;
        break;
      }
    }
    if (filled) break;
    next = chunk.continueCursor;
    if (chunk.isDone) {
      isDone = true;
      break;
    }
  }
  return {
    page: page.map((doc) => viewOf(engine, table, doc)),
    isDone,
    continueCursor: next ?? "",
    scanned,
    // The scan stopped before filling the page: "Older" goes on from where it stopped.
    partial: !isDone && page.length < numItems,
  };
}

function parseFilters(raw: unknown, hidden: readonly string[]): Array<{ field: string; op: FieldOp; value: Value }> {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.length > 10) throw badRequest('"filters" must be an array of at most 10 { field, op, value } objects.');
  return raw.map((item, i) => {
    const { field, op = "eq", value } = (item ?? {}) as { field?: unknown; op?: unknown; value?: unknown };
    if (typeof field !== "string" || field === "") throw badRequest(`filters[${i}].field must be a field name such as "author" or "profile.city".`);
    if (touchesSecret(field, hidden)) throw badRequest(`"${field}" is a hidden field; the dashboard does not filter on it.`);
    if (!OPS.includes(op as FieldOp)) throw badRequest(`filters[${i}].op must be one of ${OPS.join(", ")}.`);
    if (value === undefined) throw badRequest(`filters[${i}].value is missing; give a JSON value (a string needs quotes).`);
    return { field, op: op as FieldOp, value: parseValue(value, `filters[${i}].value`) };
  });
}

/** The app table an ID belongs to. */
export function tableOfId(engine: Engine, id: string): TableInfo {
  const number = tableNumberOfId(id);
  const table = number === null ? undefined : engine.catalog.tableOfNumber(number);
  if (!table || table.system) throw notFound(`"${id}" is not the ID of a document in an app table.`);
  return table;
}

/** `POST /api/admin/documents/get`. */
export async function getDocument(engine: Engine, body: Record<string, unknown>) {
  const id = stringField(body, "id");
  const table = tableOfId(engine, id);
  const doc = await engine.read((txn) => txn.get(id));
  if (!doc) throw notFound(`No document ${id} in "${table.name}" (it may have been deleted).`);
  return { table: table.name, ...viewOf(engine, table, doc) };
}

/** A document from the editor: JSON of its user fields (system fields, if present, must match). */
function userFields(json: unknown, existing: Doc | null): Record<string, Value> {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw badRequest('"document" must be a JSON object of the document\'s fields.');
  const value = parseValue(json, "document") as Record<string, Value>;
  for (const system of ["_id", "_creationTime"] as const) {
    if (!(system in value)) continue;
    if (!existing || value[system] !== existing[system]) {
      throw badRequest(`${system} is set by the database and cannot be ${existing ? "changed" : "chosen"}; remove it from the document.`);
    }
    delete value[system];
  }
  return value;
}

/** `POST /api/admin/documents/insert`. */
export async function insertDocument(engines: EngineSwitch, body: Record<string, unknown>) {
  return engines.mutate(async (engine) => {
    const table = appTable(engine, body.table);
    const value = userFields(body.document, null);
    const id = await engine.runSystemMutation((txn) => txn.insert(table, value));
    return { id };
  });
}

/** `POST /api/admin/documents/replace`: hidden fields keep their stored values. */
export async function replaceDocument(engines: EngineSwitch, body: Record<string, unknown>) {
  const id = stringField(body, "id");
  return engines.mutate(async (engine) => {
    const table = tableOfId(engine, id);
    const hidden = secretFields(table);
    await engine.runSystemMutation(async (txn) => {
      const existing = await txn.get(id);
      if (!existing) throw walkinError("NOT_FOUND", `No document ${id} in "${table.name}" (it may have been deleted).`);
      const value = userFields(body.document, existing);
      for (const field of hidden) {
        if (field in value) throw badRequest(`"${field}" is a hidden field and cannot be edited here.`);
        if (existing[field] !== undefined) value[field] = existing[field]!;
      }
      await txn.replace(id, value);
    });
    return { id };
  });
}

/** `POST /api/admin/documents/delete`. */
export async function deleteDocument(engines: EngineSwitch, body: Record<string, unknown>) {
  const id = stringField(body, "id");
  return engines.mutate(async (engine) => {
    const table = tableOfId(engine, id);
    await engine.runSystemMutation(async (txn) => {
      if (!(await txn.get(id))) throw walkinError("NOT_FOUND", `No document ${id} in "${table.name}" (it may have been deleted).`);
      await txn.delete(id);
    });
    return { id };
  });
}

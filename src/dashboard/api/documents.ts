/**
 * The Data screen's documents: newest first with index and field filters, one by ID, and
 * insert / replace / delete validated against the schema.
 *
 * Reads run at one snapshot with system access to app tables. Writes run as system mutations
 * through the engine's one commit path, so they are validated by the same code as `ctx.db`,
 * conflict-checked, and seen by live queries like any app write; a refused write commits
 * nothing.
 */
import { convertFromJson, convertToJson, walkinError, type JSONValue, type Value } from "../../values/index.js";
import type { Engine } from "../../engine/engine.js";
import { isPlainIndex, type TableInfo } from "../../engine/catalog.js";
import type { Doc } from "../../engine/documents.js";
import { documentSize, indexKeyOf } from "../../engine/documents.js";
import { tableNumberOfId } from "../../engine/ids.js";
import { encodeCursor, QueryImpl } from "../../engine/query.js";
import { compileFilter } from "../../engine/filter.js";
import type { EngineSwitch } from "../../transport/engineSwitch.js";
import { badRequest, notFound, optionalString, stringField } from "./httpJson.js";
import { secretFields, touchesSecret, withoutSecrets } from "./secrets.js";
import { appTable, declaredFields, tableOfId } from "./tables.js";

const MAX_PAGE = 200;
/**
 * Bytes of documents one page holds at most: 25 documents near the 1 MiB limit would be more
 * than one read may take (16 MiB), and the listing failed. A page that reaches it ends early,
 * with a cursor, as `paginate({ maximumBytesRead })` does.
 */
const PAGE_BYTES = 8 * 1024 * 1024;

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

/**
 * A filter's or an index value's JSON, for the field at `path` of `table`. A JSON number given
 * for an int64 field is the bigint it names: a caller sending `5` means 5n, and the float64 5
 * never equals 5n (int64 and float64 are different types to the database), so the filter
 * would match nothing. The same holds inside the value, wherever the schema puts an int64: an
 * object field, an array element, a record value (`{ "wins": 3 }` for a field declared
 * `v.object({ wins: v.int64() })`). A number that names no int64 exactly is refused: a
 * fraction, or one past 2^53 - 1, where a JSON number has already lost digits on the way (its
 * exact form is `{ "$integer": … }`). Where the field may also hold a float64, a number stays
 * as it is.
 */
function parseFieldValue(table: TableInfo, path: string, json: unknown, where: string): Value {
  return int64sWhereDeclared(parseValue(json, where), fieldValidators(table.validator, path.split(".")), path, where);
}

/** `value` with each number that sits where `validators` take an int64 and no float64 made the bigint it names (`parseFieldValue`). */
function int64sWhereDeclared(value: Value, validators: readonly FieldValidator[], path: string, where: string): Value {
  if (validators.length === 0) return value;
  if (typeof value === "number") return holdsInt64NotFloat64(validators) ? exactInt64(value, path, where) : value;
  if (typeof value !== "object" || value === null || value instanceof ArrayBuffer) return value;
  const leaves = validators.flatMap(unionMembers);
  if (Array.isArray(value)) {
    const elements = leaves.flatMap((v) => (v.kind === "array" && v.element ? [v.element] : []));
    return value.map((item, i) => int64sWhereDeclared(item, elements, `${path}.${i}`, where));
  }
  const converted: Record<string, Value> = {};
  for (const [key, item] of Object.entries(value)) {
    const inner = leaves.flatMap((v) => {
      if (v.kind === "object") return v.fields && Object.hasOwn(v.fields, key) ? [v.fields[key]!] : [];
      return v.kind === "record" ? [v.value as FieldValidator] : [];
    });
    if (item !== undefined) converted[key] = int64sWhereDeclared(item, inner, `${path}.${key}`, where);
  }
  return converted;
}

function exactInt64(json: number, path: string, where: string): bigint {
  if (Number.isSafeInteger(json)) return BigInt(json);
  const exact = 'give it as { "$integer": "<base64 of its 8 bytes, little-endian two\'s complement>" } (what convertToJson makes of a bigint)';
  if (!Number.isInteger(json)) throw badRequest(`${where}: "${path}" is an int64 field, which holds whole numbers; ${json} is not one.`);
  throw badRequest(`${where}: "${path}" is an int64 field and ${json} is past 2^53 - 1, where a JSON number may have lost digits: ${exact}.`);
}

type FieldValidator = { kind: string; fields?: Record<string, FieldValidator>; members?: readonly FieldValidator[]; element?: FieldValidator; value?: unknown };

/** A union's members, opened all the way down; any other validator as itself. */
function unionMembers(v: FieldValidator): FieldValidator[] {
  return v.kind === "union" ? (v.members ?? []).flatMap(unionMembers) : [v];
}

/** The validators the field at `path` may hold: several when a union (of objects) declares it; none without a schema. */
function fieldValidators(validator: FieldValidator | null, path: string[]): FieldValidator[] {
  if (!validator) return [];
  if (validator.kind === "union") return (validator.members ?? []).flatMap((member) => fieldValidators(member, path));
  if (path.length === 0) return [validator];
  if (validator.kind !== "object") return [];
  return fieldValidators(validator.fields?.[path[0]!] ?? null, path.slice(1));
}

/** Whether some of `validators` takes an int64 and none a float64 (`v.any()` takes both). */
function holdsInt64NotFloat64(validators: readonly FieldValidator[]): boolean {
  const leaves = validators.flatMap(unionMembers);
  const int64 = leaves.some((v) => v.kind === "int64" || (v.kind === "literal" && typeof v.value === "bigint"));
  const float64 = leaves.some((v) => v.kind === "float64" || v.kind === "any" || (v.kind === "literal" && typeof v.value === "number"));
  return int64 && !float64;
}

/** `POST /api/admin/documents/list`: one page, newest first. */
export async function listDocuments(engine: Engine, body: Record<string, unknown>) {
  const table = appTable(engine, body.table);
  const hidden = secretFields(table);
  const indexName = optionalString(body, "index") ?? "by_creation_time";
  const index = table.indexes.get(indexName);
  // A search index lists documents by relevance to words, and a vector index by nearness to a
  // vector, not in an order a page can follow.
  if (!index || !isPlainIndex(index)) {
    const names = [...table.indexes.values()].filter(isPlainIndex).map((i) => i.name);
    const kind = index ? ` (it is a ${index.search ? "search" : "vector"} index)` : "";
    throw badRequest(`Table "${table.name}" has no index "${indexName}" to list by${kind}. Its indexes: ${names.join(", ")}.`);
  }
  const fields = declaredFields(index.fields, index.name);
  const values = body.indexValues === undefined || body.indexValues === null ? [] : body.indexValues;
  if (!Array.isArray(values) || values.length > fields.length) {
    throw badRequest(`"indexValues" must be an array of at most ${fields.length} values, one per field of ${indexName} (${fields.join(", ")}), in order.`);
  }
  // Not only no values for a hidden field: no listing by an index on one at all. The order of
  // the page would tell something of the hidden values, and its cursor holds the last
  // document's index key, hidden field included.
  const secret = fields.find((field) => touchesSecret(field, hidden));
  if (secret !== undefined) throw badRequest(`Index "${indexName}" is on "${secret}", a hidden field; the dashboard does not list by it.`);
  const indexValues = values.map((json, i) => parseFieldValue(table, fields[i]!, json, `indexValues[${i}] (${fields[i]})`));
  const filters = parseFilters(table, body.filters, hidden);
  const numItems = body.numItems === undefined ? 25 : body.numItems;
  if (!Number.isInteger(numItems) || (numItems as number) < 1 || (numItems as number) > MAX_PAGE) throw badRequest(`"numItems" must be an integer from 1 to ${MAX_PAGE}.`);
  const cursor = optionalString(body, "cursor");
  const base = (txn: Parameters<Parameters<Engine["read"]>[0]>[0]) =>
    new QueryImpl(txn, table).withIndex(indexName, (q) => indexValues.reduce<any>((range, value, i) => range.eq(fields[i]!, value), q)).order("desc");
  if (filters.length === 0) {
    return engine.readDurable(async (txn) => {
      const result = await base(txn).paginate({ numItems: numItems as number, cursor, maximumBytesRead: PAGE_BYTES });
      const page = result.page.map((doc) => viewOf(engine, table, doc));
      return { page, isDone: result.isDone, continueCursor: result.continueCursor, scanned: result.page.length, partial: false };
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
  const matches = compileFilter((q) => q.and(...filters.map(({ field, op, value }) => q[op](q.field(field), value))));
  const page: Doc[] = [];
  let pageBytes = 0;
  let scanned = 0;
  let next = cursor;
  let isDone = false;
  let filled = false;
  while (scanned < MAX_SCANNED) {
    const chunk = await engine.readDurable((txn) => base(txn).paginate({ numItems: SCAN_CHUNK, cursor: next, maximumBytesRead: PAGE_BYTES }));
    for (const doc of chunk.page) {
      scanned++;
      if (!matches(doc)) continue;
      page.push(doc);
      pageBytes += documentSize(doc);
      if (page.length === numItems || pageBytes >= PAGE_BYTES) {
        next = encodeCursor(indexKeyOf(index, doc), index.id);
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
    partial: !isDone && !filled,
  };
}

function parseFilters(table: TableInfo, raw: unknown, hidden: readonly string[]): Array<{ field: string; op: FieldOp; value: Value }> {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.length > 10) throw badRequest('"filters" must be an array of at most 10 { field, op, value } objects.');
  return raw.map((item, i) => {
    const { field, op = "eq", value } = (item ?? {}) as { field?: unknown; op?: unknown; value?: unknown };
    if (typeof field !== "string" || field === "") throw badRequest(`filters[${i}].field must be a field name such as "author" or "profile.city".`);
    if (touchesSecret(field, hidden)) throw badRequest(`"${field}" is a hidden field; the dashboard does not filter on it.`);
    if (!OPS.includes(op as FieldOp)) throw badRequest(`filters[${i}].op must be one of ${OPS.join(", ")}.`);
    if (value === undefined) throw badRequest(`filters[${i}].value is missing; give a JSON value (a string needs quotes).`);
    return { field, op: op as FieldOp, value: parseFieldValue(table, field, value, `filters[${i}].value`) };
  });
}

/** `POST /api/admin/documents/get`. */
export async function getDocument(engine: Engine, body: Record<string, unknown>) {
  const id = stringField(body, "id");
  const table = tableOfId(engine, id);
  const doc = await engine.readDurable((txn) => txn.get(id));
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
    // Secrets (hashes, session IDs' digests) are written by the code that makes them: set from
    // here, a value would be one its reader does not expect, or a secret of the admin's choosing.
    for (const field of secretFields(table)) {
      if (value[field] !== undefined && value[field] !== null) {
        throw badRequest(`"${field}" is a hidden field and cannot be set here (only to null); insert such documents from a function.`);
      }
    }
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

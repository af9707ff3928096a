/**
 * `ctx.db` for queries (reader) and mutations (writer), over one transaction.
 * App code sees only app tables; `ctx.db.system` reads system tables (scheduled functions).
 */
import { walkinError } from "../values/index.js";
import type { Value } from "../values/index.js";
import type { Catalog } from "./catalog.js";
import { QueryImpl } from "./query.js";
import type { Transaction } from "./transaction.js";

/** Options objects made once, not per read. */
const APP_TABLES = { system: false };
const SYSTEM_TABLES = { system: true };

function createReader(txn: Transaction, catalog: Catalog, system: boolean) {
  const tables = system ? SYSTEM_TABLES : APP_TABLES;
  return {
    get: async (...args: unknown[]) => txn.get(idOf(txn, args, "get", system), tables),
    query: (table: string) => new QueryImpl(txn, catalog.lookup(table, tables) ?? catalog.phantom(table)),
    normalizeId: (table: string, id: string) => (typeof id === "string" && txn.isIdOfTable(table, id) ? id : null),
  };
}

/**
 * `ctx.db` of a query; `system: true` gives a reader of system tables (what `ctx.db.system` is).
 * One object and its closures per function run, nothing more: `ctx.db.system` is made on
 * first use (few runs read system tables), and this is on the path of every query.
 */
export function createDatabaseReader(txn: Transaction, catalog: Catalog, { system = false } = {}) {
  if (system) return createReader(txn, catalog, true);
  let systemReader: Reader | undefined;
  return {
    get: async (...args: unknown[]) => txn.get(idOf(txn, args, "get", false), APP_TABLES),
    query: (table: string) => new QueryImpl(txn, catalog.lookup(table, APP_TABLES) ?? catalog.phantom(table)),
    normalizeId: (table: string, id: string) => (typeof id === "string" && txn.isIdOfTable(table, id) ? id : null),
    get system(): Reader {
      return (systemReader ??= createReader(txn, catalog, true));
    },
  };
}

type Reader = ReturnType<typeof createReader>;

export function createDatabaseWriter(txn: Transaction, catalog: Catalog) {
  let systemReader: Reader | undefined;
  return {
    ...createReader(txn, catalog, false),
    get system(): Reader {
      return (systemReader ??= createReader(txn, catalog, true));
    },
    insert: async (table: string, value: Record<string, Value | undefined>) =>
      txn.insert(await catalog.ensureTable(table), value),
    patch: async (...args: unknown[]) => txn.patch(idOf(txn, args, "patch"), valueOf(args)),
    replace: async (...args: unknown[]) => txn.replace(idOf(txn, args, "replace"), valueOf(args)),
    delete: async (...args: unknown[]) => txn.delete(idOf(txn, args, "delete")),
  };
}

/**
 * `get(id)` / `get("users", id)`, `patch(id, value)` / `patch("users", id, value)`, and so on:
 * the table name may come first (Convex's current form). It names the table the ID must belong
 * to, so a mismatch is an error instead of reading or writing a document of another table.
 */
function idOf(txn: Transaction, args: unknown[], operation: string, system = false): string {
  const tableFirst = typeof args[0] === "string" && typeof args[1] === "string";
  const id = checkId(tableFirst ? args[1] : args[0], operation);
  if (tableFirst) {
    const table = args[0] as string;
    const actual = txn.tableOfId(id, { system }).name;
    if (actual !== table) {
      throw walkinError("INVALID_ID", `${operation}("${table}", id): this ID belongs to the table "${actual}", not "${table}". Pass the table the ID comes from.`);
    }
  }
  return id;
}

function valueOf(args: unknown[]): Record<string, Value | undefined> {
  return (typeof args[0] === "string" && typeof args[1] === "string" ? args[2] : args[1]) as Record<string, Value | undefined>;
}

function checkId(id: unknown, operation: string): string {
  if (typeof id !== "string") {
    throw walkinError("INVALID_ID", `${operation}() takes a document ID as its first argument; received ${typeof id}.`);
  }
  return id;
}

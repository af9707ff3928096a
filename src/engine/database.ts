/**
 * `ctx.db` for queries (reader) and mutations (writer), over one transaction.
 * App code sees only app tables; `ctx.db.system` reads system tables (scheduled functions).
 */
import { walkinError } from "../values/index.js";
import type { Value } from "../values/index.js";
import type { Catalog, TableInfo } from "./catalog.js";
import { QueryImpl } from "./query.js";
import type { Transaction } from "./transaction.js";

function createReader(txn: Transaction, catalog: Catalog, system: boolean) {
  const tableForRead = (name: string): TableInfo => catalog.lookup(name, { system }) ?? catalog.phantom(name);
  return {
    get: (id: string) => txn.get(id, { system }),
    query: (table: string) => new QueryImpl(txn, tableForRead(table)),
    normalizeId: (table: string, id: string) => (typeof id === "string" && txn.isIdOfTable(table, id) ? id : null),
  };
}

/** `ctx.db` of a query; `system: true` gives a reader of system tables (what `ctx.db.system` is). */
export function createDatabaseReader(txn: Transaction, catalog: Catalog, { system = false } = {}) {
  return system ? createReader(txn, catalog, true) : { ...createReader(txn, catalog, false), system: createReader(txn, catalog, true) };
}

export function createDatabaseWriter(txn: Transaction, catalog: Catalog) {
  const reader = createDatabaseReader(txn, catalog);
  return {
    ...reader,
    insert: async (table: string, value: Record<string, Value | undefined>) =>
      txn.insert(await catalog.ensureTable(table), value),
    patch: (id: string, value: Record<string, Value | undefined>) => txn.patch(checkId(id, "patch"), value),
    replace: (id: string, value: Record<string, Value | undefined>) => txn.replace(checkId(id, "replace"), value),
    delete: (id: string) => txn.delete(checkId(id, "delete")),
  };
}

function checkId(id: unknown, operation: string): string {
  if (typeof id !== "string") {
    throw walkinError("INVALID_ID", `${operation}() takes a document ID as its first argument; received ${typeof id}.`);
  }
  return id;
}

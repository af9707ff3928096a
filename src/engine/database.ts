/**
 * `ctx.db` for queries (reader) and mutations (writer), over one transaction.
 * App code sees only app tables; `ctx.db.system` reads system tables (scheduled functions).
 */
import { walkinError } from "../values/index.js";
import type { Value } from "../values/index.js";
import type { Catalog } from "./catalog.js";
import { QueryImpl } from "./query.js";
import { systemDocumentPresenter } from "./systemTables.js";
import type { Transaction } from "./transaction.js";

/** Options objects made once, not per read. */
const APP_TABLES = { system: false };
const SYSTEM_TABLES = { system: true };

/**
 * A reader of app tables, or of system tables (`ctx.db.system`). Its methods are own arrow
 * functions, so `const { get } = ctx.db` works as it would on a plain object. A `ctx.db` is
 * made for every function run, so it is a class instance: an object literal with a getter
 * (`system`) is built through V8's slow path, and was the costliest object of a query.
 */
class Reader {
  readonly #txn: Transaction;
  readonly #catalog: Catalog;
  readonly #system: boolean;

  constructor(txn: Transaction, catalog: Catalog, system: boolean) {
    this.#txn = txn;
    this.#catalog = catalog;
    this.#system = system;
  }

  readonly get = async (...args: unknown[]) => {
    const system = this.#system;
    const id = idOf(this.#txn, args, "get", system);
    const doc = await this.#txn.get(id, system ? SYSTEM_TABLES : APP_TABLES);
    const present = system && doc !== null ? systemDocumentPresenter(this.#txn.tableOfId(id, SYSTEM_TABLES).name) : undefined;
    return present && doc ? present(doc) : doc;
  };

  readonly query = (table: string) => {
    const catalog = this.#catalog;
    const query = new QueryImpl(this.#txn, catalog.lookup(table, this.#system ? SYSTEM_TABLES : APP_TABLES) ?? catalog.phantom(table));
    const present = this.#system ? systemDocumentPresenter(table) : undefined;
    return present ? query.presentedAs(present) : query;
  };

  readonly normalizeId = (table: string, id: string) => (typeof id === "string" && this.#txn.isIdOfTable(table, id) ? id : null);
}

/** `ctx.db` of a query: app tables, and `ctx.db.system`, made on first use (few runs read system tables). */
class AppReader extends Reader {
  readonly #txn: Transaction;
  readonly #catalog: Catalog;
  #systemReader: Reader | undefined;

  constructor(txn: Transaction, catalog: Catalog) {
    super(txn, catalog, false);
    this.#txn = txn;
    this.#catalog = catalog;
  }

  get system(): Reader {
    return (this.#systemReader ??= new Reader(this.#txn, this.#catalog, true));
  }
}

/**
 * The transaction behind a mutation's `ctx.db`, for Walk-in's own libraries (the auth cleanup
 * runs each user's deletion `withinBudget`); undefined for any other object.
 */
export function transactionOfDb(db: unknown): Transaction | undefined {
  return Writer.transactionOf(db);
}

/** `ctx.db` of a mutation. */
class Writer extends AppReader {
  readonly #txn: Transaction;
  readonly #catalog: Catalog;

  constructor(txn: Transaction, catalog: Catalog) {
    super(txn, catalog);
    this.#txn = txn;
    this.#catalog = catalog;
  }

  /** `transactionOfDb`: read through the private field (no registry entry per mutation). */
  static transactionOf(db: unknown): Transaction | undefined {
    return typeof db === "object" && db !== null && #txn in db ? db.#txn : undefined;
  }

  readonly insert = async (table: string, value: Record<string, Value | undefined>) =>
    this.#txn.insert(await this.#catalog.ensureTable(table), value);
  readonly patch = async (...args: unknown[]) => this.#txn.patch(idOf(this.#txn, args, "patch"), valueOf(args));
  readonly replace = async (...args: unknown[]) => this.#txn.replace(idOf(this.#txn, args, "replace"), valueOf(args));
  readonly delete = async (...args: unknown[]) => this.#txn.delete(idOf(this.#txn, args, "delete"));
}

/** `ctx.db` of a query; `system: true` gives a reader of system tables (what `ctx.db.system` is). */
export function createDatabaseReader(txn: Transaction, catalog: Catalog, { system = false } = {}): Reader | AppReader {
  return system ? new Reader(txn, catalog, true) : new AppReader(txn, catalog);
}

export function createDatabaseWriter(txn: Transaction, catalog: Catalog): Writer {
  return new Writer(txn, catalog);
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

/**
 * Row-level security (convex-helpers' `wrapDatabaseReader` and `wrapDatabaseWriter`): a
 * `ctx.db` that checks the app's rules on every document it reads or writes.
 *
 * ```ts
 * const rules = async (ctx: QueryCtx) => ({
 *   notes: {
 *     read: async (_, note) => note.public || note.owner === (await getAuthUserId(ctx)),
 *     modify: async (_, note) => note.owner === (await getAuthUserId(ctx)),
 *   },
 * }) satisfies Rules<QueryCtx, DataModel>;
 * const queryWithRLS = customQuery(query, customCtx(async (ctx) => ({ db: wrapDatabaseReader(ctx, ctx.db, await rules(ctx)) })));
 * ```
 *
 * - Reads: `get` answers null for a document the caller may not read; a query leaves such
 *   documents out (`take(n)` and `first()` read on until they have n allowed ones, or the end;
 *   a page of `paginate` may come back shorter, with the same cursor as without the rules).
 * - Writes: `insert` checks `insert` with the new fields; `patch`, `replace` and `delete`
 *   check `read` and then `modify` on the document as it is before the write.
 * - A table without a rule (or a rule left out) is allowed, unless `defaultPolicy: "deny"`.
 *
 * Rules run inside the function's transaction, as the app's own code: what they read is part of
 * its read set, so a live query re-runs when a document a rule looked at changes.
 */
import { walkinError } from "../values/index.js";
import type { DatabaseReader, DatabaseWriter } from "./database.js";
import { FilteredQuery } from "./filteredQuery.js";
import type { DocumentByName, GenericDataModel, TableNamesInDataModel, WithoutSystemFields } from "./dataModel.js";

/** One check: whether the caller may do it to `doc`. */
export type Rule<Ctx, D> = (ctx: Ctx, doc: D) => Promise<boolean>;

/** The rules of each table: `read`, `modify` (patch, replace, delete) and `insert`. */
export type Rules<Ctx, DM extends GenericDataModel> = {
  [T in TableNamesInDataModel<DM>]?: {
    read?: Rule<Ctx, DocumentByName<DM, T>>;
    modify?: Rule<Ctx, DocumentByName<DM, T>>;
    insert?: Rule<Ctx, WithoutSystemFields<DocumentByName<DM, T>>>;
  };
};

export interface RLSConfig {
  /** What a table or operation without a rule gets: "allow" (the default) or "deny". */
  defaultPolicy?: "allow" | "deny";
}

type AnyRules = Record<string, { read?: Rule<unknown, any>; modify?: Rule<unknown, any>; insert?: Rule<unknown, any> } | undefined>;
type AnyDoc = Record<string, unknown> & { _id: string };

/** `db` with `rules` checked on every document read. */
export function wrapDatabaseReader<Ctx, DM extends GenericDataModel>(ctx: Ctx, db: DatabaseReader<DM>, rules: Rules<Ctx, DM>, config?: RLSConfig): DatabaseReader<DM> {
  return new CheckedReader(new Checker(ctx, db as DatabaseReader<any>, rules as AnyRules, config), db as DatabaseReader<any>) as unknown as DatabaseReader<DM>;
}

/** `db` with `rules` checked on every document read, inserted, modified or deleted. */
export function wrapDatabaseWriter<Ctx, DM extends GenericDataModel>(ctx: Ctx, db: DatabaseWriter<DM>, rules: Rules<Ctx, DM>, config?: RLSConfig): DatabaseWriter<DM> {
  return new CheckedWriter(new Checker(ctx, db as DatabaseReader<any>, rules as AnyRules, config), db as DatabaseWriter<any>) as unknown as DatabaseWriter<DM>;
}

/** The rules with what they need: the ctx they are called with, and a reader to tell an ID's table. */
class Checker {
  private readonly deny: boolean;

  constructor(
    private readonly ctx: unknown,
    private readonly db: DatabaseReader<any>,
    private readonly rules: AnyRules,
    config: RLSConfig | undefined,
  ) {
    if (typeof rules !== "object" || rules === null) throw walkinError("MISUSE", "Row-level security needs rules: { tableName: { read?, modify?, insert? } } ({} for none).");
    const policy = config?.defaultPolicy ?? "allow";
    if (policy !== "allow" && policy !== "deny") throw walkinError("MISUSE", `defaultPolicy must be "allow" or "deny", got ${JSON.stringify(policy)}.`);
    this.deny = policy === "deny";
  }

  /** Whether `operation` on `doc` of `table` passes; no rule means the default policy. */
  async allows(table: string | null, operation: "read" | "modify" | "insert", doc: unknown): Promise<boolean> {
    const rule = table === null ? undefined : this.rules[table]?.[operation];
    if (!rule) return !this.deny;
    return (await rule(this.ctx, doc)) === true;
  }

  /** The table of an ID among those with rules; null for an ID of any other table (the default policy applies). */
  tableOf(id: string): string | null {
    for (const table of Object.keys(this.rules)) if (this.db.normalizeId(table, id) !== null) return table;
    return null;
  }

}

/**
 * The table a call names first (`get("notes", id)`, `patch("notes", id, v)`), or null for the
 * ID-first form. Told apart exactly as the engine's ctx.db does (two strings first), not by
 * the count of arguments: `get(id, undefined)` or `patch(id, v, undefined)` is the ID-first
 * form to the engine, and reading it as table-first checked the ID as a table name, a table
 * without rules, so "allow" let a hidden document through.
 */
function tableNamed(args: unknown[]): string | null {
  return typeof args[0] === "string" && typeof args[1] === "string" ? args[0] : null;
}

class CheckedReader {
  constructor(
    protected readonly checker: Checker,
    private readonly inner: DatabaseReader<any>,
  ) {}

  get system() {
    return this.inner.system;
  }

  // Own arrow functions, as the engine's ctx.db has: `const { get } = ctx.db` keeps working.
  readonly normalizeId = (table: string, id: string) => this.inner.normalizeId(table, id);

  readonly get = async (...args: unknown[]) => {
    const doc = (await (this.inner.get as (...a: unknown[]) => Promise<AnyDoc | null>)(...args)) as AnyDoc | null;
    if (doc === null) return null;
    const table = tableNamed(args) ?? this.checker.tableOf(doc._id);
    return (await this.checker.allows(table, "read", doc)) ? doc : null;
  };

  readonly query = (table: string) => new FilteredQuery(this.inner.query(table), (doc) => this.checker.allows(table, "read", doc), table);
}

class CheckedWriter extends CheckedReader {
  constructor(
    checker: Checker,
    private readonly writer: DatabaseWriter<any>,
  ) {
    super(checker, writer);
  }

  readonly insert = async (table: string, value: Record<string, unknown>) => {
    if (!(await this.checker.allows(table, "insert", value))) throw walkinError("APPLICATION", "insert access not allowed");
    return this.writer.insert(table, value as never);
  };

  readonly patch = async (...args: unknown[]) => {
    await this.checkModify(args);
    return (this.writer.patch as (...a: unknown[]) => Promise<void>)(...args);
  };

  readonly replace = async (...args: unknown[]) => {
    await this.checkModify(args);
    return (this.writer.replace as (...a: unknown[]) => Promise<void>)(...args);
  };

  readonly delete = async (...args: unknown[]) => {
    await this.checkModify(args);
    return (this.writer.delete as (...a: unknown[]) => Promise<void>)(...args);
  };

  /** `args`: the write's own arguments. Read first, so a write never tells an unreadable document from a missing one. */
  private async checkModify(args: unknown[]): Promise<void> {
    const named = tableNamed(args);
    const target = named === null ? [args[0]] : [named, args[1]];
    const id = target[target.length - 1] as string;
    const doc = (await (this.writer.get as (...a: unknown[]) => Promise<AnyDoc | null>)(...target)) as AnyDoc | null;
    const table = named ?? (doc && this.checker.tableOf(id));
    if (doc === null || !(await this.checker.allows(table, "read", doc))) throw walkinError("NOT_FOUND", "no read access or doc does not exist");
    if (!(await this.checker.allows(table, "modify", doc))) throw walkinError("APPLICATION", "write access not allowed");
  }
}

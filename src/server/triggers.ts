/**
 * Triggers (convex-helpers' `Triggers`): functions that run on every insert, update and delete
 * of a table, inside the mutation that wrote, so what they write commits with it or not at all.
 *
 * ```ts
 * const triggers = new Triggers<DataModel>();
 * triggers.register("messages", async (ctx, change) => {
 *   if (change.operation === "insert") await bumpCount(ctx, change.newDoc.channel, +1);
 *   if (change.operation === "delete") await bumpCount(ctx, change.oldDoc.channel, -1);
 * });
 * export const mutation = customMutation(rawMutation, customCtx(triggers.wrapDB));
 * ```
 *
 * Only writes through the wrapped `ctx.db` fire triggers: mutations made with the raw builder,
 * and the dashboard's edits, do not (as in convex-helpers). A trigger's own `ctx.db` is wrapped
 * too, so its writes fire triggers in turn.
 *
 * Order, step by step. Each mutation's wrapped writer keeps one queue of changes:
 *  1. a write is made on the real writer, and its change (with the document before and after)
 *     joins the end of the queue;
 *  2. if no trigger of this mutation is running, the write drains the queue: it runs the
 *     triggers of the first change, each to its end, then those of the next, until the queue is
 *     empty, and only then returns to its caller;
 *  3. a write made while the queue drains (a running trigger's, or one the handler runs beside
 *     another with Promise.all) only joins the queue (step 1) and returns at once: its triggers
 *     run after the trigger running now has finished, in the order of the writes, before the
 *     draining write returns.
 * So when a handler's `await ctx.db.insert(...)` returns, every trigger it caused, however
 * deep, has run; a trigger never runs inside another (no re-entrancy to guard against); and a
 * trigger that keeps writing to its own table loops until the transaction's write limit stops
 * the mutation (LIMIT_EXCEEDED), writing nothing.
 *
 * A trigger that throws fails the write that drained the queue, and with it the mutation unless
 * the handler catches the error; what the writes of that drain did stays written, as any write
 * of a mutation that goes on does.
 */
import { walkinError } from "../values/index.js";
import type { GenericId } from "../values/index.js";
import type { DatabaseWriter } from "./database.js";
import type { DocumentByName, GenericDataModel, TableNamesInDataModel } from "./dataModel.js";

/** What happened to one document: its ID, the operation, and the document before and after. */
export type Change<DM extends GenericDataModel, T extends TableNamesInDataModel<DM>> = { id: GenericId<T> } & (
  | { operation: "insert"; oldDoc: null; newDoc: DocumentByName<DM, T> }
  | { operation: "update"; oldDoc: DocumentByName<DM, T>; newDoc: DocumentByName<DM, T> }
  | { operation: "delete"; oldDoc: DocumentByName<DM, T>; newDoc: null }
);

/** A trigger: called with the mutation's ctx (its `db` wrapped, so its writes fire triggers too) and the change. */
export type Trigger<Ctx, DM extends GenericDataModel, T extends TableNamesInDataModel<DM>> = (ctx: Ctx, change: Change<DM, T>) => Promise<void>;

type AnyChange = { id: string; operation: "insert" | "update" | "delete"; oldDoc: unknown; newDoc: unknown };

export class Triggers<DM extends GenericDataModel, Ctx extends { db: DatabaseWriter<DM> } = { db: DatabaseWriter<DM> }> {
  private readonly byTable = new Map<string, Array<Trigger<Ctx, DM, any>>>();

  /** Runs `trigger` on every write of `table` made through a wrapped `ctx.db`, in the order registered. */
  register<T extends TableNamesInDataModel<DM>>(table: T, trigger: Trigger<Ctx, DM, T>): void {
    if (typeof table !== "string" || typeof trigger !== "function") {
      throw walkinError("MISUSE", 'triggers.register(table, trigger) needs a table name and an async function: triggers.register("messages", async (ctx, change) => { … }).');
    }
    const list = this.byTable.get(table) ?? [];
    list.push(trigger as Trigger<Ctx, DM, any>);
    this.byTable.set(table, list);
  }

  /**
   * `ctx` with a `db` whose writes fire the registered triggers: for `customCtx`, as
   * `customMutation(mutation, customCtx(triggers.wrapDB))`. An arrow function, so it can be
   * passed on its own.
   */
  wrapDB = <C extends Ctx>(ctx: C): C => {
    if (typeof ctx?.db?.insert !== "function") {
      throw walkinError("MISUSE", "triggers.wrapDB needs a mutation's ctx (one whose db writes): use it with customMutation, not customQuery.");
    }
    const wrapped = { ...ctx } as C;
    wrapped.db = new TriggeredWriter(ctx.db as DatabaseWriter<any>, this.byTable, wrapped) as unknown as C["db"];
    return wrapped;
  };
}

/** The wrapped writer of one mutation (one `wrapDB` call): reads pass through, writes queue their change. */
class TriggeredWriter {
  private readonly queue: AnyChange[] = [];
  private draining = false;

  constructor(
    private readonly db: DatabaseWriter<any>,
    private readonly byTable: Map<string, Array<Trigger<any, any, any>>>,
    private readonly ctx: unknown,
  ) {}

  get system() {
    return this.db.system;
  }

  // Own arrow functions, as the engine's ctx.db has: `const { insert } = ctx.db` keeps working.
  readonly get = (...args: unknown[]) => (this.db.get as (...a: unknown[]) => Promise<unknown>)(...args);

  readonly query = (table: string) => this.db.query(table);

  readonly normalizeId = (table: string, id: string) => this.db.normalizeId(table, id);

  readonly insert = async (table: string, value: Record<string, unknown>) => {
    const id = await this.db.insert(table, value as never);
    if (this.byTable.has(table)) await this.record(table, { id, operation: "insert", oldDoc: null, newDoc: await this.db.get(id) });
    return id;
  };

  readonly patch = (...args: unknown[]) => this.update("patch", args);

  readonly replace = (...args: unknown[]) => this.update("replace", args);

  readonly delete = async (...args: unknown[]) => {
    const table = this.watchedTableOf(args);
    const id = args[args.length - 1] as string;
    const oldDoc = table === null ? null : await this.db.get(id as never);
    await (this.db.delete as (...a: unknown[]) => Promise<void>)(...args);
    if (table !== null) await this.record(table, { id, operation: "delete", oldDoc, newDoc: null });
  };

  /** `patch` or `replace`, with or without the table name first (`patch(id, v)`, `patch("t", id, v)`). */
  private async update(method: "patch" | "replace", args: unknown[]) {
    const table = this.watchedTableOf(args.slice(0, -1));
    const id = args[args.length - 2] as string;
    const oldDoc = table === null ? null : await this.db.get(id as never);
    await (this.db[method] as (...a: unknown[]) => Promise<void>)(...args);
    if (table !== null) await this.record(table, { id, operation: "update", oldDoc, newDoc: await this.db.get(id as never) });
  }

  /**
   * The table of the document a write names, if it has triggers. `args` are the write's table
   * name (when given) and ID; with no table name the ID tells it. An ID of no watched table,
   * or one the writer will refuse, is left to the write's own checks.
   */
  private watchedTableOf(args: unknown[]): string | null {
    if (args.length === 2) return typeof args[0] === "string" && this.byTable.has(args[0]) ? args[0] : null;
    const id = args[0];
    if (typeof id !== "string") return null;
    for (const table of this.byTable.keys()) if (this.db.normalizeId(table, id) !== null) return table;
    return null;
  }

  /** Steps 1–3 of the file's comment: queue the change; drain unless a trigger is running. */
  private async record(table: string, change: AnyChange): Promise<void> {
    this.queue.push({ ...change, table } as AnyChange & { table: string });
    if (this.draining) return;
    this.draining = true;
    try {
      for (let next = this.queue.shift(); next; next = this.queue.shift()) {
        const { table: of, ...rest } = next as AnyChange & { table: string };
        for (const trigger of this.byTable.get(of) ?? []) await trigger(this.ctx, rest as Change<any, any>);
      }
    } finally {
      // A throw leaves the changes after it unrun: they belong to the write that failed.
      this.queue.length = 0;
      this.draining = false;
    }
  }
}

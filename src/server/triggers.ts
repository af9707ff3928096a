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
 *  3. a write made while the queue drains joins the queue (step 1): its triggers run after the
 *     trigger running now has finished, in the order of the writes, before the draining write
 *     returns. A running trigger's write returns at once; a handler's (one it runs beside
 *     another with Promise.all) returns once its own triggers have run.
 * So when a handler's `await ctx.db.insert(...)` returns, every trigger it caused, however
 * deep, has run; a trigger never runs inside another (no re-entrancy to guard against); and a
 * trigger that keeps writing to its own table loops until the transaction's write limit stops
 * the mutation (LIMIT_EXCEEDED), writing nothing.
 *
 * A trigger that throws fails the write that drained the queue (and a handler's write waiting
 * on the queue's changes), and with it the mutation unless the handler catches the error; what
 * the writes of that drain did stays written, as any write of a mutation that goes on does.
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
    // The handler's db and the triggers' db share one queue; they differ in what a write made
    // while the queue drains waits for (see `record`), so triggers get a ctx of their own.
    const shared: Shared = { queue: [], draining: false, last: Promise.resolve() };
    const triggerCtx = { ...ctx } as C;
    triggerCtx.db = new TriggeredWriter(ctx.db as DatabaseWriter<any>, this.byTable, triggerCtx, shared, true) as unknown as C["db"];
    const wrapped = { ...ctx } as C;
    wrapped.db = new TriggeredWriter(ctx.db as DatabaseWriter<any>, this.byTable, triggerCtx, shared, false) as unknown as C["db"];
    return wrapped;
  };
}

/** A queued change, and for a handler's write made while the queue drained, how to tell it its triggers ran. */
type Queued = AnyChange & { table: string; settle?: { resolve: () => void; reject: (error: unknown) => void } };

/** What the two writers of one `wrapDB` call (the handler's and the triggers') share. */
interface Shared {
  queue: Queued[];
  draining: boolean;
  /** The last write's reads and write (see `write`): the next one starts after them. */
  last: Promise<unknown>;
}

/** A wrapped writer of one mutation (one `wrapDB` call): reads pass through, writes queue their change. */
class TriggeredWriter {
  constructor(
    private readonly db: DatabaseWriter<any>,
    private readonly byTable: Map<string, Array<Trigger<any, any, any>>>,
    /** The ctx triggers run with (its db the triggers' writer). */
    private readonly ctx: unknown,
    private readonly shared: Shared,
    /** Whether this is the triggers' writer (a running trigger's writes) or the handler's. */
    private readonly ofTriggers: boolean,
  ) {}

  get system() {
    return this.db.system;
  }

  // Own arrow functions, as the engine's ctx.db has: `const { insert } = ctx.db` keeps working.
  readonly get = (...args: unknown[]) => (this.db.get as (...a: unknown[]) => Promise<unknown>)(...args);

  readonly query = (table: string) => this.db.query(table);

  readonly normalizeId = (table: string, id: string) => this.db.normalizeId(table, id);

  readonly insert = (table: string, value: Record<string, unknown>) =>
    this.write(async () => {
      const id = await this.db.insert(table, value as never);
      return { result: id, change: this.byTable.has(table) ? { table, id, operation: "insert", oldDoc: null, newDoc: await this.db.get(id) } : null };
    });

  readonly patch = (...args: unknown[]) => this.update("patch", args);

  readonly replace = (...args: unknown[]) => this.update("replace", args);

  readonly delete = (...args: unknown[]) =>
    this.write(async () => {
      const { table, id } = this.target(args);
      const oldDoc = table === null ? null : await this.db.get(id as never);
      await (this.db.delete as (...a: unknown[]) => Promise<void>)(...args);
      return { result: undefined, change: table === null ? null : { table, id, operation: "delete", oldDoc, newDoc: null } };
    });

  /** `patch` or `replace`, with or without the table name first (`patch(id, v)`, `patch("t", id, v)`). */
  private update(method: "patch" | "replace", args: unknown[]) {
    return this.write(async () => {
      const { table, id } = this.target(args);
      const oldDoc = table === null ? null : await this.db.get(id as never);
      await (this.db[method] as (...a: unknown[]) => Promise<void>)(...args);
      return { result: undefined, change: table === null ? null : { table, id, operation: "update", oldDoc, newDoc: await this.db.get(id as never) } };
    });
  }

  /**
   * One write, its documents before and after read with nothing of this writer in between,
   * then its change recorded. Without the chain, two writes side by side (Promise.all of two
   * patches of one document) interleaved: both read the same oldDoc before either wrote, and
   * both read newDoc after both had written, so the first change showed the second's result
   * and the second's oldDoc missed the first. A write waits only for the get-write-get of the
   * writes before it, never for their triggers: a trigger's own writes join the chain too.
   */
  private write<R>(step: () => Promise<{ result: R; change: Queued | null }>): Promise<R> {
    const done = this.shared.last.then(step);
    // The next write waits for this one's reads and write, failed or not.
    this.shared.last = done.then(
      () => undefined,
      () => undefined,
    );
    return done.then(async ({ result, change }) => {
      if (change !== null) await this.record(change);
      return result;
    });
  }

  /**
   * The document a write names and its table if that has triggers. Told apart as the engine's
   * ctx.db does (two strings first: the table-first form), not by the count of arguments:
   * `delete(id, undefined)` deletes by ID to the engine, and read as table-first its trigger
   * was missed. An ID of no watched table, or one the writer will refuse, is left to the
   * write's own checks.
   */
  private target(args: unknown[]): { table: string | null; id: string } {
    if (typeof args[0] === "string" && typeof args[1] === "string") return { table: this.byTable.has(args[0]) ? args[0] : null, id: args[1] };
    const id = args[0] as string;
    if (typeof id !== "string") return { table: null, id };
    for (const table of this.byTable.keys()) if (this.db.normalizeId(table, id) !== null) return { table, id };
    return { table: null, id };
  }

  /**
   * Steps 1–3 of the file's comment: queue the change; drain unless the queue is draining. A
   * running trigger's write returns at once (waiting for its own triggers, which run after
   * the running one, would never end). A handler's write made while the queue drains (beside
   * another, with Promise.all) waits until its triggers have run: it used to return at once,
   * so the handler's next read could miss what they wrote, and when an earlier change's
   * trigger threw, its change was dropped with the rest of the queue and its triggers never
   * ran, though the write had succeeded (caught with Promise.allSettled, it committed so).
   */
  private record(change: Queued): Promise<void> {
    const shared = this.shared;
    shared.queue.push(change);
    if (!shared.draining) return this.drain();
    if (this.ofTriggers) return Promise.resolve();
    return new Promise((resolve, reject) => {
      change.settle = { resolve, reject };
    });
  }

  private async drain(): Promise<void> {
    const shared = this.shared;
    shared.draining = true;
    let current: Queued | undefined;
    try {
      for (current = shared.queue.shift(); current; current = shared.queue.shift()) {
        const { table, settle: _settle, ...change } = current;
        for (const trigger of this.byTable.get(table) ?? []) await trigger(this.ctx, change as Change<any, any>);
        current.settle?.resolve();
      }
    } catch (error) {
      // The changes after a throw stay unrun (the triggers' writes among them belong to the
      // write that failed); a handler's write waiting on one of them, or on the one whose
      // trigger threw, fails with the same error instead of waiting forever.
      current?.settle?.reject(error);
      for (const left of shared.queue) left.settle?.reject(error);
      throw error;
    } finally {
      shared.queue.length = 0;
      shared.draining = false;
    }
  }
}

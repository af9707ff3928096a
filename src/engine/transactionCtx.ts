/**
 * The ctx a query's or a mutation's handler gets inside its transaction, and the calls it makes
 * through it: ctx.runQuery and ctx.runMutation run the called function in the caller's
 * transaction (`queryInTransaction`, `mutationInTransaction`), nested at most
 * LIMITS.maxCallDepth deep, one called mutation at a time, and a handler that returns while
 * one of its calls still runs fails (`checkCallsSettled`). Apart from engine.ts because none of
 * it reaches the commit path or the engine's state: it needs only the functions, the catalog
 * and the file store. An action's ctx (`Engine.actionCtx`) stays with the engine: its calls are
 * the engine's own entry points.
 */
import type { Value } from "../values/index.js";
import { getFunctionName } from "../server/api.js";
import type { RegisteredFunction, UserIdentity } from "../server/registration.js";
import { walkinError } from "../values/index.js";
import type { Catalog } from "./catalog.js";
import { createDatabaseReader, type createDatabaseWriter } from "./database.js";
import type { FileStore } from "./fileStore.js";
import { checkArgs, checkReturn, withoutUndefinedFields, type FunctionRegistry } from "./functions.js";
import { LIMITS } from "./limits.js";
import type { createScheduler } from "./scheduler.js";
import { MutationStorage, QueryStorage } from "./storageCtx.js";
import type { Transaction } from "./transaction.js";

/** The ctx a mutation's handler gets (and one it calls through ctx.runMutation). */
export interface MutationCtx {
  db: ReturnType<typeof createDatabaseWriter>;
  auth: { getUserIdentity(): Promise<UserIdentity | null> };
  scheduler: ReturnType<ReturnType<typeof createScheduler>["forTransaction"]>;
  storage: MutationStorage;
  runQuery(ref: unknown, args?: unknown): Promise<Value>;
  runMutation(ref: unknown, args?: unknown): Promise<Value>;
}

/**
 * One run of a handler inside a transaction, for the ctx.runQuery / ctx.runMutation calls it
 * makes: `chain` is the path of each function from the one called from outside down to this
 * one (the nesting limit, LIMITS.maxCallDepth), `unsettled` the calls it made that have not
 * settled yet (a handler that returns before they do fails: see `checkCallsSettled`).
 */
export interface CallFrame {
  txn: Transaction;
  auth: MutationCtx["auth"];
  chain: readonly string[];
  /** Each call's promise, and the call as the error names it: `ctx.runQuery("path")` (made on the first call). */
  unsettled?: Map<Promise<Value>, string>;
  /** Settles when the last ctx.runMutation this frame started has settled (see `mutationCtx`). */
  mutationTurn?: Promise<unknown>;
}

/** What the contexts need of their engine. */
export interface ContextsHost {
  readonly functions: FunctionRegistry;
  readonly catalog: Catalog;
  readonly files: FileStore;
  readonly isIdOfTable: (table: string, id: string) => boolean;
}

/** Makes the ctx of query and mutation handlers, and runs the calls they make through it. */
export class TransactionContexts {
  constructor(private readonly host: ContextsHost) {}

  /** The ctx of a mutation's handler running in `frame` (the one called from outside, or one it called). */
  mutationCtx(frame: CallFrame, db: MutationCtx["db"], scheduler: MutationCtx["scheduler"]): MutationCtx {
    return {
      db,
      auth: frame.auth,
      scheduler,
      storage: new MutationStorage(this.host.files, frame.txn),
      runQuery: (ref, a) => this.callQuery(frame, ref, a),
      runMutation: (ref, a) => this.track(frame, "runMutation", ref, (path, chain) => this.inMutationTurn(frame, () => this.mutationInTransaction(frame, db, scheduler, path, chain, a))),
    };
  }

  /**
   * Runs a ctx.runMutation of `frame` after the ones it started before have settled.
   *
   * Why one at a time: each called mutation undoes its writes by rolling the transaction back to
   * its savepoint. Two started together (`Promise.all([ctx.runMutation(a), ctx.runMutation(b)])`)
   * would interleave: a's savepoint, b's savepoint, a writes, b writes, a throws; rolling back to
   * a's savepoint would undo b's writes too, and b would still report success. Run in turn, b's
   * savepoint is taken after a has settled, so each undo covers exactly its own mutation's
   * writes. The order is the order of the calls.
   */
  private inMutationTurn(frame: CallFrame, run: () => Promise<Value>): Promise<Value> {
    const previous = frame.mutationTurn;
    const turn = previous === undefined ? run() : previous.then(run);
    frame.mutationTurn = turn.then(noop, noop);
    return turn;
  }

  /** The ctx of a query's handler running in `frame` (the one called from outside, or one it called). */
  queryCtx(frame: CallFrame) {
    return {
      db: createDatabaseReader(frame.txn, this.host.catalog),
      auth: frame.auth,
      storage: new QueryStorage(this.host.files, frame.txn),
      runQuery: (ref: unknown, a?: unknown) => this.callQuery(frame, ref, a),
    };
  }

  /** `ctx.runQuery` of a query's or a mutation's handler running in `frame`. */
  private callQuery(frame: CallFrame, ref: unknown, args: unknown): Promise<Value> {
    return this.track(frame, "runQuery", ref, (path, chain) => this.queryInTransaction(frame, path, chain, args));
  }

  /**
   * Runs a call a handler made with ctx.runQuery / ctx.runMutation, after checking the nesting
   * limit (Convex's MAX_REACTOR_CALL_DEPTH: a function that calls itself without end fails here
   * rather than overflowing the stack), and counts it as unsettled in the caller's frame until
   * it settles.
   */
  private track(frame: CallFrame, kind: "runQuery" | "runMutation", ref: unknown, run: (path: string, chain: readonly string[]) => Promise<Value>): Promise<Value> {
    let path: string;
    try {
      path = getFunctionName(ref as never);
    } catch (error) {
      return Promise.reject(error);
    }
    const chain = [...frame.chain, path];
    const tooDeep = callDepthExceeded(kind, chain);
    if (tooDeep) return Promise.reject(tooDeep);
    const unsettled = (frame.unsettled ??= new Map());
    // The call leaves `unsettled` before its caller sees it settle, so a handler that awaited
    // its calls returns with none left.
    const promise = run(path, chain).finally(() => unsettled.delete(promise));
    unsettled.set(promise, `ctx.${kind}("${path}")`);
    return promise;
  }

  /**
   * `ctx.runQuery` in a query or a mutation: the query runs in the caller's transaction, as
   * Convex's does ("within the same transaction"): at its snapshot, seeing its pending writes
   * (in a mutation), its reads joining its read set, so a commit over what the query read
   * conflicts with a calling mutation as its own reads would (a split read-modify-write stays
   * serializable), and re-runs a live query that called it. Args and the return value are
   * checked by the query's validators and come back as across the wire (undefined fields
   * dropped). Internal queries may be called; the caller's identity is kept.
   */
  private async queryInTransaction(caller: CallFrame, path: string, chain: readonly string[], args: unknown): Promise<Value> {
    const { txn, auth } = caller;
    const fn = this.host.functions.resolve(path, "query");
    const checkedArgs = checkArgs(fn, args, this.host.isIdOfTable);
    const frame: CallFrame = { txn, auth, chain };
    const ctx = this.queryCtx(frame);
    const result = await callHandler(fn, ctx, checkedArgs);
    checkCallsSettled(frame);
    if (txn.limitExceeded) throw txn.limitExceeded;
    return withoutUndefinedFields(checkReturn(fn, path, result, this.host.isIdOfTable));
  }

  /**
   * `ctx.runMutation` in a mutation: Convex's sub-transaction. The called mutation runs in the
   * caller's transaction (same snapshot; each sees the other's writes; one commit, one conflict
   * check), behind a savepoint of the pending writes:
   *  1. args are checked first (a bad call writes nothing and needs no savepoint);
   *  2. the savepoint marks the writes staged so far;
   *  3. the handler runs and its return value is checked;
   *  4. if 3 threw, everything staged since 2 is undone and the error goes to the caller, which
   *     may catch it and go on (or not: then the whole transaction fails, as any error does).
   * Writes the caller makes while the called mutation runs (calls it did not await) are staged
   * after the savepoint, so they are undone with it: await each ctx.runMutation.
   */
  private async mutationInTransaction(
    caller: CallFrame,
    db: MutationCtx["db"],
    scheduler: MutationCtx["scheduler"],
    path: string,
    chain: readonly string[],
    args: unknown,
  ): Promise<Value> {
    const { txn } = caller;
    const fn = this.host.functions.resolve(path, "mutation");
    const checkedArgs = checkArgs(fn, args, this.host.isIdOfTable);
    const savepoint = txn.savepoint();
    let value: Value;
    try {
      // A ctx of its own (not the caller's object, which app code may have added fields to),
      // over the caller's transaction.
      const frame: CallFrame = { txn, auth: caller.auth, chain };
      const returned = await callHandler(fn, this.mutationCtx(frame, db, scheduler), checkedArgs);
      checkCallsSettled(frame);
      if (txn.limitExceeded) throw txn.limitExceeded;
      value = checkReturn(fn, path, returned, this.host.isIdOfTable);
    } catch (error) {
      txn.rollbackTo(savepoint);
      throw error;
    }
    txn.releaseSavepoint(savepoint);
    return withoutUndefinedFields(value);
  }
}

/**
 * The nesting limit's error for a call whose `chain` runs from the function called from
 * outside down to the callee, or null within the limit (Convex's MAX_REACTOR_CALL_DEPTH).
 */
export function callDepthExceeded(kind: "runQuery" | "runMutation" | "runAction", chain: readonly string[]): Error | null {
  if (chain.length - 1 <= LIMITS.maxCallDepth) return null;
  return walkinError("LIMIT_EXCEEDED",
    `ctx.${kind}("${chain.at(-1)}") would nest ${chain.length - 1} calls deep, past the limit of ${LIMITS.maxCallDepth}: ${chain.join(" → ")}. ` +
    `A function that calls itself needs a base case that stops it; to repeat work, loop inside one function ` +
    `(or call a plain helper function instead of ctx.${kind}).`,
    { limit: "maxCallDepth", max: LIMITS.maxCallDepth });
}

/** Ends a turn of `inMutationTurn` whichever way the called mutation settled. */
function noop(): void {}

/**
 * After a handler returned: fails the run if a ctx.runQuery / ctx.runMutation call it made is
 * still running (not awaited). Such a call would go on reading and writing a transaction that
 * has moved on: its writes would land in the commit or be lost depending on timing, and a
 * called mutation's savepoint would no longer nest. The failure sticks to the transaction
 * (`limitExceeded`), so a caller that catches it still commits nothing.
 */
export function checkCallsSettled(frame: CallFrame): void {
  const { unsettled } = frame;
  if (unsettled === undefined || unsettled.size === 0) return;
  // Whatever such a call ends with comes after the function's own failure, reported below: not
  // an unhandled rejection, which would take the process down.
  for (const promise of unsettled.keys()) promise.catch(() => {});
  const calls = [...unsettled.values()].join(", ");
  throw (frame.txn.limitExceeded ??= walkinError("MISUSE",
    `${frame.chain.at(-1)} returned while ${calls}, which it made, was still running, so it fails (a mutation commits nothing). ` +
    `Await every ctx.runQuery and ctx.runMutation call (typescript-eslint's no-floating-promises rule finds those that are not).`));
}

/** Calls a function's handler as a method of the function (as app code would), without a closure per run. */
export function callHandler(fn: RegisteredFunction, ctx: unknown, args: Record<string, Value>): unknown {
  return (fn.handler as (ctx: unknown, args: Record<string, Value>) => unknown)(ctx, args);
}

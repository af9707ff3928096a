/**
 * What a function sees (`ctx`) and what registering one produces.
 *
 * A registered function is a plain, frozen description: its type (query / mutation / action),
 * visibility (public / internal), validators and handler. The engine reads it; nothing else
 * is hidden in it. Phantom `__args` / `__returns` fields carry the types to `api.*` references.
 */
import type { GenericId, ObjectType, PropertyValidators, Validator, Value } from "../values/index.js";
import type { DatabaseReader, DatabaseWriter } from "./database.js";
import type { GenericDataModel, GenericTableInfo } from "./dataModel.js";
import type { VectorSearchQuery } from "./vectorSearch.js";
import type { StorageActionWriter, StorageReader, StorageWriter } from "./storage.js";
import type { FunctionReference, FunctionArgs, FunctionReturnType, OptionalRestArgs } from "./api.js";

export type FunctionType = "query" | "mutation" | "action";
export type FunctionVisibility = "public" | "internal";

/** Who is calling, as established by the auth layer. `null` when signed out. */
export interface UserIdentity {
  /** Stable ID of the user (for Walk-in auth: the user document's ID). */
  readonly subject: string;
  /** Unique across issuers: `${issuer}|${subject}`. */
  readonly tokenIdentifier: string;
  readonly issuer: string;
  readonly [claim: string]: Value | undefined;
}

/**
 * An identity for code that acts as someone (`WalkinHttpClient.setAdminAuth`; Convex's name):
 * `UserIdentity` without `tokenIdentifier`, which is always made from `issuer` and `subject`.
 * `issuer` left out means walkin/auth's own, so `{ subject: userId }` is that user.
 */
export interface UserIdentityAttributes {
  readonly subject: string;
  readonly issuer?: string;
  readonly [claim: string]: Value | undefined;
}

export interface Auth {
  /** The caller's identity, checked inside this transaction, or `null`. */
  getUserIdentity(): Promise<UserIdentity | null>;
}

export type ScheduledFunctionId = GenericId<"_scheduled_functions">;

/** What `ctx.scheduler` can schedule: a mutation or an action, public or internal (Convex's name). */
export type SchedulableFunctionReference = FunctionReference<"mutation" | "action", FunctionVisibility>;

export interface Scheduler {
  /** Runs a mutation or action `delayMs` after this transaction commits (not at all if it aborts). */
  runAfter<F extends SchedulableFunctionReference>(
    delayMs: number,
    fn: F,
    ...args: OptionalRestArgs<F>
  ): Promise<ScheduledFunctionId>;
  /** Runs a mutation or action at a time (ms since epoch, or a Date). */
  runAt<F extends SchedulableFunctionReference>(
    timestamp: number | Date,
    fn: F,
    ...args: OptionalRestArgs<F>
  ): Promise<ScheduledFunctionId>;
  /**
   * Cancels a scheduled function that has not started. An action already running goes on, but
   * is marked canceled, and the functions it schedules from then on are canceled (never run).
   */
  cancel(id: ScheduledFunctionId): Promise<void>;
}

export interface GenericQueryCtx<DM extends GenericDataModel> {
  db: DatabaseReader<DM>;
  auth: Auth;
  /** Stored files: their URLs and metadata (docs/files.md). */
  storage: StorageReader;
  /**
   * Calls a query (public or internal) within this query's transaction: at its snapshot, and
   * what it reads counts as read by this query (a live query re-runs when it changes). Its args
   * and return value are validated; fields set to undefined come back absent.
   */
  runQuery<F extends FunctionReference<"query", FunctionVisibility>>(fn: F, ...args: OptionalRestArgs<F>): Promise<FunctionReturnType<F>>;
}

export interface GenericMutationCtx<DM extends GenericDataModel> {
  db: DatabaseWriter<DM>;
  auth: Auth;
  scheduler: Scheduler;
  /** Stored files: URLs, metadata, upload URLs and deletion (docs/files.md). */
  storage: StorageWriter;
  /**
   * Calls a query (public or internal) within this transaction: it sees this mutation's writes,
   * and what it reads counts as read by this mutation (conflicts, live queries). Its args and
   * return value are validated; fields set to undefined come back absent.
   */
  runQuery<F extends FunctionReference<"query", FunctionVisibility>>(fn: F, ...args: OptionalRestArgs<F>): Promise<FunctionReturnType<F>>;
  /**
   * Calls a mutation (public or internal) within this transaction, as a sub-transaction: each
   * sees the other's writes, and if it throws, all of its writes are rolled back (catch the
   * error to go on without them). Await it before writing again.
   */
  runMutation<F extends FunctionReference<"mutation", FunctionVisibility>>(fn: F, ...args: OptionalRestArgs<F>): Promise<FunctionReturnType<F>>;
}

/**
 * The network facts of a client's call, for rate limits and session listings: the peer
 * address and the few headers that say who is behind a proxy or which browser it is.
 */
export interface CallerRequest {
  remoteAddress: string | null;
  /** Lower-cased names: user-agent, x-forwarded-for, x-real-ip, cf-connecting-ip, forwarded. */
  headers: Readonly<Record<string, string>>;
}

export interface GenericActionCtx<_DM extends GenericDataModel = GenericDataModel> {
  auth: Auth;
  /** Where the client's call came from; null when the server itself called (scheduler, crons). */
  request: CallerRequest | null;
  scheduler: Scheduler;
  /** Stored files: everything a mutation has, and their bytes (`get`, `store`) (docs/files.md). */
  storage: StorageActionWriter;
  runQuery<F extends FunctionReference<"query", FunctionVisibility>>(fn: F, ...args: OptionalRestArgs<F>): Promise<FunctionReturnType<F>>;
  runMutation<F extends FunctionReference<"mutation", FunctionVisibility>>(fn: F, ...args: OptionalRestArgs<F>): Promise<FunctionReturnType<F>>;
  runAction<F extends FunctionReference<"action", FunctionVisibility>>(fn: F, ...args: OptionalRestArgs<F>): Promise<FunctionReturnType<F>>;
  /**
   * The IDs of the documents whose vectors are nearest `query.vector` in a vector index, best
   * first, with their cosine similarity as `_score` (docs/vector-search.md).
   *
   * @example
   * const results = await ctx.vectorSearch("foods", "by_embedding", { vector: embedding, limit: 16, filter: (q) => q.eq("cuisine", "French") });
   */
  // Typed without the data model: bound to it (table and index names, filter fields), `DM`
  // made a ctx of one data model unconvertible to one of another (`actionGeneric as
  // ActionBuilder<DataModel>` in _generated/server.ts). The names are checked when it runs.
  vectorSearch<TableName extends string>(
    tableName: TableName,
    indexName: string,
    query: VectorSearchQuery<GenericTableInfo, string>,
  ): Promise<Array<{ _id: GenericId<TableName>; _score: number }>>;
}

/** The runtime description of a registered function. */
export interface RegisteredFunction<
  Type extends FunctionType = FunctionType,
  Visibility extends FunctionVisibility = FunctionVisibility,
  Args = any,
  Returns = any,
> {
  readonly type: Type;
  readonly visibility: Visibility;
  /** Object validator of the arguments, or `null` when the function declared none. */
  readonly args: Validator<any, "required", any> | null;
  /**
   * With `args: v.any()`, the arguments custom builders add (an object validator of just those
   * fields), else null: the engine validates and normalizes them as it would declared args,
   * knowing who calls (see `checkArgs` in engine/functions.ts). With object args they are
   * part of `args` instead.
   */
  readonly customArgs?: Validator<any, "required", any> | null;
  readonly returns: Validator<any, any, any> | null;
  readonly handler: (ctx: any, args: any) => unknown;
  /** Type-only. */
  readonly __args: Args;
  /** Type-only. */
  readonly __returns: Returns;
}

export type RegisteredQuery<V extends FunctionVisibility, Args, Returns> = RegisteredFunction<"query", V, Args, Returns>;
export type RegisteredMutation<V extends FunctionVisibility, Args, Returns> = RegisteredFunction<"mutation", V, Args, Returns>;
export type RegisteredAction<V extends FunctionVisibility, Args, Returns> = RegisteredFunction<"action", V, Args, Returns>;

/** Args a handler receives given the `args` declared (validators, a validator, or nothing). */
export type ArgsOf<ArgsValidator> = [ArgsValidator] extends [PropertyValidators]
  ? ObjectType<ArgsValidator>
  : ArgsValidator extends Validator<infer T, any, any>
    ? T
    : Record<string, never>;

type ReturnsOf<ReturnsValidator, Returned> = ReturnsValidator extends Validator<infer T, any, any> ? T : Awaited<Returned>;

/**
 * What a handler may return under a `returns` validator of `T`: `T`, or nothing at all when
 * `T` takes null, since returning nothing answers null (as in Convex, where `returns: v.null()`
 * declares a function without a result).
 */
export type ReturnedFor<T> = T | (null extends T ? void : never);

export interface FunctionDefinition<Ctx, ArgsValidator, ReturnsValidator, Returned> {
  /** Validators of the arguments; calls with anything else are rejected before the handler runs. */
  args?: ArgsValidator;
  /** Validator of the return value (optional); a mismatch is an error, not a silent leak. */
  returns?: ReturnsValidator;
  handler: (ctx: Ctx, args: ArgsOf<ArgsValidator>) => Returned;
}

/** `query`, `mutation`, `action` and their internal variants, typed by a data model. */
export interface FunctionBuilder<Type extends FunctionType, Visibility extends FunctionVisibility, Ctx> {
  <
    ArgsValidator extends PropertyValidators | Validator<any, "required", any> = Record<never, never>,
    ReturnsValidator extends Validator<any, any, any> | undefined = undefined,
    Returned extends ReturnsValidator extends Validator<infer T, any, any> ? ReturnedFor<T> | Promise<ReturnedFor<T>> : unknown = any,
  >(
    definition: FunctionDefinition<Ctx, ArgsValidator, ReturnsValidator, Returned>,
  ): RegisteredFunction<Type, Visibility, ArgsOf<ArgsValidator>, ReturnsOf<ReturnsValidator, Returned>>;
  <Args extends Record<string, any> = Record<string, never>, Returned = unknown>(
    handler: (ctx: Ctx, args: Args) => Returned,
  ): RegisteredFunction<Type, Visibility, Args, Awaited<Returned>>;
}

export type QueryBuilder<DM extends GenericDataModel, V extends FunctionVisibility> = FunctionBuilder<"query", V, GenericQueryCtx<DM>>;
export type MutationBuilder<DM extends GenericDataModel, V extends FunctionVisibility> = FunctionBuilder<"mutation", V, GenericMutationCtx<DM>>;
export type ActionBuilder<DM extends GenericDataModel, V extends FunctionVisibility> = FunctionBuilder<"action", V, GenericActionCtx<DM>>;

export type { FunctionArgs, FunctionReturnType };

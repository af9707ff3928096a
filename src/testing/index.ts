/**
 * `walkin/testing`: run functions in-process on the real engine over an in-memory SQLite
 * database. Nothing is mocked: validation, transactions, the scheduler and subscriptions are
 * the ones production uses.
 *
 * @example
 * import { walkinTest } from "walkin/testing";
 * import { anyApi } from "walkin/server";
 * import schema from "../functions/schema";
 * import * as messages from "../functions/messages";
 *
 * const t = walkinTest(schema, { messages });
 * await t.mutation(anyApi.messages.send, { body: "hi" });
 * expect(await t.query(anyApi.messages.list)).toHaveLength(1);
 */
import { Engine, type Caller } from "../engine/engine.js";
import type { Modules } from "../engine/functions.js";
import { openTestStorage, type TestStorageOption } from "./testStorage.js";
import type { SchemaDefinition, DataModelFromSchemaDefinition } from "../server/schema.js";
import { getFunctionName, type FunctionReference, type FunctionReturnType, type OptionalRestArgs } from "../server/api.js";
import { registerFunction } from "../server/functions.js";
import type { GenericMutationCtx, UserIdentity } from "../server/registration.js";
import type { AnyDataModel, GenericDataModel } from "../server/dataModel.js";
import type { Value } from "../values/index.js";

type Ref<Type extends "query" | "mutation" | "action"> = FunctionReference<Type, any>;

export interface TestIdentity {
  subject?: string;
  issuer?: string;
  tokenIdentifier?: string;
  [claim: string]: Value | undefined;
}

export interface WalkinTestApi<DM extends GenericDataModel> {
  query<F extends Ref<"query">>(fn: F, ...args: OptionalRestArgs<F>): Promise<FunctionReturnType<F>>;
  mutation<F extends Ref<"mutation">>(fn: F, ...args: OptionalRestArgs<F>): Promise<FunctionReturnType<F>>;
  action<F extends Ref<"action">>(fn: F, ...args: OptionalRestArgs<F>): Promise<FunctionReturnType<F>>;
  /** Runs code with a mutation's ctx (`ctx.db` reads and writes), committed when it returns. */
  run<T>(fn: (ctx: GenericMutationCtx<DM>) => Promise<T>): Promise<T>;
  /** The same backend, called as this user. */
  withIdentity(identity: TestIdentity): WalkinTestApi<DM>;
  /**
   * The same backend, called with this auth token, checked by the app's auth (walkin/auth)
   * inside each call, as a client's would be.
   * @example
   * const { token } = await t.action(api.auth.signIn, { provider: "anonymous" });
   * await t.withToken(token).mutation(api.messages.send, { body: "hi" });
   */
  withToken(token: string): WalkinTestApi<DM>;
}

export interface WalkinTest<DM extends GenericDataModel> extends WalkinTestApi<DM> {
  /** The engine, for tests that subscribe or inspect stats. */
  engine(): Promise<Engine>;
  /** Runs every scheduled function (also future ones, and ones they schedule) until none is pending. */
  finishScheduledFunctions(): Promise<void>;
  /** Runs the scheduled functions due now (and ones they schedule that are due). */
  finishInProgressScheduledFunctions(): Promise<void>;
  close(): Promise<void>;
}

export interface WalkinTestOptions {
  /**
   * The storage to run on (or a function that opens one); it is closed with the test backend.
   * Default: in-memory SQLite, or what `WALKIN_TEST_STORAGE` names (see `openTestStorage`).
   * @example
   * walkinTest(schema, modules, { storage: withLatency(await openSqliteStorage({ filename: ":memory:" })) });
   */
  storage?: TestStorageOption;
}

export function walkinTest<S extends SchemaDefinition<any>>(schema: S, modules?: Modules, options?: WalkinTestOptions): WalkinTest<DataModelFromSchemaDefinition<S>>;
export function walkinTest(schema?: null, modules?: Modules, options?: WalkinTestOptions): WalkinTest<AnyDataModel>;
export function walkinTest(schema: SchemaDefinition<any> | null = null, modules: Modules = {}, options: WalkinTestOptions = {}): WalkinTest<any> {
  const ready = openTestStorage(options.storage).then((storage) =>
    Engine.open({ storage, schema, modules, runScheduler: false }),
  );
  // Keep a rejected open from surfacing as an unhandled rejection before the first call awaits it.
  ready.catch(() => undefined);

  const api = (caller: Caller): WalkinTestApi<any> => ({
    query: async (fn, ...args) => (await ready).runQuery(getFunctionName(fn), args[0] ?? {}, caller) as never,
    mutation: async (fn, ...args) => ((await ready).runMutation(getFunctionName(fn), args[0] ?? {}, caller)).then((r) => r.value) as never,
    action: async (fn, ...args) => (await ready).runAction(getFunctionName(fn), args[0] ?? {}, caller) as never,
    run: async (body) => {
      const engine = await ready;
      let result: unknown;
      const fn = registerFunction("mutation", "internal", async (ctx: GenericMutationCtx<any>) => {
        result = await body(ctx);
        return null;
      });
      await engine.executeMutation(fn, "t.run", {}, caller);
      return result as never;
    },
    withIdentity: (identity) => api({ identity: completeIdentity(identity) }),
    withToken: (token) => api({ token }),
  });

  return {
    ...api({}),
    engine: () => ready,
    finishScheduledFunctions: async () => (await ready).scheduler.runUntilIdle(() => Number.MAX_SAFE_INTEGER),
    finishInProgressScheduledFunctions: async () => (await ready).scheduler.runUntilIdle(),
    close: async () => (await ready).close(),
  };
}

let nextSubject = 1;

function completeIdentity(identity: TestIdentity): UserIdentity {
  const subject = identity.subject ?? `test-user-${nextSubject++}`;
  const issuer = identity.issuer ?? "https://walkin.test";
  return { ...identity, subject, issuer, tokenIdentifier: identity.tokenIdentifier ?? `${issuer}|${subject}` };
}


export { startLiveBackend, type LiveBackend } from "./liveBackend.js";
export { openTestStorage, type TestStorageOption } from "./testStorage.js";

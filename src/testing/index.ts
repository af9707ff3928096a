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
import { createHash } from "node:crypto";
import { Engine, type Caller } from "../engine/engine.js";
import type { Modules } from "../engine/functions.js";
import { openTestStorage, type TestStorageOption } from "./testStorage.js";
import type { SchemaDefinition, DataModelFromSchemaDefinition } from "../server/schema.js";
import { getFunctionName, type FunctionReference, type FunctionReturnType, type OptionalRestArgs } from "../server/api.js";
import { registerFunction } from "../server/functions.js";
import type { GenericMutationCtx, UserIdentity } from "../server/registration.js";
import type { AnyDataModel, GenericDataModel } from "../server/dataModel.js";
import { convertFromJson, convertToJson, walkinError, type Value } from "../values/index.js";
import { GlobModuleLoader, isGlobModules, type GlobModules } from "./globModules.js";

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
  /**
   * convex-test's name for `finishScheduledFunctions`. Its argument (a fake-timer advance such
   * as `vi.runAllTimers`) is accepted and not needed: this scheduler does not wait on timers.
   */
  finishAllScheduledFunctions(advanceTimers?: () => void): Promise<void>;
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

/**
 * A backend for tests. `modules` maps module paths to their exports (`{ messages, "lib/users": users }`),
 * or is what `import.meta.glob("./**\/*.ts")` returns in a test beside the functions (Vite,
 * vitest), as `convexTest` takes it: codegen's rules pick the function modules from it.
 *
 * Results are what a client receives: the value goes through the wire encoding, so a field
 * set to `undefined` is absent, and a value no client could receive fails the call.
 * @example
 * const t = walkinTest(schema, import.meta.glob("./**\/*.ts"));
 * await t.mutation(api.messages.send, { body: "hi" });
 */
export function walkinTest<S extends SchemaDefinition<any>>(schema: S, modules?: Modules | GlobModules, options?: WalkinTestOptions): WalkinTest<DataModelFromSchemaDefinition<S>>;
export function walkinTest(schema?: null, modules?: Modules | GlobModules, options?: WalkinTestOptions): WalkinTest<AnyDataModel>;
export function walkinTest(schema: SchemaDefinition<any> | null = null, modules?: Modules | GlobModules, options: WalkinTestOptions = {}): WalkinTest<any> {
  const modulesGiven = modules !== undefined;
  modules ??= {};
  const glob = isGlobModules(modules) ? new GlobModuleLoader(modules) : null;
  const loaded = glob ? glob.loadFunctionModules() : Promise.resolve(modules as Modules);
  const ready = Promise.all([loaded, openTestStorage(options.storage)]).then(([modules, storage]) =>
    Engine.open({ storage, schema, modules, runScheduler: false }),
  );
  // Keep a rejected open from surfacing as an unhandled rejection before the first call awaits it.
  ready.catch(() => undefined);

  /** The engine, once the module `fn` names is loaded (a glob's test files load on first call). */
  const engineFor = async (fn: Ref<any>) => {
    if (!modulesGiven) {
      // convex-test finds the functions folder by itself; Walk-in is told, so say how.
      throw walkinError(
        "MISUSE",
        `walkinTest(schema) was given no modules, so it cannot call ${getFunctionName(fn)}. Pass them: ` +
          `walkinTest(schema, import.meta.glob("./**/*.ts")) in a test beside your functions, or walkinTest(schema, { messages }).`,
      );
    }
    const engine = await ready;
    await glob?.loadFor(getFunctionName(fn));
    return engine;
  };

  const api = (caller: Caller): WalkinTestApi<any> => ({
    query: async (fn, ...args) => overTheWire(await (await engineFor(fn)).runQuery(getFunctionName(fn), args[0] ?? {}, caller)) as never,
    mutation: async (fn, ...args) => overTheWire((await (await engineFor(fn)).runMutation(getFunctionName(fn), args[0] ?? {}, caller)).value) as never,
    action: async (fn, ...args) => overTheWire(await (await engineFor(fn)).runAction(getFunctionName(fn), args[0] ?? {}, caller)) as never,
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
    finishAllScheduledFunctions: async () => (await ready).scheduler.runUntilIdle(() => Number.MAX_SAFE_INTEGER),
    close: async () => (await ready).close(),
  };
}

/** A result as a client decodes it: `undefined` fields dropped, nothing the wire cannot carry. */
function overTheWire(value: unknown): unknown {
  return convertFromJson(convertToJson(value as Value, "result"));
}

/**
 * convex-test's defaults: a subject derived from the identity itself (the same identity is the
 * same user, in any test, whatever ran before) and its issuer, so that a stored
 * `tokenIdentifier` reads as it does there.
 */
function completeIdentity(identity: TestIdentity): UserIdentity {
  const subject = identity.subject ?? `test-user-${createHash("sha256").update(JSON.stringify(identity)).digest("hex").slice(0, 12)}`;
  const issuer = identity.issuer ?? "https://convex.test";
  return { ...identity, subject, issuer, tokenIdentifier: identity.tokenIdentifier ?? `${issuer}|${subject}` };
}


/**
 * `walkinTest` under convex-test's name, so a Convex test file runs with only its import path
 * changed (`convex-test` → `walkin/testing`).
 * @example
 * const t = convexTest(schema, import.meta.glob("./**\/*.ts"));
 */
export const convexTest = walkinTest;

export { startLiveBackend, type LiveBackend } from "./liveBackend.js";
export { openTestStorage, type TestStorageOption } from "./testStorage.js";

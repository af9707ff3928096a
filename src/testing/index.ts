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
import { setTimeout as realSetTimeout } from "node:timers";
import { Engine, type Caller } from "../engine/engine.js";
import type { Modules } from "../engine/functions.js";
import { openTestStorage, type TestStorageOption } from "./testStorage.js";
import type { SchemaDefinition, DataModelFromSchemaDefinition } from "../server/schema.js";
import { getFunctionName, type FunctionReference, type FunctionReturnType, type OptionalRestArgs } from "../server/api.js";
import { registerFunction } from "../server/functions.js";
import type { GenericActionCtx, GenericMutationCtx, GenericQueryCtx, UserIdentity } from "../server/registration.js";
import type { AnyDataModel, GenericDataModel } from "../server/dataModel.js";
import type { StorageActionWriter } from "../server/storage.js";
import { convertFromJson, convertToJson, walkinError, type Value } from "../values/index.js";
import { GlobModuleLoader, isGlobModules, type GlobModules } from "./globModules.js";
import { testFetch } from "./testFetch.js";
import { TestRunStorage, type MutationStorage } from "../engine/storageCtx.js";

type Ref<Type extends "query" | "mutation" | "action"> = FunctionReference<Type, any>;

/** The origin of file URLs (`ctx.storage.getUrl`) and of `t.fetch`'s requests in tests: nothing listens there. */
const TEST_FILE_ORIGIN = "https://walkin.test";
/** An inline function's body, given the ctx of its kind (typed by the overloads below). */
type InlineBody = (ctx: any) => Promise<unknown>;

/**
 * The ctx of `t.run` (and of an inline `t.mutation`): a mutation's, whose `ctx.storage` also
 * stores and reads bytes (`store`, `get`) inside the transaction, as convex-test's does.
 */
export type TestRunCtx<DM extends GenericDataModel> = Omit<GenericMutationCtx<DM>, "storage"> & { storage: StorageActionWriter };

export interface TestIdentity {
  subject?: string;
  issuer?: string;
  tokenIdentifier?: string;
  [claim: string]: Value | undefined;
}

export interface WalkinTestApi<DM extends GenericDataModel> {
  query<F extends Ref<"query">>(fn: F, ...args: OptionalRestArgs<F>): Promise<FunctionReturnType<F>>;
  /**
   * Runs code with a query's ctx (`ctx.db` read-only), as convex-test's inline functions do.
   * Its value is returned as is, as `run`'s is.
   * @example
   * const count = await t.query(async (ctx) => (await ctx.db.query("messages").collect()).length);
   */
  query<T>(fn: (ctx: GenericQueryCtx<DM>) => Promise<T>): Promise<T>;
  mutation<F extends Ref<"mutation">>(fn: F, ...args: OptionalRestArgs<F>): Promise<FunctionReturnType<F>>;
  /** Runs code with a mutation's ctx, committed when it returns: `run` under convex-test's other name. */
  mutation<T>(fn: (ctx: TestRunCtx<DM>) => Promise<T>): Promise<T>;
  action<F extends Ref<"action">>(fn: F, ...args: OptionalRestArgs<F>): Promise<FunctionReturnType<F>>;
  /** Runs code with an action's ctx (`ctx.runQuery`, `ctx.runMutation`, `ctx.scheduler`), as convex-test's inline functions do. */
  action<T>(fn: (ctx: GenericActionCtx<DM>) => Promise<T>): Promise<T>;
  /** Runs code with a mutation's ctx (`ctx.db` reads and writes), committed when it returns. */
  run<T>(fn: (ctx: TestRunCtx<DM>) => Promise<T>): Promise<T>;
  /**
   * A request to the app's HTTP routes (the default export of `functions/http.ts`), run as the
   * server runs them, with this accessor's identity: the route's Response (testFetch.ts).
   * @example
   * const response = await t.fetch("/webhook", { method: "POST", body: JSON.stringify(event) });
   * expect(response.status).toBe(200);
   */
  fetch(path: string, init?: RequestInit): Promise<Response>;
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
  // The scheduler is the backend's, so an identity's accessor drives it too: convex-test's
  // `withIdentity` returns the whole `t`, and tests that keep only `asUser` call these on it.
  /** Runs every scheduled function (also future ones, and ones they schedule) until none is pending. */
  finishScheduledFunctions(): Promise<void>;
  /**
   * convex-test's name for `finishScheduledFunctions`. Given a fake-timer advance
   * (`vi.runAllTimers`, with `vi.useFakeTimers()` on), it also moves the fake clock to each
   * job's time before running it, as convex-test does: `Date.now()` in the job reads its
   * scheduled time, and in the test afterwards the time of the last one.
   * @example
   * vi.useFakeTimers();
   * await t.mutation(api.sessions.start, {}); // schedules expire in an hour
   * await t.finishAllScheduledFunctions(vi.runAllTimers);
   */
  finishAllScheduledFunctions(advanceTimers?: () => void): Promise<void>;
  /**
   * Runs the scheduled functions due now, as convex-test runs the ones whose timers fired: the
   * functions they schedule wait for the next call (or `finishAllScheduledFunctions`), even
   * when due at once, so a test can check each step of a chain.
   */
  finishInProgressScheduledFunctions(): Promise<void>;
}

export interface WalkinTest<DM extends GenericDataModel> extends WalkinTestApi<DM> {
  /** The engine, for tests that subscribe or inspect stats. */
  engine(): Promise<Engine>;
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
  const ready = Promise.all([loaded, openTestStorage(options.storage)]).then(async ([modules, storage]) => {
    const engine = await Engine.open({ storage, schema, modules, runScheduler: false });
    // No server listens: file URLs (`ctx.storage.getUrl`) name a placeholder origin, as convex-test's do.
    engine.files.servedAt = TEST_FILE_ORIGIN;
    return engine;
  });
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

  /**
   * Runs a query or a mutation (`call`) again when it failed on a function of a glob file loaded
   * on demand but not yet (a test file's, reached from inside the call: `ctx.runQuery`, the
   * scheduler), once that file is loaded: convex-test loads a module whenever a function is
   * looked up, and the engine looks functions up without waiting. Running again is safe: the
   * call failed, so it wrote nothing, and Convex may run a mutation again too. Not for actions,
   * which may have written before they failed.
   */
  const loadingOnDemand = async <T>(call: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        return await call();
      } catch (error) {
        const path = glob ? unknownFunctionPath(error) : undefined;
        // Each round loads a file more, or rethrows: it ends.
        if (path === undefined || !(await glob!.loadFor(path))) throw error;
      }
    }
  };

  /** Runs `body` with the ctx of a function of `type`, as convex-test's inline functions (and `t.run`). */
  const inline = async (type: "query" | "mutation" | "action", body: InlineBody, caller: Caller): Promise<never> => {
    const engine = await ready;
    if (type === "action") return (await body(engine.actionCtx(caller))) as never;
    // The value is kept aside, not returned through the engine, so that it comes back as is.
    let result: unknown;
    const fn = registerFunction(type, "internal", async (ctx: unknown) => {
      result = await body(type === "mutation" ? withBytesInTransaction(ctx as { storage: MutationStorage }) : ctx);
      return null;
    });
    await loadingOnDemand(async () => {
      if (type === "mutation") await engine.executeMutation(fn, "t.run", {}, caller);
      else {
        const run = await engine.executeQuery(fn, "t.query", {}, caller, engine.latestTimestamp);
        if (!run.outcome.ok) throw run.outcome.error;
      }
    });
    return result as never;
  };

  /** The scheduler's controls: the backend's, whichever identity's accessor calls them. */
  const scheduled = {
    finishScheduledFunctions: async () => (await ready).scheduler.runUntilIdle(() => Number.MAX_SAFE_INTEGER),
    finishInProgressScheduledFunctions: async () => (await ready).scheduler.runDueOnce(),
    finishAllScheduledFunctions: async (advanceTimers?: () => void) => {
      const engine = await ready;
      // Real timers have no clock to move and nothing to pump: every job runs at once.
      if (advanceTimers && fakeTimersOn()) return finishOnTheirTime(engine, advanceTimers);
      return engine.scheduler.runUntilIdle(() => Number.MAX_SAFE_INTEGER);
    },
  };

  const api = (caller: Caller): WalkinTestApi<any> => ({
    query: async (fn: Ref<"query"> | InlineBody, ...args: unknown[]) =>
      typeof fn === "function"
        ? inline("query", fn, caller)
        : (overTheWire(await loadingOnDemand(async () => (await engineFor(fn)).runQuery(getFunctionName(fn), args[0] ?? {}, caller))) as never),
    mutation: async (fn: Ref<"mutation"> | InlineBody, ...args: unknown[]) =>
      typeof fn === "function"
        ? inline("mutation", fn, caller)
        : (overTheWire((await loadingOnDemand(async () => (await engineFor(fn)).runMutation(getFunctionName(fn), args[0] ?? {}, caller))).value) as never),
    action: async (fn: Ref<"action"> | InlineBody, ...args: unknown[]) =>
      typeof fn === "function"
        ? inline("action", fn, caller)
        : (overTheWire(await (await engineFor(fn)).runAction(getFunctionName(fn), args[0] ?? {}, caller)) as never),
    run: (body) => inline("mutation", body, caller),
    fetch: async (path, init) => {
      const [engine, modules] = await Promise.all([ready, loaded]);
      return testFetch(engine, modules, caller, TEST_FILE_ORIGIN, path, init);
    },
    withIdentity: (identity) => api({ identity: completeIdentity(identity) }),
    withToken: (token) => api({ token }),
    ...scheduled,
  });

  return {
    ...api({}),
    engine: () => ready,
    close: async () => (await ready).close(),
  };
}

/** The longest delay a timer takes (setTimeout's limit): a job further off is reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Rounds of jobs before a chain counts as endless (convex-test's hint then). */
const MAX_JOB_ROUNDS = 1000;
/** Advances that move the clock short of one job before it runs anyway (a year in steps of an hour). */
const MAX_CLOCK_STEPS = 10_000;
/** Fake timers replace the global `setTimeout`, not node:timers' (which still ticks then). */
const fakeTimersOn = () => globalThis.setTimeout !== realSetTimeout;

/**
 * `finishAllScheduledFunctions(vi.runAllTimers)` as convex-test runs it: each job runs when the
 * (fake) clock reaches its time, so `Date.now()` in the job, and in the test after it, reads
 * what it would there. A job that checks it is due (`if (session.expiresAt > Date.now()) return`)
 * then does its work. Round by round, until no job is pending:
 *  1. read the time the earliest pending job is due;
 *  2. if that is ahead of the clock, arm a timer for it and call `advanceTimers`: fake timers
 *     fire it, which moves the fake clock to the job's time. An advance that moves the clock
 *     short of it (a job further off than one timer reaches, or `() => vi.advanceTimersByTime(1000)`)
 *     is called again, step by step;
 *  3. run the jobs due by the clock (and the due ones they schedule), in time order, advancing
 *     timers meanwhile for the jobs that wait on one.
 * A clock that did not get there (an advance that leaves `Date` alone, or is still short after
 * `MAX_CLOCK_STEPS`) does not hold the job back: it runs then, as `finishScheduledFunctions` runs it.
 */
async function finishOnTheirTime(engine: Engine, advanceTimers: () => void): Promise<void> {
  let rounds = 0;
  let steps = 0;
  for (;;) {
    const due = await engine.scheduler.nextDueTime();
    if (due === undefined) return;
    const before = Date.now();
    if (due > before) {
      // The global setTimeout: a timer of the fake clock, for the advance to fire.
      const timer = setTimeout(() => undefined, Math.min(due - before, MAX_TIMER_MS));
      try {
        advanceTimers();
      } finally {
        clearTimeout(timer);
      }
      // Moved, not yet there: step again. Steps are not rounds of jobs, which count endless
      // chains: a job an hour off, reached a second at a time, is no chain at all.
      if (Date.now() > before && Date.now() < due && ++steps < MAX_CLOCK_STEPS) continue;
    }
    steps = 0;
    if (++rounds > MAX_JOB_ROUNDS) {
      throw walkinError("INTERNAL", `Scheduled functions kept scheduling more work (${MAX_JOB_ROUNDS} rounds). Check for infinitely recursive scheduled functions: is one rescheduling itself?`);
    }
    const reached = Date.now() >= due;
    await advancingMeanwhile(engine.scheduler.runUntilIdle(reached ? Date.now : () => due), advanceTimers);
  }
}

/**
 * Waits for `work`, calling `advanceTimers` at each real tick meanwhile, as convex-test does: a
 * job waiting on a fake timer (an action that sleeps before it retries) goes on instead of
 * hanging the test. An advance that throws ends the wait with its error.
 */
async function advancingMeanwhile(work: Promise<void>, advanceTimers: () => void): Promise<void> {
  let settled = false;
  const done = work.finally(() => (settled = true));
  done.catch(() => undefined); // `work` is awaited below; an advance that throws first leaves it.
  while (!settled) {
    await new Promise((resolve) => realSetTimeout(resolve, 0));
    if (!settled) advanceTimers();
  }
  await work;
}

/**
 * `t.run`'s ctx (and an inline `t.mutation`'s): a mutation's, whose `ctx.storage` also stores and
 * reads bytes inside the transaction, as convex-test's does, so tests can set up files.
 */
function withBytesInTransaction<Ctx extends { storage: MutationStorage }>(ctx: Ctx): Ctx {
  return { ...ctx, storage: TestRunStorage.from(ctx.storage) };
}

/** The function an UNKNOWN_FUNCTION error names (`Unknown function "x.test:f"`, the scheduler's too). */
function unknownFunctionPath(error: unknown): string | undefined {
  if ((error as { code?: unknown } | null)?.code !== "UNKNOWN_FUNCTION") return undefined;
  return /unknown function "([^"]+)"/i.exec((error as Error).message)?.[1];
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

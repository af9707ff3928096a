/**
 * A value that follows the async call chain: set for one synchronous call, and seen again by
 * every continuation (an `await`, a `.then`) created inside that call, whatever runs in
 * between. The determinism sandbox (determinism.ts) keeps the running query's or mutation's
 * fixed clock in one, because handlers interleave at their `await`s and each must find its
 * own; the dashboard's run log (dashboard/api/runLog.ts) keeps the run a console line belongs to.
 *
 * Two implementations, one contract:
 *
 * - **native**: V8's continuation-preserved embedder data, through Walk-in's addon
 *   (native/continuation_context.cc, built by `npm install`). V8 itself stores the slot's value
 *   with each continuation and puts it back while the continuation runs: no hook, no cost per
 *   promise. Used on Node 20-23, where it is found and loads.
 * - **AsyncLocalStorage**: Node's own. Before Node 24 it propagates with promise hooks, and once
 *   one is on, every promise in the process (the engine's, the transport's, the app's) takes
 *   V8's slow path and calls into JavaScript: measured at 15-20% of a one-document insert
 *   mutation and of the auth benchmark's sign-in (bench/README.md). From Node 24 it is built on
 *   the same V8 slot and costs nothing either, so it is used there; the addon is then left alone,
 *   since both writing the one slot would clobber each other's values.
 *
 * What the native one does not carry: callbacks of timers, `setImmediate`, `process.nextTick`
 * and `queueMicrotask` see the slot as it is when they run (empty at the top of the event
 * loop), where AsyncLocalStorage carries the value into them. A handler that awaits a timer
 * (`await new Promise((r) => setTimeout(r, 10))`) is still in its context after the `await`:
 * the continuation carries it, not the callback.
 *
 * The native slot is one per thread; every context made here shares it (see `Frame`).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

export interface ContinuationContext<T> {
  readonly kind: "native" | "async-local-storage";
  /** The value of the running code; `undefined` outside every `run`. */
  get(): T | undefined;
  /** Calls `fn(...args)` with `value` as the context, for it and every continuation it creates. */
  run<A extends unknown[], R>(value: T | undefined, fn: (...args: A) => R, ...args: A): R;
}

interface NativeSlot {
  get(): unknown;
  exchange(value: unknown): unknown;
}

/**
 * Where `npm install` builds the addon: build/ at the package root (src/engine and dist/engine
 * are both two levels down). Null where modules are not files (a test under jsdom serves them
 * over http): AsyncLocalStorage serves there.
 */
function addonPath(): string | null {
  const url = new URL("../../build/Release/walkin_context.node", import.meta.url);
  return url.protocol === "file:" ? fileURLToPath(url) : null;
}

/**
 * The slot holds one frame: a frozen object with one property per context (a symbol each), so
 * that several contexts share it as AsyncLocalStorage instances share Node's resources. A run
 * puts a new frame with its own property changed; the frames of continuations already created
 * are untouched.
 */
type Frame = Readonly<Record<symbol, unknown>>;

let loadedSlot: NativeSlot | null | undefined;

/** The native implementation, or null where it must not or cannot be used (see above). */
export function nativeContinuationContext<T>(name = "context"): ContinuationContext<T> | null {
  // Looked for once per process (`??=` would look again after a failure, and warn again).
  if (loadedSlot === undefined) loadedSlot = nativeSlotIsFree() ? loadAddon() : null;
  const slot = loadedSlot;
  if (slot === null) return null;
  const key = Symbol(name);
  const get = () => (slot.get() as Frame | undefined)?.[key] as T | undefined;
  return {
    kind: "native",
    get,
    run(value, fn, ...args) {
      const frame = slot.get() as Frame | undefined;
      // Already the value here (a storage call from outside every handler): nothing to put.
      if (frame?.[key] === value) return fn(...args);
      const previous = slot.exchange(Object.freeze({ ...frame, [key]: value }));
      try {
        return fn(...args);
      } finally {
        // Synchronously, before anything else runs on this thread: continuations created by
        // `fn` already hold the new frame, and code after this call must not see it.
        slot.exchange(previous);
      }
    },
  };
}

export function asyncLocalStorageContext<T>(): ContinuationContext<T> {
  const storage = new AsyncLocalStorage<T | undefined>();
  return {
    kind: "async-local-storage",
    get: () => storage.getStore(),
    run: (value, fn, ...args) => storage.run(value, fn, ...args),
  };
}

/** The native implementation where it can be used, AsyncLocalStorage elsewhere. `name` shows in debuggers. */
export function continuationContext<T>(name?: string): ContinuationContext<T> {
  return nativeContinuationContext<T>(name) ?? asyncLocalStorageContext<T>();
}

/**
 * Node 24 builds AsyncLocalStorage on the slot (so do 22 and 23 with
 * --experimental-async-context-frame): the addon must not write it there.
 */
function nativeSlotIsFree(): boolean {
  const major = Number(process.versions.node.split(".")[0]);
  if (major >= 24) return false;
  const flag = "--experimental-async-context-frame";
  return !process.execArgv.includes(flag) && !(process.env.NODE_OPTIONS ?? "").includes(flag);
}

function loadAddon(): NativeSlot | null {
  const path = addonPath();
  // Not built (no toolchain at install): `npm install` said so then; AsyncLocalStorage serves.
  if (path === null || !existsSync(path)) return null;
  try {
    return createRequire(import.meta.url)(path) as NativeSlot;
  } catch (error) {
    // Built for another Node (the ABI changed with an upgrade): say so once, and how to fix it.
    process.emitWarning(
      `Walk-in could not load its native continuation context (${path}): ${(error as Error).message}. ` +
        "It falls back to AsyncLocalStorage, which slows every promise down. Rebuild it for this Node with `npm rebuild walkin`.",
      { code: "WALKIN_NATIVE_CONTEXT" },
    );
    return null;
  }
}

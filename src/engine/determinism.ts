/**
 * Determinism for queries and mutations.
 *
 * A query must give the same result every time it runs at the same snapshot (it is cached and
 * re-run for subscriptions), and a mutation may be re-run after a conflict. So inside them:
 * `Date.now()` and `new Date()` are the transaction's fixed time, `Math.random()` is a PRNG
 * seeded per transaction, and `fetch` fails with a message pointing at actions.
 *
 * The globals are patched once, process-wide, and consult a continuation context: outside a
 * query or mutation (actions, the app's own code, other libraries) they behave as usual.
 * Several transactions can be in flight at once (they interleave at `await`s); each sees its
 * own context because the context follows the async call chain (continuationContext.ts: V8's
 * own slot through a small addon where it can, AsyncLocalStorage elsewhere).
 */
import { walkinError } from "../values/index.js";
import { continuationContext } from "./continuationContext.js";

/**
 * One query's or mutation's fixed time and seeded randomness. The seed is only computed if the
 * handler calls Math.random (most never do, and hashing the arguments is not free).
 */
class DeterministicContext {
  private generator: (() => number) | undefined;

  constructor(
    readonly kind: "query" | "mutation",
    readonly now: number,
    private readonly seed: () => number,
  ) {}

  random(): number {
    return (this.generator ??= mulberry32(this.seed()))();
  }
}

/** `undefined` is the value outside every sandbox (see `outsideSandbox`). */
const storage = continuationContext<DeterministicContext>("walkin.determinism");

/** Which implementation carries the sandbox's context ("native" is the fast one): for tests and diagnostics. */
export const sandboxContextKind = storage.kind;
let installed = false;

/**
 * Runs `fn(...args)` with fixed time and seeded randomness. The arguments are passed through
 * rather than closed over: this runs for every query, and a closure per run adds up.
 */
export function runDeterministic<A extends unknown[], T>(kind: "query" | "mutation", now: number, seed: () => number, fn: (...args: A) => T, ...args: A): T {
  install();
  return storage.run(new DeterministicContext(kind, now, seed), fn, ...args);
}

/**
 * Runs `fn` with the real clock, randomness and `fetch`, even when called from a handler:
 * storage drivers and other engine machinery run here, so timeouts, pool timers and network
 * calls work. Promises and timers created inside stay outside the sandbox; the handler that
 * awaits the result is back in its own sandbox when it resumes.
 */
export function outsideSandbox<T>(fn: () => T): T {
  // run(undefined), not AsyncLocalStorage's exit(): on Node 20, exit() disables and re-enables
  // the async hooks of every AsyncLocalStorage in the process, each call (a few µs, on every
  // storage call), where that implementation is in use.
  return storage.run(undefined, fn);
}

function install(): void {
  if (installed) return;
  installed = true;
  const OriginalDate = Date;
  const originalNow = Date.now.bind(Date);
  const originalRandom = Math.random.bind(Math);
  Date.now = () => storage.get()?.now ?? originalNow();
  Math.random = () => {
    const context = storage.get();
    return context ? context.random() : originalRandom();
  };
  // `new Date()` with no arguments reads the clock without calling Date.now, so wrap the
  // constructor; everything else (statics, prototype, instanceof) is forwarded untouched.
  globalThis.Date = new Proxy(OriginalDate, {
    construct(target, args, newTarget) {
      const context = storage.get();
      return Reflect.construct(target, args.length === 0 && context ? [context.now] : args, newTarget);
    },
    apply(target, thisArg, args) {
      const context = storage.get();
      return context ? new OriginalDate(context.now).toString() : Reflect.apply(target, thisArg, args);
    },
  });
  const originalFetch = globalThis.fetch;
  if (typeof originalFetch === "function") {
    globalThis.fetch = ((...args: Parameters<typeof fetch>) => {
      const context = storage.get();
      if (context) {
        return Promise.reject(
          walkinError(
            "MISUSE",
            `fetch() is not allowed in a ${context.kind}: ${context.kind === "query" ? "queries" : "mutations"} must be ` +
              `deterministic so they can be cached and retried. Call the network from an action ` +
              `(action({ handler: async (ctx) => { const r = await fetch(...); await ctx.runMutation(...) } })).`,
          ),
        );
      }
      return originalFetch(...args);
    }) as typeof fetch;
  }
}

/** A small, fast, well-distributed 32-bit PRNG. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit FNV-1a hash, to seed the PRNG from a function name, its args and a timestamp. */
export function hashSeed(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

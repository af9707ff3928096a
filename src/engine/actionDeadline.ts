/**
 * The time limit of one action run (Convex's: 10 minutes). JavaScript cannot be stopped from
 * outside, so a run past its limit is ended in the two ways that matter to everyone else:
 *  - its caller (a client, the scheduler, an action that called it) gets a LIMIT_EXCEEDED
 *    error at once, instead of waiting forever for an action that never settles, and whatever
 *    waits for running actions to end (a server shutting down, a hot reload closing the old
 *    engine, the scheduler stopping) is released;
 *  - every ctx.runQuery / runMutation / runAction / ctx.scheduler call it makes from then on
 *    fails with the same error, so code still running after its caller gave up on it writes
 *    nothing more. A call it started before the limit runs to its end (a mutation commits or
 *    not as a whole).
 * An action called with ctx.runAction shares its caller's limit: it ends no later than its
 * caller does.
 */
import { performance } from "node:perf_hooks";
import { setTimeout, clearTimeout } from "node:timers";
import { walkinError, type WalkinError } from "../values/index.js";

/** Convex's limit on one action's run time. */
const DEFAULT_ACTION_TIMEOUT_MS = 10 * 60_000;

/** The longest delay `setTimeout` honours (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Checks `EngineOptions.actionTimeoutMs`. */
export function checkActionTimeout(ms: number | undefined): number {
  if (ms === undefined) return DEFAULT_ACTION_TIMEOUT_MS;
  if (typeof ms !== "number" || !(ms > 0)) {
    throw new RangeError(`actionTimeoutMs must be a positive number of milliseconds (Infinity for no limit), got ${String(ms)}.`);
  }
  return ms;
}

export class ActionDeadline {
  /** Set once the limit has passed. */
  private expiredWith: WalkinError | null = null;
  private readonly endsAt: number;
  private timer: NodeJS.Timeout | undefined;
  private expire: ((error: WalkinError) => void) | undefined;

  constructor(
    /** The run, as its error names it: `action jobs:send`, `HTTP action POST /hook`. */
    private readonly what: string,
    private readonly limitMs: number,
    private readonly parent: ActionDeadline | null = null,
  ) {
    this.endsAt = Math.min(performance.now() + limitMs, parent?.endsAt ?? Infinity);
  }

  /** `work` (the handler's promise), or this limit's error once it passes first. */
  bound<T>(work: Promise<T>): Promise<T> {
    const delay = this.endsAt - performance.now();
    // Past what a timer can count (about 24.8 days; Infinity): no limit.
    if (delay > MAX_TIMER_MS) return work;
    // One promise that the work or the limit settles, whichever comes first (a second
    // settlement is ignored): `Promise.race` and a `finally` for the timer made three, and
    // every sign-in is an action.
    let settle!: { resolve: (value: T) => void; reject: (error: unknown) => void };
    const bounded = new Promise<T>((resolve, reject) => (settle = { resolve, reject }));
    this.expire = settle.reject;
    this.timer = setTimeout(() => {
      this.expiredWith = walkinError(
        "LIMIT_EXCEEDED",
        `${this.what} ran past the time limit of one action (${formatMs(this.limitMs)}${this.parent ? ", counted from the action that called it" : ""}), ` +
          `so its result is dropped and its later ctx.runQuery, ctx.runMutation, ctx.runAction and ctx.scheduler calls fail. ` +
          `Split long work into steps: do one step, then schedule the next with ctx.scheduler.runAfter(0, ...).`,
        { limit: "actionTimeoutMs", max: this.limitMs },
      );
      this.expire?.(this.expiredWith);
    }, Math.max(0, delay));
    // The limit alone never keeps a process alive (a script whose last action hangs exits).
    this.timer.unref();
    work.then(
      (value) => {
        clearTimeout(this.timer);
        settle.resolve(value);
      },
      (error: unknown) => {
        clearTimeout(this.timer);
        settle.reject(error);
      },
    );
    return bounded;
  }

  /** Throws the limit's error if it has passed for this run or the action that called it. */
  check(): void {
    const expired = this.expiredWith ?? this.parent?.expiredOrNull();
    if (expired) throw expired;
  }

  private expiredOrNull(): WalkinError | null {
    return this.expiredWith ?? this.parent?.expiredOrNull() ?? null;
  }

  /** `call`, failing at once (as a rejection) once the limit has passed. */
  guard<A extends unknown[], R>(call: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
    return (...args: A) => {
      try {
        this.check();
      } catch (error) {
        return Promise.reject(error);
      }
      return call(...args);
    };
  }
}

function formatMs(ms: number): string {
  return ms >= 60_000 && ms % 60_000 === 0 ? `${ms / 60_000} min` : ms >= 1_000 ? `${ms / 1_000} s` : `${ms} ms`;
}

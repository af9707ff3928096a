/**
 * The time limit of the one-shot HTTP calls: `WalkinHttpClient`'s, and `fetchQuery`,
 * `fetchMutation`, `fetchAction` and `preloadQuery` (react/ssr.ts, re-exported by
 * `walkin/nextjs`). A page render or a script waits for them; a server that accepts the
 * connection and never answers (stuck, overloaded, a proxy holding the request) would hang it
 * with no error at all, so every call gives up after its limit with a `DISCONNECTED` error
 * naming the call, the address, the limit and the option that raises it.
 */
import { walkinError } from "../values/errors.js";

/** A query, mutation or preload: these answer quickly, so a stuck server is noticed soon. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** An action may run for 10 minutes (the engine's `actionTimeoutMs`); its answer comes after that. */
export const DEFAULT_ACTION_TIMEOUT_MS = 11 * 60_000;

/** The longest delay `setTimeout` honours: a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface TimeLimit {
  /** Milliseconds to wait for the whole answer, body included; `Infinity` waits as long as the server takes. */
  ms: number;
  /** Names the call in the error: "fetchQuery(tasks:list)", "query tasks:list". */
  label: string;
  /** A mutation or an action: one that timed out may still have run. */
  mayHaveRun: boolean;
  /** The option that sets this limit, named in the error: "timeoutMs", "actionTimeoutMs". */
  option: string;
  /** How to raise it, ending the error: "pass { timeoutMs } to wait longer". */
  raise: string;
}

/**
 * Runs `call` with a `fetch` that is aborted once `limit.ms` has passed. The limit starts now:
 * a caller that queues (WalkinHttpClient's mutations) calls this once the request is due, so
 * time spent waiting behind other calls does not count.
 */
export async function withDeadline<T>(limit: TimeLimit, underlying: typeof fetch, call: (bounded: typeof fetch) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let endpoint = "the server";
  const bounded: typeof fetch = (input, init) => {
    endpoint = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    return underlying(input, { ...init, signal: controller.signal });
  };
  // The signal also covers reading the answer's body: a server that sends its headers and
  // then stalls is cut off at the same limit.
  const timer = limit.ms > MAX_TIMER_MS ? undefined : setTimeout(() => controller.abort(), limit.ms);
  try {
    return await call(bounded);
  } catch (error) {
    // Only the timer aborts, so an aborted signal means whatever failed, failed because of it.
    if (!controller.signal.aborted) throw error;
    const maybeRan = limit.mayHaveRun ? " It may still have run on the server." : "";
    throw walkinError(
      "DISCONNECTED",
      `${limit.label}: ${endpoint} did not answer within ${describeMs(limit.ms)} (${limit.option}).${maybeRan} Check that the server is up and not overloaded, or ${limit.raise}.`,
      undefined,
      error,
    );
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `value` checked as a time limit (`defaultMs` when undefined); a `MISUSE` naming `where` and
 * `option` for anything but a positive number of milliseconds, before anything is sent.
 */
export function checkTimeout(where: string, option: string, value: unknown, defaultMs: number): number {
  if (value === undefined) return defaultMs;
  if (typeof value !== "number" || !(value > 0)) {
    const got = typeof value === "string" ? JSON.stringify(value) : String(value);
    throw walkinError("MISUSE", `${where}: ${option} must be a positive number of milliseconds (Infinity to wait as long as the server takes), got ${got}.`);
  }
  return value;
}

function describeMs(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

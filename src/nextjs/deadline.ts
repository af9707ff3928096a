/**
 * The time limit of `walkin/nextjs`'s calls. A page render waits for `fetchQuery` or
 * `preloadQuery`; a server that accepts the connection and never answers (stuck, overloaded, a
 * proxy holding the request) would hang that render with no error at all, so every call here
 * gives up after `timeoutMs` with a `DISCONNECTED` error naming the address and the limit.
 *
 * This module also puts the network error's code (ECONNREFUSED, ENOTFOUND, …) into the "could
 * not reach" message: `fetch` only says "fetch failed" and keeps the reason in its `cause`,
 * which a page's error log does not show.
 */
import { getFunctionName, type FunctionReference } from "../server/api.js";
import { walkinError } from "../values/errors.js";
import type { FetchQueryOptions } from "../react/ssr.js";

/** A query, mutation or preload: these answer quickly, so a stuck server is noticed soon. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** An action may run for 10 minutes (the engine's `actionTimeoutMs`); its answer comes after that. */
export const DEFAULT_ACTION_TIMEOUT_MS = 11 * 60_000;

/** The longest delay `setTimeout` honours: a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface NextjsOptions extends FetchQueryOptions {
  /**
   * How long to wait for the server's answer, in milliseconds, before throwing a
   * `DISCONNECTED` error: 30 seconds by default (`fetchAction`: 11 minutes, as an action may
   * run for 10). `Infinity` waits as long as the server takes.
   */
  timeoutMs?: number;
}

type Caller = "fetchQuery" | "fetchMutation" | "fetchAction" | "preloadQuery";

/**
 * Runs `call` (one of react/ssr.ts's functions) with `options`' `fetch` wrapped so that the
 * request is aborted once `timeoutMs` has passed and a network failure names its cause.
 */
export async function withDeadline<T>(
  caller: Caller,
  reference: FunctionReference<"query" | "mutation" | "action">,
  options: NextjsOptions | undefined,
  call: (options: FetchQueryOptions) => Promise<T>,
): Promise<T> {
  const { timeoutMs, ...rest } = options ?? {};
  const limitMs = checkTimeout(caller, timeoutMs, caller === "fetchAction" ? DEFAULT_ACTION_TIMEOUT_MS : DEFAULT_TIMEOUT_MS);
  const underlying = rest.fetch ?? globalThis.fetch;
  const controller = new AbortController();
  let endpoint = "the server";
  const fetchWithDeadline: typeof fetch = async (input, init) => {
    endpoint = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    try {
      return await underlying(input, { ...init, signal: controller.signal });
    } catch (error) {
      throw controller.signal.aborted ? error : withCauseCode(error);
    }
  };
  // The signal also covers reading the answer's body: a server that sends its headers and
  // then stalls is cut off at the same limit.
  const timer = limitMs > MAX_TIMER_MS ? undefined : setTimeout(() => controller.abort(), limitMs);
  try {
    return await call({ ...rest, fetch: fetchWithDeadline });
  } catch (error) {
    // Only the timer aborts, so an aborted signal means whatever failed, failed because of it.
    if (!controller.signal.aborted) throw error;
    const label = `${caller}(${getFunctionName(reference)})`;
    const maybeRan = caller === "fetchMutation" || caller === "fetchAction" ? " It may still have run on the server." : "";
    throw walkinError(
      "DISCONNECTED",
      `${label}: ${endpoint} did not answer within ${describeMs(limitMs)} (timeoutMs).${maybeRan} Check that the server is up and not overloaded, or pass { timeoutMs } to wait longer.`,
      undefined,
      error,
    );
  } finally {
    clearTimeout(timer);
  }
}

function checkTimeout(caller: Caller, timeoutMs: unknown, defaultMs: number): number {
  if (timeoutMs === undefined) return defaultMs;
  if (typeof timeoutMs !== "number" || !(timeoutMs > 0)) {
    throw walkinError("MISUSE", `${caller}: timeoutMs must be a positive number of milliseconds (Infinity to wait as long as the server takes), got ${describeValue(timeoutMs)}.`);
  }
  return timeoutMs;
}

/**
 * `error` with the network error's code in its message: Node's `fetch` rejects with "fetch
 * failed" and keeps the reason ("connect ECONNREFUSED 127.0.0.1:3210") in `cause`, where a
 * message built from `error.message` loses it. The original stays the new error's `cause`.
 */
function withCauseCode(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const reason = networkReason(error.cause);
  if (reason === undefined || error.message.includes(reason)) return error;
  return new Error(`${error.message}: ${reason}`, { cause: error });
}

/** "ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:3210", or just the code or message there is. */
function networkReason(cause: unknown): string | undefined {
  if (!(cause instanceof Error)) return undefined;
  // Connecting to a name with several addresses fails with an AggregateError, one per address.
  const inner = cause instanceof AggregateError && cause.errors[0] instanceof Error ? cause.errors[0] : cause;
  const code = (cause as { code?: unknown }).code ?? (inner as { code?: unknown }).code;
  const message = inner.message;
  if (typeof code !== "string") return message || undefined;
  return message.includes(code) ? message : `${code}: ${message}`;
}

function describeMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function describeValue(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

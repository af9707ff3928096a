/**
 * What clients learn about errors. A `WalkinError` crosses the wire intact (message, code,
 * data): it is part of the app's contract. Anything else is a bug or an outage: clients get
 * "Internal server error" (or, in dev mode, the real message) and the stack goes to the log.
 * So does a `WalkinError` with code INTERNAL: those are the server's own failures (a storage
 * outage, a provider that answered wrongly), and their messages name the database's host,
 * port and schema, or a driver's words, which are the operator's business, not a visitor's.
 * And so does one with code MISUSE: a bug in the app's server code (a value that does not
 * match the function's `returns` validator, a ctx.runMutation left unawaited, an unknown
 * table), whose message may quote the data the handler held (a user document's secret field).
 * And so do two more that say the app's data broke an assumption of its server code:
 * SCHEMA_VIOLATION (it wrote a document its own schema refuses; the message names that
 * document's ID, one the caller may never have been shown, the table and field, and a literal
 * or ID value the write held) and NOT_UNIQUE (`unique()` found two documents; the message
 * names both IDs). No call the client can make fixes them. (Convex's production deployments
 * send clients a generic server error for anything but a ConvexError.)
 * The errors a client caused keep their own codes and messages (INVALID_ARGUMENT,
 * UNKNOWN_FUNCTION, WRONG_FUNCTION_TYPE, LIMIT_EXCEEDED), so the caller can fix its call.
 */
import { convertToJson, isWalkinError } from "../values/index.js";
import type { ErrorPayload } from "./protocol.js";

export interface ErrorReporting {
  exposeInternalErrors: boolean;
  log: (line: string) => void;
  /** Routine events (a client went away mid-request, a slow client was dropped); off unless the server's logLevel is "debug". */
  debug: (line: string) => void;
}

/** The codes whose messages are the server's business, not the caller's (see above). */
const SERVER_SIDE_CODES: ReadonlySet<string> = new Set(["INTERNAL", "MISUSE", "SCHEMA_VIOLATION", "NOT_UNIQUE"]);

/**
 * The payload for `error`; `context` names what failed in the log line ("mutation
 * messages:send"), never its arguments or the caller's token.
 */
export function errorPayload(error: unknown, context: string, reporting: ErrorReporting): ErrorPayload {
  if (isWalkinError(error) && (!SERVER_SIDE_CODES.has(error.code) || reporting.exposeInternalErrors)) {
    if (error.code === "INTERNAL") reporting.log(`[walkin] ${context} failed: ${stackOf(error)}`);
    const payload: ErrorPayload = { message: error.message, code: error.code };
    if (error.data !== undefined) {
      try {
        payload.data = convertToJson(error.data);
      } catch (encoding) {
        reporting.log(`[walkin] ${context}: the error's data cannot be sent to clients and was left out: ${(encoding as Error).message}`);
      }
    }
    return payload;
  }
  reporting.log(`[walkin] ${context} failed: ${stackOf(error)}`);
  const message = reporting.exposeInternalErrors && error instanceof Error ? error.message : "Internal server error";
  return { message, code: "INTERNAL" };
}

/** Argument decoding failures are the caller's mistake: INVALID_ARGUMENT, with the reason. */
export function invalidArguments(error: unknown): ErrorPayload {
  return { code: "INVALID_ARGUMENT", message: error instanceof Error ? error.message : String(error) };
}

function stackOf(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}

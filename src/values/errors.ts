/**
 * The one public error class of Walk-in.
 *
 * Every error that crosses a public API (a thrown handler error, a validation failure, a limit,
 * a misuse of the API) is a `WalkinError` with a `code` from the union below. Handlers throw it
 * for application errors (`code: "APPLICATION"`, the default) and clients receive `message`,
 * `code` and `data` intact. Errors are recognised with `isWalkinError(e)`, which checks a
 * `Symbol.for` brand, so two copies of the package (or an error that crossed a realm) still match.
 */
import type { Value } from "./value.js";

export type WalkinErrorCode =
  /** Thrown by application code; `data` is the app's payload. */
  | "APPLICATION"
  /** Function arguments or return value failed their validator. */
  | "INVALID_ARGUMENT"
  /** A document written to the database does not match the schema. */
  | "SCHEMA_VIOLATION"
  /** A malformed ID, or the ID of another table. */
  | "INVALID_ID"
  /** A value the wire encoding cannot hold (functions, class instances, cycles, bad field names). */
  | "INVALID_VALUE"
  /** A patch, replace or delete of a document that does not exist. */
  | "NOT_FOUND"
  /** `.unique()` found more than one document. */
  | "NOT_UNIQUE"
  /** No such function, or a client called an internal function. */
  | "UNKNOWN_FUNCTION"
  /** The function exists but is of another kind (a query called as a mutation, …). */
  | "WRONG_FUNCTION_TYPE"
  /** A document, transaction or message exceeded a documented limit. */
  | "LIMIT_EXCEEDED"
  /** A mutation kept conflicting with concurrent writes and gave up after its retries. */
  | "CONFLICT"
  /** The API was used in a way it does not support (schema errors, wrong context, ...). */
  | "MISUSE"
  /** Authentication is required or the credential is invalid, expired or revoked. */
  | "UNAUTHENTICATED"
  /** A rate limit was hit; `data.retryAfterMs` says when to try again. */
  | "RATE_LIMITED"
  /** The connection to the server was lost before the call completed. */
  | "DISCONNECTED"
  /** A bug or an outage: the message is generic on the client, the details are in server logs. */
  | "INTERNAL";

const BRAND = Symbol.for("walkin.error");

export interface WalkinErrorOptions<Data> {
  code?: WalkinErrorCode;
  data?: Data;
  cause?: unknown;
}

/**
 * @example
 * throw new WalkinError("Your cart already holds 10 items", { data: { max: 10 } });
 * // on the client: err.code === "APPLICATION", err.data.max === 10
 */
export class WalkinError<Data extends Value | undefined = Value | undefined> extends Error {
  readonly code: WalkinErrorCode;
  readonly data: Data;
  readonly [BRAND] = true;

  constructor(message: string, options: WalkinErrorOptions<Data> = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "WalkinError";
    this.code = options.code ?? "APPLICATION";
    this.data = options.data as Data;
  }
}

/** True for any `WalkinError`, even one created by another copy of the package. */
export function isWalkinError(error: unknown): error is WalkinError {
  return typeof error === "object" && error !== null && (error as Record<symbol, unknown>)[BRAND] === true;
}

/** Shorthand used across the codebase for errors with a system code. */
export function walkinError(code: WalkinErrorCode, message: string, data?: Value, cause?: unknown): WalkinError {
  return new WalkinError(message, { code, data, cause });
}

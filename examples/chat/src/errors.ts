import { isWalkinError } from "walkin/values";

/** The server's own message for a WalkinError (validators, auth), a generic one otherwise. */
export function messageOf(error: unknown): string {
  if (isWalkinError(error)) return error.message;
  if (error instanceof Error && error.message) return error.message;
  return "Something went wrong. Try again.";
}

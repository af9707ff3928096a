import { getAuthUserId } from "walkin/auth";
import { WalkinError } from "walkin/server";
import type { Id } from "walkin/values";
import type { QueryCtx } from "../_generated/server.js";

/** The caller's user: every visitor is signed in (anonymously at first) when the page loads. */
export async function requireUser(ctx: QueryCtx): Promise<Id<"users">> {
  const userId = await getAuthUserId(ctx);
  if (userId === null) throw new WalkinError("You are not signed in yet. Reload the page and try again.", { code: "UNAUTHENTICATED" });
  return userId;
}

// Shared by the tests; its second dot keeps it out of the API, as with Convex.
import type { SessionId } from "walkin/sessions";
import type { Id } from "./_generated/dataModel";

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export function newSessionId(): SessionId {
  return crypto.randomUUID() as SessionId;
}

export function asUserId(id: string): Id<"users"> {
  return id as Id<"users">;
}

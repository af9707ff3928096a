import { getOrCreateSessionUser, sessionBuilders, type SessionId } from "walkin/sessions";
import { WalkinError } from "walkin/server";
import { action, mutation, query, type MutationCtx } from "../_generated/server.js";

/** `ctx.sessionId` (a one-way digest of the tab's session ID) and `ctx.user` on every call. */
export const { queryWithSession, mutationWithSession, actionWithSession } = sessionBuilders({ query, mutation, action });

const ADJECTIVES = ["Amber", "Brisk", "Calm", "Daring", "Eager", "Fuzzy", "Gentle", "Happy", "Jolly", "Keen", "Lucky", "Mellow", "Nimble", "Plucky", "Quiet", "Rosy", "Sunny", "Witty"];
const ANIMALS = ["Otter", "Heron", "Lynx", "Panda", "Fox", "Koala", "Puffin", "Badger", "Gecko", "Ibis", "Marten", "Newt", "Quokka", "Raven", "Seal", "Wombat"];

/** The session's user, created with a friendly random name the first time. */
export function sessionUser(ctx: MutationCtx, sessionId: SessionId) {
  const pick = (list: string[]) => list[Math.floor(Math.random() * list.length)]!;
  return getOrCreateSessionUser(ctx, sessionId, (ctx) =>
    ctx.db.insert("users", { name: `${pick(ADJECTIVES)} ${pick(ANIMALS)}`, isAnonymous: true }),
  );
}

export const MAX_NAME = 40;

export function cleanName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > MAX_NAME) {
    throw new WalkinError(`Names are 1 to ${MAX_NAME} characters.`, { data: { field: "name" } });
  }
  return trimmed;
}

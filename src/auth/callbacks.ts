/**
 * The app's callbacks during sign-in, with Convex Auth's names and argument shapes, and the
 * check that refuses, at startup, any configuration key Walk-in would otherwise ignore.
 *
 * Ignoring a key is never safe: a `beforeSessionCreation` that bans users, say, would silently
 * stop running after a port. So every key is either honoured or refused with what to do instead.
 */
import { walkinError, type Id } from "../values/index.js";
import type { MutationCtx } from "./config.js";
import type { AuthProvider } from "./providers/types.js";

/** Convex Auth's kinds of sign-in (`type` of the callbacks' args). Walk-in's anonymous provider is "credentials", as Convex Auth's is. */
export type SignInType = "oauth" | "credentials" | "email" | "phone" | "verification";

/** What the callbacks learn of the provider: its `id` and `type`. */
export interface CallbackProvider {
  id: string;
  type: SignInType;
}

/** The arguments of `createOrUpdateUser` and (with `userId`) `afterUserCreatedOrUpdated`. */
export interface UserCallbackArgs {
  /**
   * The user the account already belongs to; for a sign-up by an anonymous user (an upgrade),
   * that anonymous user; null for a new user.
   */
  existingUserId: Id<"users"> | null;
  type: SignInType;
  provider: CallbackProvider;
  /** The profile the provider gives (`email`, `name`, …); `isAnonymous: true` for anonymous sign-ins. */
  profile: Record<string, unknown>;
  /** Walk-in: whether the user is anonymous after this sign-in. */
  isAnonymous: boolean;
}

export interface AuthCallbacks {
  /**
   * Replaces Walk-in's own user creation and upgrade: return the ID of the `users` document to
   * sign in (create it, update `existingUserId`'s, or pick another). Runs in the sign-in
   * transaction. When set, `afterUserCreatedOrUpdated` is not called (as in Convex Auth).
   */
  createOrUpdateUser?: (ctx: MutationCtx, args: UserCallbackArgs) => Promise<Id<"users">>;
  /** A user was created or updated by a sign-in (after an upgrade too), in the same transaction. */
  afterUserCreatedOrUpdated?: (ctx: MutationCtx, args: UserCallbackArgs & { userId: Id<"users"> }) => Promise<void>;
  /**
   * Runs before every new auth session, in the sign-in transaction: throw to refuse the sign-in
   * (a banned user, say); nothing is written then.
   */
  beforeSessionCreation?: (ctx: MutationCtx, args: { userId: Id<"users"> }) => Promise<void>;
  /**
   * Where an OAuth sign-in may send the browser back: given the `redirectTo` the client asked
   * for, return the absolute URL to use (or throw). Without it, `redirectTo` must be on the
   * app's own origin.
   */
  redirect?: (params: { redirectTo: string }) => Promise<string>;
  /**
   * Walk-in: an anonymous user signed in to an existing account: move what the app keeps for
   * `anonymousUserId` (carts, messages, …) to `userId`. Runs in the sign-in transaction: a
   * throw aborts the sign-in and changes nothing. Afterwards the anonymous user, its sessions
   * and accounts are deleted (after `onDeleteUser`), unless this returns `{ keepAnonymousUser: true }`
   * (its sessions end all the same; the cleanup then never deletes it).
   */
  mergeAnonymousUser?: (args: { ctx: MutationCtx; anonymousUserId: Id<"users">; userId: Id<"users"> }) => Promise<void | { keepAnonymousUser?: boolean }>;
  /**
   * Walk-in: a user is about to be deleted (cleanup of abandoned anonymous users, or after a merge): delete the app's data for it.
   * In the cleanup, a throw undoes that user's deletion alone (kept, logged, tried again an hour later).
   */
  onDeleteUser?: (ctx: MutationCtx, userId: Id<"users">) => Promise<void>;
}

const CALLBACKS: ReadonlySet<string> = new Set<keyof AuthCallbacks>([
  "createOrUpdateUser",
  "afterUserCreatedOrUpdated",
  "beforeSessionCreation",
  "redirect",
  "mergeAnonymousUser",
  "onDeleteUser",
]);

/** Keys of Convex Auth's config that Walk-in does not have, and what to do instead. */
const REFUSED: Record<string, string> = {
  jwt:
    "Walk-in's auth tokens are opaque and checked in every transaction, not JWTs, so jwt.durationMs and jwt.customClaims have no equivalent: " +
    "set lifetimes with session.totalDurationMs / session.inactiveDurationMs, and read user fields in your functions (getAuthUserId(ctx), then ctx.db.get).",
  theme: "Walk-in sends no emails of its own, so there is no theme to set: remove it.",
};

const TOP_LEVEL = ["providers", "session", "signIn", "rateLimits", "clientIp", "cleanup", "sessions", "callbacks"];
const NESTED: Record<string, string[]> = {
  session: ["totalDurationMs", "inactiveDurationMs", "activityResolutionMs", "maxPerUser", "rotatedIdGraceMs"],
  signIn: ["maxFailedAttempsPerHour"],
  rateLimits: ["anonymousSignIn", "passwordAttempts", "passwordAttemptsPerNetwork", "codeAttempts", "codeSends", "codeSendsPerNetwork", "signUpsPerNetwork", "redirectSignInsPerNetwork"],
  cleanup: ["anonymousUserInactiveMs", "intervalMs"],
  sessions: ["tables"],
};

/** Throws a TypeError naming the first key of `config` that Walk-in would not honour. */
export function checkConfigKeys(config: object): void {
  for (const key of Object.keys(config)) {
    if (key in REFUSED) throw new TypeError(`walkinAuth: "${key}" is not supported. ${REFUSED[key]}`);
    if (!TOP_LEVEL.includes(key)) throw new TypeError(`walkinAuth: unknown option "${key}". The options are: ${TOP_LEVEL.join(", ")}.`);
    const value = (config as Record<string, unknown>)[key];
    if (key === "callbacks" && value !== undefined) checkCallbacks(value);
    const allowed = NESTED[key];
    if (!allowed || value === undefined) continue;
    if (typeof value !== "object" || value === null) throw new TypeError(`walkinAuth: ${key} must be an object with ${allowed.join(", ")}.`);
    for (const inner of Object.keys(value)) {
      if (!allowed.includes(inner)) {
        throw new TypeError(`walkinAuth: unknown option "${key}.${inner}"; Walk-in would ignore it. The options of ${key} are: ${allowed.join(", ")}.`);
      }
    }
  }
}

function checkCallbacks(callbacks: unknown): void {
  if (typeof callbacks !== "object" || callbacks === null) throw new TypeError("walkinAuth: callbacks must be an object of functions.");
  for (const [name, fn] of Object.entries(callbacks)) {
    if (!CALLBACKS.has(name)) {
      throw new TypeError(
        `walkinAuth: callbacks.${name} is not a callback Walk-in runs, and a callback that silently never runs is a hole. ` +
          `The callbacks are: ${[...CALLBACKS].join(", ")}.`,
      );
    }
    if (typeof fn !== "function") throw new TypeError(`walkinAuth: callbacks.${name} must be a function.`);
  }
}

/** The callbacks' view of a provider. */
export function callbackProvider(providers: readonly AuthProvider[], id: string): CallbackProvider {
  const provider = providers.find((p) => p.id === id);
  return { id, type: provider?.type === "oauth" ? "oauth" : "credentials" };
}

/** Checks what `createOrUpdateUser` returned: the ID of an existing `users` document. */
export async function checkReturnedUser(ctx: MutationCtx, returned: unknown): Promise<Id<"users">> {
  const id = typeof returned === "string" ? ctx.db.normalizeId("users", returned) : null;
  if (id === null || (await ctx.db.get(id)) === null) {
    throw walkinError("MISUSE", "callbacks.createOrUpdateUser must return the ID of a document of the users table (insert one, or return existingUserId).");
  }
  return id as Id<"users">;
}

/**
 * The ConvexCredentials provider: sign-in by the app's own rules. `signIn("credentials", params)`
 * runs the app's `authorize(params, ctx)` in the sign-in action; it answers `{ userId }` of the
 * user to sign in (usually found with `retrieveAccount` or made with `createAccount`, accounts.ts),
 * or null to refuse. A guest signing in this way is merged into that user, as with a password
 * sign-in to an existing account; every sign-in gets a new session (rotation).
 *
 * @example
 * ConvexCredentials({
 *   authorize: async ({ username, password }, ctx) => {
 *     const { user } = await retrieveAccount(ctx, { provider: "credentials", account: { id: String(username), secret: String(password) } });
 *     return { userId: user._id };
 *   },
 * })
 */
import { walkinError, type Value } from "../../values/index.js";
import type { ActionCtx } from "../config.js";
import { scryptCrypto } from "../passwordHash.js";
import { collectAcceptedSecrets } from "../accounts.js";
import type { AuthProvider, SecretCrypto } from "./types.js";

export interface ConvexCredentialsConfig {
  /** The provider's ID for `signIn(id)` and for its accounts (default "credentials"). */
  id?: string;
  /**
   * Decides the sign-in: `{ userId }` of the user to sign in, or null to refuse it. Throwing
   * refuses it too, with that error. `credentials` are the client's `signIn` params, unchecked.
   * A returned `sessionId` is not reused: every Walk-in sign-in starts a new session.
   */
  authorize: (credentials: Partial<Record<string, Value | undefined>>, ctx: ActionCtx) => Promise<{ userId: string; sessionId?: string } | null>;
  /** How this provider's account secrets are hashed and checked (default: scrypt). */
  crypto?: SecretCrypto;
}

export function ConvexCredentials(config: ConvexCredentialsConfig): AuthProvider {
  if (typeof config?.authorize !== "function") {
    throw new TypeError("ConvexCredentials needs authorize: async (credentials, ctx) => ({ userId }) or null.");
  }
  const id = config.id ?? "credentials";
  return {
    id,
    type: "credentials",
    crypto: config.crypto ?? scryptCrypto(),
    async signIn(context) {
      const accepted = collectAcceptedSecrets(context.ctx);
      const result = await config.authorize(context.params, context.ctx);
      if (result === null) throw walkinError("UNAUTHENTICATED", "Invalid credentials.");
      if (typeof result !== "object" || typeof result.userId !== "string") {
        throw walkinError("MISUSE", `ConvexCredentials "${id}": authorize must return { userId } of the user to sign in, or null to refuse; it returned ${describe(result)}.`);
      }
      // The secrets authorize had checked for this user: checked again where the session is made.
      const verifiedAccounts = accepted.filter((a) => a.userId === result.userId).map(({ provider, providerAccountId, secret }) => ({ provider, providerAccountId, secret }));
      return context.completeSignIn({ mode: "user", userId: result.userId, ...(verifiedAccounts.length ? { verifiedAccounts } : {}) });
    },
  };
}

function describe(value: unknown): string {
  if (value === undefined) return "undefined (did it forget to return?)";
  return typeof value === "object" ? `an object with ${Object.keys(value as object).length ? Object.keys(value as object).map((k) => JSON.stringify(k)).join(", ") : "no fields"}` : `a ${typeof value}`;
}

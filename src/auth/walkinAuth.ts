/**
 * `walkinAuth(config)`: the functions an app exports from `functions/auth.ts`.
 *
 * ```ts
 * export const { auth, signIn, signOut, store, isAuthenticated, currentSession, listSessions, revokeSession, revokeOtherSessions } =
 *   walkinAuth({ providers: [Anonymous, Password()] });
 * ```
 * - `auth`: engine hooks (found by brand): the token check inside every transaction, and the
 *   cleanup cron. Also `auth.addHttpRoutes(http)` for OAuth callbacks.
 * - `signIn` (action): runs a provider; answers a `SignInResult`. `signOut` (mutation).
 * - `store` (internal mutation): every database step of a sign-in, one transaction each.
 * - `isAuthenticated`, `currentSession`, `listSessions` (queries), `revokeSession`, `revokeOtherSessions`.
 */
import { walkinError, v, type Id, type Value } from "../values/index.js";
import { action, internalMutation, mutation, query } from "../server/functions.js";
import { makeFunctionReference } from "../server/api.js";
import type { DatabaseReader } from "../server/database.js";
import type { AnyDataModel } from "../server/dataModel.js";
import { defineEngineHooks, type EngineHooks, type EngineHooksSpec } from "../server/hooks.js";
import type { HttpRouter } from "../server/router.js";
import type { Auth, CallerRequest } from "../server/registration.js";
import { vSessionId } from "../sessions/sessionId.js";
import { resolveConfig, type ActionCtx, type WalkinAuthConfig } from "./config.js";
import { authenticator, describeSession, endAuthSession, endedForGood, invalidateSessions, type AuthSessionDoc } from "./authSessions.js";
import { getAuthSessionId, getAuthUserId } from "./identity.js";
import type { AuthProvider, SignInContext, SignInResult } from "./providers/types.js";
import { PROVIDER_STORE_OPS, runStoreOp, vStoreOp, type ProviderStoreOp, type StoreOp } from "./store.js";
import { newSessionSecret, sessionToken, sha256 } from "./tokens.js";
import { authInstanceId } from "./authInstances.js";
import { callerSession, endClientSession, type SignInOutcome } from "./users.js";
import type { SessionId } from "../sessions/sessionId.js";

/** The per-IP bucket and session `ipAddress` of a client call whose IP `clientIp` cannot tell. */
const UNKNOWN_CLIENT_IP = "unknown";

/**
 * `op` with the caller's IP (`bucketIp()`), for the store operations limited per network: the
 * network an attempt or a code counts against is decided here, whatever IP a provider passed.
 * Asked only for those, so a route that stores nothing limited does not run the app's clientIp.
 * A verifier counts only when a client's sign-in call stores it (`startsSignIn`: a redirect
 * sign-in starting); a provider's callback route stores the next step of one already counted.
 */
function withNetwork(op: ProviderStoreOp, bucketIp: () => string | null, startsSignIn: boolean): StoreOp {
  // Checked at run time too: a provider written in JavaScript could pass any operation.
  if (!(PROVIDER_STORE_OPS as readonly string[]).includes(op.type)) {
    throw walkinError(
      "MISUSE",
      `walkinAuth: a provider's store() was asked to run "${String(op.type)}", which is not a provider's to run. ` +
        `A provider completes a sign-in with completeSignIn(...); its store() runs only ${PROVIDER_STORE_OPS.join(", ")}.`,
    );
  }
  if (op.type === "createVerifier") return { ...op, clientIp: startsSignIn ? bucketIp() : null };
  return op.type === "passwordAttempt" || op.type === "signUpAttempt" || op.type === "createCode" ? { ...op, clientIp: bucketIp() } : op;
}

export function walkinAuth(input: WalkinAuthConfig) {
  const config = resolveConfig(input);
  authInstanceId(config); // given now, outside any transaction (accounts.ts finds the configuration by it)
  /** `module:export` of `store`, learned when the engine loads the module (see `onLoad`). */
  let storePath: string | null = null;
  const storeRef = () => {
    if (!storePath) throw walkinError("MISUSE", "walkinAuth: the auth functions are not loaded by an engine yet. Export them from functions/auth.ts.");
    return makeFunctionReference<"mutation">(storePath);
  };
  const runStore = (ctx: ActionCtx, op: StoreOp): Promise<Value> => ctx.runMutation(storeRef(), { op }) as Promise<Value>;
  // A client's call always takes from an IP's bucket (users.ts, store.ts): one whose IP the app's
  // clientIp cannot tell ("" or null, e.g. an empty X-Forwarded-For) shares "unknown"'s,
  // instead of being taken for a server's own call, which has no limit.
  let warnedUnknownIp = false;
  /** The caller's IP as the app's clientIp tells it: null for a server's own call (no request). */
  const clientIpOf = (request: CallerRequest | null | undefined): string | null => {
    if (!request) return null;
    const ip = config.clientIp(request);
    if (ip === null || ip === undefined || typeof ip === "string") return ip ?? null;
    throw walkinError("MISUSE", `walkinAuth's clientIp must return the client's IP as a string, or null when it cannot tell; it returned a ${typeof ip}.`);
  };
  /** The IP a call's per-network buckets are keyed by: its own, "unknown" for a client's call clientIp cannot place. */
  const bucketIpOf = (request: CallerRequest | null | undefined, ip = clientIpOf(request)): string | null => {
    if (!request) return null;
    if (ip) return ip;
    if (!warnedUnknownIp) {
      warnedUnknownIp = true;
      console.warn(
        `[walkin auth] clientIp could not tell a client's IP (it returned ${JSON.stringify(ip)}): such calls share one rate-limit bucket, "${UNKNOWN_CLIENT_IP}", ` +
          "so they limit each other. Behind a proxy, check walkinAuth's clientIp option (docs/auth.md, Abuse prevention). This is said once.",
      );
    }
    return UNKNOWN_CLIENT_IP;
  };

  const store = internalMutation({
    args: { op: vStoreOp },
    handler: async (ctx, { op }) => {
      // The cleanup deletes each abandoned user in a sub-transaction, so that a throwing onDeleteUser is undone alone.
      const deleteGuest = async (userId: Id<"users">) => void (await ctx.runMutation(storeRef(), { op: { type: "deleteAnonymousUser", userId } }));
      const result = await runStoreOp(ctx, config, op, deleteGuest);
      // A full cleanup batch: drain the rest in further transactions rather than one huge one.
      if (op.type === "cleanup" && (result as { more?: boolean }).more) await ctx.scheduler.runAfter(0, storeRef(), { op: { type: "cleanup" } });
      return result;
    },
  });

  const signIn = action({
    args: {
      provider: v.optional(v.string()),
      params: v.optional(v.record(v.string(), v.any())),
      verifier: v.optional(v.string()),
      sessionId: v.optional(vSessionId),
      newSessionId: v.optional(vSessionId),
    },
    handler: async (ctx, args): Promise<SignInResponse> => withConvexAuthFields(await signInWith(ctx, args)),
  });

  async function signInWith(
    ctx: ActionCtx,
    args: { provider?: string; params?: Record<string, Value>; verifier?: string; sessionId?: SessionId; newSessionId?: SessionId },
  ): Promise<SignInResult> {
    const request = ctx.request;
    const clientIp = clientIpOf(request);
    const bucketIp = bucketIpOf(request, clientIp);
    // Password attempts this call took from its network's bucket and has not given back: a
    // sign-in that completes after them had the right password, and gives them back (users.ts).
    let networkAttempts = 0;
    const context = (provider: string): SignInContext => ({
      ctx,
      params: args.params ?? {},
      verifier: args.verifier ?? null,
      clientIp,
      config,
      store: async (op) => {
        const answer = await runStore(ctx, withNetwork(op, () => bucketIp, true));
        if (op.type === "passwordAttempt" && bucketIp !== null) networkAttempts++;
        return answer;
      },
      completeSignIn: async (step) => {
        const fresh = newSessionSecret();
        // Each attempt is given back once, by the first sign-in that completes after it: a
        // provider that completes twice in one call (a sign-up that finds the account, then a
        // sign-in) must not give its attempts back twice. One that fails leaves them to the next.
        const refund = networkAttempts;
        networkAttempts = 0;
        let outcome: SignInOutcome;
        try {
          outcome = (await runStore(ctx, {
            type: "signIn",
            provider,
            ...step,
            secretHash: fresh.secretHash,
            clientIp: bucketIp,
            refundNetworkAttempts: refund,
            userAgent: request?.headers["user-agent"] ?? null,
            clientSession: args.sessionId ? { from: args.sessionId, ...(args.newSessionId ? { to: args.newSessionId } : {}) } : undefined,
          })) as SignInOutcome;
        } catch (error) {
          networkAttempts += refund;
          throw error;
        }
        if (outcome.kind === "unchanged") return outcome;
        return { kind: "signedIn", token: sessionToken(outcome.authSessionId, fresh.secret), userId: outcome.userId, isAnonymous: outcome.isAnonymous };
      },
    });
    if (args.provider === undefined) return exchangeSignInCode(context, args.params?.code, args.verifier);
    return findProvider(config.providers, args.provider).signIn(context(args.provider));
  }

  /**
   * The second half of a redirect sign-in: the provider's callback stored a one-time code bound
   * to the client's verifier; the client brings both back and gets a token.
   */
  async function exchangeSignInCode(context: (provider: string) => SignInContext, code: Value | undefined, verifier: string | undefined): Promise<SignInResult> {
    if (typeof code !== "string" || !verifier) {
      throw walkinError("INVALID_ARGUMENT", "signIn needs a provider, e.g. signIn(\"anonymous\"); without one it finishes a redirect sign-in and needs { code } and the verifier.");
    }
    const probe = context("");
    const found = (await probe.store({ type: "consumeVerifier", key: `code:${code}` })) as { provider: string; value: { verifierHash: string; step: Value } } | null;
    if (!found || found.value.verifierHash !== sha256(verifier)) {
      throw walkinError("UNAUTHENTICATED", "This sign-in link is invalid or has expired. Start the sign-in again.");
    }
    return context(found.provider).completeSignIn(found.value.step as never);
  }

  const signOut = mutation({
    args: { sessionId: v.optional(vSessionId) },
    handler: async (ctx, { sessionId }) => {
      const session = await callerSession(ctx);
      if (session) await endAuthSession(ctx.db, session);
      await endClientSession(ctx, config, sessionId);
      return null;
    },
  });

  /** Convex Auth's `isAuthenticated`: whether the call carries a valid token. */
  const isAuthenticated = query({
    args: {},
    handler: async (ctx): Promise<boolean> => (await ctx.auth.getUserIdentity()) !== null,
  });

  const currentSession = query({
    args: {},
    handler: async (ctx) => {
      const session = await sessionOf(ctx);
      return session ? { userId: session.userId, isAnonymous: session.isAnonymous, authSessionId: session._id, provider: session.provider } : null;
    },
  });

  const listSessions = query({
    args: {},
    handler: async (ctx) => {
      const session = await sessionOf(ctx);
      if (!session) return [];
      const all = (await ctx.db.query("authSessions").withIndex("by_userId", (q) => q.eq("userId", session.userId)).collect()) as unknown as AuthSessionDoc[];
      return all.filter((s) => s.expiresAt > Date.now()).map((s) => describeSession(s, session._id));
    },
  });

  const revokeSession = mutation({
    args: { authSessionId: v.id("authSessions") },
    handler: async (ctx, { authSessionId }) => {
      const userId = await requireUser(ctx);
      const target = (await ctx.db.get(authSessionId)) as AuthSessionDoc | null;
      // One past its expiry is ended too (a late activity write could extend it): `endedForGood`.
      if (!target || target.userId !== userId || endedForGood(target)) {
        throw walkinError("NOT_FOUND", "None of your sessions has this ID; it may have ended already.");
      }
      await endAuthSession(ctx.db, target);
      return null;
    },
  });

  const revokeOtherSessions = mutation({
    args: {},
    handler: async (ctx) => invalidateSessions(ctx, await requireUser(ctx), { except: [await getAuthSessionId(ctx)] }),
  });

  const auth: AuthHooks = defineEngineHooks<AuthHooksSpec>({
    authenticate: authenticator(config),
    onLoad: ({ modulePath, exports }: { modulePath: string; exports: Record<string, unknown> }) => {
      const name = Object.keys(exports).find((key) => exports[key] === store);
      if (!name) {
        throw walkinError("MISUSE", `walkinAuth's store is not exported from functions/${modulePath}. Export every function it returns: ` +
          "export const { auth, signIn, signOut, store, isAuthenticated, currentSession, listSessions, revokeSession, revokeOtherSessions } = walkinAuth({ … }).");
      }
      storePath = `${modulePath}:${name}`;
      return {
        crons: [{ name: "walkin auth cleanup", schedule: { kind: "interval" as const, ms: config.cleanup.intervalMs }, functionName: storePath, args: { op: { type: "cleanup" } } }],
      };
    },
    /** Adds the routes providers need (OAuth callbacks) to the app's `functions/http.ts` router. */
    addHttpRoutes(http: HttpRouter): void {
      for (const provider of config.providers) provider.addHttpRoutes?.(http, { store: (ctx, op) => runStore(ctx, withNetwork(op, () => bucketIpOf(ctx.request), false)), config });
    },
    /** The signed-in user's ID or null; same as `getAuthUserId(ctx)`. */
    getUserId: getAuthUserId,
    /** The auth session's ID or null; same as `getAuthSessionId(ctx)`. */
    getSessionId: getAuthSessionId,
  });

  return { auth, signIn, signOut, store, isAuthenticated, currentSession, listSessions, revokeSession, revokeOtherSessions };
}

/** The `auth` export: engine hooks, plus helpers for `functions/http.ts` and functions. */
export interface AuthHooksSpec extends EngineHooksSpec {
  addHttpRoutes(http: HttpRouter): void;
  getUserId: typeof getAuthUserId;
  getSessionId: typeof getAuthSessionId;
}

/**
 * What `signIn` answers: Walk-in's result (`kind`), plus the fields Convex Auth's clients and
 * tests read: `tokens: { token }` when signed in with a new token (there is no refresh token:
 * Walk-in's token is opaque and checked in every call), `started: true` for a started flow.
 * An unchanged sign-in has no `tokens` (Convex Auth's `tokens: null` would mean "signed out").
 */
export type SignInResponse = SignInResult & { tokens?: { token: string }; started?: true };

function withConvexAuthFields(result: SignInResult): SignInResponse {
  if (result.kind === "signedIn") return { ...result, tokens: { token: result.token } };
  if (result.kind === "started") return { ...result, started: true };
  return result;
}

/**
 * `walkinAuth` under Convex Auth's name, for code ported from `@convex-dev/auth/server`: the
 * same configuration shape (providers, session, signIn.maxFailedAttempsPerHour, callbacks);
 * keys Walk-in does not support are refused at startup with what to do instead.
 * @example
 * export const { auth, signIn, signOut, store, isAuthenticated } = convexAuth({ providers: [Anonymous] });
 */
export const convexAuth = walkinAuth;
export type AuthHooks = AuthHooksSpec & EngineHooks;

function findProvider(providers: AuthProvider[], id: string): AuthProvider {
  const provider = providers.find((p) => p.id === id);
  if (!provider) {
    throw walkinError("INVALID_ARGUMENT", `Unknown sign-in provider "${id.slice(0, 64)}". This app accepts: ${providers.map((p) => `"${p.id}"`).join(", ")}.`);
  }
  return provider;
}

async function sessionOf(ctx: { auth: Auth; db: DatabaseReader<AnyDataModel> }): Promise<AuthSessionDoc | null> {
  const id = await getAuthSessionId(ctx);
  return id ? ((await ctx.db.get(id)) as AuthSessionDoc | null) : null;
}

async function requireUser(ctx: { auth: Auth }): Promise<Id<"users">> {
  const userId = await getAuthUserId(ctx);
  if (!userId) throw walkinError("UNAUTHENTICATED", "Sign in to manage your sessions.");
  return userId;
}

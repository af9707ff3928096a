/**
 * `OAuthProvider`: sign-in through any OAuth 2.0 / OpenID Connect provider, with arctic's
 * `OAuth2Client`, PKCE (S256), `state`, and for OIDC a `nonce` and a verified ID token.
 *
 * The round trip, and what binds each step to the one before:
 *  1. `signIn(id)` (an action) makes `state`, a PKCE code verifier and the client's `verifier`,
 *     stores `{ sha256(verifier), code verifier, return URL, nonce }` under `state` (10 minutes),
 *     and answers the provider's authorization URL with `verifier`. The client keeps `verifier`.
 *     There is no HTTP response to set a cookie on, so this row is the binding.
 *  2. The provider sends the browser to the callback (callback.ts) with `code` and `state`; the
 *     row is consumed (once), the code exchanged, the account read, and a one-time sign-in code
 *     stored with the same verifier hash; the browser goes back to the app with `?code=`.
 *  3. The client calls `signIn` with `{ code }` and `verifier`; walkinAuth checks the hash.
 * Someone who makes a victim's browser finish *their* authorization gets nowhere: the code the
 * victim's app receives needs the verifier that only the attacker's client holds.
 */
import { CodeChallengeMethod, OAuth2Client, generateCodeVerifier } from "arctic";
import { walkinError } from "../../../values/index.js";
import { httpAction } from "../../../server/router.js";
import { randomSecret, sha256 } from "../../tokens.js";
import type { AuthProvider } from "../types.js";
import { handleCallback, type OAuthRuntime, type SavedState } from "./callback.js";
import { discoverer } from "./oidc.js";
import { configuredUrl, envName, required, returnUrl } from "./settings.js";
import type { OAuthProviderOptions } from "./types.js";

/** How long a started sign-in may take at the provider. */
const STATE_TTL_MS = 10 * 60_000;
const FETCH_TIMEOUT_MS = 10_000;
/** Parameters the flow sets itself; `authorizationParams` may not replace them. */
const RESERVED_PARAMS = new Set(["response_type", "client_id", "redirect_uri", "state", "scope", "code_challenge", "code_challenge_method", "nonce"]);

const fetchWithTimeout: typeof fetch = (input, init) => fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(FETCH_TIMEOUT_MS) });

/**
 * A provider for any OAuth 2.0 server (explicit endpoints) or OpenID Connect issuer (`issuer`).
 * GitHub, Google and OIDC are built on it; use it directly for another provider.
 *
 * @example
 * OAuthProvider({
 *   id: "gitlab",
 *   authorizationEndpoint: "https://gitlab.com/OAuth/authorize",
 *   tokenEndpoint: "https://gitlab.com/OAuth/token",
 *   scopes: ["read_user"],
 *   async profile(tokens, fetch) {
 *     const user = await (await fetch("https://gitlab.com/api/v4/user", { headers: { Authorization: `Bearer ${tokens.accessToken()}` } })).json();
 *     return { id: String(user.id), name: user.name, image: user.avatar_url };
 *   },
 * }); // client ID and secret from AUTH_GITLAB_ID / AUTH_GITLAB_SECRET, the app from SITE_URL
 */
export function OAuthProvider(options: OAuthProviderOptions): AuthProvider {
  const id = options.id;
  if (typeof id !== "string" || !/^[a-z0-9][a-z0-9_-]{0,63}$/i.test(id)) {
    throw new TypeError(`OAuthProvider: id must be 1 to 64 letters, digits, "-" or "_" (it is part of the callback path); received ${JSON.stringify(id)}.`);
  }
  if (!options.issuer && !(options.authorizationEndpoint && options.tokenEndpoint)) {
    throw new TypeError(`OAuthProvider "${id}": pass issuer (OpenID Connect discovery), or both authorizationEndpoint and tokenEndpoint.`);
  }
  for (const name of Object.keys(options.authorizationParams ?? {})) {
    if (RESERVED_PARAMS.has(name)) throw new TypeError(`OAuthProvider "${id}": authorizationParams may not set "${name}"; the sign-in flow sets it.`);
  }
  const label = options.label ?? id;
  const callbackPath = new URL(options.callbackUrl ?? `/api/auth/callback/${id}`, "http://localhost").pathname;
  const metadata = options.issuer ? discoverer(options.issuer, fetchWithTimeout) : null;

  /** Settings and endpoints, read at each use so that a missing env variable fails only sign-ins. */
  async function runtime(): Promise<OAuthRuntime> {
    const clientId = required(options.clientId, envName(id, "ID"), "clientId", label);
    const clientSecret = options.clientSecret === null ? null : required(options.clientSecret, envName(id, "SECRET"), "clientSecret", label);
    const siteUrl = configuredUrl(required(options.siteUrl, "SITE_URL", "siteUrl", label), "SITE_URL");
    const callback = options.callbackUrl && /^https?:\/\//i.test(options.callbackUrl)
      ? configuredUrl(options.callbackUrl, "callbackUrl")
      : new URL(callbackPath, configuredUrl(required(options.serverUrl, "WALKIN_URL", "serverUrl", label), "WALKIN_URL"));
    const oidc = metadata ? await metadata() : null;
    const authorizationEndpoint = options.authorizationEndpoint ?? oidc!.authorizationEndpoint;
    const tokenEndpoint = options.tokenEndpoint ?? oidc!.tokenEndpoint;
    const client = new OAuth2Client(clientId, clientSecret, callback.href);
    return { id, label, clientId, client, siteUrl, authorizationEndpoint, tokenEndpoint, oidc, profile: options.profile, fetch: fetchWithTimeout };
  }

  /** The app's `callbacks.redirect` decides when it has one (Convex Auth's rule); else `returnUrl`'s same-origin rule. */
  async function returnUrlFor(siteUrl: URL, redirectTo: unknown, redirect: ((params: { redirectTo: string }) => Promise<string>) | undefined): Promise<URL> {
    if (!redirect || typeof redirectTo !== "string") return returnUrl(siteUrl, redirectTo);
    const chosen = await redirect({ redirectTo });
    let url: URL;
    try {
      url = new URL(chosen);
    } catch {
      throw walkinError("MISUSE", "callbacks.redirect must return an absolute URL (https://…) to send the browser back to.");
    }
    // Sent as a redirect to the browser: a javascript: or data: URL would run in the app's name.
    if (url.protocol !== "https:" && url.protocol !== "http:") throw walkinError("MISUSE", `callbacks.redirect must return an http(s) URL, not ${url.protocol}.`);
    return url;
  }

  return {
    id,
    type: "oauth",
    async signIn(context) {
      const run = await runtime();
      const redirect = context.config.callbacks.redirect;
      const returnTo = await returnUrlFor(run.siteUrl, context.params.redirectTo, redirect);
      const appChosen = redirect !== undefined && typeof context.params.redirectTo === "string";
      const state = randomSecret();
      const verifier = randomSecret();
      const nonce = run.oidc ? randomSecret() : null;
      const saved: SavedState = { verifierHash: sha256(verifier), codeVerifier: generateCodeVerifier(), returnTo: returnTo.href, appChosen, nonce };
      await context.store({ type: "createVerifier", key: `state:${state}`, provider: id, value: { ...saved }, expiresAt: Date.now() + STATE_TTL_MS });
      const url = run.client.createAuthorizationURLWithPKCE(run.authorizationEndpoint, state, CodeChallengeMethod.S256, saved.codeVerifier, options.scopes);
      if (saved.nonce) url.searchParams.set("nonce", saved.nonce);
      for (const [name, value] of Object.entries(options.authorizationParams ?? {})) url.searchParams.set(name, value);
      return { kind: "redirect", redirect: url.href, verifier };
    },
    addHttpRoutes(http, helpers) {
      http.route({ path: callbackPath, method: "GET", handler: httpAction((ctx, request) => handleCallback(ctx, request, helpers, runtime)) });
    },
  };
}

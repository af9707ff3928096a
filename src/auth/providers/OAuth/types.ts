/**
 * The options of `OAuthProvider` and what a profile function answers. Kept apart from the
 * factory so that GitHub, Google and OIDC (and an app's own provider) import only types.
 */
import type { OAuth2Tokens } from "arctic";
import type { JWTPayload } from "jose";

/** The account a provider vouched for, as the user document will hold it. */
export interface OAuthProfile {
  /** The provider's stable ID for the account (never an email: emails change hands). */
  id: string;
  /** Only an address the provider says is verified. */
  email?: string;
  name?: string;
  /** An avatar URL. */
  image?: string;
}

/** The claims of an ID token whose signature, issuer, audience, expiry and nonce were checked. */
export type IdTokenClaims = JWTPayload & { sub: string };

/**
 * Turns the provider's tokens into the account. `fetch` gives up after 10 seconds; `idToken`
 * holds the verified claims for an OIDC provider (`issuer` set), else null.
 */
export type OAuthProfileFn = (tokens: OAuth2Tokens, fetch: typeof globalThis.fetch, idToken: IdTokenClaims | null) => Promise<OAuthProfile> | OAuthProfile;

export interface OAuthProviderOptions {
  /** What clients pass to `signIn(id)`; also the callback path and the env variable names. */
  id: string;
  /** How errors name the provider (default: the id). */
  label?: string;
  /** Default: the env variable `AUTH_<ID>_ID` (`AUTH_GITHUB_ID` for "github"). */
  clientId?: string;
  /** Default: `AUTH_<ID>_SECRET`. `null` for a public client (PKCE alone, no secret). */
  clientSecret?: string | null;
  /** OIDC: endpoints come from `<issuer>/.well-known/openid-configuration`, and the ID token is verified. */
  issuer?: string;
  /** Plain OAuth 2.0 (or to override discovery). */
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
  scopes: string[];
  /** Extra query parameters for the authorization URL (e.g. `{ prompt: "select_account" }`). */
  authorizationParams?: Record<string, string>;
  profile: OAuthProfileFn;
  /** The app's URL, where the browser returns with `?code=` (default: env `SITE_URL`). */
  siteUrl?: string;
  /** This server's public URL, to build the callback URL (default: env `WALKIN_URL`). */
  serverUrl?: string;
  /**
   * The redirect URI registered with the provider: an absolute URL, or a path resolved against
   * `serverUrl` (default "/api/auth/callback/<id>"). Its path is where the route is served.
   */
  callbackUrl?: string;
}

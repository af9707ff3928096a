/**
 * `walkin/auth/providers/OIDC`: sign-in with any OpenID Connect issuer (Okta, Auth0, Keycloak,
 * Microsoft Entra, a company SSO…). Endpoints come from the issuer's discovery document; the
 * ID token is verified against its JWKS (signature, issuer, audience, expiry, nonce). The
 * account ID is the token's `sub`; the email is kept only when `email_verified` is true.
 */
import type { AuthProvider } from "../types.js";
import { claimsProfile } from "../OAuth/oidc.js";
import { OAuthProvider } from "../OAuth/provider.js";
import type { OAuthProfileFn } from "../OAuth/types.js";

export interface OIDCOptions {
  /** What clients pass to `signIn(id)`; also the callback path and the env variable names. */
  id: string;
  /** How errors name the provider (default: the id). */
  label?: string;
  /** The issuer's identifier, e.g. "https://example.okta.com" (must match the tokens' `iss`). */
  issuer: string;
  /** Default: env `AUTH_<ID>_ID` ("okta" → `AUTH_OKTA_ID`). */
  clientId?: string;
  /** Default: env `AUTH_<ID>_SECRET`; `null` for a public client (PKCE only). */
  clientSecret?: string | null;
  /** Default ["openid", "email", "profile"]; "openid" is required. */
  scopes?: string[];
  /** Extra authorization parameters (e.g. `{ prompt: "login" }`). */
  authorizationParams?: Record<string, string>;
  /** The account from the verified claims (default: sub, verified email, name, picture). */
  profile?: OAuthProfileFn;
  /** The app's URL, where the browser returns (default: env `SITE_URL`). */
  siteUrl?: string;
  /** This server's public URL, for the callback URL (default: env `WALKIN_URL`). */
  serverUrl?: string;
  /** The redirect URI registered with the issuer (default `<serverUrl>/api/auth/callback/<id>`). */
  callbackUrl?: string;
}

/**
 * @example
 * // env: AUTH_OKTA_ID, AUTH_OKTA_SECRET, SITE_URL, WALKIN_URL
 * walkinAuth({ providers: [OIDC({ id: "okta", issuer: "https://example.okta.com" })] });
 */
export function OIDC(options: OIDCOptions): AuthProvider {
  const scopes = options.scopes ?? ["openid", "email", "profile"];
  if (!scopes.includes("openid")) throw new TypeError(`OIDC "${options.id}": scopes must include "openid", or the issuer sends no ID token.`);
  return OAuthProvider({
    ...options,
    scopes,
    // An issuer is set, so every sign-in has verified claims before the profile runs.
    profile: options.profile ?? ((_tokens, _fetch, claims) => claimsProfile(claims!)),
  });
}

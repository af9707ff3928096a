/**
 * `walkin/auth/providers/Google`: sign-in with Google, as OpenID Connect (see ../OIDC). The
 * account ID is Google's `sub`; the email is kept only when Google says it is verified.
 */
import type { AuthProvider } from "../types.js";
import { OIDC } from "../OIDC/index.js";

export interface GoogleOptions {
  /** The provider's ID for `signIn(id)` and the callback path (default "google"). */
  id?: string;
  /** Default: env `AUTH_GOOGLE_ID`. */
  clientId?: string;
  /** Default: env `AUTH_GOOGLE_SECRET`. */
  clientSecret?: string;
  /** Default "https://accounts.google.com" (tests point it at a local issuer). */
  issuer?: string;
  /** Default ["openid", "email", "profile"]. */
  scopes?: string[];
  /** Extra authorization parameters, e.g. `{ prompt: "select_account" }` or `{ hd: "example.com" }`. */
  authorizationParams?: Record<string, string>;
  /** The app's URL, where the browser returns (default: env `SITE_URL`). */
  siteUrl?: string;
  /** This server's public URL, for the callback URL (default: env `WALKIN_URL`). */
  serverUrl?: string;
  /** The redirect URI registered with Google (default `<serverUrl>/api/auth/callback/google`). */
  callbackUrl?: string;
}

/**
 * @example
 * // env: AUTH_GOOGLE_ID, AUTH_GOOGLE_SECRET, SITE_URL, WALKIN_URL
 * walkinAuth({ providers: [Anonymous, Google()] });
 */
export function Google(options: GoogleOptions = {}): AuthProvider {
  return OIDC({ ...options, id: options.id ?? "google", label: "Google", issuer: options.issuer ?? "https://accounts.google.com" });
}

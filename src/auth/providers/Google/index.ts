/**
 * `walkin/auth/providers/Google`: sign-in with Google, as OpenID Connect (see ../OIDC). The
 * account ID is Google's `sub`; the email is kept only when Google says it is verified.
 */
import { walkinError } from "../../../values/index.js";
import type { AuthProvider } from "../types.js";
import { OIDC } from "../OIDC/index.js";
import { claimsProfile } from "../OAuth/oidc.js";
import type { OAuthProfileFn } from "../OAuth/types.js";

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
  /**
   * Extra authorization parameters, e.g. `{ prompt: "select_account" }`, or `{ hd: "example.com" }`
   * to admit only that Google Workspace domain's accounts (`"*"`: any Workspace account, no
   * personal one): the ID token's `hd` claim is checked at the callback.
   */
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
  const hd = options.authorizationParams?.hd;
  return OIDC({
    ...options,
    id: options.id ?? "google",
    label: "Google",
    issuer: options.issuer ?? "https://accounts.google.com",
    ...(hd ? { profile: workspaceProfile(hd) } : {}),
  });
}

/**
 * The default profile, for an account of the Workspace domain `hd` only. The `hd` authorization
 * parameter alone restricts nothing: it preselects accounts in Google's chooser, and the visitor
 * can delete it from the authorization URL (which the client holds) and sign in with any account.
 * The signed ID token's `hd` claim says which domain the account belongs to (none for a personal
 * account), so it is what Google says to check, and what is checked here.
 */
function workspaceProfile(hd: string): OAuthProfileFn {
  const domain = hd.toLowerCase();
  return (_tokens, _fetch, claims) => {
    const accountDomain = typeof claims!.hd === "string" ? claims!.hd.toLowerCase() : null;
    if (domain === "*" ? accountDomain === null : accountDomain !== domain) {
      const wanted = domain === "*" ? "a Google Workspace account" : `a Google account of ${domain}`;
      throw walkinError("UNAUTHENTICATED", `This app admits only ${wanted}; sign in with one.`);
    }
    return claimsProfile(claims!);
  };
}

/**
 * `walkin/auth/providers/GitHub`: sign-in with a GitHub OAuth app (or a GitHub App's user
 * authorization), PKCE and state included. The account ID is GitHub's numeric user ID (a login
 * can be renamed and then taken by someone else); the email is the primary one, and only when
 * GitHub says it is verified (`GET /user/emails`, which needs the `user:email` scope).
 */
import type { OAuth2Tokens } from "arctic";
import { walkinError } from "../../../values/index.js";
import type { AuthProvider } from "../types.js";
import { OAuthProvider } from "../OAuth/provider.js";
import type { OAuthProfile } from "../OAuth/types.js";

export interface GitHubOptions {
  /** The provider's ID for `signIn(id)` and the callback path (default "github"). */
  id?: string;
  /** Default: env `AUTH_GITHUB_ID` (for another id: `AUTH_<ID>_ID`). */
  clientId?: string;
  /** Default: env `AUTH_GITHUB_SECRET`. */
  clientSecret?: string;
  /** The app's URL, where the browser returns (default: env `SITE_URL`). */
  siteUrl?: string;
  /** This server's public URL, for the callback URL (default: env `WALKIN_URL`). */
  serverUrl?: string;
  /** The callback URL registered with GitHub (default `<serverUrl>/api/auth/callback/github`). */
  callbackUrl?: string;
  /** Default ["read:user", "user:email"]. */
  scopes?: string[];
  /** Default "https://api.github.com" (GitHub Enterprise: "https://HOST/api/v3"). */
  apiBaseUrl?: string;
  /** Default "https://github.com/login/OAuth/authorize". */
  authorizationEndpoint?: string;
  /** Default "https://github.com/login/OAuth/access_token". */
  tokenEndpoint?: string;
}

interface GitHubUser {
  id?: unknown;
  login?: unknown;
  name?: unknown;
  avatar_url?: unknown;
}

interface GitHubEmail {
  email?: unknown;
  primary?: unknown;
  verified?: unknown;
}

/**
 * @example
 * // functions/auth.ts; env: AUTH_GITHUB_ID, AUTH_GITHUB_SECRET, SITE_URL, WALKIN_URL
 * walkinAuth({ providers: [Anonymous, GitHub()] });
 * // functions/http.ts
 * const http = httpRouter();
 * auth.addHttpRoutes(http);
 * export default http;
 * // the browser
 * await authClient.signIn("github", { redirectTo: "/settings" });
 */
export function GitHub(options: GitHubOptions = {}): AuthProvider {
  const apiBaseUrl = (options.apiBaseUrl ?? "https://api.github.com").replace(/\/+$/, "");
  return OAuthProvider({
    id: options.id ?? "github",
    label: "GitHub",
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    siteUrl: options.siteUrl,
    serverUrl: options.serverUrl,
    callbackUrl: options.callbackUrl,
    authorizationEndpoint: options.authorizationEndpoint ?? "https://github.com/login/OAuth/authorize",
    tokenEndpoint: options.tokenEndpoint ?? "https://github.com/login/OAuth/access_token",
    scopes: options.scopes ?? ["read:user", "user:email"],
    profile: (tokens, fetch) => githubProfile(apiBaseUrl, tokens, fetch),
  });
}

async function githubProfile(apiBaseUrl: string, tokens: OAuth2Tokens, fetch: typeof globalThis.fetch): Promise<OAuthProfile> {
  const headers = {
    Authorization: `Bearer ${tokens.accessToken()}`,
    Accept: "application/vnd.github+json",
    "User-Agent": "walkin-auth",
    "X-GitHub-Api-Version": "2022-11-28",
  };
  const userResponse = await fetch(`${apiBaseUrl}/user`, { headers });
  if (!userResponse.ok) throw walkinError("INTERNAL", `GitHub's GET /user answered HTTP ${userResponse.status}.`);
  const user = (await userResponse.json()) as GitHubUser;
  if (typeof user.id !== "number" && typeof user.id !== "string") throw walkinError("INTERNAL", "GitHub's GET /user answered without a user id.");
  const text = (value: unknown) => (typeof value === "string" && value !== "" ? value : undefined);
  return { id: String(user.id), email: await verifiedPrimaryEmail(apiBaseUrl, headers, fetch), name: text(user.name) ?? text(user.login), image: text(user.avatar_url) };
}

async function verifiedPrimaryEmail(apiBaseUrl: string, headers: Record<string, string>, fetch: typeof globalThis.fetch): Promise<string | undefined> {
  const response = await fetch(`${apiBaseUrl}/user/emails`, { headers });
  // 403/404: the user:email scope was not granted (or a GitHub App lacks the permission): no email.
  if (response.status === 403 || response.status === 404) return undefined;
  if (!response.ok) throw walkinError("INTERNAL", `GitHub's GET /user/emails answered HTTP ${response.status}.`);
  const emails = (await response.json()) as GitHubEmail[];
  const primary = Array.isArray(emails) ? emails.find((e) => e.primary === true && e.verified === true && typeof e.email === "string") : undefined;
  return typeof primary?.email === "string" ? primary.email.toLowerCase() : undefined;
}

/**
 * The settings of an OAuth provider that may come from the environment (client ID and secret,
 * the app's and the server's public URLs), read when a sign-in runs rather than when the
 * provider is built: functions/auth.ts is loaded by tools (codegen, typecheck) that have no
 * secrets, and a missing variable should fail the sign-in with its name, not the whole app.
 *
 * Also the one place that decides where a browser may be sent back to: `redirectTo` must be on
 * the app's own origin, so the callback can never be turned into an open redirect.
 */
import { walkinError } from "../../../values/index.js";

/** `AUTH_GITHUB_ID` for "github", `AUTH_MY_SSO_ID` for "my-sso". */
export function envName(providerId: string, suffix: "ID" | "SECRET"): string {
  return `AUTH_${providerId.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}_${suffix}`;
}

/**
 * The option if given, else the environment variable, else a MISUSE error that names both.
 * `label` is how the error names the provider ("GitHub({ … })").
 */
export function required(option: string | undefined, variable: string, optionName: string, label: string): string {
  const value = option ?? process.env[variable];
  if (value === undefined || value === "") {
    throw walkinError("MISUSE", `${label} sign-in is not configured: set ${variable} in the server's environment, or pass ${optionName} to ${label}({ … }).`);
  }
  return value;
}

/** Parses a configured URL, naming the setting when it is not one. */
export function configuredUrl(value: string, setting: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw walkinError("MISUSE", `${setting} must be an absolute http(s) URL like https://app.example.com; received ${JSON.stringify(value.slice(0, 200))}.`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw walkinError("MISUSE", `${setting} must be an http(s) URL; received ${JSON.stringify(value.slice(0, 200))}.`);
  }
  return url;
}

/**
 * Where the callback sends the browser back: `redirectTo` (a path like "/settings", or an
 * absolute URL) resolved against the app's URL, refused unless it stays on the app's origin.
 * Resolving then comparing origins catches every trick at once ("//evil.example",
 * "/\\evil.example", "https://app.example.com@evil.example", "javascript:…").
 */
export function returnUrl(siteUrl: URL, redirectTo: unknown): URL {
  if (redirectTo === undefined || redirectTo === null) return new URL(siteUrl);
  if (typeof redirectTo !== "string" || redirectTo.length > 2048) {
    throw walkinError("INVALID_ARGUMENT", "params.redirectTo must be a string: a path on this site like \"/settings\".");
  }
  let url: URL | null = null;
  try {
    url = new URL(redirectTo, siteUrl);
  } catch {
    url = null;
  }
  if (!url || url.origin !== siteUrl.origin) {
    throw walkinError("INVALID_ARGUMENT", `params.redirectTo must be a path on this site (like "/settings") or a URL starting with ${siteUrl.origin}; other sites are refused.`);
  }
  url.hash = "";
  return url;
}

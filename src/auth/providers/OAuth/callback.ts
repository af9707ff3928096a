/**
 * The callback route of an OAuth provider (`GET <callback path>?code=…&state=…`): the second
 * step of the round trip described in provider.ts. Its answer is a 302 back to the app with a
 * one-time `?code=`, or a small HTML page saying what went wrong (400 when the request or the
 * provider's answer was refused, 502 when the provider could not be reached, 500 when the
 * provider is misconfigured here).
 *
 * A callback replayed, or two racing with one `state`: consuming the state row is one
 * transaction that deletes it; of two concurrent ones, the second conflicts, re-runs, finds no
 * row and is refused. The state is consumed before anything else, so every failure after it
 * (even the provider saying "access_denied") burns it: a sign-in is retried from the start.
 */
import type { OAuth2Client } from "arctic";
import { OAuth2RequestError, type OAuth2Tokens } from "arctic";
import { isWalkinError, walkinError, type Value } from "../../../values/index.js";
import type { ActionCtx } from "../../config.js";
import { randomSecret } from "../../tokens.js";
import type { ProviderHttpHelpers } from "../types.js";
import { verifyIdToken, type OidcMetadata } from "./oidc.js";
import { returnUrl } from "./settings.js";
import type { OAuthProfile, OAuthProfileFn } from "./types.js";

/** How long the app has to bring the one-time code back. */
const CODE_TTL_MS = 2 * 60_000;

/** What step 1 stored under `state:<state>`. */
export interface SavedState {
  verifierHash: string;
  codeVerifier: string;
  returnTo: string;
  /** `returnTo` is what the app's `callbacks.redirect` chose: decided, not checked against SITE_URL again. */
  appChosen?: boolean;
  nonce: string | null;
}

/** A provider's settings and endpoints as resolved for one request. */
export interface OAuthRuntime {
  id: string;
  label: string;
  clientId: string;
  client: OAuth2Client;
  siteUrl: URL;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  oidc: OidcMetadata | null;
  profile: OAuthProfileFn;
  fetch: typeof fetch;
}

class CallbackFailure extends Error {
  constructor(readonly status: 400 | 500 | 502, message: string) {
    super(message);
  }
}

const refused = (message: string) => new CallbackFailure(400, message);

export async function handleCallback(ctx: ActionCtx, request: Request, helpers: ProviderHttpHelpers, runtime: () => Promise<OAuthRuntime>): Promise<Response> {
  try {
    return await finishAuthorization(ctx, new URL(request.url).searchParams, helpers, runtime);
  } catch (error) {
    const failure = asFailure(error);
    if (failure.status !== 400) console.error("[walkin auth] OAuth callback failed:", error);
    return errorPage(failure.status, failure.message);
  }
}

async function finishAuthorization(ctx: ActionCtx, query: URLSearchParams, helpers: ProviderHttpHelpers, runtime: () => Promise<OAuthRuntime>): Promise<Response> {
  const state = query.get("state");
  if (!state) throw refused("The provider's answer has no state. Start the sign-in again from the app.");
  const run = await runtime();
  const found = (await helpers.store(ctx, { type: "consumeVerifier", key: `state:${state}` })) as { provider: string; value: SavedState } | null;
  if (!found || found.provider !== run.id) throw refused("This sign-in link is invalid, expired or already used. Start the sign-in again from the app.");
  const saved = found.value;
  const error = query.get("error");
  if (error) throw refused(error === "access_denied" ? "The sign-in was cancelled." : `${run.label} did not sign you in (${error.slice(0, 100)}).`);
  const code = query.get("code");
  if (!code) throw refused("The provider's answer has no code. Start the sign-in again from the app.");

  const tokens = await exchange(run, code, saved.codeVerifier);
  const claims = run.oidc ? await verifyIdToken(run.oidc, idTokenOf(tokens), { clientId: run.clientId, nonce: saved.nonce ?? "" }) : null;
  const profile = checked(await run.profile(tokens, run.fetch, claims));

  // Checked again (SITE_URL may have changed since), unless the app's callbacks.redirect chose it:
  // that callback decides where a sign-in may return, other origins included. Both are stored on
  // the server with the state, out of the client's reach.
  const target = saved.appChosen ? new URL(saved.returnTo) : returnUrl(run.siteUrl, saved.returnTo);
  const oneTimeCode = randomSecret();
  const step = { mode: "signInOrUp", providerAccountId: profile.id, profile: profileFields(profile) };
  await helpers.store(ctx, { type: "createVerifier", key: `code:${oneTimeCode}`, provider: run.id, value: { verifierHash: saved.verifierHash, step }, expiresAt: Date.now() + CODE_TTL_MS });
  target.searchParams.set("code", oneTimeCode);
  return new Response(null, { status: 302, headers: { Location: target.href, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer" } });
}

async function exchange(run: OAuthRuntime, code: string, codeVerifier: string): Promise<OAuth2Tokens> {
  let tokens: OAuth2Tokens;
  try {
    tokens = await run.client.validateAuthorizationCode(run.tokenEndpoint, code, codeVerifier);
  } catch (error) {
    if (error instanceof OAuth2RequestError) throw refused(`${run.label} refused the sign-in code (${error.code}). Start the sign-in again from the app.`);
    throw new CallbackFailure(502, `${run.label} could not be reached to finish the sign-in. Try again in a moment.`);
  }
  // GitHub answers a bad code with HTTP 200 and an `error` field.
  const data = tokens.data as { error?: unknown; access_token?: unknown };
  if (typeof data.error === "string") throw refused(`${run.label} refused the sign-in code (${data.error.slice(0, 100)}). Start the sign-in again from the app.`);
  if (typeof data.access_token !== "string") throw new CallbackFailure(502, `${run.label} answered without an access token.`);
  return tokens;
}

function idTokenOf(tokens: OAuth2Tokens): string {
  const idToken = (tokens.data as { id_token?: unknown }).id_token;
  if (typeof idToken !== "string") throw refused("The provider answered without an ID token; check that the scopes include \"openid\".");
  return idToken;
}

function checked(profile: OAuthProfile): OAuthProfile {
  if (!profile || typeof profile.id !== "string" || profile.id === "" || profile.id.length > 255) {
    throw walkinError("MISUSE", "An OAuth profile function must return { id } with the provider's account ID as a non-empty string.");
  }
  return profile;
}

/** The user document's fields: only strings, cut to sane lengths (they come from another service). */
function profileFields(profile: OAuthProfile): Record<string, Value> {
  const fields: Record<string, Value> = {};
  for (const [name, max] of [["email", 254], ["name", 200], ["image", 2048]] as const) {
    const value = profile[name];
    if (typeof value === "string" && value !== "") fields[name] = value.slice(0, max);
  }
  return fields;
}

function asFailure(error: unknown): CallbackFailure {
  if (error instanceof CallbackFailure) return error;
  if (isWalkinError(error)) {
    if (error.code === "UNAUTHENTICATED" || error.code === "INVALID_ARGUMENT") return new CallbackFailure(400, error.message);
    if (error.code === "MISUSE") return new CallbackFailure(500, error.message);
  }
  return new CallbackFailure(502, "The sign-in could not be finished: the provider answered unexpectedly. Try again in a moment.");
}

function errorPage(status: number, message: string): Response {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
    `<title>Sign-in failed</title></head><body><h1>Sign-in failed</h1><p>${escapeHtml(message)}</p></body></html>`;
  return new Response(html, { status, headers: { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer" } });
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

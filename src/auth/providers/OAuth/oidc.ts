/**
 * OpenID Connect: discovery (`<issuer>/.well-known/openid-configuration`, fetched once per
 * provider and kept; a failed fetch is retried on the next sign-in) and verification of the ID
 * token against the issuer's JWKS: signature, `iss`, `aud` (and `azp` when there are several
 * audiences), `exp`/`nbf`/`iat`, and the `nonce` this sign-in sent. jose caches the keys and
 * refetches them when a token names a key it has not seen (the issuer rotated its keys).
 */
import { createRemoteJWKSet, jwtVerify } from "jose";
import { walkinError } from "../../../values/index.js";
import { configuredUrl } from "./settings.js";
import type { IdTokenClaims, OAuthProfile } from "./types.js";

export interface OidcMetadata {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  jwks: ReturnType<typeof createRemoteJWKSet>;
  algorithms: string[];
}

/** Asymmetric algorithms only: "none" and HMAC (keyed with the client secret) are refused. */
const ASYMMETRIC = /^(RS|PS|ES)(256|384|512)$|^EdDSA$|^Ed25519$/;

/** A function answering the issuer's metadata, fetched on first use and then kept. */
export function discoverer(issuer: string, fetchWithTimeout: typeof fetch): () => Promise<OidcMetadata> {
  let cached: Promise<OidcMetadata> | null = null;
  return () => {
    cached ??= discover(issuer, fetchWithTimeout).catch((error: unknown) => {
      cached = null;
      throw error;
    });
    return cached;
  };
}

async function discover(issuer: string, fetchWithTimeout: typeof fetch): Promise<OidcMetadata> {
  const base = configuredUrl(issuer, "The OIDC issuer").href.replace(/\/$/, "");
  const where = `${base}/.well-known/openid-configuration`;
  const response = await fetchWithTimeout(where, { headers: { Accept: "application/json" } });
  if (!response.ok) throw walkinError("INTERNAL", `OIDC discovery at ${where} answered HTTP ${response.status}.`);
  const doc = (await response.json()) as Record<string, unknown>;
  const text = (field: string): string => {
    const value = doc[field];
    if (typeof value !== "string" || value === "") throw walkinError("INTERNAL", `OIDC discovery at ${where} has no ${field}.`);
    return value;
  };
  // The document must be the issuer's own (OpenID Connect Discovery §4.3): a mismatch means a
  // misconfigured issuer URL, and tokens would fail the `iss` check anyway.
  if (text("issuer").replace(/\/$/, "") !== base) {
    throw walkinError("MISUSE", `OIDC discovery at ${where} is for issuer ${text("issuer")}, not ${issuer}. Set issuer to exactly the issuer's identifier.`);
  }
  const advertised = Array.isArray(doc.id_token_signing_alg_values_supported) ? doc.id_token_signing_alg_values_supported : ["RS256"];
  const algorithms = advertised.filter((alg): alg is string => typeof alg === "string" && ASYMMETRIC.test(alg));
  return {
    issuer: text("issuer"),
    authorizationEndpoint: text("authorization_endpoint"),
    tokenEndpoint: text("token_endpoint"),
    jwks: createRemoteJWKSet(new URL(text("jwks_uri"))),
    algorithms: algorithms.length > 0 ? algorithms : ["RS256"],
  };
}

/** The verified claims, or an UNAUTHENTICATED error saying what was wrong. */
export async function verifyIdToken(metadata: OidcMetadata, idToken: string, expected: { clientId: string; nonce: string }): Promise<IdTokenClaims> {
  let claims;
  try {
    ({ payload: claims } = await jwtVerify(idToken, metadata.jwks, {
      issuer: metadata.issuer,
      audience: expected.clientId,
      algorithms: metadata.algorithms,
      requiredClaims: ["sub", "exp", "iat"],
      clockTolerance: 60,
    }));
  } catch (error) {
    throw walkinError("UNAUTHENTICATED", `The ID token was refused: ${(error as Error).message}.`, undefined, error);
  }
  if (Array.isArray(claims.aud) && claims.aud.length > 1 && claims.azp !== expected.clientId) {
    throw walkinError("UNAUTHENTICATED", "The ID token was refused: it names several audiences and was not issued to this app (azp).");
  }
  if (claims.nonce !== expected.nonce) throw walkinError("UNAUTHENTICATED", "The ID token was refused: its nonce is not the one this sign-in sent.");
  if (typeof claims.sub !== "string" || claims.sub === "") throw walkinError("UNAUTHENTICATED", "The ID token was refused: it has no subject.");
  return claims as IdTokenClaims;
}

/**
 * The default OIDC profile: `sub`, and the standard claims (the email only when verified).
 *
 * @example
 * // keep the default, and add a claim of the issuer's own
 * OIDC({ id: "corp", issuer, profile: (_tokens, _fetch, claims) => ({ ...claimsProfile(claims!), name: String(claims!.preferred_username) }) });
 */
export function claimsProfile(claims: IdTokenClaims): OAuthProfile {
  const text = (value: unknown) => (typeof value === "string" && value !== "" ? value : undefined);
  const email = claims.email_verified === true ? text(claims.email) : undefined;
  return { id: claims.sub, email: email?.toLowerCase(), name: text(claims.name), image: text(claims.picture) };
}

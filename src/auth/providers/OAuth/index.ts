/**
 * The generic OAuth 2.0 / OpenID Connect provider that GitHub, Google and OIDC are built on,
 * for an app that signs in with another provider (see provider.ts for the round trip).
 */
export { OAuthProvider } from "./provider.js";
export { claimsProfile } from "./oidc.js";
export type { IdTokenClaims, OAuthProfile, OAuthProfileFn, OAuthProviderOptions } from "./types.js";

/**
 * `walkin/auth/browser`: the client half of `walkin/auth`, with no React and nothing
 * Node-only. An `AuthClient` keeps the auth token (in localStorage by default, shared by the
 * tabs), signs the `WalkinClient` in with it, and watches `auth:currentSession` so that a
 * session revoked or expired on the server signs the page out on its own.
 * `walkin/auth/react` renders the same state.
 *
 * @example
 * import { AuthClient } from "walkin/auth/browser";
 * const auth = new AuthClient(client);
 * await auth.handleRedirect(); // completes an OAuth sign-in if the URL has ?code=
 * auth.subscribe(() => console.log(auth.getSnapshot().isAuthenticated));
 * await auth.signIn("anonymous");
 */
export { AuthClient, type AuthClientOptions, type SignInOutcome, type SignInParams } from "./authClient.js";
export type { AuthStorageOption, StorageLike } from "./tokenStorage.js";
export type { Navigate } from "./redirect.js";
export type { ChannelLike } from "./tabs.js";
export type { AuthCallOptions, AuthSnapshot, SessionRefresh } from "./types.js";

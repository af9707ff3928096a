/**
 * `walkin/auth/react`: the client half of `walkin/auth` in React, over the framework-free
 * `AuthClient` of `walkin/auth/browser`. Put `<AuthProvider>` inside `<WalkinProvider>` (or
 * give it the client), and inside `<SessionProvider>` if sign-in should refresh session IDs.
 *
 * @example
 * import { AuthProvider, Authenticated, Unauthenticated, useAuthActions } from "walkin/auth/react";
 * <AuthProvider client={client}>
 *   <Authenticated><Chat /></Authenticated>
 *   <Unauthenticated><Welcome /></Unauthenticated>
 * </AuthProvider>
 * // in Welcome:
 * const { signIn } = useAuthActions();
 * <button onClick={() => void signIn("anonymous")}>Start chatting</button>
 */
export { AuthProvider, type AuthProviderProps } from "./provider.js";
export { AuthLoading, Authenticated, Unauthenticated, useAuth, useAuthActions, useConvexAuth, type AuthActions, type AuthState } from "./hooks.js";
export type { SignInOutcome, SignInParams } from "../browser/index.js";

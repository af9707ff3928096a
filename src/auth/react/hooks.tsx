/**
 * The auth hooks and components: they read the provider's `AuthClient` through
 * `useSyncExternalStore` (so every component sees the same state in one render, and a server
 * render reports "loading") and call it for sign-in and sign-out.
 */
import { useMemo, useSyncExternalStore, type ReactNode } from "react";
import type { AuthSnapshot, SignInOutcome, SignInParams } from "../browser/index.js";
import { useAuthHolder, useSessionRefresh } from "./provider.js";

/** What `useAuth` returns. */
export interface AuthState {
  /** True while a stored token has not been checked yet (and during server rendering). */
  isLoading: boolean;
  isAuthenticated: boolean;
  /** Signed in as an anonymous user (`signIn("anonymous")`), who can later sign up and keep the ID. */
  isAnonymous: boolean;
  userId: string | null;
}

/** What `useAuthActions` returns; both functions keep their identity across renders. */
export interface AuthActions {
  /** Signs in with a provider; see `AuthClient.signIn`. Rejects with the server's `WalkinError`. */
  signIn(provider?: string, params?: SignInParams): Promise<SignInOutcome>;
  /** Ends the auth session, here and in the other tabs. */
  signOut(): Promise<void>;
}

function useSnapshot(): AuthSnapshot {
  const holder = useAuthHolder();
  return useSyncExternalStore(holder.subscribe, holder.getSnapshot, holder.getServerSnapshot);
}

/**
 * Whether and as whom this page is signed in; re-renders when that changes (another tab signed
 * out, the session was revoked on the server, …).
 *
 * @example
 * const { isLoading, isAuthenticated, isAnonymous } = useAuth();
 * if (isLoading) return <Spinner />;
 * return isAuthenticated && !isAnonymous ? <Account /> : <SignUpButton />;
 */
export function useAuth(): AuthState {
  const { isLoading, isAuthenticated, isAnonymous, userId } = useSnapshot();
  return useMemo(() => ({ isLoading, isAuthenticated, isAnonymous, userId }), [isLoading, isAuthenticated, isAnonymous, userId]);
}

/**
 * Convex's `useConvexAuth`, for code written against `convex/react` (import it from here):
 * `isLoading` and `isAuthenticated` of `useAuth`, which `<Authenticated>` & co. also follow.
 *
 * @example
 * const { isLoading, isAuthenticated } = useConvexAuth();
 */
export function useConvexAuth(): { isLoading: boolean; isAuthenticated: boolean } {
  const { isLoading, isAuthenticated } = useSnapshot();
  return useMemo(() => ({ isLoading, isAuthenticated }), [isLoading, isAuthenticated]);
}

/**
 * `signIn` and `signOut`. Inside a `<SessionProvider>` they also refresh the session ID: on a
 * successful sign-in the server carries the session's data over to the new ID; on sign-out the
 * new ID carries nothing.
 *
 * @example
 * const { signIn } = useAuthActions();
 * const send = useMutation(api.messages.send);
 * const onSend = async () => {
 *   await signIn("anonymous"); // the same user again if already signed in anonymously
 *   await send({ body });
 * };
 */
export function useAuthActions(): AuthActions {
  const holder = useAuthHolder();
  const session = useSessionRefresh();
  return useMemo(
    () => ({
      signIn: (provider, params) => holder.get().signIn(provider, params, { session: session() }),
      signOut: () => holder.get().signOut({ session: session() }),
    }),
    [holder, session],
  );
}

/**
 * Renders its children only once the page is signed in (anonymously or not).
 *
 * @example
 * <Authenticated><Chat /></Authenticated>
 * <Unauthenticated><SignInForm /></Unauthenticated>
 * <AuthLoading><Spinner /></AuthLoading>
 */
export function Authenticated({ children }: { children?: ReactNode }) {
  const { isLoading, isAuthenticated } = useSnapshot();
  return !isLoading && isAuthenticated ? <>{children}</> : null;
}

/**
 * Renders its children only when the page is known to be signed out.
 *
 * @example
 * <Unauthenticated><button onClick={() => void signIn("anonymous")}>Start</button></Unauthenticated>
 */
export function Unauthenticated({ children }: { children?: ReactNode }) {
  const { isLoading, isAuthenticated } = useSnapshot();
  return !isLoading && !isAuthenticated ? <>{children}</> : null;
}

/**
 * Renders its children while a stored token is being checked (and during server rendering).
 *
 * @example
 * <AuthLoading><Spinner /></AuthLoading>
 */
export function AuthLoading({ children }: { children?: ReactNode }) {
  return useSnapshot().isLoading ? <>{children}</> : null;
}

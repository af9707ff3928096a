/**
 * `AuthProvider`: one `AuthClient` per mounted provider, handed to the auth hooks below it.
 *
 * Lifecycle, step by step:
 *   1. Rendering creates nothing (StrictMode calls state initializers twice and drops one
 *      result; a server render must not touch window or storage): the provider only makes an
 *      `AuthClientHolder`, which is inert, and the hooks read "loading" from it.
 *   2. The first effect (or the first `signIn`/`signOut`, which a child's effect may call
 *      before the provider's own effect runs) creates the `AuthClient`; it reads the stored
 *      token, and the hooks re-render with the real state.
 *   3. The provider's effect also finishes an OAuth redirect (`?code=`): the code is taken out
 *      of the URL before the sign-in starts, so StrictMode's second effect finds none.
 *   4. StrictMode unmounts and remounts synchronously: the client is closed only when no
 *      mount is left by the next microtask, so the remount keeps the same client and any
 *      sign-in it started.
 */
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import type { WalkinClient } from "../../browser/index.js";
import { WalkinProvider, useOptionalWalkin } from "../../react/context.js";
import { useOptionalSessionContext } from "../../sessions/react/provider.js";
import { walkinError } from "../../values/errors.js";
import { AuthClient, type AuthClientOptions, type AuthSnapshot, type SessionRefresh } from "../browser/index.js";

export interface AuthProviderProps {
  /**
   * The client to sign in; default the one of the enclosing `<WalkinProvider>`. Given here, it
   * is also provided to `useQuery` & co. below. Must not change while mounted (nor may the
   * options below: the provider's `AuthClient` is made once).
   */
  client?: WalkinClient;
  /** Where the token is kept (default "localStorage": one sign-in for every tab). */
  storage?: AuthClientOptions["storage"];
  /** The storage key (default "walkin-auth-token"); give each app on one origin its own. */
  storageKey?: string;
  /** The module path where `walkinAuth()` is exported (default "auth", i.e. functions/auth.ts). */
  module?: string;
  /** Leaves for an OAuth provider (default: `window.location.href = url`). */
  navigate?: (url: string) => void;
  children?: ReactNode;
}

const LOADING: AuthSnapshot = Object.freeze({ isLoading: true, isAuthenticated: false, isAnonymous: false, userId: null, token: null });

/** Owns the provider's `AuthClient`, created on first use (see the file header). */
export class AuthClientHolder {
  private auth: AuthClient | undefined;
  private mounts = 0;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly make: () => AuthClient) {}

  /** The client, created now if this is its first use. */
  get(): AuthClient {
    if (!this.auth) {
      const auth = (this.auth = this.make());
      auth.subscribe(() => this.notify());
      this.notify();
    }
    return this.auth;
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  };

  getSnapshot = (): AuthSnapshot => this.auth?.getSnapshot() ?? LOADING;

  getServerSnapshot = (): AuthSnapshot => LOADING;

  /** Called by the provider's effect; the returned release closes the client once no mount is left. */
  mount(): () => void {
    this.mounts++;
    this.get();
    return () => {
      this.mounts--;
      queueMicrotask(() => {
        if (this.mounts > 0 || !this.auth) return;
        this.auth.close();
        this.auth = undefined;
      });
    };
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

const AuthContext = createContext<AuthClientHolder | undefined>(undefined);

/**
 * Signs the Walk-in client in with the stored token and provides the auth hooks
 * (`useAuth`, `useAuthActions`, `<Authenticated>` …). Inside a `<SessionProvider>`, sign-in
 * and sign-out also refresh the session ID.
 *
 * @example
 * const client = new WalkinClient(import.meta.env.VITE_WALKIN_URL);
 * createRoot(el).render(
 *   <AuthProvider client={client}>
 *     <App />
 *   </AuthProvider>,
 * );
 */
export function AuthProvider(props: AuthProviderProps) {
  const fromContext = useOptionalWalkin();
  const client = props.client ?? fromContext;
  if (client === undefined) {
    throw walkinError(
      "MISUSE",
      "<AuthProvider> needs a Walk-in client. Did you forget to pass client={...} to <AuthProvider>, " +
        "or to put it inside <WalkinProvider client={...}>?",
    );
  }
  const session = useSessionRefresh();
  const [holder] = useState(
    () =>
      new AuthClientHolder(
        () => new AuthClient(client, { storage: props.storage, storageKey: props.storageKey, module: props.module, navigate: props.navigate }),
      ),
  );
  useEffect(() => {
    const release = holder.mount();
    holder
      .get()
      .handleRedirect({ session: session() })
      .catch((error: unknown) => console.error("Walk-in auth: finishing the sign-in from the OAuth redirect failed:", error));
    return release;
  }, [holder, session]);

  const tree = <AuthContext.Provider value={holder}>{props.children}</AuthContext.Provider>;
  return props.client && props.client !== fromContext ? <WalkinProvider client={props.client}>{tree}</WalkinProvider> : tree;
}

/** The provider's holder; throws a clear error outside one. */
export function useAuthHolder(): AuthClientHolder {
  const context = useContext(AuthContext);
  if (context === undefined) {
    throw walkinError(
      "MISUSE",
      "Auth hooks and components need an auth client, and this component has none above it. " +
        "Did you forget to wrap your app in <AuthProvider>?",
    );
  }
  return context;
}

/**
 * A getter for the nearest `SessionProvider`'s session, read when called (so a sign-in uses
 * the ID current at that moment); it returns undefined outside a `SessionProvider` and during
 * server rendering. The getter is stable while the provider's source is.
 */
export function useSessionRefresh(): () => SessionRefresh | undefined {
  const source = useOptionalSessionContext()?.source;
  return useCallback(() => {
    const sessionId = source?.current;
    if (source === undefined || sessionId === undefined) return undefined;
    // Read when the call's turn comes, not when it was queued: an earlier sign-in or sign-out
    // may have switched the ID by then (the rows it moved are under the new one).
    return {
      get sessionId() {
        return source.current ?? sessionId;
      },
      refresh: (beforeUpdate) => source.refresh(beforeUpdate),
    };
  }, [source]);
}

// @vitest-environment jsdom
/**
 * `walkin/auth/react` against the real `walkinAuth({ providers: [Anonymous] })`: the provider
 * and hooks under StrictMode, the components, revocation re-rendering, the sessions
 * integration, misuse messages, and (with the stand-in backend, which has an OAuth-like
 * provider) finishing a `?code=` redirect once.
 */
import { act, cleanup, render, renderHook, screen, waitFor } from "@testing-library/react";
import { StrictMode, useEffect, type ReactNode } from "react";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { WalkinClient } from "../../browser/index.js";
import { WalkinProvider } from "../../react/index.js";
import { SessionProvider, useSessionId } from "../../sessions/react/index.js";
import type { SessionId } from "../../sessions/sessionId.js";
import { isWalkinError } from "../../values/errors.js";
import { AuthClient } from "../browser/index.js";
import { fake as fakeApi, startFakeAuthBackend } from "../browser/fixtures/fakeAuth.js";
import { api, startRealAuthBackend } from "../browser/fixtures/realAuth.js";
import { AuthLoading, AuthProvider, Authenticated, Unauthenticated, useAuth, useAuthActions, type AuthProviderProps } from "./index.js";

let backend: Awaited<ReturnType<typeof startRealAuthBackend>>;
beforeAll(async () => {
  backend = await startRealAuthBackend();
});
afterEach(() => {
  cleanup();
  localStorage.clear();
  sessionStorage.clear();
  window.history.replaceState(null, "", "/");
  vi.restoreAllMocks();
});
afterAll(() => backend.close());

function strictWrapper(client: WalkinClient, props: Omit<AuthProviderProps, "children" | "client"> = {}) {
  return ({ children }: { children: ReactNode }) => (
    <StrictMode>
      <AuthProvider client={client} {...props}>
        {children}
      </AuthProvider>
    </StrictMode>
  );
}

function Gates() {
  return (
    <>
      <AuthLoading>loading</AuthLoading>
      <Unauthenticated>signed out</Unauthenticated>
      <Authenticated>signed in</Authenticated>
    </>
  );
}

describe("AuthProvider and the auth hooks", () => {
  it("signs in under StrictMode, renders the gates, and keeps action identities stable", async () => {
    const client = backend.client();
    const close = vi.spyOn(AuthClient.prototype, "close");
    const { result, rerender, unmount } = renderHook(() => ({ auth: useAuth(), actions: useAuthActions() }), {
      wrapper: strictWrapper(client),
    });
    await waitFor(() => expect(result.current.auth).toEqual({ isLoading: false, isAuthenticated: false, isAnonymous: false, userId: null }));
    const actions = result.current.actions;
    await act(() => actions.signIn("anonymous"));
    expect(result.current.auth).toMatchObject({ isAuthenticated: true, isAnonymous: true, userId: expect.any(String) });
    expect(await client.query(api.app.whoAmI, {})).toBe(result.current.auth.userId);
    expect(localStorage.getItem("walkin-auth-token")).toMatch(/./);
    const state = result.current.auth;
    rerender();
    expect(result.current.actions).toBe(actions);
    expect(result.current.actions.signIn).toBe(actions.signIn);
    expect(result.current.auth).toBe(state);
    expect(close).not.toHaveBeenCalled(); // StrictMode's remount kept the one client
    await act(() => result.current.actions.signOut());
    expect(result.current.auth.isAuthenticated).toBe(false);
    expect(localStorage.getItem("walkin-auth-token")).toBe(null);
    unmount();
    await act(async () => {});
    expect(close).toHaveBeenCalledTimes(1);
  });

  it("a child that signs in from its mount effect (StrictMode runs it twice) makes one user", async () => {
    const client = backend.client();
    const before = (await client.query(api.app.userCount, {})) as number;
    function AutoSignIn() {
      const { signIn } = useAuthActions();
      useEffect(() => void signIn("anonymous"), [signIn]);
      return <Gates />;
    }
    render(<AutoSignIn />, { wrapper: strictWrapper(client) });
    await screen.findByText("signed in");
    expect(screen.queryByText("signed out")).toBe(null);
    expect(await client.query(api.app.userCount, {})).toBe(before + 1);
  });

  it("shows loading for a stored token, then signed in; a revoked session re-renders signed out", async () => {
    const first = backend.client();
    const seed = new AuthClient(first, { storage: "localStorage", channel: null });
    await seed.signIn("anonymous");
    seed.close();
    const client = backend.client();
    render(<Gates />, { wrapper: strictWrapper(client) });
    expect(screen.getByText("loading")).toBeTruthy();
    await screen.findByText("signed in");
    const { authSessionId } = (await first.query(api.auth.currentSession, {}))!;
    await first.mutation(api.auth.revokeSession, { authSessionId });
    await screen.findByText("signed out");
    expect(localStorage.getItem("walkin-auth-token")).toBe(null);
  });

  it("inside a SessionProvider, sign-in refreshes the session ID and carries its data over", async () => {
    const client = backend.client();
    const wrapper = ({ children }: { children: ReactNode }) => (
      <StrictMode>
        <WalkinProvider client={client}>
          <AuthProvider>
            <SessionProvider>{children}</SessionProvider>
          </AuthProvider>
        </WalkinProvider>
      </StrictMode>
    );
    const { result } = renderHook(() => ({ session: useSessionId(), actions: useAuthActions() }), { wrapper });
    const oldId = result.current.session[0] as SessionId;
    await client.mutation(api.app.addDraft, { sessionId: oldId, text: "kept" });
    await act(() => result.current.actions.signIn("anonymous"));
    const newId = result.current.session[0] as SessionId;
    expect(newId).not.toBe(oldId);
    expect(await client.query(api.app.drafts, { sessionId: newId })).toEqual(["kept"]);
    await act(() => result.current.actions.signOut());
    expect(result.current.session[0]).not.toBe(newId);
  });

  it("finishes a ?code= redirect once on mount, under StrictMode, and cleans the URL", async () => {
    const fake = await startFakeAuthBackend();
    try {
      localStorage.setItem("walkin-auth-token:verifier", "v-1");
      window.history.replaceState(null, "", "/welcome?code=abc");
      const client = fake.client();
      render(<Gates />, { wrapper: strictWrapper(client) });
      await screen.findByText("signed in");
      expect(window.location.pathname + window.location.search).toBe("/welcome");
      expect(localStorage.getItem("walkin-auth-token:verifier")).toBe(null);
      expect(await client.query(fakeApi.counts!, {})).toEqual({ users: 1, sessions: 1 }); // the code was used once
    } finally {
      await fake.close();
    }
  });
});

describe("misuse", () => {
  const thrownBy = (ui: () => unknown) => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      renderHook(ui);
    } catch (error) {
      return error;
    }
    return undefined;
  };

  it.each([
    ["useAuth", () => useAuth()],
    ["useAuthActions", () => useAuthActions()],
    ["<Authenticated>", () => Authenticated({ children: null })],
  ])("%s outside <AuthProvider> says how to fix it", (_name, hook) => {
    const error = thrownBy(hook);
    expect(isWalkinError(error) && error.code).toBe("MISUSE");
    expect(String(error)).toContain("Did you forget to wrap your app in <AuthProvider>?");
  });

  it("<AuthProvider> with neither a client prop nor a <WalkinProvider> says how to fix it", () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    expect(() => render(<AuthProvider>x</AuthProvider>)).toThrow(/pass client=\{\.\.\.\} to <AuthProvider>, or to put it inside <WalkinProvider/);
  });
});

// @vitest-environment jsdom
/**
 * A page loaded back from the OAuth provider (`?code=` in its URL, no token yet) shows
 * "loading" until the code is exchanged, never "signed out" in between (found in a review:
 * `<Unauthenticated>` content flashed before the sign-in landed). Against the real engine and
 * server with the stand-in auth functions of `fixtures/fakeAuth.ts`, jsdom's storage and URL.
 */
import { act, cleanup, render, waitFor } from "@testing-library/react";
import { createElement, StrictMode } from "react";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { AuthProvider, useAuth } from "../react/index.js";
import { startFakeAuthBackend } from "./fixtures/fakeAuth.js";
import { AuthClient, type AuthSnapshot } from "./index.js";

let backend: Awaited<ReturnType<typeof startFakeAuthBackend>>;
const opened: AuthClient[] = [];
beforeAll(async () => {
  backend = await startFakeAuthBackend();
});
afterEach(() => {
  cleanup();
  opened.splice(0).forEach((auth) => auth.close());
  localStorage.clear();
  sessionStorage.clear();
  window.history.replaceState(null, "", "/");
  vi.restoreAllMocks();
});
afterAll(() => backend.close());

function open() {
  const auth = new AuthClient(backend.client(), { storage: "localStorage", channel: null, locks: null, navigate: () => {} });
  opened.push(auth);
  return auth;
}

/** Leaves for the provider (which stores this browser's verifier), then comes back with `?code=`: a new page load, no token. */
async function comeBackFromProvider(verifier?: string) {
  const leaving = open();
  await leaving.signIn("oauth");
  leaving.close();
  if (verifier !== undefined) localStorage.setItem("walkin-auth-token:verifier", verifier);
  window.history.replaceState(null, "", "/done?code=abc");
}

const signedOut = (snapshot: { isLoading: boolean; isAuthenticated: boolean }) => !snapshot.isLoading && !snapshot.isAuthenticated;

describe("a page loaded with an OAuth ?code=", () => {
  it("reports loading from the start until the exchange signs it in, and never signed out in between", async () => {
    await comeBackFromProvider();
    const auth = open();
    const seen: AuthSnapshot[] = [auth.getSnapshot()];
    auth.subscribe(() => seen.push(auth.getSnapshot()));
    const finishing = auth.handleRedirect();
    seen.push(auth.getSnapshot());
    expect(await finishing).toMatchObject({ kind: "signedIn", isAnonymous: false });
    expect(seen[0]).toMatchObject({ isLoading: true, isAuthenticated: false });
    expect(seen.filter(signedOut)).toEqual([]);
    expect(auth.getSnapshot()).toMatchObject({ isLoading: false, isAuthenticated: true, isAnonymous: false });
  });

  it("reports signed out once an exchange that fails has failed", async () => {
    await comeBackFromProvider("not-the-verifier-the-provider-gave");
    const auth = open();
    expect(auth.getSnapshot()).toMatchObject({ isLoading: true });
    await expect(auth.handleRedirect()).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
    expect(auth.getSnapshot()).toMatchObject({ isLoading: false, isAuthenticated: false, token: null });
  });

  it("the app's own ?code= (no OAuth sign-in started here) does not make the page load", () => {
    window.history.replaceState(null, "", "/invite?code=INVITE-123");
    const auth = open();
    expect(auth.getSnapshot()).toMatchObject({ isLoading: false, isAuthenticated: false });
  });

  it("useAuth under <AuthProvider> (StrictMode) goes from loading to signed in without rendering signed out", async () => {
    await comeBackFromProvider();
    const rendered: ReturnType<typeof useAuth>[] = [];
    function Probe() {
      rendered.push(useAuth());
      return null;
    }
    const client = backend.client();
    await act(async () => {
      render(createElement(StrictMode, null, createElement(AuthProvider, { client, navigate: () => {} }, createElement(Probe))));
    });
    await waitFor(() => expect(rendered.at(-1)).toMatchObject({ isLoading: false, isAuthenticated: true }));
    expect(rendered.filter(signedOut)).toEqual([]);
    expect(window.location.search).toBe("");
  });
});

// @vitest-environment jsdom
/**
 * The OAuth verifier of the browser auth client, each case failing before its fix (found in a
 * review): one abandoned long ago no longer takes over the app's own `?code=`, and one kept
 * with `storage: "memory"` survives the provider's redirect. Against the real engine and server
 * (the stand-in auth functions of `fixtures/fakeAuth.ts`), with jsdom's localStorage and URL.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startFakeAuthBackend } from "./fixtures/fakeAuth.js";
import { AuthClient, type AuthClientOptions } from "./index.js";

let backend: Awaited<ReturnType<typeof startFakeAuthBackend>>;
const opened: AuthClient[] = [];
beforeAll(async () => {
  backend = await startFakeAuthBackend();
});
afterEach(() => {
  opened.splice(0).forEach((auth) => auth.close());
  localStorage.clear();
  sessionStorage.clear();
  window.history.replaceState(null, "", "/");
});
afterAll(() => backend.close());

function open(options: AuthClientOptions = {}) {
  const client = backend.client();
  const auth = new AuthClient(client, { storage: "localStorage", channel: null, locks: null, ...options });
  opened.push(auth);
  return { auth, client };
}

describe("the OAuth verifier", () => {
  it("an OAuth sign-in abandoned an hour ago does not take over the app's own ?code= (an invite page)", async () => {
    const navigate = vi.fn();
    const { auth } = open({ navigate });
    await auth.signIn("oauth"); // the user leaves for the provider, then comes back without finishing
    expect(navigate).toHaveBeenCalled();

    // An hour later, the app's own page with its own ?code= (an invite, a promo code):
    window.history.replaceState(null, "", "/invite?code=INVITE-123");
    const later = Date.now() + 60 * 60_000;
    const now = vi.spyOn(Date, "now").mockReturnValue(later);
    const page = open();
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    let finishing: Promise<unknown>;
    try {
      finishing = page.auth.handleRedirect(); // takes the code synchronously, if it does
    } finally {
      now.mockRestore();
    }
    const outcome = await finishing.catch((error: unknown) => error);
    errors.mockRestore();
    expect(window.location.search).toBe("?code=INVITE-123"); // the app still has its code
    expect(outcome).toBe(null); // and no sign-in was attempted with it
  });

  it('OAuth with storage: "memory" finishes after the provider sends the browser back (a page load)', async () => {
    const navigate = vi.fn();
    const { auth } = open({ storage: "memory", navigate });
    await auth.signIn("oauth");
    expect(navigate).toHaveBeenCalled();

    // The provider sends the browser back: a new page load, so page memory starts empty.
    vi.resetModules();
    const reloaded = (await import("./index.js")) as typeof import("./index.js");
    window.history.replaceState(null, "", "/done?code=abc");
    const client = backend.client();
    const back = new reloaded.AuthClient(client, { storage: "memory", channel: null, locks: null });
    opened.push(back);
    const outcome = await back.handleRedirect();
    expect(outcome).toMatchObject({ kind: "signedIn", isAnonymous: false });
    expect(window.location.search).toBe("");
  });
});

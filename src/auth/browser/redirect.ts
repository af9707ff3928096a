/**
 * The browser side of an OAuth round trip: leaving for the provider, and taking the `?code=`
 * it sends the browser back with. Kept apart from `AuthClient` so that the one place touching
 * `window.location` and `history` is small and easy to fake.
 */
import type { TokenStorage } from "./tokenStorage.js";

/** Goes to the provider's page (default: assigns `window.location.href`). */
export type Navigate = (url: string) => void;

export const navigateWithLocation: Navigate = (url) => {
  window.location.href = url;
};

/** How long a stored verifier waits for its `?code=` (the provider's pages, then the 2-minute code). */
const VERIFIER_TTL_MS = 15 * 60_000;

/** Keeps the verifier of a redirect that starts now (with the time, see VERIFIER_TTL_MS). */
export function storeVerifier(storage: TokenStorage, verifierKey: string, verifier: string): void {
  storage.set(verifierKey, verifier);
  storage.set(`${verifierKey}:at`, String(Date.now()));
}

/**
 * Whether the current URL holds a `?code=` that `takeRedirectCode` would take (one with a
 * fresh verifier of this browser), without taking it: a page that loads with one is signing in.
 */
export function hasRedirectCode(storage: TokenStorage, verifierKey: string): boolean {
  if (typeof window === "undefined") return false;
  if (new URL(window.location.href).searchParams.get("code") === null) return false;
  return storage.get(verifierKey) !== null && isFresh(storage, verifierKey);
}

/** A redirect abandoned long ago (the user came back without finishing it) is not fresh: the `?code=` is the app's. */
function isFresh(storage: TokenStorage, verifierKey: string): boolean {
  const startedAt = Number(storage.get(`${verifierKey}:at`) ?? Date.now());
  return Date.now() - startedAt <= VERIFIER_TTL_MS;
}

/**
 * The `code` of the current URL, with the verifier stored when the redirect started; null when
 * there is no code or no verifier (the `?code=` then belongs to the app, and is left alone).
 * Removes both at once, before the sign-in runs: a code is single-use, so a second mount
 * (React StrictMode) or a reload must not send it again.
 */
export function takeRedirectCode(storage: TokenStorage, verifierKey: string): { code: string; verifier: string } | null {
  if (typeof window === "undefined") return null;
  const url = new URL(window.location.href);
  const code = url.searchParams.get("code");
  if (code === null) return null;
  const verifier = storage.get(verifierKey);
  if (verifier === null) return null;
  const fresh = isFresh(storage, verifierKey);
  storage.remove(verifierKey);
  storage.remove(`${verifierKey}:at`);
  if (!fresh) return null;
  url.searchParams.delete("code");
  window.history.replaceState(window.history.state, "", url.toString());
  return { code, verifier };
}

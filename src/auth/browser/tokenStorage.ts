/**
 * Where the auth token (and an OAuth verifier) is kept: like the session ID stores of
 * `walkin/sessions/browser`, on the same never-throwing wrapper (a storage that throws is
 * replaced by memory, with one console warning, for the rest of the page's life).
 */
import { withMemoryFallback, type StorageLike } from "../../sessions/browser/fallbackStorage.js";

/**
 * The part of the Web Storage API used here; `localStorage` and `sessionStorage` are ones.
 *
 * @example
 * const secure: StorageLike = { getItem: (k) => vault.read(k), setItem: (k, v) => vault.write(k, v), removeItem: (k) => vault.delete(k) };
 * new AuthClient(client, { storage: secure });
 */
export type { StorageLike };

/**
 * Where tokens are kept: a Web Storage by name, page memory, or your own `StorageLike`.
 *
 * @example
 * <AuthProvider storage="sessionStorage"> // signed in per tab
 */
export type AuthStorageOption = "localStorage" | "sessionStorage" | "memory" | StorageLike;

/** A never-throwing view of a storage. */
export interface TokenStorage {
  /** "localStorage" is shared by the tabs of an origin, so only it syncs across tabs. */
  readonly kind: "localStorage" | "sessionStorage" | "memory" | "custom";
  get(key: string): string | null;
  set(key: string, value: string): void;
  remove(key: string): void;
}

/** Page memory for "memory": shared by every `AuthClient` of the page, gone on reload. */
const pageMemory = new Map<string, string>();

/**
 * @example
 * const storage = openTokenStorage("localStorage");
 * storage.set("walkin-auth-token", token);
 */
export function openTokenStorage(option: AuthStorageOption = "localStorage"): TokenStorage {
  if (option === "memory") return memoryStorage(typeof window === "undefined" ? new Map() : pageMemory);
  if (typeof option === "object") return withFallback("custom", () => option);
  const kind = option;
  return withFallback(kind, () => {
    if (typeof window === "undefined") return undefined; // server rendering: memory, silently
    return window[kind]; // may throw (SecurityError in sandboxed frames)
  });
}

function memoryStorage(values: Map<string, string>): TokenStorage {
  return {
    kind: "memory",
    get: (key) => values.get(key) ?? null,
    set: (key, value) => void values.set(key, value),
    remove: (key) => void values.delete(key),
  };
}

function withFallback(kind: TokenStorage["kind"], open: () => StorageLike | undefined): TokenStorage {
  const storage = withMemoryFallback({ owner: "Walk-in auth", kind, what: "the auth token" }, open);
  return {
    kind,
    get: (key) => storage.getItem(key),
    set: (key, value) => storage.setItem(key, value),
    remove: (key) => storage.removeItem(key),
  };
}

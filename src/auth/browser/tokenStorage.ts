/**
 * Where the auth token (and an OAuth verifier) is kept. Like the session ID stores of
 * `walkin/sessions/browser`, this never throws: a storage that throws (Safari private mode, a
 * full quota, a sandboxed iframe) is replaced by memory, with one console warning, for the
 * rest of the page's life. It is not built on those stores because a token must also be
 * removed (sign-out), which a session ID store cannot do.
 */

/**
 * The part of the Web Storage API used here; `localStorage` and `sessionStorage` are ones.
 *
 * @example
 * const secure: StorageLike = { getItem: (k) => vault.read(k), setItem: (k, v) => vault.write(k, v), removeItem: (k) => vault.delete(k) };
 * new AuthClient(client, { storage: secure });
 */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

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
  if (typeof option === "object") return withMemoryFallback("custom", () => option);
  const kind = option;
  return withMemoryFallback(kind, () => {
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

/**
 * The first exception (on access, read, write or removal) switches to memory for good,
 * keeping what this page last wrote, and warns once. The warning never includes a value.
 */
function withMemoryFallback(kind: TokenStorage["kind"], open: () => StorageLike | undefined): TokenStorage {
  const written = new Map<string, string>(); // what this page wrote, to keep across the switch
  let memory: TokenStorage | undefined;
  let raw: StorageLike | undefined;
  const fail = (error: unknown) => {
    memory = memoryStorage(written);
    console.warn(
      `Walk-in auth: ${kind} is not usable (${error instanceof Error ? error.message : String(error)}); ` +
        "keeping the auth token in memory, so it will not survive a reload.",
    );
  };
  try {
    raw = open();
    if (raw === undefined) memory = memoryStorage(written);
  } catch (error) {
    fail(error);
  }
  const attempt = <T>(work: (storage: StorageLike) => T, fallback: (memory: TokenStorage) => T): T => {
    if (memory || !raw) return fallback(memory!);
    try {
      return work(raw);
    } catch (error) {
      fail(error);
      return fallback(memory!);
    }
  };
  return {
    kind,
    get: (key) => attempt((s) => s.getItem(key), (m) => m.get(key)),
    set(key, value) {
      written.set(key, value);
      attempt((s) => s.setItem(key, value), () => {});
    },
    remove(key) {
      written.delete(key);
      attempt((s) => s.removeItem(key), () => {});
    },
  };
}

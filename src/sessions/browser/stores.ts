/**
 * Where a session ID is kept, for one storage key. A store is synchronous (so the first render
 * already has the ID) and never throws: a storage that throws (Safari private mode, a full
 * quota, cookies disabled, a sandboxed iframe) is replaced by memory, with one console warning,
 * for the rest of the page's life (see fallbackStorage.ts).
 */
import { withMemoryFallback, type StorageLike } from "./fallbackStorage.js";

/** One key's worth of storage for a session ID. */
export interface SessionIdStore {
  /** Where the value lives: "tab" stores are copied into duplicated tabs, "browser" ones are shared. */
  readonly kind: "sessionStorage" | "localStorage" | "memory" | "cookie";
  get(): string | undefined;
  set(id: string): void;
  /** Values written by other tabs (`storage` events), where the storage has them. */
  subscribe?(onExternalChange: (value: string | undefined) => void): () => void;
}

const memoryValues = new Map<string, string>();

/**
 * Memory only: a reload starts a new session. Shared by every source in this page with the
 * same key; on a server (no `window`) each store is private, so concurrent server renders
 * never share an ID.
 */
export function memoryStore(key: string): SessionIdStore {
  const values = typeof window === "undefined" ? new Map<string, string>() : memoryValues;
  return {
    kind: "memory",
    get: () => values.get(key),
    set: (id) => void values.set(key, id),
  };
}

/** Per tab (the default): `sessionStorage` survives reloads but not closing the tab. */
export function sessionStorageStore(key: string): SessionIdStore {
  return webStorageStore("sessionStorage", key);
}

/** Per browser: `localStorage` is shared by every tab of the origin. */
export function localStorageStore(key: string): SessionIdStore {
  const store = webStorageStore("localStorage", key);
  return {
    ...store,
    subscribe(onExternalChange) {
      if (typeof window === "undefined") return () => {};
      const listener = (event: StorageEvent) => {
        if (event.key === key) onExternalChange(event.newValue ?? undefined);
      };
      window.addEventListener("storage", listener);
      return () => window.removeEventListener("storage", listener);
    },
  };
}

export interface CookieStoreOptions {
  /** Add `Secure` (default: when the page is served over https). */
  secure?: boolean;
  /** Lifetime in seconds (default 400 days, the most browsers keep). */
  maxAgeSeconds?: number;
}

/**
 * Per browser, in a client-readable cookie, so a server render can read the same ID (see
 * `readSessionIdCookie` in `walkin/sessions`) and render the session's own data.
 *
 * CSRF trade-off: the browser now sends the session ID with every HTTP request to the origin,
 * including requests a third-party page triggers. `SameSite=Lax` keeps it off cross-site
 * subrequests and POSTs, but a top-level cross-site GET still carries it, so the server must
 * use the cookie only to *read* (server rendering), never to authorize writes: Walk-in
 * functions take the session ID as an explicit argument over the WebSocket, which a forged
 * request cannot supply. The cookie is not `HttpOnly` (the client must read it), so an XSS
 * bug can read it, exactly as it could read `localStorage`.
 */
export function cookieStore(key: string, options: CookieStoreOptions = {}): SessionIdStore {
  const name = encodeURIComponent(key);
  const read = (): string | null => {
    for (const part of document.cookie.split(";")) {
      const [k, ...rest] = part.trim().split("=");
      if (k === name) return decodeURIComponent(rest.join("="));
    }
    return null;
  };
  const write = (id: string, maxAge: number) => {
    if (typeof navigator !== "undefined" && navigator.cookieEnabled === false) throw new Error("cookies are disabled");
    const secure = options.secure ?? (typeof location !== "undefined" && location.protocol === "https:");
    document.cookie = `${name}=${encodeURIComponent(id)}; Path=/; Max-Age=${maxAge}; SameSite=Lax${secure ? "; Secure" : ""}`;
  };
  // The cookie is this store's only key.
  const raw: StorageLike = {
    getItem: read,
    setItem(_key, id) {
      write(id, options.maxAgeSeconds ?? 400 * 24 * 60 * 60);
      if (read() !== id) throw new Error("the cookie was not stored");
    },
    removeItem: () => write("", 0),
  };
  return keyStore("cookie", key, () => (typeof document === "undefined" ? undefined : raw));
}

function webStorageStore(kind: "sessionStorage" | "localStorage", key: string): SessionIdStore {
  return keyStore(kind, key, () => {
    if (typeof window === "undefined") return undefined; // server rendering: memory, silently
    return window[kind]; // may throw (SecurityError in sandboxed frames)
  });
}

/** One key of a never-throwing storage, falling back to this page's shared memory. */
function keyStore(kind: SessionIdStore["kind"], key: string, open: () => StorageLike | undefined): SessionIdStore {
  const memory = typeof window === "undefined" ? new Map<string, string>() : memoryValues;
  const storage = withMemoryFallback({ owner: "Walk-in sessions", kind, what: "the session ID" }, open, memory);
  return {
    kind,
    get: () => storage.getItem(key) ?? undefined,
    set: (id) => storage.setItem(key, id),
  };
}

/**
 * A never-throwing view of a key/value storage, shared by the session ID stores and the auth
 * token storage of `walkin/auth/browser`. The first exception (opening, reading, writing or
 * removing: Safari private mode, a full quota, cookies disabled, a sandboxed iframe) switches
 * it to page memory for good, keeping what this page wrote, and warns once; the warning
 * never includes a value. A missing storage (server rendering) is memory without a warning.
 */

/** The part of the Web Storage API used here; `localStorage` and `sessionStorage` are ones. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface FallbackStorage extends StorageLike {
  /** True once writes go to memory only (they will not survive a reload). */
  readonly inMemory: boolean;
}

/**
 * @param label who warns and about what, e.g. `{ owner: "Walk-in sessions", kind: "sessionStorage", what: "the session ID" }`
 * @param open the storage; may throw; undefined means "none here" (memory, silently)
 * @param memory the map to fall back to (page-wide maps let stores of one key share a value)
 */
export function withMemoryFallback(
  label: { owner: string; kind: string; what: string },
  open: () => StorageLike | undefined,
  memory: Map<string, string> = new Map(),
): FallbackStorage {
  let raw: StorageLike | undefined;
  let failed = false;
  const written = new Map<string, string | null>(); // this page's writes, kept across the switch
  const fail = (error: unknown) => {
    failed = true;
    for (const [key, value] of written) value === null ? memory.delete(key) : memory.set(key, value);
    console.warn(
      `${label.owner}: ${label.kind} is not usable (${error instanceof Error ? error.message : String(error)}); ` +
        `keeping ${label.what} in memory, so it will not survive a reload.`,
    );
  };
  try {
    raw = open();
  } catch (error) {
    fail(error);
  }
  const attempt = <T>(work: (storage: StorageLike) => T, inMemory: () => T): T => {
    if (failed || !raw) return inMemory();
    try {
      return work(raw);
    } catch (error) {
      fail(error);
      return inMemory();
    }
  };
  return {
    get inMemory() {
      return failed || !raw;
    },
    getItem: (key) => attempt((s) => s.getItem(key), () => memory.get(key) ?? null),
    setItem(key, value) {
      written.set(key, value);
      attempt((s) => s.setItem(key, value), () => void memory.set(key, value));
    },
    removeItem(key) {
      written.set(key, null);
      attempt((s) => s.removeItem(key), () => void memory.delete(key));
    },
  };
}

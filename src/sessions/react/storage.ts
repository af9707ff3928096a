/**
 * Ready `useStorage` hooks for `SessionProvider`, in the `(key, initialValue) => [value,
 * setValue]` shape of usehooks-ts' `useLocalStorage`. Each is tagged with the store it reads,
 * so the provider builds its `SessionIdSource` over that store directly (getting tab sync and
 * duplicate-tab detection); called on their own, they are plain hooks over the same store.
 */
import { useCallback, useReducer, useState, useSyncExternalStore } from "react";
import {
  cookieStore,
  localStorageStore,
  memoryStore,
  sessionStorageStore,
  type SessionIdStore,
} from "../browser/index.js";

/** A storage hook: usehooks-ts' `useLocalStorage`/`useSessionStorage`, or one of the hooks below. */
export type UseStorage = (key: string, initialValue: string | undefined) => readonly [unknown, (value: string) => void, ...unknown[]];

export const STORE = Symbol.for("walkin.sessions.store");

/** A ready hook: knows its store and whether it is per tab or per browser. */
export interface StoreHook {
  (key: string, initialValue: string | undefined): [string | undefined, (value: string) => void];
  readonly [STORE]: { make: (key: string) => SessionIdStore; scope: "tab" | "browser" };
}

function storeHook(make: (key: string) => SessionIdStore, scope: "tab" | "browser"): StoreHook {
  function useStoreValue(key: string, initialValue: string | undefined): [string | undefined, (value: string) => void] {
    const [store] = useState(() => make(key));
    // Most stores report no changes of their own (only localStorage has `storage` events), so
    // a write re-renders explicitly.
    const [, rerender] = useReducer((n: number) => n + 1, 0);
    const subscribe = useCallback((cb: () => void) => store.subscribe?.(() => cb()) ?? (() => {}), [store]);
    const value = useSyncExternalStore(subscribe, () => store.get(), () => undefined);
    const set = useCallback((next: string) => {
      store.set(next);
      rerender();
    }, [store]);
    return [value ?? initialValue, set];
  }
  return Object.assign(useStoreValue, { [STORE]: { make, scope } });
}

/** Per tab (the default): sessionStorage. */
export const useSessionStorage = storeHook(sessionStorageStore, "tab");
/** Per browser: localStorage; a refresh in one tab reaches the others. */
export const useLocalStorage = storeHook(localStorageStore, "browser");
/** Memory only: every page load is a new session. */
export const useMemoryStorage = storeHook(memoryStore, "tab");
/** Per browser, in a client-readable cookie the server can read (see `cookieStore` for the CSRF trade-off). */
export const useCookieStorage = storeHook((key) => cookieStore(key), "browser");

export function isStoreHook(hook: UseStorage): hook is UseStorage & StoreHook {
  return STORE in hook;
}

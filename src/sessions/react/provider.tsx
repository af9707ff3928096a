/**
 * `SessionProvider` and `useSessionId`: the page's session ID in React, backed by one
 * `SessionIdSource` (the provider's own, or the `source` prop shared with a `SessionClient`).
 *
 * Rendering: components read the ID through `useSyncExternalStore`. Its server snapshot is
 * `initialSessionId` (undefined when not given) with `ssrFriendly`, so the server HTML and the
 * hydrating render agree, and React re-renders with the stored ID right after hydration; a
 * client-only render has the ID at once. Without `ssrFriendly` the server snapshot is the
 * source's ID (a random one on the server), which suits client-only apps.
 *
 * The source is made while rendering (so the first render has the ID), but its channel to the
 * other tabs opens only once the provider mounts. React may make a source and throw it away:
 * StrictMode calls the `useState` initializer twice and keeps the first result, and a render
 * that never commits is dropped. A thrown-away source is never disposed; had it its own open
 * channel, it would answer and act on other tabs' messages for the rest of the page's life. In
 * a duplicated tab, step by step:
 *   1. the kept source and the thrown-away one both hold the copied ID and both say hello;
 *   2. the original tab answers each, and each source leaves the duplicate on its own: two new
 *      IDs, `onDuplicateTab` called twice;
 *   3. both store their ID, the last write wins, and it may be the thrown-away source's: the
 *      tab shows one ID and stores another, so a reload loses what it did under the first.
 * With the channel opened on mount, a thrown-away source never joins the conversation.
 *
 * A foreign `useStorage` hook (usehooks-ts) is bridged: the provider calls it, reads its value
 * into a store that the source uses, and writes new IDs back to it in an effect (writing
 * while rendering would update other components mid-render). Such hooks get cross-tab
 * updates only as far as the hook itself reports them, and no duplicate-tab detection.
 */
import type { SessionId } from "../sessionIdType.js";
import { createContext, useCallback, useContext, useEffect, useMemo, useState, useSyncExternalStore, type ReactNode } from "react";
import { createSessionIdSource, type ChannelLike, type SessionIdSource, type SessionIdStore } from "../browser/index.js";
import { walkinError } from "../../values/errors.js";
import { STORE, isStoreHook, useSessionStorage, type UseStorage } from "./storage.js";

export interface SessionProviderProps {
  /** Where the ID is kept (default `useSessionStorage`, per tab). Must not change while mounted. */
  useStorage?: UseStorage;
  /** The storage key (default "walkin-session-id"); give each app on one origin its own. */
  storageKey?: string;
  /** Makes new IDs (default UUID v4 from Web Crypto). */
  idGenerator?: () => string;
  /** No ID during server rendering and hydration: session queries skip, mutations wait. */
  ssrFriendly?: boolean;
  /** The ID the server rendered with (e.g. from `readSessionIdCookie`); used if storage has none. */
  initialSessionId?: string;
  /** A duplicated tab got `newId` instead of `oldId` (per-tab storage only). */
  onDuplicateTab?: (oldId: string, newId: string) => unknown | Promise<unknown>;
  /** Use this source instead of making one, to share it with a `SessionClient`. */
  source?: SessionIdSource;
  children?: ReactNode;
}

export interface SessionContextValue {
  source: SessionIdSource | undefined;
  serverId: string | undefined;
}

const SessionContext = createContext<SessionContextValue | undefined>(undefined);
const isServer = typeof window === "undefined";

/**
 * @example
 * <WalkinProvider client={client}>
 *   <SessionProvider storageKey="my-app" useStorage={useLocalStorage}>
 *     <App />
 *   </SessionProvider>
 * </WalkinProvider>
 */
export function SessionProvider(props: SessionProviderProps) {
  const { storageKey = "walkin-session-id", ssrFriendly = false, initialSessionId } = props;
  const useStorage = props.useStorage ?? useSessionStorage;
  const foreign = props.source === undefined && !isStoreHook(useStorage) ? useStorage : undefined;
  const bridge = useForeignStorage(foreign, storageKey);

  const [{ source, openChannel }] = useState((): { source: SessionIdSource | undefined; openChannel?: () => void } => {
    if (props.source) return { source: props.source };
    if (isServer && ssrFriendly) return { source: undefined }; // no crypto, no storage needed on the server
    const ready = isStoreHook(useStorage) ? useStorage[STORE] : undefined;
    const channel = bridge || isServer ? null : channelOpenedOnMount(`walkin-session:${storageKey}`);
    const created = createSessionIdSource({
      store: bridge?.store ?? ready!.make(storageKey),
      scope: bridge ? "browser" : ready!.scope,
      idGenerator: props.idGenerator,
      initialId: initialSessionId,
      onDuplicateTab: props.onDuplicateTab,
      channel: channel?.channel ?? null,
    });
    return { source: created, openChannel: channel?.open };
  });
  useDisposeOnUnmount(props.source === undefined ? source : undefined, openChannel);

  const serverId = ssrFriendly ? initialSessionId : (source?.current ?? initialSessionId);
  const value = useMemo(() => ({ source, serverId }), [source, serverId]);
  return <SessionContext.Provider value={value}>{props.children}</SessionContext.Provider>;
}

/**
 * `[sessionId, refreshSessionId, sessionIdPromise]`. `sessionId` is undefined only during
 * server rendering and hydration with `ssrFriendly`; the promise resolves with the ID then.
 *
 * @example
 * const [sessionId, refreshSessionId] = useSessionId();
 * const transfer = useMutation(api.sessions.transfer);
 * await refreshSessionId((newId) => transfer({ from: sessionId!, to: newId }));
 */
export function useSessionId(): readonly [
  sessionId: SessionId | undefined,
  refreshSessionId: (beforeUpdate?: (newId: SessionId) => unknown | Promise<unknown>) => Promise<SessionId>,
  sessionIdPromise: Promise<SessionId>,
] {
  const { source, serverId } = useSessionContext();
  const subscribe = useCallback((cb: () => void) => source?.subscribe(cb) ?? (() => {}), [source]);
  const sessionId = useSyncExternalStore(subscribe, () => source?.current ?? serverId, () => serverId);
  const refresh = useCallback(
    (beforeUpdate?: (newId: string) => unknown | Promise<unknown>) =>
      source ? source.refresh(beforeUpdate) : Promise.reject(noSourceError()),
    [source],
  );
  const promise = useMemo(
    () => (sessionId !== undefined ? Promise.resolve(sessionId) : (source?.ready ?? new Promise<string>(() => {}))),
    [sessionId, source],
  );
  // The client-side ID is typed `SessionId` as in convex-helpers, so it can be passed to args
  // declared with `vSessionId` (the server turns it into the digest handlers see).
  return [sessionId as SessionId | undefined, refresh as (beforeUpdate?: (newId: SessionId) => unknown) => Promise<SessionId>, promise as Promise<SessionId>] as const;
}

/**
 * The nearest `SessionProvider`'s context, or undefined outside one: for parts that work with
 * or without sessions (walkin/auth's React hooks refresh the session ID on sign-in when there is one).
 */
export function useOptionalSessionContext(): SessionContextValue | undefined {
  return useContext(SessionContext);
}

/** The provider's context; throws a clear error outside one. */
export function useSessionContext(): SessionContextValue {
  const context = useOptionalSessionContext();
  if (context === undefined) {
    throw walkinError(
      "MISUSE",
      "Session hooks need a session ID, and this component has none above it. " +
        "Did you forget to wrap your app in <SessionProvider> (inside <WalkinProvider>)?",
    );
  }
  return context;
}

/**
 * Reads the ID when called (never a stale closure): the ID itself when there is one, so calls
 * go out synchronously like `useMutation`'s, else a promise (during hydration with `ssrFriendly`).
 */
export function useSessionIdGetter(): () => string | Promise<string> {
  const { source } = useSessionContext();
  return useCallback(() => {
    if (source === undefined) return Promise.reject(noSourceError());
    return source.current ?? source.ready;
  }, [source]);
}

function noSourceError() {
  return walkinError("MISUSE", "There is no session ID during server rendering. Call session mutations and actions from the browser.");
}

/**
 * Opens the source's channel once mounted (see the file header). StrictMode mounts, unmounts
 * and remounts synchronously: dispose only when no mount is left by the next microtask.
 */
function useDisposeOnUnmount(source: SessionIdSource | undefined, openChannel: (() => void) | undefined) {
  const [mounts] = useState(() => ({ count: 0 }));
  useEffect(() => {
    if (!source) return;
    mounts.count++;
    openChannel?.();
    return () => {
      mounts.count--;
      queueMicrotask(() => {
        if (mounts.count === 0) source.dispose();
      });
    };
  }, [source, mounts, openChannel]);
}

/**
 * A BroadcastChannel that exists only once `open()` is called (on mount): until then, what the
 * source posts waits and nothing reaches it; null where there is no BroadcastChannel (the
 * source then follows storage events, as with no channel at all).
 */
function channelOpenedOnMount(name: string): { channel: ChannelLike; open: () => void } | null {
  if (typeof BroadcastChannel !== "function") return null;
  let real: BroadcastChannel | undefined;
  let closed = false;
  const listeners: ((event: { data: unknown }) => void)[] = [];
  const unsent: unknown[] = [];
  return {
    channel: {
      postMessage: (message) => (real ? real.postMessage(message) : void unsent.push(message)),
      addEventListener: (_type, listener) => {
        listeners.push(listener);
        real?.addEventListener("message", listener);
      },
      close: () => {
        closed = true;
        real?.close();
      },
    },
    open() {
      if (real || closed) return;
      real = new BroadcastChannel(name);
      for (const listener of listeners) real.addEventListener("message", listener);
      for (const message of unsent.splice(0)) real.postMessage(message);
    },
  };
}

/** Adapts a foreign `(key, initial) => [value, setValue]` hook into a store (see the file header). */
function useForeignStorage(useStorage: UseStorage | undefined, key: string): { store: SessionIdStore } | undefined {
  const [state] = useState(() => {
    let value: string | undefined;
    let pending: string | undefined;
    let setValue: ((value: string) => void) | undefined;
    let mounted = false;
    const listeners = new Set<(value: string | undefined) => void>();
    const store: SessionIdStore = {
      kind: "memory",
      get: () => pending ?? value,
      // Before mount the source writes while rendering: defer to the effect. After it, writes
      // come from refreshes and other tabs, outside rendering, and go straight to the hook.
      set: (id) => {
        pending = id;
        if (mounted) setValue?.(id);
      },
      subscribe: (cb) => (listeners.add(cb), () => void listeners.delete(cb)),
    };
    return {
      store,
      read(next: unknown, set: (value: string) => void) {
        setValue = set;
        const changed = typeof next === "string" && next !== value;
        value = typeof next === "string" ? next : undefined;
        return changed;
      },
      flush() {
        mounted = true;
        if (pending !== undefined && pending !== value) setValue?.(pending);
        else pending = undefined;
      },
      emit() {
        if (pending === undefined || pending === value) for (const l of [...listeners]) l(value);
        if (pending === value) pending = undefined;
      },
    };
  });
  const result = useStorage?.(key, undefined);
  const changed = result ? state.read(result[0], result[1]) : false;
  useEffect(() => {
    if (!useStorage) return;
    state.flush();
    if (changed) state.emit();
  });
  if (!useStorage) return undefined;
  return state;
}

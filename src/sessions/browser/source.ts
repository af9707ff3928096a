/**
 * `SessionIdSource`: the one owner of a page's session ID, shared by `SessionProvider` and
 * `SessionClient`, so a refresh through either is seen by both.
 *
 * Refresh, step by step:
 *   1. wait for any earlier refresh of this source (refreshes are serialized);
 *   2. generate the new ID; the current ID is unchanged, so calls made meanwhile (including
 *      the mutation inside `beforeUpdate` that carries data over) still use the old one;
 *   3. await `beforeUpdate(newId)`; if it throws, stop here: nothing was stored, the old ID
 *      stays, and the refresh rejects with that error;
 *   4. store the new ID, switch `current`, notify subscribers synchronously (watches
 *      re-subscribe here), and tell the other tabs; only then does the promise resolve, so
 *      every call issued after it uses the new ID.
 *
 * Tabs (over a BroadcastChannel named after the storage key):
 * - scope "browser": a refresh posts `{ type: "changed", id, version }`. Two tabs refreshing at
 *   once would each adopt the other's ID and swap; the version (time, then a random tab id)
 *   orders them so every tab ends on the latest. Without BroadcastChannel, the store's
 *   `storage` events carry the change instead (they always report the last write).
 * - scope "tab": a duplicated tab starts with a copy of sessionStorage, so two live tabs hold
 *   one ID. At start each tab posts `hello`; a tab holding the same ID answers `here` with
 *   when it started. The tab that started later takes a new ID (after `onDuplicateTab(old,
 *   new)`, so the app can copy state server-side); the earlier one keeps its ID.
 */
import { generateSessionId, isSessionIdV4 } from "./id.js";
import type { SessionIdStore } from "./stores.js";

/** The shared session ID of a page. */
export interface SessionIdSource {
  /** The ID now; undefined only for a source that has not started (never after creation). */
  readonly current: string | undefined;
  /** Resolves with the current ID. */
  readonly ready: Promise<string>;
  /** Switches to a new ID once `beforeUpdate(newId)` has resolved; rejects (keeping the old ID) if it throws. */
  refresh(beforeUpdate?: (newId: string) => unknown | Promise<unknown>): Promise<string>;
  /**
   * Switches to an ID the app already has (one a server render used, say) without carrying
   * anything over; it must be a valid ID (a UUID v4 by default). A refresh still in progress
   * finishes after it, and its ID wins.
   */
  set(id: string): void;
  /** Called with the new ID after each change (refresh, another tab, duplicate tab). */
  subscribe(callback: (id: string) => void): () => void;
  /** Stops listening to other tabs. */
  dispose(): void;
}

/** The subset of `BroadcastChannel` used here (tests pass a fake). */
export interface ChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  close(): void;
}

export interface SessionIdSourceOptions {
  store: SessionIdStore;
  /** "tab": one ID per tab, duplicates get their own; "browser": every tab shares and follows refreshes. */
  scope: "tab" | "browser";
  /** Default `generateSessionId` (UUID v4). */
  idGenerator?: () => string;
  /** Which stored values count as IDs; default UUID v4, or any non-empty string with a custom `idGenerator`. */
  isValidId?: (value: string) => boolean;
  /** Used when the store holds no ID (e.g. the ID a server render used). */
  initialId?: string;
  /** A duplicated tab switched from `oldId` to `newId`; awaited before the switch. */
  onDuplicateTab?: (oldId: string, newId: string) => unknown | Promise<unknown>;
  /** The channel to other tabs; default a `BroadcastChannel` where one exists. `null` for none. */
  channel?: ChannelLike | null;
  /** Names the default channel; default "walkin-session". Use one per storage key. */
  channelName?: string;
  /** Identifies this tab; default one random ID per page (tests simulate several tabs in one page). */
  tabId?: string;
}

type Message =
  | { type: "changed"; id: string; version: Version }
  | { type: "hello"; id: string; tab: string; startedAt: number }
  | { type: "here"; id: string; tab: string; startedAt: number };
type Version = [at: number, tab: string];

/**
 * @example
 * const source = createSessionIdSource({ store: sessionStorageStore("my-app"), scope: "tab" });
 * const client = new SessionClient(walkin, source);
 * await source.refresh((newId) => client.mutation(api.sessions.transfer, { to: newId }));
 */
export function createSessionIdSource(options: SessionIdSourceOptions): SessionIdSource {
  const { store, scope } = options;
  const generate = options.idGenerator ?? generateSessionId;
  const isValid =
    options.isValidId ??
    (options.idGenerator ? (v: string) => v.length > 0 && v !== "undefined" && v !== "null" : isSessionIdV4);
  // One ID per page, not per source: sources of the same page (React StrictMode creates and
  // drops one) hold the same ID legitimately and must not take each other for duplicate tabs.
  const tab = options.tabId ?? (pageTabId ??= generateSessionId());
  const startedAt = Date.now();
  const listeners = new Set<(id: string) => void>();
  let version: Version = [0, ""];
  let queue: Promise<unknown> = Promise.resolve();
  let disposed = false;

  const stored = store.get();
  let current: string;
  if (stored !== undefined && isValid(stored)) current = stored;
  else {
    current = options.initialId !== undefined && isValid(options.initialId) ? options.initialId : generate();
    store.set(current);
  }

  const switchTo = (id: string, persist: boolean) => {
    if (persist && store.get() !== id) store.set(id);
    if (id === current) return;
    current = id;
    for (const listener of [...listeners]) listener(id);
  };

  const serialized = <T>(task: () => Promise<T>): Promise<T> => {
    const run = queue.then(task, task);
    queue = run.catch(() => {});
    return run;
  };

  const channel = options.channel === undefined ? defaultChannel(options.channelName ?? "walkin-session") : options.channel;
  const post = (message: Message) => {
    if (!disposed) channel?.postMessage(message);
  };
  channel?.addEventListener("message", ({ data }) => {
    if (disposed || !isMessage(data)) return;
    if (scope === "browser" && data.type === "changed") {
      if (!isValid(data.id) || compare(data.version, version) <= 0) return;
      version = data.version;
      switchTo(data.id, true);
    } else if (scope === "tab" && data.type === "hello" && data.id === current && data.tab !== tab) {
      post({ type: "here", id: current, tab, startedAt });
    } else if (scope === "tab" && (data.type === "here" || data.type === "hello") && data.id === current && data.tab !== tab) {
      // Reached for "here": the other tab holds our ID. The later-started tab moves.
      if (data.startedAt < startedAt || (data.startedAt === startedAt && data.tab < tab)) void leaveDuplicate(data.id);
    }
  });

  const leaveDuplicate = (oldId: string) =>
    serialized(async () => {
      if (current !== oldId) return;
      const newId = generate();
      try {
        await options.onDuplicateTab?.(oldId, newId);
      } catch (error) {
        // The tab must not keep sharing its ID, so it switches anyway.
        console.warn("Walk-in sessions: onDuplicateTab failed; the duplicated tab takes a new ID anyway.", error);
      }
      if (current === oldId) switchTo(newId, true);
    });

  const unsubscribeStore =
    scope === "browser" && !channel
      ? store.subscribe?.((value) => {
          if (value !== undefined && isValid(value)) switchTo(value, false);
        })
      : undefined;

  if (scope === "tab") post({ type: "hello", id: current, tab, startedAt });

  /** Makes `id` this page's ID, and the other tabs' when they share it. */
  const adopt = (id: string) => {
    version = [Math.max(Date.now(), version[0] + 1), tab];
    switchTo(id, true);
    if (scope === "browser") post({ type: "changed", id, version });
  };

  return {
    get current() {
      return current;
    },
    get ready() {
      return Promise.resolve(current);
    },
    refresh(beforeUpdate) {
      return serialized(async () => {
        const newId = generate();
        if (!isValid(newId)) throw new Error(`Walk-in sessions: idGenerator returned an invalid ID. Did you forget isValidId?`);
        await beforeUpdate?.(newId);
        adopt(newId);
        return newId;
      });
    },
    set(id) {
      if (typeof id !== "string" || !isValid(id)) throw invalidSessionIdToSet();
      adopt(id);
    },
    subscribe(callback) {
      listeners.add(callback);
      return () => void listeners.delete(callback);
    },
    dispose() {
      disposed = true;
      listeners.clear();
      unsubscribeStore?.();
      channel?.close();
    },
  };
}

/** The error for an ID given to `set` (or a client's `sessionId` option) that is not a session ID. */
export function invalidSessionIdToSet(): TypeError {
  // Never echo the value: it may be someone's session ID.
  return new TypeError(
    "Walk-in sessions: setSessionId takes a session ID the client generated (a UUID v4 by default, e.g. crypto.randomUUID()); " +
      "the value given is not one. Walk-in refuses other strings so that a session ID is always unguessable.",
  );
}

let pageTabId: string | undefined;

function defaultChannel(name: string): ChannelLike | null {
  return typeof BroadcastChannel === "function" ? new BroadcastChannel(name) : null;
}

function compare(a: Version, b: Version): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
}

function isMessage(data: unknown): data is Message {
  if (typeof data !== "object" || data === null) return false;
  const m = data as Record<string, unknown>;
  return (m.type === "changed" || m.type === "hello" || m.type === "here") && typeof m.id === "string";
}

/**
 * `ConvexReactSessionClient`: convex-helpers' client class, so code that constructs one runs
 * with only its import path changed. It is a `WalkinClient` whose session ID lives in the same
 * kind of `SessionIdSource` the React provider uses (per tab, in sessionStorage by default),
 * and whose `session*` methods add it to calls.
 *
 * One deliberate difference: a session ID given to it (`options.sessionId`, `setSessionId`)
 * must be one a client generated (a UUID v4); anything else is refused with a clear error,
 * because a guessable session ID is someone else's session.
 */
import { WalkinClient, type MutationOptions, type WalkinClientOptions } from "../../browser/index.js";
import type { FunctionArgs, FunctionReturnType } from "../../server/api.js";
import { createSessionIdSource, sessionStorageStore, type SessionIdSource, type SessionIdStore } from "../browser/index.js";
import { withMemoryFallback, type StorageLike } from "../browser/fallbackStorage.js";
import { invalidSessionIdToSet } from "../browser/source.js";
import { isSessionIdV4 } from "../browser/id.js";
import type { SessionArgsArray, SessionFunction } from "../browser/client.js";
import type { SessionId } from "../sessionIdType.js";

/** What convex-helpers' client reads and writes the ID with (`localStorage` and `sessionStorage` fit). */
export interface SessionStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface ConvexReactSessionClientOptions extends WalkinClientOptions {
  /** Start with this ID (a UUID v4 the client generated) instead of the stored one. */
  sessionId?: SessionId | string;
  /** Where the ID is kept; default `sessionStorage` (one session per tab). */
  storage?: SessionStorageLike;
  /** Default "walkin-session-id". */
  storageKey?: string;
}

/**
 * @example
 * const client = new ConvexReactSessionClient(url);
 * await client.sessionMutation(api.cart.add, { item: "apple" }); // sends { item, sessionId }
 */
export class ConvexReactSessionClient extends WalkinClient {
  /** The ID source: pass it to `<SessionProvider source>` so the hooks share this client's ID. */
  readonly sessionIdSource: SessionIdSource;

  constructor(address: string, options: ConvexReactSessionClientOptions = {}) {
    const { sessionId, storage, storageKey = "walkin-session-id", ...clientOptions } = options;
    if (sessionId !== undefined && !isSessionIdV4(sessionId)) throw invalidSessionIdToSet(); // before connecting
    super(address, clientOptions);
    const store: SessionIdStore = storage ? appStorageStore(storage, storageKey) : sessionStorageStore(storageKey);
    // localStorage is shared by every tab: the tabs share one session (as with convex-helpers'
    // client) instead of taking each other for duplicated tabs and each moving to a new ID.
    this.sessionIdSource = createSessionIdSource({ store, scope: storage !== undefined && isLocalStorage(storage) ? "browser" : "tab" });
    if (sessionId !== undefined) this.sessionIdSource.set(sessionId);
  }

  /** Closes the connection, and the ID source's channel to other tabs (an open one keeps Node running). */
  override async close(): Promise<void> {
    this.sessionIdSource.dispose();
    await super.close();
  }

  /** The session ID calls are made with now. */
  getSessionId(): SessionId {
    return this.sessionIdSource.current as SessionId;
  }

  /** Switches to another session ID the client generated (a UUID v4); it is stored too. */
  setSessionId(sessionId: SessionId | string): void {
    this.sessionIdSource.set(sessionId);
  }

  sessionQuery<Q extends SessionFunction<"query">>(query: Q, ...args: SessionArgsArray<Q>): Promise<FunctionReturnType<Q>> {
    return this.query(query, { ...args[0], sessionId: this.getSessionId() } as FunctionArgs<Q>);
  }

  sessionMutation<M extends SessionFunction<"mutation">>(
    mutation: M,
    ...[args, options]: [...SessionArgsArray<M>, options?: MutationOptions<NoInfer<FunctionArgs<M>>>]
  ): Promise<FunctionReturnType<M>> {
    return this.mutation(mutation, { ...args, sessionId: this.getSessionId() } as FunctionArgs<M>, options);
  }

  sessionAction<A extends SessionFunction<"action">>(action: A, ...args: SessionArgsArray<A>): Promise<FunctionReturnType<A>> {
    return this.action(action, { ...args[0], sessionId: this.getSessionId() } as FunctionArgs<A>);
  }
}

/**
 * The app's `storage` for one key, never throwing, as the ready stores are (stores.ts): a
 * storage that throws (Safari private mode, a full quota) is replaced by memory with one
 * warning. Thrown here, the error would leave the constructor after `super` opened the socket:
 * the app gets no client, and the one it cannot reach reconnects for the rest of the page's life.
 */
function appStorageStore(storage: SessionStorageLike, key: string): SessionIdStore {
  const keyed: StorageLike = {
    getItem: (k) => storage.getItem(k),
    setItem: (k, value) => storage.setItem(k, value),
    removeItem: () => {}, // never called: a session ID is replaced, not removed
  };
  const fallback = withMemoryFallback({ owner: "Walk-in sessions", kind: "the storage option", what: "the session ID" }, () => keyed);
  return { kind: "sessionStorage", get: () => fallback.getItem(key) ?? undefined, set: (id) => fallback.setItem(key, id) };
}

/** Whether `storage` is the page's localStorage (reading it throws in sandboxed frames: then it is not). */
function isLocalStorage(storage: SessionStorageLike): boolean {
  try {
    return typeof localStorage !== "undefined" && storage === localStorage;
  } catch {
    return false;
  }
}

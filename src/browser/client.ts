/**
 * `WalkinClient`: the framework-free client. It owns nothing but wiring: the state classes
 * (`LocalSyncState`, `RequestManager`, `OptimisticUpdates`, `AuthState`, `TransitionChunks`)
 * decide what to send and what changed, `Connection` moves bytes, and this class passes
 * messages between them and calls the app back.
 *
 * Watchers are called once per applied Transition (or optimistic change), after the whole
 * Transition is in place, so a callback never sees one query updated and another not yet. A
 * mutation's promise settles after those callbacks: code after `await client.mutation(...)`
 * reads results that include the write.
 */
import type { FunctionArgs, FunctionReference, FunctionReturnType } from "../server/api.js";
import { PROTOCOL_LIMITS, type RequestId, type ServerMessage, type TransitionMessage } from "../transport/protocol.js";
import { WalkinError, walkinError } from "../values/errors.js";
import { convertToJson } from "../values/json.js";
import type { Value } from "../values/value.js";
import { AuthState, type AuthEffect, type FetchToken } from "./authState.js";
import { Connection, type Logger } from "./connection.js";
import { functionPath } from "../server/functionPath.js";
import { IdentityHandover } from "./identityHandover.js";
import { LocalSyncState, ProtocolMismatch } from "./localSyncState.js";
import { OptimisticUpdates, type OptimisticUpdate } from "./optimisticUpdates.js";
import { queryToken, type QueryResult, type QueryToken } from "./queryResult.js";
import { RequestManager } from "./requestManager.js";
import { syncUrl } from "./syncUrl.js";
import { TransitionChunks } from "./transitionChunks.js";

export interface WalkinClientOptions {
  /** Default `globalThis.WebSocket`. Node.js 20 has none: pass `WebSocket` from the `ws` package. */
  webSocketConstructor?: typeof WebSocket;
  /** Open no socket (server rendering): watches stay empty, calls reject. */
  skipConnect?: boolean;
  /** Reconnect delays: exponential backoff with full jitter (defaults 100 ms, 10 s). */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  /** Ping after this long without a message; reconnect after twice as long (default 15 s). */
  heartbeatIntervalMs?: number;
  /** Where connection notices go: `console` when omitted or true (as in Convex), nowhere when false. */
  logger?: boolean | Logger;
}

/** What `prewarmQuery` takes: Convex's `{ query, args }`, and how long to keep the query subscribed. */
export interface PrewarmQueryOptions<Q extends FunctionReference<"query">> {
  query: Q;
  args?: FunctionArgs<Q>;
  /** Milliseconds to keep the query subscribed (default 5000, as in Convex). */
  extendSubscriptionFor?: number;
}

/** How long `prewarmQuery` keeps a query subscribed when not told (Convex's default). */
const DEFAULT_PREWARM_MS = 5_000;

/** A live query: subscribe with `onUpdate`, read with `localQueryResult`. */
export interface Watch<T> {
  /** Calls `callback` whenever the result changes; returns the unsubscribe function. */
  onUpdate(callback: () => void): () => void;
  /** The current result: undefined while loading; throws the `WalkinError` if the query failed. */
  localQueryResult(): T | undefined;
}

export interface MutationOptions<Args> {
  /** Edits the local query results at once; undone when the mutation's real result arrives or it fails. */
  optimisticUpdate?: OptimisticUpdate<Args>;
}

export interface ConnectionState {
  isWebSocketConnected: boolean;
  hasEverConnected: boolean;
  /** Sockets opened so far. */
  connectionCount: number;
  /** Failed attempts since the last healthy connection. */
  connectionRetries: number;
  hasInflightRequests: boolean;
  inflightMutations: number;
  inflightActions: number;
  /** When the oldest in-flight request was made (ms since the epoch), or null. */
  oldestInflightRequestAt: number | null;
  /**
   * The same moment as a `Date`, under Convex's name (code written for Convex reads it), or null.
   * One `Date` object for as long as that request is the oldest, so the state stays unchanged.
   */
  timeOfOldestInflightRequest: Date | null;
  /** The snapshot timestamp of the latest applied Transition, or null before the first. */
  lastTransitionTs: number | null;
  isAuthenticated: boolean;
}

const silent: Logger = { log() {}, warn() {} };

/**
 * @example
 * import { WebSocket } from "ws"; // Node.js only; browsers have one
 * const client = new WalkinClient("http://127.0.0.1:3210", { webSocketConstructor: WebSocket });
 * const watch = client.watchQuery(api.messages.list);
 * const stop = watch.onUpdate(() => render(watch.localQueryResult()));
 * await client.mutation(api.messages.send, { body: "hi" }); // render() already saw "hi"
 */
export class WalkinClient {
  private readonly sync = new LocalSyncState();
  private readonly requests = new RequestManager();
  private readonly optimistic: OptimisticUpdates;
  private readonly chunks = new TransitionChunks();
  private readonly auth = new AuthState();
  private readonly handover = new IdentityHandover();
  private readonly connection: Connection | null;
  private readonly clientId = randomClientId();
  /** Where the client's notices go (`console` unless the `logger` option said otherwise), as Convex's `client.logger`. */
  readonly logger: Logger;
  /**
   * The address the client was created with, as Convex's `client.url`: pass it to create another
   * client for the same server.
   */
  readonly url: string;
  private readonly watchers = new Map<QueryToken, Set<() => void>>();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private state: ConnectionState;
  private flushScheduled = false;
  /** Whether the token the client holds has been put in force on this connection (see `putWantedTokenInForce`). */
  private identityRestored = false;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  /** How to reject each one-shot `query()` still waiting for its first result (`close()` does). */
  private readonly pendingQueries = new Set<(error: Error) => void>();
  /** The timers that end `prewarmQuery` subscriptions (`close()` clears them, so none keeps a process alive). */
  private readonly prewarmTimers = new Set<ReturnType<typeof setTimeout>>();

  constructor(address: string, options: WalkinClientOptions = {}) {
    this.url = address;
    this.logger = options.logger === false ? silent : options.logger === true || options.logger === undefined ? console : options.logger;
    this.optimistic = new OptimisticUpdates(
      (error) => this.logger.warn("walkin: an optimistic update threw:", error),
      () =>
        this.logger.warn(
          "walkin: an optimistic update returned a Promise. Optimistic updates must be synchronous: what one sets " +
            "after an await is lost. Read with localStore.getQuery and write with localStore.setQuery without awaiting anything.",
        ),
    );
    const url = syncUrl(address);
    const webSocketConstructor = options.webSocketConstructor ?? globalThis.WebSocket;
    if (options.skipConnect) {
      this.connection = null;
    } else if (webSocketConstructor === undefined) {
      throw walkinError(
        "MISUSE",
        "No WebSocket implementation found. In Node.js 20, pass one: " +
          'import { WebSocket } from "ws" and new WalkinClient(address, { webSocketConstructor: WebSocket }).',
      );
    } else {
      this.connection = new Connection({
        url,
        webSocketConstructor,
        initialDelayMs: options.reconnect?.initialDelayMs ?? 100,
        maxDelayMs: options.reconnect?.maxDelayMs ?? 10_000,
        heartbeatIntervalMs: options.heartbeatIntervalMs ?? 15_000,
        logger: this.logger,
        onOpen: (count) => this.onOpen(count),
        onMessage: (message) => this.onMessage(message),
        onClose: () => this.onClose(),
        onStateChange: () => this.updateConnectionState(),
      });
    }
    this.state = this.computeConnectionState();
    this.connection?.start();
  }

  watchQuery<Q extends FunctionReference<"query">>(query: Q, args?: FunctionArgs<Q>): Watch<FunctionReturnType<Q>> {
    const udfPath = functionPath(query);
    const argsJson = convertToJson((args ?? {}) as Value, "args");
    const token = queryToken(udfPath, argsJson);
    return {
      onUpdate: (callback) => {
        // Closed: nothing will change any more, and a listener added now would never be removed by close().
        if (this.closed) return () => {};
        const listener = () => callback();
        this.sync.subscribe(udfPath, argsJson);
        let listeners = this.watchers.get(token);
        if (!listeners) this.watchers.set(token, (listeners = new Set()));
        listeners.add(listener);
        this.afterQuerySetChange(token);
        let active = true;
        return () => {
          if (!active) return;
          active = false;
          listeners.delete(listener);
          if (listeners.size === 0 && this.watchers.get(token) === listeners) this.watchers.delete(token);
          this.sync.unsubscribe(token);
          this.afterQuerySetChange(token);
        };
      },
      localQueryResult: () => {
        const result = this.optimistic.result(token);
        if (result?.kind === "error") throw result.error;
        return result?.value as FunctionReturnType<Q> | undefined;
      },
    };
  }

  /** Runs a query once, through a temporary subscription (so it agrees with the live results). */
  query<Q extends FunctionReference<"query">>(query: Q, args?: FunctionArgs<Q>): Promise<FunctionReturnType<Q>> {
    const refused = this.refuseCalls();
    if (refused) return Promise.reject(refused);
    return new Promise((resolve, reject) => {
      const watch = this.watchQuery(query, args);
      let unsubscribe: (() => void) | undefined;
      let settled = false;
      // close() settles this call too, like the requests it rejects: a query still waiting for
      // its first result would otherwise never settle once the socket is gone for good.
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        this.pendingQueries.delete(fail);
        reject(error);
        unsubscribe?.();
      };
      this.pendingQueries.add(fail);
      const check = () => {
        if (settled) return;
        let value: FunctionReturnType<Q> | undefined;
        try {
          value = watch.localQueryResult();
        } catch (error) {
          settled = true;
          reject(error);
        }
        if (value !== undefined) {
          settled = true;
          resolve(value);
        }
        if (settled) {
          this.pendingQueries.delete(fail);
          unsubscribe?.();
        }
      };
      unsubscribe = watch.onUpdate(check);
      if (settled) unsubscribe(); // settled by the subscription's own first notification
      else check();
    });
  }

  /**
   * Says a query will likely be wanted soon (Convex's `prewarmQuery`): subscribes to it now and
   * keeps it subscribed for `extendSubscriptionFor` ms (default 5000), so a `useQuery` mounted
   * meanwhile finds its result already there. Does nothing on a closed client.
   *
   * @example
   * <Link onMouseEnter={() => client.prewarmQuery({ query: api.messages.list, args: { channel } })} />
   */
  prewarmQuery<Q extends FunctionReference<"query">>(options: PrewarmQueryOptions<Q>): void {
    const ms = options.extendSubscriptionFor ?? DEFAULT_PREWARM_MS;
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
      throw walkinError(
        "INVALID_ARGUMENT",
        `prewarmQuery: extendSubscriptionFor is how many milliseconds to keep the query subscribed, a number 0 or more; received ${String(ms)}. Omit it for ${DEFAULT_PREWARM_MS}.`,
      );
    }
    if (this.closed) return;
    const unsubscribe = this.watchQuery(options.query, options.args).onUpdate(() => {});
    const timer = setTimeout(() => {
      this.prewarmTimers.delete(timer);
      unsubscribe();
    }, ms);
    this.prewarmTimers.add(timer);
  }

  mutation<M extends FunctionReference<"mutation">>(
    mutation: M,
    args?: FunctionArgs<M>,
    options?: MutationOptions<NoInfer<FunctionArgs<M>>>,
  ): Promise<FunctionReturnType<M>> {
    const refused = this.refuseCalls();
    if (refused) return Promise.reject(refused);
    let requestId: RequestId;
    let result: Promise<Value>;
    try {
      ({ requestId, result } = this.requests.mutation(functionPath(mutation), convertToJson((args ?? {}) as Value, "args")));
    } catch (error) {
      return Promise.reject(error);
    }
    if (options?.optimisticUpdate) {
      this.optimistic.add(requestId, options.optimisticUpdate, (args ?? {}) as Value);
      this.notify(this.optimistic.recompute(this.sync, []));
    }
    this.scheduleFlush();
    this.updateConnectionState();
    return result as Promise<FunctionReturnType<M>>;
  }

  /** Runs an action. One in flight when the connection drops is rejected (code DISCONNECTED), never re-run. */
  action<A extends FunctionReference<"action">>(action: A, args?: FunctionArgs<A>): Promise<FunctionReturnType<A>> {
    const refused = this.refuseCalls();
    if (refused) return Promise.reject(refused);
    let result: Promise<Value>;
    try {
      ({ result } = this.requests.action(functionPath(action), convertToJson((args ?? {}) as Value, "args")));
    } catch (error) {
      return Promise.reject(error);
    }
    this.scheduleFlush();
    this.updateConnectionState();
    return result as Promise<FunctionReturnType<A>>;
  }

  /**
   * Signs in with tokens from `fetchToken` (called again with `forceRefreshToken: true` if the
   * server refuses one). `onChange(true)` once the server accepted the token, `onChange(false)`
   * when there is none or it was refused twice.
   */
  setAuth(fetchToken: FetchToken, onChange?: (isAuthenticated: boolean) => void): void {
    if (this.closed) return; // nothing to sign in to: fetchToken and onChange are not called
    this.runAuthEffects(this.auth.set(fetchToken, onChange));
    this.updateConnectionState();
  }

  /**
   * For an auth client about to replace the token this client holds with one from a sign-in
   * that ends the old token's session (see `identityHandover.ts`): from the Transition in which
   * `guard` (a query without args answering null for a caller with no live session) turns
   * null, until the first Transition under the next token, watchers keep seeing the results
   * they saw. Call the returned function if the sign-in gives no new token.
   *
   * @example
   * const release = client.holdResultsAcrossSignIn(api.auth.currentSession);
   * try {
   *   const result = await client.action(api.auth.signIn, { provider: "password", params });
   *   if (result.kind === "signedIn") client.setAuth(async () => result.token); // its first results end the hold
   *   else release();
   * } catch (error) {
   *   release();
   *   throw error;
   * }
   */
  holdResultsAcrossSignIn(guard: FunctionReference<"query">): () => void {
    const id = this.handover.arm(queryToken(functionPath(guard), {}), this.sync.latestIdentity());
    return () => this.notify(this.optimistic.recompute(this.sync, this.handover.release(id)));
  }

  /**
   * For an auth client whose token another tab may replace (tabs sharing one stored token):
   * each time `guard` (as for `holdResultsAcrossSignIn`) turns null, `shouldHold()` is asked,
   * before any watcher is called, whether a new token is on its way. If it says so, watchers
   * keep seeing the results they saw until the first Transition under the next token (or
   * signed out), or until `release()`. `stop()` ends the standby (not a hold under way).
   * See `identityHandover.ts`.
   *
   * @example
   * const standby = client.holdResultsWhenSessionEnds(api.auth.currentSession, () => otherTabSigningIn());
   * // no new token came after all: show what the server sent
   * standby.release();
   */
  holdResultsWhenSessionEnds(guard: FunctionReference<"query">, shouldHold: () => boolean): { release: () => void; stop: () => void } {
    const id = this.handover.standBy(queryToken(functionPath(guard), {}), shouldHold);
    return {
      release: () => this.notify(this.optimistic.recompute(this.sync, this.handover.release(id))),
      stop: () => this.handover.stopStandby(id),
    };
  }

  clearAuth(): void {
    this.runAuthEffects(this.auth.clear());
    this.scheduleFlush();
    this.updateConnectionState();
  }

  connectionState(): ConnectionState {
    return this.state;
  }

  subscribeToConnectionState(callback: (state: ConnectionState) => void): () => void {
    if (this.closed) return () => {}; // the state will not change again
    const listener = (state: ConnectionState) => callback(state);
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /**
   * Closes the socket for good; pending calls reject with code DISCONNECTED. Watchers and
   * connection-state listeners hear of what closing changes (rolled-back optimistic updates,
   * the socket gone), then are dropped: none is called after `close()` has resolved, and no
   * timer of the client is left running.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.flushTimer);
    for (const timer of this.prewarmTimers) clearTimeout(timer);
    this.prewarmTimers.clear();
    const error = new WalkinError("The client was closed before the call completed.", { code: "DISCONNECTED" });
    const rejected = this.requests.rejectAll(error);
    // A rejected mutation's optimistic update goes with it, as after any other failure.
    if (this.optimistic.drop(rejected)) this.notify(this.optimistic.recompute(this.sync, []));
    for (const fail of [...this.pendingQueries]) fail(error);
    await this.connection?.stop();
    this.updateConnectionState();
    this.watchers.clear();
    this.stateListeners.clear();
  }

  // ------------------------------------------------------------------ connection events

  private onOpen(connectionCount: number): void {
    this.chunks.reset();
    // Requests numbered from here on are sent for the first time on this connection (the ones
    // re-sent are below): the server need not look for their receipts.
    const newRequestsFrom = this.requests.nextId;
    // The server waits until it holds every commit up to the highest timestamp the client
    // names. A mutation whose response came on the old connection and whose Transition did
    // not is waiting for its commit: another node must catch up to it too, or the Transition
    // that settles it might never come.
    const connect = this.sync.restart({ clientId: this.clientId, connectionCount, newRequestsFrom, awaitedTs: this.requests.maxCommittedTs() });
    // The token and the query set go out in flush, once the token the client holds can be in
    // force (after requests re-sent under earlier tokens, and once a token being fetched came):
    // until then, a hold on the old connection holds whatever comes.
    this.handover.reconnecting();
    this.identityRestored = false;
    this.auth.onRestart();
    if (!this.connection!.send(connect)) return;
    this.flush();
  }

  private onClose(): void {
    this.chunks.reset();
    this.requests.onDisconnect();
    this.updateConnectionState();
  }

  private onMessage(message: ServerMessage): void {
    try {
      this.handle(message);
    } catch (error) {
      if (!(error instanceof ProtocolMismatch)) throw error;
      this.connection?.fault(error.message);
    }
    this.updateConnectionState();
  }

  private handle(message: ServerMessage): void {
    if (this.chunks.inProgress() && message.type !== "TransitionChunk") {
      throw new ProtocolMismatch(`${message.type} arrived in the middle of a chunked Transition`);
    }
    switch (message.type) {
      case "Transition":
        this.applyTransition(message);
        break;
      case "TransitionChunk": {
        const transition = this.chunks.add(message);
        if (transition) this.applyTransition(transition);
        break;
      }
      case "MutationResponse": {
        const outcome = this.requests.onMutationResponse(message, this.sync.settledTimestamp());
        if (outcome && outcome.outcome !== "committed" && this.optimistic.drop([outcome.requestId])) {
          this.notify(this.optimistic.recompute(this.sync, []));
        }
        break;
      }
      case "ActionResponse":
        this.requests.onActionResponse(message, this.sync.settledTimestamp());
        break;
      case "AuthError":
        // Answers the Authenticate in flight: the next one may go (numbered from the version the server kept).
        this.scheduleFlush();
        // About a token replaced since, or one put back in force for requests re-sent under it: the app's token is not at issue.
        if (!this.sync.identity.onAuthError(message.baseVersion)) break;
        this.logger.warn(`walkin: the server refused the auth token: ${message.error.message}`);
        this.runAuthEffects(this.auth.onAuthError());
        break;
      case "AuthExpired":
        // About the identity this client holds now (not one it has replaced since): refetch.
        if (!this.sync.isCurrentIdentity(message.identityVersion)) break;
        this.logger.warn(`walkin: the auth token stopped working: ${message.error.message}`);
        this.runAuthEffects(this.auth.onAuthExpired());
        this.flush();
        break;
      case "FatalError":
        this.logger.warn(`walkin: the server closed the connection: ${message.error.message}`);
        this.connection?.fault("fatal error from the server");
        break;
      case "Pong":
        break;
      default:
        message satisfies never;
    }
  }

  private applyTransition(transition: TransitionMessage): void {
    const awaitingAuthenticate = this.sync.identity.hasInFlight();
    const serverChanged = this.sync.applyTransition(transition);
    // It answered the Authenticate in flight: what waited for that (the next one) may go.
    if (awaitingAuthenticate && !this.sync.identity.hasInFlight()) this.scheduleFlush();
    // Settled now, but their callbacks run as microtasks: after the watchers below.
    const completed = this.requests.onTransitionApplied(this.sync.settledTimestamp());
    this.optimistic.drop(completed);
    // Held (a sign-in's signed-out moment, see identityHandover.ts): shown with the next identity's.
    const shown = this.handover.afterTransition(
      transition.endVersion.identity,
      serverChanged,
      (token) => isNull(this.sync.result(token)),
      this.sync.latestIdentity(),
    );
    const changed = shown === null ? [] : this.optimistic.recompute(this.sync, shown);
    this.runAuthEffects(this.auth.onTransition(transition.endVersion.identity));
    this.notify(changed);
  }

  // ------------------------------------------------------------------ wiring

  private afterQuerySetChange(token: QueryToken): void {
    this.notify(this.optimistic.recompute(this.sync, [token]));
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => this.flush());
  }

  /**
   * Sends what waits, in the order the server must receive it, paced by its rate limit (what
   * does not fit now goes out in a later flush, in order):
   *  1. requests re-sent after a reconnect, each under the token it was first sent under
   *     (`resendUnderEarlierTokens`), so that they run as the one who made them;
   *  2. unless a token is on its way, the token the client holds, the requests re-sent under
   *     it, then the queued query-set changes and the other requests: they run as that token's
   *     user. Every re-sent request goes before the query set that restores the queries: the
   *     server answers those before that query set's Transition (transport/connection.ts,
   *     `modifyQuerySet`), so a re-sent mutation whose write the restored results already
   *     show has its optimistic update gone by then, and the write never shows twice.
   */
  private flush(): void {
    this.flushScheduled = false;
    const connection = this.connection;
    if (!connection?.isOpen() || this.closed) return;
    if (!this.resendUnderEarlierTokens(connection)) return;
    if (this.auth.isFetching() || !this.putWantedTokenInForce(connection)) return;
    const send = (text: string) => connection.canSend() && connection.sendText(text);
    this.requests.sendUnsent(send, this.sync.identity.sentToken(), { onlyResent: true });
    if (this.requests.firstResentUnder() !== undefined) {
      // Paced, or the socket went: the rest go in a later flush, still before the query set.
      if (connection.isOpen()) this.flushLater(connection.msUntilCanSend());
      return;
    }
    // More than one message when the changes exceed what one ModifyQuerySet may carry.
    while (this.sync.hasPendingQuerySetChanges()) {
      if (!connection.canSend()) return this.flushLater(connection.msUntilCanSend());
      if (!connection.send(this.sync.takeQuerySetMessage()!)) return;
    }
    this.requests.sendUnsent(send, this.sync.identity.sentToken());
    if (connection.isOpen() && this.requests.hasUnsent()) this.flushLater(connection.msUntilCanSend());
    this.updateConnectionState();
  }

  /**
   * Re-sends the requests that were first sent under another token than the one the client
   * holds now (or than any, while a token is being fetched), oldest first, each after an
   * Authenticate with its own token when the connection carries another. Step by step, for a
   * mutation made as ada and lost with the connection, after `setAuth` for bob:
   *   1. the new connection starts signed out; an Authenticate with ada's token goes first;
   *   2. the mutation follows it: the server runs it as ada, as on its first send;
   *   3. once that Authenticate is answered, bob's goes (`putWantedTokenInForce`), then the
   *      query set and the requests made since, which run as bob.
   * Returns false while such requests remain (an Authenticate unanswered, or paced).
   */
  private resendUnderEarlierTokens(connection: Connection): boolean {
    const identity = this.sync.identity;
    while (this.auth.isFetching() || this.requests.resentUnderOtherThan(identity.wantedToken())) {
      const token = this.requests.firstResentUnder();
      if (token === undefined) return true;
      if (identity.sentToken() !== token && !this.sendAuthenticate(connection, token)) return false;
      this.requests.sendUnsent((text) => connection.canSend() && connection.sendText(text), token, { onlyResent: true });
      if (this.requests.firstResentUnder() === token) {
        if (connection.isOpen()) this.flushLater(connection.msUntilCanSend());
        return false;
      }
    }
    return true;
  }

  /**
   * Sends the Authenticate for the token the client holds, if this connection does not carry
   * it yet; false while it must wait for an earlier one's answer. The first time a connection
   * carries it, a sign-in hold learns which identity version ends it (identityHandover.ts).
   */
  private putWantedTokenInForce(connection: Connection): boolean {
    const identity = this.sync.identity;
    if (identity.needsWantedToken() && !this.sendAuthenticate(connection, identity.wantedToken())) return false;
    if (!this.identityRestored) {
      this.identityRestored = true;
      identity.wantedInPlace();
      this.notify(this.optimistic.recompute(this.sync, this.handover.restart(this.sync.latestIdentity())));
    }
    return true;
  }

  /** Sends an Authenticate for `token`; false while an earlier one is unanswered (see identitySync.ts), or if the socket is gone. */
  private sendAuthenticate(connection: Connection, token: string | null): boolean {
    const next = this.sync.identity.authenticate(token);
    if (next === null || !connection.send(next.message)) return false;
    if (next.wanted) this.auth.onAuthenticateSent(next.identityVersion);
    return true;
  }

  private flushLater(ms: number): void {
    if (this.flushTimer !== undefined) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, Math.max(1, ms));
  }

  private runAuthEffects(effects: AuthEffect[]): void {
    for (const effect of effects) {
      switch (effect.type) {
        case "fetchToken":
          void Promise.resolve()
            .then(() => effect.fetchToken({ forceRefreshToken: effect.forceRefreshToken }))
            .catch((error: unknown) => {
              this.logger.warn("walkin: fetchToken threw:", error);
              return error instanceof Error ? error : new Error(String(error));
            })
            .then((token) => {
              if (this.closed) return;
              this.runAuthEffects(this.auth.tokenFetched(effect.generation, this.sendableToken(token)));
              this.flush();
              this.updateConnectionState();
            });
          break;
        case "authenticate":
          // Sent by flush: after requests re-sent under earlier tokens, once no Authenticate is
          // unanswered (not connected: on the next connection).
          this.sync.identity.want(effect.token);
          this.flush();
          break;
        case "notify":
          this.callBack(() => effect.onChange(effect.isAuthenticated));
          break;
        default:
          effect satisfies never;
      }
    }
  }

  /**
   * A token the server would refuse for its length is refused here, as a fetch that failed:
   * the client signs out and says why. Sent, it would get a FatalError on every connection,
   * and every reconnect would send it again.
   */
  private sendableToken(token: string | null | undefined | Error): string | null | undefined | Error {
    if (typeof token !== "string" || token.length <= PROTOCOL_LIMITS.maxTokenChars) return token;
    const error = new Error(
      `the auth token from fetchToken is ${token.length} characters long; the server accepts at most ` +
        `${PROTOCOL_LIMITS.maxTokenChars}. Signed out. Issue shorter tokens (fewer or smaller claims).`,
    );
    this.logger.warn(`walkin: ${error.message}`);
    return error;
  }

  private notify(tokens: QueryToken[]): void {
    for (const token of tokens) {
      const listeners = this.watchers.get(token);
      if (listeners) this.callEach(listeners, (listener) => listener());
    }
  }

  /**
   * Calls each of `listeners` subscribed when this starts (one subscribed by a callback waits
   * for the next change) and still subscribed when its turn comes: once a callback has stopped
   * another listener, as Convex's client also has it, that listener is never called again.
   */
  private callEach<L>(listeners: Set<L>, call: (listener: L) => void): void {
    for (const listener of [...listeners]) if (listeners.has(listener)) this.callBack(() => call(listener));
  }

  private callBack(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.logger.warn("walkin: a callback threw:", error);
    }
  }

  private refuseCalls(): WalkinError | null {
    if (this.closed) return new WalkinError("This WalkinClient was closed; create a new one.", { code: "DISCONNECTED" });
    if (!this.connection) {
      return walkinError("MISUSE", "This WalkinClient was created with skipConnect (server rendering) and cannot call functions.");
    }
    return null;
  }

  private computeConnectionState(): ConnectionState {
    const stats = this.requests.stats();
    return {
      isWebSocketConnected: this.connection?.isOpen() ?? false,
      hasEverConnected: (this.connection?.connectionCount() ?? 0) > 0,
      connectionCount: this.connection?.connectionCount() ?? 0,
      connectionRetries: this.connection?.retries() ?? 0,
      hasInflightRequests: stats.mutations + stats.actions > 0,
      inflightMutations: stats.mutations,
      inflightActions: stats.actions,
      oldestInflightRequestAt: stats.oldestStartedAt,
      timeOfOldestInflightRequest: this.dateOf(stats.oldestStartedAt),
      lastTransitionTs: this.sync.lastTransitionTs(),
      isAuthenticated: this.auth.isAuthenticated(),
    };
  }

  /** `time` as a Date: the published state's own when it is that time (`sameFields` compares by identity). */
  private dateOf(time: number | null): Date | null {
    if (time === null) return null;
    const previous = this.state?.timeOfOldestInflightRequest;
    return previous?.getTime() === time ? previous : new Date(time);
  }

  /** Publishes a new state object only when a field changed (stable snapshots for React). */
  private updateConnectionState(): void {
    if (this.state === undefined) return; // during construction
    const next = this.computeConnectionState();
    if (sameFields(next, this.state)) return;
    this.state = next;
    this.callEach(this.stateListeners, (listener) => listener(next));
  }
}

function isNull(result: QueryResult | undefined): boolean {
  return result?.kind === "value" && result.value === null;
}

/** Whether every field of `a` holds the same value in `b` (runs after every message: no allocation). */
function sameFields<T extends object>(a: T, b: T): boolean {
  for (const key in a) if (a[key] !== b[key]) return false;
  return true;
}

/** 128 random bits, hex: the client's name for the server's mutation deduplication. */
function randomClientId(): string {
  const bytes = new Uint8Array(16);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

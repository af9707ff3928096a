/**
 * `SessionClient`: a `WalkinClient` wrapper that adds the page's session ID as the
 * `sessionId` argument of every call, for plain TypeScript and tests.
 *
 * Calls read `source.current` when they are made, so a call issued after a refresh resolved
 * uses the new ID. A watch subscribes with the current ID and, when the source switches,
 * subscribes with the new ID before dropping the old subscription (so the client never has a
 * moment with neither), then tells its listeners.
 */
import type { MutationOptions, WalkinClient, Watch } from "../../browser/index.js";
import type { FunctionArgs, FunctionReference, FunctionReturnType } from "../../server/api.js";
import type { SessionId } from "../sessionIdType.js";
import type { SessionIdSource } from "./source.js";

/** A function's args without `sessionId`, which the session helpers supply. */
export type SessionArgs<F extends FunctionReference<any>> = Omit<FunctionArgs<F>, "sessionId">;

/** `[args?]` when `sessionId` is the function's only required argument, `[args]` otherwise. */
export type SessionArgsRest<F extends FunctionReference<any>> = {} extends SessionArgs<F>
  ? [args?: SessionArgs<F>]
  : [args: SessionArgs<F>];

/** An object with no fields: the args of a function whose only argument is `sessionId`. */
type EmptyObject = Record<string, never>;

/**
 * A session function's args without `sessionId`, as a rest tuple typed as convex-helpers types
 * it: `[args?: EmptyObject]` when `sessionId` is the only argument, optional when every other
 * argument is.
 */
export type SessionArgsArray<F extends FunctionReference<any>> = keyof FunctionArgs<F> extends "sessionId"
  ? [args?: EmptyObject]
  : {} extends SessionArgs<F>
    ? [args?: SessionArgs<F>]
    : [args: SessionArgs<F>];

/** Like `SessionArgsArray`, but `"skip"` may stand in for the args (what `useSessionQuery` takes). */
export type SessionQueryArgsArray<F extends FunctionReference<any>> = keyof FunctionArgs<F> extends "sessionId"
  ? [args?: EmptyObject | "skip"]
  : {} extends SessionArgs<F>
    ? [args?: SessionArgs<F> | "skip"]
    : [args: SessionArgs<F> | "skip"];

/** A function that takes a `sessionId: string` argument. */
export type SessionFunction<Type extends "query" | "mutation" | "action"> = FunctionReference<Type, "public", { sessionId: string }, any>;

/**
 * @example
 * const source = createSessionIdSource({ store: localStorageStore("my-app"), scope: "browser" });
 * const sessions = new SessionClient(new WalkinClient(url), source);
 * await sessions.mutation(api.cart.add, { item: "apple" }); // sends { item, sessionId }
 */
export class SessionClient {
  constructor(
    readonly client: WalkinClient,
    readonly source: SessionIdSource,
  ) {}

  query<Q extends SessionFunction<"query">>(query: Q, ...args: SessionArgsRest<Q>): Promise<FunctionReturnType<Q>> {
    return this.withId(args[0], (withId) => this.client.query(query, withId));
  }

  /** `options.optimisticUpdate` sees the args with `sessionId`. */
  mutation<M extends SessionFunction<"mutation">>(
    mutation: M,
    ...[args, options]: [...SessionArgsRest<M>, options?: MutationOptions<NoInfer<FunctionArgs<M>>>]
  ): Promise<FunctionReturnType<M>> {
    return this.withId(args, (withId) => this.client.mutation(mutation, withId, options));
  }

  action<A extends SessionFunction<"action">>(action: A, ...args: SessionArgsRest<A>): Promise<FunctionReturnType<A>> {
    return this.withId(args[0], (withId) => this.client.action(action, withId));
  }

  /** A live query that follows the session ID across refreshes. */
  watchQuery<Q extends SessionFunction<"query">>(query: Q, ...args: SessionArgsRest<Q>): Watch<FunctionReturnType<Q>> {
    const userArgs = args[0];
    const watchFor = (id: string) => this.client.watchQuery(query, { ...userArgs, sessionId: id } as FunctionArgs<Q>);
    let watchedId = this.source.current;
    let inner = watchedId === undefined ? undefined : watchFor(watchedId);
    return {
      onUpdate: (callback) => {
        let active = true;
        let unsubscribeInner: (() => void) | undefined;
        const follow = (id: string) => {
          if (!active) return;
          if (id !== watchedId || inner === undefined) {
            watchedId = id;
            inner = watchFor(id);
          }
          const previous = unsubscribeInner;
          unsubscribeInner = inner.onUpdate(callback);
          previous?.();
          callback();
        };
        const unsubscribeSource = this.source.subscribe(follow);
        if (this.source.current !== undefined) follow(this.source.current);
        else void this.source.ready.then((id) => follow(this.source.current ?? id));
        return () => {
          active = false;
          unsubscribeSource();
          unsubscribeInner?.();
        };
      },
      localQueryResult: () => {
        if (this.source.current !== watchedId) return undefined; // switching: the old ID's result is stale
        return inner?.localQueryResult();
      },
    };
  }

  /** The session ID calls are made with now (typed as convex-helpers types it). */
  getSessionId(): SessionId {
    return this.source.current as SessionId;
  }

  /**
   * Switches every later call, watch, provider and (per-browser) tab to this ID, which must be
   * one the client generated (a UUID v4 by default); nothing is carried over: use
   * `source.refresh(beforeUpdate)` for that. convex-helpers' `ConvexReactSessionClient` method.
   */
  setSessionId(sessionId: SessionId | string): void {
    this.source.set(sessionId);
  }

  /** `query` under convex-helpers' `ConvexReactSessionClient` name. */
  sessionQuery<Q extends SessionFunction<"query">>(query: Q, ...args: SessionArgsArray<Q>): Promise<FunctionReturnType<Q>> {
    return this.query(query, ...(args as SessionArgsRest<Q>));
  }

  /** `mutation` under convex-helpers' `ConvexReactSessionClient` name. */
  sessionMutation<M extends SessionFunction<"mutation">>(
    mutation: M,
    ...rest: [...SessionArgsRest<M>, options?: MutationOptions<NoInfer<FunctionArgs<M>>>]
  ): Promise<FunctionReturnType<M>> {
    return this.mutation(mutation, ...rest);
  }

  /** `action` under convex-helpers' `ConvexReactSessionClient` name. */
  sessionAction<A extends SessionFunction<"action">>(action: A, ...args: SessionArgsArray<A>): Promise<FunctionReturnType<A>> {
    return this.action(action, ...(args as SessionArgsRest<A>));
  }

  /**
   * Calls `call` with the args and the session ID. With an ID (always, after creation) the call
   * goes out synchronously, like the client's own: awaiting first would let a plain call made
   * right after this one reach the server before it, and delay its optimistic update.
   */
  private withId<T>(args: object | undefined, call: (args: any) => Promise<T>): Promise<T> {
    const current = this.source.current;
    if (current !== undefined) return call({ ...args, sessionId: current });
    return this.source.ready.then((id) => call({ ...args, sessionId: this.source.current ?? id }));
  }
}

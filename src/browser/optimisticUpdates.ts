/**
 * Optimistic updates, without I/O: layers of local edits drawn over the server's results.
 *
 * A mutation called with `optimisticUpdate` adds a layer: the function itself, kept so it can
 * be re-run. What watchers see is the server's results with every remaining layer applied, in
 * the order the mutations were made; after each Transition the layers are re-run over the new
 * server results (an update written as "append my message to the list" stays correct while
 * other messages arrive). A layer is dropped when the Transition that includes its mutation
 * (ts ≥ the mutation's commit ts) is applied, so the real write takes its place in the same
 * step, or when the mutation fails, which rolls the edit back.
 *
 * Updates must not modify the values they read (build new objects instead): those values are
 * the server's results, shared with every watcher.
 */
import type { FunctionArgs, FunctionReference, FunctionReturnType } from "../server/api.js";
import type { RequestId } from "../transport/protocol.js";
import type { JSONValue, Value } from "../values/value.js";
import { convertFromJson, convertToJson } from "../values/json.js";
import { canonicalPath, functionPath } from "../server/functionPath.js";
import { queryToken, resultFromLocalValue, sameResult, type QueryResult, type QueryToken } from "./queryResult.js";

/** The view of the client's queries that an optimistic update reads and edits. */
export interface OptimisticLocalStore {
  /** The current (possibly already optimistic) value of a query, or undefined if it has none. */
  getQuery<Q extends FunctionReference<"query">>(query: Q, args?: FunctionArgs<Q>): FunctionReturnType<Q> | undefined;
  /** Sets the value a query shows until the mutation completes; undefined shows it as loading. */
  setQuery<Q extends FunctionReference<"query">>(query: Q, args: FunctionArgs<Q>, value: FunctionReturnType<Q> | undefined): void;
  /** Every subscribed query of that function, with its args and current value. */
  getAllQueries<Q extends FunctionReference<"query">>(query: Q): { args: FunctionArgs<Q>; value: FunctionReturnType<Q> | undefined }[];
}

export type OptimisticUpdate<Args = any> = (localStore: OptimisticLocalStore, args: Args) => void;

/** The server's side, as the layers see it (implemented by `LocalSyncState`). */
export interface ServerResults {
  has(token: QueryToken): boolean;
  result(token: QueryToken): QueryResult | undefined;
  queries(): Iterable<{ token: QueryToken; udfPath: string; args: JSONValue }>;
}

interface Layer {
  readonly requestId: RequestId;
  /** Returns what the update returned: nothing, unless it was written as an async function. */
  readonly apply: (store: OptimisticLocalStore) => unknown;
  /** Whether it was found returning a Promise (reported once, not at every re-run). */
  returnedPromise: boolean;
}

export class OptimisticUpdates {
  private layers: Layer[] = [];
  /** What watchers see, for every subscribed query that has a result. */
  private readonly visible = new Map<QueryToken, QueryResult>();
  /** Queries some layer set in the last recompute (they must be looked at again next time). */
  private overridden = new Set<QueryToken>();

  /**
   * `onUpdateError` hears of an update that threw (or whose Promise rejected), `onAsyncUpdate`
   * of one that returned a Promise: an async update, whose edits after its first await come
   * after the recompute that ran it and are lost.
   */
  constructor(
    private readonly onUpdateError: (error: unknown) => void = () => {},
    private readonly onAsyncUpdate: () => void = () => {},
  ) {}

  /** Adds a layer; call `recompute` to show it. */
  add(requestId: RequestId, update: OptimisticUpdate, args: Value): void {
    this.layers.push({ requestId, apply: (store) => update(store, args), returnedPromise: false });
  }

  /** Drops the layers of these mutations; true if any was dropped (then `recompute`). */
  drop(requestIds: Iterable<RequestId>): boolean {
    if (this.layers.length === 0) return false;
    const ids = new Set(requestIds);
    if (ids.size === 0) return false;
    const before = this.layers.length;
    this.layers = this.layers.filter((layer) => !ids.has(layer.requestId));
    return this.layers.length !== before;
  }

  layerCount(): number {
    return this.layers.length;
  }

  /** What a watcher of this query sees now. */
  result(token: QueryToken): QueryResult | undefined {
    return this.visible.get(token);
  }

  /**
   * Re-runs every layer over the server results. `serverChanged` names the queries whose server
   * result changed since the last call (and queries just subscribed or unsubscribed). Returns
   * the queries whose visible result changed; unchanged ones keep their previous object.
   */
  recompute(server: ServerResults, serverChanged: Iterable<QueryToken>): QueryToken[] {
    const edits = new Map<QueryToken, QueryResult | undefined>();
    if (this.layers.length > 0) {
      const store = this.store(server, edits);
      for (const layer of this.layers) {
        try {
          const returned = layer.apply(store);
          if (isPromiseLike(returned)) this.onPromiseReturned(layer, returned);
        } catch (error) {
          this.onUpdateError(error);
        }
      }
    }
    const candidates = new Set<QueryToken>(serverChanged);
    for (const token of this.overridden) candidates.add(token);
    for (const token of edits.keys()) candidates.add(token);
    this.overridden = new Set(edits.keys());

    const changed: QueryToken[] = [];
    for (const token of candidates) {
      const previous = this.visible.get(token);
      const next = !server.has(token) ? undefined : edits.has(token) ? edits.get(token) : server.result(token);
      if (sameResult(previous, next)) continue;
      if (next === undefined) this.visible.delete(token);
      else this.visible.set(token, next);
      changed.push(token);
    }
    return changed;
  }

  /**
   * An async update: said once per layer (it re-runs at every Transition), and its rejection
   * (an async update's throw) reported like a throw, which would otherwise go unhandled each time.
   */
  private onPromiseReturned(layer: Layer, returned: PromiseLike<unknown>): void {
    if (!layer.returnedPromise) {
      layer.returnedPromise = true;
      this.onAsyncUpdate();
    }
    returned.then(undefined, (error: unknown) => this.onUpdateError(error));
  }

  private store(server: ServerResults, edits: Map<QueryToken, QueryResult | undefined>): OptimisticLocalStore {
    const current = (token: QueryToken) => (edits.has(token) ? edits.get(token) : server.result(token));
    const valueOf = (result: QueryResult | undefined) => (result?.kind === "value" ? result.value : undefined);
    const tokenOf = (query: FunctionReference<"query">, args: unknown) =>
      queryToken(functionPath(query), convertToJson((args ?? {}) as Value, "args"));
    return {
      getQuery: (query, args) => valueOf(current(tokenOf(query, args))) as never,
      setQuery: (query, args, value) => {
        edits.set(tokenOf(query, args), value === undefined ? undefined : resultFromLocalValue(value as Value));
      },
      getAllQueries: (query) => {
        const path = canonicalPath(functionPath(query));
        const out: { args: any; value: any }[] = [];
        for (const q of server.queries()) {
          if (canonicalPath(q.udfPath) === path) out.push({ args: convertFromJson(q.args), value: valueOf(current(q.token)) });
        }
        return out;
      },
    };
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === "function";
}

/**
 * The server's view of one client's live queries, without I/O: it is told what happened
 * (a query-set change began or finished, a result changed, the engine published a snapshot, a
 * mutation committed) and returns the Transitions to send. `connection.ts` does the talking
 * to the engine and the socket.
 *
 * Versions. `version` is the StateVersion the client holds, i.e. that of the last Transition
 * sent: its query-set version, identity version and `ts`. Every Transition goes from it to a
 * new one, with `ts` never lower than before.
 *
 * Consistency. A Transition claims that, once applied, every result the client holds is valid
 * at `endVersion.ts`. Its `ts` is the engine's published timestamp when it is built (never
 * lower than the last one sent), which is sound because:
 *  - a query result sent earlier stays valid until the engine reports a change, and the
 *    engine reports every change of a flush (listeners) before announcing the flush (onFlush),
 *    synchronously; changes are held in `changed` and go out with the next Transition;
 *  - a new subscription's result is valid at the timestamp published when it resolved, and
 *    any change after that reaches its listener, which overrides the initial result.
 * While a query-set or identity change is in progress (`busy`), no Transition is built: one
 * built then would have to describe queries in two states at once. The change's own final
 * Transition carries everything that happened meanwhile.
 *
 * Congestion. While the wiring says the socket is congested (`hold`), no Transition is built
 * either: results keep replacing each other in `queries` (one per query, the newest), and
 * `release` returns one Transition from the version the client holds to the newest results.
 * A client that falls behind thus skips intermediate states instead of queueing them.
 *
 * Read your writes. A MutationResponse carries its commit `ts`; the client resolves the
 * mutation once it holds a Transition at or after it. `awaitedTs` remembers the highest such
 * `ts` so that a Transition (empty if need be) follows as soon as the engine published it.
 * Idle connections get no Transitions at all.
 */
import type { JSONValue } from "../values/index.js";
import type { SubscriptionBudget } from "./limits.js";
import type { ErrorPayload, QueryId, StateModification, StateVersion, TransitionMessage } from "./protocol.js";

/** The latest result of one query, as sent on the wire. */
export type QueryResult = { type: "QueryUpdated"; value: JSONValue } | { type: "QueryFailed"; error: ErrorPayload };

/** A subscription to start: the wiring subscribes and reports back with `subscribed`/`subscribeFailed`. */
export interface SubscribeRequest {
  queryId: QueryId;
  /** Generation of this subscription: results reported with another generation are stale. */
  gen: number;
  udfPath: string;
  args: JSONValue;
}

export interface Unsubscribable {
  unsubscribe(): void;
}

interface QueryEntry {
  readonly udfPath: string;
  readonly args: JSONValue;
  gen: number;
  subscription: Unsubscribable | null;
  result: QueryResult | null;
  /** Generation that produced `result` (a listener may report before `subscribed` is called). */
  resultGen: number;
}

export type ModifyPlan =
  | { ok: true; subscribe: SubscribeRequest[]; unsubscribe: Unsubscribable[] }
  | { ok: false; error: string };

export class ConnectionState {
  private readonly queries = new Map<QueryId, QueryEntry>();
  /** Queries whose result changed since the last Transition, in the order they changed. */
  private readonly changed = new Set<QueryId>();
  /** Modifications not tied to a live query (removals, refused adds), for the next Transition. */
  private extra: StateModification[] = [];
  private version: StateVersion = { querySet: 0, identity: 0, ts: 0 };
  /** Query-set version after every ModifyQuerySet received so far (the next one's base). */
  private receivedQuerySetVersion = 0;
  private awaitedTs = 0;
  /** Version numbers a finished query-set or identity change will send with the next Transition. */
  private bump: { querySet?: number; identity?: number } = {};
  private busy = false;
  private held = false;
  private nextGen = 1;
  private closed = false;

  /** `budget`: the server-wide and per-address caps each added query also counts against. */
  constructor(
    private readonly maxQueries: number,
    private readonly budget: SubscriptionBudget = UNLIMITED,
  ) {}

  /** The socket is congested: build no Transition until `release`. */
  hold(): void {
    this.held = true;
  }

  get isHeld(): boolean {
    return this.held;
  }

  /** The socket caught up: one Transition with everything that changed while held, if anything did. */
  release(publishedTs: number): TransitionMessage | null {
    this.held = false;
    return this.flushed(publishedTs);
  }

  /** False while a query-set or identity change is in progress or the socket is congested: `flushed` builds nothing then. */
  get canBuild(): boolean {
    return !this.busy && !this.held && !this.closed;
  }

  /** The `ts` of the last Transition built: the snapshot the client holds (or will, once it reads what was sent). */
  get clientTs(): number {
    return this.version.ts;
  }

  /**
   * The identity version of the last Authenticate accepted, whether or not a Transition has
   * carried it yet. The client numbers its Authenticates itself and may send the next before
   * the last one's Transition: while this connection's Transitions are held (a client slow to
   * read), the accepted version waits in `bump`, and checking the next one against the last
   * version sent would refuse a well-numbered Authenticate and kill the connection.
   */
  get identityVersion(): number {
    return this.bump.identity ?? this.version.identity;
  }

  /**
   * Checks a ModifyQuerySet on arrival (it is applied later, in order with the others):
   * its base must be the version left by the previous one. Returns an error or null.
   */
  receiveModify(baseVersion: number, newVersion: number): string | null {
    if (baseVersion !== this.receivedQuerySetVersion) {
      return `ModifyQuerySet: baseVersion ${baseVersion} does not match the server's query-set version ${this.receivedQuerySetVersion}`;
    }
    if (newVersion <= baseVersion) return `ModifyQuerySet: newVersion ${newVersion} must be greater than baseVersion ${baseVersion}`;
    this.receivedQuerySetVersion = newVersion;
    return null;
  }

  /**
   * Applies a query-set change in order. Adds become subscriptions to start; an add beyond
   * the per-connection limit is refused with a QueryFailed (and not kept); removing a query
   * the server does not hold is a no-op answered with QueryRemoved.
   */
  beginModify(modifications: ReadonlyArray<{ type: "Add"; queryId: QueryId; udfPath: string; args: JSONValue } | { type: "Remove"; queryId: QueryId }>): ModifyPlan {
    const subscribe: SubscribeRequest[] = [];
    const unsubscribe: Unsubscribable[] = [];
    for (const mod of modifications) {
      if (mod.type === "Remove") {
        const entry = this.queries.get(mod.queryId);
        if (entry?.subscription) unsubscribe.push(entry.subscription);
        if (entry) this.budget.give(1);
        this.queries.delete(mod.queryId);
        this.changed.delete(mod.queryId);
        this.extra.push({ type: "QueryRemoved", queryId: mod.queryId });
        continue;
      }
      if (this.queries.has(mod.queryId)) {
        for (const sub of unsubscribe) sub.unsubscribe();
        return { ok: false, error: `ModifyQuerySet: query ${mod.queryId} is already in the query set; remove it first or use a new queryId` };
      }
      if (this.queries.size >= this.maxQueries) {
        this.extra.push({
          type: "QueryFailed",
          queryId: mod.queryId,
          error: { code: "LIMIT_EXCEEDED", message: `A connection may subscribe to at most ${this.maxQueries} queries. Remove queries you no longer display.` },
        });
        continue;
      }
      const refused = this.budget.take();
      if (refused) {
        this.extra.push({ type: "QueryFailed", queryId: mod.queryId, error: refused });
        continue;
      }
      const gen = this.nextGen++;
      this.queries.set(mod.queryId, { udfPath: mod.udfPath, args: mod.args, gen, subscription: null, result: null, resultGen: 0 });
      subscribe.push({ queryId: mod.queryId, gen, udfPath: mod.udfPath, args: mod.args });
    }
    this.busy = true;
    return { ok: true, subscribe, unsubscribe };
  }

  /** Ends a query-set change: the Transition to the new version, at `publishedTs`. */
  finishModify(newVersion: number, publishedTs: number): TransitionMessage | null {
    this.busy = false;
    this.bump.querySet = newVersion;
    return this.flushed(publishedTs);
  }

  /**
   * Starts re-subscribing every query (new identity, new engine). Returns the subscriptions
   * to start and the old ones, to end once the new ones are in place (so that queries that
   * do not depend on the caller keep their cached execution in the engine).
   */
  beginResubscribe(): { subscribe: SubscribeRequest[]; unsubscribe: Unsubscribable[] } {
    this.busy = true;
    const subscribe: SubscribeRequest[] = [];
    const unsubscribe: Unsubscribable[] = [];
    for (const [queryId, entry] of this.queries) {
      if (entry.subscription) unsubscribe.push(entry.subscription);
      entry.subscription = null;
      entry.gen = this.nextGen++;
      subscribe.push({ queryId, gen: entry.gen, udfPath: entry.udfPath, args: entry.args });
    }
    return { subscribe, unsubscribe };
  }

  /** Ends a re-subscription: one Transition with every query's new result. */
  finishResubscribe(publishedTs: number, newIdentity?: number): TransitionMessage | null {
    this.busy = false;
    for (const queryId of this.queries.keys()) this.changed.add(queryId);
    if (newIdentity !== undefined) this.bump.identity = newIdentity;
    return this.flushed(publishedTs);
  }

  /**
   * A subscription started by `beginModify`/`beginResubscribe` resolved. Returns false if it
   * is no longer wanted (query removed, superseded, connection closed): the caller ends it.
   */
  subscribed(queryId: QueryId, gen: number, subscription: Unsubscribable, initial: QueryResult): boolean {
    const entry = this.queries.get(queryId);
    if (this.closed || !entry || entry.gen !== gen) return false;
    entry.subscription = subscription;
    if (entry.resultGen !== gen) this.setResult(queryId, entry, initial, gen);
    return true;
  }

  subscribeFailed(queryId: QueryId, gen: number, error: ErrorPayload): void {
    const entry = this.queries.get(queryId);
    if (this.closed || !entry || entry.gen !== gen) return;
    this.setResult(queryId, entry, { type: "QueryFailed", error }, gen);
  }

  /** The engine reports a changed result (during a flush, before `flushed`). */
  queryChanged(queryId: QueryId, gen: number, result: QueryResult): void {
    const entry = this.queries.get(queryId);
    if (this.closed || !entry || entry.gen !== gen) return;
    this.setResult(queryId, entry, result, gen);
  }

  /** The engine published snapshot `ts`: the Transition to send, if there is news for the client. */
  flushed(ts: number): TransitionMessage | null {
    if (this.busy || this.held || this.closed) return null;
    const readYourWrite = this.awaitedTs > this.version.ts && this.awaitedTs <= ts;
    const bumped = this.bump.querySet !== undefined || this.bump.identity !== undefined;
    if (this.changed.size === 0 && this.extra.length === 0 && !readYourWrite && !bumped) return null;
    return this.transition(ts);
  }

  /**
   * A mutation of this client committed at `ts` (its response is being sent). If the engine
   * already published `ts`, the Transition the client waits for goes out now; otherwise at the
   * flush that publishes it.
   */
  mutationCommitted(ts: number, publishedTs: number): TransitionMessage | null {
    this.awaitedTs = Math.max(this.awaitedTs, ts);
    return publishedTs >= ts ? this.flushed(publishedTs) : null;
  }

  /** The connection ended: returns every subscription, to end them. */
  close(): Unsubscribable[] {
    this.closed = true;
    this.budget.give(this.queries.size);
    const subscriptions = [...this.queries.values()].flatMap((entry) => (entry.subscription ? [entry.subscription] : []));
    this.queries.clear();
    this.changed.clear();
    return subscriptions;
  }

  private setResult(queryId: QueryId, entry: QueryEntry, result: QueryResult, gen: number): void {
    entry.result = result;
    entry.resultGen = gen;
    this.changed.add(queryId);
  }

  private transition(publishedTs: number): TransitionMessage {
    const bump = this.bump;
    this.bump = {};
    const modifications: StateModification[] = this.extra;
    this.extra = [];
    for (const queryId of this.changed) {
      const result = this.queries.get(queryId)?.result;
      if (result) modifications.push({ ...result, queryId });
    }
    this.changed.clear();
    const startVersion = this.version;
    this.version = {
      querySet: bump.querySet ?? startVersion.querySet,
      identity: bump.identity ?? startVersion.identity,
      ts: Math.max(publishedTs, startVersion.ts),
    };
    return { type: "Transition", startVersion, endVersion: this.version, modifications };
  }
}

const UNLIMITED: SubscriptionBudget = { take: () => null, give: () => {} };

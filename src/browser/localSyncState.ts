/**
 * The client's half of the sync protocol, without I/O: the set of queries the client wants
 * (identical path + args deduplicated into one server query with a subscriber count), the
 * query-set and identity versions, the server's results and the snapshot `ts` they are valid
 * at. Methods return the protocol messages to send; the client decides when to send them.
 *
 * Versions: every ModifyQuerySet moves the query-set version `n → n+1`, every Authenticate
 * the identity version. A Transition names the versions it starts from and ends at; the
 * client checks that it starts exactly where the last one ended, so no update is ever lost or
 * applied twice without being noticed. A connection starts from `{0, 0, 0}`: `restart()`
 * rebuilds the server's view from scratch (Connect, then the Authenticates, then one
 * ModifyQuerySet adding every query under its old id) while the old results stay visible until
 * new ones arrive.
 * A ModifyQuerySet holds at most `MAX_MODIFICATIONS` changes and `MAX_ARGS_BYTES` of args:
 * longer lists go out in several messages, each moving the version by one.
 * The identity version and the tokens Authenticates carry are `identity`'s (identitySync.ts):
 * the client sends them (first those of requests re-sent under earlier tokens), then the query
 * set that `restart` queued.
 *
 * Read your writes across a restart (`settledTimestamp`). A mutation settles once the results
 * the client shows are at or after its commit. After a restart those are still the old
 * connection's results until the server has every query back, and the new connection's first
 * Transitions answer only part of the query set: the Authenticate's has no queries at all, yet
 * its `ts` is the server's newest. Settling on that `ts` resolved a mutation whose write no
 * query showed yet (its optimistic layer dropped, the write appearing a message later). So
 * while restoring, the settled `ts` stays where the old results left it:
 *   1. `restart` opens the restore; the query set it re-adds (with anything subscribed since)
 *      goes out in one or more ModifyQuerySets;
 *   2. the message that empties that queue names the version that completes the restore;
 *   3. the first Transition reaching that version closes it, and from then on each
 *      Transition's `ts` is the settled `ts` again.
 */
import type {
  ConnectMessage,
  ModifyQuerySetMessage,
  QueryId,
  QuerySetModification,
  StateVersion,
  TransitionMessage,
} from "../transport/protocol.js";
import { PROTOCOL_LIMITS } from "../transport/protocol.js";
import type { JSONValue } from "../values/value.js";
import { IdentitySync } from "./identitySync.js";
import { MAX_ARGS_BYTES, argsTooLarge, pathTooLong, utf8Length } from "./messageSize.js";
import {
  errorResultFromServer,
  localErrorResult,
  queryToken,
  resultFromServer,
  sameResult,
  type QueryResult,
  type QueryToken,
} from "./queryResult.js";

export interface LocalQuery {
  readonly id: QueryId;
  readonly token: QueryToken;
  readonly udfPath: string;
  readonly args: JSONValue;
  /** What its Add takes in a ModifyQuerySet, in bytes (about its token's length in UTF-8). */
  readonly addBytes: number;
  /**
   * Its Add would not fit in a message, or its path is longer than the server accepts: it is
   * never sent (the server would close the connection, and every restart would send it
   * again), and its result is LIMIT_EXCEEDED.
   */
  readonly tooLarge: boolean;
  subscribers: number;
}

/** A Transition that does not continue from the state the client holds: the connection must restart. */
export class ProtocolMismatch extends Error {
  override readonly name = "ProtocolMismatch";
}

/**
 * The most modifications one ModifyQuerySet may carry: the server refuses a longer one as a
 * protocol violation (and closes the connection), so longer lists go out in several messages.
 */
const MAX_MODIFICATIONS = PROTOCOL_LIMITS.maxQueriesPerConnection;

/** Room for what surrounds a query's path and args in its Add (type, queryId, field names), or for a Remove. */
const MODIFICATION_BYTES = 64;

export class LocalSyncState {
  private nextQueryId = 0;
  private readonly byToken = new Map<QueryToken, LocalQuery>();
  private readonly byId = new Map<QueryId, LocalQuery>();
  /** Changes since the last ModifyQuerySet on this connection, in order. */
  private pending: QuerySetModification[] = [];
  /** A whole query set a restart held back while a token was fetched: sent by the next flush, even if empty. */
  private querySetOwed = false;
  private querySetVersion = 0;
  /** The tokens and identity versions of this connection's Authenticates. */
  readonly identity = new IdentitySync();
  private server: StateVersion = { querySet: 0, identity: 0, ts: 0 };
  private readonly results = new Map<QueryId, QueryResult>();
  private maxObservedTs = 0;
  /** The `ts` the results shown are complete at (see the top of this file). */
  private settledTs = 0;
  /**
   * Set by a restart until the server has every query back: the query-set version whose
   * Transition completes the restore, null while part of the restart's query set is unsent.
   */
  private restoring: { untilVersion: number | null } | null = null;
  private lastTs: number | null = null;

  /**
   * Adds a subscriber to (path, args); the first one queues an Add. A query whose Add would
   * not fit in a message, or whose path is too long, is held here alone, with a LIMIT_EXCEEDED result.
   */
  subscribe(udfPath: string, args: JSONValue): QueryToken {
    const token = queryToken(udfPath, args);
    const existing = this.byToken.get(token);
    if (existing) {
      existing.subscribers++;
      return token;
    }
    const addBytes = utf8Length(token) + MODIFICATION_BYTES;
    const refused = pathTooLong("query", udfPath) ?? (addBytes > MAX_ARGS_BYTES ? argsTooLarge("query", udfPath, addBytes) : null);
    const tooLarge = refused !== null;
    const query: LocalQuery = { id: this.nextQueryId++ as QueryId, token, udfPath, args, addBytes, tooLarge, subscribers: 1 };
    this.byToken.set(token, query);
    this.byId.set(query.id, query);
    if (refused) this.results.set(query.id, localErrorResult(refused));
    else this.pending.push({ type: "Add", queryId: query.id, udfPath, args });
    return token;
  }

  /** Removes one subscriber; the last one queues a Remove (or cancels an Add not sent yet). */
  unsubscribe(token: QueryToken): void {
    const query = this.byToken.get(token);
    if (!query) return;
    if (--query.subscribers > 0) return;
    this.byToken.delete(token);
    this.byId.delete(query.id);
    this.results.delete(query.id);
    if (query.tooLarge) return; // the server never heard of it
    const unsentAdd = this.pending.findIndex((m) => m.type === "Add" && m.queryId === query.id);
    if (unsentAdd >= 0) this.pending.splice(unsentAdd, 1);
    else this.pending.push({ type: "Remove", queryId: query.id });
  }

  /**
   * The queued query-set changes as one message (null if none), advancing the version. What
   * does not fit in one message stays queued for the next call.
   */
  takeQuerySetMessage(): ModifyQuerySetMessage | null {
    if (this.pending.length === 0 && !this.querySetOwed) return null;
    this.querySetOwed = false;
    // At least one change per message: every Add queued fits in one alone (see `subscribe`).
    let count = 0;
    let bytes = 0;
    while (count < this.pending.length && count < MAX_MODIFICATIONS) {
      bytes += this.modificationBytes(this.pending[count]!);
      if (count > 0 && bytes > MAX_ARGS_BYTES) break;
      count++;
    }
    const message: ModifyQuerySetMessage = {
      type: "ModifyQuerySet",
      baseVersion: this.querySetVersion,
      newVersion: ++this.querySetVersion,
      modifications: this.pending.slice(0, count),
    };
    this.pending = this.pending.slice(count);
    if (this.restoring !== null && this.restoring.untilVersion === null && this.pending.length === 0) {
      this.restoring.untilVersion = message.newVersion;
    }
    return message;
  }

  private modificationBytes(modification: QuerySetModification): number {
    // A queued Add's query is still subscribed: unsubscribe takes an unsent Add out of the queue.
    return modification.type === "Add" ? this.byId.get(modification.queryId)!.addBytes : MODIFICATION_BYTES;
  }

  /** The identity version of the last Authenticate sent on this connection (0: none). */
  latestIdentity(): number {
    return this.identity.latestVersion();
  }

  /** Whether `identityVersion` is the wanted token's, the latest sent, and the one the results are at. */
  isCurrentIdentity(identityVersion: number): boolean {
    return this.identity.isWantedVersion(identityVersion) && this.server.identity === identityVersion;
  }

  /**
   * A new connection: returns its Connect, and queues what rebuilds the server's state after
   * it. The client sends the Authenticates (`identity`) and then the query set, which re-adds
   * every query under its old id: the queries must run as the token the client holds, and that
   * may come only after requests re-sent under earlier tokens, or once a token being fetched
   * arrives.
   */
  restart(connect: { clientId: string; connectionCount: number; newRequestsFrom: number; awaitedTs?: number }): ConnectMessage {
    const observed = Math.max(this.maxObservedTs, connect.awaitedTs ?? 0);
    this.server = { querySet: 0, identity: 0, ts: 0 };
    this.querySetVersion = 0;
    this.identity.restart();
    this.pending = [];
    this.restoring = { untilVersion: null };
    for (const query of this.byToken.values()) {
      if (!query.tooLarge) this.pending.push({ type: "Add", queryId: query.id, udfPath: query.udfPath, args: query.args });
    }
    // Sent even when empty (`querySetOwed`): the server answers a ModifyQuerySet with a
    // Transition at its latest snapshot, which also settles mutations whose response came on
    // the old connection but whose Transition did not (an idle connection would otherwise
    // never get one).
    this.querySetOwed = true;
    return {
      type: "Connect",
      clientId: connect.clientId,
      connectionCount: connect.connectionCount,
      ...(observed > 0 ? { maxObservedTimestamp: observed } : {}),
      newRequestsFrom: connect.newRequestsFrom,
    };
  }

  /**
   * Applies a whole Transition. Returns the queries whose server result changed (a result
   * equal to the previous one keeps the previous object and is not reported).
   * Throws `ProtocolMismatch` if it does not start from the state the client holds.
   */
  applyTransition(transition: TransitionMessage): QueryToken[] {
    const { startVersion: start, endVersion: end } = transition;
    const server = this.server;
    if (start.querySet !== server.querySet || start.identity !== server.identity || start.ts !== server.ts) {
      throw new ProtocolMismatch(
        `Transition starts at ${JSON.stringify(start)} but the client holds ${JSON.stringify(server)}`,
      );
    }
    if (end.querySet > this.querySetVersion || end.identity > this.identity.latestVersion()) {
      throw new ProtocolMismatch(`Transition ends at ${JSON.stringify(end)}, beyond the versions this client sent`);
    }
    const changed: QueryToken[] = [];
    for (const modification of transition.modifications) {
      const query = this.byId.get(modification.queryId);
      // A query removed here whose Remove the server had not seen yet: nobody wants it.
      if (!query) continue;
      const previous = this.results.get(query.id);
      let next: QueryResult | undefined;
      switch (modification.type) {
        case "QueryUpdated":
          next = resultFromServer(modification.value);
          break;
        case "QueryFailed":
          next = errorResultFromServer(modification.error);
          break;
        case "QueryRemoved":
          next = undefined;
          break;
        default:
          modification satisfies never;
      }
      if (sameResult(previous, next)) continue;
      if (next === undefined) this.results.delete(query.id);
      else this.results.set(query.id, next);
      changed.push(query.token);
    }
    this.server = { ...end };
    this.identity.onTransition(end.identity);
    this.maxObservedTs = Math.max(this.maxObservedTs, end.ts);
    const untilVersion = this.restoring?.untilVersion;
    if (untilVersion !== undefined && untilVersion !== null && end.querySet >= untilVersion) this.restoring = null;
    if (this.restoring === null) this.settledTs = Math.max(this.settledTs, end.ts);
    this.lastTs = end.ts;
    return changed;
  }

  /** The server's latest result for a query (undefined: none yet, or not subscribed). */
  result(token: QueryToken): QueryResult | undefined {
    const query = this.byToken.get(token);
    return query ? this.results.get(query.id) : undefined;
  }

  has(token: QueryToken): boolean {
    return this.byToken.has(token);
  }

  queries(): IterableIterator<LocalQuery> {
    return this.byToken.values();
  }

  /** The versions and `ts` of the last applied Transition on this connection. */
  serverVersion(): Readonly<StateVersion> {
    return this.server;
  }

  /**
   * The `ts` every result shown is at or after: a mutation committed at or before it is
   * visible. The highest Transition `ts` applied, except while a restart restores the query set.
   */
  settledTimestamp(): number {
    return this.settledTs;
  }

  /** The snapshot `ts` of the last applied Transition (on any connection), null before the first. */
  lastTransitionTs(): number | null {
    return this.lastTs;
  }

  hasPendingQuerySetChanges(): boolean {
    return this.pending.length > 0 || this.querySetOwed;
  }
}

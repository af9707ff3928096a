/**
 * Mutations and actions in flight, without I/O.
 *
 * Each request gets the next `RequestId` of this client; with the client's random `clientId`
 * it names the request for the server, which applies a mutation re-sent under the same name at
 * most once. A request is in one of three states:
 *
 *   unsent ──sent──► sent ──MutationResponse ok──► committed ──Transition ts ≥ commit ts──► settled
 *     ▲                │  │                            ▲
 *     │                │  └─ActionResponse with ts─────┘
 *     │                └─MutationResponse error / ActionResponse without ts──► settled
 *     └─ disconnect ───┘  (actions: rejected with DISCONNECTED instead)
 *
 * Read your writes: a mutation resolves only once the client has applied a Transition at or
 * after its commit `ts`, so code after `await client.mutation(...)` sees the write in every
 * watched query. The Transition may arrive before the response (the response then finds the
 * write already applied) or after it (the mutation waits in `committed`). An action that ran
 * mutations answers the `ts` of its last one and is read-your-writes the same way, whether it
 * succeeded or threw after writing (it is then rejected once the Transition is applied); once
 * its response has come, a disconnect no longer concerns it (it waits in `committed`, and the
 * next connection asks for a snapshot at or after that `ts`).
 *
 * Disconnects: a mutation without a response goes back to `unsent` and is re-sent, in the
 * original order, on the next connection (the server answers one it already applied from its
 * record). An action without a response is rejected: actions reach the outside world and may
 * not be idempotent, so the client never runs one twice behind the caller's back.
 *
 * Who runs a re-sent mutation: the server runs a mutation as the caller of the last
 * Authenticate before it on the connection. Each request records the token it was first sent
 * under (`sentUnder`), and is re-sent under that token only (`sendUnsent`): after a sign-in,
 * sign-out or token change, a mutation made before it and lost with the connection still
 * runs as the one who made it. The client puts each token back in force before its requests
 * (client.ts, `flush`); `resentUnderOtherThan` says whether any still wait for that.
 *
 * Promises are settled here, but their callbacks run as microtasks, after the caller (the
 * client) has finished handling the message and notified watchers.
 */
import type { ActionResponseMessage, MutationResponseMessage, RequestId } from "../transport/protocol.js";
import type { JSONValue, Value } from "../values/value.js";
import { WalkinError } from "../values/errors.js";
import { convertFromJson } from "../values/json.js";
import { requestText } from "./messageSize.js";
import { errorFromPayload } from "./queryResult.js";

/** `committed`: answered, waiting for a Transition at `ts`; then resolved with `result`, or rejected with `error` (an action that wrote, then threw). */
type RequestState = { kind: "unsent" } | { kind: "sent" } | { kind: "committed"; ts: number; result: Value; error?: Error };

interface Request {
  readonly type: "Mutation" | "Action";
  readonly requestId: RequestId;
  /**
   * The request's message as it goes on the wire, encoded once when the request is made: sent
   * as it is on every connection (a mutation is re-sent after each reconnect until answered).
   * Nothing else of the message is kept: nothing after the call needs its args.
   */
  readonly text: string;
  /** The token of the last Authenticate before its first send (null: signed out); undefined until then. */
  sentUnder: string | null | undefined;
  state: RequestState;
  readonly startedAt: number;
  readonly resolve: (value: Value) => void;
  readonly reject: (error: Error) => void;
}

export const ACTION_DISCONNECTED_MESSAGE =
  "The connection was lost while the action was running, so its outcome is unknown. Actions are " +
  "not retried automatically because they may not be idempotent; retry it yourself if it is safe to run twice.";

export class RequestManager {
  private nextRequestId = 0;
  /** In RequestId order (Map keeps insertion order), which is the order requests were made. */
  private readonly requests = new Map<RequestId, Request>();
  /**
   * How many of `requests` are mutations, and which are in each of the states that calls look
   * for: kept as requests come, change state (`setState`) and go (`forget`). The client reads
   * `stats()` after every message and call, sends unsent requests at every flush and resolves
   * committed ones at every Transition; walking every request in flight each time would cost
   * each message time in proportion to them (a burst of a thousand calls, a queue replayed
   * after a reconnect), when the answer is usually none or a few.
   *
   * Both maps are in RequestId order, as `requests` is: a request enters `unsent` when it is
   * made (the highest ID so far) and `committed` when its response comes (the server answers a
   * connection's mutations in the order they were sent). The one exception is a disconnect,
   * which puts older requests back into `unsent`: `onDisconnect` rebuilds it in order.
   */
  private mutations = 0;
  private unsent = new Map<RequestId, Request>();
  private readonly committed = new Map<RequestId, Request>();
  /** How many `unsent` requests were sent before (on a lost connection), by the token they were sent under. */
  private resent = new Map<string | null, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The `RequestId` the next request will get: every one sent so far is below it. */
  get nextId(): number {
    return this.nextRequestId;
  }

  /**
   * A mutation of `udfPath` with `args` (their JSON form). Throws, and numbers nothing, for one
   * the server would refuse (`requestText`: LIMIT_EXCEEDED).
   */
  mutation(udfPath: string, args: JSONValue): { requestId: RequestId; result: Promise<Value> } {
    return this.add("Mutation", udfPath, args);
  }

  /** An action of `udfPath` with `args`, as for `mutation`. */
  action(udfPath: string, args: JSONValue): { requestId: RequestId; result: Promise<Value> } {
    return this.add("Action", udfPath, args);
  }

  private add(type: "Mutation" | "Action", udfPath: string, args: JSONValue): { requestId: RequestId; result: Promise<Value> } {
    const requestId = this.nextRequestId as RequestId;
    const text = requestText(type === "Mutation" ? "mutation" : "action", { type, requestId, udfPath, args });
    this.nextRequestId++;
    let resolve!: (value: Value) => void;
    let reject!: (error: Error) => void;
    const result = new Promise<Value>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const request: Request = { type, requestId, text, sentUnder: undefined, state: { kind: "unsent" }, startedAt: this.now(), resolve, reject };
    this.requests.set(requestId, request);
    if (type === "Mutation") this.mutations++;
    this.unsent.set(requestId, request);
    return { requestId, result };
  }

  /**
   * Sends the requests not yet sent on this connection, oldest first, through `send`, while the
   * connection's last Authenticate carried `token` (see the top of this file): stops at the
   * first one sent before under another token, at the first never sent if `onlyResent`, and at
   * the first one `send` refuses (the connection is gone; they wait for the next one).
   */
  sendUnsent(send: (text: string) => boolean, token: string | null, { onlyResent = false } = {}): void {
    // Deleting the entry being visited is safe: a Map iterator carries on with the next one.
    for (const request of this.unsent.values()) {
      if (request.sentUnder === undefined ? onlyResent : request.sentUnder !== token) return;
      if (!send(request.text)) return;
      this.setState(request, { kind: "sent" });
      request.sentUnder = token;
    }
  }

  /**
   * The token the oldest unsent request was sent under on a lost connection; undefined if it
   * was never sent (nor were those after it) or none is unsent.
   */
  firstResentUnder(): string | null | undefined {
    return this.unsent.values().next().value?.sentUnder;
  }

  /** Whether a request to re-send was sent under a token other than `token` (it must go out first, under its own). */
  resentUnderOtherThan(token: string | null): boolean {
    for (const [sentUnder, count] of this.resent) if (sentUnder !== token && count > 0) return true;
    return false;
  }

  hasUnsent(): boolean {
    return this.unsent.size > 0;
  }

  /**
   * Handles a MutationResponse. `appliedTs` is the latest snapshot the client has applied.
   * Returns what became of the mutation, or null for a response to no mutation of ours.
   */
  onMutationResponse(response: MutationResponseMessage, appliedTs: number): { requestId: RequestId; outcome: "failed" | "resolved" | "committed" } | null {
    const request = this.requests.get(response.requestId);
    if (!request || request.type !== "Mutation" || request.state.kind === "committed") return null;
    if (!response.success) {
      this.forget(response.requestId, request);
      request.reject(errorFromPayload(response.error));
      return { requestId: response.requestId, outcome: "failed" };
    }
    let result: Value;
    try {
      result = convertFromJson(response.result);
    } catch (cause) {
      this.forget(response.requestId, request);
      request.reject(new WalkinError("The server sent a mutation result this client cannot decode", { code: "INTERNAL", cause }));
      return { requestId: response.requestId, outcome: "failed" };
    }
    if (response.ts <= appliedTs) {
      this.forget(response.requestId, request);
      request.resolve(result);
      return { requestId: response.requestId, outcome: "resolved" };
    }
    this.setState(request, { kind: "committed", ts: response.ts, result });
    return { requestId: response.requestId, outcome: "committed" };
  }

  /**
   * Handles an ActionResponse; false for a response to no action of ours. `appliedTs` is the
   * latest snapshot the client has applied: an action that wrote after it (`ts`) resolves once
   * a Transition reaches its last write, as a mutation does.
   */
  onActionResponse(response: ActionResponseMessage, appliedTs: number): boolean {
    const request = this.requests.get(response.requestId);
    if (!request || request.type !== "Action" || request.state.kind !== "sent") return false;
    if (!response.success) {
      if (response.ts !== undefined && response.ts > appliedTs) {
        this.setState(request, { kind: "committed", ts: response.ts, result: null, error: errorFromPayload(response.error) });
        return true;
      }
      this.forget(response.requestId, request);
      request.reject(errorFromPayload(response.error));
      return true;
    }
    let result: Value;
    try {
      result = convertFromJson(response.result);
    } catch (cause) {
      this.forget(response.requestId, request);
      request.reject(new WalkinError("The server sent an action result this client cannot decode", { code: "INTERNAL", cause }));
      return true;
    }
    if (response.ts !== undefined && response.ts > appliedTs) {
      this.setState(request, { kind: "committed", ts: response.ts, result });
      return true;
    }
    this.forget(response.requestId, request);
    request.resolve(result);
    return true;
  }

  /** A Transition up to `ts` was applied: resolves the committed mutations it includes. */
  onTransitionApplied(ts: number): RequestId[] {
    const done: RequestId[] = [];
    for (const [requestId, request] of this.committed) {
      if (request.state.kind !== "committed" || request.state.ts > ts) continue;
      const { result, error } = request.state;
      this.forget(requestId, request);
      if (error) request.reject(error);
      else request.resolve(result);
      done.push(requestId);
    }
    return done;
  }

  /** The connection closed: mutations go back to unsent, actions in flight are rejected. */
  onDisconnect(): RequestId[] {
    const rejected: RequestId[] = [];
    // Rebuilt in RequestId order: a mutation sent before a request still unsent goes first.
    const unsent = new Map<RequestId, Request>();
    for (const [requestId, request] of this.requests) {
      if (request.state.kind === "unsent") unsent.set(requestId, request);
      if (request.state.kind !== "sent") continue;
      if (request.type === "Mutation") {
        request.state = { kind: "unsent" };
        unsent.set(requestId, request);
        continue;
      }
      this.forget(requestId, request);
      request.reject(new WalkinError(ACTION_DISCONNECTED_MESSAGE, { code: "DISCONNECTED" }));
      rejected.push(requestId);
    }
    this.unsent = unsent;
    this.resent = new Map();
    for (const request of unsent.values()) this.countResent(request, 1);
    return rejected;
  }

  /** Rejects everything (the client is closing). */
  rejectAll(error: Error): RequestId[] {
    const ids = [...this.requests.keys()];
    for (const request of this.requests.values()) request.reject(error);
    this.requests.clear();
    this.mutations = 0;
    this.unsent.clear();
    this.resent.clear();
    this.committed.clear();
    return ids;
  }

  /** The highest commit timestamp of the mutations waiting for their Transition (0: none). */
  maxCommittedTs(): number {
    let max = 0;
    for (const request of this.committed.values()) if (request.state.kind === "committed") max = Math.max(max, request.state.ts);
    return max;
  }

  /** What is in flight, in constant time: the oldest request is the Map's first. */
  stats(): { mutations: number; actions: number; oldestStartedAt: number | null } {
    const oldest = this.requests.values().next();
    return { mutations: this.mutations, actions: this.requests.size - this.mutations, oldestStartedAt: oldest.done ? null : oldest.value.startedAt };
  }

  private setState(request: Request, state: RequestState): void {
    const requestId = request.requestId;
    this.leaveState(request);
    request.state = state;
    this.byState(state)?.set(requestId, request);
  }

  private forget(requestId: RequestId, request: Request): void {
    if (!this.requests.delete(requestId)) return;
    if (request.type === "Mutation") this.mutations--;
    this.leaveState(request);
  }

  private leaveState(request: Request): void {
    if (this.byState(request.state)?.delete(request.requestId) && request.state.kind === "unsent") this.countResent(request, -1);
  }

  /** Counts an unsent request that was sent before in (`by` 1) or out (-1) of `resent`. */
  private countResent(request: Request, by: 1 | -1): void {
    if (request.sentUnder === undefined) return;
    this.resent.set(request.sentUnder, (this.resent.get(request.sentUnder) ?? 0) + by);
  }

  /** The map of requests in `state`, for the states calls look for; `sent` has none. */
  private byState(state: RequestState): Map<RequestId, Request> | null {
    return state.kind === "unsent" ? this.unsent : state.kind === "committed" ? this.committed : null;
  }
}

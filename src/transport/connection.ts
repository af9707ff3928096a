/**
 * One WebSocket client: reads its messages, runs them on the engine, writes the answers. The
 * query-set bookkeeping lives in `ConnectionState` (no I/O); this class is the wiring.
 *
 * Lifecycle (`phase`): awaitingConnect → connected (after a valid Connect; `clientId` exists
 * only here) → closed (socket closed, protocol violation, flood or shutdown; nothing is read
 * or written any more and every subscription is ended).
 *
 * Ordering:
 *  - ModifyQuerySet, Authenticate and engine swaps run one at a time, in arrival order (the
 *    "control" chain): each changes which subscriptions exist, and the client numbers them.
 *  - Mutations run one at a time, in arrival order (the "mutation" chain), each as the caller
 *    of the last Authenticate received before it: `callerAt` is that Authenticate's outcome.
 *    Their responses go out in the same order, a successful one together with the Transition
 *    that includes its commit (see `offerTransition`).
 *  - Actions run concurrently, also as the caller of the last Authenticate before them.
 *  - Ping is answered at once.
 *
 * Backpressure (the bound is in `limits.ts`). Every write names a callback that `ws` calls
 * once the bytes reached the kernel: that is progress. Before a Transition is built, the
 * bytes still queued are compared with `sendBufferBytes`: above it the state holds its
 * results (newest only) and the next completed write that brings the queue back under it
 * releases one Transition. Replies that cannot be coalesced (responses, Pong) close the
 * connection with 4009 instead of taking the queue past `maxSendBufferBytes`.
 *
 * Liveness. A connection with bytes queued is alive while they are being written: pongs do
 * not count then (a client can send pongs without reading), and one that wrote nothing for
 * `stallTimeoutMs` is closed with 4009. A connection with nothing queued must answer pings.
 * The heartbeat also re-checks the auth token: one that stopped resolving (revoked, expired)
 * is reported with AuthExpired, so the client's `isAuthenticated` follows the server.
 */
import type { Duplex } from "node:stream";
import type { WebSocket, RawData } from "ws";
import type { Caller, CallerRequest, Engine } from "../engine/engine.js";
import type { ClientRequest } from "../engine/clientRequests.js";
import { convertFromJson, convertToJson, type Value } from "../values/index.js";
import { encodeTransition } from "./chunking.js";
import { ConnectionState, type SubscribeRequest } from "./connectionState.js";
import type { EngineSwitch } from "./engineSwitch.js";
import { errorPayload, invalidArguments, type ErrorReporting } from "./errors.js";
import type { ServerLimits, SubscriptionBudget } from "./limits.js";
import {
  CLOSE_CODES,
  PROTOCOL_LIMITS,
  encodeMessage,
  parseClientMessage,
  type ActionMessage,
  type ActionResponseMessage,
  type AuthenticateMessage,
  type ErrorPayload,
  type ModifyQuerySetMessage,
  type MutationMessage,
  type MutationResponseMessage,
  type ServerMessage,
  type TransitionMessage,
} from "./protocol.js";
import { TokenBucket } from "./rateLimit.js";
import type { ResultEncoder } from "./results.js";

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly engines: EngineSwitch;
  readonly reporting: ErrorReporting;
  readonly results: ResultEncoder;
  readonly limits: ServerLimits;
  closed(connection: Connection): void;
}

/** Queries one connection starts at once when it adds or re-subscribes many. */
const SUBSCRIBE_SLICE = 32;

/** How long a connection closed for being too slow keeps its socket, for the close frame to get through. */
const SLOW_CLOSE_GRACE_MS = 1_000;

type Phase = { kind: "awaitingConnect" } | { kind: "connected"; clientId: string } | { kind: "closed" };

export class Connection {
  private phase: Phase = { kind: "awaitingConnect" };
  /** The Connect's `newRequestsFrom` (null without one) and the highest mutation ID received since: see `isFirstSend`. */
  private newRequestsFrom: number | null = null;
  private highestMutationId = -1;
  private readonly state: ConnectionState;
  private readonly bucket = new TokenBucket(PROTOCOL_LIMITS.messagesPerSecond, PROTOCOL_LIMITS.messageBurst);
  private caller: Caller;
  private callerAt: Promise<Caller>;
  private control: Promise<void> = Promise.resolve();
  private mutations: Promise<void> = Promise.resolve();
  /** Mutation IDs below this were sent on an earlier connection (the Connect's `newRequestsFrom`, 0 without one). */
  private resentBelow = 0;
  /** The run of the last re-sent mutation received (they run in order): see `modifyQuerySet`. */
  private resentRun: Promise<void> = Promise.resolve();
  /**
   * Set by shutdown: mutations not yet started are dropped (the client re-sends them), and so
   * are actions not yet started (the client rejects them DISCONNECTED when the socket closes).
   */
  private draining = false;
  private missedPongs = 0;
  private transitionIds = 0;
  /** When the queue last moved (a write completed, or it started filling from empty). */
  private lastProgressAt = Date.now();
  /** The token a re-check found no longer valid (reported once). */
  private expiredToken: string | null = null;
  private checkingToken = false;
  /** Called by `ws` after each write (a bound method: one small object per connection, held while it is open). */
  private readonly written = this.progressed.bind(this);
  /**
   * Successful MutationResponses (their JSON text) waiting for the Transition that makes
   * their write visible, oldest first; see `offerTransition`. (An action's answer is not held:
   * see `runAction`.)
   */
  private awaitingTransition: Array<{ ts: number; text: string }> = [];

  /**
   * `stream`: the socket's underlying byte stream (the upgraded HTTP socket), corked while a
   * MutationResponse and its Transition are written so that they leave in one write.
   */
  constructor(
    private readonly socket: WebSocket,
    private readonly host: ConnectionHost,
    private readonly request?: CallerRequest,
    budget?: SubscriptionBudget,
    private readonly stream?: Pick<Duplex, "cork" | "uncork">,
  ) {
    this.state = new ConnectionState(PROTOCOL_LIMITS.maxQueriesPerConnection, budget);
    this.caller = { token: null, fromClient: true, request };
    this.callerAt = Promise.resolve(this.caller);
    socket.on("message", (data, isBinary) => this.receive(data, isBinary));
    socket.on("pong", () => (this.missedPongs = 0));
    socket.on("close", () => this.end());
    socket.on("error", () => this.end()); // a broken socket: "close" follows, nothing else to do
  }

  /** The engine published snapshot `ts` (called after every flush). */
  flushed(ts: number): void {
    if (this.closeIfStalled()) return;
    this.offerTransition(() => this.state.flushed(ts));
  }

  /**
   * Heartbeat tick. With bytes queued, liveness is progress (see the header); with none, a
   * socket that missed two pings in a row is dead.
   */
  heartbeat(): void {
    if (this.phase.kind === "closed" || this.closeIfStalled()) return;
    this.recheckToken();
    if (this.socket.bufferedAmount > 0) return;
    if (this.missedPongs >= 2) {
      this.socket.terminate();
      this.end();
      return;
    }
    this.missedPongs += 1;
    this.socket.ping();
  }

  /** Bytes queued for this client and not yet handed to the kernel. */
  get queuedBytes(): number {
    return this.socket.bufferedAmount;
  }

  /** Hot reload: re-subscribes every query on the now current engine, then one fresh Transition. */
  resubscribe(): Promise<void> {
    return this.enqueueControl(async () => {
      await this.resubscribeAll(undefined);
      // A response committed on the old engine may have waited for its flush, which the
      // swap stopped listening to: it goes out now (its Transition comes from the new engine).
      this.writeBatch(this.takeResponses(Infinity), []);
    }, undefined);
  }

  /** Shutdown: lets the running mutation finish (and answer), then closes with 4010. */
  async shutdown(reason: string): Promise<void> {
    this.draining = true;
    await this.mutations;
    // Committed mutations still waiting for their Transition are answered now: the client
    // then waits for that Transition on its next connection instead of re-sending them.
    this.writeBatch(this.takeResponses(Infinity), []);
    this.close(CLOSE_CODES.serverShuttingDown, reason);
  }

  private receive(data: RawData, isBinary: boolean): void {
    if (this.phase.kind === "closed") return;
    if (!this.bucket.take()) {
      const { messagesPerSecond, messageBurst } = PROTOCOL_LIMITS;
      this.close(CLOSE_CODES.rateLimited, `rate limit: over ${messagesPerSecond} messages/s (burst ${messageBurst})`);
      return;
    }
    if (isBinary) return this.fatal("binary messages are not supported: send JSON text messages");
    const parsed = parseClientMessage(textOf(data));
    if (!parsed.ok) return this.fatal(parsed.error);
    const message = parsed.message;
    if (this.phase.kind === "awaitingConnect") {
      if (message.type !== "Connect") return this.fatal(`the first message must be Connect, received ${message.type}`);
      this.phase = { kind: "connected", clientId: message.clientId };
      this.newRequestsFrom = message.newRequestsFrom ?? null;
      this.resentBelow = message.newRequestsFrom ?? 0;
      this.catchUpTo(message.maxObservedTimestamp);
      return;
    }
    switch (message.type) {
      case "Connect":
        return this.fatal("Connect may be sent only once per connection");
      case "ModifyQuerySet": {
        const error = this.state.receiveModify(message.baseVersion, message.newVersion);
        if (error) return this.fatal(error);
        const resentBefore = this.resentRun;
        void this.enqueueControl(() => this.modifyQuerySet(message, resentBefore), undefined);
        return;
      }
      case "Authenticate":
        return this.authenticate(message);
      case "Mutation":
        return this.enqueueMutation(message, this.phase.clientId, this.isFirstSend(message.requestId));
      case "Action":
        return this.runAction(message);
      case "Ping":
        return this.send({ type: "Pong" });
      default:
        message satisfies never;
    }
  }

  /**
   * Read-your-writes when a client moves between nodes: it saw timestamp `seen` on another
   * node, so nothing is answered here from an older snapshot. Every later query-set change and
   * mutation of this connection waits until this node has caught up to `seen`.
   */
  private catchUpTo(seen: number | undefined): void {
    if (seen === undefined || seen <= this.publishedTs()) return;
    const caughtUp = this.enqueueControl(() => this.host.engines.current.catchUpTo(seen), undefined);
    this.mutations = this.mutations.then(() => caughtUp);
  }

  // ------------------------------------------------------------------ query set and auth

  /**
   * Applies a query-set change; its Transition waits for the re-sent mutations received before
   * it (`resentBefore`). Why, step by step, for a mutation M whose connection dropped after M
   * committed and before its response came:
   *  1. The client shows M's write through M's optimistic update, on top of the old results.
   *  2. On the new connection it re-sends M, then the query set that restores its queries
   *     (browser/client.ts, `flush`); the server reads them in that order.
   *  3. The restoring Transition is built from results read now, which show M's write. Sent
   *     before M's response, it would show the write twice on the client (in the results, and
   *     in the optimistic update, which stays until the response says M committed), until the
   *     response came in the next message.
   *  4. So the Transition waits for M's run: M's response, answered from its receipt, is then
   *     already sent (alone, while the query set is being changed) or waiting to leave with
   *     this Transition, and the client drops the optimistic update as it applies the results.
   * A re-sent mutation that had not committed before commits now, after the results were read
   * or at a snapshot the Transition may not reach: its write shows once, through its update,
   * until the Transition that includes it comes with its response, as for any mutation.
   */
  private async modifyQuerySet(message: ModifyQuerySetMessage, resentBefore: Promise<void>): Promise<void> {
    const plan = this.state.beginModify(message.modifications);
    if (!plan.ok) return this.fatal(plan.error);
    for (const subscription of plan.unsubscribe) subscription.unsubscribe();
    await this.subscribeAll(plan.subscribe);
    await resentBefore;
    this.offerTransition(() => this.state.finishModify(message.newVersion, this.publishedTs()));
  }

  /**
   * Calls received after an Authenticate run as its outcome: `callerAt` resolves as soon as
   * the token is checked, so they need not wait for the queries to be re-subscribed.
   */
  private authenticate(message: AuthenticateMessage): void {
    let decide!: (caller: Caller) => void;
    this.callerAt = new Promise((resolve) => (decide = resolve));
    const step = this.enqueueControl(async () => {
      if (message.baseVersion !== this.state.identityVersion) {
        return this.fatal(`Authenticate: baseVersion ${message.baseVersion} does not match the server's identity version ${this.state.identityVersion}`);
      }
      const refused = message.token === null ? null : await this.checkToken(message.token);
      if (refused) return this.send({ type: "AuthError", baseVersion: message.baseVersion, error: refused });
      this.caller = { token: message.token, fromClient: true, request: this.request };
      this.expiredToken = null;
      decide(this.caller);
      await this.resubscribeAll(message.baseVersion + 1);
    }, undefined);
    // Refused, skipped or failed: the caller stays what it was. (Resolving twice is a no-op.)
    void step.then(() => decide(this.caller));
  }

  /** Null if the token resolves to an identity, else why it was refused. */
  private async checkToken(token: string): Promise<ErrorPayload | null> {
    try {
      if (await this.host.engines.current.tokenResolves({ token, fromClient: true })) return null;
    } catch (error) {
      return errorPayload(error, "authentication", this.host.reporting);
    }
    return { code: "UNAUTHENTICATED", message: "The auth token was not accepted: it is invalid, expired or revoked. Sign in again to get a new one." };
  }

  private async resubscribeAll(newIdentity: number | undefined): Promise<void> {
    const plan = this.state.beginResubscribe();
    await this.subscribeAll(plan.subscribe);
    for (const subscription of plan.unsubscribe) subscription.unsubscribe();
    this.offerTransition(() => this.state.finishResubscribe(this.publishedTs(), newIdentity));
  }

  /**
   * Starts `requests` a slice at a time, yielding to the event loop in between: one message
   * may add thousands of queries, and running them all at once would make every other
   * client wait for them (see bench/reliability/floods.ts).
   */
  private async subscribeAll(requests: SubscribeRequest[]): Promise<void> {
    for (let start = 0; start < requests.length; start += SUBSCRIBE_SLICE) {
      if (start > 0) await new Promise((resolve) => setImmediate(resolve));
      if (this.phase.kind === "closed") return;
      await Promise.all(requests.slice(start, start + SUBSCRIBE_SLICE).map((request) => this.subscribe(request)));
    }
  }

  private async subscribe({ queryId, gen, udfPath, args: json }: SubscribeRequest): Promise<void> {
    let args: Value;
    try {
      args = convertFromJson(json, "args");
    } catch (error) {
      return this.state.subscribeFailed(queryId, gen, invalidArguments(error));
    }
    const { results } = this.host;
    try {
      const subscription = await this.host.engines.current.subscriptions.subscribe(udfPath, args, this.caller, (outcome) => {
        // Runs inside the engine's flush: it must not throw, or other subscribers miss the flush.
        try {
          this.state.queryChanged(queryId, gen, results.of(outcome, udfPath));
        } catch (error) {
          this.host.reporting.log(`[walkin] dropping an update of query ${udfPath}: ${(error as Error).stack}`);
        }
      });
      if (!this.state.subscribed(queryId, gen, subscription, results.of(subscription.outcome, udfPath))) subscription.unsubscribe();
    } catch (error) {
      this.state.subscribeFailed(queryId, gen, errorPayload(error, `query ${udfPath}`, this.host.reporting));
    }
  }

  // ------------------------------------------------------------------ mutations and actions

  /**
   * Whether a Mutation is sent for the first time, so that its receipt need not be looked up
   * (`clientRequests.ts`, "First sends"): its ID is at or above the Connect's `newRequestsFrom`
   * (the client's word that no earlier connection carried it) and above every mutation ID
   * this connection received before (so an ID repeated on one connection is still looked up).
   * Decided as messages arrive, in their order.
   */
  private isFirstSend(requestId: number): boolean {
    const first = this.newRequestsFrom !== null && requestId >= this.newRequestsFrom && requestId > this.highestMutationId;
    this.highestMutationId = Math.max(this.highestMutationId, requestId);
    return first;
  }

  private enqueueMutation(message: MutationMessage, clientId: string, firstSend: boolean): void {
    const callerAt = this.callerAt;
    const run = this.mutations.then(async () => {
      if (this.draining || this.phase.kind === "closed") return;
      await this.runMutation(message, { clientId, requestId: message.requestId, firstSend }, await callerAt);
    });
    this.mutations = run.catch((error) => this.internalFailure(error));
    if (message.requestId < this.resentBelow) this.resentRun = this.mutations;
  }

  private async runMutation({ requestId, udfPath, args: json }: MutationMessage, request: ClientRequest, caller: Caller): Promise<void> {
    let args: Value;
    try {
      args = convertFromJson(json, "args");
    } catch (error) {
      return this.sendInOrder({ type: "MutationResponse", requestId, success: false, error: invalidArguments(error) });
    }
    try {
      const { value, ts, deduplicated } = await this.host.engines.mutate((engine) => engine.runClientMutation(udfPath, args, caller, request));
      // A first send that was on record after all: this client's word is not good, so every
      // later mutation of this connection is looked up (clientRequests.ts, "First sends", c).
      if (deduplicated && request.firstSend === true) this.newRequestsFrom = null;
      if (this.phase.kind === "closed") return;
      this.awaitingTransition.push({ ts, text: encodeMessage({ type: "MutationResponse", requestId, success: true, result: convertToJson(value), ts }) });
      this.offerTransition(() => this.state.mutationCommitted(ts, this.publishedTs()));
    } catch (error) {
      this.sendInOrder({ type: "MutationResponse", requestId, success: false, error: errorPayload(error, `mutation ${udfPath}`, this.host.reporting) });
    }
  }

  private runAction({ requestId, udfPath, args: json }: ActionMessage): void {
    const callerAt = this.callerAt;
    const run = async () => {
      const caller = await callerAt;
      // Checked after the caller resolves, as a queued mutation checks when its turn comes:
      //  1. close() sets `draining` on every connection at once, then waits for the actions
      //     running on the engine to end (`engines.drained`);
      //  2. an action started after that wait began (one sent after close(), or one whose
      //     Authenticate was still being checked) would run on an engine about to be closed,
      //     its ctx.runMutation failing midway, and its answer could not reach the client anyway;
      //  3. so it does not start: the socket closes with 4010 and the client rejects the call
      //     DISCONNECTED, as any action a lost connection cut.
      if (this.draining) return;
      let args: Value;
      try {
        args = convertFromJson(json, "args");
      } catch (error) {
        return this.send({ type: "ActionResponse", requestId, success: false, error: invalidArguments(error) });
      }
      // What the action wrote (through ctx.runMutation, nested actions too), and where: its
      // answer carries the last write's timestamp, so that the client resolves it (or rejects
      // it: an action that wrote and then threw keeps its writes) once its queries show them.
      const written = { ts: 0 };
      let ranOn: Engine | undefined;
      let answer: ActionResponseMessage;
      try {
        const value = await this.host.engines.use((engine) => engine.runAction(udfPath, args, caller, (ranOn = engine, written)));
        answer = { type: "ActionResponse", requestId, success: true, result: convertToJson(value) };
      } catch (error) {
        answer = { type: "ActionResponse", requestId, success: false, error: errorPayload(error, `action ${udfPath}`, this.host.reporting) };
      }
      const ts = written.ts > 0 ? await this.reachable(written.ts, ranOn) : null;
      // Sent at once, unlike a MutationResponse, which waits to leave with its Transition: a
      // mutation left unanswered is re-sent on the next connection, an action is not, and an
      // answer held here would be lost with the socket (the client would call a finished
      // action DISCONNECTED). The Transition that reaches `ts` follows.
      this.sendActionResponse(ts === null ? answer : { ...answer, ts }, udfPath);
      if (ts !== null) this.offerTransition(() => this.state.mutationCommitted(ts, this.publishedTs()));
    };
    run().catch((error) => this.internalFailure(error));
  }

  /**
   * Sends an action's answer. A result larger than the hard cap on a connection's queue could
   * never be sent: `send` would close the connection as too slow, the client would call the
   * action DISCONNECTED and re-subscribe every query. The caller gets the limit's error instead.
   */
  private sendActionResponse(answer: ActionResponseMessage, udfPath: string): void {
    if (this.phase.kind === "closed" || this.socket.readyState !== this.socket.OPEN) return;
    let text = encodeMessage(answer);
    const { maxSendBufferBytes } = this.host.limits;
    if (answer.success && text.length > maxSendBufferBytes) {
      const message =
        `action ${udfPath} returned ${text.length} bytes, more than one reply to a client may take (${maxSendBufferBytes} bytes, ` +
        `the server's maxSendBufferBytes). Return less: store large content elsewhere (a table, a file) and return a reference to it.`;
      text = encodeMessage({ type: "ActionResponse", requestId: answer.requestId, success: false, error: { code: "LIMIT_EXCEEDED", message }, ts: answer.ts });
    }
    if (this.fitsHardCap(text)) this.write(text);
  }

  /**
   * `ts` if the engine serving this connection reaches it, else null. An action that ran on a
   * retired engine (a hot reload) wrote to that engine's database: the serving engine learns
   * its commits when they share a file, but on a database of its own (`--db sqlite::memory:`
   * opens one per version) no Transition would ever reach `ts`, and the client would wait for
   * one forever.
   */
  private async reachable(ts: number, ranOn: Engine | undefined): Promise<number | null> {
    const current = this.host.engines.current;
    if (ranOn === current || ts <= current.latestTimestamp) return ts;
    await current.refreshFromStorage().catch(() => {});
    return ts <= current.latestTimestamp ? ts : null;
  }

  // ------------------------------------------------------------------ plumbing

  private enqueueControl<T>(step: () => Promise<T>, fallback: T): Promise<T> {
    const run = this.control
      .then(() => (this.phase.kind === "closed" ? fallback : step()))
      .catch((error) => {
        this.internalFailure(error);
        return fallback;
      });
    this.control = run.then(() => undefined);
    return run;
  }

  private publishedTs(): number {
    return this.host.engines.current.subscriptions.publishedTimestamp;
  }

  /** A message that cannot be coalesced: sent, unless it would take the queue past the hard cap. */
  private send(message: ServerMessage): void {
    if (this.phase.kind === "closed" || this.socket.readyState !== this.socket.OPEN) return;
    const text = encodeMessage(message);
    if (this.fitsHardCap(text)) this.write(text);
  }

  /** False (and the connection closed with 4009) if `text` would take the queue past the hard cap. */
  private fitsHardCap(text: string): boolean {
    const { maxSendBufferBytes } = this.host.limits;
    if (this.socket.bufferedAmount + text.length <= maxSendBufferBytes) return true;
    this.closeTooSlow(`client too slow: over ${maxSendBufferBytes} bytes queued for it`);
    return false;
  }

  /**
   * Builds and sends a Transition if the queue has room; otherwise holds the state (its
   * results coalesce) until a completed write releases it.
   *
   * Successful MutationResponses wait here for the Transition that includes their commit, and
   * leave right before it, in the same write: the client reads both in one go and resolves
   * the mutation at once (read your writes) instead of handling two messages a flush apart.
   * The order on the wire stays MutationResponse, then Transition (docs/protocol.md). Step by
   * step, for a mutation committed at `ts`:
   *  1. `runMutation` queues its response and asks for a Transition (`mutationCommitted`).
   *     The engine has usually not published `ts` yet: no Transition, the response waits.
   *  2. The engine's flush publishes `ts` and calls `flushed`: the state builds a Transition
   *     with `endVersion.ts >= ts` (it owes one for `ts`), and the response goes out with it.
   * A response is never kept waiting for a Transition that cannot be built now: while the
   * state is busy (query-set or identity change) or held (congested socket), or once the
   * client already holds a Transition at `ts` or later, every response whose `ts` is
   * published goes out alone, as before. What remains waits for the flush that publishes
   * it, which the commit itself scheduled.
   */
  private offerTransition(build: () => TransitionMessage | null): void {
    if (this.phase.kind === "closed") return;
    if (this.socket.bufferedAmount >= this.host.limits.sendBufferBytes) this.state.hold();
    const transition = build();
    if (this.socket.readyState !== this.socket.OPEN) return;
    const texts = transition ? encodeTransition(transition, PROTOCOL_LIMITS.maxServerMessageBytes, this.transitionIds++) : [];
    const upTo = this.state.canBuild ? this.state.clientTs : Math.max(this.state.clientTs, this.publishedTs());
    this.writeBatch(this.takeResponses(upTo), texts);
  }

  /**
   * A failed mutation's response. Responses go out in the order the mutations ran (the
   * client may rely on it): behind waiting ones it waits too, and leaves right after them.
   */
  private sendInOrder(response: MutationResponseMessage): void {
    const last = this.awaitingTransition.at(-1);
    if (last === undefined) return this.send(response);
    if (this.phase.kind !== "closed") this.awaitingTransition.push({ ts: last.ts, text: encodeMessage(response) });
  }

  /**
   * Removes and returns the waiting responses whose commit is at or before `ts`: a prefix,
   * since mutations commit one at a time in order (and a failed one waits with the `ts` of
   * the one before it).
   */
  private takeResponses(ts: number): string[] {
    let count = 0;
    while (count < this.awaitingTransition.length && this.awaitingTransition[count]!.ts <= ts) count++;
    if (count === 0) return [];
    return this.awaitingTransition.splice(0, count).map((response) => response.text);
  }

  /**
   * Writes responses (each checked against the hard cap, like `send`) then Transition texts,
   * with the stream corked so that they leave in one write.
   */
  private writeBatch(responses: string[], transitionTexts: string[]): void {
    if (responses.length + transitionTexts.length === 0) return;
    if (this.phase.kind === "closed" || this.socket.readyState !== this.socket.OPEN) return;
    const corked = responses.length > 0 && transitionTexts.length > 0 && this.stream !== undefined;
    if (corked) this.stream.cork();
    try {
      for (const text of responses) {
        if (!this.fitsHardCap(text)) return;
        this.write(text);
      }
      for (const text of transitionTexts) this.write(text);
    } finally {
      if (corked) this.stream.uncork();
    }
  }

  private write(text: string): void {
    if (this.socket.bufferedAmount === 0) this.lastProgressAt = Date.now();
    this.socket.send(text, this.written);
  }

  /** A write reached the kernel: the client is reading. Releases held results once there is room. */
  private progressed(): void {
    this.lastProgressAt = Date.now();
    if (this.phase.kind === "closed" || !this.state.isHeld) return;
    if (this.socket.bufferedAmount < this.host.limits.sendBufferBytes) this.offerTransition(() => this.state.release(this.publishedTs()));
  }

  /** Closes a connection whose queued bytes have not moved for `stallTimeoutMs`. */
  private closeIfStalled(): boolean {
    if (this.phase.kind === "closed") return true;
    const { stallTimeoutMs } = this.host.limits;
    if (this.socket.bufferedAmount === 0 || Date.now() - this.lastProgressAt < stallTimeoutMs) return false;
    this.closeTooSlow(`client not reading: nothing written to it for ${stallTimeoutMs} ms`);
    return true;
  }

  /**
   * Closes with 4009. The close frame waits behind the queued bytes, so the socket is cut
   * after a short grace: a client that catches up sees 4009, one that never reads is gone.
   */
  private closeTooSlow(reason: string): void {
    const socket = this.socket;
    this.host.reporting.debug(`[walkin] closing a connection: ${reason}`);
    this.close(CLOSE_CODES.clientTooSlow, reason);
    setTimeout(() => socket.terminate(), SLOW_CLOSE_GRACE_MS).unref();
  }

  /**
   * Re-checks the token the server accepted (one check at a time): a revoked or expired one
   * is reported once with AuthExpired; calls keep running with it, i.e. signed out, until the
   * client sends another Authenticate.
   */
  private recheckToken(): void {
    const token = this.caller.token ?? null;
    if (token === null || token === this.expiredToken || this.checkingToken) return;
    this.checkingToken = true;
    void this.checkToken(token).then((refused) => {
      this.checkingToken = false;
      // Only a token the auth hook refused counts; a failed check (an outage) proves nothing.
      if (refused?.code !== "UNAUTHENTICATED" || this.caller.token !== token || this.phase.kind === "closed") return;
      this.expiredToken = token;
      this.send({ type: "AuthExpired", identityVersion: this.state.identityVersion, error: refused });
    });
  }

  /** A protocol violation: FatalError, then close with 4000. */
  private fatal(problem: string): void {
    if (this.phase.kind === "closed") return;
    const reason = problem.length > 500 ? `${problem.slice(0, 500)}...` : problem;
    // The client's mistake (or an attacker's): one line, at debug level, so floods of them bury nothing.
    this.host.reporting.debug(`[walkin] closing a connection after a protocol error: ${reason}`);
    this.writeBatch(this.takeResponses(Infinity), []); // committed: answered, so the client need not re-send them
    this.send({ type: "FatalError", error: { code: "MISUSE", message: reason } });
    this.close(CLOSE_CODES.protocolError, reason);
  }

  /** A bug in the server: logged; the client is told and reconnects. */
  private internalFailure(error: unknown): void {
    this.fatal(errorPayload(error, "connection", this.host.reporting).message);
  }

  private close(code: number, reason: string): void {
    if (this.phase.kind === "closed") return;
    if (this.socket.readyState === this.socket.OPEN) this.socket.close(code, truncateReason(reason));
    this.end();
  }

  private end(): void {
    if (this.phase.kind === "closed") return;
    this.phase = { kind: "closed" };
    this.awaitingTransition = [];
    for (const subscription of this.state.close()) subscription.unsubscribe();
    this.host.closed(this);
  }
}

function textOf(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return (Buffer.isBuffer(data) ? data : Buffer.from(data)).toString("utf8");
}

/** Close reasons are limited to 123 bytes of UTF-8. */
function truncateReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let cut = reason.slice(0, 120);
  while (Buffer.byteLength(`${cut}...`) > 123) cut = cut.slice(0, -1);
  return `${cut}...`;
}

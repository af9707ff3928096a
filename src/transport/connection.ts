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
 *  - Actions run concurrently, also as the caller of the last Authenticate before them.
 *  - Ping is answered at once.
 */
import type { WebSocket, RawData } from "ws";
import type { Caller, CallerRequest } from "../engine/engine.js";
import { convertFromJson, convertToJson, type Value } from "../values/index.js";
import { encodeTransition } from "./chunking.js";
import { ConnectionState, type SubscribeRequest } from "./connectionState.js";
import type { EngineSwitch } from "./engineSwitch.js";
import { errorPayload, invalidArguments, type ErrorReporting } from "./errors.js";
import {
  CLOSE_CODES,
  PROTOCOL_LIMITS,
  encodeMessage,
  parseClientMessage,
  type ActionMessage,
  type AuthenticateMessage,
  type ErrorPayload,
  type ModifyQuerySetMessage,
  type MutationMessage,
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
  closed(connection: Connection): void;
}

type Phase = { kind: "awaitingConnect" } | { kind: "connected"; clientId: string } | { kind: "closed" };

export class Connection {
  private phase: Phase = { kind: "awaitingConnect" };
  private readonly state = new ConnectionState(PROTOCOL_LIMITS.maxQueriesPerConnection);
  private readonly bucket = new TokenBucket(PROTOCOL_LIMITS.messagesPerSecond, PROTOCOL_LIMITS.messageBurst);
  private caller: Caller;
  private callerAt: Promise<Caller>;
  private control: Promise<void> = Promise.resolve();
  private mutations: Promise<void> = Promise.resolve();
  /** Set by shutdown: mutations not yet started are dropped (the client re-sends them). */
  private draining = false;
  private missedPongs = 0;
  private transitionIds = 0;

  constructor(
    private readonly socket: WebSocket,
    private readonly host: ConnectionHost,
    private readonly request?: CallerRequest,
  ) {
    this.caller = { token: null, fromClient: true, request };
    this.callerAt = Promise.resolve(this.caller);
    socket.on("message", (data, isBinary) => this.receive(data, isBinary));
    socket.on("pong", () => (this.missedPongs = 0));
    socket.on("close", () => this.end());
    socket.on("error", () => this.end()); // a broken socket: "close" follows, nothing else to do
  }

  /** The engine published snapshot `ts` (called after every flush). */
  flushed(ts: number): void {
    this.sendTransition(this.state.flushed(ts));
  }

  /** Heartbeat tick: a socket that missed two pings in a row is dead. */
  heartbeat(): void {
    if (this.phase.kind === "closed") return;
    if (this.missedPongs >= 2) {
      this.socket.terminate();
      this.end();
      return;
    }
    this.missedPongs += 1;
    this.socket.ping();
  }

  /** Hot reload: re-subscribes every query on the now current engine, then one fresh Transition. */
  resubscribe(): Promise<void> {
    return this.enqueueControl(() => this.resubscribeAll(undefined), undefined);
  }

  /** Shutdown: lets the running mutation finish (and answer), then closes with 4010. */
  async shutdown(reason: string): Promise<void> {
    this.draining = true;
    await this.mutations;
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
      this.catchUpTo(message.maxObservedTimestamp);
      return;
    }
    switch (message.type) {
      case "Connect":
        return this.fatal("Connect may be sent only once per connection");
      case "ModifyQuerySet": {
        const error = this.state.receiveModify(message.baseVersion, message.newVersion);
        if (error) return this.fatal(error);
        void this.enqueueControl(() => this.modifyQuerySet(message), undefined);
        return;
      }
      case "Authenticate":
        return this.authenticate(message);
      case "Mutation":
        return this.enqueueMutation(message, this.phase.clientId);
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

  private async modifyQuerySet(message: ModifyQuerySetMessage): Promise<void> {
    const plan = this.state.beginModify(message.modifications);
    if (!plan.ok) return this.fatal(plan.error);
    for (const subscription of plan.unsubscribe) subscription.unsubscribe();
    await Promise.all(plan.subscribe.map((request) => this.subscribe(request)));
    this.sendTransition(this.state.finishModify(message.newVersion, this.publishedTs()));
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
      decide(this.caller);
      await this.resubscribeAll(message.baseVersion + 1);
    }, undefined);
    // Refused, skipped or failed: the caller stays what it was. (Resolving twice is a no-op.)
    void step.then(() => decide(this.caller));
  }

  /** Null if the token resolves to an identity, else why it was refused. */
  private async checkToken(token: string): Promise<ErrorPayload | null> {
    try {
      const identity = await this.host.engines.current.actionCtx({ token, fromClient: true }).auth.getUserIdentity();
      if (identity) return null;
    } catch (error) {
      return errorPayload(error, "authentication", this.host.reporting);
    }
    return { code: "UNAUTHENTICATED", message: "The auth token was not accepted: it is invalid, expired or revoked. Sign in again to get a new one." };
  }

  private async resubscribeAll(newIdentity: number | undefined): Promise<void> {
    const plan = this.state.beginResubscribe();
    await Promise.all(plan.subscribe.map((request) => this.subscribe(request)));
    for (const subscription of plan.unsubscribe) subscription.unsubscribe();
    this.sendTransition(this.state.finishResubscribe(this.publishedTs(), newIdentity));
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

  private enqueueMutation(message: MutationMessage, clientId: string): void {
    const callerAt = this.callerAt;
    const run = this.mutations.then(async () => {
      if (this.draining || this.phase.kind === "closed") return;
      await this.runMutation(message, clientId, await callerAt);
    });
    this.mutations = run.catch((error) => this.internalFailure(error));
  }

  private async runMutation({ requestId, udfPath, args: json }: MutationMessage, clientId: string, caller: Caller): Promise<void> {
    let args: Value;
    try {
      args = convertFromJson(json, "args");
    } catch (error) {
      return this.send({ type: "MutationResponse", requestId, success: false, error: invalidArguments(error) });
    }
    try {
      const { value, ts } = await this.host.engines.mutate((engine) => engine.runClientMutation(udfPath, args, caller, { clientId, requestId }));
      this.send({ type: "MutationResponse", requestId, success: true, result: convertToJson(value), ts });
      this.sendTransition(this.state.mutationCommitted(ts, this.publishedTs()));
    } catch (error) {
      this.send({ type: "MutationResponse", requestId, success: false, error: errorPayload(error, `mutation ${udfPath}`, this.host.reporting) });
    }
  }

  private runAction({ requestId, udfPath, args: json }: ActionMessage): void {
    const callerAt = this.callerAt;
    const run = async () => {
      const caller = await callerAt;
      let args: Value;
      try {
        args = convertFromJson(json, "args");
      } catch (error) {
        return this.send({ type: "ActionResponse", requestId, success: false, error: invalidArguments(error) });
      }
      try {
        const value = await this.host.engines.current.runAction(udfPath, args, caller);
        this.send({ type: "ActionResponse", requestId, success: true, result: convertToJson(value) });
      } catch (error) {
        this.send({ type: "ActionResponse", requestId, success: false, error: errorPayload(error, `action ${udfPath}`, this.host.reporting) });
      }
    };
    run().catch((error) => this.internalFailure(error));
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

  private send(message: ServerMessage): void {
    if (this.phase.kind === "closed" || this.socket.readyState !== this.socket.OPEN) return;
    this.socket.send(encodeMessage(message));
  }

  private sendTransition(transition: TransitionMessage | null): void {
    if (!transition || this.phase.kind === "closed" || this.socket.readyState !== this.socket.OPEN) return;
    for (const text of encodeTransition(transition, PROTOCOL_LIMITS.maxServerMessageBytes, this.transitionIds++)) this.socket.send(text);
  }

  /** A protocol violation: FatalError, then close with 4000. */
  private fatal(problem: string): void {
    if (this.phase.kind === "closed") return;
    const reason = problem.length > 500 ? `${problem.slice(0, 500)}...` : problem;
    this.host.reporting.log(`[walkin] closing a connection after a protocol error: ${reason}`);
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

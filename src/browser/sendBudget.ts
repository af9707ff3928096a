/**
 * The client's mirror of the server's per-connection rate limit (a token bucket of
 * `PROTOCOL_LIMITS.messagesPerSecond`, burst `messageBurst`; exceeding it closes the socket).
 * A client that queued many mutations while offline re-sends them all on reconnect: without
 * pacing it would be cut off, reconnect, re-send, and be cut off again forever. The mirror
 * runs a tenth below the server's numbers so that network jitter cannot push it over.
 */
import { PROTOCOL_LIMITS } from "../transport/protocol.js";

export class SendBudget {
  private tokens: number;
  private last: number;
  private readonly rate: number;
  private readonly burst: number;

  constructor(
    private readonly now: () => number = Date.now,
    limits: { messagesPerSecond: number; messageBurst: number } = PROTOCOL_LIMITS,
  ) {
    this.rate = (limits.messagesPerSecond * 0.9) / 1000;
    this.burst = Math.floor(limits.messageBurst * 0.9);
    this.tokens = this.burst;
    this.last = this.now();
  }

  /** A new connection: the server's bucket starts full. */
  reset(): void {
    this.tokens = this.burst;
    this.last = this.now();
  }

  /** Counts one message sent (messages that cannot wait may overdraw). */
  spend(): void {
    this.refill();
    this.tokens -= 1;
  }

  /** Whether a message that can wait may be sent now. */
  canSpend(): boolean {
    this.refill();
    return this.tokens >= 1;
  }

  /** How long until `canSpend()` is true. */
  msUntilAvailable(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) / this.rate);
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.rate);
    this.last = now;
  }
}

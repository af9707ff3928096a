/**
 * `watchCommits` for PostgreSQL: one dedicated connection per storage LISTENs on the schema's
 * commit channel (every commit calls `pg_notify` in its transaction, so the notification is
 * delivered when, and only if, the commit is visible).
 *
 * Notifications can be lost (the connection drops, the server restarts), so the engine also
 * polls the commit log. What this module adds after a loss: it reconnects with backoff (100 ms,
 * doubling to 5 s) for as long as anyone watches, and calls every listener once when it is
 * listening again, so the engine catches up at once instead of at its next poll.
 */
import pg from "pg";
import { quoteIdentifier } from "./schema.js";

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 5_000;

export class CommitWatcher {
  private readonly listeners = new Set<(latest?: number) => void>();
  private client: pg.Client | null = null;
  private retryMs = FIRST_RETRY_MS;
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Bumped for each connection, so events of an abandoned one are ignored. */
  private generation = 0;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly channel: string,
    private readonly onError: (error: unknown) => void,
  ) {}

  watch(listener: (latest?: number) => void): () => void {
    if (this.closed) throw new Error("Walk-in storage: watchCommits was called on a closed storage.");
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.connect(false);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.disconnect();
    };
  }

  close(): void {
    this.closed = true;
    this.listeners.clear();
    this.disconnect();
  }

  private connect(isReconnect: boolean): void {
    const generation = ++this.generation;
    const client = new pg.Client(this.config);
    this.client = client;
    const lost = (error: unknown) => {
      if (generation !== this.generation) return;
      this.client = null;
      client.removeAllListeners("notification");
      client.end().catch(() => {});
      if (this.closed || this.listeners.size === 0) return;
      this.onError(error);
      this.scheduleReconnect();
    };
    client.on("error", lost);
    client.on("end", () => lost(new Error("the LISTEN connection was closed")));
    client.on("notification", (message) => {
      // The payload is the commit's timestamp: a node that already knows it can skip a read.
      const latest = Number(message.payload);
      if (generation === this.generation) this.notify(Number.isSafeInteger(latest) ? latest : undefined);
    });
    client
      .connect()
      .then(() => client.query(`LISTEN ${quoteIdentifier(this.channel)}`))
      .then(() => {
        if (generation !== this.generation) return;
        this.retryMs = FIRST_RETRY_MS;
        // Commits may have landed while no one was listening: let the engine look now.
        if (isReconnect) this.notify();
      })
      .catch(lost);
  }

  private scheduleReconnect(): void {
    if (this.retryTimer !== null) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.closed && this.listeners.size > 0 && this.client === null) this.connect(true);
    }, delay);
    this.retryTimer.unref?.();
  }

  private disconnect(): void {
    this.generation++;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const client = this.client;
    this.client = null;
    client?.end().catch(() => {});
  }

  private notify(latest?: number): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(latest);
      } catch (error) {
        this.onError(error);
      }
    }
  }
}

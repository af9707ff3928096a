/**
 * The dashboard's live channel: one long `GET /api/admin/stream` per open page, read with
 * fetch (so the admin key goes in a header, never in a URL), carrying server-sent events:
 *  - `runs`: new function-run log entries, batched;
 *  - `commit`: which app tables changed (the page re-reads what it shows of them);
 *  - `watch`: a new result of a query the page runs live (Functions screen);
 *  - `health`: the live figures, once a second.
 *
 * Events are batched every FLUSH_MS, so 100 runs a second cost 5 writes a second. A page that
 * does not read (a background tab, a slow link) must not make the server hold unbounded
 * memory: while a socket's buffer is over MAX_BUFFERED bytes nothing is written, run entries
 * are counted, not queued (the page is told how many it missed), table names are a set, and
 * of live results and health figures only the latest of each is kept. A page stuck that way
 * for STALL_LIMIT_MS is disconnected (it reconnects and catches up when it reads again).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import { convertToJson } from "../../values/index.js";
import type { Caller, Engine } from "../../engine/engine.js";
import type { QuerySubscription } from "../../engine/subscriptions.js";
import type { RunEntry } from "./runLog.js";
import { badRequest, notFound } from "./httpJson.js";

const FLUSH_MS = 200;
const MAX_BUFFERED = 1024 * 1024;
const MAX_WATCHES = 20;
const PING_MS = 15_000;
const STALL_LIMIT_MS = 60_000;

type Outcome = { ok: true; value: unknown } | { ok: false; error: string };

/** What a stream needs of its HTTP response (a fake in tests). */
export type StreamResponse = Pick<ServerResponse, "write" | "writableLength" | "destroy" | "end">;

/** An event sent as is (`health`, `watch`); `runs` and `commit` are built at flush time. */
export type StreamEvent = { type: "health"; health: unknown } | { type: "watch"; watchId: string; outcome: unknown };

export class StreamClient {
  readonly id = randomUUID();
  private runs: RunEntry[] = [];
  private missedRuns = 0;
  private tables = new Set<string>();
  /** The latest event per kind (`health`, `watch:<id>`): a newer one replaces an unsent older one. */
  private latest = new Map<string, unknown>();
  readonly watches = new Map<string, QuerySubscription>();
  /** Watches whose query is running for the first time: they count against `MAX_WATCHES` too. */
  starting = 0;
  private lastWrite = Date.now();
  private stalledSince: number | null = null;

  constructor(private readonly response: StreamResponse) {}

  addRun(entry: RunEntry): void {
    if (this.response.writableLength > MAX_BUFFERED || this.runs.length >= 1_000) this.missedRuns++;
    else this.runs.push(entry);
  }

  addTables(tables: Iterable<string>): void {
    for (const table of tables) this.tables.add(table);
  }

  add(event: StreamEvent): void {
    const key = event.type === "watch" ? `watch:${event.watchId}` : event.type;
    this.latest.delete(key); // re-inserted last: events keep the order of their latest version
    this.latest.set(key, event);
  }

  flush(now = Date.now()): void {
    if (this.response.writableLength > MAX_BUFFERED) {
      this.stalledSince ??= now;
      if (now - this.stalledSince > STALL_LIMIT_MS) this.response.destroy();
      return;
    }
    this.stalledSince = null;
    const events: unknown[] = [];
    if (this.runs.length > 0 || this.missedRuns > 0) events.push({ type: "runs", runs: this.runs, missed: this.missedRuns });
    if (this.tables.size > 0) events.push({ type: "commit", tables: [...this.tables] });
    events.push(...this.latest.values());
    this.runs = [];
    this.missedRuns = 0;
    this.tables = new Set();
    this.latest = new Map();
    if (events.length > 0) this.write(events.map((event) => `data: ${JSON.stringify(event)}\n\n`).join(""));
    else if (Date.now() - this.lastWrite > PING_MS) this.write(": ping\n\n");
  }

  write(text: string): void {
    this.lastWrite = Date.now();
    this.response.write(text);
  }

  close(): void {
    for (const watch of this.watches.values()) watch.unsubscribe();
    this.watches.clear();
  }

  /** Ends the page's stream: the page reconnects, to this server or the one that replaces it. */
  end(): void {
    this.close();
    this.response.end();
  }
}

export class StreamHub {
  private readonly clients = new Map<string, StreamClient>();
  private timer: NodeJS.Timeout | undefined;

  get size(): number {
    return this.clients.size;
  }

  /** Takes over the response until the page goes away. */
  open(request: IncomingMessage, response: ServerResponse): void {
    // A page that left while its request waited (the dashboard following a reloaded engine) has
    // had its "close" already: registered now, its client would never be removed, and it would
    // be fed every run, its writes to the dead socket failing without an "error" event.
    if (request.destroyed || response.destroyed) return;
    response.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store", "X-Accel-Buffering": "no" });
    const client = new StreamClient(response);
    this.clients.set(client.id, client);
    client.write(`data: ${JSON.stringify({ type: "hello", streamId: client.id })}\n\n`);
    const closed = () => {
      client.close();
      this.clients.delete(client.id);
      if (this.clients.size === 0) this.stop();
    };
    request.on("close", closed);
    response.on("error", closed);
    this.timer ??= setInterval(() => this.flushAll(), FLUSH_MS);
    this.timer.unref?.();
  }

  private flushAll(): void {
    for (const client of this.clients.values()) client.flush();
  }

  run(entry: RunEntry): void {
    for (const client of this.clients.values()) client.addRun(entry);
  }

  /** Which tables a commit wrote (system tables too: the Scheduler screen follows `_scheduled_functions`). */
  committed(tables: Iterable<string>): void {
    const list = [...tables];
    for (const client of this.clients.values()) client.addTables(list);
  }

  broadcast(event: StreamEvent): void {
    for (const client of this.clients.values()) client.add(event);
  }

  /** Runs a query live for one page: every new result goes to that page's stream. */
  async watch(streamId: string, engine: Engine, path: string, args: unknown, caller: Caller): Promise<{ watchId: string; outcome: Outcome }> {
    const client = this.clients.get(streamId);
    if (!client) throw notFound("That live stream is closed; reload the page.");
    // Counted from before the await: requests that arrive together must not all pass the check.
    if (client.watches.size + client.starting >= MAX_WATCHES) throw badRequest(`At most ${MAX_WATCHES} live queries per page; stop one first.`);
    const watchId = randomUUID();
    client.starting++;
    let subscription: QuerySubscription;
    try {
      subscription = await engine.subscriptions.subscribe(path, args, caller, (outcome) => {
        client.add({ type: "watch", watchId, outcome: describe(outcome) });
      });
    } finally {
      client.starting--;
    }
    if (!this.clients.has(streamId)) {
      subscription.unsubscribe(); // the page left while the query first ran
      throw notFound("That live stream is closed; reload the page.");
    }
    client.watches.set(watchId, subscription);
    return { watchId, outcome: describe(subscription.outcome) };
  }

  unwatch(streamId: string, watchId: string): void {
    const client = this.clients.get(streamId);
    client?.watches.get(watchId)?.unsubscribe();
    client?.watches.delete(watchId);
  }

  /** Live queries of the pages: after a reload swapped engines they would watch a closed one. */
  dropWatches(): void {
    for (const client of this.clients.values()) {
      for (const watchId of client.watches.keys()) client.add({ type: "watch", watchId, outcome: { ok: false, error: "The functions reloaded; run the query again." } });
      client.close();
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Ends every page's stream (the dashboard is closing). Left open, a page would hold the
   * server's close() for its whole grace period, then be cut.
   */
  endAll(): void {
    for (const client of this.clients.values()) client.end();
    this.clients.clear();
    this.stop();
  }
}

function describe(outcome: { ok: true; value: unknown } | { ok: false; error: Error }): Outcome {
  return outcome.ok ? { ok: true, value: convertToJson(outcome.value as never) } : { ok: false, error: outcome.error.message };
}

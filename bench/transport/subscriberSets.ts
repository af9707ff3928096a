/**
 * Sets of raw subscribers, for the subscriber processes of the fan-out benchmarks
 * (`clients.ts` here, `../scale/subscribers.ts`): N raw `ws` connections speaking the
 * protocol's JSON (docs/protocol.md), far lighter than N WalkinClients, plus one writer.
 *
 * Subscriber `i` connects to `urls[i % urls.length]` (one server, or N split evenly over the
 * nodes given), sends Connect and a ModifyQuerySet adding `docs:latest`, and is ready when its
 * first message (the query's first result) arrives. `trigger` sends one message on the writer
 * and times, on this process's clock, how long until the first and the last subscriber
 * (overall, and per url) holds a Transition carrying a QueryUpdated. Walk-in and the floors are
 * treated exactly alike: same messages sent, every received message parsed with JSON.parse and
 * checked the same way.
 */
import { performance } from "node:perf_hooks";
import { WebSocket } from "ws";
import { isUpdate, opened, rawSocketOptions } from "./rawSocket.js";
import { subscriberMessages } from "./app.js";

const TRIGGER_TIMEOUT_MS = 30_000;
const CLOSE_TIMEOUT_MS = 15_000;

interface Round {
  start: number;
  first: number;
  /** Per url: time of its last subscriber's update so far. */
  lastByUrl: number[];
  received: Uint8Array;
  count: number;
  bytes: number;
  text: string;
  done(): void;
}

interface ClientSet {
  urls: string[];
  sockets: WebSocket[];
  writer: WebSocket;
  round: Round | null;
  /** Sockets that closed before `close` was asked for. */
  lost: number;
}

export interface TriggerResult {
  firstMs: number;
  lastMs: number;
  lastByUrlMs: number[];
  /** Size and text of the first update received. */
  bytes: number;
  text: string;
  lost: number;
}

export class SubscriberSets {
  private readonly sets = new Map<string, ClientSet>();

  /**
   * @param openingConcurrency handshakes in flight while opening a set (a server's accept
   *   backlog is 511 by default)
   */
  constructor(private readonly limits: { openingConcurrency: number; openTimeoutMs: number }) {}

  async open(name: string, urls: string[], writerUrl: string, n: number): Promise<{ ms: number; initialText: string }> {
    if (this.sets.has(name)) throw new Error(`set ${name} is already open`);
    const { openingConcurrency, openTimeoutMs } = this.limits;
    const started = performance.now();
    const set: ClientSet = { urls, sockets: [], writer: new WebSocket(writerUrl, rawSocketOptions), round: null, lost: 0 };
    this.sets.set(name, set);
    await opened(set.writer);
    set.writer.send(subscriberMessages(`writer-${name}`)[0]);
    let initialText = "";

    const openOne = (i: number) =>
      new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(urls[i % urls.length]!, rawSocketOptions);
        set.sockets[i] = ws;
        let ready = false;
        ws.on("message", (data) => {
          const text = data.toString();
          if (!ready) {
            ready = true;
            JSON.parse(text);
            if (i === 0) initialText = text;
            resolve();
            return;
          }
          const round = set.round;
          if (round === null || round.received[i] === 1 || !isUpdate(text)) return;
          const now = performance.now();
          round.received[i] = 1;
          round.lastByUrl[i % urls.length] = now;
          if (round.count++ === 0) {
            round.first = now;
            round.bytes = Buffer.byteLength(text);
            round.text = text;
          }
          if (round.count === n) round.done();
        });
        ws.once("open", () => {
          for (const message of subscriberMessages(`sub-${name}-${i}`)) ws.send(message);
        });
        ws.once("error", (error) => reject(new Error(`subscriber ${i}: ${error.message}`)));
        ws.once("close", () => {
          if (!ready) reject(new Error(`subscriber ${i} closed before its first result`));
          else if (this.sets.get(name) === set) set.lost++;
        });
      });

    let next = 0;
    const worker = async () => {
      while (next < n) {
        if (performance.now() - started > openTimeoutMs) throw new Error(`opening ${n} connections took over ${openTimeoutMs} ms (${next} started)`);
        await openOne(next++);
      }
    };
    await Promise.all(Array.from({ length: Math.min(openingConcurrency, n) }, worker));
    return { ms: performance.now() - started, initialText };
  }

  async trigger(name: string, message: string): Promise<TriggerResult> {
    const set = this.sets.get(name);
    if (!set) throw new Error(`no set ${name}`);
    const n = set.sockets.length;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const round: Round = { start: 0, first: 0, lastByUrl: set.urls.map(() => 0), received: new Uint8Array(n), count: 0, bytes: 0, text: "", done: finish };
    set.round = round;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`only ${round.count} of ${n} subscribers received the update within ${TRIGGER_TIMEOUT_MS} ms`)), TRIGGER_TIMEOUT_MS);
    });
    round.start = performance.now();
    set.writer.send(message);
    try {
      await Promise.race([finished, timeout]);
    } finally {
      clearTimeout(timer);
      set.round = null;
    }
    const lastByUrlMs = round.lastByUrl.map((t) => t - round.start);
    return { firstMs: round.first - round.start, lastMs: Math.max(...lastByUrlMs), lastByUrlMs, bytes: round.bytes, text: round.text, lost: set.lost };
  }

  async close(name: string): Promise<{ ms: number }> {
    const set = this.sets.get(name);
    if (!set) return { ms: 0 };
    this.sets.delete(name);
    const started = performance.now();
    const all = [...set.sockets.filter(Boolean), set.writer];
    const closed = all.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once("close", () => resolve());
          ws.close(1000);
        }),
    );
    // A peer that does not answer the close handshake in time is cut.
    const cut = setTimeout(() => all.forEach((ws) => ws.terminate()), CLOSE_TIMEOUT_MS);
    await Promise.all(closed);
    clearTimeout(cut);
    return { ms: performance.now() - started };
  }
}

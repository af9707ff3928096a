/**
 * The subscribers' process for case 3 (started through bench/transport/child.ts): N raw `ws`
 * connections speaking the protocol's JSON (bench/transport/app.ts's messages), subscriber `i`
 * connected to `urls[i % urls.length]`, so N subscribers are split evenly over the nodes given.
 * One more connection, the writer, sends the mutation. Walk-in nodes and the floor processes
 * are treated exactly alike: same messages sent, every message parsed and checked the same way.
 *
 * `trigger` sends one message on the writer and times, on this process's clock, how long until
 * the first and the last subscriber (overall, and per node) holds a Transition carrying a
 * QueryUpdated.
 *
 * Requests (see `../transport/child.ts`): open, trigger, close.
 */
import { performance } from "node:perf_hooks";
import { WebSocket } from "ws";
import { isUpdate, opened, rawSocketOptions } from "../transport/rawSocket.js";
import { serveRequests } from "../transport/child.js";
import { subscriberMessages } from "../transport/app.js";

const OPENING_CONCURRENCY = 50;
const OPEN_TIMEOUT_MS = 120_000;
const TRIGGER_TIMEOUT_MS = 30_000;

interface Round {
  start: number;
  first: number;
  /** Per url: time of its last subscriber's update so far. */
  lastByUrl: number[];
  received: Uint8Array;
  count: number;
  text: string;
  done(): void;
}

interface ClientSet {
  urls: string[];
  sockets: WebSocket[];
  writer: WebSocket;
  round: Round | null;
  lost: number;
}

const sets = new Map<string, ClientSet>();
const options = rawSocketOptions;


async function open(name: string, urls: string[], writerUrl: string, n: number): Promise<{ ms: number; initialText: string }> {
  if (sets.has(name)) throw new Error(`set ${name} is already open`);
  const started = performance.now();
  const set: ClientSet = { urls, sockets: [], writer: new WebSocket(writerUrl, options), round: null, lost: 0 };
  sets.set(name, set);
  await opened(set.writer);
  set.writer.send(subscriberMessages(`writer-${name}`)[0]);
  let initialText = "";
  const openOne = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(urls[i % urls.length]!, options);
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
        else if (sets.get(name) === set) set.lost++;
      });
    });
  let next = 0;
  const worker = async () => {
    while (next < n) {
      if (performance.now() - started > OPEN_TIMEOUT_MS) throw new Error(`opening ${n} connections took over ${OPEN_TIMEOUT_MS} ms`);
      await openOne(next++);
    }
  };
  await Promise.all(Array.from({ length: Math.min(OPENING_CONCURRENCY, n) }, worker));
  return { ms: performance.now() - started, initialText };
}

async function trigger(name: string, message: string): Promise<{ firstMs: number; lastMs: number; lastByUrlMs: number[]; text: string; lost: number }> {
  const set = sets.get(name);
  if (!set) throw new Error(`no set ${name}`);
  const n = set.sockets.length;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const round: Round = { start: 0, first: 0, lastByUrl: set.urls.map(() => 0), received: new Uint8Array(n), count: 0, text: "", done: finish };
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
  return { firstMs: round.first - round.start, lastMs: Math.max(...lastByUrlMs), lastByUrlMs, text: round.text, lost: set.lost };
}

async function close(name: string): Promise<void> {
  const set = sets.get(name);
  if (!set) return;
  sets.delete(name);
  const all = [...set.sockets.filter(Boolean), set.writer];
  const closed = all.map(
    (ws) =>
      new Promise<void>((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) return resolve();
        ws.once("close", () => resolve());
        ws.close(1000);
      }),
  );
  const cut = setTimeout(() => all.forEach((ws) => ws.terminate()), 15_000);
  await Promise.all(closed);
  clearTimeout(cut);
}

serveRequests(async (message) => {
  switch (message.op) {
    case "open":
      return open(message.set as string, message.urls as string[], message.writerUrl as string, message.n as number);
    case "trigger":
      return trigger(message.set as string, message.message as string);
    case "close":
      return close(message.set as string);
    default:
      throw new Error(`unknown op ${message.op}`);
  }
});

/**
 * The subscribers' process (started by the fan-out and memory cases): N raw `ws` connections
 * speaking the protocol's JSON (docs/protocol.md), far lighter than N WalkinClients.
 *
 * A "set" is N subscribers plus one writer connection to one server. Each subscriber sends
 * Connect and a ModifyQuerySet adding `docs:latest`, and is ready when its first message (the
 * query's first result) arrives. `trigger` sends one Mutation on the writer and times, on this
 * process's clock, how long until the last subscriber has received a Transition carrying a
 * QueryUpdated. Walk-in and the floor are treated exactly alike: same messages sent, every
 * received message parsed with JSON.parse and checked the same way.
 *
 * Requests (see `child.ts`): open, trigger, close, limits.
 */
import { execFileSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { WebSocket } from "ws";
import { isUpdate, opened, rawSocketOptions } from "./rawSocket.js";
import { mutationMessage, subscriberMessages } from "./app.js";
import { serveRequests } from "./child.js";

/** Handshakes in flight while opening a set (the server's accept backlog is 511 by default). */
const OPENING_CONCURRENCY = 100;
const OPEN_TIMEOUT_MS = 90_000;
const TRIGGER_TIMEOUT_MS = 30_000;
const CLOSE_TIMEOUT_MS = 15_000;

interface Round {
  start: number;
  first: number;
  last: number;
  received: Uint8Array;
  count: number;
  bytes: number;
  text: string;
  done(): void;
}

interface ClientSet {
  sockets: WebSocket[];
  writer: WebSocket;
  requestId: number;
  round: Round | null;
  /** Sockets that closed before `close` was asked for. */
  lost: number;
}

const sets = new Map<string, ClientSet>();

const options = rawSocketOptions;


async function open(name: string, url: string, writerUrl: string, n: number): Promise<{ ms: number; initialText: string }> {
  if (sets.has(name)) throw new Error(`set ${name} is already open`);
  const started = performance.now();
  const deadline = started + OPEN_TIMEOUT_MS;
  const set: ClientSet = { sockets: [], writer: new WebSocket(writerUrl, options), requestId: 0, round: null, lost: 0 };
  sets.set(name, set);
  await opened(set.writer);
  set.writer.send(subscriberMessages(`writer-${name}`)[0]);
  let initialText = "";

  const openOne = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(url, options);
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
        if (round.count++ === 0) {
          round.first = now;
          round.bytes = Buffer.byteLength(text);
          round.text = text;
        }
        if (round.count === n) {
          round.last = now;
          round.done();
        }
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
      if (performance.now() > deadline) throw new Error(`opening ${n} connections took over ${OPEN_TIMEOUT_MS} ms (${next} started)`);
      await openOne(next++);
    }
  };
  await Promise.all(Array.from({ length: Math.min(OPENING_CONCURRENCY, n) }, worker));
  return { ms: performance.now() - started, initialText };
}

async function trigger(name: string, doc: number): Promise<{ firstMs: number; lastMs: number; bytes: number; text: string; lost: number }> {
  const set = sets.get(name);
  if (!set) throw new Error(`no set ${name}`);
  const n = set.sockets.length;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const round: Round = { start: 0, first: 0, last: 0, received: new Uint8Array(n), count: 0, bytes: 0, text: "", done: finish };
  set.round = round;
  const message = mutationMessage(++set.requestId, doc);
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
  return { firstMs: round.first - round.start, lastMs: round.last - round.start, bytes: round.bytes, text: round.text, lost: set.lost };
}

async function close(name: string): Promise<{ ms: number }> {
  const set = sets.get(name);
  if (!set) return { ms: 0 };
  sets.delete(name);
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

serveRequests(async (message) => {
  switch (message.op) {
    case "open":
      return open(message.set as string, message.url as string, message.writerUrl as string, message.n as number);
    case "trigger":
      return trigger(message.set as string, message.doc as number);
    case "close":
      return close(message.set as string);
    case "limits":
      return { soft: Number(execFileSync("sh", ["-c", "ulimit -Sn"], { encoding: "utf8" }).trim()) };
    default:
      throw new Error(`unknown op ${message.op}`);
  }
});

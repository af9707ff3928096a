/**
 * Case 1, round trip: one WalkinClient watching `docs:latest` awaits `client.mutation(insert)`
 * one call at a time; the promise resolves only once the client holds query results that
 * include the write (read your writes), so each latency is: send the Mutation, commit on
 * SQLite, MutationResponse, re-run the live query, Transition, client applies it.
 *
 * Floor: a raw `ws` client sends the same Mutation JSON to an echo server that parses it,
 * commits the document with better-sqlite3 (same pragmas) and sends the text back.
 *
 * Client and server share this process on both sides (the work of one round trip is serial
 * anyway); the two sides alternate through `compare` from the engine benchmark.
 */
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { performance } from "node:perf_hooks";
import { WebSocket } from "ws";
import { WalkinClient } from "../../src/browser/index.js";
import { PROTOCOL_LIMITS, startServer } from "../../src/transport/index.js";
import { compare, type Measurement, type Subject, type Timing } from "../engine/measure.js";
import type { Durability } from "../engine/workload.js";
import { api, docOf, mutationMessage, openEngine, SEED_DOCS, BENCH_LIMITS } from "./app.js";
import { startEchoServer } from "./floor.js";

/**
 * Calls start at least this far apart, on both sides: 75% of the protocol's per-connection
 * message rate. WalkinClient paces what it sends to 90% of the server's limit (180 messages/s
 * after a burst of 360, see src/browser/sendBudget.ts); back-to-back mutations would measure
 * that pacing (about 5.6 ms per call) instead of the round trip.
 */
export const CALL_INTERVAL_MS = 1000 / (0.75 * PROTOCOL_LIMITS.messagesPerSecond);

/**
 * Sequential calls, each started at least `intervalMs` after the previous one started, for at
 * least `ms` and at least `minOps` calls (so that every side gets its share of samples however
 * slow the disk is), but never longer than `capMs`. The latency of a call is from its start
 * to its settlement; the waits between calls are not part of it.
 */
export function sequential(op: (i: number) => Promise<void>, minOps: number, capMs: number, intervalMs = CALL_INTERVAL_MS): Subject["run"] {
  let i = 0;
  return async (ms, recorder) => {
    const start = performance.now();
    const wanted = recorder ? minOps : Math.min(minOps, 50);
    let busy = 0;
    for (let done = 0; ; done++) {
      const now = performance.now();
      if ((now - start >= ms && done >= wanted) || now - start >= capMs) break;
      recorder?.onStart?.();
      await op(i++);
      const took = performance.now() - now;
      busy += took;
      recorder?.latency(took);
      if (took < intervalMs) await sleep(intervalMs - took);
    }
    // Busy time only: ops/s is then the rate one connection could sustain without the pauses.
    if (recorder) recorder.seconds += busy / 1000;
  };
}

export interface RoundTripResult {
  walkin: Measurement;
  floor: Measurement;
  /** Mutations after which the watched result did not start with the written document. */
  missedWrites: number;
}

/** The Walk-in side: server, engine and one WalkinClient in this process; checks read-your-writes. */
export async function walkinRoundTrip(
  filename: string,
  mode: Durability,
  minOps: number,
  capMs: number,
  intervalMs = CALL_INTERVAL_MS,
): Promise<Subject & { missedWrites(): number }> {
  const engine = await openEngine(filename, mode);
  const server = await startServer({ engine, port: 0, host: "127.0.0.1", log: () => {}, limits: BENCH_LIMITS });
  const client = new WalkinClient(server.url, { webSocketConstructor: WebSocket as unknown as typeof globalThis.WebSocket, logger: false });
  const watch = client.watchQuery(api.latest);
  let stopWatching = () => {};
  await new Promise<void>((resolve) => {
    stopWatching = watch.onUpdate(() => {
      if (watch.localQueryResult() !== undefined) resolve();
    });
  });
  let missedWrites = 0;
  let nextDoc = SEED_DOCS;
  return {
    run: sequential(
      async () => {
        const doc = docOf(nextDoc++);
        await client.mutation(api.insert, doc);
        if (watch.localQueryResult()?.[0]?.key !== doc.key) missedWrites++;
      },
      minOps,
      capMs,
      intervalMs,
    ),
    missedWrites: () => missedWrites,
    close: async () => {
      stopWatching();
      await client.close();
      await server.close();
      await engine.close();
    },
  };
}

/** The floor side: echo server (parse, SQLite insert, echo) and one raw `ws` client in this process. */
export async function floorRoundTrip(filename: string, mode: Durability, minOps: number, capMs: number, intervalMs = CALL_INTERVAL_MS): Promise<Subject> {
  const echo = await startEchoServer(filename, mode);
  const socket = new WebSocket(echo.url, { perMessageDeflate: false });
  await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
  let answered: (() => void) | null = null;
  socket.on("message", (data) => {
    JSON.parse(data.toString());
    const resolve = answered;
    answered = null;
    resolve?.();
  });
  return {
    run: sequential(
      (i) =>
        new Promise<void>((resolve) => {
          answered = resolve;
          socket.send(mutationMessage(i, SEED_DOCS + i));
        }),
      minOps,
      capMs,
      intervalMs,
    ),
    close: async () => {
      socket.close();
      await echo.close();
    },
  };
}

/**
 * Both sides, warmed up and alternated by `compare`; at least `minOps` measured calls per side,
 * started `intervalMs` apart (below about 5.6 ms, Walk-in's side measures its client's send
 * pacing once the burst allowance is spent: see CALL_INTERVAL_MS).
 */
export async function roundTrip(dir: string, mode: Durability, timing: Timing, minOps: number, intervalMs = CALL_INTERVAL_MS): Promise<RoundTripResult> {
  const perRound = Math.ceil(minOps / timing.rounds);
  const capMs = 15_000;
  const walkin = await walkinRoundTrip(join(dir, `roundtrip-${mode}-walkin.sqlite`), mode, perRound, capMs, intervalMs);
  const floor = await floorRoundTrip(join(dir, `roundtrip-${mode}-floor.sqlite`), mode, perRound, capMs, intervalMs);
  try {
    const result = await compare(timing, walkin, floor);
    return { ...result, missedWrites: walkin.missedWrites() };
  } finally {
    await walkin.close();
    await floor.close();
  }
}

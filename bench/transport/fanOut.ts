/**
 * Case 2, fan-out: N subscribers in the clients process (`clients.ts`) watch `docs:latest` on
 * a Walk-in server in this process; one Mutation (sent by the clients process on its writer
 * connection) changes the result; measured on the clients process's clock from sending the
 * Mutation to the last subscriber holding the new result. The engine's `queryRuns` counter,
 * read before and after, says how many times the query ran for it (1 if the N subscriptions
 * share one execution).
 *
 * Floor: a raw `ws` server in this process, the same N connections from the same process, a
 * trigger message on the writer connection, and the server sending a real Walk-in update
 * Transition's text (same size) to every subscriber.
 *
 * When both sets of N connections fit in the open-file limits at once, both stay connected
 * and the trials alternate (walkin, floor, floor, walkin, ...); otherwise each side runs its
 * trials while the other side's connections are closed.
 */
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startServer } from "../../src/transport/index.js";
import { openEngine, BENCH_LIMITS } from "./app.js";
import type { Child } from "./child.js";
import { startBroadcastServer } from "./floor.js";

export interface FanOutResult {
  n: number;
  trials: number;
  /** Median over trials, ms: send → last subscriber updated. */
  walkinLast: number;
  floorLast: number;
  /** Median, ms: send → first subscriber updated. */
  walkinFirst: number;
  floorFirst: number;
  walkinRange: [number, number];
  floorRange: [number, number];
  /** `engine.stats.queryRuns` per mutation (every trial's; all should be 1). */
  queryRuns: number[];
  /** Query runs while the N subscribers subscribed. */
  subscribeRuns: number;
  bytes: number;
  openMs: { walkin: number; floor: number };
  interleaved: boolean;
  lost: number;
}

interface Trigger {
  firstMs: number;
  lastMs: number;
  bytes: number;
  text: string;
  lost: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const range = (values: number[]): [number, number] => [Math.min(...values), Math.max(...values)];

export function trialsFor(n: number): number {
  return n <= 1_000 ? 7 : 5;
}

/**
 * Runs every N in `ns` against one engine (synchronous=NORMAL: this case is about sending,
 * not fsync) and one floor server. `fdRoom` is how many sockets the tighter of the two
 * processes may open.
 *
 * `warmupTrials` per side run before the recorded ones. Both sides' send loops take several
 * trials to reach their steady speed (V8 optimizes the send path of `ws` and of the server,
 * deoptimizes it on a new object shape and optimizes it again: `node --trace-deopt` shows it),
 * Walk-in's longer than the floor's: timed around the loops themselves, with one warm-up
 * trial, Walk-in's 1,000 sends went 39, 31, 32, 27, 22, 17, 17, 16 ms and the floor's 29, 12,
 * 16, 13, 15, 12, 12, 17. A server that runs for a while is past that, and a median over trials
 * still warming up measured where the median fell among them.
 */
export async function fanOut(dir: string, clients: Child, ns: number[], fdRoom: number, warmupTrials: number): Promise<FanOutResult[]> {
  const engine = await openEngine(join(dir, "fanout.sqlite"), "normal");
  const server = await startServer({ engine, port: 0, host: "127.0.0.1", log: () => {}, limits: BENCH_LIMITS });
  const floor = await startBroadcastServer();
  let doc = 1_000_000;
  const results: FanOutResult[] = [];
  try {
    for (const n of ns) {
      const walkinSet = `walkin-${n}`;
      const floorSet = `floor-${n}`;
      const interleaved = 2 * (n + 1) + 64 <= fdRoom;
      const walkinTrials: Trigger[] = [];
      const floorTrials: Trigger[] = [];
      const queryRuns: number[] = [];

      const runsBefore = engine.stats.queryRuns;
      const walkinOpen = await clients.request<{ ms: number; initialText: string }>({ op: "open", set: walkinSet, url: server.wsUrl, writerUrl: server.wsUrl, n }, 120_000);
      const subscribeRuns = engine.stats.queryRuns - runsBefore;

      const walkinTrial = async (record: boolean) => {
        const before = engine.stats.queryRuns;
        const trial = await clients.request<Trigger>({ op: "trigger", set: walkinSet, doc: doc++ });
        await sleep(20); // a second flush, if any, would run within this
        if (record) {
          queryRuns.push(engine.stats.queryRuns - before);
          walkinTrials.push(trial);
        }
        return trial;
      };
      const floorTrial = async (record: boolean) => {
        const trial = await clients.request<Trigger>({ op: "trigger", set: floorSet, doc: doc++ });
        await sleep(20);
        if (record) floorTrials.push(trial);
      };

      // Warm-up (not recorded); its update is the floor's payload.
      const sample = await walkinTrial(false);
      floor.setPayloads(walkinOpen.initialText, sample.text);
      const openFloor = () =>
        clients.request<{ ms: number }>({ op: "open", set: floorSet, url: floor.url, writerUrl: floor.triggerUrl, n }, 120_000);

      let floorOpenMs: number;
      const trials = trialsFor(n);
      if (interleaved) {
        floorOpenMs = (await openFloor()).ms;
        await floorTrial(false);
        for (let w = 1; w < warmupTrials; w++) {
          await walkinTrial(false);
          await floorTrial(false);
        }
        for (let t = 0; t < trials; t++) {
          if (t % 2 === 0) {
            await walkinTrial(true);
            await floorTrial(true);
          } else {
            await floorTrial(true);
            await walkinTrial(true);
          }
        }
        await clients.request({ op: "close", set: walkinSet });
        await clients.request({ op: "close", set: floorSet });
      } else {
        for (let w = 1; w < warmupTrials; w++) await walkinTrial(false);
        for (let t = 0; t < trials; t++) await walkinTrial(true);
        await clients.request({ op: "close", set: walkinSet });
        await waitFor(() => server.connectionCount() === 0);
        floorOpenMs = (await openFloor()).ms;
        for (let w = 0; w < warmupTrials; w++) await floorTrial(false);
        for (let t = 0; t < trials; t++) await floorTrial(true);
        await clients.request({ op: "close", set: floorSet });
      }
      await waitFor(() => server.connectionCount() === 0 && floor.subscribers() === 0);

      const last = (trialsOf: Trigger[]) => trialsOf.map((trial) => trial.lastMs);
      const first = (trialsOf: Trigger[]) => trialsOf.map((trial) => trial.firstMs);
      results.push({
        n,
        trials,
        walkinLast: median(last(walkinTrials)),
        floorLast: median(last(floorTrials)),
        walkinFirst: median(first(walkinTrials)),
        floorFirst: median(first(floorTrials)),
        walkinRange: range(last(walkinTrials)),
        floorRange: range(last(floorTrials)),
        queryRuns,
        subscribeRuns,
        bytes: sample.bytes,
        openMs: { walkin: walkinOpen.ms, floor: floorOpenMs },
        interleaved,
        lost: Math.max(...walkinTrials.map((t) => t.lost), ...floorTrials.map((t) => t.lost)),
      });
    }
  } finally {
    await server.close();
    await floor.close();
    await engine.close();
  }
  return results;
}

/** Polls `condition` (closing sockets on the server side lags the client side a little); gives up after 10 s. */
async function waitFor(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition() && waited < 10_000; waited += 20) await sleep(20);
}

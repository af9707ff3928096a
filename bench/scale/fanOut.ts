/**
 * Case 3, fan-out over nodes: N subscribers of `docs:latest` (in a process of their own,
 * `subscribers.ts`) split evenly over the first k of three real nodes, k = 1, 2, 3; one
 * `docs:insert` sent through node A changes the result; measured on the subscribers' clock from
 * sending the mutation to the last subscriber holding the new result. With k = 1 every
 * subscriber is on the node that committed; with k = 2, 3 the others learn of the commit
 * through PostgreSQL (LISTEN, then reading the commit log) and each re-runs the query once for
 * its own subscribers.
 *
 * Floor: the same N connections split the same way over k raw LISTEN-and-broadcast processes
 * (`floorNode.ts`), the trigger sent to the first, which runs `pg_notify`; each sends a real
 * update Transition's text (same size) to its subscribers. Trials alternate walkin, floor,
 * floor, walkin, ... with both sets connected.
 *
 * On one machine, k nodes share the same cores: this shows what splitting subscribers over
 * processes costs or gains here, and the floor shows the same for the simplest possible
 * server; it does not show what k machines would serve.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { ClusterNode } from "../../e2e/cluster/nodes.js";
import { mutationMessage } from "../transport/app.js";
import { Child } from "../transport/child.js";
import { processCpuMs } from "./cpu.js";

export interface FanOutByNodes {
  nodes: number;
  /** Medians over the trials, ms. */
  walkinLast: number;
  floorLast: number;
  walkinFirst: number;
  floorFirst: number;
  /** Median per node of its last subscriber's update, ms (walkin). */
  walkinLastByNode: number[];
  /**
   * CPU per mutation of the serving processes, ms, over the recorded trials: the busiest one's
   * and all of them together (null where unreadable), less each node's idle CPU over the same
   * wall time. The busiest one's is what bounds the fan-out when each node has cores of its own.
   */
  cpu: { walkinBusiest: number | null; walkinTotal: number | null; floorBusiest: number; floorTotal: number };
  problems: string[];
}

interface Trigger {
  firstMs: number;
  lastMs: number;
  lastByUrlMs: number[];
  text: string;
  lost: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const IDLE_MS = 2_000;

/** Each node's CPU use while idle, ms per ms, as measured by the last `fanOutByNodes`. */
export let idleCpuPerMs: number[] = [];

export async function fanOutByNodes(nodes: ClusterNode[], databaseUrl: string, n: number, trials: number): Promise<FanOutByNodes[]> {
  const subscribers = Child.start("../scale/subscribers.ts", "subscribers process");
  const floors: Child[] = [];
  const results: FanOutByNodes[] = [];
  try {
    const floorUrls: string[] = [];
    for (let k = 0; k < nodes.length; k++) {
      const floor = Child.start("../scale/floorNode.ts", `floor node ${k + 1}`);
      floors.push(floor);
      const { port } = await floor.request<{ port: number }>({ op: "start", url: databaseUrl, channel: "bench_fanout_floor" });
      floorUrls.push(`ws://127.0.0.1:${port}`);
    }
    const wsUrls = nodes.map((node) => `${node.url.replace("http", "ws")}/api/sync`);
    let doc = 2_000_000;
    let requestId = 0;
    let payloadsSet = false;

    // Nodes use CPU when idle too (the 200 ms commit-log poll, the scheduler): measured here and
    // subtracted below, so the CPU per mutation is the mutation's.
    const nodeCpu = () => nodes.map((node) => (node.process.pid === undefined ? null : processCpuMs(node.process.pid)));
    const idleStart = nodeCpu();
    const idleFrom = performance.now();
    await sleep(IDLE_MS);
    const idleWall = performance.now() - idleFrom;
    idleCpuPerMs = nodeCpu().map((after, i) => (after === null || idleStart[i] === null ? 0 : (after - idleStart[i]!) / idleWall));

    for (let k = 1; k <= nodes.length; k++) {
      const walkinSet = `walkin-${k}`;
      const floorSet = `floor-${k}`;
      const problems: string[] = [];
      const walkinTrials: Trigger[] = [];
      const floorTrials: Trigger[] = [];
      const opened = await subscribers.request<{ initialText: string }>(
        { op: "open", set: walkinSet, urls: wsUrls.slice(0, k), writerUrl: wsUrls[0]!, n },
        180_000,
      );
      const walkinTrial = async () => {
        const trial = await subscribers.request<Trigger>({ op: "trigger", set: walkinSet, message: mutationMessage(++requestId, doc++) });
        await sleep(30 + Math.random() * 20);
        return trial;
      };
      const floorTrial = async () => {
        const trial = await subscribers.request<Trigger>({ op: "trigger", set: floorSet, message: "trigger" });
        await sleep(30 + Math.random() * 20);
        return trial;
      };
      const sample = await walkinTrial(); // warm-up; its update is the floor's payload
      if (!payloadsSet) {
        for (const floor of floors) await floor.request({ op: "payloads", initial: opened.initialText, update: sample.text });
        payloadsSet = true;
      }
      await subscribers.request(
        { op: "open", set: floorSet, urls: floorUrls.slice(0, k), writerUrl: `${floorUrls[0]!}/trigger`, n },
        180_000,
      );
      await floorTrial();
      const walkinCpu = () => nodeCpu().slice(0, k);
      const floorCpu = () => Promise.all(floors.slice(0, k).map((floor) => floor.request<number>({ op: "cpu" })));
      const walkinBefore = walkinCpu();
      const floorBefore = await floorCpu();
      const trialsFrom = performance.now();
      for (let t = 0; t < trials; t++) {
        if (t % 2 === 0) {
          walkinTrials.push(await walkinTrial());
          floorTrials.push(await floorTrial());
        } else {
          floorTrials.push(await floorTrial());
          walkinTrials.push(await walkinTrial());
        }
      }
      const trialsWall = performance.now() - trialsFrom;
      const walkinUsed = walkinCpu().map((after, i) =>
        after === null || walkinBefore[i] === null ? null : Math.max(0, after - walkinBefore[i]! - idleCpuPerMs[i]! * trialsWall) / trials,
      );
      const floorUsed = (await floorCpu()).map((after, i) => (after - floorBefore[i]!) / trials);
      const readable = walkinUsed.every((used) => used !== null);
      await subscribers.request({ op: "close", set: walkinSet });
      await subscribers.request({ op: "close", set: floorSet });
      const lost = Math.max(...walkinTrials.map((t) => t.lost), ...floorTrials.map((t) => t.lost));
      if (lost > 0) problems.push(`${k} nodes: ${lost} subscriber connections closed during the trials`);
      results.push({
        nodes: k,
        walkinLast: median(walkinTrials.map((t) => t.lastMs)),
        floorLast: median(floorTrials.map((t) => t.lastMs)),
        walkinFirst: median(walkinTrials.map((t) => t.firstMs)),
        floorFirst: median(floorTrials.map((t) => t.firstMs)),
        walkinLastByNode: Array.from({ length: k }, (_, i) => median(walkinTrials.map((t) => t.lastByUrlMs[i]!))),
        cpu: {
          walkinBusiest: readable ? Math.max(...(walkinUsed as number[])) : null,
          walkinTotal: readable ? (walkinUsed as number[]).reduce((a, b) => a + b, 0) : null,
          floorBusiest: Math.max(...floorUsed),
          floorTotal: floorUsed.reduce((a, b) => a + b, 0),
        },
        problems,
      });
      // Let the nodes notice the closed connections before the next set opens.
      await sleep(500);
    }
  } finally {
    await subscribers.stop();
    await Promise.all(floors.map((floor) => floor.stop()));
  }
  return results;
}

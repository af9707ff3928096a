/**
 * Case 2, cross-node live-query latency. Three real nodes share the bench database. A
 * `WalkinClient` on node C watches `docs:latest`; another on node A sends `docs:insert`; one
 * sample is the time from the mutation call on A's client to C's client holding a result whose
 * newest document is the one just inserted. A second watcher on node A itself gives the same
 * time without crossing nodes (A's own commit wakes its own subscriptions at once), so the
 * difference is what the trip through PostgreSQL's notification and C's catch-up costs.
 *
 * Floor: raw `pg_notify` → `LISTEN` on the same server: one connection runs `SELECT
 * pg_notify(channel, n)` (its own transaction), another LISTENs; one sample is the call to the
 * notification's arrival. That is the least any design built on LISTEN can take to learn of
 * another process's commit; a Walk-in sample adds two WebSocket hops, the commit itself (two
 * round trips), node C reading the commit log and re-running the query.
 *
 * Samples alternate walkin, floor, walkin, ...; between samples each side waits a random 5-25
 * ms, so samples land at every phase of the nodes' 200 ms commit-log poll (a sample that only
 * the poll delivers shows up as a tail of up to 200 ms).
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { WebSocket } from "ws";
import { WalkinClient } from "../../src/browser/index.js";
import type { ClusterNode } from "../../e2e/cluster/nodes.js";
import { makeFunctionReference } from "../../src/server/index.js";
import { api, docOf, LATEST, type Doc } from "../transport/app.js";

const SAMPLE_TIMEOUT_MS = 5_000;
const insertMany = makeFunctionReference<"mutation", { docs: Doc[] }>("docs:insertMany");

export interface LatencyResult {
  /** ms per sample, sorted. */
  crossNode: number[];
  sameNode: number[];
  floor: number[];
  /** Per walkin sample where both arrived: cross-node minus same-node arrival, ms (unsorted). */
  crossMinusSame: number[];
  /** Samples that did not arrive within SAMPLE_TIMEOUT_MS (walkin, floor). */
  missed: { walkin: number; floor: number };
}

function client(node: ClusterNode): WalkinClient {
  return new WalkinClient(node.url, { webSocketConstructor: WebSocket as never, logger: false });
}

/** Resolves with the time (performance.now()) at which `matches` first holds after a change, or null on timeout. */
function arrival(subscribe: (check: () => void) => () => void, matches: () => boolean): { at: Promise<number | null>; cancel(): void } {
  let stop = () => {};
  let timer: NodeJS.Timeout | undefined;
  const at = new Promise<number | null>((resolve) => {
    const check = () => {
      if (!matches()) return;
      stop();
      clearTimeout(timer);
      resolve(performance.now());
    };
    stop = subscribe(check);
    timer = setTimeout(() => {
      stop();
      resolve(null);
    }, SAMPLE_TIMEOUT_MS);
  });
  return { at, cancel: () => stop() };
}

export async function crossNodeLatency(nodes: ClusterNode[], databaseUrl: string, samples: number, firstDoc: number): Promise<LatencyResult> {
  const [nodeA, , nodeC] = nodes as [ClusterNode, ClusterNode, ClusterNode];
  const writer = client(nodeA);
  const onA = client(nodeA);
  const onC = client(nodeC);
  const listener = new pg.Client({ connectionString: databaseUrl });
  const notifier = new pg.Client({ connectionString: databaseUrl });
  const result: LatencyResult = { crossNode: [], sameNode: [], floor: [], crossMinusSame: [], missed: { walkin: 0, floor: 0 } };
  try {
    await Promise.all([listener.connect(), notifier.connect()]);
    await listener.query("LISTEN bench_latency_floor");
    // A full result from the start (its size then never changes), and both watchers holding it.
    let doc = firstDoc;
    await writer.mutation(insertMany, { docs: Array.from({ length: LATEST }, () => docOf(doc++)) });
    const watchA = onA.watchQuery(api.latest, {});
    const watchC = onC.watchQuery(api.latest, {});
    const newest = (watch: typeof watchA) => watch.localQueryResult()?.[0]?.n;
    for (const watch of [watchA, watchC]) {
      const ready = arrival((check) => watch.onUpdate(check), () => newest(watch) === doc - 1);
      if (newest(watch) !== doc - 1 && (await ready.at) === null) throw new Error("a watcher never received the seeded documents");
      ready.cancel();
    }

    const walkinSample = async (record: boolean) => {
      const n = doc++;
      const onNodeC = arrival((check) => watchC.onUpdate(check), () => newest(watchC) === n);
      const onNodeA = arrival((check) => watchA.onUpdate(check), () => newest(watchA) === n);
      const start = performance.now();
      const acknowledged = writer.mutation(api.insert, docOf(n));
      const [atC, atA] = await Promise.all([onNodeC.at, onNodeA.at, acknowledged]);
      if (!record) return;
      if (atC === null || atA === null) result.missed.walkin++;
      if (atC !== null) result.crossNode.push(atC - start);
      if (atA !== null) result.sameNode.push(atA - start);
      if (atA !== null && atC !== null) result.crossMinusSame.push(atC - atA);
    };
    let notified: ((payload: string) => void) | null = null;
    listener.on("notification", (message) => notified?.(message.payload ?? ""));
    const floorSample = async (record: boolean) => {
      const n = String(doc++);
      let timer: NodeJS.Timeout | undefined;
      const at = new Promise<number | null>((resolve) => {
        notified = (payload) => payload === n && resolve(performance.now());
        timer = setTimeout(() => resolve(null), SAMPLE_TIMEOUT_MS);
      });
      const start = performance.now();
      await notifier.query("SELECT pg_notify('bench_latency_floor', $1)", [n]);
      const end = await at;
      clearTimeout(timer);
      notified = null;
      if (!record) return;
      if (end === null) result.missed.floor++;
      else result.floor.push(end - start);
    };

    const gap = () => sleep(5 + Math.random() * 20);
    for (let i = 0; i < 20; i++) {
      await walkinSample(false);
      await floorSample(false);
      await gap();
    }
    for (let i = 0; i < samples; i++) {
      await walkinSample(true);
      await gap();
      await floorSample(true);
      await gap();
    }
  } finally {
    await Promise.all([writer.close(), onA.close(), onC.close()]);
    await Promise.all([listener.end().catch(() => {}), notifier.end().catch(() => {})]);
  }
  for (const list of [result.crossNode, result.sameNode, result.floor]) list.sort((a, b) => a - b);
  return result;
}

/** The `p` quantile of sorted samples (null when there are none). */
export function quantile(sorted: number[], p: number): number | null {
  return sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/**
 * Walk-in on several nodes: real `walkin start` processes sharing one PostgreSQL (and, the
 * same tests, one SQLite file), clients on every node and behind a round-robin load balancer. Counters stay exact, a write through one
 * node reaches live queries on the others, scheduled jobs and crons run once, and a node killed
 * with -9 or a database restart loses and doubles nothing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { WalkinClient } from "../src/browser/index.js";
import { makeFunctionReference } from "../src/server/index.js";
import { createTestDatabase } from "../src/storage/postgres/testDatabase.js";
import { addQueries, isTransition, RawClient } from "../src/transport/fixtures/rawClient.js";
import { startLoadBalancer } from "../examples/cluster/loadBalancer.mjs";
import { makeProject, startNode, type ClusterNode } from "./cluster/nodes.js";
import { startPrivatePostgres } from "./cluster/privatePostgres.js";

const functionsDir = fileURLToPath(new URL("./fixtures/clusterApp/functions", import.meta.url));
/** The fixture app's functions (its `_generated/api` exists only in the temporary project). */
const api = {
  counters: {
    increment: makeFunctionReference<"mutation", { name: string }, number>("counters:increment"),
    get: makeFunctionReference<"query", { name: string }, number>("counters:get"),
  },
  jobs: {
    scheduleMany: makeFunctionReference<"mutation", { prefix: string; count: number }, null>("jobs:scheduleMany"),
    runs: makeFunctionReference<"query", { prefix: string }, Array<{ key: string; node: string }>>("jobs:runs"),
    tickTimes: makeFunctionReference<"query", Record<string, never>, Array<{ scheduledTime: number; state: string }>>("jobs:tickTimes"),
    tickCount: makeFunctionReference<"query", Record<string, never>, number>("jobs:tickCount"),
  },
};

function client(url: string): WalkinClient {
  return new WalkinClient(url, { webSocketConstructor: WebSocket as never, logger: false, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Increments `name` `count` times through each client at once; returns how many were acknowledged. */
async function incrementThroughAll(clients: WalkinClient[], name: string, count: number): Promise<number> {
  const calls = clients.flatMap((c) => Array.from({ length: count }, () => c.mutation(api.counters.increment, { name })));
  const outcomes = await Promise.allSettled(calls);
  const failed = outcomes.filter((o) => o.status === "rejected");
  expect(failed.map((f) => String((f as PromiseRejectedResult).reason))).toEqual([]);
  return outcomes.length;
}

/**
 * The cluster's guarantees on one database: `open` gives the URL every node is started with,
 * and how to drop it afterwards.
 */
function describeCluster(title: string, open: () => Promise<{ url: string; drop(): Promise<void> }>): void {
  describe(title, () => {
    const project = makeProject(functionsDir);
    let database: { url: string; drop(): Promise<void> };
    const nodes: ClusterNode[] = [];
    const clients: WalkinClient[] = [];

    beforeAll(async () => {
      database = await open();
      // One after the other: the first creates the tables every node then shares.
      for (const name of ["A", "B", "C"]) nodes.push(await startNode(name, project.dir, database.url));
    }, 120_000);

    afterAll(async () => {
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all(nodes.map((n) => n.kill()));
      await database?.drop();
      project.remove();
    }, 60_000);

    const on = (node: ClusterNode) => {
      const c = client(node.url);
      clients.push(c);
      return c;
    };

    it("keeps counters exact with clients spread over all three nodes", async () => {
      const spread = nodes.map(on);
      const sent = await incrementThroughAll(spread, "hits", 40);
      // Each node converges on exactly the acknowledged count (a read may briefly miss another
      // node's latest commit; it never sees more than was acknowledged).
      for (const c of spread) expect(await eventually(() => c.query(api.counters.get, { name: "hits" }), (v) => v >= sent)).toBe(sent);
    }, 120_000);

    it("a write through node A re-runs the live query on node C", async () => {
      const [onA, onC] = [on(nodes[0]!), on(nodes[2]!)];
      const watch = onC.watchQuery(api.counters.get, { name: "live" });
      const seen: number[] = [];
      watch.onUpdate(() => seen.push(watch.localQueryResult() as number));
      await eventually(async () => seen, (s) => s.includes(0));
      await onA.mutation(api.counters.increment, { name: "live" });
      expect(await eventually(async () => seen.at(-1), (v) => v === 1)).toBe(1);
    }, 60_000);

    it("read your writes holds when the client's next connection lands on another node", async () => {
      const writer = await RawClient.open(`${nodes[0]!.url.replace("http", "ws")}/api/sync`, { connect: { clientId: "traveller" } });
      writer.send({ type: "Mutation", requestId: 1, udfPath: "counters:increment", args: { name: "ryw" } });
      const response = (await writer.waitFor((m) => m.type === "MutationResponse")) as { ts: number };
      writer.socket.terminate();
      const moved = await RawClient.open(`${nodes[1]!.url.replace("http", "ws")}/api/sync`, { connect: false });
      moved.send({ type: "Connect", clientId: "traveller", connectionCount: 1, maxObservedTimestamp: response.ts });
      moved.send(addQueries(0, [[1, "counters:get", { name: "ryw" }]]));
      const first = await moved.waitFor(isTransition);
      expect(first.endVersion.ts).toBeGreaterThanOrEqual(response.ts);
      expect(first.modifications).toEqual([{ type: "QueryUpdated", queryId: 1, value: 1 }]);
      moved.socket.terminate();
    }, 60_000);

    it("runs each scheduled job once, and each cron tick once, whichever node picks it up", async () => {
      const c = on(nodes[1]!);
      await c.mutation(api.jobs.scheduleMany, { prefix: "batch", count: 30 });
      const runs = await eventually(() => c.query(api.jobs.runs, { prefix: "batch" }), (r: unknown[]) => r.length >= 30);
      await new Promise((resolve) => setTimeout(resolve, 1_000)); // time for any double run to show
      const after = (await c.query(api.jobs.runs, { prefix: "batch" })) as Array<{ key: string; node: string }>;
      expect(after.length).toBe(30);
      expect(new Set(after.map((r) => r.key)).size).toBe(30);
      expect((runs as unknown[]).length).toBe(30);

      const ticks = (await eventually(() => c.query(api.jobs.tickTimes, {}), (t: unknown[]) => t.length >= 3)) as Array<{ scheduledTime: number }>;
      const times = ticks.map((t) => t.scheduledTime);
      expect(new Set(times).size).toBe(times.length); // three nodes, still one run per due time
      expect(await c.query(api.jobs.tickCount, {})).toBeLessThanOrEqual(times.length);
    }, 60_000);

    it("kill -9 of a node under load: no acknowledged write lost or doubled, its clients reconnect elsewhere", async () => {
      const extra = await startNode("D", project.dir, database.url);
      nodes.push(extra);
      const balancer = await startLoadBalancer({ port: 0, backends: [nodes[0]!, extra, nodes[2]!].map((n) => ({ host: "127.0.0.1", port: n.port })) });
      try {
        const behind = Array.from({ length: 6 }, () => on({ url: balancer.url } as ClusterNode));
        const load = incrementThroughAll(behind, "survivor", 25);
        await new Promise((resolve) => setTimeout(resolve, 300));
        await extra.kill("SIGKILL");
        balancer.setBackends([nodes[0]!, nodes[2]!].map((n) => ({ host: "127.0.0.1", port: n.port })));
        const sent = await load;
        // A client that did not make the last write may read a node that has not learned of it
        // yet (serializable, not linearizable across clients): wait until the nodes agree, then
        // the count must be exactly what was acknowledged, and stay so.
        for (const reader of [behind[0]!, on(nodes[2]!)]) {
          expect(await eventually(() => reader.query(api.counters.get, { name: "survivor" }), (v) => v >= sent)).toBe(sent);
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(await on(nodes[0]!).query(api.counters.get, { name: "survivor" })).toBe(sent);
      } finally {
        await balancer.close();
      }
    }, 120_000);
  });
}

describeCluster("three nodes on one PostgreSQL", () => createTestDatabase());

// The same, as processes of one machine sharing one SQLite file (storage/sqlite/commitWatch.ts
// and processFloors.ts): what holds across PostgreSQL nodes holds across these processes.
describeCluster("three processes on one SQLite file", async () => {
  const dir = mkdtempSync(join(tmpdir(), "walkin-cluster-sqlite-"));
  return { url: `sqlite:${join(dir, "data.sqlite")}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
});

describe("a PostgreSQL restart under load", () => {
  it("nodes reconnect and go on; every mutation sent is applied exactly once", async () => {
    const server = await startPrivatePostgres();
    const project = makeProject(functionsDir);
    const pair: ClusterNode[] = [];
    const clients: WalkinClient[] = [];
    try {
      for (const name of ["P", "Q"]) pair.push(await startNode(name, project.dir, server.url));
      for (const node of pair) for (let i = 0; i < 3; i++) clients.push(client(node.url));
      await clients[0]!.mutation(api.counters.increment, { name: "restart" });
      const load = incrementThroughAll(clients, "restart", 30);
      await new Promise((resolve) => setTimeout(resolve, 200));
      server.restart();
      const sent = await load;
      const total = await eventually(() => clients[3]!.query(api.counters.get, { name: "restart" }), (v) => v === sent + 1);
      expect(total).toBe(sent + 1);
      // Both nodes are still serving, and still see each other's writes.
      await clients[5]!.mutation(api.counters.increment, { name: "restart" });
      expect(await eventually(() => clients[0]!.query(api.counters.get, { name: "restart" }), (v) => v === sent + 2)).toBe(sent + 2);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all(pair.map((n) => n.kill()));
      project.remove();
      server.stop();
    }
  }, 180_000);
});

/**
 * Floods: one address opening more connections than it may, then many addresses subscribing
 * to as many distinct queries as the server lets them, while a bystander (its own address)
 * measures its mutation round trip. Prints what the caps refused, the server's retained
 * memory per live query, and the bystander's latency. See README.md.
 *
 *   node --import tsx bench/reliability/floods.ts
 *   RELIABILITY_FLOOD_ADDRESSES=4 node --import tsx bench/reliability/floods.ts   # shorter
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket } from "ws";
import { WalkinClient } from "../../src/browser/index.js";
import { DEFAULT_LIMITS } from "../../src/transport/index.js";
import type { ServerMessage, TransitionMessage } from "../../src/transport/protocol.js";
import { Child } from "../transport/child.js";
import { api } from "./app.js";

/** Addresses that flood subscriptions (each up to its per-address cap). */
const ADDRESSES = Number(process.env.RELIABILITY_FLOOD_ADDRESSES ?? 16);
const CONNECTIONS_PER_ADDRESS = 5;
const BATCH = 1000;
const MiB = 1024 * 1024;

interface Stats {
  heapUsed: number;
  external: number;
  rss: number;
  connections: number;
  subscriptions: number;
  refusedConnections: number;
}

/** A raw protocol client from `address` (the server trusts X-Forwarded-For in this run). */
class RawConnection {
  readonly socket: WebSocket;
  readonly closed: Promise<number>;
  private readonly waiting: ((message: ServerMessage) => boolean)[] = [];
  private querySet = 0;
  private nextQueryId = 1;

  constructor(url: string, address: string) {
    this.socket = new WebSocket(url, { headers: { "x-forwarded-for": address } });
    this.socket.on("error", () => {});
    this.closed = new Promise((resolve) => this.socket.on("close", (code) => resolve(code)));
    this.socket.on("message", (data) => {
      const message = JSON.parse(data.toString()) as ServerMessage;
      for (const waiter of [...this.waiting]) if (waiter(message)) this.waiting.splice(this.waiting.indexOf(waiter), 1);
    });
  }

  async open(): Promise<boolean> {
    const opened = await new Promise<boolean>((resolve) => {
      this.socket.once("open", () => resolve(true));
      this.socket.once("close", () => resolve(false));
    });
    if (opened) this.socket.send(JSON.stringify({ type: "Connect", clientId: Math.random().toString(36).slice(2), connectionCount: 0 }));
    return opened;
  }

  /** Adds `count` distinct queries; resolves with the refusals, by limit name. */
  async add(count: number, firstN: number): Promise<Record<string, number>> {
    const base = this.querySet++;
    const modifications = Array.from({ length: count }, (_, i) => ({ type: "Add", queryId: this.nextQueryId++, udfPath: "flood:item", args: { n: firstN + i } }));
    const done = new Promise<TransitionMessage>((resolve) =>
      this.waiting.push((m) => m.type === "Transition" && m.endVersion.querySet === base + 1 && (resolve(m), true)),
    );
    this.socket.send(JSON.stringify({ type: "ModifyQuerySet", baseVersion: base, newVersion: base + 1, modifications }));
    const refused: Record<string, number> = {};
    for (const m of (await done).modifications) {
      if (m.type !== "QueryFailed") continue;
      const limit = String((m.error.data as { limit?: string } | undefined)?.limit ?? m.error.code);
      refused[limit] = (refused[limit] ?? 0) + 1;
    }
    return refused;
  }
}

function fromAddress(address: string): typeof globalThis.WebSocket {
  return class extends WebSocket {
    constructor(url: string) {
      super(url, { headers: { "x-forwarded-for": address } });
    }
  } as unknown as typeof globalThis.WebSocket;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "walkin-floods-"));
  const server = Child.start("../reliability/server.ts", "server", ["--expose-gc"]);
  const cleanup: (() => Promise<unknown> | unknown)[] = [() => rmSync(dir, { recursive: true, force: true }), () => server.stop()];
  try {
    const { url } = await server.request<{ url: string }>({ op: "start", filename: join(dir, "db.sqlite"), limits: { trustProxy: true } });
    const wsUrl = `${url.replace(/^http/, "ws")}/api/sync`;
    const stats = (gc = true) => server.request<Stats>({ op: "stats", gc });

    const bystander = new WalkinClient(url, { webSocketConstructor: fromAddress("192.0.2.1"), logger: false });
    cleanup.unshift(() => bystander.close());
    cleanup.unshift(bystander.watchQuery(api.pings.last, {}).onUpdate(() => {}));
    let phase = "baseline";
    const latencies = new Map<string, number[]>();
    let pinging = true;
    const pings = (async () => {
      for (let n = 1; pinging; n++) {
        const started = performance.now();
        await bystander.mutation(api.pings.touch, { n });
        const list = latencies.get(phase) ?? [];
        list.push(performance.now() - started);
        latencies.set(phase, list);
        await sleep(100);
      }
    })();

    await sleep(5_000);
    const baseline = await stats();
    console.log(`Floods (defaults: ${DEFAULT_LIMITS.maxConnectionsPerIp} connections and ${DEFAULT_LIMITS.maxSubscriptionsPerIp} live queries per address, ${DEFAULT_LIMITS.maxSubscriptions} live queries in all).`);
    console.log(`  baseline: retained heap ${mib(baseline.heapUsed)}, ${baseline.subscriptions} live queries`);

    // 1. One address opens more connections than it may.
    phase = "connection flood";
    const wanted = DEFAULT_LIMITS.maxConnectionsPerIp + 100;
    const crowd = Array.from({ length: wanted }, () => new RawConnection(wsUrl, "198.51.100.7"));
    await Promise.all(crowd.map((c) => c.open()));
    await sleep(500);
    const refusedCodes = await Promise.all(crowd.map((c) => Promise.race([c.closed, sleep(100).then(() => null)])));
    const refused4002 = refusedCodes.filter((code) => code === 4002).length;
    console.log(`  connection flood: ${wanted} opened from one address, ${refused4002} closed with 4002, ${wanted - refused4002} kept`);
    for (const c of crowd) c.socket.terminate();
    await sleep(500);

    // 2. Many addresses subscribe to distinct queries until refused.
    phase = "subscription flood";
    const attackers: RawConnection[] = [];
    const refusals: Record<string, number> = {};
    let accepted = 0;
    let n = 0;
    const started = performance.now();
    for (let a = 0; a < ADDRESSES; a++) {
      const address = `203.0.113.${a + 1}`;
      const conns = Array.from({ length: CONNECTIONS_PER_ADDRESS }, () => new RawConnection(wsUrl, address));
      await Promise.all(conns.map((c) => c.open()));
      attackers.push(...conns);
      await Promise.all(
        conns.map(async (c) => {
          for (let added = 0; added < 4096; added += BATCH) {
            const count = Math.min(BATCH, 4096 - added);
            const refused = await c.add(count, (n += count));
            const refusedCount = Object.values(refused).reduce((x, y) => x + y, 0);
            accepted += count - refusedCount;
            for (const [limit, k] of Object.entries(refused)) refusals[limit] = (refusals[limit] ?? 0) + k;
            if (refusedCount > 0) break;
          }
        }),
      );
    }
    const seconds = (performance.now() - started) / 1000;
    const flooded = await stats();
    const perQuery = (flooded.heapUsed + flooded.external - baseline.heapUsed - baseline.external) / Math.max(1, flooded.subscriptions - baseline.subscriptions);
    console.log(
      `  subscription flood: ${ADDRESSES} addresses × ${CONNECTIONS_PER_ADDRESS} connections asked for ${n} live queries in ${seconds.toFixed(1)} s; ` +
        `${accepted} accepted, refused: ${JSON.stringify(refusals)}`,
    );
    console.log(`  server: ${flooded.subscriptions} live queries, retained heap ${mib(flooded.heapUsed)}, rss ${mib(flooded.rss)}, ~${(perQuery / 1024).toFixed(1)} KiB per live query`);
    const extra = bystander.watchQuery(api.flood.item, { n: -1 });
    const stopExtra = extra.onUpdate(() => {});
    await sleep(1000);
    let bystanderQuery: string;
    try {
      extra.localQueryResult();
      bystanderQuery = "served";
    } catch (error) {
      bystanderQuery = `refused (${(error as Error).message})`;
    }
    stopExtra();
    console.log(`  a new query of the bystander while flooded: ${bystanderQuery}`);

    phase = "after";
    for (const c of attackers) c.socket.terminate();
    await sleep(2_000);
    const after = await stats();
    console.log(`  after the flood: ${after.subscriptions} live queries, retained heap ${mib(after.heapUsed)}`);
    pinging = false;
    await pings;

    console.log();
    console.table(
      [...latencies].map(([name, list]) => {
        const sorted = [...list].sort((a, b) => a - b);
        return { phase: name, "bystander p50": `${percentile(sorted, 50).toFixed(1)} ms`, "bystander p99": `${percentile(sorted, 99).toFixed(1)} ms`, "round trips": sorted.length };
      }),
    );
  } finally {
    for (const step of cleanup) await step();
  }
}

await main();

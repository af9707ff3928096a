/**
 * Slow readers: clients that subscribe to a ~0.5 MB live query rewritten 10 times a second
 * and never read their socket (half of them sending pongs anyway), against a Walk-in server
 * with its default limits, while a bystander measures its mutation round trip. Prints the
 * server's memory and the bystander's latency before and during the attack, and checks the
 * stated bound. See README.md.
 *
 *   node --import tsx bench/reliability/slowReaders.ts            # 5 minutes
 *   RELIABILITY_SECONDS=30 node --import tsx bench/reliability/slowReaders.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket } from "ws";
import { WalkinClient } from "../../src/browser/index.js";
import { Child } from "../transport/child.js";
import { api } from "./app.js";

const SECONDS = Number(process.env.RELIABILITY_SECONDS ?? 300);
const BASELINE_SECONDS = Number(process.env.RELIABILITY_BASELINE_SECONDS ?? 15);
const ATTACKERS = Number(process.env.RELIABILITY_ATTACKERS ?? 8);
/** "half" (default): odd attackers send a pong every second without reading; "all"; "none". */
const PONGS = process.env.RELIABILITY_PONGS ?? "half";
/** An attacker replaces its connection after this long (a phone that comes back on a new network). */
const ATTACKER_LIFETIME_MS = 45_000;
const BUMPS_PER_SECOND = 10;
/** The stated bound on the server's heapUsed + external (Buffers queued on sockets live there). */
const BOUND_MIB = Number(process.env.RELIABILITY_BOUND_MIB ?? 48);

const MiB = 1024 * 1024;

interface Stats {
  /** Whether garbage was collected just before (every 10th sample): heapUsed is then what is retained. */
  collected: boolean;
  heapUsed: number;
  external: number;
  rss: number;
  connections: number;
  subscriptions: number;
  maxQueuedBytes: number;
  slowCloses: number;
}

/** An attacker: subscribes to the board, then never reads again. */
class Attacker {
  private socket: WebSocket | null = null;
  private pong: ReturnType<typeof setInterval> | undefined;
  private renew: ReturnType<typeof setTimeout> | undefined;
  connections = 0;

  constructor(
    private readonly url: string,
    private readonly pongs: boolean,
  ) {}

  start(): void {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    this.connections++;
    socket.on("error", () => {});
    socket.once("open", () => {
      socket.send(JSON.stringify({ type: "Connect", clientId: `attacker-${Math.random().toString(36).slice(2)}`, connectionCount: 0 }));
      socket.send(JSON.stringify({ type: "ModifyQuerySet", baseVersion: 0, newVersion: 1, modifications: [{ type: "Add", queryId: 1, udfPath: "board:get", args: {} }] }));
      socket.pause(); // never reads again: what the server sends piles up in the kernel, then on the server
      if (this.pongs) this.pong = setInterval(() => socket.pong(), 1000);
    });
    this.renew = setTimeout(() => {
      this.stop();
      this.start();
    }, ATTACKER_LIFETIME_MS);
  }

  stop(): void {
    clearInterval(this.pong);
    clearTimeout(this.renew);
    this.socket?.terminate();
    this.socket = null;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function client(url: string): WalkinClient {
  return new WalkinClient(url, { webSocketConstructor: WebSocket as unknown as typeof globalThis.WebSocket, logger: false });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "walkin-reliability-"));
  const server = Child.start("../reliability/server.ts", "server", ["--expose-gc"]);
  const stopAll: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true }), () => server.stop()];
  try {
    const { url } = await server.request<{ url: string }>({ op: "start", filename: join(dir, "db.sqlite") });
    const wsUrl = `${url.replace(/^http/, "ws")}/api/sync`;

    const writer = client(url);
    const bystander = client(url);
    // A well-behaved client reading the board in both phases: the baseline then includes the
    // cost of the board itself (re-run, encoded and sent 10 times a second), and the attack
    // phase differs from it by the slow readers alone.
    const reader = client(url);
    stopAll.unshift(() => writer.close(), () => bystander.close(), () => reader.close());
    const stopWatch = bystander.watchQuery(api.pings.last, {}).onUpdate(() => {});
    const stopReading = reader.watchQuery(api.board.get, {}).onUpdate(() => {});
    stopAll.unshift(stopWatch, stopReading);

    let writing = true;
    let bumps = 0;
    const writes = (async () => {
      const start = Date.now();
      while (writing) {
        await writer.mutation(api.board.bump, {});
        bumps++;
        const due = start + (bumps * 1000) / BUMPS_PER_SECOND;
        await sleep(Math.max(0, due - Date.now()));
      }
    })();

    let phase: "baseline" | "attack" = "baseline";
    const latencies = { baseline: [] as number[], attack: [] as number[] };
    let pinging = true;
    const pings = (async () => {
      for (let n = 1; pinging; n++) {
        const started = performance.now();
        await bystander.mutation(api.pings.touch, { n }); // resolves once the bystander holds a Transition with it
        latencies[phase].push(performance.now() - started);
        await sleep(100);
      }
    })();

    const samples = { baseline: [] as Stats[], attack: [] as Stats[] };
    const sampleFor = async (seconds: number, into: Stats[], label: string) => {
      for (let s = 1; s <= seconds; s++) {
        await sleep(1000);
        const collected = s % 10 === 0;
        const stats = { ...(await server.request<Stats>({ op: "stats", gc: collected })), collected };
        into.push(stats);
        if (s % 30 === 0 || s === seconds) {
          console.log(
            `  ${label} ${String(s).padStart(3)} s: heap ${mib(stats.heapUsed)}${collected ? " (after gc)" : ""}, external ${mib(stats.external)}, rss ${mib(stats.rss)}, ` +
              `${stats.connections} connections, largest queue ${mib(stats.maxQueuedBytes)}, ${stats.slowCloses} closed as too slow`,
          );
        }
      }
    };

    console.log(`Slow readers: ${ATTACKERS} clients subscribe to a ~0.5 MB query rewritten ${BUMPS_PER_SECOND}x/s and never read (pongs: ${PONGS}).`);
    await sampleFor(BASELINE_SECONDS, samples.baseline, "baseline");

    phase = "attack";
    const attackers = Array.from({ length: ATTACKERS }, (_, i) => new Attacker(wsUrl, PONGS === "all" || (PONGS === "half" && i % 2 === 1)));
    for (const attacker of attackers) attacker.start();
    stopAll.unshift(() => attackers.forEach((a) => a.stop()));
    await sampleFor(SECONDS, samples.attack, "attack  ");
    for (const attacker of attackers) attacker.stop();

    writing = false;
    pinging = false;
    await Promise.all([writes, pings]);

    const peak = (list: Stats[], f: (s: Stats) => number) => Math.max(...list.map(f));
    const retained = (list: Stats[]) => list.filter((s) => s.collected);
    const heapPlusExternal = (s: Stats) => s.heapUsed + s.external;
    const rows = (["baseline", "attack"] as const).map((name) => {
      const sorted = [...latencies[name]].sort((a, b) => a - b);
      return {
        phase: name,
        "peak heap": mib(peak(samples[name], (s) => s.heapUsed)),
        "peak retained heap+external": mib(peak(retained(samples[name]), heapPlusExternal)),
        "peak rss": mib(peak(samples[name], (s) => s.rss)),
        "largest queue": mib(peak(samples[name], (s) => s.maxQueuedBytes)),
        "bystander p50": `${percentile(sorted, 50).toFixed(1)} ms`,
        "bystander p99": `${percentile(sorted, 99).toFixed(1)} ms`,
        "round trips": sorted.length,
      };
    });
    console.log();
    console.table(rows);
    const last = samples.attack.at(-1)!;
    const attackerConnections = attackers.reduce((sum, a) => sum + a.connections, 0);
    console.log(`${bumps} bumps written; ${attackerConnections} attacker connections opened; ${last.slowCloses} closed by the server as too slow (4009).`);
    const worst = peak(retained(samples.attack), heapPlusExternal);
    const verdict = worst <= BOUND_MIB * MiB ? "within" : "OVER";
    console.log(`Bound: server heap + external retained (after gc, every 10 s) ≤ ${BOUND_MIB} MiB during the attack: peak ${mib(worst)} (${verdict}).`);
    if (verdict !== "within") process.exitCode = 1;
  } finally {
    for (const step of stopAll) await step();
  }
}

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

await main();

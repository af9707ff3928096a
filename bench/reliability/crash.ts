/**
 * kill -9 under load: clients send mutations without pause while the server process is killed
 * with SIGKILL at random moments and started again on the same database file and port. Every
 * mutation a client saw acknowledged must survive, and none may be applied twice (clients
 * re-send unanswered mutations after reconnecting; the server remembers, durably, which it
 * applied). Prints the cycles and the check. See README.md.
 *
 *   node --import tsx bench/reliability/crash.ts
 *   RELIABILITY_CRASHES=5 node --import tsx bench/reliability/crash.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket } from "ws";
import { WalkinClient } from "../../src/browser/index.js";
import { Child } from "../transport/child.js";
import { api } from "./app.js";

const CRASHES = Number(process.env.RELIABILITY_CRASHES ?? 50);
const CLIENTS = 8;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "walkin-crash-"));
  const filename = join(dir, "db.sqlite");
  let server = Child.start("../reliability/server.ts", "server", ["--expose-gc"]);
  const { url } = await server.request<{ url: string }>({ op: "start", filename, logLevel: "info" });
  const port = Number(new URL(url).port);
  const cleanup: (() => unknown)[] = [() => rmSync(dir, { recursive: true, force: true }), () => server.stop()];
  try {
    let running = true;
    const acknowledged: number[][] = Array.from({ length: CLIENTS }, () => []);
    const clients = Array.from(
      { length: CLIENTS },
      () =>
        new WalkinClient(url, {
          webSocketConstructor: WebSocket as unknown as typeof globalThis.WebSocket,
          reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
          logger: false,
        }),
    );
    const load = clients.map(async (client, c) => {
      for (let i = 0; running; i++) {
        const n = c * 1_000_000 + i;
        await client.mutation(api.pings.touch, { n });
        acknowledged[c]!.push(n);
      }
    });

    const started = performance.now();
    let restartMs = 0;
    for (let cycle = 1; cycle <= CRASHES; cycle++) {
      await sleep(500 + Math.random() * 1500);
      await server.crash();
      const restarting = performance.now();
      server = Child.start("../reliability/server.ts", "server", ["--expose-gc"]);
      cleanup[1] = () => server.stop();
      await server.request({ op: "start", filename, port, logLevel: "info" });
      restartMs += performance.now() - restarting;
      if (cycle % 10 === 0) console.log(`  ${cycle} crashes, ${acknowledged.reduce((k, list) => k + list.length, 0)} mutations acknowledged so far`);
    }
    running = false;
    await Promise.all(load);
    const seconds = (performance.now() - started) / 1000;
    const all = (await clients[0]!.query(api.pings.all, {})) as number[];
    await Promise.all(clients.map((client) => client.close()));

    const counts = new Map<number, number>();
    for (const n of all) counts.set(n, (counts.get(n) ?? 0) + 1);
    const acked = acknowledged.flat();
    const lost = acked.filter((n) => !counts.has(n)).length;
    const doubled = [...counts.values()].filter((k) => k > 1).length;
    console.log(`kill -9 under load: ${CRASHES} crashes in ${seconds.toFixed(1)} s (restart ${(restartMs / CRASHES).toFixed(0)} ms on average), ${CLIENTS} clients writing throughout.`);
    console.log(`  ${acked.length} mutations acknowledged, ${all.length} rows: ${lost} acknowledged ones lost, ${doubled} applied more than once.`);
    const ok = lost === 0 && doubled === 0 && all.length === acked.length;
    console.log(ok ? "OK: nothing acknowledged was lost, nothing applied twice." : "FAILED");
    if (!ok) process.exitCode = 1;
  } finally {
    for (const step of cleanup) await step();
  }
}

await main();

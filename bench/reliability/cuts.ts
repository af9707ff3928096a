/**
 * Forced connection cuts: clients send mutations one after another while their sockets are
 * cut at random moments (before a mutation reached the server, while it ran, before its
 * answer arrived). Every mutation must resolve, and be applied exactly once: the client
 * re-sends what was not answered and the server recognises what it already applied. Prints
 * the cuts and the check. See README.md.
 *
 *   node --import tsx bench/reliability/cuts.ts
 *   RELIABILITY_CUT_MUTATIONS=100 node --import tsx bench/reliability/cuts.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocket } from "ws";
import { WalkinClient } from "../../src/browser/index.js";
import { Child } from "../transport/child.js";
import { api } from "./app.js";

const CLIENTS = Number(process.env.RELIABILITY_CUT_CLIENTS ?? 16);
const MUTATIONS = Number(process.env.RELIABILITY_CUT_MUTATIONS ?? 400);
/** A client's socket is cut after a random delay up to this. */
const MAX_CUT_DELAY_MS = 200;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "walkin-cuts-"));
  const server = Child.start("../reliability/server.ts", "server", ["--expose-gc"]);
  const cleanup: (() => unknown)[] = [() => rmSync(dir, { recursive: true, force: true }), () => server.stop()];
  try {
    const { url } = await server.request<{ url: string }>({ op: "start", filename: join(dir, "db.sqlite"), logLevel: "info" });
    let cuts = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        const sockets: WebSocket[] = [];
        const Tracked = class extends WebSocket {
          constructor(address: string) {
            super(address);
            sockets.push(this);
          }
        };
        const client = new WalkinClient(url, {
          webSocketConstructor: Tracked as unknown as typeof globalThis.WebSocket,
          reconnect: { initialDelayMs: 5, maxDelayMs: 50 },
          logger: false,
        });
        let running = true;
        const cutter = (async () => {
          while (running) {
            await new Promise((resolve) => setTimeout(resolve, Math.random() * MAX_CUT_DELAY_MS));
            const socket = sockets.at(-1);
            if (running && socket?.readyState === WebSocket.OPEN) {
              socket.terminate();
              cuts++;
            }
          }
        })();
        for (let i = 0; i < MUTATIONS; i++) await client.mutation(api.pings.touch, { n: c * 1_000_000 + i });
        running = false;
        await cutter;
        await client.close();
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const checker = new WalkinClient(url, { webSocketConstructor: WebSocket as unknown as typeof globalThis.WebSocket, logger: false });
    const all = (await checker.query(api.pings.all, {})) as number[];
    await checker.close();
    const counts = new Map<number, number>();
    for (const n of all) counts.set(n, (counts.get(n) ?? 0) + 1);
    let missing = 0;
    let duplicated = 0;
    for (let c = 0; c < CLIENTS; c++) {
      for (let i = 0; i < MUTATIONS; i++) {
        const seen = counts.get(c * 1_000_000 + i) ?? 0;
        if (seen === 0) missing++;
        if (seen > 1) duplicated++;
      }
    }
    const expected = CLIENTS * MUTATIONS;
    console.log(`Connection cuts: ${CLIENTS} clients × ${MUTATIONS} mutations in ${seconds.toFixed(1)} s, ${cuts} sockets cut.`);
    console.log(`  ${all.length} rows for ${expected} mutations: ${missing} missing, ${duplicated} applied more than once, ${all.length - expected} extra.`);
    const ok = missing === 0 && duplicated === 0 && all.length === expected;
    console.log(ok ? "OK: every mutation applied exactly once." : "FAILED");
    if (!ok) process.exitCode = 1;
  } finally {
    for (const step of cleanup) await step();
  }
}

await main();

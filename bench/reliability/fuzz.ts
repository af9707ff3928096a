/**
 * Protocol and HTTP fuzz: random and mutated WebSocket frames from many short connections,
 * then malformed, oversized and aborted HTTP requests, against a server at the default log
 * level, while a bystander keeps working. Prints what the server answered, and checks that
 * nothing was written, nothing crashed, and the log holds no line (no stack trace) for any of
 * it. The generator is seeded (`RELIABILITY_SEED`), so a failure can be replayed. See README.md.
 *
 *   node --import tsx bench/reliability/fuzz.ts
 *   RELIABILITY_FUZZ_FRAMES=20000 RELIABILITY_FUZZ_REQUESTS=500 node --import tsx bench/reliability/fuzz.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket } from "ws";
import { WalkinClient } from "../../src/browser/index.js";
import { Child } from "../transport/child.js";
import { api } from "./app.js";

const FRAMES = Number(process.env.RELIABILITY_FUZZ_FRAMES ?? 300_000);
const REQUESTS = Number(process.env.RELIABILITY_FUZZ_REQUESTS ?? 6_000);
const SEED = Number(process.env.RELIABILITY_SEED ?? Date.now() % 1_000_000);
const PARALLEL = 32;

/** xorshift32: small, seeded, good enough to pick fuzz cases. */
let state = SEED || 1;
function random(): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 2 ** 32;
}
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;

const WEIRD_NUMBERS = [-1, 0.5, 2 ** 53, -(2 ** 60), 1e308, Number.NaN, 4_294_967_296];
function randomString(max = 12): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyzé😀\"\\\u0000:/.$_";
  return Array.from({ length: 2 + int(max) }, () => pick([...alphabet])).join("");
}
/** A random JSON value; object keys are never "n", so no fuzzed args can pass pings:touch's validator. */
function randomValue(depth = 0): unknown {
  switch (int(depth > 3 ? 5 : 8)) {
    case 0:
      return null;
    case 1:
      return random() < 0.5;
    case 2:
      return pick(WEIRD_NUMBERS);
    case 3:
      return int(1000);
    case 4:
      return random() < 0.1 ? "x".repeat(int(100_000)) : randomString();
    case 5:
      return Array.from({ length: int(5) }, () => randomValue(depth + 1));
    case 6:
      return Object.fromEntries(Array.from({ length: int(4) }, () => [randomString(6), randomValue(depth + 1)]));
    default:
      return { $integer: randomString() };
  }
}

/** Well-formed messages to start from; the Mutation's args are invalid, so none can write. */
const TEMPLATES: Record<string, unknown>[] = [
  { type: "Connect", clientId: "fuzz", connectionCount: 0 },
  { type: "ModifyQuerySet", baseVersion: 0, newVersion: 1, modifications: [{ type: "Add", queryId: 1, udfPath: "pings:last", args: {} }] },
  { type: "ModifyQuerySet", baseVersion: 0, newVersion: 1, modifications: [{ type: "Remove", queryId: 9 }] },
  { type: "Mutation", requestId: 1, udfPath: "pings:touch", args: { n: "not a number" } },
  { type: "Action", requestId: 2, udfPath: "pings:touch", args: {} },
  { type: "Authenticate", baseVersion: 0, token: "forged" },
  { type: "Ping" },
];

/** One fuzzed frame: text or binary. */
function fuzzFrame(): string | Buffer {
  const strategy = int(10);
  if (strategy === 0) return Buffer.from(Array.from({ length: int(64) }, () => int(256)));
  if (strategy === 1) return randomString(40); // not JSON
  if (strategy === 2) return JSON.stringify(randomValue());
  const message: Record<string, unknown> = structuredClone(pick(TEMPLATES));
  const fields = Object.keys(message);
  const mutations = 1 + int(2);
  for (let i = 0; i < mutations; i++) {
    const field = random() < 0.2 ? randomString(6) : pick(fields);
    if (random() < 0.2) delete message[field];
    else message[field] = randomValue();
  }
  return JSON.stringify(message);
}

interface Tally {
  [key: string]: number;
}
const bump = (tally: Tally, key: string) => void (tally[key] = (tally[key] ?? 0) + 1);

/** One short connection: usually a Connect, then a few fuzzed frames, then gone. */
async function fuzzConnection(wsUrl: string, frames: number, closes: Tally, replies: Tally): Promise<void> {
  const socket = new WebSocket(wsUrl);
  socket.on("error", () => {});
  socket.on("message", (data) => {
    try {
      bump(replies, String((JSON.parse(data.toString()) as { type?: unknown }).type));
    } catch {
      bump(replies, "unparsable");
    }
  });
  const closed = new Promise<void>((resolve) => socket.on("close", (code) => (bump(closes, String(code)), resolve())));
  const opened = await new Promise<boolean>((resolve) => {
    socket.once("open", () => resolve(true));
    socket.once("close", () => resolve(false));
  });
  if (!opened) return;
  if (random() < 0.8) socket.send(JSON.stringify(TEMPLATES[0]));
  for (let i = 0; i < frames && socket.readyState === socket.OPEN; i++) socket.send(fuzzFrame());
  await Promise.race([closed, sleep(50)]);
  if (socket.readyState !== socket.CLOSED) socket.terminate();
  await closed;
}

/** One malformed HTTP request; some are cut off mid-body. */
function fuzzRequest(port: number, statuses: Tally): Promise<void> {
  const path = pick(["/api/query", "/api/mutation", "/api/action", "/api/health", "/api/sync", "/api/nope", "/", "/%2e%2e/etc/passwd", `/${encodeURIComponent(randomString())}`]);
  const method = pick(["GET", "POST", "POST", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"]);
  const bodies = [
    JSON.stringify({ path: "pings:touch", args: { n: "x" } }),
    JSON.stringify({ path: randomValue(), args: randomValue() }),
    JSON.stringify(randomValue()),
    randomString(200),
    "{",
    "",
  ];
  const body = Buffer.from(pick(bodies));
  const abort = random() < 0.15;
  const headers: Record<string, string> = { "content-type": pick(["application/json", "text/plain", "x/y", ""]) || "application/json" };
  if (random() < 0.3) headers.authorization = pick(["Bearer forged", "Bearer", "Basic abc", randomString()]).replace(/[^\x20-\x7e]/g, "?");
  headers["content-length"] = String(abort ? body.length + 100 : random() < 0.05 ? 9_000_000_000 : body.length);
  return new Promise((resolve) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, method, headers, agent: false }, (res) => {
      bump(statuses, String(res.statusCode));
      res.resume();
      res.on("end", () => resolve());
      res.on("error", () => resolve());
    });
    req.on("error", () => {
      bump(statuses, abort ? "aborted by us" : "connection error");
      resolve();
    });
    if (abort) {
      req.write(body.subarray(0, Math.floor(body.length / 2)));
      setTimeout(() => req.destroy(), int(20));
    } else {
      req.end(body);
    }
  });
}

interface Stats {
  connections: number;
  logLines: number;
  stackTraces: number;
  rowsWritten: number;
  heapUsed: number;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "walkin-fuzz-"));
  const server = Child.start("../reliability/server.ts", "server", ["--expose-gc"]);
  const cleanup: (() => unknown)[] = [() => rmSync(dir, { recursive: true, force: true }), () => server.stop()];
  try {
    // The default log level: what a production server would write for all of this.
    const { url } = await server.request<{ url: string }>({ op: "start", filename: join(dir, "db.sqlite"), logLevel: "info", quiet: true });
    const wsUrl = `${url.replace(/^http/, "ws")}/api/sync`;
    const port = Number(new URL(url).port);
    const bystander = new WalkinClient(url, { webSocketConstructor: WebSocket as unknown as typeof globalThis.WebSocket, logger: false });
    cleanup.unshift(() => bystander.close());
    cleanup.unshift(bystander.watchQuery(api.pings.last, {}).onUpdate(() => {}));
    await bystander.mutation(api.pings.touch, { n: 0 });

    console.log(`Fuzz (seed ${SEED}): ${FRAMES} WebSocket frames, ${REQUESTS} HTTP requests.`);
    const closes: Tally = {};
    const replies: Tally = {};
    let sent = 0;
    let connections = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (sent < FRAMES) {
          const frames = 1 + int(20);
          sent += frames;
          connections++;
          await fuzzConnection(wsUrl, frames, closes, replies);
        }
      }),
    );
    console.log(`  WebSocket: ${sent} frames over ${connections} connections in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    console.log(`    close codes: ${JSON.stringify(closes)}`);
    console.log(`    replies: ${JSON.stringify(replies)}`);

    const statuses: Tally = {};
    let requests = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (requests < REQUESTS) {
          requests++;
          await fuzzRequest(port, statuses);
        }
      }),
    );
    console.log(`  HTTP: ${requests} requests; statuses ${JSON.stringify(statuses)}`);

    const bystanderOk = (await bystander.mutation(api.pings.touch, { n: 1 }), bystander.watchQuery(api.pings.last, {}).localQueryResult() === 1);
    await sleep(500);
    const stats = await server.request<Stats>({ op: "stats", gc: true });
    const health = await fetch(`${url}/api/health`).then((r) => r.status);
    console.log(
      `  after: server alive (health ${health}), bystander ${bystanderOk ? "served" : "NOT served"}, ` +
        `rows written by fuzz ${stats.rowsWritten - 2}, ${stats.logLines} log lines (${stats.stackTraces} with a stack), ` +
        `${stats.connections} connections left, retained heap ${(stats.heapUsed / 1024 / 1024).toFixed(1)} MiB`,
    );
    const ok = health === 200 && bystanderOk && stats.rowsWritten === 2 && stats.logLines === 0;
    console.log(ok ? "OK: nothing crashed, nothing was written, nothing was logged." : "FAILED: see above.");
    if (!ok) process.exitCode = 1;
  } finally {
    for (const step of cleanup) await step();
  }
}

await main();

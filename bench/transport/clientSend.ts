/**
 * What the browser client spends on a call before its message reaches the socket: from
 * `client.mutation(ref, args)` to the socket's `send`, for args of three sizes, against the
 * least any client must do, which is to stringify the message once and send it.
 *
 *   node --import tsx --import ./bench/compiled.mjs bench/transport/clientSend.ts [rounds]
 *
 * Both sides send into stand-in sockets, which open at once and drop what they are sent, so
 * no server, network or event loop is measured: only the client's own work (`convertToJson`,
 * the size check, the request's bookkeeping, its flush) against one `JSON.stringify`. Each
 * round runs a batch of calls on each side, alternating; each side's figure is the median of
 * its rounds, per call. The calls are never answered, so each batch has a client of its own,
 * closed after it (which rejects its calls and lets their messages go): otherwise the texts of
 * every batch so far would stay in memory, and collecting them would land in later rounds.
 *
 * In this process only, the client's send budget (`PROTOCOL_LIMITS.messagesPerSecond`, which
 * mirrors the server's rate limit) is lifted, or it would hold the calls back after a burst.
 */
import { WalkinClient } from "../../src/browser/index.js";
import { makeFunctionReference } from "../../src/server/index.js";
import { PROTOCOL_LIMITS } from "../../src/transport/index.js";
import { docOf } from "./app.js";

const rounds = Number(process.argv[2] ?? 5);
if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error(`rounds must be a whole number >= 1, got ${process.argv[2]}`);
// The client reads the limit when it connects: none exists yet.
Object.assign(PROTOCOL_LIMITS as { messagesPerSecond: number; messageBurst: number }, { messagesPerSecond: 1e9, messageBurst: 1e9 });

/** A WebSocket that opens on the next turn of the event loop and counts what it is sent. */
class StandInSocket {
  static sent = 0;
  readyState = 0;
  onopen: (() => void) | null = null;
  onmessage: unknown = null;
  onclose: unknown = null;
  onerror: unknown = null;
  constructor() {
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.();
    }, 0);
  }
  send(_text: string): void {
    StandInSocket.sent++;
  }
  close(): void {}
}

const shapes: Array<{ name: string; args: Record<string, unknown>; calls: number }> = [
  { name: "the round trip's args (~150 B)", args: { ...docOf(123) }, calls: 5_000 },
  {
    name: "1,000 rows (~60 KB)",
    args: { rows: Array.from({ length: 1000 }, (_, i) => ({ id: `id${i}`, name: `name ${i}`, qty: i, tags: ["a", "b"] })) },
    calls: 50,
  },
  { name: "200,000 non-ASCII characters", args: { body: "é".repeat(200_000) }, calls: 50 },
];

const ref = makeFunctionReference<"mutation">("docs:insert");
const floorSocket = new StandInSocket();

async function walkinBatch(args: Record<string, unknown>, calls: number): Promise<number> {
  const client = new WalkinClient("ws://127.0.0.1:1", { webSocketConstructor: StandInSocket as never, logger: false });
  await new Promise((resolve) => setTimeout(resolve, 5)); // the stand-in opens, the client says Connect
  const before = StandInSocket.sent;
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    void client.mutation(ref, args as never).catch(() => {});
    await Promise.resolve(); // the client flushes in a microtask
  }
  const us = Number(process.hrtime.bigint() - start) / 1000 / calls;
  if (StandInSocket.sent - before !== calls) throw new Error(`the client sent ${StandInSocket.sent - before} of ${calls} calls`);
  await client.close();
  return us;
}

let requestId = 1_000_000;
async function floorBatch(args: Record<string, unknown>, calls: number): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    floorSocket.send(JSON.stringify({ type: "Mutation", requestId: requestId++, udfPath: "docs:insert", args }));
    await Promise.resolve(); // as the client's flush
  }
  return Number(process.hrtime.bigint() - start) / 1000 / calls;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
console.log(`Client send benchmark: node ${process.version}, ${rounds} alternating rounds per shape (median per call; lower is better)`);
console.log(`${"args".padEnd(34)} | ${"walkin".padStart(10)} | ${"floor".padStart(10)} | ratio`);
console.log(`${"-".repeat(34)}-|-${"-".repeat(10)}-|-${"-".repeat(10)}-|------`);
for (const { name, args, calls } of shapes) {
  await walkinBatch(args, Math.ceil(calls / 5)); // warm-up, not recorded
  await floorBatch(args, Math.ceil(calls / 5));
  const walkin: number[] = [];
  const floor: number[] = [];
  for (let round = 0; round < rounds; round++) {
    walkin.push(await walkinBatch(args, calls));
    floor.push(await floorBatch(args, calls));
  }
  const [w, f] = [median(walkin), median(floor)];
  console.log(`${name.padEnd(34)} | ${`${w.toFixed(1)} µs`.padStart(10)} | ${`${f.toFixed(1)} µs`.padStart(10)} | ${(w / f).toFixed(2)}`);
}

/**
 * Slow readers against a real server: what is queued for a client that stops reading stays
 * bounded, its updates coalesce, and one that never reads is dropped (pongs or not). Sizes,
 * not timings, are asserted: the long-running version with figures is bench/reliability.
 */
import { afterEach, describe, expect, it } from "vitest";
import { startHarness, sleep, type Harness } from "./fixtures/harness.js";
import { addQueries, isTransition, type RawClient } from "./fixtures/rawClient.js";
import { CLOSE_CODES, type MutationResponseMessage, type ServerMessage, type TransitionMessage } from "./protocol.js";

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.dispose();
  harness = undefined;
});

const KiB = 1024;
const RESULT_CHARS = 256 * KiB;

const valueOf = (t: TransitionMessage): number | undefined => {
  const mod = t.modifications.find((m) => m.type === "QueryUpdated" && m.queryId === 1);
  return mod?.type === "QueryUpdated" ? (mod.value as { value: number }).value : undefined;
};
const hasValue = (n: number) => (m: ServerMessage): m is TransitionMessage => isTransition(m) && valueOf(m) === n;
const isResponse = (requestId: number) => (m: ServerMessage): m is MutationResponseMessage => m.type === "MutationResponse" && m.requestId === requestId;

async function subscribePadded(client: RawClient): Promise<void> {
  client.send(addQueries(0, [[1, "counters:padded", { name: "c", size: RESULT_CHARS }]]));
  await client.waitFor(hasValue(0));
}

async function bump(writer: RawClient, requestId: number): Promise<void> {
  writer.send({ type: "Mutation", requestId, udfPath: "counters:bump", args: { name: "c" } });
  await writer.waitFor(isResponse(requestId), 0, 10_000);
}

/** Waits (without a deadline of its own: vitest's applies) until `condition` holds. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(20);
}

describe("a client that stops reading", () => {
  it("has at most sendBufferBytes plus one Transition queued, and catches up with one jump to the newest results", async () => {
    const sendBufferBytes = 64 * KiB;
    harness = await startHarness({ limits: { sendBufferBytes, maxSendBufferBytes: 8 * 1024 * KiB, stallTimeoutMs: 600_000 } });
    const [reader, writer] = [await harness.client(), await harness.client()];
    await subscribePadded(reader);
    const from = reader.messages.length;
    reader.socket.pause();

    // 10 MiB of results: more than the kernel buffers of a loopback socket that nobody reads.
    const writes = 40;
    let mostQueued = 0;
    for (let n = 1; n <= writes; n++) {
      await bump(writer, n);
      mostQueued = Math.max(mostQueued, harness.server.maxQueuedBytes());
    }
    // Once a Transition is sent the queue is under sendBufferBytes; it then holds at most that one more.
    expect(mostQueued).toBeGreaterThan(0);
    expect(mostQueued).toBeLessThanOrEqual(sendBufferBytes + RESULT_CHARS + 4 * KiB);

    reader.socket.resume();
    await reader.waitFor(hasValue(writes), from, 20_000);
    const received = reader.transitions(from).map(valueOf);
    expect(received.length).toBeLessThan(writes); // intermediate states were skipped, not queued
    expect(received.at(-1)).toBe(writes);
    expect(reader.violations).toEqual([]); // every Transition still starts where the previous one ended
  });

  it.each([
    ["without pongs", false],
    ["while sending pongs", true],
  ])("is closed once nothing was written to it for stallTimeoutMs (%s), freeing its subscriptions", async (_name, pongs) => {
    harness = await startHarness({ heartbeatMs: 50, limits: { sendBufferBytes: 64 * KiB, stallTimeoutMs: 300 }, logLevel: "debug" });
    const [reader, writer] = [await harness.client(), await harness.client()];
    await subscribePadded(reader);
    reader.socket.pause();
    const ponging = pongs ? setInterval(() => reader.socket.pong(), 20) : undefined;
    try {
      let n = 0;
      while (harness.server.connectionCount() > 1) {
        await bump(writer, ++n);
        await sleep(10);
      }
    } finally {
      clearInterval(ponging);
    }
    expect(harness.server.subscriptionCount()).toBe(0);
    // Without pongs the ping check may get there first; with them, only progress can tell.
    if (pongs) expect(harness.logs.some((line) => line.includes("client not reading: nothing written to it for 300 ms"))).toBe(true);

    // The dropped client reconnects like any other and gets the newest state.
    const again = await harness.client();
    again.send(addQueries(0, [[1, "counters:padded", { name: "c", size: 10 }]]));
    const fresh = await again.waitFor(isTransition);
    expect(valueOf(fresh)).toBeGreaterThan(0);
    reader.socket.resume();
    const { code } = await reader.closed;
    expect([CLOSE_CODES.clientTooSlow, 1006]).toContain(code);
  });

  it("is closed with 4009 when replies that cannot be coalesced would take its queue past maxSendBufferBytes", async () => {
    const maxSendBufferBytes = 256 * KiB;
    harness = await startHarness({ limits: { sendBufferBytes: 32 * KiB, maxSendBufferBytes, stallTimeoutMs: 600_000 }, logLevel: "debug" });
    const client = await harness.client();
    client.socket.pause();
    const value = "y".repeat(64 * KiB);
    for (let requestId = 1; requestId <= 200; requestId++) {
      client.send({ type: "Action", requestId, udfPath: "actions:wait", args: { ms: 0, value } });
    }
    await until(() => harness!.server.connectionCount() === 0);
    expect(harness.logs).toContain(`[walkin] closing a connection: client too slow: over ${maxSendBufferBytes} bytes queued for it`);
  });

  it("keeps a bystander served while a slow reader is held back", async () => {
    harness = await startHarness({ limits: { sendBufferBytes: 32 * KiB, stallTimeoutMs: 600_000 } });
    const [slow, bystander, writer] = [await harness.client(), await harness.client(), await harness.client()];
    await subscribePadded(slow);
    slow.socket.pause();
    bystander.send(addQueries(0, [[1, "counters:padded", { name: "c", size: 1 }]]));
    await bystander.waitFor(hasValue(0));
    for (let n = 1; n <= 30; n++) await bump(writer, n);
    await bystander.waitFor(hasValue(30));
  });
});

/**
 * A page that stops reading its stream cannot make the server hold more and more: runs are
 * counted instead of queued, newer live results replace older unsent ones, and a page stuck
 * for a minute is disconnected.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { defineSchema, defineTable, query } from "../../server/index.js";
import { v } from "../../values/index.js";
import { walkinTest } from "../../testing/index.js";
import { StreamClient, StreamHub, type StreamResponse } from "./stream.js";
import type { RunEntry } from "./runLog.js";

function fakeResponse() {
  const written: string[] = [];
  const response = {
    writableLength: 0,
    destroyed: false,
    write: (text: string) => (written.push(text), true),
    destroy: () => ((response.destroyed = true), response),
    end: () => response,
  };
  return { response, written, events: () => written.flatMap((chunk) => chunk.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => JSON.parse(e.slice(6)))) };
}

const run = (id: number): RunEntry => ({ id, time: 0, type: "query", path: "q", caller: "client", durationMs: 1, retries: 0, outcome: "success", error: null, logs: [] });

describe("StreamClient", () => {
  it("batches runs and commits, and keeps only the newest result per live query", () => {
    const fake = fakeResponse();
    const client = new StreamClient(fake.response as unknown as StreamResponse);
    client.addRun(run(1));
    client.addRun(run(2));
    client.addTables(["messages", "users"]);
    client.addTables(["messages"]);
    client.add({ type: "watch", watchId: "w", outcome: { ok: true, value: 1 } });
    client.add({ type: "watch", watchId: "w", outcome: { ok: true, value: 2 } });
    client.add({ type: "health", health: { n: 1 } });
    client.flush();
    expect(fake.events()).toEqual([
      { type: "runs", runs: [run(1), run(2)], missed: 0 },
      { type: "commit", tables: ["messages", "users"] },
      { type: "watch", watchId: "w", outcome: { ok: true, value: 2 } },
      { type: "health", health: { n: 1 } },
    ]);
  });

  it("while the page does not read: writes nothing, counts runs, coalesces the rest, and drops a page stuck for a minute", () => {
    const fake = fakeResponse();
    const client = new StreamClient(fake.response as unknown as StreamResponse);
    fake.response.writableLength = 2 * 1024 * 1024;
    for (let i = 0; i < 5_000; i++) {
      client.addRun(run(i));
      client.add({ type: "watch", watchId: "w", outcome: { ok: true, value: i } });
      client.add({ type: "health", health: { i } });
    }
    client.flush(1_000);
    expect(fake.written).toEqual([]);
    client.flush(50_000);
    expect(fake.response.destroyed).toBe(false);
    fake.response.writableLength = 0; // it reads again
    client.flush(55_000);
    expect(fake.events()).toEqual([
      { type: "runs", runs: [], missed: 5_000 },
      { type: "watch", watchId: "w", outcome: { ok: true, value: 4_999 } },
      { type: "health", health: { i: 4_999 } },
    ]);
    fake.response.writableLength = 2 * 1024 * 1024;
    client.flush(100_000);
    client.flush(161_000);
    expect(fake.response.destroyed).toBe(true);
  });
});

describe("StreamHub", () => {
  let t: ReturnType<typeof walkinTest> | undefined;
  afterEach(async () => t?.close());

  it("holds a page to its limit of live queries when its watch requests arrive together", async () => {
    const schema = defineSchema({ notes: defineTable({ text: v.string() }) });
    t = walkinTest(schema, { notes: { count: query({ args: { n: v.number() }, handler: async (ctx) => (await ctx.db.query("notes").collect()).length }) } });
    const engine = await t.engine();
    const hub = new StreamHub();
    const fake = fakeResponse();
    let close = () => {};
    const request = { on: (event: string, listener: () => void) => event === "close" && (close = listener) };
    const response = Object.assign(fake.response, { writeHead: () => response, on: () => response });
    hub.open(request as unknown as IncomingMessage, response as unknown as ServerResponse);
    const streamId = fake.events()[0].streamId as string;

    // 25 different queries at once: each check runs before any of their first runs ends.
    const watches = await Promise.allSettled(Array.from({ length: 25 }, (_, n) => hub.watch(streamId, engine, "notes:count", { n }, {})));
    expect(watches.filter((w) => w.status === "fulfilled")).toHaveLength(20);
    const refused = watches.filter((w): w is PromiseRejectedResult => w.status === "rejected");
    expect(refused.map((w) => (w.reason as Error).message)).toEqual(Array(5).fill("At most 20 live queries per page; stop one first."));
    expect(engine.subscriptions.size).toBe(20);
    close(); // the page goes away: its live queries with it
    expect(engine.subscriptions.size).toBe(0);
  });
});

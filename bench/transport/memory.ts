/**
 * Case 3, memory per idle subscribed client: a server alone in its process (`memServer.ts`),
 * its RSS after garbage collection before and after N clients (from `clients.ts`) connect and
 * subscribe to one query; (after - before) / N. Walk-in first: its first Transition's text is
 * what the floor server answers each subscriber with, so both receive the same bytes.
 *
 * Both servers first take and drop 50 connections (code loaded, JIT warm, buffers pooled), so
 * the baseline does not leave the cost of the first connection to the measured ones.
 */
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Child } from "./child.js";

export interface MemorySide {
  /** Bytes per connection. */
  rss: number;
  heapUsed: number;
  external: number;
  connections: number;
}

export interface MemoryResult {
  n: number;
  walkin: MemorySide;
  floor: MemorySide;
}

type Usage = NodeJS.MemoryUsage & { connections: number };

async function measureSide(
  clients: Child,
  kind: "walkin" | "floor",
  n: number,
  dir: string,
  initial: string,
): Promise<{ side: MemorySide; initialText: string }> {
  const server = Child.start("memServer.ts", `memory server (${kind})`, ["--expose-gc"]);
  try {
    const { url, writerUrl } = await server.request<{ url: string; writerUrl: string }>({
      op: "start",
      kind,
      filename: join(dir, "memory.sqlite"),
      initial,
    });
    await clients.request({ op: "open", set: `mem-warmup-${kind}`, url, writerUrl, n: 50 });
    await clients.request({ op: "close", set: `mem-warmup-${kind}` });
    await sleep(200);
    const before = await server.request<Usage>({ op: "measure" });
    const opened = await clients.request<{ initialText: string }>({ op: "open", set: `mem-${kind}`, url, writerUrl, n }, 120_000);
    const after = await server.request<Usage>({ op: "measure" });
    await clients.request({ op: "close", set: `mem-${kind}` });
    await server.request({ op: "stop" });
    const per = (field: "rss" | "heapUsed" | "external") => (after[field] - before[field]) / n;
    return {
      side: { rss: per("rss"), heapUsed: per("heapUsed"), external: per("external"), connections: after.connections - before.connections },
      initialText: opened.initialText,
    };
  } finally {
    await server.stop();
  }
}

export async function memory(dir: string, clients: Child, n: number): Promise<MemoryResult> {
  const walkin = await measureSide(clients, "walkin", n, dir, "");
  const floor = await measureSide(clients, "floor", n, dir, walkin.initialText);
  return { n, walkin: walkin.side, floor: floor.side };
}

/**
 * What the benchmarks' raw-protocol clients share (bench/transport/clients.ts,
 * bench/scale/subscribers.ts): socket options, waiting for a socket to open, and telling a
 * query update from other messages without decoding its results.
 */
import type { WebSocket } from "ws";

/** No compression: the figures should measure Walk-in, not zlib. */
export const rawSocketOptions = { perMessageDeflate: false } as const;

/** Whether a server message is a Transition that updates at least one query. */
export function isUpdate(text: string): boolean {
  const message = JSON.parse(text) as { type?: string; modifications?: Array<{ type: string }> };
  return message.type === "Transition" && (message.modifications ?? []).some((mod) => mod.type === "QueryUpdated");
}

/** Resolves when the socket is open; rejects on its first error. */
export function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
}

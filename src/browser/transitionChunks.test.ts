import { describe, expect, it } from "vitest";
import { encodeTransition } from "../transport/chunking.js";
import { parseServerMessage, type QueryId, type TransitionChunkMessage, type TransitionMessage } from "../transport/protocol.js";
import { ProtocolMismatch } from "./localSyncState.js";
import { TransitionChunks } from "./transitionChunks.js";

const big: TransitionMessage = {
  type: "Transition",
  startVersion: { querySet: 0, identity: 0, ts: 0 },
  endVersion: { querySet: 1, identity: 0, ts: 7 },
  modifications: [{ type: "QueryUpdated", queryId: 0 as QueryId, value: { text: "é😀\"\\".repeat(500), n: [1, 2, 3] } }],
};

/** The server's own chunker, so the two sides are checked against each other. */
function chunksOf(transition: TransitionMessage, maxBytes: number, transitionId = 0): TransitionChunkMessage[] {
  return encodeTransition(transition, maxBytes, transitionId).map((text) => {
    const parsed = parseServerMessage(text);
    if (!parsed.ok || parsed.message.type !== "TransitionChunk") throw new Error("expected chunks");
    return parsed.message;
  });
}

describe("TransitionChunks", () => {
  it("reassembles the server's chunks into the original Transition", () => {
    const chunks = chunksOf(big, 1024);
    expect(chunks.length).toBeGreaterThan(3);
    const assembler = new TransitionChunks();
    for (const chunk of chunks.slice(0, -1)) {
      expect(assembler.add(chunk)).toBeNull();
      expect(assembler.inProgress()).toBe(true);
    }
    expect(assembler.add(chunks.at(-1)!)).toEqual(big);
    expect(assembler.inProgress()).toBe(false);
    // And the next transition starts afresh.
    const next = chunksOf(big, 2048, 1);
    let whole: TransitionMessage | null = null;
    for (const chunk of next) whole = assembler.add(chunk);
    expect(whole).toEqual(big);
  });

  it("refuses parts out of order, mixed transitions, and text that is no Transition", () => {
    const chunks = chunksOf(big, 1024);
    const skipped = new TransitionChunks();
    skipped.add(chunks[0]!);
    expect(() => skipped.add(chunks[2]!)).toThrow(ProtocolMismatch);

    const mixed = new TransitionChunks();
    mixed.add(chunks[0]!);
    expect(() => mixed.add({ ...chunksOf(big, 1024, 5)[1]! })).toThrow(/before transition 0 was complete/);

    const notTransition = new TransitionChunks();
    expect(() =>
      notTransition.add({ type: "TransitionChunk", transitionId: 0, partNumber: 0, totalParts: 1, chunk: '{"type":"Pong"}' }),
    ).toThrow(/do not form a Transition/);

    const reset = new TransitionChunks();
    reset.add(chunks[0]!);
    reset.reset();
    expect(reset.inProgress()).toBe(false);
    expect(reset.add(chunks[0]!)).toBeNull();
  });
});

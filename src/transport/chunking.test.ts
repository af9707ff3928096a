import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeTransition } from "./chunking.js";
import { parseServerMessage, type TransitionMessage } from "./protocol.js";

const transition = (value: string): TransitionMessage => ({
  type: "Transition",
  startVersion: { querySet: 0, identity: 0, ts: 0 },
  endVersion: { querySet: 1, identity: 0, ts: 1 },
  modifications: [{ type: "QueryUpdated", queryId: 1 as never, value }],
});

function reassemble(messages: string[]): TransitionMessage {
  if (messages.length === 1) return JSON.parse(messages[0]!) as TransitionMessage;
  const parts = messages.map((text) => {
    const parsed = parseServerMessage(text);
    if (!parsed.ok || parsed.message.type !== "TransitionChunk") throw new Error("expected chunks");
    return parsed.message;
  });
  parts.forEach((part, i) => expect([part.partNumber, part.totalParts, part.transitionId]).toEqual([i, parts.length, 7]));
  return JSON.parse(parts.map((p) => p.chunk).join("")) as TransitionMessage;
}

describe("encodeTransition", () => {
  it("sends small Transitions whole", () => {
    expect(encodeTransition(transition("hi"), 1024, 0)).toEqual([JSON.stringify(transition("hi"))]);
  });

  it("splits large ones into chunks that each fit, and that reassemble exactly", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", minLength: 200, maxLength: 3000 }), fc.integer({ min: 400, max: 4000 }), (text, maxBytes) => {
        const value = `${text}"\\\u0000é😀\ud83d`; // quotes, backslash, control, 2- and 4-byte, lone surrogate
        const messages = encodeTransition(transition(value), maxBytes, 7);
        const largest = Math.max(...messages.map((message) => Buffer.byteLength(message)));
        expect(largest).toBeLessThanOrEqual(maxBytes);
        expect(reassemble(messages)).toEqual(transition(value));
      }),
      { numRuns: 100 },
    );
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeTransition, transitionText } from "./chunking.js";
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
    expect(encodeTransition(transition("hi"), 1024, 0).map((text) => JSON.parse(text))).toEqual([transition("hi")]);
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

describe("transitionText", () => {
  it("is the Transition's JSON, whatever its modifications and values", () => {
    const json = fc.letrec((tie) => ({
      value: fc.oneof(fc.string(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null), fc.array(tie("value"), { maxLength: 3 }), fc.dictionary(fc.string(), tie("value"), { maxKeys: 3 })),
    })).value;
    fc.assert(
      fc.property(fc.array(json, { maxLength: 4 }), (values) => {
        const shared = { deep: values };
        const t: TransitionMessage = {
          type: "Transition",
          startVersion: { querySet: 1, identity: 0, ts: 5 },
          endVersion: { querySet: 2, identity: 1, ts: 9 },
          modifications: [
            ...values.map((value, i) => ({ type: "QueryUpdated" as const, queryId: i as never, value: value as never })),
            { type: "QueryUpdated" as const, queryId: 98 as never, value: shared as never },
            { type: "QueryUpdated" as const, queryId: 99 as never, value: shared as never }, // cached text reused
            { type: "QueryFailed" as const, queryId: 100 as never, error: { code: "APPLICATION", message: "no" } },
            { type: "QueryRemoved" as const, queryId: 101 as never },
          ],
        };
        expect(JSON.parse(transitionText(t))).toEqual(JSON.parse(JSON.stringify(t)));
      }),
    );
  });
});

describe("transitionText, one after another", () => {
  it("reuses the previous text only for the same Transition (versions, queries, result objects)", () => {
    const shared = { a: [1, 2] };
    const error = { code: "APPLICATION", message: "no" };
    const base: TransitionMessage = {
      type: "Transition",
      startVersion: { querySet: 1, identity: 1, ts: 1 },
      endVersion: { querySet: 1, identity: 1, ts: 2 },
      modifications: [
        { type: "QueryUpdated", queryId: 1 as never, value: shared },
        { type: "QueryFailed", queryId: 2 as never, error },
      ],
    };
    const variants: TransitionMessage[] = [];
    for (const which of ["startVersion", "endVersion"] as const) {
      for (const field of ["querySet", "identity", "ts"] as const) variants.push({ ...base, [which]: { ...base[which], [field]: 9 } });
    }
    const withFirst = (m: TransitionMessage["modifications"][number]) => ({ ...base, modifications: [m, base.modifications[1]!] });
    variants.push(
      withFirst({ type: "QueryUpdated", queryId: 3 as never, value: shared }),
      withFirst({ type: "QueryUpdated", queryId: 1 as never, value: { a: [1, 2, 3] } }),
      withFirst({ type: "QueryUpdated", queryId: 1 as never, value: { a: [1, 2] } }), // another object, same text
      withFirst({ type: "QueryRemoved", queryId: 1 as never }),
      withFirst({ type: "QueryFailed", queryId: 1 as never, error }),
      { ...base, modifications: [base.modifications[0]!, { type: "QueryFailed", queryId: 2 as never, error: { code: "APPLICATION", message: "other" } }] },
      { ...base, modifications: [base.modifications[0]!] },
      { ...base, modifications: [...base.modifications, { type: "QueryRemoved", queryId: 4 as never }] },
    );
    for (const variant of variants) {
      for (const t of [base, variant, variant, base]) expect(transitionText(t)).toBe(JSON.stringify(t));
    }
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { JSONValue } from "../values/index.js";
import { encodeMessage, parseClientMessage, PROTOCOL_LIMITS, type ClientMessage } from "./index.js";

const count = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const path = fc.string({ minLength: 1, maxLength: 40 });
/** Characters JSON is made of (and a few it must not contain), so the text often almost parses. */
const jsonish = fc.constantFrom(...'{}[]":,.-+eE0123456789 tfnrul\\'.split(""), "type", "Connect", "Ping", "\ud800", "é");
const json: fc.Arbitrary<JSONValue> = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JSONValue>;

const clientMessage: fc.Arbitrary<ClientMessage> = fc.oneof(
  fc.record(
    { type: fc.constant("Connect" as const), clientId: fc.string({ minLength: 1, maxLength: 128 }), connectionCount: count, maxObservedTimestamp: count, newRequestsFrom: count },
    { requiredKeys: ["type", "clientId", "connectionCount"] },
  ),
  fc.record({
    type: fc.constant("ModifyQuerySet" as const),
    baseVersion: count,
    newVersion: count,
    modifications: fc.array(
      fc.oneof(
        fc.record({ type: fc.constant("Add" as const), queryId: count, udfPath: path, args: json }),
        fc.record({ type: fc.constant("Remove" as const), queryId: count }),
      ),
      { maxLength: 5 },
    ),
  }) as fc.Arbitrary<ClientMessage>,
  fc.record({ type: fc.constantFrom("Mutation" as const, "Action" as const), requestId: count, udfPath: path, args: json }) as fc.Arbitrary<ClientMessage>,
  fc.record({ type: fc.constant("Authenticate" as const), baseVersion: count, token: fc.option(fc.string({ minLength: 1, maxLength: 200 }), { nil: null }) }),
  fc.constant({ type: "Ping" as const }),
);

describe("parseClientMessage", () => {
  it("never throws on arbitrary text", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: jsonish, maxLength: 300 })), (text) => {
        const result = parseClientMessage(text);
        if (!result.ok && result.error.length === 0) throw new Error("refused without a reason");
      }),
      { numRuns: 1000 },
    );
  });

  it("never throws on arbitrary JSON, and refuses non-messages with a reason", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const result = parseClientMessage(JSON.stringify(value));
        if (!result.ok && !/\w/.test(result.error)) throw new Error("refused without a reason");
      }),
      { numRuns: 2000 },
    );
  });

  it("never throws on messages with fields of the wrong type", () => {
    const type = fc.constantFrom("Connect", "ModifyQuerySet", "Mutation", "Action", "Authenticate", "Ping", "Nope");
    const anything = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined));
    const fields = fc.record(
      { clientId: anything, connectionCount: anything, maxObservedTimestamp: anything, newRequestsFrom: anything, baseVersion: anything, newVersion: anything, modifications: fc.oneof(anything, fc.array(fc.dictionary(fc.constantFrom("type", "queryId", "udfPath", "args"), fc.jsonValue({ maxDepth: 1 })), { maxLength: 3 })), requestId: anything, udfPath: anything, args: anything, token: anything },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(type, fields, (t, f) => {
        parseClientMessage(JSON.stringify({ type: t, ...f }));
      }),
      { numRuns: 1500 },
    );
  });

  it("round-trips every valid message", () => {
    fc.assert(
      fc.property(clientMessage, (message) => {
        const result = parseClientMessage(encodeMessage(message));
        expect(result).toEqual({ ok: true, message: JSON.parse(encodeMessage(message)) });
      }),
      { numRuns: 2000 },
    );
  });

  it("enforces the documented limits", () => {
    const long = "x".repeat(PROTOCOL_LIMITS.maxPathLength + 1);
    expect(parseClientMessage(JSON.stringify({ type: "Mutation", requestId: 1, udfPath: long, args: {} })).ok).toBe(false);
    expect(parseClientMessage(JSON.stringify({ type: "Mutation", requestId: -1, udfPath: "a:b", args: {} })).ok).toBe(false);
    expect(parseClientMessage(JSON.stringify({ type: "Mutation", requestId: 1.5, udfPath: "a:b", args: {} })).ok).toBe(false);
    expect(parseClientMessage(JSON.stringify({ type: "Connect", clientId: "", connectionCount: 0 })).ok).toBe(false);
    for (const newRequestsFrom of [-1, 2.5, "3", null]) {
      expect(parseClientMessage(JSON.stringify({ type: "Connect", clientId: "c", connectionCount: 0, newRequestsFrom }))).toEqual({
        ok: false,
        error: expect.stringMatching(/newRequestsFrom must be a non-negative integer/),
      });
    }
    expect(parseClientMessage(JSON.stringify({ type: "Authenticate", baseVersion: 0, token: "" })).ok).toBe(false);
  });
});

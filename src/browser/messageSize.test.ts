/**
 * `requestText`: a call's message is encoded once, and its args are measured inside that text.
 * The limit is on the args' UTF-8 bytes (`MAX_ARGS_BYTES`), not on the text's characters nor on
 * the whole message, so these cases sit exactly on it, with characters of two and four bytes and
 * a function path that is not ASCII (its bytes are the envelope's, never the args').
 */
import { describe, expect, it } from "vitest";
import { encodeMessage, PROTOCOL_LIMITS, type MutationMessage, type RequestId } from "../transport/protocol.js";
import { isWalkinError } from "../values/errors.js";
import { MAX_ARGS_BYTES, requestText } from "./messageSize.js";

/** A Mutation whose args, `{"s":"…"}`, take `bytes` bytes in UTF-8: `filler` repeated, then ASCII to make up the rest. */
function mutationWithArgsOf(bytes: number, filler: string, udfPath = "messages:send"): MutationMessage {
  const fillerBytes = Buffer.byteLength(filler);
  const room = bytes - Buffer.byteLength('{"s":""}');
  const text = filler.repeat(Math.floor(room / fillerBytes)) + "x".repeat(room % fillerBytes);
  const message: MutationMessage = { type: "Mutation", requestId: 41 as RequestId, udfPath, args: { s: text } };
  expect(Buffer.byteLength(JSON.stringify(message.args))).toBe(bytes);
  return message;
}

function refusal(message: MutationMessage): unknown {
  try {
    requestText("mutation", message);
  } catch (error) {
    return error;
  }
  return null;
}

describe("requestText", () => {
  it("answers the message's own text, for small args and for args right at the limit", () => {
    const small: MutationMessage = { type: "Mutation", requestId: 3 as RequestId, udfPath: "m:a", args: { body: "hi", n: 1 } };
    expect(requestText("mutation", small)).toBe(encodeMessage(small));
    const atLimit = mutationWithArgsOf(MAX_ARGS_BYTES, "é");
    expect(requestText("mutation", atLimit)).toBe(encodeMessage(atLimit));
  });

  for (const [name, filler] of [["two-byte", "é"], ["four-byte", "😀"]] as const) {
    it(`counts the args' UTF-8 bytes with ${name} characters: the limit is accepted, one byte more is refused`, () => {
      // A path of non-ASCII characters: its bytes are in the text, not in the args.
      const path = "mensajes:envíoÉÉÉÉ";
      expect(refusal(mutationWithArgsOf(MAX_ARGS_BYTES, filler, path))).toBeNull();
      const over = refusal(mutationWithArgsOf(MAX_ARGS_BYTES + 1, filler, path));
      expect(isWalkinError(over) && over.code).toBe("LIMIT_EXCEEDED");
      expect((over as Error).message).toContain(`mutation ${path} take ${MAX_ARGS_BYTES + 1} bytes`);
    });
  }

  it("refuses a call whose path JSON escapes so much that the message is over the server's limit, though its args are not", () => {
    // 512 characters, as many as the server takes, each written as 6 bytes (\u0001) in JSON.
    const path = "m:" + "\u0001".repeat(510);
    const over = mutationWithArgsOf(MAX_ARGS_BYTES, "x", path);
    const error = refusal(over);
    expect(isWalkinError(error) && error.code).toBe("LIMIT_EXCEEDED");
    expect((error as Error).message).toMatch(/takes \d+ bytes with its function path and arguments; .* Its path is 3064 bytes once JSON escapes it/);
    expect(Buffer.byteLength(encodeMessage(over))).toBeGreaterThan(PROTOCOL_LIMITS.maxClientMessageBytes);
    // The same args under a plain path of the same length fit.
    expect(refusal(mutationWithArgsOf(MAX_ARGS_BYTES, "x", "m:" + "a".repeat(510)))).toBeNull();
  });

  it("refuses a function path longer than the server takes, before encoding anything", () => {
    // Args JSON.stringify cannot encode (a TypeError if it were tried first).
    const message: MutationMessage = { type: "Mutation", requestId: 0 as RequestId, udfPath: `m:${"x".repeat(600)}`, args: { n: 1n } as never };
    const error = refusal(message);
    expect(isWalkinError(error) && error.code).toBe("LIMIT_EXCEEDED");
    expect((error as Error).message).toMatch(/602 characters long/);
  });
});

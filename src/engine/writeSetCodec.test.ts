/**
 * The commit log's write-set bytes (writeSetCodec.ts). Every engine sharing a database reads
 * what the others wrote, and rows written by earlier versions stay in the log, so the layout
 * is pinned here byte for byte.
 */
import { describe, expect, it } from "vitest";
import { decodeWriteSet, encodeWriteSet, tablesOfWriteSet } from "./writeSetCodec.js";

const bytes = (...values: number[]) => new Uint8Array(values);

describe("write-set codec", () => {
  it("writes layout 1 exactly: version, then per index its id and its keys, lengths big-endian", () => {
    const encoded = encodeWriteSet(new Map([["t.ab", [bytes(1, 2), bytes()]], ["u.é", [bytes(255)]]]));
    expect(Array.from(encoded)).toEqual([
      1,
      0, 4, ...Array.from(Buffer.from("t.ab")), 0, 0, 0, 2,
      0, 0, 0, 2, 1, 2,
      0, 0, 0, 0,
      0, 4, ...Array.from(Buffer.from("u.é")), 0, 0, 0, 1,
      0, 0, 0, 1, 255,
    ]);
  });

  it("decodes what it encodes, including an empty write set and keys longer than 255 bytes", () => {
    const long = new Uint8Array(70_000).map((_, i) => i % 251);
    const writes = new Map([["docs.by_id", [bytes(9, 8, 7), long]], ["docs.by_key", []]]);
    const decoded = decodeWriteSet(encodeWriteSet(writes));
    expect([...decoded.keys()]).toEqual(["docs.by_id", "docs.by_key"]);
    expect(decoded.get("docs.by_id")!.map((key) => Array.from(key.subarray(0, 3)))).toEqual([[9, 8, 7], [0, 1, 2]]);
    expect(decoded.get("docs.by_id")![1]!.length).toBe(70_000);
    expect(decoded.get("docs.by_key")).toEqual([]);
    expect(decodeWriteSet(encodeWriteSet(new Map())).size).toBe(0);
  });

  it("hands back bytes that later encodings do not overwrite", () => {
    const first = encodeWriteSet(new Map([["t.i", [bytes(1)]]]));
    const copy = Array.from(first);
    for (let n = 0; n < 1_000; n++) encodeWriteSet(new Map([["t.i", [bytes(n & 255, 0, 0, 0)]]]));
    expect(Array.from(first)).toEqual(copy);
    expect(decodeWriteSet(first).get("t.i")).toEqual([bytes(1)]);
  });

  it("refuses bytes it did not write", () => {
    expect(() => decodeWriteSet(bytes())).toThrow(/unknown format/);
    expect(() => decodeWriteSet(bytes(2, 0, 0))).toThrow(/unknown format/);
    expect(() => decodeWriteSet(bytes(1, 0, 3, 116))).toThrow(/truncated/);
  });

  it("names the tables a write set touched", () => {
    expect([...tablesOfWriteSet(new Map([["users.by_id", []], ["users.by_email", []], ["_scheduled.by_time", []]]))]).toEqual(["users", "_scheduled"]);
  });
});

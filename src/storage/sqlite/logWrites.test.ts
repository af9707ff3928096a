/**
 * The log row's `writes` (logWrites.ts): what a commit is made of must come back exactly as it
 * went in, whatever its strings and keys hold, and bytes this code did not write must be
 * refused with the commit named, never read as a different commit.
 */
import { describe, expect, it } from "vitest";
import type { Commit } from "../types.js";
import { decodeWrites, encodeWrites } from "./logWrites.js";

/** Every byte value, so no byte is special to the layout. */
const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);

const commit: Commit = {
  ts: 7,
  id: "c7",
  log: new Uint8Array(0),
  documents: [
    { id: "fresh", table: "users", body: JSON.stringify({ name: "Zoë 👋", quote: '"\\' }), fresh: true },
    { id: "updated", table: "users", body: "{}" },
    { id: "gone", table: "tâble", body: null },
    { id: "", table: "", body: "" },
  ],
  indexes: [
    { indexId: "users.by_id", key: allBytes, docId: "fresh", fresh: true },
    { indexId: "users.by_name", key: new Uint8Array(0), docId: "updated" },
    { indexId: "users.by_name", key: Uint8Array.of(0, 0, 1), docId: null },
  ],
  receipts: [
    { key: '["client",1]', body: '{"ok":"✓"}' },
    { key: "empty", body: "" },
  ],
};

/** What a decoded commit holds: its log bytes are not part of the row. */
const asDecoded = (c: Commit) => ({ ...c, log: new Uint8Array(0), receipts: c.receipts ?? [] });

/** A private copy: `encodeWrites` answers with a view of a buffer it reuses. */
const encode = (c: Commit, writtenAt: number) => Uint8Array.from(encodeWrites(c, writtenAt));

describe("log row writes", () => {
  it("decodes to the commit it encoded: deletions, removals, fresh hints, any bytes in keys, any characters in strings", () => {
    const bytes = encode(commit, 1_700_000_000_123);
    const decoded = decodeWrites(7, "c7", bytes);
    expect(decoded.commit).toEqual(asDecoded(commit));
    expect(decoded.writtenAt).toBe(1_700_000_000_123);
    expect(decoded.bytes).toBe(bytes.length);
    // The fresh hint is absent, not false, where the write did not give it.
    expect("fresh" in decoded.commit.documents[1]!).toBe(false);
    expect("fresh" in decoded.commit.indexes[1]!).toBe(false);
  });

  it("encodes a commit without receipts, and one larger than its buffer", () => {
    const noReceipts: Commit = { ts: 1, id: "c1", log: new Uint8Array(0), documents: [{ id: "a", table: "t", body: "{}" }], indexes: [] };
    expect(decodeWrites(1, "c1", encode(noReceipts, 5)).commit).toEqual(asDecoded(noReceipts));
    const body = JSON.stringify({ text: "é".repeat(300_000) });
    const big: Commit = { ...noReceipts, documents: [{ id: "big", table: "t", body }], indexes: [{ indexId: "t.k", key: new Uint8Array(70_000).fill(9), docId: "big" }] };
    expect(decodeWrites(1, "c1", encode(big, 5)).commit).toEqual(asDecoded(big));
    // The buffer it grew into serves the next, small commit as well.
    expect(decodeWrites(7, "c7", encode(commit, 5)).commit).toEqual(asDecoded(commit));
  });

  it("writes JSON's escapes no more: a key of small bytes takes its own length", () => {
    const key = new Uint8Array(100); // 100 zero bytes: 600 characters as escaped JSON
    const oneKey: Commit = { ts: 1, id: "c1", log: new Uint8Array(0), documents: [], indexes: [{ indexId: "i", key, docId: "d" }] };
    expect(encode(oneKey, 0).length).toBeLessThan(150);
  });

  it("refuses bytes it did not write, naming the commit", () => {
    const bytes = encode(commit, 1);
    expect(() => decodeWrites(7, "c7", bytes.subarray(0, bytes.length - 1))).toThrow(/log row of commit 7 is damaged: it ends 1 bytes short/);
    expect(() => decodeWrites(7, "c7", bytes.subarray(0, 20))).toThrow(/commit 7 is damaged/);
    expect(() => decodeWrites(7, "c7", Uint8Array.of(...bytes, 0))).toThrow(/commit 7 is damaged: 1 bytes follow its last receipt/);
    expect(() => decodeWrites(7, "c7", Uint8Array.of(9, ...bytes.subarray(1)))).toThrow(/unknown format 9 \(was it written by a newer Walk-in\?\)/);
    expect(() => decodeWrites(7, "c7", new Uint8Array(0))).toThrow(/commit 7 is damaged/);
  });

  it("reads the JSON text that rows logged before schema 7 hold", () => {
    const text = JSON.stringify([
      42,
      [["fresh", "users", '{"a":1}', 1], ["gone", "users", null, 0]],
      [["users.by_id", String.fromCharCode(0, 255, 7), "fresh", 1], ["users.by_a", "", null, 0]],
      [["r", "done"]],
    ]);
    const decoded = decodeWrites(3, "c3", text);
    expect(decoded.writtenAt).toBe(42);
    expect(decoded.commit).toEqual({
      ts: 3,
      id: "c3",
      log: new Uint8Array(0),
      documents: [{ id: "fresh", table: "users", body: '{"a":1}', fresh: true }, { id: "gone", table: "users", body: null }],
      indexes: [{ indexId: "users.by_id", key: Uint8Array.of(0, 255, 7), docId: "fresh", fresh: true }, { indexId: "users.by_a", key: new Uint8Array(0), docId: null }],
      receipts: [{ key: "r", body: "done" }],
    });
  });
});

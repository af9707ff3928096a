/**
 * Conformance tests of `Storage.scan`: key order, bounds, limits, index isolation, and what a
 * snapshot sees as entries and documents change over time; and of `scanVersions`, the same
 * scan without the bodies.
 */
import { expect, it } from "vitest";
import type { IndexEntry, IndexVersion, KeyBound, ScanRequest } from "../types.js";
import { bytes, entry, keysOf, plain, put, remove, commit, type SuiteContext } from "./context.js";
import { compareBytes } from "./model.js";
import { rangeContains } from "../keyRange.js";

/** Keys that share prefixes and use the extreme bytes; the empty key is the smallest of all. */
const KEYS = [[0x01, 0xff], [], [0x02], [0x01], [0xff], [0x01, 0x00, 0x00], [0x00], [0x01, 0x00]];
const SORTED = [...KEYS].sort(compareBytes);

const scanAll = (indexId: string, readTs: number, order: "asc" | "desc" = "asc"): ScanRequest => ({
  indexId,
  range: {},
  order,
  readTs,
  limit: 1000,
});

export function scanTests(ctx: SuiteContext): void {
  /** Commits one document per key of KEYS (in a shuffled order) to index "i" at ts 1. */
  async function commitKeys(): Promise<void> {
    const documents = KEYS.map((k) => put(`doc${k.join("_")}`, `body${k.join("_")}`));
    const indexes = KEYS.map((k) => entry("i", k, `doc${k.join("_")}`));
    await commit(ctx.storage, { ts: 1, documents, indexes });
  }

  it("orders keys bytewise with a shorter prefix first, ascending and descending", async () => {
    await commitKeys();
    expect(SORTED).toEqual([[], [0x00], [0x01], [0x01, 0x00], [0x01, 0x00, 0x00], [0x01, 0xff], [0x02], [0xff]]);
    expect(keysOf(await ctx.storage.scan(scanAll("i", 1)))).toEqual(SORTED);
    expect(keysOf(await ctx.storage.scan(scanAll("i", 1, "desc")))).toEqual([...SORTED].reverse());
  });

  it("returns keys as the bytes written and each joined with its document", async () => {
    await commitKeys();
    const range = { lower: { key: bytes(1, 0), inclusive: true } };
    const [first] = await ctx.storage.scan({ ...scanAll("i", 1), range, limit: 1 });
    expect(first!.key).toBeInstanceOf(Uint8Array);
    expect(plain([first!])).toEqual([{ key: [1, 0], doc: { id: "doc1_0", table: "things", ts: 1, body: "body1_0" } }]);
  });

  it("honours every combination of inclusive, exclusive and missing bounds", async () => {
    await commitKeys();
    // Bounds on stored keys and on keys between them.
    const boundKeys = [...KEYS, [0x01, 0x00, 0x00, 0x00], [0x01, 0x01], [0x03], [0xff, 0xff]];
    const bounds: (KeyBound | undefined)[] = [undefined];
    for (const k of boundKeys) for (const inclusive of [true, false]) bounds.push({ key: Uint8Array.from(k), inclusive });
    for (const lower of bounds) {
      for (const upper of bounds) {
        const range = { ...(lower && { lower }), ...(upper && { upper }) };
        const expected = SORTED.filter((k) => rangeContains(range, Uint8Array.from(k)));
        for (const order of ["asc", "desc"] as const) {
          const got = keysOf(await ctx.storage.scan({ indexId: "i", range, order, readTs: 1, limit: 1000 }));
          expect(got, JSON.stringify({ lower, upper, order })).toEqual(order === "asc" ? expected : [...expected].reverse());
        }
      }
    }
  });

  it("returns at most `limit` entries, from the start of the order", async () => {
    await commitKeys();
    for (const limit of [0, 1, 3, SORTED.length, SORTED.length + 5]) {
      expect(keysOf(await ctx.storage.scan({ ...scanAll("i", 1), limit }))).toEqual(SORTED.slice(0, limit));
      const desc = await ctx.storage.scan({ ...scanAll("i", 1, "desc"), limit });
      expect(keysOf(desc)).toEqual([...SORTED].reverse().slice(0, limit));
    }
  });

  it("sees only the requested index", async () => {
    await commit(ctx.storage, {
      ts: 1,
      documents: [put("a", "A"), put("b", "B")],
      indexes: [entry("first", [1], "a"), entry("second", [1], "b"), entry("first_", [0], "b")],
    });
    expect(plain(await ctx.storage.scan(scanAll("first", 1))).map((e) => e.doc.id)).toEqual(["a"]);
    expect(plain(await ctx.storage.scan(scanAll("second", 1))).map((e) => e.doc.id)).toEqual(["b"]);
    expect(await ctx.storage.scan(scanAll("missing", 1))).toEqual([]);
  });

  it("shows an entry from its commit on; a removed entry vanishes from its ts but older snapshots keep it", async () => {
    const s = ctx.storage;
    await commit(s, {
      ts: 2,
      documents: [put("a", "A"), put("b", "B")],
      indexes: [entry("i", [1], "a"), entry("i", [2], "b")],
    });
    await commit(s, { ts: 4, documents: [remove("a")], indexes: [entry("i", [1], null)] });
    await commit(s, { ts: 6, documents: [put("a", "A again")], indexes: [entry("i", [1], "a")] });
    expect(keysOf(await s.scan(scanAll("i", 1)))).toEqual([]);
    expect(keysOf(await s.scan(scanAll("i", 2)))).toEqual([[1], [2]]);
    expect(keysOf(await s.scan(scanAll("i", 3, "desc")))).toEqual([[2], [1]]);
    expect(keysOf(await s.scan(scanAll("i", 4)))).toEqual([[2]]);
    expect(keysOf(await s.scan(scanAll("i", 5, "desc")))).toEqual([[2]]);
    expect(plain(await s.scan(scanAll("i", 6)))).toEqual([
      { key: [1], doc: { id: "a", table: "things", ts: 6, body: "A again" } },
      { key: [2], doc: { id: "b", table: "things", ts: 2, body: "B" } },
    ]);
  });

  it("joins each entry with its document as of readTs", async () => {
    const s = ctx.storage;
    await commit(s, { ts: 1, documents: [put("a", "old")], indexes: [entry("i", [5], "a")] });
    await commit(s, { ts: 3, documents: [put("a", "patched")], indexes: [] });
    const bodyAt = async (readTs: number) => (await s.scan(scanAll("i", readTs))).map((e) => [e.doc.body, e.doc.ts]);
    expect(await bodyAt(1)).toEqual([["old", 1]]);
    expect(await bodyAt(2)).toEqual([["old", 1]]);
    expect(await bodyAt(3)).toEqual([["patched", 3]]);
  });

  it("counts a key with many versions once, as of readTs, also under a limit", async () => {
    const s = ctx.storage;
    await commit(s, { ts: 1, documents: [put("a", "A"), put("b", "B"), put("z", "Z")], indexes: [entry("i", [9], "z")] });
    // Key [1] flips between documents and removal many times; [2] is written once.
    const pointsAt: (string | null)[] = ["a", null, "b", "a", null, null, "b"];
    for (const [n, docId] of pointsAt.entries()) {
      const indexes = [entry("i", [1], docId), ...(n === 3 ? [entry("i", [2], "b")] : [])];
      await commit(s, { ts: 2 + n, documents: [], indexes });
    }
    for (const [n, docId] of pointsAt.entries()) {
      const readTs = 2 + n;
      const expected = [
        ...(docId === null ? [] : [{ key: [1], id: docId }]),
        ...(n >= 3 ? [{ key: [2], id: "b" }] : []),
        { key: [9], id: "z" },
      ];
      const got = (await s.scan(scanAll("i", readTs))).map((e) => ({ key: Array.from(e.key), id: e.doc.id }));
      expect(got, `readTs ${readTs}`).toEqual(expected);
      const limited = await s.scan({ ...scanAll("i", readTs, "desc"), limit: 2 });
      expect(keysOf(limited)).toEqual([...expected].reverse().slice(0, 2).map((e) => e.key));
    }
  });
}

/** `scanVersions` (`Storage.scanVersions`): `scan` without the bodies, on every storage. */
export function scanVersionsTests(ctx: SuiteContext): void {
  const versionsOf = (entries: IndexEntry[]) => entries.map(({ key, doc }) => ({ key: Array.from(key), id: doc.id, table: doc.table, ts: doc.ts }));
  const plainVersions = (versions: IndexVersion[]) => versions.map(({ key, id, table, ts }) => ({ key: Array.from(key), id, table, ts }));

  it("answers the entries scan answers, in its order and limits, each with its document's version and no body", async () => {
    const s = ctx.storage;
    const large = "x".repeat(12_000); // past SQLite's overflow and PostgreSQL's TOAST thresholds
    await commit(s, {
      ts: 2,
      documents: [put("a", "A"), put("b", large), put("c", "C"), put("d", large, "others")],
      indexes: [entry("v", [1], "a"), entry("v", [2], "b"), entry("v", [3], "c"), entry("v", [4], "d")],
    });
    // b's body changes and its entry does not: its version is 4. c is deleted at 6 (its entry
    // goes too); d's document is deleted with its entry left (which the engine never writes),
    // so d is skipped from 6 on, as scan skips it.
    await commit(s, { ts: 4, documents: [put("b", `${large}!`)], indexes: [] });
    await commit(s, { ts: 6, documents: [remove("c"), remove("d", "others")], indexes: [entry("v", [3], null)] });
    expect(plainVersions(await s.scanVersions({ indexId: "v", range: {}, order: "asc", readTs: 6, limit: 10 }))).toEqual([
      { key: [1], id: "a", table: "things", ts: 2 },
      { key: [2], id: "b", table: "things", ts: 4 },
    ]);
    for (const readTs of [1, 2, 3, 4, 5, 6]) {
      for (const order of ["asc", "desc"] as const) {
        for (const limit of [1, 2, 3, 10]) {
          for (const range of [{}, { lower: { key: bytes(2), inclusive: true } }, { upper: { key: bytes(3), inclusive: false } }]) {
            const request: ScanRequest = { indexId: "v", range, order, readTs, limit };
            const where = `at ${readTs}, ${order}, limit ${limit}, range ${JSON.stringify(range, (_, v) => (v instanceof Uint8Array ? Array.from(v) : v))}`;
            expect(plainVersions(await s.scanVersions(request)), where).toEqual(versionsOf(await s.scan(request)));
          }
        }
      }
    }
    expect(await s.scanVersions({ indexId: "v", range: {}, order: "asc", readTs: 6, limit: 0 })).toEqual([]);
    expect(await s.scanVersions({ indexId: "missing", range: {}, order: "asc", readTs: 6, limit: 10 })).toEqual([]);
  });
}

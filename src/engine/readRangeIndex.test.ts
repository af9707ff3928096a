import { describe, expect, it } from "vitest";
import type { KeyRange } from "../storage/types.js";
import { ReadRangeIndex } from "./readRangeIndex.js";
import { pointRange, prefixRange, ReadSet, type WriteSet } from "./readSet.js";

/** A small deterministic generator, so a failure can be replayed from its seed. */
function generator(seed: number) {
  let state = seed >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const int = (n: number) => Math.floor(next() * n);
  // Keys from a tiny alphabet and short lengths, so that ranges, points and writes collide often
  // (equal keys, one key the prefix of another, bounds on the very key written).
  const key = () => Uint8Array.from({ length: int(4) }, () => int(3));
  const range = (): KeyRange => {
    const shape = int(6);
    if (shape === 0) return pointRange(key());
    if (shape === 1) return prefixRange(key());
    if (shape === 2) return {};
    const lower = int(4) === 0 ? undefined : { key: key(), inclusive: int(2) === 0 };
    const upper = int(4) === 0 ? undefined : { key: key(), inclusive: int(2) === 0 };
    return { ...(lower ? { lower } : {}), ...(upper ? { upper } : {}) };
  };
  return { int, key, range };
}

const INDEXES = ["t.by_id", "t.by_a", "u.by_id"];

describe("ReadRangeIndex", () => {
  it("reports exactly the owners whose read set overlaps a write set (`ReadSet.firstOverlap`), through sets, replacements and deletes", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const g = generator(seed);
      const index = new ReadRangeIndex<number>();
      const readSets = new Map<number, ReadSet>();
      for (let step = 0; step < 300; step++) {
        const action = g.int(10);
        const owner = g.int(60);
        if (action < 5) {
          const readSet = new ReadSet();
          // Now and then more ranges on one index than get a node each (they share a spanning node).
          const many = g.int(8) === 0;
          for (let r = many ? 33 + g.int(30) : g.int(5); r > 0; r--) readSet.add(INDEXES[many ? 0 : g.int(INDEXES.length)]!, g.range());
          index.set(owner, readSet);
          readSets.set(owner, readSet);
        } else if (action < 7) {
          index.delete(owner);
          readSets.delete(owner);
        } else {
          const writes: WriteSet = new Map();
          for (let w = 1 + g.int(3); w > 0; w--) {
            const indexId = INDEXES[g.int(INDEXES.length)]!;
            writes.set(indexId, [...(writes.get(indexId) ?? []), g.key()]);
          }
          const found = new Set<number>();
          index.touched(writes, (hit) => found.add(hit));
          const expected = new Set([...readSets].filter(([, readSet]) => readSet.firstOverlap(writes) !== null).map(([o]) => o));
          expect([...found].sort((a, b) => a - b), `seed ${seed}, step ${step}`).toEqual([...expected].sort((a, b) => a - b));
        }
      }
      expect(index.size).toBe([...readSets.values()].filter((readSet) => readSet.ranges.size > 0).length);
    }
  });

  it("finds the one range a key falls in among many disjoint ones, and nothing between them", () => {
    const index = new ReadRangeIndex<number>();
    // 5,000 live queries each watching its own prefix, as `eq("channel", c)` queries do.
    for (let owner = 0; owner < 5_000; owner++) {
      const readSet = new ReadSet();
      readSet.add("m.by_channel", prefixRange(Uint8Array.of(owner >> 8, owner & 0xff)));
      index.set(owner, readSet);
    }
    const touched = (key: Uint8Array) => {
      const found: number[] = [];
      index.touched(new Map([["m.by_channel", [key]]]), (owner) => found.push(owner));
      return found;
    };
    expect(touched(Uint8Array.of(12, 34, 7, 7))).toEqual([(12 << 8) | 34]);
    expect(touched(Uint8Array.of(0x13, 0x88))).toEqual([]); // 5,000 is past the last prefix
    expect(touched(Uint8Array.of(12))).toEqual([]); // shorter than every prefix: sorts before 12/0
    index.delete((12 << 8) | 34);
    expect(touched(Uint8Array.of(12, 34, 7, 7))).toEqual([]);
    expect(index.size).toBe(4_999);
  });

  it("checks a key inside a many-range owner's span against its ranges, not the span alone", () => {
    const index = new ReadRangeIndex<string>();
    const readSet = new ReadSet();
    // 40 point reads on by_id, keys 10, 20, ..., 400: more than get a node each.
    for (let i = 1; i <= 40; i++) readSet.addPoint("t.by_id", Uint8Array.of(i >> 8, (i * 10) & 0xff, i));
    index.set("many", readSet);
    const touched = (key: Uint8Array) => {
      const found: string[] = [];
      index.touched(new Map([["t.by_id", [key]]]), (owner) => found.push(owner));
      return found;
    };
    expect(touched(Uint8Array.of(0, 70, 7))).toEqual(["many"]);
    expect(touched(Uint8Array.of(0, 70, 8))).toEqual([]); // inside the span, in none of the ranges
    expect(touched(Uint8Array.of(1, 0))).toEqual([]); // past the span
  });

  it("tells whether any write set of a batch touches a range (touchesAny), whichever set it is in", () => {
    const index = new ReadRangeIndex<string>();
    const readSet = new ReadSet();
    readSet.add("m.by_channel", prefixRange(Uint8Array.of(7)));
    index.set("q", readSet);
    const writes = (indexId: string, key: number): WriteSet => new Map([[indexId, [Uint8Array.of(key, 1)]]]);
    expect(index.touchesAny([])).toBe(false);
    expect(index.touchesAny([writes("m.by_channel", 8), writes("other.by_id", 7)])).toBe(false);
    expect(index.touchesAny([writes("m.by_channel", 8), writes("m.by_channel", 7)])).toBe(true);
    index.delete("q");
    expect(index.touchesAny([writes("m.by_channel", 7)])).toBe(false);
  });

  it("costs an index no live query reads nothing, and forgets an index once its last range goes", () => {
    const index = new ReadRangeIndex<string>();
    const readSet = new ReadSet();
    readSet.addPoint("t.by_id", Uint8Array.of(1));
    index.set("q", readSet);
    const found: string[] = [];
    index.touched(new Map([["other.by_id", [Uint8Array.of(1)]]]), (owner) => found.push(owner));
    expect(found).toEqual([]);
    index.touched(new Map([["t.by_id", [Uint8Array.of(1)]]]), (owner) => found.push(owner));
    expect(found).toEqual(["q"]);
    index.set("q", new ReadSet());
    expect(index.size).toBe(0);
    index.touched(new Map([["t.by_id", [Uint8Array.of(1)]]]), (owner) => found.push(owner));
    expect(found).toEqual(["q"]);
  });
});

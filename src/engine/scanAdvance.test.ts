/**
 * `advanceScan` against brute force: random commits to one index and its documents, random
 * scan requests; whenever it gives an answer, that answer must be what scanning the state
 * after the commit gives.
 */
import { describe, expect, it } from "vitest";
import type { DocumentWrite, IndexEntry, IndexWrite, KeyRange, ScanRequest } from "../storage/types.js";
import { rangeContains } from "../storage/keyRange.js";
import { compareBytes } from "../values/indexKey.js";
import { advanceScan } from "./scanAdvance.js";

/** A seeded PRNG (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface State {
  /** Document ID → its field value (the index key is [value, doc number]) and body. */
  docs: Map<string, { value: number; body: string; ts: number }>;
}

const keyOf = (id: string, value: number) => Uint8Array.from([value, Number(id.slice(1))]);

function scan(state: State, request: ScanRequest): IndexEntry[] {
  const entries: IndexEntry[] = [];
  for (const [id, doc] of state.docs) {
    const key = keyOf(id, doc.value);
    if (rangeContains(request.range, key)) entries.push({ key, doc: { id, table: "t", ts: doc.ts, body: doc.body } });
  }
  entries.sort((a, b) => (request.order === "asc" ? 1 : -1) * compareBytes(a.key, b.key));
  return entries.slice(0, request.limit);
}

function randomRange(next: () => number): KeyRange {
  const bound = () => ({ key: Uint8Array.from(next() < 0.5 ? [Math.floor(next() * 10)] : [Math.floor(next() * 10), Math.floor(next() * 40)]), inclusive: next() < 0.5 });
  return { ...(next() < 0.6 && { lower: bound() }), ...(next() < 0.6 && { upper: bound() }) };
}

/** A random commit at `ts`: inserts, updates (same key or a new one) and deletes, applied to `state`. */
function randomCommit(next: () => number, state: State, ts: number, counter: { n: number }) {
  const documents = new Map<string, DocumentWrite>();
  const writes: IndexWrite[] = [];
  const changes = 1 + Math.floor(next() * 3);
  for (let c = 0; c < changes; c++) {
    const ids = [...state.docs.keys()].filter((id) => !documents.has(id));
    const roll = next();
    if (roll < 0.45 || ids.length === 0) {
      const id = `d${++counter.n}`;
      const value = Math.floor(next() * 10);
      state.docs.set(id, { value, body: `${id}@${ts}`, ts });
      documents.set(id, { id, table: "t", body: `${id}@${ts}` });
      writes.push({ indexId: "i", key: keyOf(id, value), docId: id });
    } else {
      const id = ids[Math.floor(next() * ids.length)]!;
      const doc = state.docs.get(id)!;
      if (roll < 0.8) {
        const value = next() < 0.5 ? doc.value : Math.floor(next() * 10);
        if (value !== doc.value) {
          writes.push({ indexId: "i", key: keyOf(id, doc.value), docId: null });
          writes.push({ indexId: "i", key: keyOf(id, value), docId: id });
        }
        state.docs.set(id, { value, body: `${id}@${ts}`, ts });
        documents.set(id, { id, table: "t", body: `${id}@${ts}` });
      } else {
        writes.push({ indexId: "i", key: keyOf(id, doc.value), docId: null });
        state.docs.delete(id);
        documents.set(id, { id, table: "t", body: null });
      }
    }
  }
  return { documents, indexes: new Map([["i", writes]]) };
}

/** Entries as storage states them: a kept version's decoded-document memo (`template`) left out. */
function stated(entries: readonly IndexEntry[]): IndexEntry[] {
  return entries.map(({ key, doc: { id, table, ts, body } }) => ({ key, doc: { id, table, ts, body } }));
}

describe("advanceScan", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`gives the answer a scan after the commit gives, or none (seed ${seed})`, () => {
      const next = random(seed);
      const state: State = { docs: new Map() };
      const counter = { n: 0 };
      let advanced = 0;
      let gaveUp = 0;
      for (let ts = 1; ts <= 300; ts++) {
        const requests: ScanRequest[] = Array.from({ length: 6 }, () => ({
          indexId: "i",
          range: randomRange(next),
          order: next() < 0.5 ? "asc" : "desc",
          readTs: ts - 1,
          limit: Math.floor(next() * 8),
        }));
        const before = requests.map((request) => scan(state, request));
        const commit = randomCommit(next, state, ts, counter);
        requests.forEach((request, i) => {
          const answer = advanceScan(request, before[i]!, ts, commit);
          if (answer === null) {
            gaveUp++;
            return;
          }
          advanced++;
          expect(stated(answer), `ts ${ts}, request ${JSON.stringify(request)}`).toEqual(scan(state, { ...request, readTs: ts }));
          // An entry the commit left alone keeps its version object, and the decoded document
          // the read cache keeps on it (keptVersions.ts).
          for (const entry of answer) {
            const kept = before[i]!.find((old) => old.doc.id === entry.doc.id && old.doc.ts === entry.doc.ts);
            if (kept !== undefined) expect(entry.doc).toBe(kept.doc);
          }
        });
      }
      // Most answers are carried over, so the comparison above is not vacuous.
      expect(advanced).toBeGreaterThan(gaveUp);
    });
  }

  it("leaves the cached array untouched, and hands it back as is when nothing in it changed", () => {
    const entries: IndexEntry[] = [{ key: Uint8Array.from([1, 1]), doc: { id: "d1", table: "t", ts: 1, body: "a" } }];
    const frozen = structuredClone(entries);
    const request: ScanRequest = { indexId: "i", range: {}, order: "asc", readTs: 1, limit: 1 };
    // A write past the end of an answer cut at its limit.
    const past = { documents: new Map([["d2", { id: "d2", table: "t", body: "b" }]]), indexes: new Map([["i", [{ indexId: "i", key: Uint8Array.from([2, 2]), docId: "d2" }]]]) };
    expect(advanceScan(request, entries, 2, past)).toBe(entries);
    // One before it pushes the old entry out.
    const before = { documents: new Map([["d0", { id: "d0", table: "t", body: "z" }]]), indexes: new Map([["i", [{ indexId: "i", key: Uint8Array.from([0, 0]), docId: "d0" }]]]) };
    expect(advanceScan(request, entries, 2, before)!.map((e) => e.doc.id)).toEqual(["d0"]);
    expect(entries).toEqual(frozen);
  });
});

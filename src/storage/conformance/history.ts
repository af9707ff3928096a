/**
 * Seeded random histories for the conformance suite: commits that create, patch, delete and
 * re-create documents and keep two indexes in step (as the engine does), and a fixed battery of
 * reads at one snapshot, so a storage can be compared with the reference model, and with itself
 * before and after pruning.
 */
import type { TestCommit } from "./context.js";
import type { DocumentVersion, IndexEntry, IndexVersion, IndexWrite, KeyBound, ScanRequest, Timestamp } from "../types.js";
import type { ReferenceStorage } from "./model.js";

/** A small deterministic PRNG (mulberry32), so a failing seed can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

/** `seededRandom` with the choices randomized tests make most: a failing seed replays them all. */
export function seededChoices(seed: number) {
  const next = seededRandom(seed);
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]): T => pick(next, items),
    chance: (p: number) => next() < p,
  };
}

const IDS = ["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"];
/** Field values chosen so that keys share prefixes and use the extreme bytes. */
const VALUES: readonly number[][] = [[], [0x01], [0x01, 0x00], [0x01, 0xff], [0x02], [0xff]];
export const HISTORY_INDEXES = ["byValue", "byTable", "neverWritten"];

const tableOf = (id: string) => (Number(id.slice(1)) < 4 ? "alpha" : "beta");
const idByte = (id: string) => Number(id.slice(1));
const valueKey = (id: string, value: number[]) => Uint8Array.from([...value, idByte(id)]);
const tableKey = (id: string) => Uint8Array.from([tableOf(id) === "alpha" ? 0x01 : 0x02, idByte(id)]);

/**
 * `count` commits after the model's latest, applied to `model` as they are generated. With
 * `hintFresh`, every write of a document or index entry never written before is hinted `fresh`
 * (as the engine hints an insert's writes).
 */
export function randomHistory(random: () => number, model: ReferenceStorage, count: number, { hintFresh = false } = {}): TestCommit[] {
  const commits: TestCommit[] = [];
  let ts = model.latest;
  for (let i = 0; i < count; i++) {
    ts += random() < 0.3 ? 2 : 1; // gaps, so some snapshots fall between commits
    const commit: TestCommit = { ts, documents: [], indexes: [] };
    const touched = new Set<string>();
    const writes = random() < 0.1 ? 0 : 1 + Math.floor(random() * 3);
    for (let w = 0; w < writes; w++) {
      const id = pick(random, IDS);
      if (touched.has(id)) continue; // a commit writes each document at most once
      touched.add(id);
      writeDocument(random, model, ts, id, commit);
    }
    if (hintFresh) {
      for (const write of [...commit.documents, ...commit.indexes]) if (model.isNew(write)) write.fresh = true;
    }
    model.apply(commit);
    commits.push(commit);
  }
  return commits;
}

function writeDocument(random: () => number, model: ReferenceStorage, ts: Timestamp, id: string, commit: TestCommit): void {
  const current = model.getDocument(id, ts - 1);
  const oldValue = current === null ? null : (JSON.parse(current.body!) as { value: number[] }).value;
  const indexes: IndexWrite[] = [];
  if (oldValue !== null && random() < 0.3) {
    commit.documents.push({ id, table: tableOf(id), body: null });
    indexes.push({ indexId: "byValue", key: valueKey(id, oldValue), docId: null });
    indexes.push({ indexId: "byTable", key: tableKey(id), docId: null });
  } else {
    const value = pick(random, VALUES);
    commit.documents.push({ id, table: tableOf(id), body: JSON.stringify({ value, writtenAt: ts }) });
    const oldKey = oldValue === null ? null : valueKey(id, oldValue);
    const newKey = valueKey(id, value);
    if (oldKey === null) indexes.push({ indexId: "byTable", key: tableKey(id), docId: id });
    if (oldKey === null || oldKey.join() !== newKey.join()) {
      if (oldKey !== null) indexes.push({ indexId: "byValue", key: oldKey, docId: null });
      indexes.push({ indexId: "byValue", key: newKey, docId: id });
    }
  }
  commit.indexes.push(...indexes);
}

/** A storage, or the reference model (whose reads are synchronous). */
export interface Readable {
  getDocument(id: string, readTs: Timestamp): Promise<DocumentVersion | null> | DocumentVersion | null;
  scan(request: ScanRequest): Promise<IndexEntry[]> | IndexEntry[];
  scanVersions(request: ScanRequest): Promise<IndexVersion[]> | IndexVersion[];
}

/** The same reads at `readTs` of any storage (or of the model), as a comparable plain value. */
export async function readSnapshot(storage: Readable, readTs: Timestamp): Promise<unknown> {
  // The battery depends only on readTs, so two runs at the same snapshot ask the same things.
  const random = seededRandom(readTs * 7919 + 17);
  const documents = [];
  for (const id of [...IDS, "missing"]) documents.push(await storage.getDocument(id, readTs));
  const scans = [];
  for (const indexId of HISTORY_INDEXES) {
    const requests: ScanRequest[] = [
      { indexId, range: {}, order: "asc", readTs, limit: 100 },
      { indexId, range: {}, order: "desc", readTs, limit: 100 },
    ];
    for (let i = 0; i < 4; i++) {
      const range = { lower: randomBound(random), upper: randomBound(random) };
      const limit = pick(random, [0, 1, 2, 3, 100]);
      requests.push({ indexId, range, order: random() < 0.5 ? "asc" : "desc", readTs, limit });
    }
    for (const request of requests) {
      const entries = await storage.scan(request);
      scans.push(entries.map((e) => ({ key: Array.from(e.key), doc: e.doc })));
      scans.push((await storage.scanVersions(request)).map((e) => ({ key: Array.from(e.key), id: e.id, table: e.table, ts: e.ts })));
    }
  }
  return { documents, scans };
}

function randomBound(random: () => number): KeyBound | undefined {
  if (random() < 0.25) return undefined;
  const key = pick(random, [...VALUES.map((v) => [...v, pick(random, [0, 3, 7])]), ...VALUES, [0x01, 0x01], [0x02, 0x04]]);
  return { key: Uint8Array.from(key), inclusive: random() < 0.5 };
}

/** Bounds for `randomScans`: prefixes of one another, and the extreme bytes. */
const BOUND_KEYS: number[][] = [[], [0], [1], [1, 0], [1, 0, 3], [1, 1], [1, 255], [1, 255, 7], [2], [2, 4], [255], [255, 7]];

function scanBound(random: () => number): KeyBound | undefined {
  if (random() < 0.2) return undefined;
  return { key: Uint8Array.from(pick(random, BOUND_KEYS)), inclusive: random() < 0.5 };
}

/**
 * `count` scans of the history's indexes at `readTs` with random bounds, orders and limits (more
 * than `readSnapshot`'s fixed battery), as a comparable plain value; `between` runs after each
 * (a turn of the event loop, for work that steps there).
 */
export async function randomScans(storage: Readable, random: () => number, readTs: Timestamp, count: number, between?: () => Promise<void>): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let i = 0; i < count; i++) {
    const request: ScanRequest = {
      indexId: pick(random, HISTORY_INDEXES),
      range: { lower: scanBound(random), upper: scanBound(random) },
      order: random() < 0.5 ? "asc" : "desc",
      readTs,
      limit: pick(random, [1, 2, 3, 5, 100]),
    };
    const entries = await storage.scan(request);
    const versions = await storage.scanVersions(request);
    const range = JSON.stringify(request.range, (_, v) => (v instanceof Uint8Array ? Array.from(v) : v));
    out.push({
      request: { ...request, range },
      entries: entries.map((e) => ({ key: Array.from(e.key), doc: e.doc })),
      versions: versions.map((e) => ({ key: Array.from(e.key), id: e.id, table: e.table, ts: e.ts })),
    });
    await between?.();
  }
  return out;
}

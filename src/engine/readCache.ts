/**
 * A cache of storage answers at the newest snapshot, so that a hot read (the same index lookup
 * or `db.get`, again and again, on data nobody is writing) costs a Map lookup instead of a
 * storage round trip: a SQLite statement, or a network hop to PostgreSQL.
 *
 * What makes a cached answer safe to reuse is the engine's own knowledge of every commit. Each
 * commit's write set names every index key it touched on every index of the tables it wrote
 * (`readSet.ts`), and the engine hears of every commit up to its `latest` before `latest`
 * passes it, its own and other engines' alike (`committer.ts`). So:
 *
 * 1. Invalidation of scans is per index: a commit that touched index I bumps I's generation,
 *    and every scan answer cached for I under an older generation is dead. Coarse, but
 *    O(indexes written) per commit, and a read-mostly index keeps its answers however busy the
 *    rest of the database is. A document read by ID is invalidated by ID instead: a commit
 *    names every document it wrote by its key in the table's `by_id` index, and the answer
 *    filed under that ID is dropped. So a table that keeps growing (sessions, messages) does
 *    not lose the cached reads of its other documents with every insert.
 * 2. An answer is stored only if it was read at the newest snapshot the engine knows (`readTs
 *    === latest()` when the answer arrives). Then no commit after `readTs` has been applied
 *    yet, and any later one that touches the index bumps its generation before anyone can see
 *    a snapshot that includes it. An answer read at an older snapshot, or one that arrives
 *    after a newer commit was applied (a slow network read), is returned but not stored.
 * 3. A stored answer (read at `validFrom`, generation still current) is the answer at every
 *    snapshot from `validFrom` up to `latest`: nothing applied since touched the index, and
 *    every commit up to `latest` has been applied. A read at an older snapshot than
 *    `validFrom` never uses it (the index may have changed between the two).
 * 4. When the engine loses track of commits (the storage trimmed its log past the engine's
 *    position, `lostTrack`), everything is dropped. Index entries are only ever dropped from
 *    storage (`dropIndex`, before a rebuild) while an engine opens, before its cache exists.
 * 5. One of this engine's own commits carries the scan answers of the indexes it wrote instead
 *    of killing them, where it can (`scanAdvance.ts`): the engine holds everything the commit
 *    wrote, so the answer just before it plus its writes is the answer at its timestamp.
 *    Rule 3 then reads "every commit applied since that touched the index was carried into
 *    the answer". Commits of other engines bring only their keys, and still kill the answers.
 *    At most `MAX_CARRIED_PER_INDEX` answers of an index are carried per commit, so the cost
 *    of a commit stays bounded however many lookups of its index are cached.
 * 6. One of this engine's own commits also files the new version of each document it wrote,
 *    in a table whose documents have been read by ID here (a session written at sign-in is
 *    read by the very next call): the commit is what that version is, from its timestamp on,
 *    and `ts === latest` as it is applied (rule 2). Tables nobody reads by ID (an append-only
 *    log) are not filled with answers nobody asks for.
 *
 * The cache holds at most `maxBytes` of answers (document bodies and keys, roughly counted);
 * about the least recently used go first (a clock, see `evictOne`). Cached arrays are shared
 * between transactions and are never modified: transactions only read them, and the one thing
 * a reader writes is the decoded document a cached version keeps of its own body, once
 * (`keptVersions.ts`). (An answer of one entry is handed out as new objects on every hit
 * instead: `OneEntry` says why.)
 */
import type { DocumentVersion, DocumentWrite, IndexEntry, IndexWrite, KeyBound, ScanRequest, Storage, Timestamp } from "../storage/types.js";
import { idOfByIdKey, type Doc } from "./documents.js";
import { flatTemplate, keptVersion } from "./keptVersions.js";
import { advanceScan, type OwnCommitWrites } from "./scanAdvance.js";

/**
 * The reads a transaction makes: what `Transaction` needs of storage, and optionally a
 * synchronous look at answers already at hand (`ReadCache`).
 */
export type SnapshotReads = Pick<Storage, "getDocument" | "scan"> & {
  peekDocument?(id: string, readTs: Timestamp): DocumentVersion | null | undefined;
  peekScan?(request: ScanRequest): IndexEntry[] | undefined;
};

/** Default size of the read cache: 64 MiB of cached answers. */
export const DEFAULT_READ_CACHE_BYTES = 64 * 1024 * 1024;

/**
 * What document answers are filed under in place of an index: no commit bumps its generation,
 * since they are dropped one by one (rule 1).
 */
const BY_ID_ANSWERS = "";

/** Rule 5: an index with more cached scan answers than this has them dropped, not carried. */
const MAX_CARRIED_PER_INDEX = 32;

/** What one of this engine's commits wrote (`TransactionWrites`), for carrying answers across it. */
export interface CommitWrites {
  documents: readonly DocumentWrite[];
  indexes: readonly IndexWrite[];
}

/** Rough bookkeeping cost of one entry beyond its bodies and keys (objects, Map slot, request). */
const ENTRY_OVERHEAD_BYTES = 200;

/** Slots of the doorkeeper (`admits`): a power of two; 256 KiB of hashes. */
const DOORKEEPER_SLOTS = 1 << 16;

/**
 * How answers are filed. A `db.get` answer under its document's ID (a string the caller already
 * holds, whose hash V8 keeps). A scan answer under a number hashed from the request's bytes,
 * and confirmed by comparing the request itself, with answers whose hashes collide chained
 * through `next`. An earlier version built a string key per scan (bounds as text, joined), and
 * building, flattening and hashing that string was the single largest cost of a cached lookup.
 */
type Filing = { id: string; request?: undefined } | { id?: undefined; request: ScanRequest; hash: number };

/**
 * How a filed answer remembers what it is filed under: a document's ID, or a scan's hash with
 * its request, which is `null` until a commit carries the answer (`requestOf` rebuilds it then
 * from the answer's `FlatScan` fields, and it is kept from there on). Only carrying needs the
 * request as an object; a lookup compares the flattened fields (`answers`), so most answers
 * never need it, and a copy of it was four objects and two key arrays filed with every answer.
 */
type FiledAs = { id: string; request?: undefined } | { id?: undefined; request: ScanRequest | null; hash: number };

/**
 * The `value` of a scan answer of exactly one entry: that entry lives in the answer's own
 * `OneEntry` fields, which are all a hit reads, so no array, entry and document are filed
 * beside them. `entriesOf` makes the list when a commit carries the answer.
 *
 * Why it matters, measured (2026-12-06, case (d) at 1M under NORMAL, alternating runs): random
 * lookups that never repeat, each filed while the cache fills, ran at 0.31 / 0.33 / 0.30 / 0.33
 * of the floor with only these fields kept, against 0.29 / 0.28 / 0.28 / 0.26 with a copy of the
 * list and of the request filed too: about what they run at with the cache off. A filed answer
 * outlives a young-generation collection, so V8 copies each of its objects once or twice before
 * it settles in the old generation, and a CPU profile of the copies' version put 12% of those
 * lookups in the garbage collector and 4% in filing. Hits read the same fields as before: case
 * (b) ran at 2.01 / 1.79 / 1.89 against 1.90 / 1.74 / 1.88.
 */
const IN_ONE_ENTRY_FIELDS: readonly IndexEntry[] = Object.freeze([]);

/**
 * A scan request flattened onto its answer: `flatScan` fills these, `answers` compares a new
 * request with them. Why not compare with the filed request itself: that is five objects (the
 * request, its range, two bounds, two keys) scattered over the heap, and with ten thousand
 * answers cached a lookup found them in no CPU cache. Fetching them from memory, one after the
 * other, was most of a cached lookup: looking a request up took 1.2 µs for a random one of 10k
 * cached, against 0.34 for one request again and again; 0.6 µs with the request flattened.
 * The fields here sit in the answer object, and both bounds' bytes in one string, one byte to a
 * character: a one-byte string holds its characters itself, where a Uint8Array is a header
 * pointing at its bytes, one fetch more.
 */
export interface FlatScan {
  order: ScanRequest["order"] | undefined;
  limit: number;
  /** Each bound: 0 absent, 1 inclusive, 2 exclusive. */
  lowerTag: number;
  upperTag: number;
  lowerLength: number;
  /** The lower bound's key, then the upper's, a character (0–255) to a byte. */
  boundBytes: string;
}

/**
 * A scan answer of exactly one entry (a lookup by a unique key: the commonest scan there is)
 * also keeps that entry's fields on the answer object itself, and a hit hands out a new array,
 * entry and document made from them. A new object costs a few nanoseconds in the young
 * generation, already in cache; the stored array, its elements, the entry and the document are
 * four more objects fetched from memory, one after the other, for a random key among many.
 * `oneBody` is `undefined` for every other answer.
 *
 * Its document also comes decoded (`DecodedVersion`), when it is flat (every field a string,
 * number, boolean or null: `flatTemplate`), and so does a document read by ID (`peekDocument`),
 * which keeps only `oneDoc` of these fields. The answer keeps one decoded copy, made at its first
 * hit, and every hit hands out a shallow copy of it: for a flat document a complete copy of its
 * own, which the handler may change as it likes, made in a tenth of the time `JSON.parse` takes
 * to decode the body again (about 40 ns against 430 for the benchmarks' documents).
 */
interface OneEntry {
  oneKey: Uint8Array | undefined;
  oneId: string;
  oneTable: string;
  oneTs: Timestamp;
  oneBody: string | undefined;
  /** The decoded document to copy; `null` until the first hit, `false` when it is not flat. */
  oneDoc: Doc | null | false;
}

/** A document handed out with a decoded copy of its own (`OneEntry`): `Transaction` uses it instead of decoding the body. */
export interface DecodedVersion extends DocumentVersion {
  body: string;
  decoded: Doc;
}

interface CachedAnswer extends FlatScan, OneEntry {
  filing: FiledAs;
  /** The next scan answer filed under the same hash. */
  next: CachedAnswer | undefined;
  /** Its place on the clock (see `evictOne`). */
  slot: number;
  indexId: string;
  generation: number;
  validFrom: Timestamp;
  bytes: number;
  /** The answer: a list of entries (`IN_ONE_ENTRY_FIELDS` for a list of one), or a document read by ID (null: none). */
  value: IndexEntry[] | DocumentVersion | null;
  /** Stored or read since the clock hand last passed it (see `evictOne`). */
  used: boolean;
}

export interface ReadCacheHost {
  /** The newest commit the engine knows of; every commit up to it has been applied here. */
  readonly latest: Timestamp;
  /** The `by_id` index of the table an ID belongs to, or `null` for an ID of no known table. */
  byIdIndexOf(id: string): string | null;
}

export interface ReadCacheStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
  /** Answers read but not filed: the cache was full and they had not been asked for lately (`admits`). */
  refused: number;
}

export class ReadCache implements SnapshotReads {
  private readonly documents = new Map<string, CachedAnswer>();
  private readonly scans = new Map<number, CachedAnswer>();
  /** The scan answers of each index, for carrying them across a commit (rule 5). */
  private readonly scansByIndex = new Map<string, Set<CachedAnswer>>();
  /** Every answer at its slot, for the clock hand; free slots are reused first. */
  private slots: Array<CachedAnswer | undefined> = [];
  private freeSlots: number[] = [];
  private hand = 0;
  /**
   * The last peek that missed, so that the read which follows it (same request object, or same
   * document and snapshot) does not build its key and look it up a second time.
   */
  private lastMiss: { request: ScanRequest; hash: number; id?: undefined } | { id: string; readTs: Timestamp; indexId: string; request?: undefined } | null = null;
  private readonly generations = new Map<string, number>();
  /** The `by_id` indexes of the documents cached so far: a write set's keys of these name documents. */
  private readonly byIdIndexes = new Set<string>();
  private bytes = 0;
  private entries = 0;
  private hits = 0;
  private misses = 0;
  /** The hashes of answers refused lately, one per slot (`admits`). */
  private readonly doorkeeper = new Int32Array(DOORKEEPER_SLOTS);
  private refused = 0;

  constructor(
    private readonly storage: Storage,
    private readonly host: ReadCacheHost,
    private readonly maxBytes: number = DEFAULT_READ_CACHE_BYTES,
  ) {
    if (!(maxBytes >= 0)) throw new RangeError(`readCacheBytes must be a number of bytes >= 0, got ${maxBytes}.`);
  }

  async getDocument(id: string, readTs: Timestamp): Promise<DocumentVersion | null> {
    const missed = this.lastMiss?.id === id && this.lastMiss.readTs === readTs ? this.lastMiss : null;
    if (missed === null) {
      const cached = this.peekDocument(id, readTs);
      if (cached !== undefined) return cached;
    }
    this.lastMiss = null;
    const version = await this.storage.getDocument(id, readTs);
    const indexId = missed?.indexId ?? (this.maxBytes > 0 ? this.host.byIdIndexOf(id) : null);
    if (indexId) {
      this.byIdIndexes.add(indexId);
      const bodyBytes = 2 * id.length + 2 * (version?.body?.length ?? 0);
      if (this.admits(hashText(id), bodyBytes)) this.store({ id }, BY_ID_ANSWERS, readTs, version, bodyBytes);
    }
    return version;
  }

  async scan(request: ScanRequest): Promise<IndexEntry[]> {
    let hash = this.lastMiss?.request === request ? this.lastMiss.hash : undefined;
    if (hash === undefined) {
      const cached = this.peekScan(request);
      if (cached !== undefined) return cached;
      hash = this.lastMiss?.request === request ? this.lastMiss.hash : undefined;
    }
    this.lastMiss = null;
    const entries = await this.storage.scan(request);
    if (hash !== undefined) {
      const bodyBytes = scanBytes(request, entries);
      if (this.admits(hash, bodyBytes)) this.store({ request, hash }, request.indexId, request.readTs, entries, bodyBytes);
    }
    return entries;
  }

  /**
   * The cached answer to `getDocument`, or `undefined` when it must be read: synchronous, so a
   * hit costs the caller no promise (`Transaction` tries this first, then `getDocument`, which
   * then does not look again).
   */
  peekDocument(id: string, readTs: Timestamp): DocumentVersion | null | undefined {
    const indexId = this.maxBytes > 0 ? this.host.byIdIndexOf(id) : null;
    if (indexId === null) return undefined;
    const answer = this.documents.get(id);
    const cached = this.check(answer, BY_ID_ANSWERS, readTs) as DocumentVersion | null | undefined;
    if (cached === undefined) {
      this.lastMiss = { id, readTs, indexId };
      return undefined;
    }
    if (cached === null || cached.body === null) return cached;
    const template = this.templateOf(answer!, cached.body);
    if (template === false) return cached;
    return handOut(cached.id, cached.table, cached.ts, cached.body, template);
  }

  /** The cached answer to `scan`, or `undefined` when it must be read (see `peekDocument`). */
  peekScan(request: ScanRequest): IndexEntry[] | undefined {
    if (this.maxBytes === 0) return undefined;
    const hash = hashScan(request);
    let filed = this.scans.get(hash);
    while (filed !== undefined && !answers(filed, request)) filed = filed.next;
    const cached = this.check(filed, request.indexId, request.readTs);
    if (cached === undefined) {
      this.lastMiss = { request, hash };
      return undefined;
    }
    const answer = filed!;
    const { oneBody } = answer;
    if (oneBody === undefined) return cached as IndexEntry[];
    const template = this.templateOf(answer, oneBody);
    if (template === false) return [{ key: answer.oneKey!, doc: { id: answer.oneId, table: answer.oneTable, ts: answer.oneTs, body: oneBody } }];
    return [{ key: answer.oneKey!, doc: handOut(answer.oneId, answer.oneTable, answer.oneTs, oneBody, template) }];
  }

  /**
   * The commit at `ts` wrote these keys (its write set): the scans cached for their indexes are
   * dead, unless this engine made the commit (`own`: what it wrote) and they can be carried
   * across it (rule 5); the documents it wrote are dead (rule 1). Called as the commit is
   * applied, in timestamp order, before any snapshot that includes it can be read.
   */
  applyCommit(ts: Timestamp, writes: ReadonlyMap<string, readonly Uint8Array[]>, own?: CommitWrites): void {
    let ownWrites: OwnCommitWrites | undefined;
    // Runs on every commit: `keys()` and a lookup, as destructured entries allocate per index.
    for (const indexId of writes.keys()) {
      const keys = writes.get(indexId)!;
      const answers = own === undefined ? undefined : this.scansByIndex.get(indexId);
      // The commit moves the index to a new generation: every answer of the old one is dead,
      // except those carried across it here, which move to the new one with it. Each answer is
      // carried as it is advanced (no list of them to build per commit: one tuple per carried
      // answer was the bulk of what this method allocated).
      const current = this.generationOf(indexId);
      const generation = current + 1;
      this.generations.set(indexId, generation);
      if (answers !== undefined && answers.size <= MAX_CARRIED_PER_INDEX) this.carry(answers, current, generation, ts, (ownWrites ??= byIdAndIndex(own!)));
      if (!this.byIdIndexes.has(indexId)) continue;
      for (const key of keys) {
        const id = idOfByIdKey(key);
        if (id === null) {
          // Not a key this engine makes for an ID: forget every document rather than guess.
          for (const answer of [...this.documents.values()]) this.drop(answer);
          break;
        }
        const answer = this.documents.get(id);
        if (answer !== undefined) this.drop(answer);
        // Rule 6: this engine wrote it, in a table it reads by ID: keep the new version.
        const written = own === undefined ? undefined : (ownWrites ??= byIdAndIndex(own)).documents.get(id);
        if (written !== undefined) {
          const version = written.body === null ? null : { id, table: written.table, ts, body: written.body };
          this.store({ id }, BY_ID_ANSWERS, ts, version, 2 * id.length + 2 * (written.body?.length ?? 0));
        }
      }
    }
    // Carried answers may have grown.
    while (this.bytes > this.maxBytes && this.evictOne());
  }

  /**
   * Carries the live answers of one index (`current`, its generation before the commit at `ts`)
   * across that commit: each one advanced by the commit's writes moves to `generation`; one
   * that cannot be told stays behind and is dead.
   */
  private carry(answers: Set<CachedAnswer>, current: number, generation: number, ts: Timestamp, ownWrites: OwnCommitWrites): void {
    for (const answer of answers) {
      if (answer.generation !== current) continue; // already dead
      const filing = answer.filing as Extract<FiledAs, { hash: number }>;
      const request = (filing.request ??= requestOf(answer));
      const entries = entriesOf(answer);
      const value = advanceScan(request, entries, ts, ownWrites);
      if (value === null) continue; // cannot be told: dies with the old generation
      answer.generation = generation;
      if (value === entries) continue; // unchanged across the commit: still valid from where it was
      // The new list is filed as advanceScan made it, as it always was (its versions are made for the cache).
      answer.value = value;
      const one = oneEntry(filing, value);
      answer.oneKey = one.oneKey;
      answer.oneId = one.oneId;
      answer.oneTable = one.oneTable;
      answer.oneTs = one.oneTs;
      answer.oneBody = one.oneBody;
      answer.oneDoc = one.oneDoc;
      answer.validFrom = ts;
      this.bytes -= answer.bytes;
      answer.bytes = scanBytes(request, value) + ENTRY_OVERHEAD_BYTES;
      this.bytes += answer.bytes;
    }
  }

  /** The decoded document of an answer's `body`, made at its first hit (`OneEntry`); `false` when it is not flat. */
  private templateOf(answer: CachedAnswer, body: string): Doc | false {
    let template = answer.oneDoc;
    if (template === null) {
      template = answer.oneDoc = flatTemplate(body);
      // The decoded copy is held as long as the answer: count it against the budget too.
      if (template !== false) this.grow(answer, 2 * body.length);
    }
    return template;
  }

  /** `answer` now holds `bytes` more (and the cache with it): evicts until the budget holds again. */
  private grow(answer: CachedAnswer, bytes: number): void {
    answer.bytes += bytes;
    this.bytes += bytes;
    while (this.bytes > this.maxBytes && this.evictOne());
  }

  /** Forgets everything (the engine lost track of some commits). */
  clear(): void {
    this.scansByIndex.clear();
    for (const indexId of this.generations.keys()) this.generations.set(indexId, this.generationOf(indexId) + 1);
    this.documents.clear();
    this.scans.clear();
    this.slots = [];
    this.freeSlots = [];
    this.hand = 0;
    this.entries = 0;
    this.bytes = 0;
  }

  get stats(): ReadCacheStats {
    return { hits: this.hits, misses: this.misses, entries: this.entries, bytes: this.bytes, refused: this.refused };
  }

  /**
   * Whether an answer just read (filed under `hash`, about `bodyBytes` big) is worth filing.
   *
   * While it fits, every answer is: a working set smaller than the budget is filed at first
   * sight, and nothing is evicted for it. Once the cache is full, filing an answer evicts
   * another, and an answer nobody asks for again is then pure loss: it pushes out one that was
   * being read, and lives just long enough for V8 to copy it into the old generation, where only
   * a full collection frees it. Case (d) of the engine benchmark, random lookups among a
   * million documents, did that on every lookup once the cache had filled (the hit rate of a
   * uniform workload is the share of keys cached, whichever keys those are).
   *
   * So a full cache files an answer at its second miss, not its first (a doorkeeper, as in
   * TinyLFU's admission): a first miss leaves the answer's hash in its slot of `doorkeeper` and
   * files nothing; a miss that finds its hash there files the answer. A key read twice within
   * about `DOORKEEPER_SLOTS` refusals gets in, and gets in again at once after a commit kills
   * its answer (its hash stays in its slot); a key read once costs its read and nothing more,
   * and a job paging through a big table cannot push a busy cache's answers out.
   *
   * Why only once full, measured (2026-12-04): a doorkeeper from the first answer on made case
   * (d) 15-25% faster, but it also made every working set that fits warm up at two reads a key,
   * and case (b), 10k keys, lost a fifth of its lookups a second for the first second. Once
   * full, case (d) with the cache filled first (a 4 s warm-up): 29.5k and 32.3k lookups a
   * second against 26.8k and 27.9k, alternating with the code before. Requests whose hashes
   * share a slot overwrite each other, and two with one hash let each other in: only the policy
   * errs then, never an answer, since rules 1–3 decide what a filed answer may answer and
   * admission only whether to file it at all.
   */
  private admits(hash: number, bodyBytes: number): boolean {
    if (this.bytes + bodyBytes + ENTRY_OVERHEAD_BYTES <= this.maxBytes) return true;
    const slot = hash & (DOORKEEPER_SLOTS - 1);
    if (this.doorkeeper[slot] === (hash | 0)) return true;
    this.doorkeeper[slot] = hash;
    this.refused += 1;
    return false;
  }

  private generationOf(indexId: string): number {
    return this.generations.get(indexId) ?? 0;
  }

  /** The value of a filed answer if it is still good for `readTs` (dropping it if it is dead). */
  private check(cached: CachedAnswer | undefined, indexId: string, readTs: Timestamp): CachedAnswer["value"] | undefined {
    if (cached === undefined) {
      this.misses += 1;
      return undefined;
    }
    if (cached.generation !== this.generationOf(indexId)) {
      this.drop(cached);
      this.misses += 1;
      return undefined;
    }
    // Rule 3: valid from the snapshot it was read at, not before.
    if (readTs < cached.validFrom) {
      this.misses += 1;
      return undefined;
    }
    this.hits += 1;
    cached.used = true;
    return cached.value;
  }

  private store(filing: Filing, indexId: string, readTs: Timestamp, value: CachedAnswer["value"], bodyBytes: number): void {
    // Rule 2: only an answer at the newest snapshot. `latest` only grows, so if it still equals
    // readTs no commit at all was applied while the read was in flight, and the generation it
    // is stored under is the one the answer was read under.
    if (readTs !== this.host.latest) return;
    const generation = this.generationOf(indexId);
    const bytes = bodyBytes + ENTRY_OVERHEAD_BYTES;
    if (bytes > this.maxBytes / 8) return; // one huge answer must not flush everything else
    const previous = this.filed(filing);
    if (previous !== undefined) this.drop(previous);
    // Copies, never the objects the caller and storage made (see `keptValue`): the request as
    // flat fields only (`FiledAs`), an answer of one entry in its own fields only.
    const flat = filing.request === undefined ? NOT_A_SCAN : flatScan(filing.request);
    const filedAs: FiledAs = filing.request === undefined ? filing : { request: null, hash: filing.hash };
    let one: OneEntry;
    if (filing.request !== undefined && Array.isArray(value) && value.length === 1) {
      one = keptOneEntry(value[0]!);
      value = IN_ONE_ENTRY_FIELDS as IndexEntry[];
    } else {
      value = keptValue(value);
      one = oneEntry(filedAs, value);
    }
    const slot = this.freeSlots.pop() ?? this.slots.length;
    // Every field in one literal (no spread, which would leave the fields after it outside the
    // object, in a property array of their own), in one order, so that every answer has one
    // shape (V8 map).
    // What a hit reads comes first, in the order it reads it (`answers`, then `check`), so that
    // it spans as few cache lines of the object as it can.
    const answer: CachedAnswer = {
      indexId, order: flat.order, limit: flat.limit, lowerTag: flat.lowerTag, upperTag: flat.upperTag, lowerLength: flat.lowerLength, boundBytes: flat.boundBytes,
      generation, validFrom: readTs, used: true,
      oneKey: one.oneKey, oneId: one.oneId, oneTable: one.oneTable, oneTs: one.oneTs, oneBody: one.oneBody, oneDoc: one.oneDoc,
      value, next: undefined, filing: filedAs, slot, bytes,
    };
    if (filedAs.request === undefined) {
      this.documents.set(filedAs.id, answer);
    } else {
      answer.next = this.scans.get(filedAs.hash);
      this.scans.set(filedAs.hash, answer);
      let ofIndex = this.scansByIndex.get(indexId);
      if (ofIndex === undefined) this.scansByIndex.set(indexId, (ofIndex = new Set()));
      ofIndex.add(answer);
    }
    this.slots[slot] = answer;
    this.entries += 1;
    this.bytes += bytes;
    while (this.bytes > this.maxBytes && this.evictOne());
  }

  /**
   * Second chance on a clock: the hand sweeps the slots; an answer read since the hand last
   * passed (or stored since) gets its bit cleared and stays, and the first one not read goes,
   * as does any whose index has moved on (an answer starts with its bit set). Close to least-recently-used, O(1) per eviction on
   * average, and a hit only sets a bit (a hit is the hottest path here).
   */
  private evictOne(): boolean {
    for (let steps = 0; steps <= 2 * this.slots.length; steps++) {
      this.hand = this.hand + 1 >= this.slots.length ? 0 : this.hand + 1;
      const answer = this.slots[this.hand];
      if (answer === undefined) continue;
      if (answer.used && answer.generation === this.generationOf(answer.indexId)) {
        answer.used = false;
        continue;
      }
      this.drop(answer);
      return true;
    }
    return false;
  }

  /** The answer filed as `filing` says, if any. */
  private filed(filing: Filing): CachedAnswer | undefined {
    if (filing.request === undefined) return this.documents.get(filing.id);
    let answer = this.scans.get(filing.hash);
    while (answer !== undefined && !answers(answer, filing.request)) answer = answer.next;
    return answer;
  }

  private drop(answer: CachedAnswer): void {
    const { filing } = answer;
    if (filing.request === undefined) {
      this.documents.delete(filing.id);
    } else {
      // Unlink it from its hash's chain.
      const head = this.scans.get(filing.hash);
      if (head === answer) {
        if (answer.next === undefined) this.scans.delete(filing.hash);
        else this.scans.set(filing.hash, answer.next);
      } else {
        let before = head;
        while (before !== undefined && before.next !== answer) before = before.next;
        if (before !== undefined) before.next = answer.next;
      }
      answer.next = undefined;
      const ofIndex = this.scansByIndex.get(answer.indexId);
      ofIndex?.delete(answer);
      if (ofIndex?.size === 0) this.scansByIndex.delete(answer.indexId);
    }
    this.slots[answer.slot] = undefined;
    this.freeSlots.push(answer.slot);
    this.entries -= 1;
    this.bytes -= answer.bytes;
  }
}

/**
 * A 32-bit FNV-1a hash of what makes two scan requests the same question at any snapshot:
 * index, order, limit and both bounds (validity for a snapshot is checked separately). No
 * allocation: it runs on every cached lookup.
 */
export function hashScan(request: ScanRequest): number {
  let hash = hashText(request.indexId);
  hash = Math.imul(hash ^ (request.order === "asc" ? 1 : 2), 0x01000193);
  hash = Math.imul(hash ^ (request.limit & 0xffff), 0x01000193);
  hash = hashBound(hash, request.range.lower);
  return hashBound(hash, request.range.upper) >>> 0;
}

/** FNV-1a over a string's character codes: a document ID for the doorkeeper (`admits`), an index ID to start a scan's hash. */
function hashText(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash;
}

/** Mixes a bound into `hash`: absent, or its inclusive flag, length and bytes. */
function hashBound(hash: number, end: KeyBound | undefined): number {
  if (end === undefined) return Math.imul(hash ^ 0x100, 0x01000193);
  const { key } = end;
  hash = Math.imul(hash ^ (end.inclusive ? 0x101 : 0x102), 0x01000193);
  hash = Math.imul(hash ^ key.length, 0x01000193);
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key[i]!, 0x01000193);
  return hash;
}

/**
 * What the cache keeps of an answer: copies made here, because V8 decides where to allocate by
 * the code that allocates. Each place in the code that makes objects (an allocation site: the
 * literal in a storage's scan that makes each entry, the query code that builds a request and
 * its keys) is watched by V8 while its objects are young, and one whose objects mostly outlive
 * a young-generation collection is switched to making them in the old generation from then on
 * ("pretenuring"). A cache that kept the objects it was handed taught V8 exactly that while it
 * filled, since every answer read was kept, and from then on every query's request and every
 * scan's entries were made in the old generation, hit or miss, to die there: only a full
 * collection frees them. Measured (2026-12-04, `profile.ts lookup normal 3`, case (b)'s cached
 * lookups): 121k lookups a second with V8's pretenuring on, 177k-225k with it off
 * (`--no-allocation-site-pretenuring`), and random lookups among 200k documents promoted 1.4 KB
 * a lookup into the old generation where 140 bytes without the cache. The copies are made here,
 * by code that makes nothing else, so the sites that learn to pretenure are the cache's own,
 * whose objects do live long. Strings are shared: the sites V8 tracks for pretenuring are
 * object and array literals, not the strings a storage or a parser makes.
 */
function keptValue(value: CachedAnswer["value"]): CachedAnswer["value"] {
  if (value === null) return null;
  if (!Array.isArray(value)) return { id: value.id, table: value.table, ts: value.ts, body: value.body };
  const kept: IndexEntry[] = new Array<IndexEntry>(value.length);
  for (let i = 0; i < value.length; i++) {
    const { key, doc } = value[i]!;
    kept[i] = { key: new Uint8Array(key), doc: keptVersion(doc.id, doc.table, doc.ts, doc.body) };
  }
  return kept;
}

/** All the cache keeps of a list of one entry (`IN_ONE_ENTRY_FIELDS`): its fields, with a copy of its key (see `keptValue`). */
function keptOneEntry(entry: IndexEntry): OneEntry {
  return fieldsOf(entry, new Uint8Array(entry.key));
}

/** A scan answer's entries, made from its own fields for a list of one (`IN_ONE_ENTRY_FIELDS`). */
function entriesOf(answer: CachedAnswer): IndexEntry[] {
  if (answer.value !== IN_ONE_ENTRY_FIELDS) return answer.value as IndexEntry[];
  return [{ key: answer.oneKey!, doc: keptVersion(answer.oneId, answer.oneTable, answer.oneTs, answer.oneBody!) }];
}

/**
 * The request a scan answer is filed under, made again from its `FlatScan` fields (`FiledAs`),
 * for carrying it across a commit. Its `readTs` is the answer's `validFrom`: carrying reads the
 * index, order, limit and range, never the snapshot.
 */
function requestOf(answer: CachedAnswer): ScanRequest {
  const { boundBytes, lowerLength } = answer;
  const keyOf = (from: number, to: number) => {
    const key = new Uint8Array(to - from);
    for (let i = from; i < to; i++) key[i - from] = boundBytes.charCodeAt(i);
    return key;
  };
  const range: ScanRequest["range"] = {};
  if (answer.lowerTag !== 0) range.lower = { key: keyOf(0, lowerLength), inclusive: answer.lowerTag === 1 };
  if (answer.upperTag !== 0) range.upper = { key: keyOf(lowerLength, boundBytes.length), inclusive: answer.upperTag === 1 };
  return { indexId: answer.indexId, range, order: answer.order!, readTs: answer.validFrom, limit: answer.limit };
}

/** The `OneEntry` fields of an answer holding `value` (a document read by ID keeps only `oneDoc`, to decode). */
function oneEntry(filing: FiledAs, value: CachedAnswer["value"]): OneEntry {
  if (filing.request === undefined) return value !== null && !Array.isArray(value) && value.body !== null ? A_DOCUMENT : NOT_ONE_ENTRY;
  if (!Array.isArray(value) || value.length !== 1) return NOT_ONE_ENTRY;
  const [entry] = value as [IndexEntry];
  return fieldsOf(entry, entry.key);
}

/** The `OneEntry` fields of `entry`, with `key` as its key (the entry's own, or a copy). */
function fieldsOf({ doc }: IndexEntry, key: Uint8Array): OneEntry {
  return { oneKey: key, oneId: doc.id, oneTable: doc.table, oneTs: doc.ts, oneBody: doc.body, oneDoc: null };
}

const NOT_ONE_ENTRY: OneEntry = { oneKey: undefined, oneId: "", oneTable: "", oneTs: 0, oneBody: undefined, oneDoc: false };
/** A document read by ID: decoded at its first hit, like a one-entry scan's (`peekDocument`). */
const A_DOCUMENT: OneEntry = { ...NOT_ONE_ENTRY, oneDoc: null };

/** A cached version as a hit hands it out: with a shallow copy of its decoded document, the reader's own. */
function handOut(id: string, table: string, ts: Timestamp, body: string, template: Doc): DecodedVersion {
  return { id, table, ts, body, decoded: { ...template } };
}

/** What a document answer has in place of a flattened scan. */
const NOT_A_SCAN: FlatScan = { order: undefined, limit: 0, lowerTag: 0, upperTag: 0, lowerLength: 0, boundBytes: "" };

function boundTag(end: KeyBound | undefined): number {
  return end === undefined ? 0 : end.inclusive ? 1 : 2;
}

/** `request` flattened (see `FlatScan`): copied once, when its answer is stored. */
export function flatScan(request: ScanRequest): FlatScan {
  const { lower, upper } = request.range;
  const lowerLength = lower?.key.length ?? 0;
  // One string made from both keys at once: concatenating two strings would make a rope (a
  // ConsString), and reading it through the rope is the extra fetch this is here to save.
  const both = new Uint8Array(lowerLength + (upper?.key.length ?? 0));
  if (lower !== undefined) both.set(lower.key, 0);
  if (upper !== undefined) both.set(upper.key, lowerLength);
  const boundBytes = Buffer.from(both.buffer, 0, both.length).toString("latin1");
  return { order: request.order, limit: request.limit, lowerTag: boundTag(lower), upperTag: boundTag(upper), lowerLength, boundBytes };
}

/** Whether `answer` is filed for the same question as `request`: index, order, limit and both bounds. */
export function answers(answer: FlatScan & { indexId: string }, request: ScanRequest): boolean {
  const { lower, upper } = request.range;
  if (answer.indexId !== request.indexId || answer.order !== request.order || answer.limit !== request.limit) return false;
  if (answer.lowerTag !== boundTag(lower) || answer.upperTag !== boundTag(upper)) return false;
  const bytes = answer.boundBytes;
  const lowerLength = lower?.key.length ?? 0;
  if (answer.lowerLength !== lowerLength || bytes.length !== lowerLength + (upper?.key.length ?? 0)) return false;
  if (lower !== undefined) {
    const key = lower.key;
    for (let i = 0; i < lowerLength; i++) if (bytes.charCodeAt(i) !== key[i]) return false;
  }
  if (upper !== undefined) {
    const key = upper.key;
    for (let i = 0; i < key.length; i++) if (bytes.charCodeAt(lowerLength + i) !== key[i]) return false;
  }
  return true;
}

/**
 * About the memory a scan answer takes: its bounds, keys, document bodies and IDs, and for an
 * answer of several entries the decoded documents it may come to keep (`KeptVersion`), counted
 * from the start, about a body's size each, since they are made later by readers that do not
 * know the answer. (A one-entry answer counts its decoded copy when it makes it: `templateOf`.)
 */
function scanBytes(request: ScanRequest, entries: readonly IndexEntry[]): number {
  let bytes = boundBytes(request.range.lower) + boundBytes(request.range.upper);
  const perBody = entries.length > 1 ? 4 : 2;
  for (const entry of entries) bytes += entry.key.byteLength + perBody * entry.doc.body.length + 2 * entry.doc.id.length;
  return bytes;
}

/** A commit's writes filed for `advanceScan`: documents by ID, index writes by index. */
function byIdAndIndex(writes: CommitWrites): OwnCommitWrites {
  const documents = new Map<string, DocumentWrite>();
  for (const doc of writes.documents) documents.set(doc.id, doc);
  const indexes = new Map<string, IndexWrite[]>();
  for (const write of writes.indexes) {
    const ofIndex = indexes.get(write.indexId);
    if (ofIndex === undefined) indexes.set(write.indexId, [write]);
    else ofIndex.push(write);
  }
  return { documents, indexes };
}

function boundBytes(end: KeyBound | undefined): number {
  return end === undefined ? 0 : end.key.byteLength;
}

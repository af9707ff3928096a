/**
 * Vectors a search has taken out of documents, kept decoded so that the next search that
 * scores the same documents multiplies numbers instead of parsing each document again. Parsing
 * is most of a search's cost: a document with 256 numbers is about 5 KB of JSON, and
 * `JSON.parse` of it takes several times what reading it from SQLite and scoring it take
 * (bench/engine/vector.ts).
 *
 * Why a kept vector is always right: a document version never changes. The numbers in field
 * `f` of document `id` at version `ts` are the same whenever and by whomever that version is
 * read, so an entry, filed under the field and the ID, answers only for the version it was
 * decoded from (`ts`), and a search that reads a newer version decodes it and replaces the
 * entry. Nothing needs to hear of commits, other engines' included.
 *
 * What to keep when the vectors searched do not all fit in `maxBytes` (8 bytes a number, plus
 * about `ENTRY_OVERHEAD`): a search reads every document its filter matches, in the same
 * order each time, and for that access pattern least-recently-used keeps nothing (each pass
 * evicts the vectors the next pass wants first, before it gets to them), and so does any rule
 * that evicts by how recently an entry was used within a pass. So while there is room every
 * vector decoded is filed, and once the cache is full new ones are refused, except where a
 * sweep makes room: when a vector is refused and `SWEEP_EVERY_MS` have passed since the last
 * sweep, every entry no search has used since the last sweep is dropped. Searches over more
 * vectors than fit then find the same share in the cache on every pass (as long as they come
 * more often than every `SWEEP_EVERY_MS`), while entries of deleted documents, of old
 * versions, or of an index or filter nobody searches any more are gone within two sweeps, and
 * the cache turns over to what searches read now. A sweep costs O(entries), at most once per
 * `SWEEP_EVERY_MS`.
 */
import type { Timestamp } from "../storage/types.js";

/** Default size of the vector cache: 64 MiB, about 5,200 vectors of 1,536 numbers or 25,000 of 256. */
export const DEFAULT_VECTOR_CACHE_BYTES = 64 * 1024 * 1024;

/**
 * Bytes an entry costs besides its numbers, as measured (Node 20, x64, heap and ArrayBuffers
 * after a full GC: 530 to 590 bytes for vectors of 2 to 1,536 numbers): the Float64Array with
 * its own ArrayBuffer and backing store (about 200), the entry object, its key string, and the
 * Map's slot. Counted as 160, a cache of vectors of 2 numbers took 3.3 times its `maxBytes`.
 */
const ENTRY_OVERHEAD = 600;

/** The least time between two sweeps of a full cache (see the top of this file). */
export const SWEEP_EVERY_MS = 10_000;

/**
 * Sums of squares below this may have vanished to zero or lost digits (a double's normal range
 * ends near 2^-1022), and above it (Infinity) overflowed: such a vector is scored scaled
 * (vectorSearch.ts, `scaledCosine`).
 */
const SMALLEST_SQUARES = 2 ** -900;

/** A document's vector as a search scores it. */
export interface StoredVector {
  /** The version of the document it was taken from. */
  readonly ts: Timestamp;
  readonly numbers: Float64Array;
  /**
   * Its length (the square root of the sum of its squares, summed in index order), or NaN for
   * a vector whose squares overflow or vanish, which is scored scaled.
   */
  readonly length: number;
}

interface Entry extends StoredVector {
  /** The sweep count when a search last used it (see `sweep`). */
  usedIn: number;
}

/** Decodes a vector's numbers once for every later search (see the top of this file). */
export class VectorCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  /** Sweeps so far: an entry used since the last one has `usedIn === sweeps`. */
  private sweeps = 0;
  private sweptAt: number;

  constructor(
    private readonly maxBytes: number = DEFAULT_VECTOR_CACHE_BYTES,
    // A monotonic clock by default: sweeps are spaced by elapsed time, which the wall clock can misstate.
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(maxBytes >= 0)) throw new RangeError(`vectorCacheBytes must be a number of bytes >= 0, got ${maxBytes}.`);
    this.sweptAt = now();
  }

  /**
   * The vector in field `field` of document `id` at version `ts`: the kept one, or the one
   * `decode` takes out of the document (null: the document has none), kept if there is room.
   */
  vectorOf(field: string, id: string, ts: Timestamp, decode: () => readonly number[] | null): StoredVector | null {
    return this.kept(field, id, ts) ?? this.decoded(field, id, ts, decode());
  }

  /** The kept vector of field `field` of document `id` at version `ts`, or undefined. */
  kept(field: string, id: string, ts: Timestamp): StoredVector | undefined {
    const kept = this.entries.get(`${field}\u0000${id}`);
    if (kept === undefined || kept.ts !== ts) return undefined;
    kept.usedIn = this.sweeps;
    return kept;
  }

  /** `numbers`, taken out of version `ts` of document `id` (null: it has none), as a search scores them; kept if there is room. */
  decoded(field: string, id: string, ts: Timestamp, numbers: readonly number[] | null): StoredVector | null {
    const key = `${field}\u0000${id}`;
    const kept = this.entries.get(key);
    if (numbers === null) return null;
    const stored = storedVector(ts, numbers);
    // A search at an older snapshot (it began before the document's last write) read an older
    // version: the newer entry is the one later searches want, so it stays.
    if (kept !== undefined && kept.ts > ts) return stored;
    if (kept !== undefined) this.forget(key, kept);
    this.file(key, stored);
    return stored;
  }

  /** Entries and bytes held, for tests and the dashboard's curious. */
  stats(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }

  private file(key: string, stored: StoredVector): void {
    if (this.maxBytes === 0) return;
    const bytes = sizeOf(stored);
    if (this.bytes + bytes > this.maxBytes) {
      // A wall clock set back (an NTP step, a resumed VM) would otherwise put off every sweep
      // until it caught up with `sweptAt` again, hours perhaps, and the cache would refuse
      // the vectors searched now for the ones of deleted documents and old filters all along.
      const sinceSweep = this.now() - this.sweptAt;
      if (sinceSweep >= 0 && sinceSweep < SWEEP_EVERY_MS) return;
      this.sweep();
      if (this.bytes + bytes > this.maxBytes) return;
    }
    this.entries.set(key, { ...stored, usedIn: this.sweeps });
    this.bytes += bytes;
  }

  /** Drops every entry no search has used since the last sweep. */
  private sweep(): void {
    for (const [key, entry] of this.entries) {
      if (entry.usedIn < this.sweeps) this.forget(key, entry);
    }
    this.sweeps++;
    this.sweptAt = this.now();
  }

  private forget(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.bytes -= sizeOf(entry);
  }
}

/** `numbers` as a search scores them, with their length computed once (`StoredVector`). */
export function storedVector(ts: Timestamp, numbers: readonly number[]): StoredVector {
  const copy = Float64Array.from(numbers);
  let squares = 0;
  for (let i = 0; i < copy.length; i++) squares += copy[i]! * copy[i]!;
  const length = squares < SMALLEST_SQUARES || squares === Infinity ? NaN : Math.sqrt(squares);
  return { ts, numbers: copy, length };
}

function sizeOf(stored: StoredVector): number {
  return stored.numbers.byteLength + ENTRY_OVERHEAD;
}

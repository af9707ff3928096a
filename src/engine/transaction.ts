/**
 * A transaction: reads at one snapshot, buffered writes, and the read set that proves (or
 * disproves) at commit time that nothing it depended on changed.
 *
 * Reads see the snapshot `readTs` overlaid with the transaction's own pending writes, so a
 * mutation reads what it wrote. Writes are validated (schema, IDs, sizes, limits) when they are
 * made and only reach storage if the engine commits the transaction: a handler that throws
 * leaves nothing behind.
 */
import { walkinError, validateResult, checkValue, normalizeValue } from "../values/index.js";
import type { Value } from "../values/index.js";
import { MAX_DOCUMENT_DEPTH, MAX_OBJECT_FIELDS, MAX_VALUE_DEPTH, isPlainObject, nonValueProblem } from "../values/value.js";
import { compareBytes } from "../values/indexKey.js";
import type { DocumentVersion, DocumentWrite, IndexEntry, IndexWrite, KeyRange, Receipt, ScanRequest, Timestamp } from "../storage/types.js";
import { decodedCopy } from "./keptVersions.js";
import type { DecodedVersion, SnapshotReads } from "./readCache.js";
import { isPlainIndex, type Catalog, type IndexInfo, type TableInfo } from "./catalog.js";
import { decodeDocument, documentSize, encodeDocument, idKey, indexKeyOf, type Doc } from "./documents.js";
import { SEARCH_LIMITS, searchEntriesOf, searchEntriesWrittenProblem, searchKeysOf } from "./search.js";
import { checkVectorFields, vectorKeysOf } from "./vector.js";
import { newDocumentId, tableNumberOfId } from "./ids.js";
import { LIMITS } from "./limits.js";
import { ReadSet, type WriteSet } from "./readSet.js";
import { rangeContains } from "../storage/keyRange.js";
import { incompleteIndexMessage } from "./mixedCode.js";
import { schemaViolationMessage } from "./schemaViolation.js";

/**
 * Hands out `_creationTime`s: the transaction's time in ms, nudged forward by a microsecond
 * when needed so that every document gets a distinct, increasing one. Without it, documents
 * created in the same millisecond would sort by their random IDs in every index.
 */
export class CreationClock {
  private last = 0;

  next(now: number): number {
    this.last = Math.max(now, this.last + 1e-3);
    return this.last;
  }
}

/** A transaction's writes, as the committer hands them to storage (see `buildWrites`). */
export interface TransactionWrites {
  documents: DocumentWrite[];
  indexes: IndexWrite[];
  writeSet: WriteSet;
  tables: Set<string>;
  receipts: Receipt[];
}

interface PendingWrite {
  table: TableInfo;
  /** The document as of the snapshot (what storage holds), or null if it did not exist. */
  original: Doc | null;
  /** The document after this transaction, or null if deleted. */
  current: Doc | null;
  encoded: string | null;
  /** The UTF-8 length of `encoded` (0 for a deletion). */
  textBytes: number;
  /** `documentSize(current)` once measured (`countWritten`); undefined until then. */
  valueSize: number | undefined;
  /**
   * The index keys of `original` and `current`, one per index of the table in its order,
   * computed when the write is staged: the document object itself is handed back to the
   * caller by reads of our own writes, and a caller that changed it afterwards must not move
   * its index entries away from the body that was encoded here.
   */
  originalKeys: IndexKeys | null;
  currentKeys: IndexKeys | null;
  /** The search index entries in `originalKeys` and `currentKeys` (search.ts, `searchEntriesOf`). */
  searchEntries: number;
}

/**
 * A document's keys, one element per index of its table in the table's order: the key, or for
 * a search or vector index the list of its keys (one per word, search.ts; vector.ts).
 */
type IndexKeys = (Uint8Array | Uint8Array[])[];

/** The state of a transaction's writes at one point, to return to (`Transaction.savepoint`). */
export interface Savepoint {
  readonly undoLength: number;
  readonly receipts: number;
  readonly marks: number;
  readonly writtenBound: number;
  readonly writtenExact: number | undefined;
  readonly searchEntriesWritten: number;
}

/**
 * Lower limits for a part of a transaction (`Transaction.withinBudget`): totals of the whole
 * transaction, as LIMITS are, that the part may not take it past.
 */
export interface Budget {
  documentsRead: number;
  bytesRead: number;
  documentsWritten: number;
  bytesWritten: number;
}

interface PendingEntry {
  key: Uint8Array;
  doc: Doc | null;
}

/** A document's keys in each index of its table, in the table's index order (`IndexKeys`). */
function indexKeysOf(table: TableInfo, doc: Doc): IndexKeys {
  const keys: IndexKeys = [];
  for (const index of table.indexes.values()) keys.push(isPlainIndex(index) ? indexKeyOf(index, doc) : manyKeysOf(index, doc));
  return keys;
}

/** A document's keys in a search index (one per word) or a vector index (vector.ts). */
function manyKeysOf(index: IndexInfo, doc: Doc): Uint8Array[] {
  return index.search ? searchKeysOf(index, doc) : vectorKeysOf(index, doc);
}

/** Whether `key` is among a document's keys in `index`: its one key, or one of its many (search or vector). */
function hasIndexKey(index: IndexInfo, doc: Doc, key: Uint8Array): boolean {
  if (isPlainIndex(index)) return compareBytes(indexKeyOf(index, doc), key) === 0;
  return manyKeysOf(index, doc).some((own) => compareBytes(own, key) === 0);
}

const hex = (key: Uint8Array) => Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("hex");

export class Transaction {
  readonly readSet = new ReadSet();
  // Made on the first write: most transactions (every query) never write, and a Map is among
  // the costlier objects a transaction would otherwise make for nothing.
  private writes: Map<string, PendingWrite> | undefined;
  /** indexId → hex key → entry, for reads of our own writes. Built by `pendingEntries`. */
  private pendingIndex: Map<string, Map<string, PendingEntry>> | undefined;
  /**
   * Writes staged since `pendingIndex` was last brought up to date, in order. Most mutations
   * write and never read an index afterwards, so the overlay is built when a read first needs
   * it rather than on every write (its keys cost a hex string each).
   */
  private unindexed: Array<{ table: TableInfo; before: IndexKeys | null; after: IndexKeys | null; doc: Doc | null }> | undefined;
  /** Receipts to write with the commit, each with the key it puts in the write set (see `writeReceipt`). */
  private receipts: Array<{ receipt: Receipt; indexId: string; key: Uint8Array }> | undefined;
  /**
   * The stored version behind the last document a scan handed out. An index entry comes joined
   * with its document as of `readTs`, which is exactly what `get` of that ID would read, so
   * the common "find it by an index, then patch it" reads storage once instead of twice. One
   * slot, not a map: remembering every scanned document would cost every query a map entry.
   */
  private lastScanned: DocumentVersion | undefined;
  /**
   * The first whole-transaction limit exceeded (`exceed`), or a function that returned before
   * a call it made (transactionCtx.ts, `checkCallsSettled`): the function fails even if it caught the error.
   */
  limitExceeded: Error | null = null;
  /** Write-set keys with no document (`markWrite`). */
  private marks: { indexId: string; key: Uint8Array }[] | undefined;
  /**
   * While a savepoint is open (`savepoint`): each staged write's document ID and the pending
   * write it replaced (undefined if none), so `rollbackTo` can put them back. Undefined
   * otherwise: a plain mutation keeps no undo log.
   */
  private undo: Array<{ id: string; replaced: PendingWrite | undefined }> | undefined;
  private openSavepoints = 0;
  /** The scans begun and not yet recorded in the read set (`scan`, `closeOpenScans`). */
  private openScans: Set<() => void> | undefined;
  private docsRead = 0;
  private bytesRead = 0;
  /** While `withinBudget` runs its work: the lower limits, and the error once they were exceeded. */
  private budget: { limits: Budget; exceeded: Error | null } | undefined;
  /** 9 × the text bytes of every staged version: a bound on what they count as written (`countWritten`). */
  private writtenBound = 0;
  /** What the staged versions count as written (documentSize), summed once the bound passed the limit. */
  private writtenExact: number | undefined;
  /** The search index entries of every staged write (`searchEntries` summed), against SEARCH_LIMITS.entriesWritten. */
  private searchEntriesWritten = 0;

  constructor(
    readonly storage: SnapshotReads,
    readonly catalog: Catalog,
    readonly readTs: Timestamp,
    /** Fixed "now" of this transaction (ms). */
    readonly now: number,
    private readonly creationClock: CreationClock = new CreationClock(),
  ) {}

  get hasWrites(): boolean {
    return (this.writes !== undefined && this.writes.size > 0) || this.receipts !== undefined || this.marks !== undefined;
  }

  /**
   * Puts `(indexId, key)` in this transaction's write set with nothing stored behind it: a
   * signal to the read sets of other transactions and to every engine that learns of the commit
   * (deferredWrites.ts). The key need not belong to a real index.
   */
  markWrite(indexId: string, key: Uint8Array): void {
    (this.marks ??= []).push({ indexId, key });
  }

  /**
   * Writes a receipt (a non-versioned record, `Storage.getReceipt`) with this transaction's
   * commit, and puts `(indexId, key)` in the commit's write set: a transaction that recorded a
   * read of that key (`readSet.addPoint`) before this commit landed conflicts with it. The key
   * need not belong to a real index; the write set is only compared with read sets.
   */
  writeReceipt(receipt: Receipt, indexId: string, key: Uint8Array): void {
    (this.receipts ??= []).push({ receipt, indexId, key });
  }

  /**
   * Marks the pending writes as they are now, for a mutation called with `ctx.runMutation`: if
   * it throws, `rollbackTo` undoes what it staged and the caller's transaction goes on without
   * it (Convex's sub-transaction). Reads are not undone: the read set keeps what the called
   * mutation read, which can only add conflicts, never hide one. Every savepoint is closed by
   * exactly one `releaseSavepoint` or `rollbackTo`, innermost first.
   */
  savepoint(): Savepoint {
    this.undo ??= [];
    this.openSavepoints += 1;
    return {
      undoLength: this.undo.length,
      receipts: this.receipts?.length ?? 0,
      marks: this.marks?.length ?? 0,
      writtenBound: this.writtenBound,
      writtenExact: this.writtenExact,
      searchEntriesWritten: this.searchEntriesWritten,
    };
  }

  /** Keeps what was written since `savepoint` (an enclosing savepoint may still undo it). */
  releaseSavepoint(_savepoint: Savepoint): void {
    this.openSavepoints -= 1;
    if (this.openSavepoints === 0) this.undo = undefined;
  }

  /** Undoes every write staged since `savepoint`, and closes it. */
  rollbackTo(savepoint: Savepoint): void {
    const undo = this.undo!;
    // Newest first: a document written twice since the savepoint ends at its first `replaced`.
    for (let i = undo.length - 1; i >= savepoint.undoLength; i--) {
      const { id, replaced } = undo[i]!;
      if (replaced === undefined) this.writes!.delete(id);
      else this.writes!.set(id, replaced);
    }
    undo.length = savepoint.undoLength;
    if (this.receipts !== undefined) this.receipts.length = savepoint.receipts;
    if (savepoint.receipts === 0) this.receipts = undefined;
    if (this.marks !== undefined) this.marks.length = savepoint.marks;
    if (savepoint.marks === 0) this.marks = undefined;
    this.writtenBound = savepoint.writtenBound;
    this.writtenExact = savepoint.writtenExact;
    this.searchEntriesWritten = savepoint.searchEntriesWritten;
    // The read overlay cannot drop an entry, only override it: it is rebuilt from the writes
    // that remain, each as one staging from its snapshot version to its current one (rare:
    // only a called mutation that failed pays for it).
    this.pendingIndex = undefined;
    this.unindexed = [];
    for (const write of this.writes?.values() ?? []) {
      this.unindexed.push({ table: write.table, before: write.originalKeys, after: write.currentKeys, doc: write.current });
    }
    this.releaseSavepoint(savepoint);
  }

  /**
   * Runs `work` (e.g. a `ctx.runMutation`) with this transaction's limits lowered to `limits`,
   * and undoes what it wrote if it throws. Going past `limits` fails the work with
   * LIMIT_EXCEEDED (`data.limit: "budget"`), sticky while the work runs, as a limit is (the
   * work cannot catch it and go on with part of what it read or wrote); then, its writes
   * undone, the error is lifted: the transaction as a whole is still within its own limits, so
   * its caller may go on without that work. What the work read still counts. Lets trusted code
   * (the auth cleanup) try work of unknown size without risking the whole transaction.
   */
  async withinBudget<T>(limits: Budget, work: () => Promise<T>): Promise<T> {
    if (this.budget) throw walkinError("INTERNAL", "withinBudget calls do not nest.");
    const savepoint = this.savepoint();
    const budget = (this.budget = { limits, exceeded: null as Error | null });
    let value: T;
    try {
      value = await work();
    } catch (error) {
      this.endBudget(budget, savepoint);
      throw this.limitExceeded ?? budget.exceeded ?? error;
    }
    // Exceeded, yet the work returned: it caught the error. Undone all the same.
    if (this.endBudget(budget, savepoint)) throw this.limitExceeded ?? budget.exceeded!;
    return value;
  }

  /** Ends `withinBudget`'s budget: undoes the work if it exceeded it, and lifts that error. */
  private endBudget(budget: { exceeded: Error | null }, savepoint: Savepoint): boolean {
    this.budget = undefined;
    if (budget.exceeded === null) {
      this.releaseSavepoint(savepoint);
      return false;
    }
    this.rollbackTo(savepoint);
    if (this.limitExceeded === budget.exceeded) this.limitExceeded = null;
    return true;
  }

  /** Which table an ID belongs to; a clear error for malformed IDs or IDs of hidden tables. */
  tableOfId(id: unknown, { system = false } = {}): TableInfo {
    const number = typeof id === "string" ? tableNumberOfId(id) : null;
    const table = number === null ? undefined : this.catalog.tableOfNumber(number);
    if (!table) {
      throw walkinError("INVALID_ID", `${describe(id)} is not a valid document ID. IDs come from insert() or a document's _id.`);
    }
    if (table.system && !system) throw walkinError("INVALID_ID", `${describe(id)} is the ID of a system document.`);
    return table;
  }

  async get(id: string, options: { system?: boolean } = {}): Promise<Doc | null> {
    const table = this.tableOfId(id, options);
    const byId = table.indexes.get("by_id")!;
    this.readSet.addPoint(byId.id, idKey(id));
    const pending = this.writes?.get(id);
    if (pending) return pending.current && ownCopy(pending.current);
    let version: DocumentVersion | null | undefined = this.lastScanned;
    // A scanned version's decoded copy went to the scan's reader: this read decodes its own.
    let decoded: Doc | undefined;
    if (version === undefined || version.id !== id) {
      version = this.storage.peekDocument?.(id, this.readTs);
      if (version === undefined) version = await this.storage.getDocument(id, this.readTs);
      decoded = (version as Partial<DecodedVersion> | null)?.decoded;
    }
    if (version === null || version.body === null) return null;
    this.countRead(version.body.length);
    return decoded ?? decodedCopy(version as DocumentVersion & { body: string }) ?? decodeDocument(version.body);
  }

  /**
   * Documents of an index range in key order, our pending writes merged in. The range read is
   * added to the read set when iteration stops: up to the last key seen if the caller stopped
   * early (a write past that point cannot change what the caller saw), the whole range if not.
   *
   * "Stops" has three forms. Running to the end and leaving a `for await` (break, return,
   * throw) both run the `finally` below. The third never does: a function that takes
   * documents with the iterator's `next()` by hand and returns without finishing or closing
   * it leaves this generator suspended at its `yield` for good. Its range would then be in no
   * read set: a live query that never re-runs when what it returned changes, a mutation that
   * commits over a write to what it read. So each scan also registers itself in `openScans`,
   * and the engine calls `closeOpenScans()` when the function returns, which records the range
   * of every scan still open, up to the last key it handed out.
   */
  async *scan(index: IndexInfo, range: KeyRange, order: "asc" | "desc"): AsyncGenerator<{ key: Uint8Array; doc: Doc; bytes: number }> {
    const cursor = new RangeCursor(this, index, range, order, this.pendingEntries(index.id));
    let lastKey: Uint8Array | null = null;
    let exhausted = false;
    let recorded = false;
    const record = () => {
      if (recorded) return;
      recorded = true;
      this.openScans!.delete(record);
      this.recordRange(index, range, order, exhausted ? null : lastKey);
    };
    (this.openScans ??= new Set()).add(record);
    try {
      for (let batch = await cursor.next(16); batch !== null; batch = await cursor.next()) {
        for (const entry of batch) {
          lastKey = entry.key;
          const doc = this.currentDocOf(index, entry);
          if (doc !== null) yield { key: entry.key, doc, bytes: this.bytesOf(entry, doc) };
        }
      }
      exhausted = true;
    } finally {
      record();
    }
  }

  /** Records the range of every scan the function left suspended, up to the last key each handed out (`scan`). */
  closeOpenScans(): void {
    if (this.openScans === undefined) return;
    for (const record of [...this.openScans]) record();
  }

  /**
   * Up to `limit` documents of an index range that pass `accept`, in key order, our pending
   * writes merged in: `scan` without a generator per call and per document, for the common
   * `take`/`first`/`unique`/`collect`. Records the same read range `scan` would.
   */
  async take(index: IndexInfo, range: KeyRange, order: "asc" | "desc", limit: number, accept?: (doc: Doc) => boolean): Promise<Doc[]> {
    const cursor = new RangeCursor(this, index, range, order, this.pendingEntries(index.id));
    const docs: Doc[] = [];
    let lastKey: Uint8Array | null = null;
    try {
      // Without a filter every entry counts, so the first storage read asks for exactly enough.
      // A batch already at hand (the read cache) comes back synchronously: no promise to await.
      for (let next = cursor.next(accept ? 16 : Math.min(limit, 1024)); ; next = cursor.next()) {
        const batch = next instanceof Promise ? await next : next;
        if (batch === null) break;
        for (const entry of batch) {
          lastKey = entry.key;
          const doc = this.docOf(entry);
          if (accept && !accept(doc)) continue;
          docs.push(doc);
          if (docs.length >= limit) return docs;
        }
      }
      lastKey = null; // read to the end
      return docs;
    } finally {
      this.recordRange(index, range, order, lastKey);
    }
  }

  /** Adds a range read to the read set: the whole range, or up to `lastKey` if the reader stopped there. */
  private recordRange(index: IndexInfo, range: KeyRange, order: "asc" | "desc", lastKey: Uint8Array | null): void {
    if (lastKey === null) {
      // Read to the end (or stopped before seeing anything): the caller depends on the whole range.
      this.readSet.add(index.id, range);
    } else if (order === "asc") {
      this.readSet.add(index.id, { lower: range.lower, upper: { key: lastKey, inclusive: true } });
    } else {
      this.readSet.add(index.id, { lower: { key: lastKey, inclusive: true }, upper: range.upper });
    }
  }

  /**
   * The document of a scanned entry as this transaction sees it now, for `scan`: the code that
   * consumes a scan runs between its entries and may have written a document the scan's batch
   * had already read (a `for await` body patching a document ahead of the cursor). A written
   * document is its latest version if that version still has this key in the index, and is
   * gone from this position (null) if it was deleted or moved since.
   */
  private currentDocOf(index: IndexInfo, entry: CursorEntry): Doc | null {
    const write = this.writes?.get(entry.doc === null ? entry.pending._id : entry.doc.id);
    if (write === undefined) return this.docOf(entry);
    const current = write.current;
    if (current === null) return null;
    if (entry.doc === null && entry.pending === current) return ownCopy(current);
    return hasIndexKey(index, current, entry.key) ? ownCopy(current) : null;
  }

  /**
   * The size of a scanned document as the read limits count it (its stored text), for
   * `paginate`'s `maximumBytesRead`; one this transaction wrote counts as its written text.
   */
  private bytesOf(entry: CursorEntry, doc: Doc): number {
    const write = this.writes?.get(doc._id as string);
    if (write !== undefined) return write.encoded?.length ?? 0;
    return entry.doc === null ? 0 : entry.doc.body.length;
  }

  /**
   * The document of a scanned entry: our pending write as is, or a stored one decoded and
   * counted against the read limits (only when the reader gets to it).
   */
  private docOf(entry: CursorEntry): Doc {
    if (entry.doc === null) return ownCopy(entry.pending);
    this.lastScanned = entry.doc;
    this.countRead(entry.doc.body.length);
    // The read cache may hand a document out decoded already, as a copy of this reader's own,
    // or keep one decoded to copy (`keptVersions.ts`).
    return (entry.doc as Partial<DecodedVersion>).decoded ?? decodedCopy(entry.doc) ?? decodeDocument(entry.doc.body);
  }

  async insert(table: TableInfo, value: Record<string, Value | undefined>): Promise<string> {
    const fields = this.checkUserFields(table, value, "insert");
    const id = newDocumentId(table.number);
    // `fields` is a new object of this transaction's own (checkUserFields): the system fields go
    // onto it, after the others, rather than into yet another copy.
    const doc = fields as Doc;
    doc._id = id;
    doc._creationTime = this.creationClock.next(this.now);
    this.stage(table, id, null, doc);
    return id;
  }

  async patch(id: string, value: Record<string, Value | undefined>, options: { system?: boolean } = {}): Promise<void> {
    const { table, doc } = await this.existing(id, "patch", options);
    // Not a plain object (null, an array, a Date): nothing to patch with, whatever its own properties.
    if (typeof value !== "object" || value === null || !isPlainObject(value)) {
      throw walkinError("INVALID_ARGUMENT", `patch() takes an object of fields to change; received ${describe(value)}.`);
    }
    for (const key of ["_id", "_creationTime"]) {
      if (key in value && value[key] !== undefined && value[key] !== doc[key]) {
        throw walkinError("INVALID_ARGUMENT", `patch() cannot change the system field "${key}".`);
      }
    }
    // A copy of the stored fields (withoutSystemFields makes one) with the patch applied.
    const merged = withoutSystemFields(doc);
    for (const key of Object.keys(value)) {
      if (key === "_id" || key === "_creationTime") continue;
      const field = value[key];
      if (field === undefined) delete merged[key];
      else merged[key] = field;
    }
    this.stage(table, id, doc, withSystemFields(this.checkUserFields(table, merged, "patch", doc, value), doc));
  }

  async replace(id: string, value: Record<string, Value | undefined>): Promise<void> {
    const { table, doc } = await this.existing(id, "replace");
    // Checked before taking the system fields out: spreading null, an array or a Date gives
    // `{}`, which would empty the document instead of failing.
    checkFieldsObject(table, value, "replace");
    const { _id, _creationTime, ...rest } = value;
    if ((_id !== undefined && _id !== doc._id) || (_creationTime !== undefined && _creationTime !== doc._creationTime)) {
      throw walkinError("INVALID_ARGUMENT", "replace() cannot change the system fields _id and _creationTime.");
    }
    this.stage(table, id, doc, withSystemFields(this.checkUserFields(table, rest, "replace", doc, null), doc));
  }

  async delete(id: string, options: { system?: boolean } = {}): Promise<void> {
    const { table, doc } = await this.existing(id, "delete", options);
    this.stage(table, id, doc, null);
  }

  /** System-table writes bypass the "app cannot touch system tables" rule, nothing else. */
  async insertSystem(tableName: string, value: Record<string, Value | undefined>): Promise<string> {
    return this.insert(this.catalog.lookup(tableName, { system: true })!, value);
  }

  /** What committing this transaction writes: versions for storage, and the keys it touched. */
  buildWrites(): TransactionWrites {
    const documents: DocumentWrite[] = [];
    const indexes: IndexWrite[] = [];
    const writeSet: WriteSet = new Map();
    const tables = new Set<string>();
    const touch = (indexId: string, key: Uint8Array) => {
      const keys = writeSet.get(indexId);
      if (keys) keys.push(key);
      else writeSet.set(indexId, [key]);
    };
    // A search index (and a vector index, whose keys are its filter values): the entries of the
    // words the document lost are removed and those of the words it gained added. Every word's key, kept or not, is touched, so a search that read
    // it re-runs (its document changed). The index is named in the write set even when the
    // document has no words at all: a node that knows the index reads a commit that wrote the
    // table without naming it as one from code without it (mixedCode.ts).
    const searchWrites = (indexId: string, id: string, before: Uint8Array[] | undefined, after: Uint8Array[] | undefined, fresh: boolean) => {
      if (!writeSet.has(indexId)) writeSet.set(indexId, []);
      const kept = new Set<string>();
      if (before && after) {
        const afterHex = new Set(after.map(hex));
        for (const key of before) if (afterHex.has(hex(key))) kept.add(hex(key));
      }
      for (const key of before ?? []) {
        touch(indexId, key);
        if (!kept.has(hex(key))) indexes.push({ indexId, key, docId: null });
      }
      for (const key of after ?? []) {
        touch(indexId, key);
        if (!kept.has(hex(key))) indexes.push({ indexId, key, docId: id, fresh });
      }
    };
    for (const [id, write] of this.writes ?? []) {
      if (write.original === null && write.current === null) continue; // inserted then deleted
      tables.add(write.table.name);
      // An inserted document has a brand-new random ID (`insert`), so no version of it, nor of
      // any index key of it (every key ends with the document ID), is stored: its writes
      // supersede nothing, and storage may leave them out of its history bookkeeping. An
      // update's keys are never hinted: a key it writes back may have an older removal stored
      // (a field changed A → B → A).
      const fresh = write.original === null;
      documents.push({ id, table: write.table.name, body: write.encoded, fresh });
      let i = 0;
      for (const index of write.table.indexes.values()) {
        const oldKey = write.originalKeys?.[i];
        const newKey = write.currentKeys?.[i];
        i++;
        if (!isPlainIndex(index)) {
          searchWrites(index.id, id, oldKey as Uint8Array[] | undefined, newKey as Uint8Array[] | undefined, fresh);
          continue;
        }
        if (oldKey) touch(index.id, oldKey as Uint8Array);
        if (newKey) touch(index.id, newKey as Uint8Array);
        if (oldKey && newKey && compareBytes(oldKey as Uint8Array, newKey as Uint8Array) === 0) continue;
        if (oldKey) indexes.push({ indexId: index.id, key: oldKey as Uint8Array, docId: null });
        if (newKey) indexes.push({ indexId: index.id, key: newKey as Uint8Array, docId: id, fresh });
      }
    }
    for (const { indexId, key } of this.receipts ?? []) touch(indexId, key);
    for (const { indexId, key } of this.marks ?? []) touch(indexId, key);
    return { documents, indexes, writeSet, tables, receipts: this.receipts?.map(({ receipt }) => receipt) ?? [] };
  }

  private async existing(id: string, operation: string, options: { system?: boolean } = {}): Promise<{ table: TableInfo; doc: Doc }> {
    const table = this.tableOfId(id, options);
    const doc = await this.get(id, options);
    if (doc === null) {
      throw walkinError("NOT_FOUND", `${operation}(): no document with ID "${id}" in table "${table.name}" (it may have been deleted).`);
    }
    return { table, doc };
  }

  /**
   * Checks fields written by app code: plain object, no system field names, valid values, schema.
   * Answers a new object, never `value` itself: callers add the system fields to it. `stored`:
   * the document a patch or replace writes over; `patch`: what a patch sets (`null` for a
   * replace, which sets every field). Both only name the cause in a refusal's message.
   */
  private checkUserFields(
    table: TableInfo,
    value: unknown,
    operation: string,
    stored?: Doc,
    patch?: Record<string, unknown> | null,
  ): Record<string, Value> {
    checkFieldsObject(table, value, operation);
    const fields: Record<string, Value> = {};
    let count = 0;
    for (const key of Object.keys(value)) {
      const field = (value as Record<string, unknown>)[key];
      if (field === undefined) continue;
      if (key.startsWith("_")) {
        throw walkinError("INVALID_VALUE", `${table.name}.${key}: field names starting with "_" are reserved for system fields.`);
      }
      fields[key] = field as Value;
      count++;
    }
    // Convex counts the system fields among a document's 1024 (they are fields of the stored object).
    if (count + SYSTEM_FIELDS > MAX_OBJECT_FIELDS) {
      throw walkinError("INVALID_VALUE", `${table.name}: documents hold at most ${MAX_OBJECT_FIELDS} fields, _id and ` +
        `_creationTime included, so ${MAX_OBJECT_FIELDS - SYSTEM_FIELDS} of their own (this one has ${count}): ` +
        "group fields into nested objects, or keep them in documents of a table of their own.");
    }
    // App documents nest as deep as Convex lets them; system documents hold function args,
    // which may nest as deep as any value (checkArgs).
    checkValue(fields as Value, table.name, table.system ? MAX_VALUE_DEPTH : MAX_DOCUMENT_DEPTH);
    if (table.validator) {
      // Documents are written by server code (trusted), and stored normalized: a formatted
      // field such as a session ID is kept as its digest, never as the raw value.
      const isIdOfTable = (tableName: string, id: string) => this.isIdOfTable(tableName, id);
      const result = validateResult(table.validator, fields, { path: table.name, isIdOfTable, trusted: true });
      if (!result.ok) {
        // schemaValidation: false stores it as written; there is nothing to normalize it as.
        if (!table.enforced) return fields;
        throw walkinError("SCHEMA_VIOLATION", schemaViolationMessage(table, result, stored && { doc: stored, changed: patch ? Object.keys(patch) : null }, isIdOfTable));
      }
      return normalizeValue(table.validator, fields, true, isIdOfTable) as Record<string, Value>;
    }
    return fields;
  }

  isIdOfTable(tableName: string, id: string): boolean {
    return this.catalog.isIdOfTable(tableName, id);
  }

  private stage(table: TableInfo, id: string, original: Doc | null, staged: Doc | null): void {
    const writes = (this.writes ??= new Map());
    const previous = writes.get(id);
    if (!previous && writes.size >= LIMITS.maxDocumentsWritten) {
      this.exceed(`A mutation may write at most ${LIMITS.maxDocumentsWritten} documents. ` +
        `Split the work across several mutations (e.g. schedule the rest with ctx.scheduler.runAfter).`);
    }
    if (!previous && this.budget && writes.size >= this.budget.limits.documentsWritten) this.overBudget("documentsWritten", this.budget.limits.documentsWritten);
    // Before anything is staged or counted: a refused vector leaves the transaction as it was.
    if (staged !== null && table.hasVectorIndex) checkVectorFields(table, staged);
    const encoded = staged && encodeDocument(staged);
    // The staged document shares no array or object with the value the caller passed (and may
    // change after this call): one with nested values is decoded from its text; a flat one is
    // already the caller's top-level copy (checkUserFields), and costs no parse.
    const current = encoded === null ? null : hasOnlyScalarFields(staged!) ? staged : decodeDocument(encoded);
    const size = encoded === null ? 0 : Buffer.byteLength(encoded);
    // The limit is on the document's values (strings as UTF-8, bytes as they are), not on its
    // JSON text, where bytes are base64 and some characters escaped (documentSize).
    // documentSize is at most 9 times the encoded length (a one-digit number counts 9 bytes),
    // so a document whose text is under a ninth of the limit is under it: not measured here.
    let valueSize = current === null ? 0 : size * 9 <= LIMITS.maxDocumentBytes ? undefined : documentSize(current);
    if (valueSize !== undefined && valueSize > LIMITS.maxDocumentBytes) {
      throw walkinError("LIMIT_EXCEEDED", `Document in "${table.name}" is ${valueSize} bytes; the limit is ` +
        `${LIMITS.maxDocumentBytes} (1 MiB). Store large data across several documents.`);
    }
    valueSize = this.countWritten(previous, size, current, valueSize);
    this.undo?.push({ id, replaced: previous });
    const originalKeys = previous ? previous.originalKeys : original && indexKeysOf(table, original);
    const currentKeys = current && indexKeysOf(table, current);
    // A document written again replaces its staged write: its entries count once, as its bytes do.
    const searchEntries = searchEntriesOf(table, originalKeys) + searchEntriesOf(table, currentKeys);
    const searchTotal = this.searchEntriesWritten - (previous?.searchEntries ?? 0) + searchEntries;
    const tooMany = searchEntriesWrittenProblem(searchTotal);
    if (tooMany !== null) this.exceed(tooMany, { limit: "searchEntriesWritten", max: SEARCH_LIMITS.entriesWritten });
    this.searchEntriesWritten = searchTotal;
    writes.set(id, { table, original: previous ? previous.original : original, current, encoded, textBytes: size, valueSize, originalKeys, currentKeys, searchEntries });
    (this.unindexed ??= []).push({ table, before: previous ? previous.currentKeys : originalKeys, after: currentKeys, doc: current });
  }

  /**
   * Our own writes to one index, keyed by hex key, for a read to merge in: the overlay, first
   * brought up to date with the writes staged since the last read. Applying them in staging
   * order gives the same overlay as applying each at its write: an older key vanishes, the
   * newer one appears, and a later write of the same document overrides an earlier one.
   */
  private pendingEntries(indexId: string): Map<string, PendingEntry> | undefined {
    const unindexed = this.unindexed;
    if (unindexed !== undefined && unindexed.length > 0) {
      const pendingIndex = (this.pendingIndex ??= new Map());
      for (const { table, before, after, doc } of unindexed) {
        let i = 0;
        for (const index of table.indexes.values()) {
          let byKey = pendingIndex.get(index.id);
          if (!byKey) pendingIndex.set(index.id, (byKey = new Map()));
          if (!isPlainIndex(index)) {
            for (const key of (before?.[i] ?? []) as Uint8Array[]) byKey.set(hex(key), { key, doc: null });
            for (const key of (after?.[i] ?? []) as Uint8Array[]) byKey.set(hex(key), { key, doc });
          } else {
            if (before) byKey.set(hex(before[i] as Uint8Array), { key: before[i] as Uint8Array, doc: null });
            if (after) byKey.set(hex(after[i] as Uint8Array), { key: after[i] as Uint8Array, doc });
          }
          i++;
        }
      }
      unindexed.length = 0;
    }
    return this.pendingIndex?.get(indexId);
  }

  /**
   * Counts a staged version against `maxBytesWritten` as Convex counts documents (documentSize,
   * as for the 1 MiB limit), without measuring each one: a document's size is at most 9 times
   * its text (see `stage`), so while 9 times the text of every staged version is under the
   * limit, their sizes are too. Once that bound passes the limit, the versions staged so far are
   * measured (once), and from then on each new one. A document written again replaces its
   * staged version: its bytes count once, as the document count does. Answers the version's
   * size if it was measured.
   */
  private countWritten(previous: PendingWrite | undefined, textBytes: number, current: Doc | null, valueSize: number | undefined): number | undefined {
    const bound = this.writtenBound - 9 * (previous?.textBytes ?? 0) + 9 * textBytes;
    let exact = this.writtenExact;
    const budgetBytes = this.budget?.limits.bytesWritten ?? LIMITS.maxBytesWritten;
    if (exact === undefined && bound > Math.min(budgetBytes, LIMITS.maxBytesWritten)) {
      exact = 0;
      for (const write of this.writes!.values()) exact += valueSizeOf(write);
    }
    if (exact !== undefined) {
      valueSize ??= current === null ? 0 : documentSize(current);
      exact += valueSize - (previous ? valueSizeOf(previous) : 0);
      if (exact > LIMITS.maxBytesWritten) {
        this.exceed(`A mutation may write at most ${LIMITS.maxBytesWritten} bytes (16 MiB) of documents, counted ` +
          "on their values (strings as UTF-8, bytes by their length, numbers as 8 bytes, plus a little per value). " +
          "Split the work across several mutations (e.g. schedule the rest with ctx.scheduler.runAfter).");
      }
      if (exact > budgetBytes) this.overBudget("bytesWritten", budgetBytes);
    }
    this.writtenBound = bound;
    this.writtenExact = exact;
    return valueSize;
  }

  private countRead(bytes: number): void {
    this.docsRead += 1;
    this.bytesRead += bytes;
    // `data.limit` names the limit, so a client can tell "read too much" from other limits
    // (usePaginatedQuery starts a list over on it, as Convex's does).
    if (this.docsRead > LIMITS.maxDocumentsRead) {
      this.exceed(`A function may read at most ${LIMITS.maxDocumentsRead} documents. ` +
        `Read a narrower range with withIndex, or use paginate().`, { limit: "maxDocumentsRead", max: LIMITS.maxDocumentsRead });
    }
    if (this.bytesRead > LIMITS.maxBytesRead) {
      this.exceed(`A function may read at most ${LIMITS.maxBytesRead} bytes of documents. Use paginate().`,
        { limit: "maxBytesRead", max: LIMITS.maxBytesRead });
    }
    const budget = this.budget?.limits;
    if (budget && this.docsRead > budget.documentsRead) this.overBudget("documentsRead", budget.documentsRead);
    if (budget && this.bytesRead > budget.bytesRead) this.overBudget("bytesRead", budget.bytesRead);
  }

  /** Fails the work `withinBudget` runs, stickily until it ends (see there). */
  private overBudget(which: keyof Budget, max: number): never {
    const budget = this.budget!;
    if (this.limitExceeded === null) {
      this.limitExceeded = budget.exceeded = walkinError("LIMIT_EXCEEDED",
        `This work may take its transaction to at most ${max} ${which.replace(/[A-Z]/, (c) => ` ${c.toLowerCase()}`)} (a budget its caller set, below the transaction's limits).`,
        { limit: "budget", budget: which, max });
    }
    throw this.limitExceeded;
  }

  /**
   * Fails the transaction for exceeding a limit on its whole work. The error sticks
   * (`limitExceeded`): a handler that catches it (or a library that does) and returns must not
   * commit the part it wrote, nor answer with the part it read as if it were all.
   */
  private exceed(message: string, data?: Value): never {
    // A real limit replaces a budget's error: that one is lifted when the budget ends, this one never.
    if (this.limitExceeded === null || this.limitExceeded === this.budget?.exceeded) this.limitExceeded = walkinError("LIMIT_EXCEEDED", message, data);
    throw this.limitExceeded;
  }
}

/**
 * An entry of a range: a stored entry as storage gave it (its body not yet decoded), or a
 * pending write's document. Stored entries pass through unwrapped: a read-only transaction
 * (every query) has no pending writes, and then a batch goes to the reader as it came.
 */
type CursorEntry = IndexEntry | { key: Uint8Array; doc: null; pending: Doc };

const NO_PENDING: readonly PendingEntry[] = [];

/**
 * An index range read in batches from storage, with the transaction's pending writes merged in
 * at their keys. Storage batches start at the size the reader asks for and grow 4x per batch up
 * to 1,024, so a point lookup reads one row and a long scan few round trips.
 */
class RangeCursor {
  private readonly pending: readonly PendingEntry[];
  /**
   * The keys our writes had touched when the cursor was made: the stored entries `pending`
   * replaces. A copy, not the transaction's live overlay, which later reads bring up to date
   * with writes made after this point; skipping the stored entries of those would drop
   * documents that `pending` does not hold.
   */
  private readonly written: ReadonlySet<string> | undefined;
  private p = 0;
  private remaining: KeyRange;
  private batchSize = 16;
  private done = false;

  constructor(
    private readonly txn: Transaction,
    private readonly index: IndexInfo,
    range: KeyRange,
    private readonly order: "asc" | "desc",
    pendingByKey: Map<string, PendingEntry> | undefined,
  ) {
    if (txn.catalog.isIncomplete(index.id)) throw walkinError("INTERNAL", incompleteIndexMessage(index.id));
    this.remaining = range;
    this.written = pendingByKey && new Set(pendingByKey.keys());
    this.pending = pendingByKey
      ? [...pendingByKey.values()]
          .filter((entry) => entry.doc !== null && rangeContains(range, entry.key))
          .sort((a, b) => (order === "asc" ? 1 : -1) * compareBytes(a.key, b.key))
      : NO_PENDING;
  }

  /**
   * The next entries in order (possibly none), or `null` once the range is exhausted; directly
   * (not a promise) when storage had the answer at hand.
   */
  next(batchSize?: number): CursorEntry[] | null | Promise<CursorEntry[] | null> {
    if (this.done) {
      if (this.p >= this.pending.length) return null;
      const rest = this.pending.slice(this.p).map(pendingEntry);
      this.p = this.pending.length;
      return rest;
    }
    if (batchSize !== undefined) this.batchSize = batchSize;
    const { txn } = this;
    const request: ScanRequest = { indexId: this.index.id, range: this.remaining, order: this.order, readTs: txn.readTs, limit: this.batchSize };
    const atHand = txn.storage.peekScan?.(request);
    if (atHand !== undefined) return this.merge(atHand, request.limit);
    return txn.storage.scan(request).then((batch) => this.merge(batch, request.limit));
  }

  /** Merges a storage batch with the pending writes before and among its keys; advances the range. */
  private merge(batch: IndexEntry[], size: number): CursorEntry[] {
    const { order, written } = this;
    let out: CursorEntry[] = batch;
    if (written !== undefined) {
      out = [];
      for (const entry of batch) {
        while (this.p < this.pending.length && this.before(this.pending[this.p]!.key, entry.key)) {
          out.push(pendingEntry(this.pending[this.p++]!));
        }
        if (written.has(hex(entry.key))) continue; // superseded by our own write
        out.push(entry);
      }
    }
    if (batch.length < size) {
      this.done = true;
    } else {
      const last = batch[batch.length - 1]!.key;
      this.remaining = order === "asc"
        ? { ...this.remaining, lower: { key: last, inclusive: false } }
        : { ...this.remaining, upper: { key: last, inclusive: false } };
      this.batchSize = Math.min(size * 4, 1024);
    }
    return out;
  }

  private before(a: Uint8Array, b: Uint8Array): boolean {
    return this.order === "asc" ? compareBytes(a, b) < 0 : compareBytes(a, b) > 0;
  }
}

function pendingEntry(entry: PendingEntry): CursorEntry {
  return { key: entry.key, doc: null, pending: entry.doc! };
}

/** What a staged version counts as written: its documentSize, measured on first use. */
function valueSizeOf(write: PendingWrite): number {
  return (write.valueSize ??= write.current === null ? 0 : documentSize(write.current));
}

function withoutSystemFields(doc: Doc): Record<string, Value | undefined> {
  const { _id, _creationTime, ...rest } = doc;
  return rest;
}

/**
 * A document of its own for one read of this transaction's staged write: a reader changing it
 * changes neither the write nor what other reads see, as with documents read from storage.
 */
function ownCopy(doc: Doc): Doc {
  return hasOnlyScalarFields(doc) ? { ...doc } : decodeDocument(encodeDocument(doc));
}

/** No field holds an object or array (bytes included), so a shallow copy shares nothing mutable. */
function hasOnlyScalarFields(doc: Doc): boolean {
  for (const key in doc) {
    const field: unknown = doc[key];
    if (typeof field === "object" && field !== null) return false;
  }
  return true;
}

/**
 * `fields`, a new object from `checkUserFields`, made the next version of `doc`: its system
 * fields go onto it, after the others, rather than into yet another copy.
 */
function withSystemFields(fields: Record<string, Value>, doc: Doc): Doc {
  const next = fields as Doc;
  next._id = doc._id;
  next._creationTime = doc._creationTime;
  return next;
}

/** The fields every document has besides its own: `_id` and `_creationTime`. */
const SYSTEM_FIELDS = 2;

/**
 * Throws unless `value` is a plain object, the only thing whose fields a document can be made
 * of: null, an array, bytes or a class instance (a Date, a Map) would otherwise yield its own
 * enumerable properties, usually none, and write an empty document.
 */
function checkFieldsObject(table: TableInfo, value: unknown, operation: string): asserts value is Record<string, Value | undefined> {
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof ArrayBuffer) {
    const hint = operation === "replace" && value === null ? " To remove the document, call ctx.db.delete(id)." : "";
    throw walkinError("INVALID_VALUE", `${operation}() into "${table.name}" takes an object of fields; received ${describe(value)}.${hint}`);
  }
  if (!isPlainObject(value)) {
    throw walkinError("INVALID_VALUE", `${operation}() into "${table.name}" takes a plain object of fields: ${nonValueProblem(value)}.`);
  }
}

/** A short description of a value for error messages (never a huge dump). */
export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof ArrayBuffer) return "bytes";
  return typeof value === "object" ? "an object" : `${typeof value} ${String(value)}`;
}
